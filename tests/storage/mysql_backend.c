/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql under the storage conformance suite, and its own cases: an
 * hpfeeds3 auth_keys table read and left as it was, the uri key and its
 * errors, TLS to the server, and an outage with recovery.  The server is a
 * real MariaDB from Debian, started into a temporary directory by
 * tests/mysql/mysql-server.sh (found through $HPF_SRCDIR); when it cannot
 * start, the suites fail.
 */
#include "mysql_backend.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <hpfriends/names.h>
#include <mysql.h>

#include "store_check.h"

/* The test users' password, as the script sets it, and %-escaped for a URI. */
#define PASSWORD     "hpf:t@st/pw%1"
#define PASSWORD_URI "hpf%3At%40st%2Fpw%251"

static char *server_dir;
static int server_port;

static char *script_path(void)
{
    const char *srcdir = g_getenv("HPF_SRCDIR");
    return g_build_filename(srcdir && *srcdir ? srcdir : ".", "tests", "mysql", "mysql-server.sh",
                            NULL);
}

/* Runs the script; its stdout (g_free) or NULL with the reason printed. */
static char *run_script(const char *cmd, int port)
{
    char *script = script_path();
    char port_text[16], pid_text[16];
    g_snprintf(port_text, sizeof port_text, "%d", port);
    g_snprintf(pid_text, sizeof pid_text, "%d", (int)getpid());
    char *argv[] = {"/bin/sh", script, (char *)cmd, server_dir, port_text, pid_text, NULL};
    char *out = NULL, *errout = NULL;
    int wait_status = 0;
    GError *error = NULL;
    gboolean ok = g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &errout,
                               &wait_status, &error) &&
                  g_spawn_check_wait_status(wait_status, &error);
    if (!ok) {
        fprintf(stderr, "\nFAIL: %s %s: %s\n%s\n", script, cmd, error->message,
                errout ? errout : "");
        g_error_free(error);
        g_clear_pointer(&out, g_free);
    }
    g_free(errout);
    g_free(script);
    return out;
}

static gboolean server_up(int port)
{
    char *out = run_script("start", port);
    int got = 0;
    if (out && sscanf(out, "ready %d", &got) == 1 && got > 0)
        server_port = got;
    else if (out)
        fprintf(stderr, "\nFAIL: mysql-server.sh start said: %s\n", out);
    g_free(out);
    return got > 0;
}

int mysql_backend_start(void)
{
    if (server_port > 0)
        return 0;
    if (!server_dir)
        server_dir = g_dir_make_tmp("hpf-mysql-XXXXXX", NULL);
    if (!server_dir || !server_up(0)) {
        fprintf(stderr, "\nFAIL: cannot start the MariaDB test server\n");
        return -1;
    }
    return 0;
}

void mysql_backend_stop(void)
{
    if (!server_dir)
        return;
    g_free(run_script("stop", 0));
    rm_tree(server_dir);
    g_clear_pointer(&server_dir, g_free);
    server_port = 0;
}

static char *db_name(const char *label)
{
    char *db = g_strdup_printf("hpf_%s", label);
    for (char *c = db; *c; c++)
        if (!g_ascii_isalnum(*c))
            *c = '_';
    return db;
}

/* A connection of the test user, to db (NULL: none). */
static MYSQL *raw_conn(const char *db, const char *user)
{
    MYSQL *m = mysql_init(NULL);
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(m, "127.0.0.1", user, PASSWORD, db, (unsigned)server_port, NULL, 0)) {
        fprintf(stderr, "\nraw connection to %s: %s\n", db ? db : "(none)", mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

/* One statement with string parameters (NULL: SQL NULL); TRUE when it ran. */
static gboolean raw_exec(const char *db, const char *sql, const char *const *params, unsigned n)
{
    MYSQL *m = raw_conn(db, "hpftest");
    if (!m)
        return FALSE;
    MYSQL_STMT *st = mysql_stmt_init(m);
    MYSQL_BIND b[8];
    unsigned long len[8];
    memset(b, 0, sizeof b);
    for (unsigned i = 0; i < n && i < 8; i++) {
        len[i] = params[i] ? (unsigned long)strlen(params[i]) : 0;
        b[i].buffer_type = params[i] ? MYSQL_TYPE_STRING : MYSQL_TYPE_NULL;
        b[i].buffer = (void *)params[i];
        b[i].buffer_length = len[i];
        b[i].length = &len[i];
    }
    gboolean ok = mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) == 0 &&
                  (n == 0 || mysql_stmt_bind_param(st, b) == 0) && mysql_stmt_execute(st) == 0;
    if (!ok)
        fprintf(stderr, "\n%s: %s\n", sql, mysql_stmt_error(st));
    mysql_stmt_close(st);
    mysql_close(m);
    return ok;
}

/* Every row of a query as "a|b|c" lines (NULL as \N). */
static char *raw_rows(const char *db, const char *sql)
{
    MYSQL *m = raw_conn(db, "hpftest");
    if (!m)
        return g_strdup("(no connection)");
    GString *out = g_string_new(NULL);
    if (mysql_real_query(m, sql, (unsigned long)strlen(sql)) == 0) {
        MYSQL_RES *res = mysql_store_result(m);
        MYSQL_ROW row;
        unsigned nf = res ? mysql_num_fields(res) : 0;
        while (res && (row = mysql_fetch_row(res))) {
            for (unsigned i = 0; i < nf; i++)
                g_string_append_printf(out, "%s%s", i ? "|" : "", row[i] ? row[i] : "\\N");
            g_string_append_c(out, '\n');
        }
        if (res)
            mysql_free_result(res);
    } else {
        g_string_append_printf(out, "(error: %s)", mysql_error(m));
    }
    mysql_close(m);
    return g_string_free(out, FALSE);
}

static void ensure_db(const char *db)
{
    char *sql = g_strdup_printf("CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4", db);
    CU_ASSERT_TRUE(raw_exec(NULL, sql, NULL, 0));
    g_free(sql);
}

static char *uri_for(const char *user, const char *db, const char *options)
{
    return g_strdup_printf("mysql://%s:%s@127.0.0.1:%d/%s%s%s", user, PASSWORD_URI, server_port, db,
                           options ? "?" : "", options ? options : "");
}

GHashTable *mysql_backend_config(const char *label)
{
    GHashTable *cfg = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    char *db = db_name(label);
    ensure_db(db);
    g_hash_table_insert(cfg, g_strdup("uri"), uri_for("hpftest", db, NULL));
    g_free(db);
    return cfg;
}

void mysql_raw_key(const char *label, const char *ident, const char *owner, const char *secret,
                   const char *pub)
{
    char *db = db_name(label);
    const char *p[] = {ident, secret, pub};
    CU_ASSERT_TRUE(raw_exec(db,
                            "INSERT INTO auth_keys (identifier, secret, publish, subscribe) "
                            "VALUES (?, ?, ?, '[]')",
                            p, 3));
    if (owner) {
        const char *o[] = {ident, owner};
        CU_ASSERT_TRUE(
            raw_exec(db, "INSERT INTO hpf_key_owners (identifier, owner) VALUES (?, ?)", o, 2));
    }
    g_free(db);
}

static struct plugin_instance *open_cfg(GHashTable *cfg, GError **error)
{
    char *dir = g_dir_make_tmp("hpf-mysql-cfg-XXXXXX", NULL);
    struct plugin_instance *pi = load_cfg("mysql", cfg, dir, error);
    rm_tree(dir);
    g_free(dir);
    return pi;
}

static struct plugin_instance *open_uri(const char *uri, GError **error)
{
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(cfg, "uri", (gpointer)uri);
    struct plugin_instance *pi = open_cfg(cfg, error);
    g_hash_table_unref(cfg);
    return pi;
}

/* ---- an hpfeeds3 auth_keys table ---- */

/* As an operator following hpfeeds3 makes it: the server's default collation, ids first. */
static const char hp3_table[] =
    "CREATE TABLE auth_keys (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY, "
    "identifier VARCHAR(64), secret VARCHAR(64), publish TEXT, subscribe TEXT) "
    "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci";

/* auth_keys as SHOW CREATE TABLE has it, less the next AUTO_INCREMENT value (a key added
 * and deleted moves it on). */
static char *table_definition(const char *db)
{
    char *def = raw_rows(db, "SHOW CREATE TABLE auth_keys");
    GRegex *re = g_regex_new(" AUTO_INCREMENT=[0-9]+", 0, 0, NULL);
    char *out = g_regex_replace_literal(re, def, -1, 0, "", 0, NULL);
    g_regex_unref(re);
    g_free(def);
    return out;
}

static void test_mysql_hpfeeds3_table(void)
{
    const char *db = "hpf_hp3";
    ensure_db(db);
    CU_ASSERT_TRUE_FATAL(raw_exec(db, hp3_table, NULL, 0));
    const char *r1[] = {"sensor1", "s1", "[\"dionaea.captures\"]", "[]"};
    const char *r2[] = {"Reader", "r", "[]", "[\"dionaea.captures\", \"cowrie.sessions\"]"};
    const char *ins = "INSERT INTO auth_keys (identifier, secret, publish, subscribe) "
                      "VALUES (?, ?, ?, ?)";
    CU_ASSERT_TRUE(raw_exec(db, ins, r1, 4));
    CU_ASSERT_TRUE(raw_exec(db, ins, r2, 4));
    char *rows_before = raw_rows(db, "SELECT * FROM auth_keys ORDER BY id");
    char *def_before = table_definition(db);

    char *uri = uri_for("hpftest", db, NULL);
    GError *error = NULL;
    struct plugin_instance *pi = open_uri(uri, &error);
    if (!pi)
        fprintf(stderr, "\nopen: %s\n", error->message);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "sensor1", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.owner, "sensor1");
    CU_ASSERT_STRING_EQUAL(g.secret, "s1");
    CU_ASSERT_STRING_EQUAL(g.pub, "dionaea.captures");
    got_clear(&g);
    /* The column compares without case; an ident does not. */
    CU_ASSERT_EQUAL(get_key(pi, "SENSOR1", &g), HPF_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(get_key(pi, "reader", &g), HPF_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(get_key(pi, "Reader", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.sub, "dionaea.captures,cowrie.sessions");
    got_clear(&g);

    /* Our writes: beside the table, and keys of ours in hpfeeds3's shape. */
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    struct hpf_authkey k = {
        .ident = "a1", .owner = "alice", .secret = "sa", .publish = chans_c, .n_publish = 1};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &k), HPF_OK);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "bob"), HPF_OK);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_SHARE_ADD, .user = "alice", .target = "bob",
                           .channel = "c", .share_type = HPF_SHARE_SHARES),
                    HPF_OK);
    char *ours = raw_rows(db, "SELECT identifier, secret, publish, subscribe FROM auth_keys "
                              "WHERE identifier = 'a1'");
    CU_ASSERT_STRING_EQUAL(ours, "a1|sa|[\"c\"]|[]\n");
    g_free(ours);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_DEL, .authkey = &k), HPF_OK);
    CHECK_SNAPSHOT(pi, "authkey Reader owner=Reader secret=r pub= sub=dionaea.captures,"
                       "cowrie.sessions\n"
                       "authkey sensor1 owner=sensor1 secret=s1 pub=dionaea.captures sub=\n"
                       "share alice user:bob c shares\n"
                       "user alice\n"
                       "user bob");
    plugin_instance_free(pi);

    char *rows_after = raw_rows(db, "SELECT * FROM auth_keys ORDER BY id");
    char *def_after = table_definition(db);
    CU_ASSERT_STRING_EQUAL(rows_after, rows_before);
    CU_ASSERT_STRING_EQUAL(def_after, def_before);
    char *tables = raw_rows(db, "SHOW TABLES");
    CU_ASSERT_PTR_NOT_NULL(strstr(tables, "hpf_users\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(tables, "hpf_meta\n"));
    g_free(tables);
    g_free(rows_before);
    g_free(rows_after);
    g_free(def_before);
    g_free(def_after);
    g_free(uri);
}

/* ---- config ---- */

static void expect_refused(const char *uri, const char *needle)
{
    GError *error = NULL;
    struct plugin_instance *pi = open_uri(uri, &error);
    CU_ASSERT_PTR_NULL(pi);
    if (pi)
        plugin_instance_free(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    if (!strstr(error->message, needle))
        fprintf(stderr, "\n%s: '%s' lacks '%s'\n", uri, error->message, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, needle));
    /* A password never appears in an error. */
    CU_ASSERT_PTR_NULL(strstr(error->message, "t@st"));
    CU_ASSERT_PTR_NULL(strstr(error->message, PASSWORD_URI));
    g_error_free(error);
}

static void test_mysql_config(void)
{
    GError *error = NULL;
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    CU_ASSERT_PTR_NULL(open_cfg(cfg, &error));
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "'uri'"));
    g_clear_error(&error);
    g_hash_table_insert(cfg, "uri", "mysql://u:p@127.0.0.1/db");
    g_hash_table_insert(cfg, "timeout_ms", "0");
    CU_ASSERT_PTR_NULL(open_cfg(cfg, &error));
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "timeout_ms"));
    g_clear_error(&error);
    g_hash_table_unref(cfg);

    expect_refused("postgresql://u:p@127.0.0.1/db", "want mysql://");
    expect_refused("mysql://u:p@127.0.0.1:3306", "no database name");
    expect_refused("mysql://127.0.0.1:3306/db", "no user");
    expect_refused("mysql://u:p@127.0.0.1/a/b", "one name");
    expect_refused("mysql://u:" PASSWORD_URI "@127.0.0.1/db?ssl_mod=required", "'ssl_mod'");
    expect_refused("mysql://u:p@127.0.0.1/db?ssl_mode=preferred", "ssl_mode=preferred");
    expect_refused("mysql://u:p@127.0.0.1/db?tls=maybe", "tls=maybe");
    expect_refused("mysql://u:p@127.0.0.1/db?ssl_mode=disabled&ssl_ca=/x", "TLS disabled");
    expect_refused("mysql://u:p%zz@127.0.0.1/db", "not a valid");
    expect_refused("mysql://u:p%00x@127.0.0.1/db", "not a valid");
    expect_refused("mysql://u:p@127.0.0.1:99999/db", "not a valid");
    expect_refused("mysql://u:p@127.0.0.1/db?tls=true&tls=false", "tls once");
    expect_refused("mysql://u:p@127.0.0.1/db?ssl_ca=/a&ssl_ca=/b", "ssl_ca given twice");

    expect_refused("mysql+pymysql://u:p@127.0.0.1/db?charset=latin1", "charset=latin1");
    expect_refused("mysqlx://u:p@127.0.0.1/db", "want mysql://");
    expect_refused("mysql://u:p@127.0.0.1/db?max_size=ten", "max_size=ten");
    expect_refused("mysql://u:p@127.0.0.1/db?ssl=maybe", "ssl=): want true or false");

    /* A wrong password, and nothing listening: start() fails fast, naming the server. */
    char *db = db_name("config");
    ensure_db(db);
    char *bad = g_strdup_printf("mysql://hpftest:wrong%%40pw@127.0.0.1:%d/%s", server_port, db);
    char *where = g_strdup_printf("cannot reach mysql at 127.0.0.1:%d/%s", server_port, db);
    expect_refused(bad, where);
    expect_refused(bad, "Access denied");
    g_free(bad);
    g_free(where);
    gint64 t0 = g_get_monotonic_time();
    expect_refused("mysql://u:p@127.0.0.1:1/db", "cannot reach mysql at 127.0.0.1:1/db");
    CU_ASSERT_TRUE(g_get_monotonic_time() - t0 < 4 * G_USEC_PER_SEC);

    /* The escaped password works; a schema newer than this build is refused. */
    char *uri = uri_for("hpftest", db, NULL);
    struct plugin_instance *pi = open_uri(uri, &error);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    plugin_instance_free(pi);
    /* The table we create is read by hpfeeds3 with SELECT * and positions 1 to 4. */
    char *cols = raw_rows(db, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                              "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'auth_keys' "
                              "ORDER BY ORDINAL_POSITION");
    CU_ASSERT_STRING_EQUAL(cols, "id\nidentifier\nsecret\npublish\nsubscribe\n");
    g_free(cols);
    /* As a Python database URL spells it: the driver and pool options are accepted. */
    char *py = g_strdup_printf("mysql+aiomysql://hpftest:%s@127.0.0.1:%d/%s?charset=utf8mb4&"
                               "min_size=1&max_size=10&ssl=false",
                               PASSWORD_URI, server_port, db);
    pi = open_uri(py, &error);
    if (!pi)
        fprintf(stderr, "\n%s: %s\n", py, error->message);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL(pi);
    if (pi)
        plugin_instance_free(pi);
    g_free(py);
    char *version = raw_rows(db, "SELECT value FROM hpf_meta WHERE name = 'schema_version'");
    CU_ASSERT_STRING_EQUAL(version, "3\n");
    g_free(version);
    /* A database of schema 2 (before declined offers) opens and gains hpf_declines. */
    CU_ASSERT_TRUE(raw_exec(db, "DROP TABLE hpf_declines", NULL, 0));
    CU_ASSERT_TRUE(
        raw_exec(db, "UPDATE hpf_meta SET value = 2 WHERE name = 'schema_version'", NULL, 0));
    pi = open_uri(uri, &error);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    plugin_instance_free(pi);
    version = raw_rows(db, "SELECT value FROM hpf_meta WHERE name = 'schema_version'");
    CU_ASSERT_STRING_EQUAL(version, "3\n");
    g_free(version);
    version = raw_rows(db, "SELECT count(*) FROM hpf_declines");
    CU_ASSERT_STRING_EQUAL(version, "0\n");
    g_free(version);
    CU_ASSERT_TRUE(
        raw_exec(db, "UPDATE hpf_meta SET value = 99 WHERE name = 'schema_version'", NULL, 0));
    expect_refused(uri, "schema version 99 is newer");
    g_free(uri);
    g_free(db);
}

/* ---- TLS ---- */

static void test_mysql_tls(void)
{
    char *db = db_name("tls");
    ensure_db(db);
    char *ca = g_build_filename(server_dir, "ca.pem", NULL);
    char *wrong_ca = g_build_filename(server_dir, "server.pem", NULL);
    char *opts = g_strdup_printf("ssl_ca=%s", ca);
    /* hpftls is REQUIRE SSL: it gets in only over TLS. */
    char *uri = uri_for("hpftls", db, opts);
    GError *error = NULL;
    struct plugin_instance *pi = open_uri(uri, &error);
    if (!pi)
        fprintf(stderr, "\ntls: %s\n", error->message);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    CHECK_SNAPSHOT(pi, "user alice");
    plugin_instance_free(pi);
    g_free(uri);

    uri = uri_for("hpftls", db, "ssl_mode=required");
    pi = open_uri(uri, &error);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL(pi);
    if (pi)
        plugin_instance_free(pi);
    g_free(uri);

    uri = uri_for("hpftls", db, NULL);
    expect_refused(uri, "Access denied");
    g_free(uri);

    /* Verification without a CA file uses the system's trust store, which lacks the test CA. */
    uri = uri_for("hpftest", db, "tls=true");
    expect_refused(uri, "cannot reach mysql at");
    g_free(uri);

    /* A certificate that does not chain to the CA given: refused, not downgraded. */
    g_free(opts);
    opts = g_strdup_printf("ssl_mode=verify_identity&ssl_ca=%s", wrong_ca);
    uri = uri_for("hpftest", db, opts);
    expect_refused(uri, "cannot reach mysql at");
    g_free(uri);
    g_free(opts);
    g_free(ca);
    g_free(wrong_ca);
    g_free(db);
}

/* ---- outage ---- */

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

static void all_unavailable(struct plugin_instance *pi)
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

/* Runs last: the server is killed and started again on the same port and data. */
static void test_mysql_outage(void)
{
    GHashTable *cfg = mysql_backend_config("outage");
    GError *error = NULL;
    struct plugin_instance *pi = open_cfg(cfg, &error);
    g_clear_error(&error);
    g_hash_table_unref(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    struct hpf_authkey k = {.ident = "a1", .owner = "alice", .secret = "s"};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &k), HPF_OK);

    g_free(run_script("kill", 0));
    /* Twice: the first call meets the dropped connection, the next a refused one. */
    all_unavailable(pi);
    all_unavailable(pi);

    int port = server_port;
    server_port = 0;
    CU_ASSERT_TRUE_FATAL(server_up(port));
    CU_ASSERT_EQUAL(server_port, port);
    uint64_t v;
    int rc = HPF_ERR_UNAVAILABLE;
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (rc != HPF_OK && g_get_monotonic_time() < deadline) {
        rc = S(pi)->version(pi->inst, &v);
        if (rc != HPF_OK)
            g_usleep(100000);
    }
    CU_ASSERT_EQUAL(rc, HPF_OK);
    /* The same instance recovers by itself, and nothing of the failed calls was written. */
    CHECK_SNAPSHOT(pi, "authkey a1 owner=alice secret=s pub= sub=\nuser alice");
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "bob"), HPF_OK);
    mysql_raw_key("outage", "hp3", NULL, "m", "[\"c\"]");
    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "hp3", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.pub, "c");
    got_clear(&g);
    const struct hpf_counters c = {.ident = "a1", .published_msgs = 1};
    struct hpf_counters out;
    CU_ASSERT_EQUAL(S(pi)->counters_add(pi->inst, &c, 1), HPF_OK);
    CU_ASSERT_EQUAL(S(pi)->counters_get(pi->inst, "a1", &out), HPF_OK);
    CU_ASSERT_EQUAL(out.published_msgs, 1);
    plugin_instance_free(pi);
}

/* ---- a key at the bounds ---- */

/* HPF_KEY_CHANNELS_MAX channels of 255 bytes each: about 1 MB of JSON per list. */
static void test_mysql_big_key(void)
{
    GHashTable *cfg = mysql_backend_config("bigkey");
    GError *error = NULL;
    struct plugin_instance *pi = open_cfg(cfg, &error);
    g_clear_error(&error);
    g_hash_table_unref(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "big"), HPF_OK);
    GPtrArray *chans = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < HPF_KEY_CHANNELS_MAX; i++) {
        char *c = g_strnfill(255, 'c');
        g_snprintf(c, 8, "%07d", i);
        c[7] = 'c';
        g_ptr_array_add(chans, c);
    }
    struct hpf_authkey k = {.ident = "big",
                            .secret = "s",
                            .publish = (const char *const *)chans->pdata,
                            .n_publish = chans->len,
                            .subscribe = (const char *const *)chans->pdata,
                            .n_subscribe = chans->len};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &k), HPF_OK);
    if (errbuf[0])
        fprintf(stderr, "\nbig key: %s\n", errbuf);
    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "big", &g), HPF_OK);
    char *want = join((const char *const *)chans->pdata, chans->len);
    CU_ASSERT_TRUE(g.pub && !strcmp(g.pub, want));
    CU_ASSERT_TRUE(g.sub && !strcmp(g.sub, want));
    g_free(want);
    got_clear(&g);
    g_ptr_array_unref(chans);
    plugin_instance_free(pi);
}

/* ---- two writers at once (two nodes, or a node and hpfriendsctl) ---- */

#define WRITES 40

struct writer {
    struct plugin_instance *pi;
    const char *prefix;
    int ok;
};

static gpointer write_users(gpointer data)
{
    struct writer *w = data;
    for (int i = 0; i < WRITES; i++) {
        char name[32];
        g_snprintf(name, sizeof name, "%s%02d", w->prefix, i);
        char err[256];
        struct hpf_mutation m = {.op = HPF_MUT_USER_ADD, .user = name};
        if (S(w->pi)->apply(w->pi->inst, &m, 1, err, sizeof err) == HPF_OK)
            w->ok++;
        else
            fprintf(stderr, "\nwriter %s: %s\n", w->prefix, err);
    }
    return NULL;
}

static void test_mysql_concurrent_writers(void)
{
    struct writer w[2] = {{.prefix = "a"}, {.prefix = "b"}};
    for (int i = 0; i < 2; i++) {
        GHashTable *cfg = mysql_backend_config("writers");
        GError *error = NULL;
        w[i].pi = open_cfg(cfg, &error);
        g_clear_error(&error);
        g_hash_table_unref(cfg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w[i].pi);
    }
    uint64_t v0 = version_of(w[1].pi);
    GThread *t = g_thread_new("writer", write_users, &w[0]);
    write_users(&w[1]);
    g_thread_join(t);
    CU_ASSERT_EQUAL(w[0].ok, WRITES);
    CU_ASSERT_EQUAL(w[1].ok, WRITES);
    /* Every batch of both landed, and the other instance sees that something changed. */
    char *snap = snapshot_with(w[0].pi, &visitor);
    gchar **lines = g_strsplit(snap, "\n", -1);
    CU_ASSERT_EQUAL(g_strv_length(lines), 2 * WRITES);
    g_strfreev(lines);
    g_free(snap);
    CU_ASSERT_NOT_EQUAL(version_of(w[1].pi), v0);
    char *db = db_name("writers");
    char *dv = raw_rows(db, "SELECT value FROM hpf_meta WHERE name = 'data_version'");
    CU_ASSERT_EQUAL(g_ascii_strtoll(dv, NULL, 10), 1 + 2 * WRITES);
    g_free(dv);
    g_free(db);
    plugin_instance_free(w[0].pi);
    plugin_instance_free(w[1].pi);
}

const struct mysql_case mysql_cases[] = {
    {"hpfeeds3 auth_keys table read, left unchanged", test_mysql_hpfeeds3_table},
    {"uri and config errors, password escapes, schema version", test_mysql_config},
    {"TLS to the server", test_mysql_tls},
    {"a key with the most channels, each of the longest name", test_mysql_big_key},
    {"two writers at once: every batch lands, one at a time", test_mysql_concurrent_writers},
    {"server down: fast UNAVAILABLE; back: recovers", test_mysql_outage},
};
const size_t mysql_n_cases = G_N_ELEMENTS(mysql_cases);
