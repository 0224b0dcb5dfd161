/* SPDX-License-Identifier: BSD-3-Clause */
/* Config: key file parsing, defaults, errors naming file/section/key, flags. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "../common/cunit_run.h"
#include "config.h"

static char *tmpdir;

static char *write_conf(const char *text)
{
    char *path = g_build_filename(tmpdir, "t.conf", NULL);
    g_file_set_contents(path, text, -1, NULL);
    return path;
}

/* Load text; on failure return NULL and the error message in *msg. */
static struct config *load(const char *text, char **msg)
{
    char *path = write_conf(text);
    GError *e = NULL;
    struct config *cfg = config_load_file(path, &e);
    if (!cfg && msg)
        *msg = g_strdup(e->message);
    if (e)
        g_error_free(e);
    g_free(path);
    return cfg;
}

static void expect_error(const char *text, const char *fragment)
{
    char *msg = NULL;
    struct config *cfg = load(text, &msg);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    if (!strstr(msg, fragment))
        fprintf(stderr, "\n  error '%s' lacks '%s'\n", msg, fragment);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, fragment));
    config_free(cfg);
    g_free(msg);
}

static void test_full(void)
{
    struct config *cfg = load("# comment\n"
                              "[broker]\n"
                              "name = hpf1\n"
                              "listen = tcp:127.0.0.1:10000 ; tls:[::]:10443\n"
                              "access = channels\n"
                              "reload_interval = 5\n"
                              "require_accept = true\n"
                              "error_style = legacy\n"
                              "on_denied = continue\n"
                              "max_frame = 10M\n"
                              "max_queued_bytes = 64K\n"
                              "slow_deadline = 7\n"
                              "backpressure_hold = 0\n"
                              "max_connections = 42\n"
                              "auth_timeout = 3\n"
                              "[storage]\n"
                              "plugin = sqlite\n"
                              "path = db/hpf.db\n"
                              "[sink:archive]\n"
                              "plugin = file\n"
                              "path = /var/log/x.json\n",
                              NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->name, "hpf1");
    CU_ASSERT_EQUAL_FATAL(cfg->listen->len, 2);
    struct listen_addr *l0 = cfg->listen->pdata[0], *l1 = cfg->listen->pdata[1];
    CU_ASSERT_FALSE(l0->tls);
    CU_ASSERT_STRING_EQUAL(l0->host, "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(l0->port, "10000");
    CU_ASSERT_TRUE(l1->tls);
    CU_ASSERT_STRING_EQUAL(l1->host, "::");
    CU_ASSERT_STRING_EQUAL(l1->port, "10443");
    CU_ASSERT_EQUAL(cfg->access, ACCESS_CHANNELS);
    CU_ASSERT_EQUAL(cfg->reload_interval, 5);
    CU_ASSERT_TRUE(cfg->require_accept);
    CU_ASSERT_EQUAL(cfg->error_style, ERROR_STYLE_LEGACY);
    CU_ASSERT_EQUAL(cfg->on_denied, ON_DENIED_CONTINUE);
    CU_ASSERT_EQUAL(cfg->max_frame, 10u * 1024 * 1024);
    CU_ASSERT_EQUAL(cfg->max_queued_bytes, 64u * 1024);
    CU_ASSERT_EQUAL(cfg->slow_deadline, 7);
    CU_ASSERT_EQUAL(cfg->backpressure_hold, 0);
    CU_ASSERT_EQUAL(cfg->max_connections, 42);
    CU_ASSERT_EQUAL(cfg->auth_timeout, 3);
    CU_ASSERT_STRING_EQUAL(cfg->storage->plugin, "sqlite");
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(cfg->storage->keys, "path"), "db/hpf.db");
    CU_ASSERT_PTR_NULL(g_hash_table_lookup(cfg->storage->keys, "plugin"));
    CU_ASSERT_EQUAL_FATAL(cfg->sinks->len, 1);
    struct plugin_conf *sink = cfg->sinks->pdata[0];
    CU_ASSERT_STRING_EQUAL(sink->name, "archive");
    CU_ASSERT_STRING_EQUAL(sink->plugin, "file");
    /* The default auth chain. */
    CU_ASSERT_EQUAL_FATAL(cfg->auth->len, 1);
    CU_ASSERT_STRING_EQUAL(((struct plugin_conf *)cfg->auth->pdata[0])->plugin, "storage");
    /* Relative paths are anchored at the file's directory. */
    char *p = config_resolve_path(cfg, "db/hpf.db");
    char *want = g_build_filename(tmpdir, "db/hpf.db", NULL);
    CU_ASSERT_STRING_EQUAL(p, want);
    g_free(p);
    g_free(want);
    config_free(cfg);
}

static void test_defaults(void)
{
    struct config *cfg = load("[storage]\nplugin = sqlite\npath = x.db\n", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    config_finish(cfg);
    CU_ASSERT_EQUAL(cfg->access, ACCESS_GRAPH);
    CU_ASSERT_EQUAL(cfg->reload_interval, 2);
    CU_ASSERT_FALSE(cfg->require_accept);
    CU_ASSERT_EQUAL(cfg->error_style, ERROR_STYLE_HPFEEDS);
    CU_ASSERT_EQUAL(cfg->on_denied, ON_DENIED_CLOSE);
    CU_ASSERT_EQUAL(cfg->max_frame, 1024 * 1024 + 5);
    CU_ASSERT_STRING_EQUAL(cfg->name, "hpfriends");
    CU_ASSERT_EQUAL_FATAL(cfg->listen->len, 1);
    CU_ASSERT_STRING_EQUAL(((struct listen_addr *)cfg->listen->pdata[0])->port, "10000");
    config_free(cfg);

    /* No file at all: hpfeeds3 style, channels mode. */
    cfg = config_new_default();
    config_finish(cfg);
    CU_ASSERT_EQUAL(cfg->access, ACCESS_CHANNELS);
    CU_ASSERT_STRING_EQUAL(cfg->storage->plugin, "sqlite");
    config_free(cfg);
}

static void test_errors(void)
{
    expect_error("[broker]\nbogus = 1\n[storage]\nplugin=sqlite\n",
                 "t.conf: [broker] bogus: unknown key");
    expect_error("[broker]\nmax_frame = lots\n[storage]\nplugin=sqlite\n", "[broker] max_frame");
    expect_error("[broker]\nmax_frame = 10\n[storage]\nplugin=sqlite\n", "[broker] max_frame");
    expect_error("[broker]\naccess = everyone\n[storage]\nplugin=sqlite\n",
                 "[broker] access: expected channels or graph, got 'everyone'");
    expect_error("[broker]\nrequire_accept = maybe\n[storage]\nplugin=sqlite\n",
                 "[broker] require_accept");
    expect_error("[broker]\nlisten = tcp:localhost\n[storage]\nplugin=sqlite\n", "[broker] listen");
    expect_error("[broker]\nlisten = tcp:::1:5\n[storage]\nplugin=sqlite\n", "brackets");
    expect_error("[broker]\nlisten = tcp:1.2.3.4:70000\n[storage]\nplugin=sqlite\n", "port");
    expect_error("[broker]\nreload_interval = 0\n[storage]\nplugin=sqlite\n",
                 "[broker] reload_interval");
    expect_error("[broker]\nname = x\n", "[storage]: missing section");
    expect_error("[storage]\npath = x\n", "[storage] plugin: missing");
    expect_error("[storage]\nplugin = sqlite\n[weird]\n", "[weird]: unknown section");
    expect_error("[storage]\nplugin = sqlite\n[sink:a b]\nplugin=file\n", "[sink:a b]");
    expect_error("[storage]\nplugin = sqlite\n[sink:x]\npath=file\n", "[sink:x] plugin: missing");
    expect_error("[storage]\nplugin = sqlite\n[auth:ldap]\nplugin=ldap\n",
                 "not named in [auth] chain");
    expect_error("[storage]\nplugin = sqlite\n[auth]\nwho = me\n", "[auth] who: unknown key");
    expect_error("this is not a key file\n", "t.conf");
}

static void test_flags(void)
{
    struct config *cfg = config_new_default();
    char *db = g_build_filename(tmpdir, "auth.db", NULL);
    char *users = g_build_filename(tmpdir, "users.json", NULL);
    g_file_set_contents(db, "", 0, NULL);
    g_file_set_contents(users, "{}", -1, NULL);
    char *binds[] = {"127.0.0.1:20000", "[::1]:20001", NULL};
    char *auths[] = {db, NULL};
    GError *e = NULL;
    CU_ASSERT_TRUE_FATAL(config_apply_flags(cfg, binds, auths, "b1", NULL, NULL, NULL, &e));
    config_finish(cfg);
    CU_ASSERT_EQUAL_FATAL(cfg->listen->len, 2);
    CU_ASSERT_STRING_EQUAL(((struct listen_addr *)cfg->listen->pdata[1])->host, "::1");
    CU_ASSERT_STRING_EQUAL(cfg->storage->plugin, "sqlite");
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(cfg->storage->keys, "path"), db);
    CU_ASSERT_STRING_EQUAL(cfg->name, "b1");
    config_free(cfg);

    cfg = config_new_default();
    char *json[] = {users, NULL};
    CU_ASSERT_TRUE(config_apply_flags(cfg, NULL, json, NULL, NULL, NULL, NULL, &e));
    CU_ASSERT_STRING_EQUAL(cfg->storage->plugin, "file");
    char *mongo[] = {"mongodb://127.0.0.1:27017/hpfeeds", NULL};
    CU_ASSERT_TRUE(config_apply_flags(cfg, NULL, mongo, NULL, NULL, NULL, NULL, &e));
    CU_ASSERT_STRING_EQUAL(cfg->storage->plugin, "mongodb");
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(cfg->storage->keys, "uri"),
                           "mongodb://127.0.0.1:27017/hpfeeds");
    char *bad[] = {"nope", NULL};
    CU_ASSERT_FALSE(config_apply_flags(cfg, bad, NULL, NULL, NULL, NULL, NULL, &e));
    CU_ASSERT_PTR_NOT_NULL(e);
    g_clear_error(&e);
    config_free(cfg);
    g_unlink(db);
    g_unlink(users);
    g_free(db);
    g_free(users);
}

/* One --auth list on a fresh flags-only config: the storage plugin, or NULL on error. */
static struct config *with_auth(char **auths, char **msg)
{
    struct config *cfg = config_new_default();
    GError *e = NULL;
    if (config_apply_flags(cfg, NULL, auths, NULL, NULL, NULL, NULL, &e)) {
        config_finish(cfg);
        return cfg;
    }
    *msg = g_strdup(e->message);
    g_error_free(e);
    config_free(cfg);
    return NULL;
}

static const char *auth_plugin(const struct config *cfg, guint i)
{
    return ((struct plugin_conf *)cfg->auth->pdata[i])->plugin;
}

static void test_hpfeeds3_auth(void)
{
    char *msg = NULL;
    char *env[] = {"env", NULL};
    struct config *cfg = with_auth(env, &msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_TRUE(config_storage_is_placeholder(cfg));
    CU_ASSERT_TRUE(config_auth_has_env(cfg));
    CU_ASSERT_EQUAL(cfg->auth->len, 1);
    config_free(cfg);

    char *stack[] = {"env", "sqlite", NULL};
    cfg = with_auth(stack, &msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cfg->auth->len, 2);
    CU_ASSERT_STRING_EQUAL(auth_plugin(cfg, 0), "env");
    CU_ASSERT_STRING_EQUAL(auth_plugin(cfg, 1), "storage");
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(cfg->storage->keys, "path"), "sqlite.db");
    config_free(cfg);

    char *pg[] = {"database+postgresql+psycopg2://u:pw@h:5432/db?sslmode=require", NULL};
    cfg = with_auth(pg, &msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->storage->plugin, "postgresql");
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(cfg->storage->keys, "uri"),
                           "postgresql://u:pw@h:5432/db?sslmode=require");
    config_free(cfg);

    char *my[] = {"database+mysql+mysqldb://u:pw@h/db", NULL};
    cfg = with_auth(my, &msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->storage->plugin, "mysql");
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(cfg->storage->keys, "uri"), "mysql://u:pw@h/db");
    config_free(cfg);

    char *two[] = {"database+mysql://u:pw@h/db", "sqlite", NULL};
    CU_ASSERT_PTR_NULL(with_auth(two, &msg));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(msg, "a second writable source after --auth database+mysql://..."));
    CU_ASSERT_PTR_NULL(strstr(msg, "pw")); /* credentials stay out of errors */
    g_free(msg);
}

static void test_hpfeeds3_defaults_and_endpoints(void)
{
    struct config *cfg = config_new_default();
    config_finish(cfg);
    struct listen_addr *la = cfg->listen->pdata[0];
    CU_ASSERT_STRING_EQUAL(la->host, "0.0.0.0");
    CU_ASSERT_STRING_EQUAL(la->port, "20000");
    CU_ASSERT_STRING_EQUAL(cfg->name, "hpfeeds");
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(cfg->storage->keys, "path"), "sqlite.db");
    config_free(cfg);

    GError *e = NULL;
    char *cert = NULL, *key = NULL;
    la = config_parse_endpoint("tls:interface=\\:\\::port=10000:cert=c.pem:key=k.pem:device=lo",
                               &cert, &key, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(la);
    CU_ASSERT_TRUE(la->tls);
    CU_ASSERT_STRING_EQUAL(la->host, "::");
    CU_ASSERT_STRING_EQUAL(la->port, "10000");
    CU_ASSERT_STRING_EQUAL(la->device, "lo");
    CU_ASSERT_STRING_EQUAL(cert, "c.pem");
    CU_ASSERT_STRING_EQUAL(key, "k.pem");
    listen_addr_free(la);
    g_free(cert);
    g_free(key);

    cfg = config_new_default();
    char *eps[] = {"tls:port=1:cert=a.pem:key=a.key", "tls:port=2:cert=b.pem:key=b.key", NULL};
    CU_ASSERT_FALSE(config_apply_endpoints(cfg, eps, FALSE, &e));
    CU_ASSERT_PTR_NOT_NULL(e && strstr(e->message, "one certificate"));
    g_clear_error(&e);
    config_free(cfg);
}

static void test_sizes(void)
{
    guint64 v;
    CU_ASSERT_TRUE(config_parse_size("100", &v) && v == 100);
    CU_ASSERT_TRUE(config_parse_size("4K", &v) && v == 4096);
    CU_ASSERT_TRUE(config_parse_size("2 MiB", &v) && v == 2u * 1024 * 1024);
    CU_ASSERT_TRUE(config_parse_size("1g", &v) && v == 1024u * 1024 * 1024);
    CU_ASSERT_FALSE(config_parse_size("", &v));
    CU_ASSERT_FALSE(config_parse_size("-1", &v));
    CU_ASSERT_FALSE(config_parse_size("12Q", &v));
    CU_ASSERT_FALSE(config_parse_size("99999999999999999999", &v));
    CU_ASSERT_FALSE(config_parse_size("17179869184G", &v));
    CU_ASSERT_TRUE(config_parse_size("64kb", &v) && v == 65536);
    CU_ASSERT_FALSE(config_parse_size("100i", &v)); /* "i" only after K, M or G */
    CU_ASSERT_FALSE(config_parse_size("1T", &v));
}

/* One grammar for booleans, sizes and numbers, with reasons that say what was expected. */
static void test_value_grammar(void)
{
    static const char *const yes[] = {"true", "TRUE", "yes", "Yes", "1"};
    static const char *const no[] = {"false", "False", "no", "NO", "0"};
    static const char *const neither[] = {"", "on", "off", "y", "2", " true", "truee"};
    gboolean b;
    for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
        b = FALSE;
        CU_ASSERT_TRUE(config_parse_bool(yes[i], &b) && b);
        b = TRUE;
        CU_ASSERT_TRUE(config_parse_bool(no[i], &b) && !b);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(neither); i++)
        CU_ASSERT_FALSE(config_parse_bool(neither[i], &b));

    GError *e = NULL;
    guint64 v = 5;
    CU_ASSERT_FALSE(config_value_bool("maybe", &b, &e));
    CU_ASSERT_STRING_EQUAL(e ? e->message : "",
                           "expected true or false (or yes, no, 1, 0), got 'maybe'");
    g_clear_error(&e);
    CU_ASSERT_FALSE(config_value_size("2M", 1024, 1024 * 1024, &v, &e));
    CU_ASSERT_EQUAL(v, 5);
    CU_ASSERT_STRING_EQUAL(e ? e->message : "",
                           "expected a size in bytes (K, M, G suffixes allowed) from 1K to 1M, "
                           "got '2M'");
    g_clear_error(&e);
    CU_ASSERT_FALSE(config_value_size("x", 64, G_MAXUINT64, &v, &e));
    CU_ASSERT_PTR_NOT_NULL(e && strstr(e->message, "of at least 64, got 'x'"));
    g_clear_error(&e);
    CU_ASSERT_TRUE(config_value_size("1M", 1024, 1024 * 1024, &v, &e) && v == 1024 * 1024);
    CU_ASSERT_FALSE(config_value_uint("11", 1, 10, &v, &e));
    CU_ASSERT_STRING_EQUAL(e ? e->message : "", "expected a whole number from 1 to 10, got '11'");
    g_clear_error(&e);
    CU_ASSERT_TRUE(config_value_uint("10", 1, 10, &v, &e) && v == 10);

    /* [broker] uses the same grammar. */
    struct config *cfg = load("[broker]\nrequire_accept = Yes\nmax_queued_bytes = 64 KiB\n"
                              "[storage]\nplugin = sqlite\n",
                              NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_TRUE(cfg->require_accept);
    CU_ASSERT_EQUAL(cfg->max_queued_bytes, 65536);
    config_free(cfg);
    expect_error("[broker]\nrequire_accept = maybe\n[storage]\nplugin=sqlite\n",
                 "t.conf: [broker] require_accept: expected true or false (or yes, no, 1, 0), "
                 "got 'maybe'");
    expect_error("[broker]\nmax_frame = 10\n[storage]\nplugin=sqlite\n",
                 "[broker] max_frame: expected a size in bytes (K, M, G suffixes allowed) from 64 "
                 "to 4294967295, got '10'");
}

int main(void)
{
    tmpdir = g_dir_make_tmp("hpf-config-XXXXXX", NULL);
    static const struct test_case cases[] = {
        {"every broker key", test_full},
        {"defaults", test_defaults},
        {"errors name file, section and key", test_errors},
        {"hpfeeds3 flags", test_flags},
        {"hpfeeds3 --auth kinds and stacking", test_hpfeeds3_auth},
        {"hpfeeds3 defaults and -e endpoints", test_hpfeeds3_defaults_and_endpoints},
        {"sizes", test_sizes},
        {"one grammar for booleans, sizes and numbers", test_value_grammar},
        {NULL, NULL},
    };
    int rc = cunit_run("config", cases);
    char *p = g_build_filename(tmpdir, "t.conf", NULL);
    g_unlink(p);
    g_free(p);
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return rc;
}
