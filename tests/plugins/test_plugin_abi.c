/*
 * The loader against this directory's plugins: a module built for another
 * ABI major is refused with a message naming it and both versions; the
 * shipped plugins export nothing but their entry point.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include <CUnit/Basic.h>

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
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), path,
                                                     HPF_KIND_SINK, "sink:mismatch", NULL,
                                                     NULL, &error);
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
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), path,
                                                     HPF_KIND_STORAGE, "storage", NULL, NULL,
                                                     &error);
    g_free(path);
    if (!pi)
        fprintf(stderr, "\n%s\n", error->message);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi);
    CU_ASSERT_TRUE_FATAL(plugin_instance_start(pi, &error));
    struct admin a = {.storage = pi};
    CU_ASSERT_TRUE(admin_user_add(&a, "olduser", FALSE, &error));
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
    struct plugin_instance *pi =
        plugin_instance_new(plugin_dir_resolve(NULL), path, HPF_KIND_AUTH, "auth", NULL, NULL,
                            &error);
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
