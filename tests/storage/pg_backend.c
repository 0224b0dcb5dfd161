/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql in the storage tests; see pg_backend.h.  The server is
 * a real PostgreSQL from Debian that tests/pg/pg-server.sh makes in a
 * temporary directory (as a non-root user when run as root) and removes at
 * the end; when it cannot start, the PostgreSQL suites fail.
 */
#include "pg_backend.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <libpq-fe.h>

#include <CUnit/Basic.h>

#include "store_check.h"

static int pg_port;
static char *pg_dir;
static GHashTable *pg_dbs; /* databases created so far */

static char *script_path(void)
{
    const char *srcdir = g_getenv("HPF_SRCDIR");
    return g_build_filename(srcdir && *srcdir ? srcdir : ".", "tests", "pg", "pg-server.sh", NULL);
}

/* pg-server.sh CMD [ARG]; its stdout (g_free) or NULL when it failed. */
static char *server_script(const char *cmd, const char *arg, const char *arg2)
{
    char *script = script_path();
    char *argv[] = {"/bin/sh", script, (char *)cmd, (char *)arg, (char *)arg2, NULL};
    char *out = NULL, *err = NULL;
    int wait = 0;
    GError *error = NULL;
    gboolean ok =
        g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &wait, &error) &&
        g_spawn_check_wait_status(wait, &error);
    if (!ok) {
        fprintf(stderr, "\n%s %s: %s\n%s", script, cmd, error ? error->message : "failed",
                err ? err : "");
        g_clear_pointer(&out, g_free);
    }
    g_clear_error(&error);
    g_free(err);
    g_free(script);
    return out;
}

int pg_backend_start(void)
{
    if (pg_dir)
        return 0;
    char owner[24];
    g_snprintf(owner, sizeof owner, "%d", (int)getpid());
    char *script = script_path();
    char *argv[] = {"/bin/sh", script, "start", "--tls", "--owner", owner, NULL};
    char *out = NULL, *err = NULL;
    int wait = 0;
    GError *error = NULL;
    gboolean ok =
        g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &wait, &error) &&
        g_spawn_check_wait_status(wait, &error);
    char dir[4096] = "";
    if (ok && (sscanf(out, "ready %d %4095s", &pg_port, dir) != 2 || pg_port <= 0))
        ok = FALSE;
    if (!ok)
        fprintf(stderr, "\nFAIL: cannot start the PostgreSQL test server (%s): %s\n%s%s\n", script,
                error ? error->message : "no 'ready PORT DIR' line", err ? err : "",
                out ? out : "");
    else
        pg_dir = g_strdup(dir);
    g_clear_error(&error);
    g_free(out);
    g_free(err);
    g_free(script);
    pg_dbs = pg_dbs ? pg_dbs : g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return ok ? 0 : -1;
}

void pg_backend_stop(void)
{
    if (pg_dir)
        g_free(server_script("destroy", pg_dir, NULL));
    g_clear_pointer(&pg_dir, g_free);
    g_clear_pointer(&pg_dbs, g_hash_table_unref);
}

static char *db_name(const char *label)
{
    char *db = g_strdup_printf("hpf_%s", label);
    for (char *c = db; *c; c++)
        *c = g_ascii_isalnum(*c) ? g_ascii_tolower(*c) : '_';
    return db;
}

static char *admin_uri(const char *db)
{
    return g_strdup_printf("postgresql://postgres@127.0.0.1:%d/%s", pg_port, db);
}

static PGconn *admin(const char *db)
{
    char *uri = admin_uri(db);
    PGconn *c = PQconnectdb(uri);
    g_free(uri);
    if (PQstatus(c) != CONNECTION_OK)
        fprintf(stderr, "\nconnecting to the test server: %s", PQerrorMessage(c));
    CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_OK);
    return c;
}

/* Run sql (with text params) in the database of label; the result (PQclear) or NULL. */
static PGresult *sql_in(const char *label, const char *sql, int n, const char *const *params)
{
    char *db = db_name(label);
    PGconn *c = admin(db);
    g_free(db);
    /* without parameters, several statements may go at once */
    PGresult *r = n ? PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0) : PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "\n%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        r = NULL;
    }
    PQfinish(c);
    return r;
}

static void sql_do(const char *label, const char *sql)
{
    PGresult *r = sql_in(label, sql, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL(r);
    PQclear(r);
}

/* The rows of a query as text, one line each, columns separated by '|'. */
static char *sql_text(const char *label, const char *sql)
{
    PGresult *r = sql_in(label, sql, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    GString *out = g_string_new(NULL);
    for (int i = 0; i < PQntuples(r); i++) {
        for (int j = 0; j < PQnfields(r); j++)
            g_string_append_printf(out, "%s%s", j ? "|" : "",
                                   PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j));
        g_string_append_c(out, '\n');
    }
    PQclear(r);
    return g_string_free(out, FALSE);
}

char *pg_backend_uri(const char *label)
{
    char *db = db_name(label);
    if (pg_dbs && !g_hash_table_contains(pg_dbs, db)) {
        PGconn *c = admin("postgres");
        char *sql = g_strdup_printf("CREATE DATABASE %s", db);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fprintf(stderr, "\n%s: %s", sql, PQerrorMessage(c));
        CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(c);
        g_free(sql);
        g_hash_table_add(pg_dbs, g_strdup(db));
    }
    char *uri = admin_uri(db);
    g_free(db);
    return uri;
}

void pg_raw_key(const char *label, const char *ident, const char *owner, const char *secret,
                const char *pub)
{
    const char *params[] = {ident, secret, pub};
    PGresult *r = sql_in(label,
                         "INSERT INTO auth_keys (identifier, secret, publish, subscribe) "
                         "VALUES ($1, $2, $3, '[]')",
                         3, params);
    CU_ASSERT_PTR_NOT_NULL(r);
    PQclear(r);
    if (owner) {
        const char *owned[] = {ident, owner};
        r = sql_in(label, "INSERT INTO hpf_key_owners (identifier, owner) VALUES ($1, $2)", 2,
                   owned);
        CU_ASSERT_PTR_NOT_NULL(r);
        PQclear(r);
    }
}

/* ---- storage_postgresql's own cases ---- */

static struct plugin_instance *open_uri(const char *uri, GError **error)
{
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(cfg, "uri", (gpointer)uri);
    struct plugin_instance *pi = load_cfg("postgresql", cfg, g_get_tmp_dir(), error);
    g_hash_table_unref(cfg);
    return pi;
}

static struct plugin_instance *open_label(const char *label)
{
    char *uri = pg_backend_uri(label);
    GError *error = NULL;
    struct plugin_instance *pi = open_uri(uri, &error);
    if (!pi)
        fprintf(stderr, "\nopen %s: %s\n", uri, error->message);
    g_clear_error(&error);
    g_free(uri);
    return pi;
}

/* The table as hpfeeds3's docs make it, with rows as its operators add them. */
static const char hpfeeds3_ddl[] =
    "CREATE SEQUENCE auth_keys_seq;\n"
    "CREATE TABLE auth_keys (\n"
    "  id int NOT NULL DEFAULT NEXTVAL ('auth_keys_seq'),\n"
    "  identifier varchar(36) DEFAULT NULL,\n"
    "  secret varchar(36) DEFAULT NULL,\n"
    "  publish json DEFAULT NULL,\n"
    "  subscribe json DEFAULT NULL,\n"
    "  PRIMARY KEY (id)\n"
    ");\n"
    "INSERT INTO auth_keys (identifier, secret, publish, subscribe) VALUES "
    "('testing', 'secretkey', '[\"channel1\", \"channel2\"]', '[\"channel2\"]'), "
    "('sensor-2', 's2', '[ \"x\" ]', '[]'), "
    "('odd', 'o', '{\"not\": \"a list\"}', NULL), "
    "(NULL, 'n', '[]', '[]')";

static const char hp3_rows[] = "SELECT id, identifier, secret, publish::text, subscribe::text "
                               "FROM auth_keys WHERE id <= 4 ORDER BY id";
static const char hp3_layout[] =
    "SELECT column_name, data_type, character_maximum_length, column_default "
    "FROM information_schema.columns WHERE table_name = 'auth_keys' ORDER BY ordinal_position";
static const char hp3_extras[] =
    "SELECT (SELECT count(*) FROM pg_indexes WHERE tablename = 'auth_keys'), "
    "(SELECT count(*) FROM pg_trigger WHERE tgrelid = 'auth_keys'::regclass), "
    "(SELECT count(*) FROM auth_keys WHERE id > 4)";

static void hp3_writes(struct plugin_instance *pi)
{
    struct hpf_authkey mine = {.ident = "alice-key",
                               .owner = "alice",
                               .secret = "as",
                               .publish = chans_ab,
                               .n_publish = 2};
    const struct hpf_mutation batch[] = {
        {.op = HPF_MUT_USER_ADD, .user = "alice"},
        {.op = HPF_MUT_USER_ADD, .user = "testing"},
        {.op = HPF_MUT_GROUP_ADD, .group = "friends", .user = "alice"},
        {.op = HPF_MUT_MEMBER_ADD, .group = "friends", .user = "testing"},
        {.op = HPF_MUT_SHARE_ADD, .user = "testing", .target = "alice", .channel = "channel1"},
        {.op = HPF_MUT_ACCEPT_ADD, .user = "alice", .target = "testing", .channel = "channel1"},
        {.op = HPF_MUT_AUTHKEY_ADD, .authkey = &mine},
        {.op = HPF_MUT_USER_SET_PASSWORD, .user = "alice", .password = "pbkdf2-sha256$1$s$h"},
    };
    CU_ASSERT_EQUAL(apply(pi, batch, G_N_ELEMENTS(batch)), HPF_OK);
    mine.secret = "as2";
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &mine, .replace = true),
                    HPF_OK);
    const struct hpf_counters c = {.ident = "testing", .published_msgs = 3};
    CU_ASSERT_EQUAL(S(pi)->counters_add(pi->inst, &c, 1), HPF_OK);
    /* hpfeeds3's varchar(36) is the limit there: a clear refusal, nothing written */
    struct hpf_authkey longer = {
        .ident = "a-name-of-forty-characters-0123456789ab", .owner = "alice", .secret = "x"};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &longer), HPF_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "authkey 'a-name-of-forty-characters-0123456789ab'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "too long"));
}

static void test_pg_hpfeeds3_table(void)
{
    char *uri = pg_backend_uri("hp3");
    g_free(uri);
    sql_do("hp3", hpfeeds3_ddl);
    char *rows = sql_text("hp3", hp3_rows), *layout = sql_text("hp3", hp3_layout);
    char *extras = sql_text("hp3", hp3_extras);
    struct plugin_instance *pi = open_label("hp3");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);

    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "testing", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.owner, "testing");
    CU_ASSERT_STRING_EQUAL(g.secret, "secretkey");
    CU_ASSERT_STRING_EQUAL(g.pub, "channel1,channel2");
    CU_ASSERT_STRING_EQUAL(g.sub, "channel2");
    CU_ASSERT_EQUAL(get_key(pi, "odd", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.pub, ""); /* not a list: grants nothing */
    got_clear(&g);
    hp3_writes(pi);
    CU_ASSERT_EQUAL(get_key(pi, "alice-key", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.owner, "alice");
    CU_ASSERT_STRING_EQUAL(g.secret, "as2");
    got_clear(&g);

    /* hpfeeds3's rows, columns, indexes and triggers as they were; our key beside them */
    char *rows2 = sql_text("hp3", hp3_rows), *layout2 = sql_text("hp3", hp3_layout);
    char *extras2 = sql_text("hp3", hp3_extras);
    CU_ASSERT_STRING_EQUAL(rows2, rows);
    CU_ASSERT_STRING_EQUAL(layout2, layout);
    CU_ASSERT_STRING_EQUAL(extras, "1|0|0\n");
    CU_ASSERT_STRING_EQUAL(extras2, "1|0|1\n");
    /* hpfeeds3's own query still reads our key */
    char *hp3 = sql_text("hp3", "SELECT * from auth_keys WHERE identifier = 'alice-key' LIMIT 1");
    CU_ASSERT_PTR_NOT_NULL(strstr(hp3, "|alice-key|as2|[\"a\",\"b\"]|[]\n") ? hp3 : NULL);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_DEL,
                           .authkey = &(struct hpf_authkey){.ident = "alice-key"}),
                    HPF_OK);
    char *rows3 = sql_text("hp3", hp3_rows);
    CU_ASSERT_STRING_EQUAL(rows3, rows);
    g_free(hp3);
    g_free(rows3);
    g_free(rows);
    g_free(rows2);
    g_free(layout);
    g_free(layout2);
    g_free(extras);
    g_free(extras2);
    plugin_instance_free(pi);
}

/* A refused configuration or start: NULL, the message holds `want` and
 * never the password "Pw0rdLeak" some of the URIs carry. */
static void refused(const char *uri, const char *timeout, const char *want)
{
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    if (uri)
        g_hash_table_insert(cfg, "uri", (gpointer)uri);
    if (timeout)
        g_hash_table_insert(cfg, "timeout_ms", (gpointer)timeout);
    GError *error = NULL;
    struct plugin_instance *pi = load_cfg("postgresql", cfg, g_get_tmp_dir(), &error);
    g_hash_table_unref(cfg);
    CU_ASSERT_PTR_NULL(pi);
    if (pi)
        plugin_instance_free(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    if (!strstr(error->message, want))
        fprintf(stderr, "\nerror '%s', expected '%s' in it\n", error->message, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, want));
    CU_ASSERT_PTR_NULL(strstr(error->message, "Pw0rdLeak"));
    g_error_free(error);
}

static void test_pg_config(void)
{
    refused(NULL, NULL, "missing required key 'uri'");
    refused("mysql://127.0.0.1/db", NULL, "not a postgresql:// URI");
    refused("postgresql://127.0.0.1/db?nosuchoption=1", NULL, "uri: ");
    /* libpq quotes the text it could not parse: the password stays out. */
    refused("postgresql://hpf:Pw0rdLeak@[bad/db", NULL, "it may hold a password");
    refused("postgresql://hpf:Pw0rdLeak%zz@127.0.0.1/db", NULL, "invalid percent-encoded token");
    refused("postgresql://127.0.0.1/db", "0", "timeout_ms: '0'");
    gint64 t0 = g_get_monotonic_time();
    refused("postgresql://postgres@127.0.0.1:1/db", NULL,
            "cannot reach postgresql at 127.0.0.1:1/db");
    CU_ASSERT_TRUE(g_get_monotonic_time() - t0 < 5 * G_USEC_PER_SEC);

    /* A schema newer than this build: refused, never downgraded. */
    struct plugin_instance *pi = open_label("newer");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    plugin_instance_free(pi);
    /* A database of schema 2 (before declined offers) opens and gains hpf_declines. */
    sql_do("newer", "DROP TABLE hpf_declines");
    sql_do("newer", "UPDATE hpf_meta SET value = 2 WHERE key = 'schema_version'");
    pi = open_label("newer");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    plugin_instance_free(pi);
    char *v = sql_text("newer", "SELECT value FROM hpf_meta WHERE key = 'schema_version'");
    CU_ASSERT_STRING_EQUAL(v, "3\n");
    g_free(v);
    v = sql_text("newer", "SELECT count(*) FROM hpf_declines");
    CU_ASSERT_STRING_EQUAL(v, "0\n");
    g_free(v);
    sql_do("newer", "UPDATE hpf_meta SET value = 99 WHERE key = 'schema_version'");
    char *uri = pg_backend_uri("newer");
    refused(uri, NULL, "schema version 99 is newer than this storage_postgresql supports");
    g_free(uri);
}

/* sslmode=verify-full against the test server's certificate; a wrong root is refused. */
static void test_pg_tls(void)
{
    char *plain = pg_backend_uri("tls");
    char *uri = g_strdup_printf("%s?sslmode=verify-full&sslrootcert=%s/ca.crt", plain, pg_dir);
    GError *error = NULL;
    struct plugin_instance *pi = open_uri(uri, &error);
    if (!pi)
        fprintf(stderr, "\n%s: %s\n", uri, error->message);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    char *ssl = sql_text("tls", "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a "
                                "USING (pid) WHERE a.application_name = 'hpfriends' AND "
                                "a.datname = 'hpf_tls'");
    CU_ASSERT_STRING_EQUAL(ssl, "t\n");
    g_free(ssl);
    plugin_instance_free(pi);

    /* The server's certificate does not verify against another root. */
    char *wrong = g_strdup_printf("%s?sslmode=verify-full&sslrootcert=%s/other.crt", plain, pg_dir);
    refused(wrong, NULL, "certificate verify failed");
    g_free(wrong);
    g_free(uri);
    g_free(plain);
}

/* Two broker nodes on one database: each sees what the other applied. */
static void test_pg_two_nodes(void)
{
    struct plugin_instance *a = open_label("nodes"), *b = open_label("nodes");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    uint64_t vb = version_of(b);
    CU_ASSERT_EQUAL(APPLY1(a, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    uint64_t vb2 = version_of(b);
    CU_ASSERT_TRUE(vb2 > vb);
    CHECK_SNAPSHOT(b, "user alice");
    CU_ASSERT_EQUAL(APPLY1(b, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_ERR_EXISTS);
    struct hpf_authkey k = {.ident = "k1", .owner = "alice", .secret = "s"};
    CU_ASSERT_EQUAL(APPLY1(b, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &k), HPF_OK);
    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(a, "k1", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.owner, "alice");
    got_clear(&g);
    /* Counters from both nodes add up. */
    const struct hpf_counters c = {.ident = "k1", .published_msgs = 2, .received_bytes = 5};
    CU_ASSERT_EQUAL(S(a)->counters_add(a->inst, &c, 1), HPF_OK);
    CU_ASSERT_EQUAL(S(b)->counters_add(b->inst, &c, 1), HPF_OK);
    struct hpf_counters out;
    CU_ASSERT_EQUAL(S(a)->counters_get(a->inst, "k1", &out), HPF_OK);
    CU_ASSERT_EQUAL(out.published_msgs, 4);
    CU_ASSERT_EQUAL(out.received_bytes, 10);
    plugin_instance_free(a);
    plugin_instance_free(b);
}

#define WITHIN_3S(expr, expected)                                                                 \
    do {                                                                                          \
        gint64 t0_ = g_get_monotonic_time();                                                      \
        int rc_ = (expr);                                                                         \
        gint64 ms_ = (g_get_monotonic_time() - t0_) / 1000;                                       \
        if (rc_ != (expected) || ms_ > 3000)                                                      \
            fprintf(stderr, "\n%s: %s after %" G_GINT64_FORMAT " ms\n", #expr, hpf_strerror(rc_), \
                    ms_);                                                                         \
        CU_ASSERT_EQUAL(rc_, (expected));                                                         \
        CU_ASSERT_TRUE(ms_ <= 3000);                                                              \
    } while (0)

/* Every call fails fast and closed while the server is away. */
static void calls_fail(struct plugin_instance *pi)
{
    uint64_t v;
    struct got g = {0};
    struct hpf_counters out;
    const struct hpf_counters c = {.ident = "a1", .published_msgs = 1};
    WITHIN_3S(S(pi)->version(pi->inst, &v), HPF_ERR_UNAVAILABLE);
    WITHIN_3S(get_key(pi, "a1", &g), HPF_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(g.calls, 0);
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    WITHIN_3S(S(pi)->snapshot(pi->inst, &visitor, lines), HPF_ERR_UNAVAILABLE);
    g_ptr_array_unref(lines);
    WITHIN_3S(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "bob"), HPF_ERR_UNAVAILABLE);
    WITHIN_3S(S(pi)->counters_add(pi->inst, &c, 1), HPF_ERR_UNAVAILABLE);
    WITHIN_3S(S(pi)->counters_get(pi->inst, "a1", &out), HPF_ERR_UNAVAILABLE);
}

/*
 * The server process serving our connection stops answering (SIGSTOP, as a
 * hung host would look): the call fails within timeout_ms, and the next one
 * gets a fresh connection.
 */
static void test_pg_hung_backend(void)
{
    char *plain = pg_backend_uri("hung");
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(cfg, "uri", plain);
    g_hash_table_insert(cfg, "timeout_ms", "500");
    GError *error = NULL;
    struct plugin_instance *pi = load_cfg("postgresql", cfg, g_get_tmp_dir(), &error);
    g_hash_table_unref(cfg);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    char *pids = sql_text("hung", "SELECT pid FROM pg_stat_activity WHERE "
                                  "application_name = 'hpfriends' AND datname = 'hpf_hung'");
    int pid = atoi(pids);
    CU_ASSERT_TRUE_FATAL(pid > 0 && strchr(pids, '\n') == pids + strlen(pids) - 1);
    CU_ASSERT_EQUAL(kill(pid, SIGSTOP), 0);
    uint64_t v;
    gint64 t0 = g_get_monotonic_time();
    int rc = S(pi)->version(pi->inst, &v);
    gint64 ms = (g_get_monotonic_time() - t0) / 1000;
    kill(pid, SIGCONT);
    CU_ASSERT_EQUAL(rc, HPF_ERR_UNAVAILABLE);
    CU_ASSERT_TRUE(ms >= 400 && ms < 3000);
    CU_ASSERT_EQUAL(S(pi)->version(pi->inst, &v), HPF_OK);
    CHECK_SNAPSHOT(pi, "user alice");
    g_free(pids);
    g_free(plain);
    plugin_instance_free(pi);
}

/* Runs last: the server stops, and comes back with its data. */
static void test_pg_outage(void)
{
    struct plugin_instance *pi = open_label("outage");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    struct hpf_authkey k = {.ident = "a1", .owner = "alice", .secret = "s"};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &k), HPF_OK);

    char *out = server_script("stop", pg_dir, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    g_free(out);
    /* Twice: the first meets the closed connection, the next a refused one. */
    calls_fail(pi);
    calls_fail(pi);

    out = server_script("resume", pg_dir, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    g_free(out);
    uint64_t v;
    int rc = HPF_ERR_UNAVAILABLE;
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (rc != HPF_OK && g_get_monotonic_time() < deadline) {
        rc = S(pi)->version(pi->inst, &v);
        if (rc != HPF_OK)
            g_usleep(100000);
    }
    CU_ASSERT_EQUAL(rc, HPF_OK);
    CHECK_SNAPSHOT(pi, "authkey a1 owner=alice secret=s pub= sub=\n"
                       "user alice");
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "bob"), HPF_OK);
    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "a1", &g), HPF_OK);
    got_clear(&g);
    plugin_instance_free(pi);
}

const struct pg_case pg_cases[] = {
    {"hpfeeds3's auth_keys read, never rewritten", test_pg_hpfeeds3_table},
    {"config keys, unreachable server, newer schema", test_pg_config},
    {"TLS: verify-full; a wrong root refused", test_pg_tls},
    {"two nodes on one database", test_pg_two_nodes},
    {"a hung server process: UNAVAILABLE within timeout_ms", test_pg_hung_backend},
    {"server down: fast UNAVAILABLE; back: recovers", test_pg_outage},
};
const size_t pg_n_cases = G_N_ELEMENTS(pg_cases);
