/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql schema and its migrations.
 *
 * hpfeeds3's auth_keys is read by column name and never altered (no
 * column, index or trigger of ours is added to it); when it is absent we
 * create it the way hpfeeds3 reads it.  Everything of ours lives in hpf_*
 * tables, InnoDB, utf8mb4 with a byte-exact, non-padding collation
 * (utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL 8), so names
 * compare as bytes, as they do in every other backend.
 *
 * hpf_meta holds schema_version (the last step applied) and data_version.
 * steps[] is append-only; step N takes schema_version N-1 to N.  MySQL
 * commits each DDL statement by itself, so instead of a transaction the
 * steps run under a named lock (two processes starting at once cannot both
 * migrate) and each statement can run again safely (IF NOT EXISTS), so a
 * step cut short is finished by the next start.
 */
#include "mysql_store.h"

#include <string.h>

#define LOCK_WAIT_S "30"

#define TABLE_OPTS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=@COLL@"
#define NAME       "VARCHAR(255) NOT NULL"
#define ID         "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"

static const char *const step1[] = {
    /* hpfeeds3 reads SELECT * by position: id, identifier, secret, publish, subscribe. */
    "CREATE TABLE IF NOT EXISTS auth_keys (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
    "identifier " NAME ", secret VARCHAR(1024) NOT NULL, publish MEDIUMTEXT NOT NULL, "
    "subscribe MEDIUMTEXT NOT NULL, UNIQUE KEY auth_keys_identifier (identifier))" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS hpf_meta (name VARCHAR(64) NOT NULL PRIMARY KEY, "
    "value BIGINT NOT NULL)" TABLE_OPTS,
    "INSERT IGNORE INTO hpf_meta (name, value) VALUES ('data_version', 1)",
    "CREATE TABLE IF NOT EXISTS hpf_users (" ID ", name " NAME ", "
    "admin TINYINT NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)), password VARCHAR(1024) NULL, "
    "created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, UNIQUE KEY hpf_users_name "
    "(name))" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS hpf_groups (" ID ", name " NAME ", owner " NAME ", "
    "created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, UNIQUE KEY hpf_groups_name (name), "
    "KEY hpf_groups_owner (owner))" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS hpf_members (" ID ", group_name " NAME ", user_name " NAME ", "
    "UNIQUE KEY hpf_members_edge (group_name, user_name), "
    "KEY hpf_members_user (user_name))" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS hpf_shares (" ID ", from_user " NAME ", to_name " NAME ", "
    "to_is_group TINYINT NOT NULL CHECK (to_is_group IN (0, 1)), channel " NAME ", "
    "type VARCHAR(16) NOT NULL CHECK (type IN ('shares', 'shares_all')), "
    "UNIQUE KEY hpf_shares_edge (from_user, to_name, to_is_group, channel), "
    "KEY hpf_shares_to (to_name, to_is_group))" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS hpf_accepts (" ID ", user_name " NAME ", from_user " NAME ", "
    "channel " NAME ", UNIQUE KEY hpf_accepts_offer (user_name, from_user, channel), "
    "KEY hpf_accepts_from (from_user))" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS hpf_counters (ident VARCHAR(255) NOT NULL PRIMARY KEY, "
    "published_msgs BIGINT UNSIGNED NOT NULL DEFAULT 0, "
    "published_bytes BIGINT UNSIGNED NOT NULL DEFAULT 0, "
    "received_msgs BIGINT UNSIGNED NOT NULL DEFAULT 0, "
    "received_bytes BIGINT UNSIGNED NOT NULL DEFAULT 0)" TABLE_OPTS,
    "CREATE TABLE IF NOT EXISTS hpf_key_owners (identifier VARCHAR(255) NOT NULL PRIMARY KEY, "
    "owner " NAME ")" TABLE_OPTS,
    NULL,
};

/* The audit trail (audit.c); "subject" is whose object changed. */
static const char *const step2[] = {
    "CREATE TABLE IF NOT EXISTS hpf_audit (" ID ", time BIGINT NOT NULL, "
    "actor VARCHAR(2048) NOT NULL, subject VARCHAR(255) NOT NULL DEFAULT '', "
    "action VARCHAR(255) NOT NULL, object VARCHAR(2048) NOT NULL DEFAULT '', "
    "detail VARCHAR(2048) NOT NULL DEFAULT '', KEY hpf_audit_subject (subject, id), "
    "KEY hpf_audit_actor (actor(191), id))" TABLE_OPTS,
    NULL,
};

/*
 * Declined offers (ABI 1.5): a table of their own, so that every row of
 * hpf_accepts still means "delivers".
 */
static const char *const step3[] = {
    "CREATE TABLE IF NOT EXISTS hpf_declines (" ID ", user_name " NAME ", from_user " NAME ", "
    "channel " NAME ", UNIQUE KEY hpf_declines_offer (user_name, from_user, channel), "
    "KEY hpf_declines_from (from_user))" TABLE_OPTS,
    NULL,
};

struct step {
    int version;
    const char *what;
    const char *const *sql;
};

/* Append only; never edit a step that has shipped. */
static const struct step steps[] = {
    {1, "hpfriends tables beside hpfeeds3's auth_keys", step1},
    {2, "the audit trail", step2},
    {3, "declined offers", step3},
};

G_STATIC_ASSERT(G_N_ELEMENTS(steps) == MY_SCHEMA_VERSION);

static void take_text(struct mystore *s, const char *const *vals, unsigned n, void *arg)
{
    (void)s;
    char **out = arg;
    if (n > 0 && vals[0] && !*out)
        *out = g_strdup(vals[0]);
}

/* One text value of a one-column query, or NULL (none, or failure: see ok). */
static char *query_text(struct mystore *s, const char *sql, const struct my_param *p, unsigned n,
                        gboolean *ok)
{
    char *out = NULL;
    *ok = my_exec(s, sql, p, n, take_text, &out, NULL);
    return out;
}

static int failed(struct mystore *s, const char *what, char *err, size_t err_len)
{
    return hpf_set_error(err, err_len, my_status(s), "mysql at %s: %s: %s", s->where, what,
                         s->last_error);
}

static char *collation(struct mystore *s, char *err, size_t err_len, int *status)
{
    gboolean ok;
    char *coll = query_text(s,
                            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS "
                            "WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin') "
                            "ORDER BY COLLATION_NAME DESC LIMIT 1",
                            NULL, 0, &ok);
    *status = HPF_OK;
    if (!ok)
        *status = failed(s, "reading collations", err, err_len);
    else if (!coll)
        *status = hpf_set_error(err, err_len, HPF_ERR_UNSUPPORTED,
                                "mysql at %s: the server has neither utf8mb4_nopad_bin "
                                "(MariaDB 10.2+) nor utf8mb4_0900_bin (MySQL 8)",
                                s->where);
    return coll;
}

static int run_step(struct mystore *s, const struct step *st, const char *coll, char *err,
                    size_t err_len)
{
    for (size_t i = 0; st->sql[i]; i++) {
        GString *sql = g_string_new(st->sql[i]);
        g_string_replace(sql, "@COLL@", coll, 0);
        /* Not cached: prepared once, run once. */
        char *text = g_string_free(sql, FALSE);
        gboolean ok = my_exec(s, text, NULL, 0, NULL, NULL, NULL);
        if (s->stmts)
            g_hash_table_remove(s->stmts, text);
        g_free(text);
        if (!ok) {
            char *what = g_strdup_printf("schema step %d (%s)", st->version, st->what);
            int status = failed(s, what, err, err_len);
            g_free(what);
            return status;
        }
    }
    struct my_param v = MY_N(st->version);
    if (!my_exec(s,
                 "INSERT INTO hpf_meta (name, value) VALUES ('schema_version', ?) "
                 "ON DUPLICATE KEY UPDATE value = VALUES(value)",
                 &v, 1, NULL, NULL, NULL))
        return failed(s, "writing schema_version", err, err_len);
    MY_LOG(s, HPF_LOG_NOTICE, "mysql at %s: schema step %d applied: %s", s->where, st->version,
           st->what);
    return HPF_OK;
}

/* 0 for a database without hpf_meta (fresh, or hpfeeds3's only). */
static int read_schema_version(struct mystore *s, gint64 *version, char *err, size_t err_len)
{
    gboolean ok;
    *version = 0;
    char *t = query_text(s,
                         "SELECT TABLE_NAME FROM information_schema.TABLES "
                         "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'hpf_meta'",
                         NULL, 0, &ok);
    if (!ok)
        return failed(s, "reading the schema version", err, err_len);
    if (!t)
        return HPF_OK;
    g_free(t);
    char *v =
        query_text(s, "SELECT value FROM hpf_meta WHERE name = 'schema_version'", NULL, 0, &ok);
    if (!ok)
        return failed(s, "reading the schema version", err, err_len);
    if (v && !g_ascii_string_to_signed(v, 10, 0, G_MAXINT, version, NULL)) {
        g_free(v);
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "mysql at %s: hpf_meta: schema_version is not a number", s->where);
    }
    g_free(v);
    return HPF_OK;
}

struct columns {
    gboolean identifier, secret, publish, subscribe, id;
};

static void take_column(struct mystore *s, const char *const *vals, unsigned n, void *arg)
{
    (void)s;
    struct columns *c = arg;
    if (n < 1 || !vals[0])
        return;
    const char *name = vals[0];
    c->identifier |= !g_ascii_strcasecmp(name, "identifier");
    c->secret |= !g_ascii_strcasecmp(name, "secret");
    c->publish |= !g_ascii_strcasecmp(name, "publish");
    c->subscribe |= !g_ascii_strcasecmp(name, "subscribe");
    c->id |= !g_ascii_strcasecmp(name, "id");
}

/* auth_keys as found (maybe hpfeeds3's own): the columns we read must be there. */
static int check_auth_keys(struct mystore *s, char *err, size_t err_len)
{
    static const char sql[] = "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
                              "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'auth_keys'";
    struct columns c = {0};
    /* A read of the catalogue was once seen to fail without an error text
       while other databases of the server were being dropped; it is only a
       read, so it is tried a second time before the open fails. */
    gboolean ok = my_exec(s, sql, NULL, 0, take_column, &c, NULL);
    if (!ok && !s->last_errno) {
        memset(&c, 0, sizeof c);
        ok = my_exec(s, sql, NULL, 0, take_column, &c, NULL);
    }
    if (!ok)
        return failed(s, "reading the columns of auth_keys", err, err_len);
    if (!c.identifier || !c.secret || !c.publish || !c.subscribe)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "mysql at %s: table auth_keys lacks one of the columns identifier, "
                             "secret, publish, subscribe (hpfeeds3's shape)",
                             s->where);
    s->auth_has_id = c.id;
    return HPF_OK;
}

static int migrate_locked(struct mystore *s, char *err, size_t err_len)
{
    gint64 version;
    int status = read_schema_version(s, &version, err, err_len);
    if (status != HPF_OK)
        return status;
    if (version > MY_SCHEMA_VERSION)
        return hpf_set_error(err, err_len, HPF_ERR_UNSUPPORTED,
                             "mysql at %s: schema version %" G_GINT64_FORMAT " is newer than "
                             "this storage_mysql supports (%d); upgrade hpfriends",
                             s->where, version, MY_SCHEMA_VERSION);
    if (version < MY_SCHEMA_VERSION) {
        char *coll = collation(s, err, err_len, &status);
        for (size_t i = (size_t)version; status == HPF_OK && i < G_N_ELEMENTS(steps); i++)
            status = run_step(s, &steps[i], coll, err, err_len);
        g_free(coll);
        if (status != HPF_OK)
            return status;
    }
    return check_auth_keys(s, err, err_len);
}

int my_schema_migrate(struct mystore *s, char *err, size_t err_len)
{
    gboolean ok;
    char *got = query_text(s, "SELECT GET_LOCK(CONCAT('hpfriends.', DATABASE()), " LOCK_WAIT_S ")",
                           NULL, 0, &ok);
    if (!ok) {
        g_free(got);
        return failed(s, "taking the migration lock", err, err_len);
    }
    if (!got || strcmp(got, "1") != 0) {
        g_free(got);
        return hpf_set_error(
            err, err_len, HPF_ERR_UNAVAILABLE,
            "mysql at %s: another process held the migration lock for " LOCK_WAIT_S " s", s->where);
    }
    g_free(got);
    int status = migrate_locked(s, err, err_len);
    /* A dropped connection releases the lock by itself. */
    my_exec(s, "SELECT RELEASE_LOCK(CONCAT('hpfriends.', DATABASE()))", NULL, 0, NULL, NULL, NULL);
    return status;
}
