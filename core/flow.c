/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow health's time buckets (see flow.h): a hash table of series keyed by
 * (kind, ident, channel) and a recency list through them.  Counting is on
 * the publish path, so it touches only the series: a bucket or two cleared
 * when time moved on, one increment, the series moved to the front of the
 * list.  Series are made on first use and, past the cap, recycled from the
 * back of the list, so memory stays bounded however many keys and channels
 * come and go.
 */
#include "flow.h"

#include <string.h>

struct flow {
    GHashTable *table; /* struct flow_key * (inside its series) -> struct flow_series * */
    GQueue recent;     /* links of the series, most recently counted first */
    guint max;
    guint made;   /* series allocated: in the table, or forgotten and waiting at the back */
    gint64 since; /* unix seconds the table was made: nothing older is known */
};

static guint key_hash(gconstpointer p)
{
    const struct flow_key *k = p;
    return (g_str_hash(k->ident) * 31u + g_str_hash(k->chan)) * 3u + (guint)k->kind;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    const struct flow_key *x = a, *y = b;
    return x->kind == y->kind && !strcmp(x->ident, y->ident) && !strcmp(x->chan, y->chan);
}

struct flow *flow_new(guint max_series)
{
    struct flow *f = g_new0(struct flow, 1);
    f->table = g_hash_table_new(key_hash, key_equal);
    g_queue_init(&f->recent);
    f->max = MAX(max_series, 1);
    f->since = g_get_real_time() / G_USEC_PER_SEC;
    return f;
}

static void series_free(struct flow_series *s)
{
    g_free(s->rings);
    g_free((char *)s->key.ident);
    g_free((char *)s->key.chan);
    g_free(s->owner);
    g_free(s);
}

void flow_free(struct flow *f)
{
    if (!f)
        return;
    GList *l = f->recent.head;
    while (l) {
        GList *next = l->next;
        series_free(l->data);
        l = next;
    }
    g_hash_table_unref(f->table);
    g_free(f);
}

/* Out of the table, counts and names gone, a new generation (holders can tell). */
static void empty(struct flow *f, struct flow_series *s)
{
    if (s->key.ident)
        g_hash_table_remove(f->table, &s->key);
    g_free((char *)s->key.ident);
    g_free((char *)s->key.chan);
    g_free(s->owner);
    g_free(s->rings);
    guint gen = s->gen + 1;
    GList link = s->link;
    memset(s, 0, sizeof *s);
    s->gen = gen;
    s->link = link;
}

/* The series at the back of the list, emptied for another key. */
static struct flow_series *recycle(struct flow *f)
{
    GList *l = g_queue_peek_tail_link(&f->recent);
    struct flow_series *s = l->data;
    g_queue_unlink(&f->recent, l);
    empty(f, s);
    return s;
}

struct flow_series *flow_series(struct flow *f, enum flow_kind kind, const char *ident,
                                const char *chan, const char *owner)
{
    struct flow_key probe = {.ident = ident, .chan = chan ? chan : "", .kind = kind};
    struct flow_series *s = g_hash_table_lookup(f->table, &probe);
    if (s)
        return s;
    if (f->made >= f->max) {
        s = recycle(f);
    } else {
        s = g_new0(struct flow_series, 1);
        f->made++;
    }
    s->key.ident = g_strdup(ident);
    s->key.chan = g_strdup(probe.chan);
    s->key.kind = kind;
    s->owner = g_strdup(owner);
    s->link.data = s;
    g_queue_push_head_link(&f->recent, &s->link);
    g_hash_table_insert(f->table, &s->key, s);
    return s;
}

/*
 * A series' buckets are two rings: one-minute ones for the last hour,
 * one-hour ones for the last day.  They differ in span, length and bucket
 * type only, so the code below serves both through this description.
 */
struct ring {
    gint64 secs;          /* a bucket's span */
    guint n;              /* its buckets */
    enum flow_ring which; /* its unit in flow_rings.at[] */
    guint64 max;          /* what a bucket holds at most */
    guint64 (*get)(const struct flow_rings *r, guint i);
    void (*add)(struct flow_rings *r, guint i, guint64 n);
    void (*clear)(struct flow_rings *r, guint i);
};

static guint64 minute_get(const struct flow_rings *r, guint i) { return r->minutes[i]; }
static guint64 hour_get(const struct flow_rings *r, guint i) { return r->hours[i]; }
static void minute_clear(struct flow_rings *r, guint i) { r->minutes[i] = 0; }
static void hour_clear(struct flow_rings *r, guint i) { r->hours[i] = 0; }

/* A minute's bucket stops at G_MAXUINT32 rather than wrapping to a small count. */
static void minute_add(struct flow_rings *r, guint i, guint64 n)
{
    r->minutes[i] += (guint32)MIN(n, G_MAXUINT32 - r->minutes[i]);
}

static void hour_add(struct flow_rings *r, guint i, guint64 n) { r->hours[i] += n; }

static const struct ring minutes = {
    .secs = 60,
    .n = FLOW_MINUTES,
    .which = FLOW_RING_MINUTES,
    .max = G_MAXUINT32,
    .get = minute_get,
    .add = minute_add,
    .clear = minute_clear,
};

static const struct ring hours = {
    .secs = 3600,
    .n = FLOW_HOURS,
    .which = FLOW_RING_HOURS,
    .max = G_MAXUINT64,
    .get = hour_get,
    .add = hour_add,
    .clear = hour_clear,
};

/* Count n into the ring's bucket of now, clearing the buckets time moved past. */
static void ring_count(const struct ring *r, struct flow_rings *b, guint64 n, gint64 now)
{
    gint64 at = b->at[r->which];
    /* A clock set back counts into the newest bucket rather than an old one. */
    gint64 u = MAX(now / r->secs, at);
    if (u > at) {
        /* The buckets of the units after at up to u are new, whatever they held. */
        for (gint64 i = MAX(at + 1, u - (gint64)r->n + 1); i <= u; i++)
            r->clear(b, (guint)(i % r->n));
        b->at[r->which] = u;
    }
    r->add(b, (guint)(u % r->n), n);
}

static void rings_count(struct flow_rings *b, guint64 n, gint64 now)
{
    ring_count(&minutes, b, n, now);
    ring_count(&hours, b, n, now);
}

void flow_count(struct flow *f, struct flow_series *s, guint64 n, gint64 now)
{
    if (now < 0)
        now = 0;
    if (!s->rings && s->total && now != s->last) {
        /* A second moment: the buckets, with what the first one counted. */
        s->rings = g_new0(struct flow_rings, 1);
        rings_count(s->rings, s->total, s->last);
    }
    if (s->rings)
        rings_count(s->rings, n, now);
    s->total += n;
    s->last = MAX(now, s->last);
    if (f->recent.head != &s->link) {
        g_queue_unlink(&f->recent, &s->link);
        g_queue_push_head_link(&f->recent, &s->link);
    }
}

void flow_note(struct flow *f, enum flow_kind kind, const char *ident, const char *chan,
               const char *owner, guint64 n, gint64 now)
{
    if (ident)
        flow_count(f, flow_series(f, kind, ident, chan, owner), n, now);
}

/*
 * The sum of the ring's buckets of the window of r->n units ending at now
 * that the ring (r->n units ending at its own unit) still holds.  A series
 * without buckets counted everything in the second last: its total, when
 * that second's unit is in the window.
 */
static guint64 ring_sum(const struct ring *r, const struct flow_series *s, gint64 now)
{
    gint64 now_unit = MAX(now, 0) / r->secs;
    if (!s->rings) {
        gint64 u = s->last / r->secs;
        /* As the one bucket would hold it (a minute's stops at G_MAXUINT32). */
        return u <= now_unit && u > now_unit - (gint64)r->n ? MIN(s->total, r->max) : 0;
    }
    gint64 at = s->rings->at[r->which];
    gint64 lo = MAX(MAX(now_unit, at) - (gint64)r->n + 1, 0), hi = MIN(now_unit, at);
    guint64 sum = 0;
    for (gint64 i = lo; i <= hi; i++)
        sum += r->get(s->rings, (guint)(i % r->n));
    return sum;
}

guint64 flow_last_hour(const struct flow_series *s, gint64 now)
{
    return ring_sum(&minutes, s, now);
}

guint64 flow_last_day(const struct flow_series *s, gint64 now) { return ring_sum(&hours, s, now); }

void flow_foreach(const struct flow *f, void (*fn)(const struct flow_series *s, void *data),
                  void *data)
{
    for (GList *l = f->recent.head; l; l = l->next) {
        const struct flow_series *s = l->data;
        if (s->key.ident) /* not a forgotten one */
            fn(s, data);
    }
}

void flow_forget(struct flow *f, gboolean (*keep)(const char *ident, const char *owner, void *data),
                 void *data)
{
    GList *l = f->recent.head;
    while (l) {
        GList *next = l->next;
        struct flow_series *s = l->data;
        if (s->key.ident && !keep(s->key.ident, s->owner, data)) {
            /* Kept allocated (a session may hold a pointer to it), first to be reused. */
            empty(f, s);
            g_queue_unlink(&f->recent, l);
            g_queue_push_tail_link(&f->recent, l);
        }
        l = next;
    }
}

guint flow_size(const struct flow *f) { return g_hash_table_size(f->table); }

gint64 flow_since(const struct flow *f) { return f->since; }
