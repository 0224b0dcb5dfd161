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

/* Clear the buckets of the units after `at` up to `to`: they are new, whatever they held. */
static void clear_passed(gint64 at, gint64 to, guint n, void (*clear)(struct flow_series *, guint),
                         struct flow_series *s)
{
    for (gint64 i = MAX(at + 1, to - (gint64)n + 1); i <= to; i++)
        clear(s, (guint)(i % n));
}

static void clear_minute(struct flow_series *s, guint i) { s->minutes[i] = 0; }
static void clear_hour(struct flow_series *s, guint i) { s->hours[i] = 0; }

void flow_count(struct flow *f, struct flow_series *s, guint64 n, gint64 now)
{
    if (now < 0)
        now = 0;
    /* A clock set back counts into the newest bucket rather than an old one. */
    gint64 m = MAX(now / 60, s->minute), hr = MAX(now / 3600, s->hour);
    if (m > s->minute) {
        clear_passed(s->minute, m, FLOW_MINUTES, clear_minute, s);
        s->minute = m;
    }
    if (hr > s->hour) {
        clear_passed(s->hour, hr, FLOW_HOURS, clear_hour, s);
        s->hour = hr;
    }
    s->minutes[m % FLOW_MINUTES] += (guint32)MIN(n, G_MAXUINT32 - s->minutes[m % FLOW_MINUTES]);
    s->hours[hr % FLOW_HOURS] += n;
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
 * The units of the window of n ending at now_unit that the ring (n units
 * ending at `at`) still holds: [*lo, *hi], empty when *lo > *hi.
 */
static void window(gint64 now_unit, gint64 at, guint n, gint64 *lo, gint64 *hi)
{
    *hi = MIN(now_unit, at);
    *lo = MAX(MAX(now_unit, at) - (gint64)n + 1, 0);
}

guint64 flow_last_hour(const struct flow_series *s, gint64 now)
{
    gint64 lo, hi;
    guint64 sum = 0;
    window(MAX(now, 0) / 60, s->minute, FLOW_MINUTES, &lo, &hi);
    for (gint64 i = lo; i <= hi; i++)
        sum += s->minutes[i % FLOW_MINUTES];
    return sum;
}

guint64 flow_last_day(const struct flow_series *s, gint64 now)
{
    gint64 lo, hi;
    guint64 sum = 0;
    window(MAX(now, 0) / 3600, s->hour, FLOW_HOURS, &lo, &hi);
    for (gint64 i = lo; i <= hi; i++)
        sum += s->hours[i % FLOW_HOURS];
    return sum;
}

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
