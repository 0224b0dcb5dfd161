/* SPDX-License-Identifier: BSD-3-Clause */
/* Console password hashes: format, round trip, refusals, bounds. */
#include <string.h>

#include <glib.h>

#include "../common/cunit_run.h"
#include "password.h"

static void test_round_trip(void)
{
    char *h = password_hash("correct horse", 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_TRUE(g_str_has_prefix(h, "pbkdf2-sha256$1000$"));
    CU_ASSERT_PTR_NULL(strstr(h, "correct horse"));
    CU_ASSERT_TRUE(password_verify("correct horse", h));
    CU_ASSERT_FALSE(password_verify("correct horsf", h));
    CU_ASSERT_FALSE(password_verify("", h));
    CU_ASSERT_FALSE(password_verify(NULL, h));
    g_free(h);
}

static void test_salted(void)
{
    char *a = password_hash("same", 1000);
    char *b = password_hash("same", 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_TRUE(password_verify("same", a) && password_verify("same", b));
    g_free(a);
    g_free(b);
}

static void test_default_iterations(void)
{
    char *h = password_hash("x", PASSWORD_ITERATIONS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_TRUE(g_str_has_prefix(h, "pbkdf2-sha256$600000$"));
    CU_ASSERT_TRUE(password_verify("x", h));
    g_free(h);
}

static void test_malformed(void)
{
    char *h = password_hash("pw", 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    const char *bad[] = {
        "",
        "plain",
        "pbkdf2-sha256$",
        "pbkdf2-sha256$1000$",
        "pbkdf2-sha256$1000$abc",
        "pbkdf2-sha256$x$c2FsdHNhbHQ=$aGFzaA==",
        "pbkdf2-sha256$1$c2FsdHNhbHQ=$aGFzaA==",
        "pbkdf2-sha256$99999999999$c2FsdHNhbHQ=$aGFzaA==",
        "pbkdf2-sha256$1000$c2FsdHNhbHQ=$aGFzaA==", /* hash of the wrong length */
        "md5$1000$c2FsdHNhbHQ=$aGFzaA==",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
        CU_ASSERT_FALSE(password_verify("pw", bad[i]));
    CU_ASSERT_FALSE(password_verify("pw", NULL));
    /* One changed character of the stored hash. */
    char *t = g_strdup(h);
    t[strlen(t) - 3] = t[strlen(t) - 3] == 'A' ? 'B' : 'A';
    CU_ASSERT_FALSE(password_verify("pw", t));
    g_free(t);
    g_free(h);
}

static void test_iterations_from_environment(void)
{
    CU_ASSERT_EQUAL(password_iterations(), PASSWORD_ITERATIONS);
    g_setenv("HPFRIENDS_PASSWORD_ITERATIONS", "2000", TRUE);
    CU_ASSERT_EQUAL(password_iterations(), 2000);
    g_setenv("HPFRIENDS_PASSWORD_ITERATIONS", "5", TRUE); /* below the floor: ignored */
    CU_ASSERT_EQUAL(password_iterations(), PASSWORD_ITERATIONS);
    g_setenv("HPFRIENDS_PASSWORD_ITERATIONS", "lots", TRUE);
    CU_ASSERT_EQUAL(password_iterations(), PASSWORD_ITERATIONS);
    g_unsetenv("HPFRIENDS_PASSWORD_ITERATIONS");
}

static void test_bounds(void)
{
    CU_ASSERT_PTR_NULL(password_hash("pw", 10));
    CU_ASSERT_PTR_NULL(password_hash("pw", 100000000));
    CU_ASSERT_PTR_NULL(password_hash(NULL, 1000));
}

int main(void)
{
    static const struct test_case cases[] = {
        {"hash and verify", test_round_trip},
        {"a salt per hash", test_salted},
        {"default iteration count", test_default_iterations},
        {"malformed stored values", test_malformed},
        {"iteration bounds", test_bounds},
        {"iterations from the environment", test_iterations_from_environment},
        {NULL, NULL},
    };
    return cunit_run("password", cases);
}
