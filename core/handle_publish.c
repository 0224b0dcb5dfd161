/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PUBLISH: check, then fan the frame out to every reader by reference, in runs.
 *
 * How the fanout works (what is read when, what is written when, what
 * bounds what):
 * - Read: one read event takes what a connection's socket holds, up to
 *   READ_BATCH (256 KiB; TLS_READ, 32 KiB, over TLS) or max_frame (conn.c,
 *   on_read).  Its complete
 *   frames are copied once into a frame block and handled in that turn;
 *   libevent then serves the other ready connections, so one publisher
 *   gets at most READ_BATCH per loop turn.  While a subscriber that keeps
 *   up has more than the backlog mark queued (max_queued_bytes / 16, 64 KiB
 *   to 1 MiB), no publisher is read: the data waits in their sockets.  The
 *   mark is judged each time a queue grows (output.c, conn_output_kick), so
 *   the publishers after the one that crossed it wait within the same turn:
 *   a queue passes the mark by about one publisher's read (READ_BATCH,
 *   or one frame when max_frame is larger).  The paused take turns: when
 *   a backlog forms, every publisher read since the last one formed joins
 *   the back of a queue; once it is gone, RESUME_BATCH (16) of the queue
 *   have their turn per loop turn, the longest paused first: each is read
 *   at once, in the queue's order (not epoll's), until a backlog forms.
 *   While any wait, a read takes at most TURN_READ (64 KiB, conn.c).
 * - Decide: the receivers of (owner, channel) are the router's subscribers
 *   (access = channels), or a view of them the router caches per owner
 *   (access = graph): decided once, again only when the channel's
 *   subscribers change or a reload applied new data, not per message.
 * - Count: deliver() extends the subscriber's run of adjacent frames of
 *   the block; no I/O, no copy.  Over max_queued_bytes it drops instead.
 * - Queue: once the publisher's batch is handled, each run goes into the
 *   subscriber's output as one reference to the block (a copy when the run
 *   is under half the block, so what a queue pins stays under twice what
 *   it counts).
 * - Write: at the end of the loop turn, one writev per plain subscriber
 *   (output.c, on_flush); only what its socket refuses waits for EV_WRITE.
 *   TLS bufferevents write (and encrypt) for themselves.  A parked
 *   subscriber (an idle plain session without a bufferevent, conn.c) takes
 *   its first run of a turn straight into its socket with one send, without
 *   queueing; only what the socket refuses, or a second run that turn, brings
 *   its bufferevent back.
 * - Input bounds: a session's input holds at most one frame (max_frame);
 *   bytes held in incomplete frames are bounded in all and per address
 *   (input_budget, input_budget_per_ip: over them, sessions holding over
 *   16 KiB of one are not read, and top-up reads take no more than the room
 *   left), and a frame must arrive whole within frame_timeout (conn.c).
 */
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "broker.h"
#include "cluster.h"
#include "flow.h"
#include "graph.h"
#include "log.h"
#include "metrics.h"
#include "wire_str.h"
#include "router.h"
#include "sinks.h"

/*
 * A run pins its whole block.  When the run is under half of it (the
 * subscriber takes few of the frames read together), copy it instead: what
 * a subscriber pins then stays under twice what max_queued_bytes counts.
 */
#define RUN_COPY_RATIO 2

static void block_release(const void *data, size_t len, void *arg) { frame_block_unref(arg); }

void handle_publish_flush_one(struct conn *s, gboolean discard)
{
    struct frame_block *blk = s->run_block;
    if (!blk)
        return;
    int rc = 0;
    if (!discard) {
        const uint8_t *p = blk->data + s->run_off;
        /* A parked subscriber's socket takes what it can first. */
        size_t sent = conn_write_parked(s, p, s->run_len), left = s->run_len - sent;
        struct evbuffer *out = left ? conn_output(s) : NULL;
        p += sent;
        if (!left) {
            rc = 0;
        } else if (!out) {
            rc = -1;
            if (sent) /* a frame cut short: the stream is lost, end it */
                shutdown(s->fd, SHUT_RDWR);
        } else if (left * RUN_COPY_RATIO < blk->len) {
            rc = evbuffer_add(out, p, left);
        } else {
            g_atomic_int_inc(&blk->refs);
            rc = evbuffer_add_reference(out, p, left, block_release, blk);
            if (rc < 0)
                g_atomic_int_dec_and_test(&blk->refs);
        }
    }
    if (rc < 0) {
        /* Out of memory: what was counted as delivered is dropped after all. */
        s->dropped += s->run_msgs;
        s->b->stats.drops += s->run_msgs;
        s->b->stats.deliveries -= s->run_msgs;
    }
    frame_block_unref(blk);
    s->run_block = NULL;
    s->run_off = s->run_len = 0;
    s->run_msgs = 0;
    if (!discard)
        conn_output_kick(s);
}

void handle_publish_flush(struct broker *b) { output_runs_flush(b); }

/* Count the frame at off in blk for s, unless s is over its bound; FALSE when dropped. */
static gboolean deliver(struct conn *s, struct frame_block *blk, size_t off, size_t len,
                        size_t payload_len)
{
    struct broker *b = s->b;
    size_t queued = conn_queued(s) + s->run_len;
    /* One message always fits an empty queue, however large. */
    if (queued > 0 && queued + len > b->cfg->max_queued_bytes) {
        if (s->over_since_us == 0) {
            s->over_since_us = g_get_monotonic_time();
            log_notice("%s@%s: slow consumer: %zu bytes queued; dropping its messages", s->ident,
                       s->peer, queued);
            metrics_deadline(b->metrics, s->ident, TRUE);
            sinks_event(b->sinks, &(struct hpf_event){.type = HPF_EVENT_SLOW_DROP,
                                                      .ident = s->ident,
                                                      .owner = s->owner,
                                                      .peer = s->peer,
                                                      .reason = "output queue full",
                                                      .count = s->dropped + 1});
        }
        s->dropped++;
        b->stats.drops++;
        return FALSE;
    }
    if (s->run_block == blk && s->run_off + s->run_len == off) {
        s->run_len += len;
        s->run_msgs++;
    } else {
        handle_publish_flush_one(s, FALSE);
        g_atomic_int_inc(&blk->refs);
        s->run_block = blk;
        s->run_off = off;
        s->run_len = len;
        s->run_msgs = 1;
        output_run_listed(s);
    }
    s->sent_fill += len;
    s->recv_msgs++;
    s->recv_bytes += payload_len;
    b->stats.deliveries++;
    return TRUE;
}

/* Same checks for every verb that carries an ident. */
gboolean handle_check_ident(struct conn *c, const struct wire_msg *m)
{
    if (wire_str_equal(m->name, c->ident))
        return TRUE;
    char *ident = g_strndup((const char *)m->name.ptr, m->name.len);
    char *text = broker_deny_text(c->b, DENY_IDENT, ident, NULL);
    conn_fail(c, "ident-mismatch", "%s", text);
    g_free(text);
    g_free(ident);
    return FALSE;
}

gboolean handle_channel(struct conn *c, const struct wire_msg *m, char buf[WIRE_MAX_NAME + 1])
{
    size_t n = m->channel.len;
    /* PUBLISH gives the name a length byte; SUBSCRIBE's runs to the frame's
     * end, and a longer one could never match a PUBLISH. */
    if (n > WIRE_MAX_NAME) {
        conn_fail(c, "bad-frame", "Bad frame: %s channel name of %zu bytes exceeds %u",
                  wire_op_name(m->op), n, WIRE_MAX_NAME);
        return FALSE;
    }
    if (n && memchr(m->channel.ptr, 0, n)) {
        conn_fail(c, "bad-frame", "Bad frame: channel name contains a NUL byte");
        return FALSE;
    }
    if (n)
        memcpy(buf, m->channel.ptr, n);
    buf[n] = 0;
    return TRUE;
}

/* Denied: ERROR, then close or carry on as configured.  Returns go-on. */
gboolean handle_denied(struct conn *c, enum deny_kind kind, const char *chan)
{
    char *text = broker_deny_text(c->b, kind, c->ident, chan);
    gboolean go_on = c->b->cfg->on_denied == ON_DENIED_CONTINUE;
    sinks_event(c->b->sinks, &(struct hpf_event){.type = HPF_EVENT_DENIED,
                                                 .ident = c->ident,
                                                 .owner = c->owner,
                                                 .peer = c->peer,
                                                 .channel = chan,
                                                 .reason = kind == DENY_PUB ? "publish denied"
                                                                            : "subscribe denied"});
    if (go_on) {
        log_info("%s@%s: denied: %s", c->ident, c->peer, text);
        conn_send_error(c, "%s", text);
    } else {
        /* The disconnect event says this, not the longer ERROR text. */
        if (!c->close_why)
            c->close_why = g_strdup(kind == DENY_PUB ? "publish denied" : "subscribe denied");
        conn_fail(c, "not-authorized", "%s", text);
    }
    g_free(text);
    return go_on;
}

/* The question a graph view answers: who may read what owner publishes on chan. */
struct graph_ask {
    const struct broker *b;
    const char *owner, *chan;
    gboolean looked_up;
    const struct graph_readers *readers;
};

static gboolean graph_keep(void *sub, void *ctx)
{
    const struct conn *s = sub;
    struct graph_ask *a = ctx;
    if (!a->looked_up) {
        a->readers = a->b->graph ? graph_readers(a->b->graph, a->owner, a->chan) : NULL;
        a->looked_up = TRUE;
    }
    return graph_readers_has(a->readers, s->uid) || !strcmp(s->owner, a->owner);
}

/*
 * chan's subscribers that may read what owner publishes.  Graph mode: the
 * router's view for owner, made again when a reload applied new data (new
 * graph, new uids or owners: each bumps stats.graph_reloads) or chan's
 * subscribers changed.
 */
static const GPtrArray *receivers(struct broker *b, const char *owner, const char *chan)
{
    if (b->cfg->access != ACCESS_GRAPH)
        return router_subscribers(b->router, chan);
    struct graph_ask ask = {.b = b, .owner = owner, .chan = chan};
    return router_view(b->router, chan, owner, b->stats.graph_reloads, graph_keep, &ask);
}

void handle_publish_fanout(struct broker *b, const char *owner, const char *chan,
                           struct frame_block *blk, size_t off, size_t frame_len,
                           size_t payload_len)
{
    const GPtrArray *subs = receivers(b, owner, chan);
    for (guint i = 0; subs && i < subs->len; i++) {
        struct conn *s = subs->pdata[i];
        if (s->state == CONN_READY)
            deliver(s, blk, off, frame_len, payload_len);
    }
}

gboolean handle_publish(struct conn *c, const struct wire_msg *m, struct frame_block *blk,
                        size_t off)
{
    if (!handle_check_ident(c, m))
        return FALSE;
    /* On the stack: a channel name is at most 255 bytes, and this runs per message. */
    char chan[WIRE_MAX_NAME + 1];
    if (!handle_channel(c, m, chan))
        return FALSE;
    if (!g_hash_table_contains(c->may_publish, chan))
        return handle_denied(c, DENY_PUB, chan);

    struct broker *b = c->b;
    c->pub_msgs++;
    c->pub_bytes += m->data.len;
    b->stats.publishes++;
    b->stats.publish_bytes += m->data.len;
    sinks_message(b->sinks, c->ident, c->owner, chan, m->data.ptr, m->data.len);
    /* Sensors publish on one channel or few: remember the last one's stats. */
    if (!c->pub_stat_chan || strcmp(c->pub_stat_chan, chan)) {
        g_free(c->pub_stat_chan);
        c->pub_stat_chan = g_strdup(chan);
        c->pub_stat = metrics_pub_stat(b->metrics, c->ident, chan);
        c->flow_pub = NULL;
    }
    pub_stat_observe(c->pub_stat, m->data.len);
    if (b->flow) {
        /* Flow health: one bucket increment; a lookup only when the series changed hands. */
        if (!c->flow_pub || c->flow_pub->gen != c->flow_pub_gen) {
            c->flow_pub = flow_series(b->flow, FLOW_PUBLISHED, c->ident, chan, c->owner);
            c->flow_pub_gen = c->flow_pub->gen;
        }
        flow_count(b->flow, c->flow_pub, 1, broker_now_s(b));
    }

    handle_publish_fanout(b, c->owner, chan, blk, off, m->frame_len, m->data.len);
    if (b->cluster)
        cluster_publish(b->cluster, c->ident, c->owner, chan, m->data.ptr, m->data.len);
    return TRUE;
}
