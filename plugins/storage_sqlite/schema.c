/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_sqlite schema and its migrations.
 *
 * The file may be an hpfeeds3 database: hpfeeds3 checks for `logs` and
 * `authkeys` and, when either is missing, creates `logs`, `stats` and
 * `authkeys` together; it reads authkeys with `SELECT *` and unpacks six
 * columns.  So those three tables keep hpfeeds3's exact definitions and we
 * never add a column to them.  Everything of ours lives in hpf_* tables.
 *
 * hpf_meta holds `schema_version` (the last migration step applied) and
 * `data_version` (the change counter behind the version() op).  Triggers on
 * every graph table and on authkeys bump data_version, so a change made by
 * any process, including a plain `INSERT INTO authkeys` from an
 * hpfeeds3-era script, is seen by a running broker.
 *
 * Migrations: steps[] is append-only; step N takes schema_version N-1 to N.
 * All pending steps run in one IMMEDIATE transaction, so two processes
 * starting at once cannot both migrate, and a failed step leaves the file
 * as it was.
 */
#include "sqlite_store.h"

#include <string.h>

/* hpfeeds3's own definitions, verbatim apart from IF NOT EXISTS. */
#define HPFEEDS3_TABLES                                                            \
    "CREATE TABLE IF NOT EXISTS logs (id integer primary key autoincrement,\n"     \
    "    data TEXT);\n"                                                            \
    "CREATE TABLE IF NOT EXISTS stats (id integer primary key autoincrement,\n"    \
    "    ak TEXT, uid TEXT, data TEXT);\n"                                         \
    "CREATE TABLE IF NOT EXISTS authkeys (id integer primary key autoincrement,\n" \
    "    owner TEXT, ident TEXT, secret TEXT,\n"                                   \
    "    pubchans TEXT, subchans TEXT);\n"

#define NOW_UTC "(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"

#define BUMP_ON(table, event)                                                             \
    "CREATE TRIGGER IF NOT EXISTS hpf_bump_" table "_" event " AFTER " event " ON " table \
    " BEGIN UPDATE hpf_meta SET value = value + 1 WHERE key = 'data_version'; END;\n"

#define BUMP(table) BUMP_ON(table, "INSERT") BUMP_ON(table, "UPDATE") BUMP_ON(table, "DELETE")

static const char step1_sql[] = HPFEEDS3_TABLES
    "CREATE TABLE IF NOT EXISTS hpf_meta (\n"
    "    key TEXT PRIMARY KEY NOT NULL,\n"
    "    value);\n"
    "INSERT OR IGNORE INTO hpf_meta (key, value) VALUES ('data_version', 1);\n"
    "CREATE TABLE hpf_users (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    name TEXT NOT NULL UNIQUE,\n"
    "    admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),\n"
    "    created TEXT NOT NULL DEFAULT " NOW_UTC ");\n"
    "CREATE TABLE hpf_groups (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    name TEXT NOT NULL UNIQUE,\n"
    "    owner TEXT NOT NULL,\n"
    "    created TEXT NOT NULL DEFAULT " NOW_UTC ");\n"
    "CREATE TABLE hpf_members (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    group_name TEXT NOT NULL,\n"
    "    user_name TEXT NOT NULL,\n"
    "    UNIQUE (group_name, user_name));\n"
    "CREATE INDEX hpf_members_user ON hpf_members (user_name);\n"
    "CREATE TABLE hpf_shares (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    from_user TEXT NOT NULL,\n"
    "    to_name TEXT NOT NULL,\n"
    "    to_is_group INTEGER NOT NULL CHECK (to_is_group IN (0, 1)),\n"
    "    channel TEXT NOT NULL,\n"
    "    type TEXT NOT NULL CHECK (type IN ('shares', 'shares_all')),\n"
    "    UNIQUE (from_user, to_name, to_is_group, channel));\n"
    "CREATE INDEX hpf_shares_to ON hpf_shares (to_name, to_is_group);\n"
    "CREATE TABLE hpf_accepts (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    user_name TEXT NOT NULL,\n"
    "    from_user TEXT NOT NULL,\n"
    "    channel TEXT NOT NULL,\n"
    "    UNIQUE (user_name, from_user, channel));\n"
    "CREATE INDEX hpf_accepts_from ON hpf_accepts (from_user);\n"
    "CREATE TABLE hpf_counters (\n"
    "    ident TEXT PRIMARY KEY NOT NULL,\n"
    "    published_msgs INTEGER NOT NULL DEFAULT 0,\n"
    "    published_bytes INTEGER NOT NULL DEFAULT 0,\n"
    "    received_msgs INTEGER NOT NULL DEFAULT 0,\n"
    "    received_bytes INTEGER NOT NULL DEFAULT 0);\n" BUMP("authkeys") BUMP("hpf_users")
        BUMP("hpf_groups") BUMP("hpf_members") BUMP("hpf_shares") BUMP("hpf_accepts");

/* Console passwords: a salted slow hash, written by the broker. */
static const char step2_sql[] = "ALTER TABLE hpf_users ADD COLUMN password TEXT;\n";

/* The audit trail (audit.c); "subject" is whose object changed. */
static const char step3_sql[] = "CREATE TABLE hpf_audit (\n"
                                "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                                "    time INTEGER NOT NULL,\n"
                                "    actor TEXT NOT NULL,\n"
                                "    subject TEXT NOT NULL DEFAULT '',\n"
                                "    action TEXT NOT NULL,\n"
                                "    object TEXT NOT NULL DEFAULT '',\n"
                                "    detail TEXT NOT NULL DEFAULT '');\n"
                                "CREATE INDEX hpf_audit_subject ON hpf_audit (subject, id);\n"
                                "CREATE INDEX hpf_audit_actor ON hpf_audit (actor, id);\n";

/*
 * Declined offers (ABI 1.5): a table of their own rather than a state
 * column on hpf_accepts, so that every row of hpf_accepts still means
 * "delivers", whoever reads it.
 */
static const char step4_sql[] =
    "CREATE TABLE hpf_declines (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    user_name TEXT NOT NULL,\n"
    "    from_user TEXT NOT NULL,\n"
    "    channel TEXT NOT NULL,\n"
    "    UNIQUE (user_name, from_user, channel));\n"
    "CREATE INDEX hpf_declines_from ON hpf_declines (from_user);\n" BUMP("hpf_declines");

struct step {
    int version;
    const char *what;
    const char *sql;
};

/* Append only; never edit a step that has shipped. */
static const struct step steps[] = {
    {1, "hpfriends tables beside hpfeeds3's", step1_sql},
    {2, "console password hashes of users", step2_sql},
    {3, "the audit trail", step3_sql},
    {4, "declined offers", step4_sql},
};

G_STATIC_ASSERT(G_N_ELEMENTS(steps) == SQ_SCHEMA_VERSION);

static gboolean table_exists(struct store *s, const char *name)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
    if (!st)
        return FALSE;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    gboolean found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return found;
}

/* 0 for a database that has no hpf_meta yet (fresh, or hpfeeds3's). */
static int read_schema_version(struct store *s, sqlite3_int64 *version, char *err, size_t err_len)
{
    *version = 0;
    if (!table_exists(s, "hpf_meta"))
        return HPF_OK;
    sqlite3_stmt *st = sq_stmt(s, "SELECT value FROM hpf_meta WHERE key = 'schema_version'");
    if (!st)
        return hpf_set_error(err, err_len, HPF_ERR_IO, "%s", sqlite3_errmsg(s->db));
    int status = HPF_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER)
            status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                                   "hpf_meta: schema_version '%s' is not a number",
                                   (const char *)sqlite3_column_text(st, 0));
        else
            *version = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        status = hpf_set_error(err, err_len, sq_status(rc), "reading schema_version: %s",
                               sqlite3_errmsg(s->db));
    }
    sqlite3_reset(st);
    return status;
}

/*
 * hpfeeds3 never made idents unique, so old files may repeat one.  Enforce
 * uniqueness when the data allows it (checked at every start, so it takes
 * effect once an operator removes the duplicates); otherwise keep a plain
 * index for lookups, and every reader uses the first row of an ident.
 */
static int index_idents(struct store *s, char *err, size_t err_len)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND "
                                  "name = 'hpf_authkeys_ident_unique'");
    if (!st)
        return hpf_set_error(err, err_len, HPF_ERR_IO, "%s", sqlite3_errmsg(s->db));
    gboolean have_unique = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    if (have_unique)
        return HPF_OK;

    st = sq_stmt(s, "SELECT ident, count(*) FROM authkeys WHERE ident IS NOT NULL "
                    "GROUP BY ident HAVING count(*) > 1 ORDER BY min(id)");
    if (!st)
        return hpf_set_error(err, err_len, HPF_ERR_IO, "%s", sqlite3_errmsg(s->db));
    int n_dup = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n_dup++ < 5)
            SQ_LOG(s, HPF_LOG_WARNING,
                   "%s: authkeys: ident '%s' appears in %d rows; using the first one", s->path,
                   (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return hpf_set_error(err, err_len, sq_status(rc), "checking authkeys idents: %s",
                             sqlite3_errmsg(s->db));

    const char *sql;
    if (n_dup > 0) {
        SQ_LOG(s, HPF_LOG_WARNING,
               "%s: authkeys: %d idents are not unique; not enforcing unique idents "
               "until the duplicates are removed",
               s->path, n_dup);
        sql = "CREATE INDEX IF NOT EXISTS hpf_authkeys_ident ON authkeys (ident)";
    } else {
        sql = "DROP INDEX IF EXISTS hpf_authkeys_ident;\n"
              "CREATE UNIQUE INDEX hpf_authkeys_ident_unique ON authkeys (ident)";
    }
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int status = hpf_set_error(err, err_len, HPF_ERR_IO, "indexing authkeys idents: %s", msg);
        sqlite3_free(msg);
        return status;
    }
    return HPF_OK;
}

/* An authkeys table made by something else must still have hpfeeds's columns. */
static int check_authkeys(struct store *s, char *err, size_t err_len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT owner, ident, secret, pubchans, subchans "
                                "FROM authkeys LIMIT 0",
                                -1, &st, NULL);
    int status = HPF_OK;
    if (rc != SQLITE_OK)
        status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                               "table authkeys is not hpfeeds's (owner, ident, secret, pubchans, "
                               "subchans): %s",
                               sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return status;
}

/*
 * hpfeeds-broker's `--auth database+sqlite:///FILE` reads another table,
 * auth_keys(identifier, secret, publish, subscribe), owner = identifier.
 * When the file has one, its rows are authkeys too (read, never changed;
 * an authkeys row of the same ident comes first), and changes to it made
 * by other tools bump data_version like changes to authkeys.
 */
#define AUTH_KEYS_BUMP BUMP("auth_keys")

static int detect_auth_keys(struct store *s, char *err, size_t err_len)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                  "name = 'auth_keys'");
    if (!st)
        return hpf_set_error(err, err_len, HPF_ERR_IO, "%s", sqlite3_errmsg(s->db));
    s->auth_keys = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    if (!s->auth_keys)
        return HPF_OK;
    st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT identifier, secret, publish, subscribe "
                                "FROM auth_keys LIMIT 0",
                                -1, &st, NULL);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "table auth_keys is not hpfeeds3's (identifier, secret, publish, "
                             "subscribe): %s",
                             sqlite3_errmsg(s->db));
    char *msg = NULL;
    if (sqlite3_exec(s->db, AUTH_KEYS_BUMP, NULL, NULL, &msg) != SQLITE_OK) {
        int status = hpf_set_error(err, err_len, HPF_ERR_IO, "auth_keys triggers: %s", msg);
        sqlite3_free(msg);
        return status;
    }
    return HPF_OK;
}

static int migrate_locked(struct store *s, sqlite3_int64 *from, char *err, size_t err_len)
{
    sqlite3_int64 current;
    int status = read_schema_version(s, &current, err, err_len);
    *from = current;
    if (status != HPF_OK)
        return status;
    if (current > SQ_SCHEMA_VERSION)
        return hpf_set_error(err, err_len, HPF_ERR_UNSUPPORTED,
                             "database schema version %lld is newer than this storage_sqlite "
                             "supports (%d); upgrade hpfriends",
                             (long long)current, SQ_SCHEMA_VERSION);
    if (current < 0)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "hpf_meta: schema_version %lld is negative", (long long)current);

    for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
        if (steps[i].version <= current)
            continue;
        char *msg = NULL;
        if (sqlite3_exec(s->db, steps[i].sql, NULL, NULL, &msg) != SQLITE_OK) {
            status = hpf_set_error(err, err_len, HPF_ERR_IO, "schema step %d (%s) failed: %s",
                                   steps[i].version, steps[i].what, msg);
            sqlite3_free(msg);
            return status;
        }
    }
    if (current < SQ_SCHEMA_VERSION) {
        sqlite3_stmt *st = sq_stmt(s, "INSERT INTO hpf_meta (key, value) "
                                      "VALUES ('schema_version', ?1) "
                                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
        if (!st)
            return hpf_set_error(err, err_len, HPF_ERR_IO, "%s", sqlite3_errmsg(s->db));
        sqlite3_bind_int(st, 1, SQ_SCHEMA_VERSION);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return hpf_set_error(err, err_len, sq_status(rc), "recording schema_version: %s",
                                 sqlite3_errmsg(s->db));
    }

    status = check_authkeys(s, err, err_len);
    if (status == HPF_OK)
        status = detect_auth_keys(s, err, err_len);
    if (status != HPF_OK)
        return status;
    return index_idents(s, err, err_len);
}

int sq_schema_migrate(struct store *s, char *err, size_t err_len)
{
    int rc = sq_exec(s, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        return hpf_set_error(err, err_len, sq_status(rc), "cannot lock the database: %s",
                             sqlite3_errmsg(s->db));
    sqlite3_int64 from = 0;
    int status = migrate_locked(s, &from, err, err_len);
    if (status != HPF_OK) {
        sq_rollback(s);
        return status;
    }
    rc = sq_exec(s, "COMMIT");
    if (rc != SQLITE_OK) {
        sq_rollback(s);
        return hpf_set_error(err, err_len, sq_status(rc), "committing the schema: %s",
                             sqlite3_errmsg(s->db));
    }
    if (from == 0)
        SQ_LOG(s, HPF_LOG_NOTICE, "%s: created schema version %d", s->path, SQ_SCHEMA_VERSION);
    else if (from < SQ_SCHEMA_VERSION)
        SQ_LOG(s, HPF_LOG_NOTICE, "%s: migrated schema from version %lld to %d", s->path,
               (long long)from, SQ_SCHEMA_VERSION);
    return HPF_OK;
}
