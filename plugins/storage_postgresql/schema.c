/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql schema and its migrations.
 *
 * hpfeeds3's auth_keys is read in place and never altered (pg_store.h);
 * everything of ours lives in hpf_* tables.  hpf_meta holds
 * `schema_version` (the last migration step applied) and `data_version`
 * (the change counter behind version()).
 *
 * Migrations: steps[] is append-only; step N takes schema_version N-1 to N.
 * All pending steps run in one transaction under an advisory lock, so
 * nodes starting at once migrate one after the other, and a failed step
 * leaves the database as it was (PostgreSQL's DDL is transactional).
 */
#include "pg_store.h"

#include <string.h>

/* pg_advisory_xact_lock() key of the schema: "hpfr" */
#define SCHEMA_LOCK "1752196722"

static const char *const step1_sql[] = {
    "CREATE TABLE hpf_meta (\n"
    "    key text PRIMARY KEY,\n"
    "    value bigint NOT NULL)",
    "CREATE TABLE hpf_users (\n"
    "    name text PRIMARY KEY,\n"
    "    admin boolean NOT NULL DEFAULT false,\n"
    "    password text,\n"
    "    created timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE hpf_groups (\n"
    "    name text PRIMARY KEY,\n"
    "    owner text NOT NULL,\n"
    "    created timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE hpf_members (\n"
    "    group_name text NOT NULL,\n"
    "    user_name text NOT NULL,\n"
    "    PRIMARY KEY (group_name, user_name))",
    "CREATE INDEX hpf_members_user ON hpf_members (user_name)",
    "CREATE TABLE hpf_shares (\n"
    "    from_user text NOT NULL,\n"
    "    to_name text NOT NULL,\n"
    "    to_is_group boolean NOT NULL,\n"
    "    channel text NOT NULL,\n"
    "    type text NOT NULL CHECK (type IN ('shares', 'shares_all')),\n"
    "    PRIMARY KEY (from_user, to_name, to_is_group, channel))",
    "CREATE INDEX hpf_shares_to ON hpf_shares (to_name, to_is_group)",
    "CREATE TABLE hpf_accepts (\n"
    "    user_name text NOT NULL,\n"
    "    from_user text NOT NULL,\n"
    "    channel text NOT NULL,\n"
    "    PRIMARY KEY (user_name, from_user, channel))",
    "CREATE INDEX hpf_accepts_from ON hpf_accepts (from_user)",
    "CREATE TABLE hpf_key_owners (\n"
    "    identifier text PRIMARY KEY,\n"
    "    owner text NOT NULL)",
    "CREATE TABLE hpf_counters (\n"
    "    ident text PRIMARY KEY,\n"
    "    published_msgs bigint NOT NULL DEFAULT 0,\n"
    "    published_bytes bigint NOT NULL DEFAULT 0,\n"
    "    received_msgs bigint NOT NULL DEFAULT 0,\n"
    "    received_bytes bigint NOT NULL DEFAULT 0)",
    "INSERT INTO hpf_meta (key, value) VALUES ('data_version', 1)",
    NULL,
};

/* The audit trail (audit.c); "subject" is whose object changed. */
static const char *const step2_sql[] = {
    "CREATE TABLE hpf_audit (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    time bigint NOT NULL,\n"
    "    actor text NOT NULL,\n"
    "    subject text NOT NULL DEFAULT '',\n"
    "    action text NOT NULL,\n"
    "    object text NOT NULL DEFAULT '',\n"
    "    detail text NOT NULL DEFAULT '')",
    "CREATE INDEX hpf_audit_subject ON hpf_audit (subject, id)",
    "CREATE INDEX hpf_audit_actor ON hpf_audit (actor, id)",
    NULL,
};

/*
 * Declined offers (ABI 1.5): a table of their own, so that every row of
 * hpf_accepts still means "delivers".
 */
static const char *const step3_sql[] = {
    "CREATE TABLE hpf_declines (\n"
    "    user_name text NOT NULL,\n"
    "    from_user text NOT NULL,\n"
    "    channel text NOT NULL,\n"
    "    PRIMARY KEY (user_name, from_user, channel))",
    "CREATE INDEX hpf_declines_from ON hpf_declines (from_user)",
    NULL,
};

struct step {
    int version;
    const char *what;
    const char *const *sql;
};

/* Append only; never edit a step that has shipped. */
static const struct step steps[] = {
    {1, "hpfriends tables beside hpfeeds3's auth_keys", step1_sql},
    {2, "the audit trail", step2_sql},
    {3, "declined offers", step3_sql},
};

G_STATIC_ASSERT(G_N_ELEMENTS(steps) == PG_SCHEMA_VERSION);

/*
 * hpfeeds3 leaves creating auth_keys to the operator; on a database without
 * one we make it, with hpfeeds3's columns and its `SELECT *` order.
 */
static const char *const auth_keys_sql[] = {
    "CREATE TABLE auth_keys (\n"
    "    id serial PRIMARY KEY,\n"
    "    identifier text,\n"
    "    secret text,\n"
    "    publish json,\n"
    "    subscribe json)",
    "CREATE INDEX auth_keys_identifier ON auth_keys (identifier)",
    NULL,
};

static int run_all(struct pstore *s, const char *const *sql, const char *what, char *err,
                   size_t err_len)
{
    struct pg_fail f;
    for (size_t i = 0; sql[i]; i++)
        if (!pg_run(s, sql[i], 0, NULL, &f))
            return hpf_set_error(err, err_len, f.status, "postgresql at %s: %s: %s", s->where, what,
                                 f.msg);
    return HPF_OK;
}

/* 1 when the table (in the search_path) exists, 0 when not, -1 on failure. */
static int table_exists(struct pstore *s, const char *name, struct pg_fail *f)
{
    const char *params[] = {name};
    PGresult *r = pg_query(s, "SELECT to_regclass($1) IS NOT NULL", 1, params, f);
    if (!r)
        return -1;
    int yes = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return yes;
}

/* 0 for a database without hpf_meta (fresh, or hpfeeds3's only). */
static int read_schema_version(struct pstore *s, int64_t *version, char *err, size_t err_len)
{
    struct pg_fail f;
    *version = 0;
    int have = table_exists(s, "hpf_meta", &f);
    if (have < 0)
        return hpf_set_error(err, err_len, f.status, "postgresql at %s: %s", s->where, f.msg);
    if (!have)
        return HPF_OK;
    PGresult *r =
        pg_query(s, "SELECT value FROM hpf_meta WHERE key = 'schema_version'", 0, NULL, &f);
    if (!r)
        return hpf_set_error(err, err_len, f.status, "postgresql at %s: reading hpf_meta: %s",
                             s->where, f.msg);
    if (PQntuples(r) == 1)
        *version = g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return HPF_OK;
}

/* auth_keys: ours when absent; otherwise it must have hpfeeds3's columns. */
static int ensure_auth_keys(struct pstore *s, char *err, size_t err_len)
{
    struct pg_fail f;
    int have = table_exists(s, "auth_keys", &f);
    if (have < 0)
        return hpf_set_error(err, err_len, f.status, "postgresql at %s: %s", s->where, f.msg);
    if (!have) {
        int status = run_all(s, auth_keys_sql, "creating auth_keys", err, err_len);
        if (status != HPF_OK)
            return status;
        PG_LOG(s, HPF_LOG_NOTICE, "postgresql at %s: created table auth_keys", s->where);
    }
    if (!pg_run(s,
                "SELECT id, identifier, secret, publish::text, subscribe::text "
                "FROM auth_keys LIMIT 0",
                0, NULL, &f))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "postgresql at %s: table auth_keys is not hpfeeds3's (id, "
                             "identifier, secret, publish, subscribe): %s",
                             s->where, f.msg);
    return HPF_OK;
}

static int migrate_locked(struct pstore *s, int64_t *from, char *err, size_t err_len)
{
    int status = read_schema_version(s, from, err, err_len);
    if (status != HPF_OK)
        return status;
    if (*from > PG_SCHEMA_VERSION)
        return hpf_set_error(err, err_len, HPF_ERR_UNSUPPORTED,
                             "postgresql at %s: schema version %lld is newer than this "
                             "storage_postgresql supports (%d); upgrade hpfriends",
                             s->where, (long long)*from, PG_SCHEMA_VERSION);
    if (*from < 0)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "postgresql at %s: hpf_meta: schema_version %lld is negative",
                             s->where, (long long)*from);
    for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
        if (steps[i].version <= *from)
            continue;
        char *what = g_strdup_printf("schema step %d (%s)", steps[i].version, steps[i].what);
        status = run_all(s, steps[i].sql, what, err, err_len);
        g_free(what);
        if (status != HPF_OK)
            return status;
    }
    if (*from < PG_SCHEMA_VERSION) {
        char v[16];
        g_snprintf(v, sizeof v, "%d", PG_SCHEMA_VERSION);
        const char *params[] = {v};
        struct pg_fail f;
        if (!pg_run(s,
                    "INSERT INTO hpf_meta (key, value) VALUES ('schema_version', $1) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    1, params, &f))
            return hpf_set_error(err, err_len, f.status,
                                 "postgresql at %s: recording schema_version: %s", s->where, f.msg);
    }
    return ensure_auth_keys(s, err, err_len);
}

int pg_schema_migrate(struct pstore *s, char *err, size_t err_len)
{
    struct pg_fail f;
    if (!pg_begin(s, NULL, &f) ||
        !pg_run(s, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")", 0, NULL, &f)) {
        pg_rollback(s);
        return hpf_set_error(err, err_len, f.status, "postgresql at %s: cannot lock the schema: %s",
                             s->where, f.msg);
    }
    int64_t from = 0;
    int status = migrate_locked(s, &from, err, err_len);
    if (status != HPF_OK) {
        pg_rollback(s);
        return status;
    }
    if (!pg_commit(s, &f))
        return hpf_set_error(err, err_len, f.status, "postgresql at %s: committing the schema: %s",
                             s->where, f.msg);
    if (from == 0)
        PG_LOG(s, HPF_LOG_NOTICE, "postgresql at %s: created schema version %d", s->where,
               PG_SCHEMA_VERSION);
    else if (from < PG_SCHEMA_VERSION)
        PG_LOG(s, HPF_LOG_NOTICE, "postgresql at %s: migrated schema from version %lld to %d",
               s->where, (long long)from, PG_SCHEMA_VERSION);
    return HPF_OK;
}
