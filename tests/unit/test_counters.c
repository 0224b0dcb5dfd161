/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-authkey traffic counters (core/counters.c): the table's sums, how
 * it is emptied for a save, how a connection's counts move into it, and the
 * console's view of what is not saved yet.  Connections here are bufferevent
 * pairs in a broker made up for the test; no loop runs.
 */
#include <event2/bufferevent.h>

#include "../common/cunit_run.h"
#include "broker.h"
#include "counters.h"

static struct hpf_counters delta(guint64 pm, guint64 pb, guint64 rm, guint64 rb)
{
    return (struct hpf_counters){
        .published_msgs = pm, .published_bytes = pb, .received_msgs = rm, .received_bytes = rb};
}

#define ASSERT_COUNTS(c, pm, pb, rm, rb)            \
    do {                                            \
        CU_ASSERT_EQUAL((c).published_msgs, (pm));  \
        CU_ASSERT_EQUAL((c).published_bytes, (pb)); \
        CU_ASSERT_EQUAL((c).received_msgs, (rm));   \
        CU_ASSERT_EQUAL((c).received_bytes, (rb));  \
    } while (0)

static void test_add_get(void)
{
    struct counters *cs = counters_new();
    struct hpf_counters out, d = delta(1, 10, 2, 20);
    d.ident = "ignored";
    CU_ASSERT_FALSE(counters_get(cs, "a", &out));
    ASSERT_COUNTS(out, 0, 0, 0, 0);
    CU_ASSERT_STRING_EQUAL(out.ident, "a");

    counters_add(cs, "a", &d);
    counters_add(cs, "a", &d);
    d = delta(0, 0, 5, 7);
    counters_add(cs, "b", &d);
    CU_ASSERT_EQUAL(counters_size(cs), 2);
    CU_ASSERT_TRUE(counters_get(cs, "a", &out));
    ASSERT_COUNTS(out, 2, 20, 4, 40);
    CU_ASSERT_STRING_EQUAL(out.ident, "a");
    CU_ASSERT_TRUE(counters_get(cs, "b", &out));
    ASSERT_COUNTS(out, 0, 0, 5, 7);
    CU_ASSERT_FALSE(counters_get(cs, "ignored", &out));
    CU_ASSERT_FALSE(counters_get(cs, NULL, &out));
    counters_free(cs);
    counters_free(NULL);
}

/* Nothing to count makes no entry: a save would write a useless row. */
static void test_zero_and_null(void)
{
    struct counters *cs = counters_new();
    struct hpf_counters zero = delta(0, 0, 0, 0), one = delta(0, 0, 0, 1);
    counters_add(cs, "a", &zero);
    counters_add(cs, NULL, &one);
    CU_ASSERT_EQUAL(counters_size(cs), 0);
    counters_add(cs, "a", &one);
    CU_ASSERT_EQUAL(counters_size(cs), 1);
    counters_free(cs);
}

static void test_take(void)
{
    struct counters *cs = counters_new();
    struct hpf_counters d = delta(3, 30, 0, 0);
    counters_add(cs, "x", &d);
    d = delta(0, 0, 4, 40);
    counters_add(cs, "y", &d);
    GArray *a = counters_take(cs);
    CU_ASSERT_EQUAL(counters_size(cs), 0);
    CU_ASSERT_EQUAL_FATAL(a->len, 2);
    for (guint i = 0; i < a->len; i++) {
        const struct hpf_counters *c = &g_array_index(a, struct hpf_counters, i);
        if (!strcmp(c->ident, "x"))
            ASSERT_COUNTS(*c, 3, 30, 0, 0);
        else if (!strcmp(c->ident, "y"))
            ASSERT_COUNTS(*c, 0, 0, 4, 40);
        else
            CU_FAIL("an ident that was never added");
    }
    /* The table starts over; the taken array keeps its own idents. */
    counters_add(cs, "x", &d);
    struct hpf_counters out;
    CU_ASSERT_TRUE(counters_get(cs, "x", &out));
    ASSERT_COUNTS(out, 0, 0, 4, 40);
    counters_array_free(a);
    a = counters_take(cs);
    CU_ASSERT_EQUAL(a->len, 1);
    counters_array_free(a);
    a = counters_take(cs);
    CU_ASSERT_EQUAL(a->len, 0);
    counters_array_free(a);
    counters_free(cs);
}

static guint id_hash(gconstpointer p) { return (guint) * (const guint64 *)p; }
static gboolean id_equal(gconstpointer a, gconstpointer b)
{
    return *(const guint64 *)a == *(const guint64 *)b;
}

static struct conn *conn_fake(struct broker *b, guint64 id, const char *ident)
{
    struct bufferevent *pair[2];
    CU_ASSERT_FATAL(bufferevent_pair_new(b->base, 0, pair) == 0);
    bufferevent_free(pair[1]);
    struct conn *c = g_new0(struct conn, 1);
    c->b = b;
    c->id = id;
    c->bev = pair[0];
    c->ident = g_strdup(ident);
    c->subscribed = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(b->conns, &c->id, c);
    return c;
}

static void conn_fake_free(struct conn *c)
{
    g_hash_table_remove(c->b->conns, &c->id);
    bufferevent_free(c->bev);
    g_hash_table_unref(c->subscribed);
    g_free(c->ident);
    g_free(c);
}

/* counters_collect moves a connection's counts; counters_unsaved sums both, moving nothing. */
static void test_collect_and_unsaved(void)
{
    struct broker b = {0};
    b.base = event_base_new();
    b.conns = g_hash_table_new(id_hash, id_equal);
    b.counters = counters_new();
    struct conn *c1 = conn_fake(&b, 1, "a");
    struct conn *c2 = conn_fake(&b, 2, "a");
    struct conn *anon = conn_fake(&b, 3, NULL);
    c1->pub_msgs = 1, c1->pub_bytes = 100, c1->recv_msgs = 2, c1->recv_bytes = 200;
    c2->pub_msgs = 10, c2->pub_bytes = 1000;
    anon->pub_msgs = 99; /* never authenticated: counted for nobody */

    counters_collect(&b, c1);
    CU_ASSERT_EQUAL(c1->pub_msgs + c1->pub_bytes + c1->recv_msgs + c1->recv_bytes, 0);
    counters_collect(&b, anon);
    struct hpf_counters out;
    CU_ASSERT_TRUE(counters_get(b.counters, "a", &out));
    ASSERT_COUNTS(out, 1, 100, 2, 200);
    CU_ASSERT_EQUAL(counters_size(b.counters), 1);

    c1->recv_msgs = 5;
    GHashTable *u = counters_unsaved(&b);
    CU_ASSERT_EQUAL(g_hash_table_size(u), 1);
    const struct hpf_counters *ua = g_hash_table_lookup(u, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ua);
    CU_ASSERT_STRING_EQUAL(ua->ident, "a");
    ASSERT_COUNTS(*ua, 11, 1100, 7, 200);
    g_hash_table_unref(u);
    /* Reading moved nothing. */
    CU_ASSERT_EQUAL(c2->pub_msgs, 10);
    CU_ASSERT_TRUE(counters_get(b.counters, "a", &out));
    ASSERT_COUNTS(out, 1, 100, 2, 200);

    GHashTable *live = conn_totals_by_ident(&b);
    CU_ASSERT_EQUAL(g_hash_table_size(live), 1);
    const struct conn_ident_totals *t = g_hash_table_lookup(live, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->connections, 2);
    g_hash_table_unref(live);

    conn_fake_free(c1);
    conn_fake_free(c2);
    conn_fake_free(anon);
    counters_free(b.counters);
    g_hash_table_unref(b.conns);
    event_base_free(b.base);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"add and get", test_add_get},
        {"zero deltas and no ident", test_zero_and_null},
        {"take empties the table", test_take},
        {"collect and unsaved", test_collect_and_unsaved},
        {NULL, NULL},
    };
    return cunit_run("counters", cases);
}
