/* SPDX-License-Identifier: BSD-3-Clause */
/* Per-address connection caps and AUTH-failure back-off. */
#include <arpa/inet.h>
#include <string.h>

#include "../common/cunit_run.h"
#include "ipguard.h"

static void test_cap(void)
{
    struct ipguard *g = ipguard_new(2, 0, 10);
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.1"));
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.1"));
    const char *why = ipguard_admit(g, "10.0.0.1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "Too many connections"));
    /* Another address is not affected. */
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.2"));
    ipguard_release(g, "10.0.0.1");
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.1"));
    /* Releasing more than was admitted never underflows. */
    for (int i = 0; i < 5; i++)
        ipguard_release(g, "10.0.0.2");
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.2"));
    ipguard_free(g);
}

static void test_unlimited(void)
{
    struct ipguard *g = ipguard_new(0, 0, 10);
    for (int i = 0; i < 10000; i++)
        CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.1"));
    CU_ASSERT_EQUAL(ipguard_tracked(g), 1);
    ipguard_free(g);
}

static void test_backoff(void)
{
    struct ipguard *g = ipguard_new(0, 3, 60);
    ipguard_auth_failed(g, "10.0.0.9");
    ipguard_auth_failed(g, "10.0.0.9");
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.9"));
    ipguard_auth_failed(g, "10.0.0.9");
    const char *why = ipguard_admit(g, "10.0.0.9");
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "authentication failures"));
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.10"));
    /* Expiry keeps an address that is blocked. */
    ipguard_expire(g);
    CU_ASSERT_PTR_NOT_NULL(ipguard_admit(g, "10.0.0.9"));
    ipguard_free(g);

    /* Threshold 0: never blocks. */
    g = ipguard_new(0, 0, 60);
    for (int i = 0; i < 100; i++)
        ipguard_auth_failed(g, "10.0.0.9");
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.9"));
    ipguard_free(g);
}

static void test_login_pending(void)
{
    /* Checks in progress are bounded on their own (2 at once here) and do
     * not count as failures: correct logins side by side never back off. */
    struct ipguard *g = ipguard_new(2, 3, 60);
    CU_ASSERT_PTR_NULL(ipguard_login_begin(g, "10.0.0.9"));
    CU_ASSERT_PTR_NULL(ipguard_login_begin(g, "10.0.0.9"));
    const char *why = ipguard_login_begin(g, "10.0.0.9");
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "at once"));
    CU_ASSERT_PTR_NULL(ipguard_login_begin(g, "10.0.0.10"));
    /* Ten correct checks, one after another with a second running. */
    for (int i = 0; i < 10; i++) {
        ipguard_release(g, "10.0.0.9");
        CU_ASSERT_PTR_NULL(ipguard_login_begin(g, "10.0.0.9"));
    }
    /* Failures count when checks end: two are not yet the threshold... */
    ipguard_auth_failed(g, "10.0.0.9");
    ipguard_release(g, "10.0.0.9");
    ipguard_auth_failed(g, "10.0.0.9");
    ipguard_release(g, "10.0.0.9");
    CU_ASSERT_PTR_NULL(ipguard_login_begin(g, "10.0.0.9"));
    /* ...the third is: blocked even with none running. */
    ipguard_auth_failed(g, "10.0.0.9");
    ipguard_release(g, "10.0.0.9");
    why = ipguard_login_begin(g, "10.0.0.9");
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "wrong passwords"));
    /* The wait left is known (to name it in the refusal), and it doubles. */
    guint left = ipguard_blocked_seconds(g, "10.0.0.9");
    CU_ASSERT(left >= 59 && left <= 60);
    CU_ASSERT_EQUAL(ipguard_blocked_seconds(g, "10.0.0.10"), 0);
    CU_ASSERT_EQUAL(ipguard_blocked_seconds(g, "10.9.9.9"), 0);
    for (int i = 0; i < 3; i++)
        ipguard_auth_failed(g, "10.0.0.9");
    left = ipguard_blocked_seconds(g, "10.0.0.9");
    CU_ASSERT(left >= 119 && left <= 120);
    ipguard_free(g);

    /* No concurrency cap (0): only failures count. */
    g = ipguard_new(0, 3, 60);
    for (int i = 0; i < 100; i++)
        CU_ASSERT_PTR_NULL(ipguard_login_begin(g, "10.0.0.9"));
    ipguard_free(g);
}

static void test_keys(void)
{
    char key[64];
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(1234)};
    inet_pton(AF_INET, "192.0.2.7", &in4.sin_addr);
    ipguard_key((struct sockaddr *)&in4, key, sizeof key);
    CU_ASSERT_STRING_EQUAL(key, "192.0.2.7");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
    ipguard_key((struct sockaddr *)&in6, key, sizeof key);
    CU_ASSERT_STRING_EQUAL(key, "2001:db8::1");
}

struct seen {
    guint calls, count;
    char key[48];
    const char *why;
};

static void note(void *ud, const char *key, guint count, gint64 first_us, const char *why)
{
    struct seen *s = ud;
    s->calls++;
    s->count += count;
    g_strlcpy(s->key, key, sizeof s->key);
    s->why = why;
}

static void test_refusal_summaries(void)
{
    struct ipguard *g = ipguard_new(1, 0, 60);
    struct seen s = {0};
    /* Not counted unless asked (the console's guards never report). */
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.1"));
    CU_ASSERT_PTR_NOT_NULL(ipguard_admit(g, "10.0.0.1"));
    CU_ASSERT_EQUAL(ipguard_summaries(g, 10, TRUE, note, &s), 0);
    ipguard_count_refusals(g);
    for (int i = 0; i < 57; i++)
        CU_ASSERT_PTR_NOT_NULL(ipguard_admit(g, "10.0.0.1"));
    CU_ASSERT_PTR_NULL(ipguard_admit(g, "10.0.0.2"));
    CU_ASSERT_PTR_NOT_NULL(ipguard_admit(g, "10.0.0.2"));
    /* The window (a minute) is not over: nothing yet. */
    CU_ASSERT_EQUAL(ipguard_summaries(g, 10, FALSE, note, &s), 0);
    /* An address with refusals to report is not expired meanwhile. */
    ipguard_release(g, "10.0.0.1");
    ipguard_expire(g);
    CU_ASSERT_EQUAL(ipguard_tracked(g), 2);
    /* At most max a call; flushed, each address once with its total. */
    CU_ASSERT_EQUAL(ipguard_summaries(g, 1, TRUE, note, &s), 2);
    CU_ASSERT_EQUAL(s.calls, 2);
    CU_ASSERT_EQUAL(s.count, 58);
    CU_ASSERT_STRING_EQUAL(s.why, "too many connections from one address");
    CU_ASSERT_EQUAL(ipguard_summaries(g, 10, TRUE, note, &s), 0);
    ipguard_free(g);

    /* Back-off refusals are reported once the block is over, not a minute on. */
    g = ipguard_new(0, 1, 1);
    ipguard_count_refusals(g);
    memset(&s, 0, sizeof s);
    gint64 start = g_get_monotonic_time();
    ipguard_auth_failed(g, "10.0.0.3");
    for (int i = 0; i < 5; i++)
        CU_ASSERT_PTR_NOT_NULL(ipguard_admit(g, "10.0.0.3"));
    CU_ASSERT_EQUAL(ipguard_summaries(g, 10, FALSE, note, &s), 0);
    /* The block lasts a second: reported within a few once it ends. */
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    guint n = 0;
    while (!n && g_get_monotonic_time() < deadline) {
        n = ipguard_summaries(g, 10, FALSE, note, &s);
        if (!n)
            g_usleep(20 * 1000);
    }
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(g_get_monotonic_time() - start >= G_USEC_PER_SEC);
    CU_ASSERT_EQUAL(s.count, 5);
    CU_ASSERT_STRING_EQUAL(s.key, "10.0.0.3");
    CU_ASSERT_STRING_EQUAL(s.why, "too many authentication failures");
    ipguard_free(g);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"per-address cap", test_cap},
        {"no cap", test_unlimited},
        {"auth failure back-off", test_backoff},
        {"logins in progress count", test_login_pending},
        {"address keys", test_keys},
        {"refusals summarised per address", test_refusal_summaries},
        {NULL, NULL},
    };
    return cunit_run("ipguard", cases);
}
