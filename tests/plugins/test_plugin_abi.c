/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The loader against this directory's plugins: a module built for another
 * ABI major is refused with a message naming it and both versions; one
 * built against the ABI 1.3 headers loads and works (its structs keep their
 * layout); the shipped plugins export nothing but their entry point, are
 * named as their files, and read their keys with the host's grammar.
 */
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include <glib.h>

#include <CUnit/Basic.h>

#include "abi13_layout.h"
#include "admin.h"
#include "log.h"
#include "loader.h"
#include "snapshot.h"

static char *mismatch_path(void)
{
    const char *builddir = g_getenv("HPF_BUILDDIR");
    return g_build_filename(builddir ? builddir : ".", "tests", "plugins", ".libs",
                            "abi_mismatch.so", NULL);
}

static void test_abi_mismatch_refused(void)
{
    char *path = mismatch_path();
    CU_ASSERT_TRUE_FATAL(g_file_test(path, G_FILE_TEST_IS_REGULAR));
    GError *error = NULL;
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), path, HPF_KIND_SINK,
                                                     "sink:mismatch", NULL, NULL, &error);
    g_free(path);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    char *theirs = g_strdup_printf("%d.0", HPF_ABI_MAJOR + 1);
    char *ours = g_strdup_printf("%d.%d", HPF_ABI_MAJOR, HPF_ABI_MINOR);
    if (!strstr(error->message, "abi_mismatch") || !strstr(error->message, theirs) ||
        !strstr(error->message, ours))
        fprintf(stderr, "\nmessage: %s\n", error->message);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "abi_mismatch"));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, theirs));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, ours));
    g_free(theirs);
    g_free(ours);
    g_error_free(error);
}

/* Only hpf_plugin_entry is visible: internal names cannot clash with the host's. */
static void check_exports(const char *file, const char *internal)
{
    char *path = g_build_filename(plugin_dir_resolve(NULL), file, NULL);
    GModule *m = g_module_open(path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    gpointer sym = NULL;
    CU_ASSERT_TRUE(g_module_symbol(m, HPF_PLUGIN_ENTRY_SYMBOL, &sym));
    CU_ASSERT_FALSE(g_module_symbol(m, internal, &sym));
    g_module_close(m);
    g_free(path);
}

/* ABI 1.0 storage (before passwords) loads and works; only passwords are refused. */
static void test_old_minor_storage(void)
{
    const char *builddir = g_getenv("HPF_BUILDDIR");
    char *path = g_build_filename(builddir ? builddir : ".", "tests", "plugins", ".libs",
                                  "abi_old_storage.so", NULL);
    GError *error = NULL;
    struct plugin_instance *pi = plugin_instance_new(
        plugin_dir_resolve(NULL), path, HPF_KIND_STORAGE, "storage", NULL, NULL, &error);
    g_free(path);
    if (!pi)
        fprintf(stderr, "\n%s\n", error->message);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_TRUE_FATAL(plugin_instance_start(pi, &error));
    struct admin a = {.storage = pi, .actor = "tester"};
    /* Changes go through without a record: it keeps no audit trail, and says so. */
    CU_ASSERT_FALSE(admin_audit_supported(&a));
    CU_ASSERT_TRUE(admin_user_add(&a, "olduser", FALSE, &error));
    GPtrArray *trail = admin_audit_list(&a, &(struct hpf_audit_query){.limit = 10}, &error);
    CU_ASSERT_PTR_NULL(trail);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_EQUAL(error->code, HPF_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "this storage keeps no audit trail"));
    g_clear_error(&error);
    CU_ASSERT_FALSE(admin_user_set_password(&a, "olduser", "pbkdf2-sha256$1000$x$y", &error));
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_EQUAL(error->code, HPF_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "abi_old_storage"));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "ABI 1.0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "needs ABI 1.2"));
    g_clear_error(&error);
    struct snapshot *s = admin_snapshot(&a, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->users->len, 1);
    CU_ASSERT_EQUAL(g_hash_table_size(s->passwords), 0);
    snapshot_free(s);
    plugin_instance_free(pi);
}

static void test_exports(void)
{
    check_exports("storage_sqlite.so", "sq_apply");
    check_exports("auth_storage.so", "auth_storage_authenticate");
}

static void test_wrong_kind_refused(void)
{
    char *path = g_build_filename(plugin_dir_resolve(NULL), "storage_sqlite.so", NULL);
    GError *error = NULL;
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), path, HPF_KIND_AUTH,
                                                     "auth", NULL, NULL, &error);
    g_free(path);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "storage_sqlite"));
    g_error_free(error);
}

/* host->cluster_inject() reaches the core only from the cluster plugin's context. */
static int injected_count;
static int count_inject(void *data, const struct hpf_message *msg)
{
    injected_count++;
    CU_ASSERT_PTR_EQUAL(data, &injected_count);
    CU_ASSERT_STRING_EQUAL(msg->channel, "c");
    return HPF_OK;
}

static void test_cluster_inject_routing(void)
{
    const struct hpf_host *host = plugin_host();
    int a, b; /* two stand-in plugin contexts: only their addresses matter */
    const struct hpf_plugin_ctx *ctx_a = (const struct hpf_plugin_ctx *)&a;
    const struct hpf_plugin_ctx *ctx_b = (const struct hpf_plugin_ctx *)&b;
    struct hpf_message msg = {.ident = "i", .owner = "o", .channel = "c"};
    CU_ASSERT_EQUAL(host->abi_minor, HPF_ABI_MINOR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(host->cluster_inject);
    CU_ASSERT_EQUAL(host->cluster_inject(ctx_a, &msg), HPF_ERR_UNSUPPORTED); /* no cluster */
    plugin_set_cluster_inject(count_inject, &injected_count, ctx_a);
    CU_ASSERT_EQUAL(host->cluster_inject(ctx_b, &msg), HPF_ERR_UNSUPPORTED); /* not it */
    CU_ASSERT_EQUAL(injected_count, 0);
    CU_ASSERT_EQUAL(host->cluster_inject(ctx_a, &msg), HPF_OK);
    CU_ASSERT_EQUAL(injected_count, 1);
    plugin_set_cluster_inject(NULL, NULL, NULL);
    CU_ASSERT_EQUAL(host->cluster_inject(ctx_a, &msg), HPF_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(injected_count, 1);
}

/* ---- ABI 1.4: old plugins, host config readers, names, auth flags ---- */

/* A directory for one test's files (plugins write out.txt there) and a config table. */
struct scratch {
    char *dir;
    GHashTable *conf;
};

static struct scratch scratch_new(void)
{
    struct scratch sc = {g_dir_make_tmp("hpf-abi-XXXXXX", NULL),
                         g_hash_table_new(g_str_hash, g_str_equal)};
    return sc;
}

static void scratch_free(struct scratch *sc)
{
    char *out = g_build_filename(sc->dir, "out.txt", NULL);
    g_unlink(out);
    g_free(out);
    CU_ASSERT_EQUAL(g_rmdir(sc->dir), 0);
    g_free(sc->dir);
    g_hash_table_unref(sc->conf);
}

/* module: a name looked up in the plugin dir, or a path; NULL (reason on stderr) on failure. */
static struct plugin_instance *expect_loaded(const char *module, enum hpf_kind kind,
                                             const char *name, const struct scratch *sc)
{
    GError *error = NULL;
    struct plugin_instance *pi =
        plugin_instance_new(plugin_dir_resolve(NULL), module, kind, name, sc ? sc->conf : NULL,
                            sc ? sc->dir : NULL, &error);
    if (!pi)
        fprintf(stderr, "\n%s: %s\n", module, error->message);
    g_clear_error(&error);
    CU_ASSERT_PTR_NOT_NULL(pi);
    return pi;
}

static void expect_refused(const char *module, enum hpf_kind kind, const char *name,
                           const struct scratch *sc, const char *fragment)
{
    GError *error = NULL;
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), module, kind, name,
                                                     sc->conf, sc->dir, &error);
    CU_ASSERT_PTR_NULL(pi);
    plugin_instance_free(pi);
    if (error && !strstr(error->message, fragment))
        fprintf(stderr, "\n'%s' lacks '%s'\n", error->message, fragment);
    CU_ASSERT_PTR_NOT_NULL(error && strstr(error->message, fragment));
    g_clear_error(&error);
}

static char *abi13_path(void)
{
    const char *builddir = g_getenv("HPF_BUILDDIR");
    return g_build_filename(builddir ? builddir : ".", "tests", "plugins", ".libs",
                            "abi13_plugin.so", NULL);
}

/* Every 1.3 field keeps its offset, every struct its size; 1.4 took reserved slots. */
static void test_abi13_layout(void)
{
    static const struct abi13_field now[] = {ABI13_FIELDS(ABI13_FIELD, ABI13_SIZE){NULL, 0}};
    const struct abi13_field *then = abi13_layout();
    for (gsize i = 0; now[i].what; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(then[i].what);
        CU_ASSERT_STRING_EQUAL(then[i].what, now[i].what);
        if (then[i].value != now[i].value)
            fprintf(stderr, "\n%s: %zu in ABI 1.3, %zu now\n", now[i].what, then[i].value,
                    now[i].value);
        CU_ASSERT_EQUAL(then[i].value, now[i].value);
    }
    CU_ASSERT_EQUAL(abi13_host_reserved(), offsetof(struct hpf_host, config_bool));
    CU_ASSERT_EQUAL(abi13_auth_ops_reserved(), offsetof(struct hpf_auth_ops, flags));
}

/* A plugin compiled against the 1.3 headers loads, reaches every 1.3 host call, and works. */
static void test_abi13_plugin_works(void)
{
    struct scratch sc = scratch_new();
    char *module = abi13_path();
    g_hash_table_insert(sc.conf, "path", "out.txt"); /* relative: config_path anchors it */
    g_hash_table_insert(sc.conf, "answer", "allow");
    struct plugin_instance *pi = expect_loaded(module, HPF_KIND_SINK, "sink:old", &sc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_EQUAL(pi->desc->abi_minor, 3);
    GError *error = NULL;
    CU_ASSERT_TRUE(plugin_instance_start(pi, &error));
    struct hpf_message msg = {.ident = "i", .owner = "o", .channel = "chan-1"};
    CU_ASSERT_EQUAL(pi->desc->sink->message(pi->inst, &msg), HPF_OK);
    plugin_instance_free(pi);

    char *out = g_build_filename(sc.dir, "out.txt", NULL), *text = NULL;
    CU_ASSERT_TRUE(g_file_get_contents(out, &text, NULL, NULL));
    CU_ASSERT_STRING_EQUAL(text ? text : "", "instance sink:old\nmessage chan-1\n");
    g_free(text);
    g_free(out);

    /* The same module as an auth plugin: its grant counts, it has no 1.4 flags. */
    pi = expect_loaded(module, HPF_KIND_AUTH, "old", &sc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    struct auth_request req;
    auth_request_init(&req);
    req.pub.ident = "someone";
    CU_ASSERT_EQUAL(pi->desc->auth->authenticate(pi->inst, &req.pub), HPF_AUTH_ALLOW);
    CU_ASSERT_TRUE(req.granted);
    CU_ASSERT_STRING_EQUAL(req.owner ? req.owner : "", "abi13-owner");
    CU_ASSERT_FALSE(plugin_auth_from_storage(pi));
    auth_request_clear(&req);
    plugin_instance_free(pi);
    g_free(module);
    scratch_free(&sc);
}

/* host->config_bool/size/uint: the broker's grammar, reasons naming the key. */
static void test_host_config_readers(void)
{
    struct scratch sc = scratch_new();
    char *module = abi13_path();
    g_hash_table_insert(sc.conf, "path", "out.txt");
    g_hash_table_insert(sc.conf, "n", "7");
    g_hash_table_insert(sc.conf, "flag", "YES");
    g_hash_table_insert(sc.conf, "size", "64k");
    struct plugin_instance *pi = expect_loaded(module, HPF_KIND_SINK, "sink:readers", &sc);
    g_free(module);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    const struct hpf_host *host = plugin_host();
    char err[256] = "";
    uint64_t u = 0;
    bool b = false;
    CU_ASSERT_EQUAL(host->config_uint(pi->ctx, "n", 0, 10, &u, err, sizeof err), HPF_OK);
    CU_ASSERT_EQUAL(u, 7);
    CU_ASSERT_EQUAL(host->config_bool(pi->ctx, "flag", &b, err, sizeof err), HPF_OK);
    CU_ASSERT_TRUE(b);
    CU_ASSERT_EQUAL(host->config_size(pi->ctx, "size", 0, UINT64_MAX, &u, err, sizeof err), HPF_OK);
    CU_ASSERT_EQUAL(u, 65536);
    /* Unset: HPF_OK, the default stays. */
    u = 42;
    CU_ASSERT_EQUAL(host->config_uint(pi->ctx, "answer", 0, 10, &u, err, sizeof err), HPF_OK);
    CU_ASSERT_EQUAL(u, 42);
    /* Out of range and unparsable: a reason naming the key and what was expected. */
    CU_ASSERT_EQUAL(host->config_size(pi->ctx, "size", 0, 1024, &u, err, sizeof err),
                    HPF_ERR_INVALID);
    CU_ASSERT_EQUAL(u, 42);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "size: expected a size in bytes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "got '64k'"));
    CU_ASSERT_EQUAL(host->config_bool(pi->ctx, "n", &b, err, sizeof err), HPF_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "n: expected true or false"));
    CU_ASSERT_EQUAL(host->config_uint(pi->ctx, "n", 8, 9, &u, err, sizeof err), HPF_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "n: expected a whole number from 8 to 9, got '7'"));
    CU_ASSERT_EQUAL(host->config_uint(pi->ctx, "n", 9, 8, &u, NULL, 0), HPF_ERR_INVALID);
    plugin_instance_free(pi);
    scratch_free(&sc);
}

/* Each shipped plugin's descriptor names its file; the short config value still finds it. */
static void test_names_are_file_names(void)
{
    GDir *d = g_dir_open(plugin_dir_resolve(NULL), 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    const char *f;
    int seen = 0;
    while ((f = g_dir_read_name(d))) {
        if (!g_str_has_suffix(f, ".so"))
            continue;
        char *path = g_build_filename(plugin_dir_resolve(NULL), f, NULL);
        GModule *m = g_module_open(path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
        gpointer sym = NULL;
        if (m && g_module_symbol(m, HPF_PLUGIN_ENTRY_SYMBOL, &sym) && sym) {
            char *stem = g_strndup(f, strlen(f) - 3);
            const struct hpf_plugin *p = ((hpf_plugin_entry_fn)sym)();
            if (strcmp(p->name, stem))
                fprintf(stderr, "\n%s names itself '%s'\n", f, p->name);
            CU_ASSERT_STRING_EQUAL(p->name, stem);
            g_free(stem);
            seen++;
        }
        if (m)
            g_module_close(m);
        g_free(path);
    }
    g_dir_close(d);
    CU_ASSERT(seen >= 5); /* storage_sqlite/file, auth_storage, sink_file/syslog at least */

    struct scratch sc = scratch_new();
    g_hash_table_insert(sc.conf, "path", "out.txt");
    struct plugin_instance *pi = expect_loaded("file", HPF_KIND_SINK, "sink:x", &sc);
    CU_ASSERT_STRING_EQUAL(pi ? pi->desc->name : "", "sink_file");
    plugin_instance_free(pi);
    scratch_free(&sc);
}

/* auth_storage says its grants come from storage (re-checked on reload); by flag, not name. */
static void test_auth_flag(void)
{
    struct plugin_instance *pi = expect_loaded("storage", HPF_KIND_AUTH, "storage", NULL);
    CU_ASSERT_TRUE(pi && plugin_auth_from_storage(pi));
    plugin_instance_free(pi);
}

/* The sinks read booleans, sizes and numbers with the host's grammar. */
static void test_sink_keys_grammar(void)
{
    struct scratch sc = scratch_new();
    g_hash_table_insert(sc.conf, "path", "out.txt");
    g_hash_table_insert(sc.conf, "messages", "No");
    g_hash_table_insert(sc.conf, "events", "1");
    g_hash_table_insert(sc.conf, "max_size", "1 MiB");
    g_hash_table_insert(sc.conf, "keep", "3");
    struct plugin_instance *pi = expect_loaded("file", HPF_KIND_SINK, "sink:x", &sc);
    CU_ASSERT_EQUAL(pi ? pi->desc->sink->instance_wants(pi->inst) : 0, HPF_SINK_EVENTS);
    plugin_instance_free(pi);
    g_hash_table_insert(sc.conf, "keep", "0");
    expect_refused("file", HPF_KIND_SINK, "sink:x", &sc, "[sink:x] keep: expected a whole number");
    g_hash_table_remove(sc.conf, "keep");
    g_hash_table_remove(sc.conf, "max_size");
    g_hash_table_remove(sc.conf, "path");
    g_hash_table_insert(sc.conf, "events", "yes");
    g_hash_table_insert(sc.conf, "preview", "8");
    pi = expect_loaded("syslog", HPF_KIND_SINK, "sink:s", &sc);
    CU_ASSERT_STRING_EQUAL(pi ? pi->desc->name : "", "sink_syslog");
    plugin_instance_free(pi);
    g_hash_table_insert(sc.conf, "preview", "lots");
    expect_refused("syslog", HPF_KIND_SINK, "sink:s", &sc, "[sink:s] preview: expected a whole");
    scratch_free(&sc);
}

#ifdef HPF_TEST_CLUSTER_NATS
static void test_cluster_nats(void)
{
    check_exports("cluster_nats.so", "subject_for");
    /* A cluster plugin is not a sink, and a sink is not a cluster plugin. */
    GError *error = NULL;
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), "cluster_nats",
                                                     HPF_KIND_SINK, "sink:x", NULL, NULL, &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "not a sink plugin"));
    g_clear_error(&error);
    char *sink = g_build_filename(plugin_dir_resolve(NULL), "sink_file.so", NULL);
    pi = plugin_instance_new(plugin_dir_resolve(NULL), sink, HPF_KIND_CLUSTER, "cluster", NULL,
                             NULL, &error);
    g_free(sink);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "not a cluster plugin"));
    g_clear_error(&error);
    /* Found as cluster_<name>.so; create() checks its keys without connecting. */
    GHashTable *conf = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(conf, "servers", "nats://127.0.0.1:1");
    /* No credentials and no allow_anonymous: refused. */
    pi = plugin_instance_new(plugin_dir_resolve(NULL), "nats", HPF_KIND_CLUSTER, "cluster", conf,
                             NULL, &error);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "no NATS credentials"));
    g_clear_error(&error);
    plugin_instance_free(pi);
    g_hash_table_insert(conf, "token", "t0ken");
    pi = plugin_instance_new(plugin_dir_resolve(NULL), "nats", HPF_KIND_CLUSTER, "cluster", conf,
                             NULL, &error);
    CU_ASSERT_PTR_NOT_NULL(pi);
    if (error)
        fprintf(stderr, "\nmessage: %s\n", error->message);
    g_clear_error(&error);
    plugin_instance_free(pi);
    /* Booleans in the broker's grammar: yes is true here as in [broker]. */
    struct scratch sc = {NULL, conf};
    g_hash_table_remove(conf, "token");
    g_hash_table_insert(conf, "allow_anonymous", "yes");
    g_hash_table_insert(conf, "tls", "yes");
    plugin_instance_free(expect_loaded("nats", HPF_KIND_CLUSTER, "cluster", &sc));
    g_hash_table_insert(conf, "tls", "maybe");
    expect_refused("nats", HPF_KIND_CLUSTER, "cluster", &sc,
                   "[cluster] tls: expected true or false");
    /* Sizes too: 64k is the host's grammar; under 1K is refused, naming the key. */
    g_hash_table_insert(conf, "tls", "no");
    g_hash_table_insert(conf, "queue_size", "64k");
    plugin_instance_free(expect_loaded("nats", HPF_KIND_CLUSTER, "cluster", &sc));
    g_hash_table_insert(conf, "queue_size", "512");
    expect_refused("nats", HPF_KIND_CLUSTER, "cluster", &sc,
                   "[cluster] queue_size: expected a size in bytes");
    g_hash_table_unref(conf);
}
#endif

int main(void)
{
    log_set_level(HPF_LOG_WARNING);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("plugin ABI", NULL, NULL);
    if (!suite || !CU_add_test(suite, "ABI major mismatch refused", test_abi_mismatch_refused) ||
        !CU_add_test(suite, "plugins export only the entry point", test_exports) ||
        !CU_add_test(suite, "ABI 1.0 storage still loads; passwords refused",
                     test_old_minor_storage) ||
        !CU_add_test(suite, "wrong kind refused", test_wrong_kind_refused) ||
        !CU_add_test(suite, "host->cluster_inject answers the cluster plugin only",
                     test_cluster_inject_routing) ||
        !CU_add_test(suite, "ABI 1.3 fields keep their offsets, structs their size",
                     test_abi13_layout) ||
        !CU_add_test(suite, "a plugin built against the 1.3 headers loads and works",
                     test_abi13_plugin_works) ||
        !CU_add_test(suite, "host config readers: the broker's grammar",
                     test_host_config_readers) ||
        !CU_add_test(suite, "descriptor name = .so name; plugin = file still finds sink_file",
                     test_names_are_file_names) ||
        !CU_add_test(suite, "auth_storage flags its grants as from storage", test_auth_flag) ||
        !CU_add_test(suite, "sinks read their keys with the host's grammar",
                     test_sink_keys_grammar) ||
#ifdef HPF_TEST_CLUSTER_NATS
        !CU_add_test(suite, "cluster_nats: kind, lookup, exports", test_cluster_nats) ||
#endif
        false)
        goto out;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
out:;
    int failed = CU_get_number_of_tests_failed() != 0 || CU_get_error() != CUE_SUCCESS ||
                 CU_get_number_of_suites_failed() != 0;
    CU_cleanup_registry();
    return failed;
}
