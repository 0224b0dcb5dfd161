/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * auth_storage through the real loader and host table, answering from a
 * real storage_sqlite instance.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <CUnit/Basic.h>

#include "log.h"
#include "loader.h"

static char *tmpdir;
static struct plugin_instance *storage;
static struct plugin_instance *auth;

static const uint8_t nonce[4] = {0xde, 0xad, 0xbe, 0xef};

static struct plugin_instance *load(const char *module, enum hpf_kind kind, GHashTable *cfg,
                                    GError **error)
{
    struct plugin_instance *pi =
        plugin_instance_new(plugin_dir_resolve(NULL), module, kind, module, cfg, tmpdir, error);
    if (pi && !plugin_instance_start(pi, error)) {
        plugin_instance_free(pi);
        pi = NULL;
    }
    return pi;
}

static int suite_init(void)
{
    tmpdir = g_dir_make_tmp("hpf-auth-XXXXXX", NULL);
    if (!tmpdir)
        return -1;
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(cfg, (gpointer) "path", (gpointer) "auth.db");
    GError *error = NULL;
    storage = load("sqlite", HPF_KIND_STORAGE, cfg, &error);
    g_hash_table_unref(cfg);
    if (!storage) {
        fprintf(stderr, "%s\n", error->message);
        g_error_free(error);
        return -1;
    }
    plugin_set_storage(storage);
    auth = load("storage", HPF_KIND_AUTH, NULL, &error);
    if (!auth) {
        fprintf(stderr, "%s\n", error->message);
        g_error_free(error);
        return -1;
    }

    static const char *const pub[] = {"p1", "p2"};
    static const char *const sub[] = {"s1"};
    const struct hpf_authkey key = {.ident = "a1",
                                    .owner = "alice",
                                    .secret = "s3cret",
                                    .publish = pub,
                                    .n_publish = 2,
                                    .subscribe = sub,
                                    .n_subscribe = 1};
    const struct hpf_mutation setup[] = {
        {.op = HPF_MUT_USER_ADD, .user = "alice"},
        {.op = HPF_MUT_AUTHKEY_ADD, .authkey = &key},
    };
    char err[256];
    return storage->desc->storage->apply(storage->inst, setup, 2, err, sizeof err) == HPF_OK ? 0
                                                                                             : -1;
}

static int suite_cleanup(void)
{
    plugin_instance_free(auth);
    plugin_instance_free(storage);
    static const char *const files[] = {"auth.db", "auth.db-wal", "auth.db-shm"};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        char *p = g_build_filename(tmpdir, files[i], NULL);
        g_remove(p);
        g_free(p);
    }
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return 0;
}

/* SHA-1(nonce || secret), computed here independently of the core's codec. */
static void make_hash(const char *secret, uint8_t out[20])
{
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA1);
    g_checksum_update(c, nonce, sizeof nonce);
    g_checksum_update(c, (const guchar *)secret, (gssize)strlen(secret));
    gsize len = 20;
    g_checksum_get_digest(c, out, &len);
    g_checksum_free(c);
}

static int attempt(const char *ident, const char *secret, struct auth_request *req,
                   uint8_t hash[20])
{
    auth_request_init(req);
    make_hash(secret, hash);
    req->pub.ident = ident;
    req->pub.nonce = nonce;
    req->pub.nonce_len = sizeof nonce;
    req->pub.hash = hash;
    req->pub.peer = "127.0.0.1:4242";
    return auth->desc->auth->authenticate(auth->inst, &req->pub);
}

static void test_descriptor(void)
{
    CU_ASSERT_STRING_EQUAL(auth->desc->name, "auth_storage");
    CU_ASSERT_EQUAL(auth->desc->kinds, HPF_KIND_AUTH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(auth->desc->config_keys);
    CU_ASSERT_PTR_NULL(auth->desc->config_keys[0]);

    /* It accepts no keys at all. */
    GHashTable *cfg = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(cfg, (gpointer) "path", (gpointer) "x");
    GError *error = NULL;
    struct plugin_instance *pi = load("storage", HPF_KIND_AUTH, cfg, &error);
    g_hash_table_unref(cfg);
    CU_ASSERT_PTR_NULL(pi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "path: unknown key"));
    g_error_free(error);
}

static void test_allow(void)
{
    struct auth_request req;
    uint8_t hash[20];
    CU_ASSERT_EQUAL(attempt("a1", "s3cret", &req, hash), HPF_AUTH_ALLOW);
    CU_ASSERT_TRUE(req.granted);
    CU_ASSERT_STRING_EQUAL(req.owner, "alice");
    CU_ASSERT_PTR_NOT_NULL_FATAL(req.publish);
    CU_ASSERT_EQUAL_FATAL(req.publish->len, 2);
    CU_ASSERT_STRING_EQUAL(g_ptr_array_index(req.publish, 0), "p1");
    CU_ASSERT_STRING_EQUAL(g_ptr_array_index(req.publish, 1), "p2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(req.subscribe);
    CU_ASSERT_EQUAL_FATAL(req.subscribe->len, 1);
    CU_ASSERT_STRING_EQUAL(g_ptr_array_index(req.subscribe, 0), "s1");
    auth_request_clear(&req);
}

static void test_deny_wrong_secret(void)
{
    struct auth_request req;
    uint8_t hash[20];
    CU_ASSERT_EQUAL(attempt("a1", "guess", &req, hash), HPF_AUTH_DENY);
    CU_ASSERT_FALSE(req.granted);
    CU_ASSERT_PTR_NULL(req.owner);
    auth_request_clear(&req);
}

static void test_defer_unknown(void)
{
    struct auth_request req;
    uint8_t hash[20];
    CU_ASSERT_EQUAL(attempt("nobody", "s3cret", &req, hash), HPF_AUTH_DEFER);
    CU_ASSERT_FALSE(req.granted);
    auth_request_clear(&req);
}

static void test_fail_closed(void)
{
    struct auth_request req;
    uint8_t hash[20];
    /* No storage behind the host: the lookup errors, and an error is
     * HPF_AUTH_ERROR, which the broker treats as a deny (fail closed). */
    plugin_set_storage(NULL);
    CU_ASSERT_EQUAL(attempt("a1", "s3cret", &req, hash), HPF_AUTH_ERROR);
    CU_ASSERT_FALSE(req.granted);
    auth_request_clear(&req);
    plugin_set_storage(storage);
    CU_ASSERT_EQUAL(attempt("a1", "s3cret", &req, hash), HPF_AUTH_ALLOW);
    auth_request_clear(&req);
}

int main(void)
{
    log_set_level(HPF_LOG_WARNING);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("auth_storage", suite_init, suite_cleanup);
    if (!suite || !CU_add_test(suite, "descriptor and config keys", test_descriptor) ||
        !CU_add_test(suite, "right secret: allow and grant", test_allow) ||
        !CU_add_test(suite, "wrong secret: deny", test_deny_wrong_secret) ||
        !CU_add_test(suite, "unknown ident: defer", test_defer_unknown) ||
        !CU_add_test(suite, "lookup error: deny", test_fail_closed))
        goto out;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
out:;
    int failed = CU_get_number_of_tests_failed() != 0 || CU_get_error() != CUE_SUCCESS ||
                 CU_get_number_of_suites_failed() != 0;
    CU_cleanup_registry();
    return failed;
}
