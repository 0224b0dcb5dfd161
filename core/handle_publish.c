/* PUBLISH: check, then fan the frame out by reference to every reader. */
#include <string.h>

#include <event2/buffer.h>

#include "broker.h"
#include "graph.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "router.h"
#include "sinks.h"

/* A published frame, stored once and shared by every subscriber queue. */
struct frame_ref {
    gint refs;
    size_t len;         /* the whole frame */
    size_t payload_len; /* what the counters count */
    uint8_t data[];
};

static void frame_unref(const void *data, size_t len, void *arg)
{
    struct frame_ref *f = arg;
    if (g_atomic_int_dec_and_test(&f->refs))
        g_free(f);
}

/* Queue f on s unless s is over its bound; FALSE when dropped. */
static gboolean deliver(struct conn *s, struct frame_ref *f)
{
    struct broker *b = s->b;
    size_t queued = conn_queued(s);
    /* One message always fits an empty queue, however large. */
    if (queued > 0 && queued + f->len > b->cfg->max_queued_bytes) {
        if (s->over_since_us == 0) {
            s->over_since_us = g_get_monotonic_time();
            log_notice("%s@%s: slow consumer: %zu bytes queued; dropping its messages",
                       s->ident, s->peer, queued);
            metrics_deadline(b->metrics, s->ident, TRUE);
            sinks_event(b->sinks, HPF_EVENT_SLOW_DROP, s->ident, s->owner, s->peer, NULL,
                        "output queue full", s->dropped + 1);
        }
        s->dropped++;
        b->stats.drops++;
        return FALSE;
    }
    g_atomic_int_inc(&f->refs);
    if (evbuffer_add_reference(bufferevent_get_output(s->bev), f->data, f->len, frame_unref, f) <
        0) {
        g_atomic_int_dec_and_test(&f->refs);
        s->dropped++;
        b->stats.drops++;
        return FALSE;
    }
    s->sent_fill += f->len;
    s->recv_msgs++;
    s->recv_bytes += f->payload_len;
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

/* The channel as a C string, or NULL (and the connection failed). */
char *handle_channel(struct conn *c, const struct wire_msg *m)
{
    char *chan = wire_str_dup(m->channel);
    if (!chan)
        conn_fail(c, "bad-frame", "Bad frame: channel name contains a NUL byte");
    return chan;
}

/* Denied: ERROR, then close or carry on as configured.  Returns go-on. */
gboolean handle_denied(struct conn *c, enum deny_kind kind, const char *chan)
{
    char *text = broker_deny_text(c->b, kind, c->ident, chan);
    gboolean go_on = c->b->cfg->on_denied == ON_DENIED_CONTINUE;
    sinks_event(c->b->sinks, HPF_EVENT_DENIED, c->ident, c->owner, c->peer, chan,
                kind == DENY_PUB ? "publish denied" : "subscribe denied", 0);
    if (go_on) {
        log_info("%s@%s: denied: %s", c->ident, c->peer, text);
        conn_send_error(c, "%s", text);
    } else {
        conn_fail(c, "not-authorized", "%s", text);
    }
    g_free(text);
    return go_on;
}

gboolean handle_publish(struct conn *c, const struct wire_msg *m, const uint8_t *frame)
{
    if (!handle_check_ident(c, m))
        return FALSE;
    char *chan = handle_channel(c, m);
    if (!chan)
        return FALSE;
    if (!g_hash_table_contains(c->may_publish, chan)) {
        gboolean go_on = handle_denied(c, DENY_PUB, chan);
        g_free(chan);
        return go_on;
    }

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
    }
    pub_stat_observe(c->pub_stat, m->data.len);

    const GPtrArray *subs = router_subscribers(b->router, chan);
    if (subs && subs->len) {
        /* Graph mode: one lookup per message, a binary search per subscriber. */
        gboolean graph = b->cfg->access == ACCESS_GRAPH;
        const struct graph_readers *readers =
            graph && b->graph ? graph_readers(b->graph, c->owner, chan) : NULL;
        struct frame_ref *f = g_malloc(sizeof *f + m->frame_len);
        f->refs = 1;
        f->len = m->frame_len;
        f->payload_len = m->data.len;
        memcpy(f->data, frame, m->frame_len);
        for (guint i = 0; i < subs->len; i++) {
            struct conn *s = subs->pdata[i];
            if (s->state != CONN_READY)
                continue;
            if (graph && !graph_readers_has(readers, s->uid) && strcmp(s->owner, c->owner))
                continue;
            deliver(s, f);
        }
        frame_unref(NULL, 0, f);
    }
    g_free(chan);
    return TRUE;
}
