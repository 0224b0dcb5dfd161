/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sink fan-out: each accepted message or broker event becomes one
 * refcounted item (strings and payload in one allocation) pushed to every
 * sink instance that wants it.  Each instance has its own thread and a
 * queue bounded in bytes; the loop thread never blocks on a sink: when a
 * queue is full the item is dropped for that sink and counted.
 */
#include "sinks.h"

#include <string.h>

#include "log.h"

#define DEFAULT_QUEUE_BYTES (64u * 1024 * 1024)

enum item_kind { ITEM_MESSAGE, ITEM_EVENT, ITEM_REOPEN, ITEM_STOP };

/* One message or event, shared by every sink queue it is pushed to. */
struct item {
    gint refs;
    enum item_kind kind;
    gsize size; /* bytes it holds, for the queue bounds */
    union {
        struct hpf_message msg;
        struct hpf_event ev;
    } u;
    char data[]; /* strings and payload */
};

struct sink {
    struct plugin_instance *pi;
    uint32_t wants;       /* enum hpf_sink_wants: the plugin's, narrowed by the instance */
    GHashTable *channels; /* NULL: all */
    gsize max_bytes;
    GAsyncQueue *q;
    GThread *thread;
    gint64 queued_bytes;       /* __atomic: both threads */
    guint64 delivered, errors; /* written by the sink thread, read for stats */
    guint64 dropped;           /* loop thread only */
    struct log_ratelimit drop_rl;
};

struct sinks {
    GPtrArray *all; /* struct sink * */
    gboolean any_messages;
    gboolean any_events;
    sinks_tap_fn tap;
    void *tap_ud;
};

static void item_unref(struct item *it)
{
    if (g_atomic_int_dec_and_test(&it->refs))
        g_free(it);
}

static void *sink_thread(void *arg)
{
    struct sink *sk = arg;
    const struct hpf_sink_ops *ops = sk->pi->desc->sink;
    struct log_ratelimit err_rl = LOG_RATELIMIT_INIT(60);
    for (;;) {
        struct item *it = g_async_queue_pop(sk->q);
        int rc = HPF_OK;
        switch (it->kind) {
        case ITEM_MESSAGE:
            rc = ops->message ? ops->message(sk->pi->inst, &it->u.msg) : HPF_OK;
            break;
        case ITEM_EVENT:
            rc = ops->event ? ops->event(sk->pi->inst, &it->u.ev) : HPF_OK;
            break;
        case ITEM_REOPEN:
            rc = ops->reopen ? ops->reopen(sk->pi->inst) : HPF_OK;
            break;
        case ITEM_STOP:
            if (ops->flush)
                ops->flush(sk->pi->inst);
            item_unref(it);
            return NULL;
        }
        __atomic_sub_fetch(&sk->queued_bytes, (gint64)it->size, __ATOMIC_RELAXED);
        if (rc == HPF_OK) {
            if (it->kind != ITEM_REOPEN) /* delivered: messages and events */
                __atomic_add_fetch(&sk->delivered, 1, __ATOMIC_RELAXED);
        } else {
            uint64_t held = 0;
            __atomic_add_fetch(&sk->errors, 1, __ATOMIC_RELAXED);
            if (log_ratelimit_ok(&err_rl, &held))
                log_warn("%s: write failed: %s (%" G_GUINT64_FORMAT " more failures not logged)",
                         sk->pi->name, hpf_strerror(rc), held);
        }
        item_unref(it);
    }
}

static void push(struct sink *sk, struct item *it)
{
    gint64 q = __atomic_load_n(&sk->queued_bytes, __ATOMIC_RELAXED);
    if (it->kind <= ITEM_EVENT && (gsize)q + it->size > sk->max_bytes) {
        uint64_t held = 0;
        sk->dropped++;
        if (log_ratelimit_ok(&sk->drop_rl, &held))
            log_warn("%s: queue full (%" G_GINT64_FORMAT " bytes): dropping; %" G_GUINT64_FORMAT
                     " dropped in all",
                     sk->pi->name, q, sk->dropped);
        return;
    }
    g_atomic_int_inc(&it->refs);
    __atomic_add_fetch(&sk->queued_bytes, (gint64)it->size, __ATOMIC_RELAXED);
    g_async_queue_push(sk->q, it);
}

static void sink_free(gpointer p)
{
    struct sink *sk = p;
    if (sk->thread) {
        struct item *stop = g_malloc0(sizeof *stop);
        stop->refs = 1;
        stop->kind = ITEM_STOP;
        g_async_queue_push(sk->q, stop);
        g_thread_join(sk->thread);
    }
    if (sk->q) {
        struct item *it;
        while ((it = g_async_queue_try_pop(sk->q)))
            item_unref(it);
        g_async_queue_unref(sk->q);
    }
    if (sk->channels)
        g_hash_table_unref(sk->channels);
    plugin_instance_free(sk->pi);
    g_free(sk);
}

struct sinks *sinks_new(const struct config *cfg, const char *plugin_dir, GError **error)
{
    struct sinks *s = g_new0(struct sinks, 1);
    s->all = g_ptr_array_new_with_free_func(sink_free);
    for (guint i = 0; i < cfg->sinks->len; i++) {
        const struct plugin_conf *pc = cfg->sinks->pdata[i];
        struct sink *sk = g_new0(struct sink, 1);
        sk->max_bytes = DEFAULT_QUEUE_BYTES;
        sk->drop_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10);
        g_ptr_array_add(s->all, sk);

        /* The keys the core handles for every sink; the rest go to the plugin. */
        GHashTable *keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, pc->keys);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            if (!strcmp(k, "channels")) {
                sk->channels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                char **list = g_strsplit(v, ";", -1);
                for (char **c = list; *c; c++)
                    if (*g_strstrip(*c))
                        g_hash_table_add(sk->channels, g_strdup(*c));
                g_strfreev(list);
            } else if (!strcmp(k, "queue_size")) {
                guint64 n;
                if (!config_parse_size(v, &n) || n < 4096) {
                    g_set_error(error, CONFIG_ERROR, 0,
                                "[%s] queue_size: expected a size of at least 4K, got '%s'",
                                pc->section, (char *)v);
                    config_prefix_error(cfg, error);
                    g_hash_table_unref(keys);
                    sinks_free(s);
                    return NULL;
                }
                sk->max_bytes = (gsize)n;
            } else {
                g_hash_table_insert(keys, g_strdup(k), g_strdup(v));
            }
        }
        sk->pi = plugin_instance_new(plugin_dir, pc->plugin, HPF_KIND_SINK, pc->section, keys,
                                     cfg->dir, error);
        g_hash_table_unref(keys);
        if (!sk->pi) {
            config_prefix_error(cfg, error);
            sinks_free(s);
            return NULL;
        }
        const struct hpf_sink_ops *ops = sk->pi->desc->sink;
        sk->wants = ops->wants;
        /* instance_wants came with ABI 1.1: older plugins' slot is reserved. */
        if (sk->pi->desc->abi_minor >= 1 && ops->instance_wants)
            sk->wants &= ops->instance_wants(sk->pi->inst);
        s->any_messages |= (sk->wants & HPF_SINK_MESSAGES) != 0;
        s->any_events |= (sk->wants & HPF_SINK_EVENTS) != 0;
    }
    return s;
}

gboolean sinks_start(struct sinks *s, GError **error)
{
    for (guint i = 0; i < s->all->len; i++) {
        struct sink *sk = s->all->pdata[i];
        if (!plugin_instance_start(sk->pi, error))
            return FALSE;
        sk->q = g_async_queue_new();
        sk->thread = g_thread_new(sk->pi->name, sink_thread, sk);
    }
    return TRUE;
}

static char *put_str(char **cursor, const char *src)
{
    if (!src)
        return NULL;
    size_t n = strlen(src) + 1;
    char *dst = *cursor;
    memcpy(dst, src, n);
    *cursor += n;
    return dst;
}

static gsize str_size(const char *s) { return s ? strlen(s) + 1 : 0; }

void sinks_message(struct sinks *s, const char *ident, const char *owner, const char *channel,
                   const guint8 *payload, gsize len)
{
    if (!s || !s->any_messages)
        return;
    struct item *it = NULL;
    for (guint i = 0; i < s->all->len; i++) {
        struct sink *sk = s->all->pdata[i];
        if (!(sk->wants & HPF_SINK_MESSAGES))
            continue;
        if (sk->channels && !g_hash_table_contains(sk->channels, channel))
            continue;
        if (!it) {
            gsize strs = str_size(ident) + str_size(owner) + str_size(channel);
            it = g_malloc(sizeof *it + strs + len);
            it->refs = 1;
            it->kind = ITEM_MESSAGE;
            it->size = sizeof *it + strs + len;
            char *cur = it->data;
            memset(&it->u, 0, sizeof it->u);
            it->u.msg.time_us = g_get_real_time();
            it->u.msg.ident = put_str(&cur, ident);
            it->u.msg.owner = put_str(&cur, owner);
            it->u.msg.channel = put_str(&cur, channel);
            if (len)
                memcpy(cur, payload, len);
            it->u.msg.payload = (const uint8_t *)cur;
            it->u.msg.payload_len = len;
        }
        push(sk, it);
    }
    if (it)
        item_unref(it);
}

void sinks_event(struct sinks *s, const struct hpf_event *ev)
{
    struct hpf_event now = *ev;
    if (!now.time_us)
        now.time_us = g_get_real_time();
    if (s && s->tap)
        s->tap(s->tap_ud, &now);
    if (!s || !s->any_events)
        return;
    gsize strs = str_size(ev->ident) + str_size(ev->owner) + str_size(ev->peer) +
                 str_size(ev->channel) + str_size(ev->reason);
    struct item *it = g_malloc(sizeof *it + strs);
    it->refs = 1;
    it->kind = ITEM_EVENT;
    it->size = sizeof *it + strs;
    memset(&it->u, 0, sizeof it->u);
    char *cur = it->data;
    it->u.ev.time_us = now.time_us;
    it->u.ev.type = ev->type;
    it->u.ev.ident = put_str(&cur, ev->ident);
    it->u.ev.owner = put_str(&cur, ev->owner);
    it->u.ev.peer = put_str(&cur, ev->peer);
    it->u.ev.channel = put_str(&cur, ev->channel);
    it->u.ev.reason = put_str(&cur, ev->reason);
    it->u.ev.count = ev->count;
    for (guint i = 0; i < s->all->len; i++) {
        struct sink *sk = s->all->pdata[i];
        if (sk->wants & HPF_SINK_EVENTS)
            push(sk, it);
    }
    item_unref(it);
}

void sinks_set_tap(struct sinks *s, sinks_tap_fn fn, void *ud)
{
    s->tap = fn;
    s->tap_ud = ud;
}

void sinks_reopen(struct sinks *s)
{
    if (!s)
        return;
    for (guint i = 0; i < s->all->len; i++) {
        struct sink *sk = s->all->pdata[i];
        if (!sk->q)
            continue;
        struct item *it = g_malloc0(sizeof *it);
        it->refs = 1;
        it->kind = ITEM_REOPEN;
        push(sk, it);
        item_unref(it);
    }
}

void sinks_free(struct sinks *s)
{
    if (!s)
        return;
    g_ptr_array_unref(s->all);
    g_free(s);
}

guint sinks_count(const struct sinks *s) { return s ? s->all->len : 0; }

void sinks_get_stats(const struct sinks *s, guint i, struct sink_stats *out)
{
    const struct sink *sk = s->all->pdata[i];
    out->name = sk->pi->name;
    out->delivered = __atomic_load_n(&sk->delivered, __ATOMIC_RELAXED);
    out->dropped = sk->dropped;
    out->errors = __atomic_load_n(&sk->errors, __ATOMIC_RELAXED);
    out->queued_bytes = (guint64)__atomic_load_n(&sk->queued_bytes, __ATOMIC_RELAXED);
}
