/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * auth_env through the real loader and host table: keys from
 * HPFEEDS_<IDENT>_* environment variables as hpfeeds-broker's --auth env
 * reads them (ident upper-cased in the name, owner defaulting to the ident,
 * ','-separated channel lists), copied when the plugin is created.
 */
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <CUnit/Basic.h>

#include "log.h"
#include "loader.h"

static char *tmpdir;
static struct plugin_instance *auth;

static const uint8_t nonce[4] = {0x01, 0x02, 0x03, 0x04};

static int suite_init(void)
{
    tmpdir = g_dir_make_tmp("hpf-auth-env-XXXXXX", NULL);
    if (!tmpdir)
        return -1;
    /* broker.rst's examples, plus an owner and a list with empty items. */
    g_setenv("HPFEEDS_JAMES_SECRET", "secret", TRUE);
    g_setenv("HPFEEDS_JAMES_SUBCHANS", "test-chan", TRUE);
    g_setenv("HPFEEDS_TEST_SECRET", "test", TRUE);
    g_setenv("HPFEEDS_TEST_OWNER", "tester", TRUE);
    g_setenv("HPFEEDS_TEST_PUBCHANS", "spam,,eggs,", TRUE);
    g_setenv("HPFEEDS_TEST_SUBCHANS", "spam", TRUE);
    g_setenv("HPFEEDS_EMPTY_SECRET", "", TRUE);
    GError *error = NULL;
    auth = plugin_instance_new(plugin_dir_resolve(NULL), "env", HPF_KIND_AUTH, "env", NULL, tmpdir,
                               &error);
    if (auth && !plugin_instance_start(auth, &error)) {
        plugin_instance_free(auth);
        auth = NULL;
    }
    if (!auth) {
        fprintf(stderr, "%s\n", error->message);
        g_error_free(error);
        return -1;
    }
    /* Read at create(): a later change is not seen. */
    g_setenv("HPFEEDS_LATE_SECRET", "late", TRUE);
    return 0;
}

static int suite_cleanup(void)
{
    plugin_instance_free(auth);
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return 0;
}

static int attempt(const char *ident, const char *secret, struct auth_request *req)
{
    static uint8_t hash[20];
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA1);
    g_checksum_update(c, nonce, sizeof nonce);
    g_checksum_update(c, (const guchar *)secret, (gssize)strlen(secret));
    gsize len = sizeof hash;
    g_checksum_get_digest(c, hash, &len);
    g_checksum_free(c);
    auth_request_init(req);
    req->pub.ident = ident;
    req->pub.nonce = nonce;
    req->pub.nonce_len = sizeof nonce;
    req->pub.hash = hash;
    req->pub.peer = "127.0.0.1:4242";
    return auth->desc->auth->authenticate(auth->inst, &req->pub);
}

static void test_allow_with_lists(void)
{
    struct auth_request req;
    CU_ASSERT_EQUAL(attempt("test", "test", &req), HPF_AUTH_ALLOW);
    CU_ASSERT_STRING_EQUAL(req.owner, "tester");
    CU_ASSERT_EQUAL_FATAL(req.publish->len, 2);
    CU_ASSERT_STRING_EQUAL(g_ptr_array_index(req.publish, 0), "spam");
    CU_ASSERT_STRING_EQUAL(g_ptr_array_index(req.publish, 1), "eggs");
    CU_ASSERT_EQUAL_FATAL(req.subscribe->len, 1);
    CU_ASSERT_STRING_EQUAL(g_ptr_array_index(req.subscribe, 0), "spam");
    auth_request_clear(&req);
}

static void test_owner_default_and_case(void)
{
    struct auth_request req;
    /* james and JAMES are one key (the variable names the ident upper-cased). */
    CU_ASSERT_EQUAL(attempt("james", "secret", &req), HPF_AUTH_ALLOW);
    CU_ASSERT_STRING_EQUAL(req.owner, "james");
    CU_ASSERT_EQUAL(req.publish->len, 0);
    CU_ASSERT_EQUAL(req.subscribe->len, 1);
    auth_request_clear(&req);
    CU_ASSERT_EQUAL(attempt("JAMES", "secret", &req), HPF_AUTH_ALLOW);
    auth_request_clear(&req);
}

static void test_deny_and_defer(void)
{
    struct auth_request req;
    CU_ASSERT_EQUAL(attempt("test", "wrong", &req), HPF_AUTH_DENY);
    CU_ASSERT_FALSE(req.granted);
    auth_request_clear(&req);
    CU_ASSERT_EQUAL(attempt("nobody", "x", &req), HPF_AUTH_DEFER);
    auth_request_clear(&req);
    CU_ASSERT_EQUAL(attempt("empty", "", &req), HPF_AUTH_DEFER); /* empty secret: no key */
    auth_request_clear(&req);
    CU_ASSERT_EQUAL(attempt("late", "late", &req), HPF_AUTH_DEFER);
    auth_request_clear(&req);
    CU_ASSERT_EQUAL(attempt("bad\001ident", "x", &req), HPF_AUTH_DEFER);
    auth_request_clear(&req);
}

int main(void)
{
    log_set_level(HPF_LOG_WARNING);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("auth_env", suite_init, suite_cleanup);
    if (!suite || !CU_add_test(suite, "owner and channel lists", test_allow_with_lists) ||
        !CU_add_test(suite, "owner defaults to the ident; ident case",
                     test_owner_default_and_case) ||
        !CU_add_test(suite, "wrong secret denies; unknown, empty, late defer", test_deny_and_defer))
        goto out;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
out:;
    int failed = CU_get_number_of_tests_failed() != 0 || CU_get_error() != CUE_SUCCESS ||
                 CU_get_number_of_suites_failed() != 0;
    CU_cleanup_registry();
    return failed;
}
