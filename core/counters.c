/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-authkey traffic counters not yet saved: a table keyed by ident that
 * connections empty their counts into, handed to storage's counters_add()
 * on the worker thread every few seconds and at shutdown, and read (with
 * the live connections' counts) by the console.
 */
#include "counters.h"

#include "broker.h"
#include "flow.h"
#include "log.h"
#include "worker.h"

struct counters {
    GHashTable *by_ident; /* ident -> struct hpf_counters (ident owned, the key) */
};

static void entry_free(gpointer p)
{
    struct hpf_counters *d = p;
    g_free((char *)d->ident);
    g_free(d);
}

struct counters *counters_new(void)
{
    struct counters *cs = g_new0(struct counters, 1);
    cs->by_ident = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, entry_free);
    return cs;
}

void counters_free(struct counters *cs)
{
    if (!cs)
        return;
    g_hash_table_unref(cs->by_ident);
    g_free(cs);
}

static void sum_into(struct hpf_counters *to, const struct hpf_counters *d)
{
    to->published_msgs += d->published_msgs;
    to->published_bytes += d->published_bytes;
    to->received_msgs += d->received_msgs;
    to->received_bytes += d->received_bytes;
}

/* ident's entry in t (a table shaped like by_ident), made when missing. */
static struct hpf_counters *entry(GHashTable *t, const char *ident)
{
    struct hpf_counters *d = g_hash_table_lookup(t, ident);
    if (!d) {
        d = g_new0(struct hpf_counters, 1);
        d->ident = g_strdup(ident);
        g_hash_table_insert(t, (char *)d->ident, d);
    }
    return d;
}

void counters_add(struct counters *cs, const char *ident, const struct hpf_counters *d)
{
    if (!ident ||
        (d->published_msgs | d->published_bytes | d->received_msgs | d->received_bytes) == 0)
        return;
    sum_into(entry(cs->by_ident, ident), d);
}

gboolean counters_get(const struct counters *cs, const char *ident, struct hpf_counters *out)
{
    const struct hpf_counters *d = ident ? g_hash_table_lookup(cs->by_ident, ident) : NULL;
    *out = (struct hpf_counters){.ident = ident};
    if (!d)
        return FALSE;
    sum_into(out, d);
    return TRUE;
}

guint counters_size(const struct counters *cs) { return g_hash_table_size(cs->by_ident); }

GArray *counters_take(struct counters *cs)
{
    GArray *a = g_array_sized_new(FALSE, FALSE, sizeof(struct hpf_counters),
                                  g_hash_table_size(cs->by_ident));
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, cs->by_ident);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        g_array_append_vals(a, v, 1);
        g_free(v); /* the ident moves into the array */
        g_hash_table_iter_steal(&it);
    }
    return a;
}

void counters_array_free(GArray *a)
{
    for (guint i = 0; i < a->len; i++)
        g_free((char *)g_array_index(a, struct hpf_counters, i).ident);
    g_array_unref(a);
}

/* ---- the broker's table ---- */

void counters_collect(struct broker *b, struct conn *c)
{
    struct hpf_counters d = {.published_msgs = c->pub_msgs,
                             .published_bytes = c->pub_bytes,
                             .received_msgs = c->recv_msgs,
                             .received_bytes = c->recv_bytes};
    counters_add(b->counters, c->ident, &d);
    if (b->flow && c->recv_msgs)
        flow_note(b->flow, FLOW_DELIVERED, c->ident, NULL, c->owner, c->recv_msgs, broker_now_s(b));
    c->pub_msgs = c->pub_bytes = c->recv_msgs = c->recv_bytes = 0;
}

struct counters_job {
    struct plugin_instance *storage;
    GArray *deltas; /* struct hpf_counters, idents owned */
    int rc;
};

static void counters_run(void *arg)
{
    struct counters_job *j = arg;
    const struct hpf_storage_ops *ops = j->storage->desc->storage;
    j->rc = ops->counters_add(j->storage->inst, (const struct hpf_counters *)j->deltas->data,
                              j->deltas->len);
}

static void counters_done(void *arg)
{
    static struct log_ratelimit rl = LOG_RATELIMIT_INIT(300);
    struct counters_job *j = arg;
    if (j->rc != HPF_OK && log_ratelimit_ok(&rl, NULL))
        log_warn("storage: saving traffic counters failed: %s (those counts are lost)",
                 hpf_strerror(j->rc));
    counters_array_free(j->deltas);
    g_free(j);
}

void counters_collect_all(struct broker *b)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, b->conns);
    while (g_hash_table_iter_next(&it, NULL, &v))
        counters_collect(b, v);
}

void counters_flush(struct broker *b, gboolean now)
{
    counters_collect_all(b);
    if (counters_size(b->counters) == 0 || !b->storage->desc->storage->counters_add)
        return;
    struct counters_job *j = g_new0(struct counters_job, 1);
    j->storage = b->storage;
    j->deltas = counters_take(b->counters);
    if (now) {
        counters_run(j);
        counters_done(j);
    } else {
        worker_submit(b->worker, counters_run, counters_done, j);
    }
}

GHashTable *counters_unsaved(struct broker *b)
{
    GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, entry_free);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, b->counters->by_ident);
    while (g_hash_table_iter_next(&it, &k, &v))
        sum_into(entry(t, k), v);
    GHashTable *live = conn_totals_by_ident(b);
    g_hash_table_iter_init(&it, live);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const struct conn_ident_totals *ct = v;
        struct hpf_counters d = {.published_msgs = ct->pub_msgs,
                                 .published_bytes = ct->pub_bytes,
                                 .received_msgs = ct->recv_msgs,
                                 .received_bytes = ct->recv_bytes};
        sum_into(entry(t, k), &d);
    }
    g_hash_table_unref(live);
    return t;
}
