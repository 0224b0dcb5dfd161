/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cluster glue.  Local publishes go to the plugin once, after the local
 * fanout; local interest (first subscriber of a channel, last one gone)
 * follows the router; messages from other nodes arrive on the plugin's
 * threads through host->cluster_inject(), are encoded into a PUBLISH frame
 * right there, and wait in one bounded FIFO for the loop thread, which fans
 * them out exactly as a local publish (handle_publish_fanout) but never
 * forwards them again.
 */
#include "cluster.h"

#include <string.h>

#include <event2/event.h>

#include "broker.h"
#include "log.h"
#include "loader.h"
#include "router.h"
#include "snapshot.h"

/* What an injected message is checked against: storage's authkeys. */
struct cluster_key {
    char *owner;
    GHashTable *publish; /* channel set */
};

struct injected {
    char *ident;
    char *owner;
    char *chan;
    struct frame_block *blk; /* the whole PUBLISH frame */
    size_t payload_len;
};

struct cluster {
    struct broker *b;
    struct plugin_instance *pi;
    struct event *notify;
    struct event *check;    /* the transport's max payload against max_frame */
    guint64 payload_warned; /* loop thread: the max payload last warned about */

    GMutex lock;  /* guards the four below */
    GQueue queue; /* struct injected *, oldest first */
    size_t queued_bytes;
    gboolean notify_pending;
    guint64 drops;

    guint64 injected;     /* loop thread only */
    guint64 drops_logged; /* loop thread only */
    struct log_ratelimit drop_rl;

    /* Loop thread only: ident -> struct cluster_key, from the last reload
     * (NULL before the first); what does not match it is refused. */
    GHashTable *keys;
    guint64 refused;
    struct log_ratelimit refuse_rl;
};

static void cluster_key_free(gpointer p)
{
    struct cluster_key *k = p;
    g_free(k->owner);
    g_hash_table_unref(k->publish);
    g_free(k);
}

GHashTable *cluster_keys_build(const struct snapshot *s)
{
    GHashTable *keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cluster_key_free);
    GHashTableIter it;
    gpointer ident, v;
    g_hash_table_iter_init(&it, s->authkey_by_ident);
    while (g_hash_table_iter_next(&it, &ident, &v)) {
        const struct snap_authkey *a = v;
        struct cluster_key *k = g_new0(struct cluster_key, 1);
        k->owner = g_strdup(a->owner);
        k->publish = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; a->publish && i < a->publish->len; i++)
            g_hash_table_add(k->publish, g_strdup(a->publish->pdata[i]));
        g_hash_table_insert(keys, g_strdup(ident), k);
    }
    return keys;
}

GHashTable *cluster_set_keys(struct cluster *cl, GHashTable *keys)
{
    GHashTable *old = cl->keys;
    cl->keys = keys;
    return old;
}

/* Loop thread: NULL when the message may be fanned out, else why not. */
static const char *refusal(const struct cluster *cl, const struct injected *in)
{
    if (!cl->keys)
        return "no authkey data loaded yet";
    const struct cluster_key *k = g_hash_table_lookup(cl->keys, in->ident);
    if (!k)
        return "unknown ident";
    if (strcmp(k->owner, in->owner))
        return "owner is not the ident's owner";
    if (!g_hash_table_contains(k->publish, in->chan))
        return "ident may not publish on the channel";
    return NULL;
}

static void injected_free(struct injected *in)
{
    frame_block_unref(in->blk);
    g_free(in->ident);
    g_free(in->owner);
    g_free(in->chan);
    g_free(in);
}

/* Any thread: the plugin's. */
static int inject(void *data, const struct hpf_message *msg)
{
    struct cluster *cl = data;
    if (!msg || !msg->ident || !msg->owner || !msg->channel || (!msg->payload && msg->payload_len))
        return HPF_ERR_INVALID;
    size_t il = strlen(msg->ident), cl_len = strlen(msg->channel);
    size_t flen = wire_encode_publish(NULL, 0, msg->ident, il, msg->channel, cl_len, msg->payload,
                                      msg->payload_len);
    if (flen == 0) {
        g_mutex_lock(&cl->lock);
        cl->drops++;
        g_mutex_unlock(&cl->lock);
        return HPF_ERR_INVALID;
    }
    g_mutex_lock(&cl->lock);
    gboolean full = cl->queue.length >= CLUSTER_INJECT_MAX_MSGS ||
                    cl->queued_bytes + flen > CLUSTER_INJECT_MAX_BYTES;
    if (full)
        cl->drops++;
    g_mutex_unlock(&cl->lock);
    if (full)
        return HPF_ERR_UNAVAILABLE;

    struct injected *in = g_new0(struct injected, 1);
    in->blk = g_malloc(sizeof *in->blk + flen);
    in->blk->refs = 1;
    in->blk->len = flen;
    wire_encode_publish(in->blk->data, flen, msg->ident, il, msg->channel, cl_len, msg->payload,
                        msg->payload_len);
    in->ident = g_strdup(msg->ident);
    in->owner = g_strdup(msg->owner);
    in->chan = g_strdup(msg->channel);
    in->payload_len = msg->payload_len;

    g_mutex_lock(&cl->lock);
    g_queue_push_tail(&cl->queue, in);
    cl->queued_bytes += flen;
    gboolean wake = !cl->notify_pending;
    cl->notify_pending = TRUE;
    g_mutex_unlock(&cl->lock);
    /* Thread-safe with evthread_use_pthreads(), which main() enables. */
    if (wake)
        event_active(cl->notify, EV_READ, 0);
    return HPF_OK;
}

static void log_drops(struct cluster *cl, guint64 drops)
{
    if (drops == cl->drops_logged)
        return;
    uint64_t held = 0;
    if (!log_ratelimit_ok(&cl->drop_rl, &held))
        return;
    log_warn("cluster: dropped %" G_GUINT64_FORMAT " messages from other nodes "
             "(hand-over queue full: %u messages or %u bytes); %" G_GUINT64_FORMAT " in all",
             drops - cl->drops_logged, CLUSTER_INJECT_MAX_MSGS, CLUSTER_INJECT_MAX_BYTES, drops);
    cl->drops_logged = drops;
}

/* Loop thread: take what is queued now, fan it out, queue the runs. */
static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct cluster *cl = arg;
    struct broker *b = cl->b;
    GQueue batch = G_QUEUE_INIT;
    g_mutex_lock(&cl->lock);
    batch = cl->queue;
    g_queue_init(&cl->queue);
    cl->queued_bytes = 0;
    cl->notify_pending = FALSE;
    guint64 drops = cl->drops;
    g_mutex_unlock(&cl->lock);

    struct injected *in;
    while ((in = g_queue_pop_head(&batch))) {
        const char *why = refusal(cl, in);
        if (why) {
            cl->refused++;
            uint64_t held = 0;
            if (log_ratelimit_ok(&cl->refuse_rl, &held))
                log_warn("cluster: refused a message from NATS on channel %s as %s (owner %s): "
                         "%s (%" G_GUINT64_FORMAT " in all; %" G_GUINT64_FORMAT " more not logged)",
                         in->chan, in->ident, in->owner, why, cl->refused, held);
            injected_free(in);
            continue;
        }
        handle_publish_fanout(b, in->owner, in->chan, in->blk, 0, in->blk->len, in->payload_len);
        cl->injected++;
        injected_free(in);
    }
    handle_publish_flush(b);
    log_drops(cl, drops);
}

static void on_interest(void *data, const char *chan, gboolean on)
{
    struct cluster *cl = data;
    int rc = cl->pi->desc->cluster->interest(cl->pi->inst, chan, on);
    if (rc != HPF_OK)
        log_warn("cluster: %s interest in channel %s failed: %s", on ? "registering" : "dropping",
                 chan, hpf_strerror(rc));
}

/*
 * What a frame of max_frame bytes needs on the transport: its payload is
 * smaller than the frame, but the headers (ident, owner, origin, each
 * percent-encoded, and the instance id) come on top.
 */
#define CLUSTER_HEADER_ALLOWANCE 2048u
#define CLUSTER_CHECK_SECONDS    5

static void on_check(evutil_socket_t fd, short what, void *arg)
{
    struct cluster *cl = arg;
    if (!cl->pi->started || !cl->pi->desc->cluster->stats)
        return;
    struct hpf_cluster_stats st;
    memset(&st, 0, sizeof st);
    cl->pi->desc->cluster->stats(cl->pi->inst, &st);
    guint64 need = (guint64)cl->b->cfg->max_frame + CLUSTER_HEADER_ALLOWANCE;
    if (!st.max_payload || st.max_payload >= need) {
        cl->payload_warned = 0;
        return;
    }
    if (st.max_payload == cl->payload_warned)
        return;
    cl->payload_warned = st.max_payload;
    log_err("cluster: the transport takes messages of at most %" G_GUINT64_FORMAT
            " bytes, but max_frame is %u (plus up to %u bytes of headers): larger messages "
            "are delivered locally only and counted as not forwarded; raise NATS's "
            "max_payload to %" G_GUINT64_FORMAT " or more, or lower max_frame",
            (guint64)st.max_payload, cl->b->cfg->max_frame, CLUSTER_HEADER_ALLOWANCE, need);
}

struct cluster *cluster_new(struct broker *b, GError **error)
{
    const struct plugin_conf *pc = b->cfg->cluster;
    const char *dir = plugin_dir_resolve(b->cfg->plugin_dir);
    struct plugin_instance *pi = plugin_instance_new(dir, pc->plugin, HPF_KIND_CLUSTER, "cluster",
                                                     pc->keys, b->cfg->dir, error);
    if (!pi)
        return NULL;
    struct cluster *cl = g_new0(struct cluster, 1);
    cl->b = b;
    cl->pi = pi;
    g_mutex_init(&cl->lock);
    g_queue_init(&cl->queue);
    cl->drop_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10);
    cl->refuse_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10);
    cl->notify = event_new(b->base, -1, 0, on_notify, cl);
    cl->check = event_new(b->base, -1, EV_PERSIST, on_check, cl);
    return cl;
}

gboolean cluster_start(struct cluster *cl, GError **error)
{
    /* Before start(): the plugin may receive (and inject) at once. */
    plugin_set_cluster_inject(inject, cl, cl->pi->ctx);
    if (!plugin_instance_start(cl->pi, error)) {
        plugin_set_cluster_inject(NULL, NULL, NULL);
        return FALSE;
    }
    router_set_interest(cl->b->router, on_interest, cl);
    struct timeval every = {CLUSTER_CHECK_SECONDS, 0};
    event_add(cl->check, &every);
    /* Soon after start too: the connection is usually up within a second. */
    event_active(cl->check, EV_TIMEOUT, 0);
    log_notice("cluster: plugin %s %s started", cl->pi->desc->name,
               cl->pi->desc->version ? cl->pi->desc->version : "");
    return TRUE;
}

void cluster_publish(struct cluster *cl, const char *ident, const char *owner, const char *chan,
                     const uint8_t *payload, size_t len)
{
    if (!cl->pi->started)
        return;
    struct hpf_message msg = {
        .time_us = g_get_real_time(),
        .ident = ident,
        .owner = owner,
        .channel = chan,
        .payload = payload,
        .payload_len = len,
    };
    /* The plugin counts and logs what it could not forward. */
    (void)cl->pi->desc->cluster->publish(cl->pi->inst, &msg);
}

void cluster_get_counters(struct cluster *cl, struct cluster_counters *out)
{
    memset(out, 0, sizeof *out);
    out->injected = cl->injected;
    out->refused = cl->refused;
    g_mutex_lock(&cl->lock);
    out->inject_drops = cl->drops;
    g_mutex_unlock(&cl->lock);
    if (cl->pi->started && cl->pi->desc->cluster->stats) {
        struct hpf_cluster_stats st;
        memset(&st, 0, sizeof st);
        cl->pi->desc->cluster->stats(cl->pi->inst, &st);
        out->forwarded = st.forwarded;
        out->forward_failed = st.forward_failed;
        out->received = st.received;
        out->received_bad = st.received_bad;
        out->connected = st.connected;
        out->same_name = st.same_name;
        out->slow_consumer_drops = st.slow_consumer_drops;
    }
}

void cluster_free(struct cluster *cl)
{
    if (!cl)
        return;
    router_set_interest(cl->b->router, NULL, NULL);
    /* No more hand-overs from now on; a plugin thread already inside
     * inject() finishes with cl, which lives until after destroy(). */
    plugin_set_cluster_inject(NULL, NULL, NULL);
    plugin_instance_free(cl->pi);
    struct injected *in;
    while ((in = g_queue_pop_head(&cl->queue)))
        injected_free(in);
    event_free(cl->notify);
    event_free(cl->check);
    if (cl->keys)
        g_hash_table_unref(cl->keys);
    g_mutex_clear(&cl->lock);
    g_free(cl);
}
