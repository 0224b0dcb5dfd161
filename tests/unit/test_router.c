/* SPDX-License-Identifier: BSD-3-Clause */
/* Router: subscribe, dedupe, unsubscribe, removal in any order; cached views. */
#include <glib.h>

#include "../common/cunit_run.h"
#include "router.h"

static int a, b, c; /* three distinct subscriber identities */

static gboolean has(const GPtrArray *subs, void *p)
{
    for (guint i = 0; subs && i < subs->len; i++)
        if (subs->pdata[i] == p)
            return TRUE;
    return FALSE;
}

static void test_subscribe_dedupe(void)
{
    struct router *r = router_new();
    CU_ASSERT_PTR_NULL(router_subscribers(r, "x"));
    CU_ASSERT_TRUE(router_subscribe(r, "x", &a));
    CU_ASSERT_FALSE(router_subscribe(r, "x", &a));
    CU_ASSERT_TRUE(router_subscribe(r, "x", &b));
    CU_ASSERT_TRUE(router_subscribe(r, "y", &a));
    const GPtrArray *s = router_subscribers(r, "x");
    CU_ASSERT_EQUAL_FATAL(s->len, 2);
    CU_ASSERT_TRUE(has(s, &a) && has(s, &b));
    CU_ASSERT_EQUAL(router_subscription_count(r), 3);
    CU_ASSERT_EQUAL(router_channel_count(r), 2);
    router_free(r);
}

static void test_unsubscribe(void)
{
    struct router *r = router_new();
    CU_ASSERT_FALSE(router_unsubscribe(r, "x", &a));
    router_subscribe(r, "x", &a);
    router_subscribe(r, "x", &b);
    router_subscribe(r, "x", &c);
    CU_ASSERT_FALSE(router_unsubscribe(r, "y", &a));
    /* Remove from the middle, the end, the start. */
    CU_ASSERT_TRUE(router_unsubscribe(r, "x", &b));
    CU_ASSERT_FALSE(has(router_subscribers(r, "x"), &b));
    CU_ASSERT_TRUE(has(router_subscribers(r, "x"), &a));
    CU_ASSERT_TRUE(has(router_subscribers(r, "x"), &c));
    CU_ASSERT_TRUE(router_unsubscribe(r, "x", &c));
    CU_ASSERT_FALSE(router_unsubscribe(r, "x", &c));
    CU_ASSERT_TRUE(router_unsubscribe(r, "x", &a));
    /* An empty channel is gone. */
    CU_ASSERT_PTR_NULL(router_subscribers(r, "x"));
    CU_ASSERT_EQUAL(router_channel_count(r), 0);
    CU_ASSERT_EQUAL(router_subscription_count(r), 0);
    router_free(r);
}

static void test_many(void)
{
    struct router *r = router_new();
    enum { N = 5000 };
    static char subs[N];
    for (int i = 0; i < N; i++)
        CU_ASSERT_TRUE(router_subscribe(r, "big", &subs[i]));
    /* Remove every other one, then check membership is exact. */
    for (int i = 0; i < N; i += 2)
        CU_ASSERT_TRUE(router_unsubscribe(r, "big", &subs[i]));
    const GPtrArray *s = router_subscribers(r, "big");
    CU_ASSERT_EQUAL_FATAL(s->len, N / 2);
    GHashTable *seen = g_hash_table_new(NULL, NULL);
    for (guint i = 0; i < s->len; i++)
        g_hash_table_add(seen, s->pdata[i]);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(g_hash_table_contains(seen, &subs[i]), i % 2 == 1);
    g_hash_table_unref(seen);
    router_free(r);
}

/* What the interest callback was told, as "+chan" / "-chan" lines. */
static void record_interest(void *data, const char *chan, gboolean on)
{
    g_string_append_printf(data, "%c%s\n", on ? '+' : '-', chan);
}

static void test_interest(void)
{
    struct router *r = router_new();
    GString *log = g_string_new(NULL);
    char s1, s2;
    router_set_interest(r, record_interest, log);
    CU_ASSERT_TRUE(router_subscribe(r, "x", &s1));   /* first: +x */
    CU_ASSERT_TRUE(router_subscribe(r, "x", &s2));   /* second: nothing */
    CU_ASSERT_FALSE(router_subscribe(r, "x", &s1));  /* again: nothing */
    CU_ASSERT_TRUE(router_subscribe(r, "y", &s1));   /* +y */
    CU_ASSERT_TRUE(router_unsubscribe(r, "x", &s1)); /* s2 is left: nothing */
    CU_ASSERT_FALSE(router_unsubscribe(r, "x", &s1));
    CU_ASSERT_TRUE(router_unsubscribe(r, "x", &s2)); /* last: -x */
    CU_ASSERT_TRUE(router_subscribe(r, "x", &s2));   /* back: +x */
    CU_ASSERT_STRING_EQUAL(log->str, "+x\n+y\n-x\n+x\n");
    router_set_interest(r, NULL, NULL);
    CU_ASSERT_TRUE(router_unsubscribe(r, "y", &s1)); /* off: not told */
    CU_ASSERT_STRING_EQUAL(log->str, "+x\n+y\n-x\n+x\n");
    g_string_free(log, TRUE);
    router_free(r);
}

/* A view's question: keep the subscribers not equal to *ctx's "except"; count the asks. */
struct ask {
    void *except;
    guint calls;
};

static gboolean keep_but(void *sub, void *ctx)
{
    struct ask *q = ctx;
    q->calls++;
    return sub != q->except;
}

static void test_view_cached(void)
{
    struct router *r = router_new();
    struct ask q = {.except = &b};
    CU_ASSERT_PTR_NULL(router_view(r, "x", "alice", 1, keep_but, &q));
    router_subscribe(r, "x", &a);
    router_subscribe(r, "x", &b);
    const GPtrArray *v = router_view(r, "x", "alice", 1, keep_but, &q);
    CU_ASSERT_EQUAL_FATAL(v->len, 1);
    CU_ASSERT_TRUE(has(v, &a));
    CU_ASSERT_EQUAL(q.calls, 2);
    /* Asked again, unchanged: decided once, not per message. */
    for (int i = 0; i < 100; i++)
        v = router_view(r, "x", "alice", 1, keep_but, &q);
    CU_ASSERT_EQUAL(q.calls, 2);
    CU_ASSERT_EQUAL(v->len, 1);
    /* Another key is another question. */
    struct ask q2 = {.except = &a};
    v = router_view(r, "x", "bob", 1, keep_but, &q2);
    CU_ASSERT_TRUE(v->len == 1 && has(v, &b));
    CU_ASSERT_EQUAL(q2.calls, 2);
    router_free(r);
}

static void test_view_invalidated(void)
{
    struct router *r = router_new();
    struct ask q = {.except = &b};
    router_subscribe(r, "x", &a);
    router_subscribe(r, "x", &b);
    router_subscribe(r, "y", &c);
    router_view(r, "x", "alice", 1, keep_but, &q);
    CU_ASSERT_EQUAL(q.calls, 2);
    /* Another channel's change leaves x's view alone. */
    router_subscribe(r, "y", &a);
    router_view(r, "x", "alice", 1, keep_but, &q);
    CU_ASSERT_EQUAL(q.calls, 2);
    /* A new subscriber of x: asked again, and it is in. */
    router_subscribe(r, "x", &c);
    const GPtrArray *v = router_view(r, "x", "alice", 1, keep_but, &q);
    CU_ASSERT_EQUAL(q.calls, 5);
    CU_ASSERT_TRUE(v->len == 2 && has(v, &a) && has(v, &c));
    /* One leaves: gone from the view. */
    router_unsubscribe(r, "x", &a);
    v = router_view(r, "x", "alice", 1, keep_but, &q);
    CU_ASSERT_TRUE(v->len == 1 && has(v, &c));
    CU_ASSERT_EQUAL(q.calls, 7);
    /* A new stamp (the answers may have changed): asked again. */
    q.except = &c;
    v = router_view(r, "x", "alice", 2, keep_but, &q);
    CU_ASSERT_TRUE(v->len == 1 && has(v, &b));
    CU_ASSERT_EQUAL(q.calls, 9);
    router_free(r);
}

static void test_view_bounded(void)
{
    struct router *r = router_new();
    struct ask q = {.except = NULL};
    router_subscribe(r, "x", &a);
    char key[16];
    /* Many keys: at most ROUTER_MAX_VIEWS are kept, and every answer stays right. */
    for (int i = 0; i < 3 * ROUTER_MAX_VIEWS; i++) {
        g_snprintf(key, sizeof key, "k%d", i);
        const GPtrArray *v = router_view(r, "x", key, 1, keep_but, &q);
        CU_ASSERT_TRUE(v->len == 1 && has(v, &a));
    }
    guint before = q.calls;
    router_view(r, "x", key, 1, keep_but, &q); /* the last is still cached */
    CU_ASSERT_EQUAL(q.calls, before);
    router_view(r, "x", "k0", 1, keep_but, &q); /* the first was dropped */
    CU_ASSERT_EQUAL(q.calls, before + 1);
    router_free(r);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"subscribe and dedupe", test_subscribe_dedupe},
        {"unsubscribe in any order", test_unsubscribe},
        {"5000 subscribers", test_many},
        {"interest follows first and last subscriber", test_interest},
        {"a view is decided once per change", test_view_cached},
        {"a view is decided again after a change or a new stamp", test_view_invalidated},
        {"views per channel are bounded", test_view_bounded},
        {NULL, NULL},
    };
    return cunit_run("router", cases);
}
