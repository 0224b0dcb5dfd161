/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_sqlite through the real loader, on real SQLite files in a
 * temporary directory.  A second, plain sqlite3 connection plays the other
 * processes: an hpfeeds3 database made with hpfeeds3's own DDL, a script
 * inserting authkeys behind the broker's back, hpfriendsctl holding the
 * write lock.
 *
 * Only what is SQLite's own is here: the schema, hpfeeds3 databases, rows
 * as other writers leave them, locking and concurrency.  The storage
 * contract every backend shares (mutations and their errors, rollback,
 * snapshot, version, counters) is tests/storage/test_backends.c, which runs
 * it against this plugin too.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include <CUnit/Basic.h>

#include "log.h"
#include "loader.h"
#include "store_check.h"

static char *tmpdir;

/* ---- plumbing ---- */

static int suite_init(void)
{
    tmpdir = g_dir_make_tmp("hpf-sqlite-XXXXXX", NULL);
    return tmpdir ? 0 : -1;
}

static int suite_cleanup(void)
{
    rm_tree(tmpdir);
    g_free(tmpdir);
    tmpdir = NULL;
    return 0;
}

/* `db` is relative: the plugin resolves it against the config directory. */
static struct plugin_instance *load_store(const char *db, const char *key, const char *value,
                                          GError **error)
{
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    if (db)
        g_hash_table_insert(cfg, (gpointer) "path", (gpointer)db);
    if (key)
        g_hash_table_insert(cfg, (gpointer)key, (gpointer)value);
    struct plugin_instance *pi = load_cfg("sqlite", cfg, tmpdir, error);
    g_hash_table_unref(cfg);
    return pi;
}

static struct plugin_instance *open_store_with(const char *db, const char *key, const char *value)
{
    GError *error = NULL;
    struct plugin_instance *pi = load_store(db, key, value, &error);
    if (!pi) {
        fprintf(stderr, "open %s: %s\n", db, error->message);
        g_error_free(error);
    }
    return pi;
}

static struct plugin_instance *open_store(const char *db)
{
    return open_store_with(db, NULL, NULL);
}

static sqlite3 *raw_open(const char *db)
{
    char *path = g_build_filename(tmpdir, db, NULL);
    sqlite3 *h = NULL;
    int rc = sqlite3_open(path, &h);
    g_free(path);
    CU_ASSERT_EQUAL(rc, SQLITE_OK);
    sqlite3_busy_timeout(h, 2000);
    return h;
}

static void raw_exec(sqlite3 *h, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "raw sql failed: %s\n", msg);
    sqlite3_free(msg);
    CU_ASSERT_EQUAL(rc, SQLITE_OK);
}

static sqlite3_int64 raw_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    sqlite3_int64 v = -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *raw_text(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = g_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

static gboolean raw_has(sqlite3 *h, const char *type, const char *name)
{
    sqlite3_stmt *st = NULL;
    gboolean found = FALSE;
    if (sqlite3_prepare_v2(h, "SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

/* hpfeeds3's DDL, as its sqlite authenticator runs it on a new file. */
static void make_hpfeeds3_db(sqlite3 *h)
{
    raw_exec(h, "create table logs (id integer primary key autoincrement,\n"
                "    data TEXT)");
    raw_exec(h, "create table stats (id integer primary key autoincrement,\n"
                "    ak TEXT, uid TEXT, data TEXT)");
    raw_exec(h, "create table authkeys (id integer primary key autoincrement,\n"
                "    owner TEXT, ident TEXT, secret TEXT,\n"
                "    pubchans TEXT, subchans TEXT)");
}

/* ---- tests ---- */

static void test_fresh_database(void)
{
    struct plugin_instance *pi = open_store("fresh.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    char *path = g_build_filename(tmpdir, "fresh.db", NULL);
    CU_ASSERT_TRUE(g_file_test(path, G_FILE_TEST_IS_REGULAR));
    g_free(path);

    sqlite3 *h = raw_open("fresh.db");
    static const char *const tables[] = {"authkeys",    "logs",         "stats",       "hpf_meta",
                                         "hpf_users",   "hpf_groups",   "hpf_members", "hpf_shares",
                                         "hpf_accepts", "hpf_counters", "hpf_audit"};
    for (size_t i = 0; i < G_N_ELEMENTS(tables); i++)
        CU_ASSERT_TRUE(raw_has(h, "table", tables[i]));
    CU_ASSERT_TRUE(raw_has(h, "index", "hpf_authkeys_ident_unique"));
    CU_ASSERT_TRUE(raw_has(h, "trigger", "hpf_bump_authkeys_INSERT"));
    CU_ASSERT_EQUAL(raw_int(h, "SELECT value FROM hpf_meta WHERE key = 'schema_version'"), 4);
    char *mode = raw_text(h, "PRAGMA journal_mode");
    CU_ASSERT_STRING_EQUAL(mode, "wal");
    g_free(mode);
    sqlite3_close(h);

    uint64_t v = version_of(pi);
    CU_ASSERT_TRUE(v > 0);
    CHECK_SNAPSHOT(pi, "");
    plugin_instance_free(pi);

    /* A second start on the same file is a no-op migration. */
    pi = open_store("fresh.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(version_of(pi), v);
    plugin_instance_free(pi);
}

/* A database of the release before the audit trail (schema 2) gains it, data kept. */
static void test_migrate_audit(void)
{
    struct plugin_instance *pi = open_store("v2.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    plugin_instance_free(pi);
    sqlite3 *h = raw_open("v2.db");
    raw_exec(h, "DROP TABLE hpf_audit");
    raw_exec(h, "DROP TABLE hpf_declines"); /* schema 2 had neither */
    raw_exec(h, "UPDATE hpf_meta SET value = 2 WHERE key = 'schema_version'");
    sqlite3_close(h);

    pi = open_store("v2.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    h = raw_open("v2.db");
    CU_ASSERT_EQUAL(raw_int(h, "SELECT value FROM hpf_meta WHERE key = 'schema_version'"), 4);
    CU_ASSERT_TRUE(raw_has(h, "table", "hpf_audit"));
    CU_ASSERT_TRUE(raw_has(h, "index", "hpf_audit_subject"));
    sqlite3_close(h);
    CHECK_SNAPSHOT(pi, "user alice");
    const struct hpf_mutation m[] = {
        {.op = HPF_MUT_USER_ADD, .user = "bob"},
        {.op = HPF_MUT_AUDIT,
         .audit =
             &(struct hpf_audit_record){
                 .time = 1800000000, .actor = "root", .user = "bob", .action = "user add"}},
    };
    CU_ASSERT_EQUAL(apply(pi, m, 2), HPF_OK);
    h = raw_open("v2.db");
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM hpf_audit WHERE subject = 'bob'"), 1);
    sqlite3_close(h);
    plugin_instance_free(pi);
}

static void test_config(void)
{
    GError *error = NULL;
    struct plugin_instance *pi = load_store(NULL, NULL, NULL, &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "'path'"));
    g_clear_error(&error);

    pi = load_store("cfg.db", "busy_timeout", "soon", &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "busy_timeout"));
    g_clear_error(&error);

    pi = load_store("cfg.db", "busy_timeout", "-1", &error);
    CU_ASSERT_PTR_NULL(pi);
    g_clear_error(&error);

    pi = load_store("cfg.db", "journal", "wal", &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "journal"));
    g_clear_error(&error);

    pi = load_store("cfg.db", "busy_timeout", "250", &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    /* Exactly the keys it reads. */
    const char *const *keys = pi->desc->config_keys;
    CU_ASSERT_STRING_EQUAL(keys[0], "path");
    CU_ASSERT_STRING_EQUAL(keys[1], "busy_timeout");
    CU_ASSERT_PTR_NULL(keys[2]);
    CU_ASSERT_STRING_EQUAL(pi->desc->name, "storage_sqlite");
    CU_ASSERT_EQUAL(pi->desc->kinds, HPF_KIND_STORAGE);
    plugin_instance_free(pi);

    /* create() is pure: a path in a missing directory fails only at start(). */
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(cfg, (gpointer) "path", (gpointer) "no/such/dir/x.db");
    pi = plugin_instance_new(plugin_dir_resolve(NULL), "sqlite", HPF_KIND_STORAGE, "storage", cfg,
                             tmpdir, &error);
    g_hash_table_unref(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_FALSE(plugin_instance_start(pi, &error));
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "no/such/dir/x.db"));
    g_clear_error(&error);
    plugin_instance_free(pi);
}

static void test_hpfeeds3_database(void)
{
    sqlite3 *h = raw_open("hpfeeds3.db");
    make_hpfeeds3_db(h);
    raw_exec(h, "insert into authkeys (owner, ident, secret, pubchans, subchans) values "
                "('alice', 'a1', 's1', '[\"c1\", \"c2\"]', '[\"c3\"]'),"
                "(NULL, 'anon', 's2', '[]', NULL),"
                "('', 'blank', 's3', '', '[\"x\"]'),"
                "('bob', 'b1', 's4', '[\"c1\"]', '[\"c1\"]')");
    raw_exec(h, "insert into logs (data) values ('one'), ('two')");
    raw_exec(h, "insert into stats (ak, uid, data) values ('a1', 'u', '{}')");
    sqlite3_close(h);

    struct plugin_instance *pi = open_store("hpfeeds3.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);

    h = raw_open("hpfeeds3.db");
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM authkeys"), 4);
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM logs"), 2);
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM stats"), 1);
    CU_ASSERT_EQUAL(raw_int(h, "SELECT value FROM hpf_meta WHERE key = 'schema_version'"), 4);
    CU_ASSERT_TRUE(raw_has(h, "table", "hpf_shares"));
    CU_ASSERT_TRUE(raw_has(h, "index", "hpf_authkeys_ident_unique"));
    /* hpfeeds3 reads `select *` into six names: the table must keep six columns. */
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM pragma_table_info('authkeys')"), 6);
    sqlite3_close(h);

    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "a1", &g), HPF_OK);
    CU_ASSERT_EQUAL(g.calls, 1);
    CU_ASSERT_STRING_EQUAL(g.owner, "alice");
    CU_ASSERT_STRING_EQUAL(g.secret, "s1");
    CU_ASSERT_STRING_EQUAL(g.pub, "c1,c2");
    CU_ASSERT_STRING_EQUAL(g.sub, "c3");

    CU_ASSERT_EQUAL(get_key(pi, "anon", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.owner, "anon");
    CU_ASSERT_STRING_EQUAL(g.pub, "");
    CU_ASSERT_STRING_EQUAL(g.sub, "");

    CU_ASSERT_EQUAL(get_key(pi, "blank", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.owner, "blank");
    CU_ASSERT_STRING_EQUAL(g.pub, "");
    CU_ASSERT_STRING_EQUAL(g.sub, "x");
    got_clear(&g);

    /* Authkey owners have no user rows: the core infers those users. */
    CHECK_SNAPSHOT(pi, "authkey a1 owner=alice secret=s1 pub=c1,c2 sub=c3\n"
                       "authkey anon owner=anon secret=s2 pub= sub=\n"
                       "authkey b1 owner=bob secret=s4 pub=c1 sub=c1\n"
                       "authkey blank owner=blank secret=s3 pub= sub=x");
    plugin_instance_free(pi);
}

/* hpfeeds3 never enforced unique idents: the first row wins, and we do not break the file. */
static void test_hpfeeds3_duplicate_idents(void)
{
    sqlite3 *h = raw_open("dups.db");
    make_hpfeeds3_db(h);
    raw_exec(h, "insert into authkeys (owner, ident, secret, pubchans, subchans) values "
                "('alice', 'k', 'first', '[\"c1\"]', '[]'),"
                "('mallory', 'k', 'second', '[\"c2\"]', '[]')");
    sqlite3_close(h);

    struct plugin_instance *pi = open_store("dups.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    h = raw_open("dups.db");
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM authkeys"), 2);
    CU_ASSERT_FALSE(raw_has(h, "index", "hpf_authkeys_ident_unique"));
    CU_ASSERT_TRUE(raw_has(h, "index", "hpf_authkeys_ident"));

    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "k", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.secret, "first");
    got_clear(&g);
    CHECK_SNAPSHOT(pi, "authkey k owner=alice secret=first pub=c1 sub=");
    plugin_instance_free(pi);

    /* Once the repeat is gone, the next start enforces uniqueness. */
    raw_exec(h, "DELETE FROM authkeys WHERE secret = 'second'");
    pi = open_store("dups.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_TRUE(raw_has(h, "index", "hpf_authkeys_ident_unique"));
    CU_ASSERT_FALSE(raw_has(h, "index", "hpf_authkeys_ident"));
    CU_ASSERT_NOT_EQUAL(sqlite3_exec(h,
                                     "INSERT INTO authkeys (owner, ident, secret) "
                                     "VALUES ('x', 'k', 'y')",
                                     NULL, NULL, NULL),
                        SQLITE_OK);
    sqlite3_close(h);
    plugin_instance_free(pi);
}

/* Hand-made files: authkeys alone (as hpfeeds3's comment shows), or no database at all. */
static void test_odd_files(void)
{
    sqlite3 *h = raw_open("only_authkeys.db");
    raw_exec(h, "create table authkeys (id integer primary key autoincrement,\n"
                "    owner TEXT, ident TEXT, secret TEXT,\n"
                "    pubchans TEXT, subchans TEXT)");
    raw_exec(h, "insert into authkeys (owner, ident, secret, pubchans, subchans) "
                "values ('owner', 'ident', 'secret', '[\"chan1\"]', '[\"chan1\"]')");
    sqlite3_close(h);
    struct plugin_instance *pi = open_store("only_authkeys.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    h = raw_open("only_authkeys.db");
    CU_ASSERT_TRUE(raw_has(h, "table", "logs"));
    CU_ASSERT_TRUE(raw_has(h, "table", "stats"));
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM authkeys"), 1);
    sqlite3_close(h);
    CHECK_SNAPSHOT(pi, "authkey ident owner=owner secret=secret pub=chan1 sub=chan1");
    plugin_instance_free(pi);

    /* An authkeys table of some other shape is refused, not "fixed". */
    h = raw_open("alien.db");
    raw_exec(h, "CREATE TABLE authkeys (identifier TEXT, secret TEXT)");
    sqlite3_close(h);
    GError *error = NULL;
    pi = load_store("alien.db", NULL, NULL, &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "authkeys"));
    g_clear_error(&error);
    h = raw_open("alien.db");
    CU_ASSERT_FALSE(raw_has(h, "table", "hpf_meta"));
    sqlite3_close(h);

    char *path = g_build_filename(tmpdir, "garbage.db", NULL);
    CU_ASSERT_TRUE(
        g_file_set_contents(path, "this is not a database, not even close....", -1, NULL));
    g_free(path);
    pi = load_store("garbage.db", NULL, NULL, &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "garbage.db"));
    g_clear_error(&error);
}

/*
 * The storage contract (authkey_get, mutations, cascades, versions) runs
 * against every backend in tests/storage/test_backends.c; what follows is
 * what only SQLite has: hpfeeds3's own column formats and other writers of
 * the same file.
 */

/* hpfeeds3's JSON lists read leniently: what cannot be read grants nothing. */
static void test_authkey_get_lenient(void)
{
    struct plugin_instance *pi = open_store("get.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    sqlite3 *h = raw_open("get.db");
    raw_exec(h, "INSERT INTO authkeys (owner, ident, secret, pubchans, subchans) VALUES "
                "('alice', 'a1', 'sec', '[\"p1\",\"p2\"]', '  [ \"s1\" ] '),"
                "(NULL, 'orphan', 'sec2', NULL, NULL),"
                "('bob', 'broken', 'sec3', '[\"ok\", 5, null]', '{not json')");
    sqlite3_close(h);

    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "a1", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.pub, "p1,p2");
    CU_ASSERT_STRING_EQUAL(g.sub, "s1");
    CU_ASSERT_EQUAL(get_key(pi, "orphan", &g), HPF_OK); /* NULL lists */
    CU_ASSERT_STRING_EQUAL(g.owner, "orphan");
    CU_ASSERT_STRING_EQUAL(g.pub, "");
    CU_ASSERT_EQUAL(get_key(pi, "broken", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.pub, "ok");
    CU_ASSERT_STRING_EQUAL(g.sub, "");
    got_clear(&g);
    plugin_instance_free(pi);
}

/* Authkeys are written the way hpfeeds3 writes them, so it reads them too. */
static void test_authkey_hpfeeds3_columns(void)
{
    struct plugin_instance *pi = open_store("keys.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    struct hpf_authkey key = {.ident = "a1",
                              .owner = "alice",
                              .secret = "s3cret",
                              .publish = chans_ab,
                              .n_publish = 2,
                              .subscribe = chans_c,
                              .n_subscribe = 1};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &key), HPF_OK);
    sqlite3 *h = raw_open("keys.db");
    char *pub = raw_text(h, "SELECT pubchans FROM authkeys WHERE ident = 'a1'");
    char *sub = raw_text(h, "SELECT subchans FROM authkeys WHERE ident = 'a1'");
    CU_ASSERT_STRING_EQUAL(pub, "[\"a\",\"b\"]");
    CU_ASSERT_STRING_EQUAL(sub, "[\"c\"]");
    g_free(pub);
    g_free(sub);

    struct hpf_authkey key2 = {.ident = "a1", .owner = "alice", .secret = "new"};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &key2, .replace = true),
                    HPF_OK);
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM authkeys"), 1);
    pub = raw_text(h, "SELECT pubchans FROM authkeys WHERE ident = 'a1'");
    CU_ASSERT_STRING_EQUAL(pub, "[]");
    g_free(pub);

    /* An hpfeeds3 key with no owner column belongs to the user of its name. */
    raw_exec(h, "INSERT INTO authkeys (owner, ident, secret) VALUES (NULL, 'alice', 'z')");
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_DEL, .user = "alice"), HPF_OK);
    CU_ASSERT_EQUAL(raw_int(h, "SELECT count(*) FROM authkeys"), 0);
    sqlite3_close(h);
    plugin_instance_free(pi);
}

/* Writes by other programs (hpfeeds3-era scripts, sqlite3) move the version;
 * hpfeeds3's log rows and counters do not. */
static void test_version_out_of_band(void)
{
    struct plugin_instance *pi = open_store("version.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    struct hpf_authkey k = {.ident = "a1", .owner = "alice", .secret = "s"};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &k), HPF_OK);
    uint64_t v1 = version_of(pi);

    /* Reads leave no transaction open that would hide other processes' writes. */
    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "a1", &g), HPF_OK);
    char *snap = snapshot_with(pi, &visitor);
    g_free(snap);

    sqlite3 *h = raw_open("version.db");
    raw_exec(h, "INSERT INTO authkeys (owner, ident, secret, pubchans, subchans) "
                "VALUES ('bob', 'b1', 'sb', '[\"x\"]', '[]')");
    uint64_t v2 = version_of(pi);
    CU_ASSERT_TRUE(v2 > v1);
    CU_ASSERT_EQUAL(get_key(pi, "b1", &g), HPF_OK);
    CU_ASSERT_STRING_EQUAL(g.pub, "x");
    got_clear(&g);

    raw_exec(h, "UPDATE authkeys SET secret = 'rotated' WHERE ident = 'b1'");
    uint64_t v3 = version_of(pi);
    CU_ASSERT_TRUE(v3 > v2);
    raw_exec(h, "DELETE FROM hpf_users WHERE name = 'alice'");
    uint64_t v4 = version_of(pi);
    CU_ASSERT_TRUE(v4 > v3);

    raw_exec(h, "INSERT INTO logs (data) VALUES ('x')");
    const struct hpf_counters c = {.ident = "a1", .published_msgs = 1};
    CU_ASSERT_EQUAL(S(pi)->counters_add(pi->inst, &c, 1), HPF_OK);
    CU_ASSERT_EQUAL(version_of(pi), v4);
    sqlite3_close(h);
    plugin_instance_free(pi);
}

static void test_newer_schema_refused(void)
{
    struct plugin_instance *pi = open_store("future.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    plugin_instance_free(pi);

    sqlite3 *h = raw_open("future.db");
    raw_exec(h, "UPDATE hpf_meta SET value = 99 WHERE key = 'schema_version'");
    GError *error = NULL;
    pi = load_store("future.db", NULL, NULL, &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "schema version 99 is newer"));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "(4)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "future.db"));
    g_clear_error(&error);
    /* Refused, not touched. */
    CU_ASSERT_EQUAL(raw_int(h, "SELECT value FROM hpf_meta WHERE key = 'schema_version'"), 99);

    raw_exec(h, "UPDATE hpf_meta SET value = 'two' WHERE key = 'schema_version'");
    pi = load_store("future.db", NULL, NULL, &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "not a number"));
    g_clear_error(&error);
    sqlite3_close(h);
}

/*
 * A database of schema 3 (before declined offers) opens, gains hpf_declines
 * in step 4 and keeps what it held.
 */
static void test_schema3_upgrades(void)
{
    struct plugin_instance *pi = open_store("declines-v3.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    const struct hpf_mutation setup[] = {
        {.op = HPF_MUT_USER_ADD, .user = "alice"},
        {.op = HPF_MUT_USER_ADD, .user = "bob"},
        {.op = HPF_MUT_ACCEPT_ADD, .user = "bob", .target = "alice", .channel = "c"},
    };
    CU_ASSERT_EQUAL(apply(pi, setup, G_N_ELEMENTS(setup)), HPF_OK);
    plugin_instance_free(pi);

    /* A database of schema 3 (the audit trail, no declines yet). */
    sqlite3 *h = raw_open("declines-v3.db");
    raw_exec(h, "DROP TABLE hpf_declines");
    raw_exec(h, "UPDATE hpf_meta SET value = 3 WHERE key = 'schema_version'");
    CU_ASSERT_FALSE(raw_has(h, "table", "hpf_declines"));

    pi = open_store("declines-v3.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(raw_int(h, "SELECT value FROM hpf_meta WHERE key = 'schema_version'"), 4);
    CU_ASSERT_TRUE(raw_has(h, "table", "hpf_declines"));
    CU_ASSERT_TRUE(raw_has(h, "trigger", "hpf_bump_hpf_declines_INSERT"));
    sqlite3_close(h);
    CHECK_SNAPSHOT(pi, "accept bob alice c\n"
                       "user alice\n"
                       "user bob");
    CU_ASSERT_EQUAL(
        APPLY1(pi, .op = HPF_MUT_DECLINE_ADD, .user = "bob", .target = "alice", .channel = "c"),
        HPF_OK);
    CHECK_SNAPSHOT(pi, "decline bob alice c\n"
                       "user alice\n"
                       "user bob");
    plugin_instance_free(pi);
}

/* hpfriendsctl holding the write lock: the broker keeps reading, a writer waits then gives up. */
static void test_concurrent_writer(void)
{
    struct plugin_instance *pi = open_store_with("busy.db", "busy_timeout", "200");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    struct hpf_authkey k = {.ident = "a1", .owner = "alice", .secret = "s"};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &k), HPF_OK);
    uint64_t v = version_of(pi);

    sqlite3 *h = raw_open("busy.db");
    raw_exec(h, "BEGIN IMMEDIATE");
    raw_exec(h, "INSERT INTO hpf_users (name) VALUES ('uncommitted')");

    struct got g = {0};
    CU_ASSERT_EQUAL(get_key(pi, "a1", &g), HPF_OK);
    got_clear(&g);
    CU_ASSERT_EQUAL(version_of(pi), v);
    CHECK_SNAPSHOT(pi, "authkey a1 owner=alice secret=s pub= sub=\n"
                       "user alice");

    gint64 t0 = g_get_monotonic_time();
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "bob"), HPF_ERR_IO);
    gint64 waited_ms = (g_get_monotonic_time() - t0) / 1000;
    CU_ASSERT_TRUE(waited_ms >= 150);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "locked"));
    const struct hpf_counters c = {.ident = "a1", .published_msgs = 1};
    CU_ASSERT_EQUAL(S(pi)->counters_add(pi->inst, &c, 1), HPF_ERR_UNAVAILABLE);

    raw_exec(h, "COMMIT");
    CU_ASSERT_EQUAL(S(pi)->counters_add(pi->inst, &c, 1), HPF_OK);
    CU_ASSERT_TRUE(version_of(pi) > v);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "bob"), HPF_OK);
    CHECK_SNAPSHOT(pi, "authkey a1 owner=alice secret=s pub= sub=\n"
                       "user alice\n"
                       "user bob\n"
                       "user uncommitted");
    sqlite3_close(h);
    plugin_instance_free(pi);
}

static void count_user(void *ud, const char *name, bool admin)
{
    (void)name;
    (void)admin;
    (*(int *)ud)++;
}

/* The other process of test_two_processes: this binary run with --writer. */
enum { N_WRITER_USERS = 40 };

static int run_writer(const char *dir, const char *db)
{
    tmpdir = g_strdup(dir);
    struct plugin_instance *pi = open_store(db);
    if (!pi)
        return 100;
    int failures = 0;
    for (int i = 0; i < N_WRITER_USERS; i++) {
        char name[32], err[256];
        snprintf(name, sizeof name, "user%02d", i);
        const struct hpf_mutation m[] = {
            {.op = HPF_MUT_USER_ADD, .user = name},
            {.op = HPF_MUT_SHARE_ADD, .user = "alice", .target = name, .channel = "c"},
        };
        if (S(pi)->apply(pi->inst, m, 2, err, sizeof err) != HPF_OK) {
            fprintf(stderr, "writer: %s\n", err);
            failures++;
        }
    }
    plugin_instance_free(pi);
    g_free(tmpdir);
    return failures;
}

static const char *self_path;

/* Another process writing while this one reads, as hpfriendsctl does to a running broker. */
static void test_two_processes(void)
{
    struct plugin_instance *pi = open_store("procs.db");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_USER_ADD, .user = "alice"), HPF_OK);
    struct hpf_authkey k = {.ident = "a1", .owner = "alice", .secret = "s"};
    CU_ASSERT_EQUAL(APPLY1(pi, .op = HPF_MUT_AUTHKEY_ADD, .authkey = &k), HPF_OK);

    const char *argv[] = {self_path, "--writer", tmpdir, "procs.db", NULL};
    GPid pid;
    GError *error = NULL;
    gboolean spawned = g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                     NULL, &pid, &error);
    if (!spawned) {
        fprintf(stderr, "spawn %s: %s\n", self_path, error->message);
        g_error_free(error);
        plugin_instance_free(pi);
    }
    CU_ASSERT_TRUE_FATAL(spawned);

    uint64_t last = 0;
    int reads = 0, bad = 0, status = 0;
    const struct hpf_snapshot_visitor users = {.user = count_user};
    for (;;) {
        gboolean done = waitpid(pid, &status, WNOHANG) == pid;
        uint64_t v = 0;
        int n_users = 0;
        struct got g = {0};
        bad += S(pi)->version(pi->inst, &v) != HPF_OK || v < last;
        bad += S(pi)->snapshot(pi->inst, &users, &n_users) != HPF_OK || n_users < 1;
        bad += get_key(pi, "a1", &g) != HPF_OK;
        got_clear(&g);
        last = v;
        reads++;
        if (done)
            break;
    }
    g_spawn_close_pid(pid);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_TRUE(reads > 1);
    CU_ASSERT_TRUE(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);

    int n_users = 0;
    CU_ASSERT_EQUAL(S(pi)->snapshot(pi->inst, &users, &n_users), HPF_OK);
    CU_ASSERT_EQUAL(n_users, N_WRITER_USERS + 1);
    plugin_instance_free(pi);
}

int main(int argc, char **argv)
{
    log_set_level(HPF_LOG_ERR);
    if (argc == 4 && strcmp(argv[1], "--writer") == 0)
        return run_writer(argv[2], argv[3]);
    self_path = argv[0];
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("storage_sqlite", suite_init, suite_cleanup);
    if (!suite)
        goto out;
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"fresh database", test_fresh_database},
        {"a schema-2 database gains the audit trail", test_migrate_audit},
        {"config keys and validation", test_config},
        {"hpfeeds3 database keeps its rows", test_hpfeeds3_database},
        {"hpfeeds3 duplicate idents", test_hpfeeds3_duplicate_idents},
        {"authkeys-only, alien and garbage files", test_odd_files},
        {"hpfeeds3 JSON lists read leniently", test_authkey_get_lenient},
        {"authkeys written as hpfeeds3 writes them", test_authkey_hpfeeds3_columns},
        {"version: out-of-band writes", test_version_out_of_band},
        {"newer schema refused", test_newer_schema_refused},
        {"a schema 3 database gains declines", test_schema3_upgrades},
        {"concurrent writer (WAL, busy_timeout)", test_concurrent_writer},
        {"a second process writing while we read", test_two_processes},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(tests); i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            goto out;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
out:;
    int failed = CU_get_number_of_tests_failed() != 0 || CU_get_error() != CUE_SUCCESS ||
                 CU_get_number_of_suites_failed() != 0;
    CU_cleanup_registry();
    return failed;
}
