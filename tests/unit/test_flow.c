/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow health's time buckets (core/flow.c): counts land in the right
 * minute and hour, old buckets roll out of the hour and day windows, a
 * clock set back does not lose or misplace counts, the number of series
 * stays under the cap, the least recently counted series is the one taken
 * over (its generation changes so holders can tell), and a deleted key's
 * series are forgotten and their memory reused first.
 */
#include "../common/cunit_run.h"
#include "flow.h"

/* A time well after the epoch, on an hour boundary (and so a day's). */
#define T0 ((gint64)1800000000 / 86400 * 86400)

static void test_counts_and_windows(void)
{
    struct flow *f = flow_new(16);
    struct flow_series *s = flow_series(f, FLOW_PUBLISHED, "k", "chan", "o");
    CU_ASSERT_EQUAL(flow_last_hour(s, T0), 0);
    CU_ASSERT_EQUAL(s->last, 0);
    flow_count(f, s, 3, T0);
    flow_count(f, s, 2, T0 + 59);
    flow_count(f, s, 5, T0 + 60);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 60), 10);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 60), 10);
    CU_ASSERT_EQUAL(s->total, 10);
    CU_ASSERT_EQUAL(s->last, T0 + 60);
    /* Same series by key; another kind or channel is another series. */
    CU_ASSERT_PTR_EQUAL(flow_series(f, FLOW_PUBLISHED, "k", "chan", "o"), s);
    CU_ASSERT_PTR_NOT_EQUAL(flow_series(f, FLOW_DELIVERED, "k", "chan", "o"), s);
    CU_ASSERT_PTR_NOT_EQUAL(flow_series(f, FLOW_PUBLISHED, "k", "chan2", "o"), s);
    CU_ASSERT_EQUAL(flow_size(f), 3);
    flow_free(f);
}

static void test_rollover(void)
{
    struct flow *f = flow_new(4);
    struct flow_series *s = flow_series(f, FLOW_PUBLISHED, "k", "c", "o");
    flow_count(f, s, 7, T0);           /* minute 0 of hour 0 */
    flow_count(f, s, 1, T0 + 30 * 60); /* minute 30 */
    /* 59 minutes later minute 0 is still in the hour; at 60 it is gone. */
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 59 * 60), 8);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 60 * 60), 1);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 90 * 60), 0);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 90 * 60), 8);
    /* Counting after the wrap clears what the ring held for those slots. */
    flow_count(f, s, 2, T0 + 61 * 60); /* slot 1 again; minute 0's 7 must not be read */
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 61 * 60), 1 + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->rings);
    CU_ASSERT_EQUAL(s->rings->minutes[0], 0);
    /* The day: hour 0 leaves the window at hour 24. */
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 23 * 3600), 10);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 24 * 3600), 2);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 25 * 3600), 0);
    /* A long silence clears the whole ring at the next count. */
    flow_count(f, s, 4, T0 + 3 * 86400);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 3 * 86400), 4);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 3 * 86400), 4);
    guint64 sum = 0;
    for (int i = 0; i < FLOW_MINUTES; i++)
        sum += s->rings->minutes[i];
    CU_ASSERT_EQUAL(sum, 4);
    CU_ASSERT_EQUAL(s->total, 14);
    flow_free(f);
}

static void test_clock_back(void)
{
    struct flow *f = flow_new(4);
    struct flow_series *s = flow_series(f, FLOW_PUBLISHED, "k", "c", "o");
    flow_count(f, s, 1, T0 + 3600);
    flow_count(f, s, 1, T0); /* the clock went back an hour: counted now, not lost */
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 3600), 2);
    CU_ASSERT_EQUAL(s->last, T0 + 3600);
    /* Asked about a time before the newest bucket: nothing read out of range. */
    CU_ASSERT_EQUAL(flow_last_hour(s, T0), 0);
    CU_ASSERT_EQUAL(flow_last_hour(s, 0), 0);
    flow_count(f, s, 1, -5); /* nonsense times are clamped */
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 3600), 3);
    flow_free(f);
}

static void test_cap_and_eviction(void)
{
    struct flow *f = flow_new(3);
    struct flow_series *a = flow_series(f, FLOW_PUBLISHED, "a", "c", "o");
    struct flow_series *b = flow_series(f, FLOW_PUBLISHED, "b", "c", "o");
    struct flow_series *c = flow_series(f, FLOW_PUBLISHED, "c", "c", "o");
    flow_count(f, a, 1, T0);
    flow_count(f, b, 1, T0);
    flow_count(f, c, 1, T0);
    flow_count(f, a, 1, T0 + 1); /* a used last: b is now the least recently used */
    guint gen_a = a->gen, gen_b = b->gen, gen_c = c->gen;
    struct flow_series *d = flow_series(f, FLOW_DELIVERED, "d", NULL, "o");
    CU_ASSERT_EQUAL(flow_size(f), 3);
    CU_ASSERT_PTR_EQUAL(d, b); /* b's memory, taken over */
    CU_ASSERT_NOT_EQUAL(d->gen, gen_b);
    CU_ASSERT_STRING_EQUAL(d->key.ident, "d");
    CU_ASSERT_STRING_EQUAL(d->key.chan, "");
    CU_ASSERT_EQUAL(d->total, 0);
    CU_ASSERT_EQUAL(flow_last_hour(d, T0), 0);
    CU_ASSERT_EQUAL(a->gen, gen_a);
    CU_ASSERT_EQUAL(c->gen, gen_c);
    /* b is gone: asking for it again takes the next least recent (c). */
    struct flow_series *b2 = flow_series(f, FLOW_PUBLISHED, "b", "c", "o");
    CU_ASSERT_PTR_EQUAL(b2, c);
    CU_ASSERT_EQUAL(flow_last_hour(b2, T0), 0);
    CU_ASSERT_EQUAL(flow_size(f), 3);
    /* Many more keys than the cap: the table never grows past it. */
    for (int i = 0; i < 1000; i++) {
        char ident[16];
        g_snprintf(ident, sizeof ident, "k%d", i);
        flow_note(f, FLOW_CONNECTED, ident, NULL, "o", 1, T0 + i);
        CU_ASSERT_TRUE(flow_size(f) <= 3);
    }
    flow_note(f, FLOW_CONNECTED, NULL, NULL, "o", 1, T0); /* no ident: nothing */
    CU_ASSERT_EQUAL(flow_size(f), 3);
    flow_free(f);
}

static void order(const struct flow_series *s, void *data) { g_string_append(data, s->key.ident); }

static void test_foreach_recent_first(void)
{
    struct flow *f = flow_new(8);
    flow_note(f, FLOW_PUBLISHED, "x", "c", "o", 1, T0);
    flow_note(f, FLOW_PUBLISHED, "y", "c", "o", 1, T0);
    flow_note(f, FLOW_PUBLISHED, "z", "c", "o", 1, T0);
    flow_note(f, FLOW_PUBLISHED, "x", "c", "o", 1, T0);
    GString *seen = g_string_new(NULL);
    flow_foreach(f, order, seen);
    CU_ASSERT_STRING_EQUAL(seen->str, "xzy");
    g_string_free(seen, TRUE);
    flow_free(f);
    flow_free(NULL);
}

/* The keys a reload found: "b", still owned by "o". */
static gboolean keep_b(const char *ident, const char *owner, void *data)
{
    return !g_strcmp0(ident, data) && !g_strcmp0(owner, "o");
}

static void test_forget(void)
{
    struct flow *f = flow_new(3);
    struct flow_series *a = flow_series(f, FLOW_PUBLISHED, "a", "c", "o");
    struct flow_series *b = flow_series(f, FLOW_PUBLISHED, "b", "c", "o");
    struct flow_series *a2 = flow_series(f, FLOW_CONNECTED, "a", NULL, "o");
    flow_count(f, a, 5, T0);
    flow_count(f, b, 1, T0);
    flow_count(f, a2, 1, T0);
    guint gen_a = a->gen;
    flow_forget(f, keep_b, "b"); /* "a" deleted: its series go */
    CU_ASSERT_EQUAL(flow_size(f), 1);
    CU_ASSERT_NOT_EQUAL(a->gen, gen_a); /* a holder of the pointer can tell */
    GString *seen = g_string_new(NULL);
    flow_foreach(f, order, seen);
    CU_ASSERT_STRING_EQUAL(seen->str, "b");
    g_string_free(seen, TRUE);
    /* "a" again (another user's key of that name): it starts from nothing,
     * in a forgotten series' memory, so nothing is allocated past the cap. */
    struct flow_series *again = flow_series(f, FLOW_PUBLISHED, "a", "c", "o");
    CU_ASSERT_TRUE(again == a || again == a2);
    CU_ASSERT_EQUAL(flow_last_hour(again, T0), 0);
    CU_ASSERT_EQUAL(again->total, 0);
    struct flow_series *c = flow_series(f, FLOW_PUBLISHED, "c", "c", "o");
    CU_ASSERT_TRUE(c == a || c == a2);
    CU_ASSERT_EQUAL(flow_size(f), 3);
    /* Full now: the next one takes over the least recently counted (b). */
    CU_ASSERT_PTR_EQUAL(flow_series(f, FLOW_PUBLISHED, "d", "c", "o"), b);
    CU_ASSERT_EQUAL(flow_size(f), 3);
    flow_free(f);
}

static void test_forget_owner_change(void)
{
    struct flow *f = flow_new(4);
    flow_note(f, FLOW_PUBLISHED, "b", "c", "o", 2, T0);
    flow_note(f, FLOW_DELIVERED, "b", NULL, "x", 2, T0); /* made while "x" held the ident */
    flow_forget(f, keep_b, "b");
    CU_ASSERT_EQUAL(flow_size(f), 1);
    CU_ASSERT_STRING_EQUAL(flow_series(f, FLOW_PUBLISHED, "b", "c", "o")->owner, "o");
    CU_ASSERT_EQUAL(flow_series(f, FLOW_DELIVERED, "b", NULL, "o")->total, 0);
    flow_free(f);
}

static void test_saturates(void)
{
    struct flow *f = flow_new(1);
    struct flow_series *s = flow_series(f, FLOW_PUBLISHED, "k", "c", "o");
    flow_count(f, s, G_MAXUINT32, T0);
    /* Another second of the same minute: the buckets are made; that minute's
     * stops at its maximum, never wraps to 4. */
    flow_count(f, s, 5, T0 + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->rings);
    CU_ASSERT_EQUAL(s->rings->minutes[(T0 / 60) % FLOW_MINUTES], G_MAXUINT32);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 1), (guint64)G_MAXUINT32 + 5);
    flow_free(f);
}

/* Counts in one second need no buckets; a second moment makes them, holding
 * both, and the sums are the same either way. */
static void test_lazy_buckets(void)
{
    struct flow *f = flow_new(1); /* one series: "b" below reuses "k"'s */
    struct flow_series *s = flow_series(f, FLOW_CONNECTED, "k", NULL, "o");
    flow_count(f, s, 1, T0 + 30);
    flow_count(f, s, 2, T0 + 30);
    CU_ASSERT_PTR_NULL(s->rings);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 30), 3);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 59 * 60), 3);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 60 * 60), 0);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 23 * 3600), 3);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 24 * 3600), 0);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 - 60), 0); /* a clock set back: not yet */
    flow_count(f, s, 4, T0 + 10 * 60);
    CU_ASSERT_PTR_NOT_NULL(s->rings);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 10 * 60), 7);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 60 * 60), 4);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 23 * 3600), 7);
    CU_ASSERT_EQUAL(s->total, 7);
    /* Reused for another key: no buckets again. */
    flow_forget(f, keep_b, "b");
    struct flow_series *t = flow_series(f, FLOW_CONNECTED, "b", NULL, "o");
    CU_ASSERT_PTR_EQUAL(t, s);
    flow_count(f, t, 1, T0);
    CU_ASSERT_PTR_NULL(t->rings);
    CU_ASSERT_EQUAL(flow_last_hour(t, T0), 1);
    flow_free(f);
}

/* A minute bucket saturates at G_MAXUINT32 whether or not the series has its
 * buckets yet: the hour's count never goes down when a count is added. */
static void test_saturates_in_one_second(void)
{
    struct flow *f = flow_new(1);
    struct flow_series *s = flow_series(f, FLOW_PUBLISHED, "k", "c", "o");
    flow_count(f, s, G_MAXUINT32, T0);
    flow_count(f, s, 5, T0);
    guint64 before = flow_last_hour(s, T0 + 1);
    flow_count(f, s, 1, T0 + 1); /* the second moment: the buckets are made */
    CU_ASSERT(flow_last_hour(s, T0 + 1) >= before);
    CU_ASSERT_EQUAL(before, G_MAXUINT32);
    flow_free(f);
}

/* The second moment made by a clock set back: what the first counted stays
 * in its minute, the late count goes into that newest minute too. */
static void test_lazy_clock_back(void)
{
    struct flow *f = flow_new(1);
    struct flow_series *s = flow_series(f, FLOW_PUBLISHED, "k", "c", "o");
    flow_count(f, s, 3, T0 + 3600 + 120);
    flow_count(f, s, 4, T0 + 60); /* an hour and a minute back */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->rings);
    CU_ASSERT_EQUAL(s->rings->minutes[((T0 + 3600 + 120) / 60) % FLOW_MINUTES], 7);
    CU_ASSERT_EQUAL(s->last, T0 + 3600 + 120);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 3600 + 120), 7);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 2 * 3600 + 119), 7);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 2 * 3600 + 120), 0);
    flow_free(f);
}

/* The second moment after a long silence: the first moment's counts have
 * left both windows; a zero count first makes no second moment. */
static void test_lazy_long_silence(void)
{
    struct flow *f = flow_new(2);
    struct flow_series *s = flow_series(f, FLOW_PUBLISHED, "k", "c", "o");
    flow_count(f, s, 0, T0);
    flow_count(f, s, 5, T0 + 10);
    CU_ASSERT_PTR_NULL(s->rings);
    flow_count(f, s, 2, T0 + 3 * 86400 + 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->rings);
    CU_ASSERT_EQUAL(flow_last_hour(s, T0 + 3 * 86400 + 7), 2);
    CU_ASSERT_EQUAL(flow_last_day(s, T0 + 3 * 86400 + 7), 2);
    CU_ASSERT_EQUAL(s->total, 7);
    /* Recycled past the cap with its buckets (ASan: freed once, not leaked). */
    struct flow_series *t = flow_series(f, FLOW_PUBLISHED, "k2", "c", "o");
    flow_count(f, t, 1, T0 + 3 * 86400 + 8);
    struct flow_series *u = flow_series(f, FLOW_PUBLISHED, "k3", "c", "o");
    CU_ASSERT_PTR_EQUAL(u, s);
    CU_ASSERT_PTR_NULL(u->rings);
    CU_ASSERT_EQUAL(flow_last_day(u, T0 + 3 * 86400 + 8), 0);
    flow_free(f);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"counts and windows", test_counts_and_windows},
        {"rollover", test_rollover},
        {"clock set back", test_clock_back},
        {"cap and eviction", test_cap_and_eviction},
        {"foreach, recent first", test_foreach_recent_first},
        {"minute buckets saturate", test_saturates},
        {"buckets made at the second moment a series counts", test_lazy_buckets},
        {"minute buckets saturate within one second", test_saturates_in_one_second},
        {"second moment by a clock set back", test_lazy_clock_back},
        {"second moment after a long silence; recycled with buckets", test_lazy_long_silence},
        {"forget deleted keys", test_forget},
        {"forget counts of a previous owner", test_forget_owner_change},
        {NULL, NULL},
    };
    return cunit_run("flow", cases);
}
