/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scenario runner: hpfeeds clients spread over several libevent loops,
 * one thread each, so that the load generator is not the limit.
 *
 * Publishers go to the first loop(s), subscribers round robin over the
 * others; a coordinator (the calling thread, its own loop) runs the phases:
 *   warm     connect, INFO -> AUTH (+ SUBSCRIBE), then probes every 20 ms
 *            until every subscriber has received one and every publisher
 *            has been seen by some subscriber.  hpfeeds has no "auth ok",
 *            so a delivered probe is the only proof that AUTH and SUBSCRIBE
 *            went through.
 *   measure  --duration seconds of traffic (idle: until all connections
 *            are authenticated, then one quiet second).
 *   drain    no more sending; wait until every reading subscriber has
 *            everything, or 2 s without progress.  What is still missing
 *            then is a drop.
 * Payloads carry (magic, source, seq, CLOCK_MONOTONIC ns at send); the
 * clock is the same in every thread.  Plain sockets are read straight into
 * a per-client buffer (libevent 2.1 would read at most 4 KiB per event);
 * TLS clients read through their bufferevent.  Each loop counts for itself
 * (messages, latency histogram); the coordinator adds them up, and samples
 * every loop thread's CPU from /proc/self/task at both ends of the window.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "bench_common.h"
#include "wire.h"

#define TICK_US          20000
#define WARM_TIMEOUT_NS  (60 * G_GUINT64_CONSTANT(1000000000))
#define IDLE_TIMEOUT_NS  (300 * G_GUINT64_CONSTANT(1000000000))
#define DRAIN_QUIET_NS   (2 * G_GUINT64_CONSTANT(1000000000))
#define DRAIN_MAX_NS     (30 * G_GUINT64_CONSTANT(1000000000))
#define IDLE_HOLD_NS     G_GUINT64_CONSTANT(1000000000)
/* A streaming publisher refills its output buffer to PUB_HIGH once the
 * socket has taken it down to PUB_LOW: TCP decides the pace. */
#define PUB_LOW          (64u * 1024)
#define PUB_HIGH         (256u * 1024)
/* A subscriber reads up to this much per read(), at most SUB_READS times a
 * turn, so that the others on its loop get their turn. */
#define SUB_BUF          (256u * 1024)
#define SUB_READS        4
#define SMALL_BUF        1024u
#define PACED_MAX_QUEUE  (4u << 20)
#define IDLE_CONCURRENCY 256
#define MAX_FRAME        (16u << 20)

/* ---- state ---- */

enum role { ROLE_PUB, ROLE_SUB, ROLE_IDLE };
enum cstate { C_CONNECTING, C_INFO_WAIT, C_READY, C_DEAD };
enum phase { PH_WARM, PH_MEASURE, PH_IDLE_HOLD, PH_DRAIN, PH_DONE };

struct run;

/* One event loop and its thread, and what its clients counted. */
struct loop {
    struct run *r;
    guint index;
    struct event_base *base;
    GThread *thread;
    int tid;
    struct event *wake; /* another thread asks this loop to probe or pump */
    gboolean has_pubs;
    /* written by this loop's thread only */
    guint64 sent, recv_total, recv_window, bytes_window;
    struct hist *hist;
    double cpu0, cpu1; /* thread CPU seconds at the window's ends */
};

struct client {
    struct run *r;
    struct loop *loop;
    struct bufferevent *bev;
    struct event *rev; /* plain sockets: reads go straight into rbuf */
    uint8_t *rbuf;
    size_t rlen, rcap;
    enum role role;
    int index;
    enum cstate state;
    char *ident;
    /* publisher: one frame, patched in place for each message */
    uint8_t *frame;
    size_t frame_len, payload_off;
    guint64 seq;
    gboolean confirmed;
    /* subscriber */
    gboolean stalled, warmed;
    guint64 received;   /* read by other threads (window, drain) */
    guint64 *next_seq;  /* per publisher */
    guint64 *in_window; /* per publisher: received in the measured window */
    guint64 gaps, reorders;
};

struct run {
    const struct opts *o;
    const struct plan *p;
    struct target *t;
    struct result *res;
    struct event_base *base; /* the coordinator's */
    struct loop loops[BENCH_MAX_THREADS];
    guint n_loops, n_pub_loops;
    SSL_CTX *ssl_ctx;
    GPtrArray *pubs, *subs, *idle; /* struct client * */
    int ph;                        /* enum phase; atomic */
    int sending;                   /* atomic */
    int window_blocked;            /* atomic */
    struct event *tick, *pace, *deadline;
    guint64 phase_ns, t0, t_end, last_progress_ns, progress_mark, progress_ns;
    guint warmed, confirmed; /* atomic */
    struct hist *hist;       /* the loops' added up */
    GMutex lock;             /* failure, first_error */
    char *failure;
    guint64 errors_seen, conns_lost; /* atomic */
    char *first_error;
    guint next_pub;
    guint64 paced_skipped; /* messages not sent: the publisher's socket was full */
    /* idle (the idle clients live on loop 0) */
    int idle_started, idle_inflight, idle_done;
    guint64 idle_t1, hold_t0;
    uint8_t *idle_probe; /* publisher 0's probe frame on the idle channel */
    size_t idle_probe_len;
    struct proc_sample before, start, end, held;
    struct rusage ru0, ru1;
    struct broker_counters counted0;
};

static int phase(struct run *r) { return g_atomic_int_get(&r->ph); }

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void wr64(uint8_t *p, guint64 v)
{
    wr32(p, (uint32_t)(v >> 32));
    wr32(p + 4, (uint32_t)v);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static guint64 rd64(const uint8_t *p) { return (guint64)rd32(p) << 32 | rd32(p + 4); }

static guint64 load64(const guint64 *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static void store64(guint64 *p, guint64 v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

static const char *phase_name(int ph)
{
    static const char *const names[] = {"warm-up", "measurement", "idle hold", "drain", "done"};
    return names[ph];
}

static void fail(struct run *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(struct run *r, const char *fmt, ...)
{
    g_mutex_lock(&r->lock);
    if (!r->failure) {
        va_list ap;
        va_start(ap, fmt);
        r->failure = g_strdup_vprintf(fmt, ap);
        va_end(ap);
    }
    g_mutex_unlock(&r->lock);
    g_atomic_int_set(&r->ph, PH_DONE);
    event_base_loopbreak(r->base);
}

static void note_error(struct run *r, char *text)
{
    g_mutex_lock(&r->lock);
    if (!r->first_error)
        r->first_error = g_steal_pointer(&text);
    g_mutex_unlock(&r->lock);
    g_free(text);
}

/* ---- sending ---- */

static void stamp(struct client *c, uint32_t src, guint64 seq)
{
    uint8_t *pl = c->frame + c->payload_off;
    wr32(pl, BENCH_MAGIC);
    wr32(pl + 4, src);
    wr64(pl + 8, seq);
    wr64(pl + 16, now_ns());
}

static void send_probe(struct client *c)
{
    stamp(c, BENCH_PROBE_BIT | (uint32_t)c->index, 0);
    bufferevent_write(c->bev, c->frame, c->frame_len);
}

static void send_measured(struct client *c)
{
    stamp(c, (uint32_t)c->index, c->seq++);
    evbuffer_add(bufferevent_get_output(c->bev), c->frame, c->frame_len);
    store64(&c->loop->sent, c->loop->sent + 1);
}

static guint64 total_sent(struct run *r)
{
    guint64 n = 0;
    for (guint i = 0; i < r->n_loops; i++)
        n += load64(&r->loops[i].sent);
    return n;
}

static guint64 total_received(struct run *r)
{
    guint64 n = 0;
    for (guint i = 0; i < r->n_loops; i++)
        n += load64(&r->loops[i].recv_total);
    return n;
}

static guint64 min_received(struct run *r, guint64 sent)
{
    guint64 lo = G_MAXUINT64;
    for (guint i = 0; i < r->subs->len; i++) {
        struct client *s = r->subs->pdata[i];
        guint64 got = load64(&s->received);
        if (!s->stalled && got < lo)
            lo = got;
    }
    return lo == G_MAXUINT64 ? sent : lo;
}

/* Stream mode: top the output buffer up, within the in-flight window. */
static void pump(struct client *c)
{
    struct run *r = c->r;
    if (!g_atomic_int_get(&r->sending) || r->p->mode != MODE_STREAM || c->state != C_READY ||
        !c->bev)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    guint64 budget = G_MAXUINT64;
    if (r->p->window > 0) {
        guint64 sent = total_sent(r);
        guint64 inflight = sent - MIN(sent, min_received(r, sent));
        if (inflight >= (guint64)r->p->window) {
            g_atomic_int_set(&r->window_blocked, 1);
            return;
        }
        budget = (guint64)r->p->window - inflight;
        /* A share each, so that many publishers all take part. */
        budget = MIN(budget, MAX(1u, (guint64)r->p->window / r->pubs->len));
    }
    while (budget-- > 0 && evbuffer_get_length(out) < PUB_HIGH)
        send_measured(c);
}

static void wake_publishers(struct run *r)
{
    for (guint i = 0; i < r->n_pub_loops; i++)
        event_active(r->loops[i].wake, EV_READ, 0);
}

static void on_pace(G_GNUC_UNUSED evutil_socket_t fd, G_GNUC_UNUSED short what, void *arg)
{
    struct run *r = arg;
    if (!g_atomic_int_get(&r->sending) || r->pubs->len == 0)
        return;
    /* Paced plans keep all publishers on loop 0: sent is this thread's. */
    struct loop *l = &r->loops[0];
    guint64 due = (guint64)((double)(now_ns() - r->t0) * r->p->rate / 1e9) - r->paced_skipped;
    for (guint tries = 0; l->sent < due && tries < 10000; tries++) {
        struct client *c = r->pubs->pdata[r->next_pub++ % r->pubs->len];
        if (c->state != C_READY || !c->bev)
            continue;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > PACED_MAX_QUEUE) {
            /* The broker does not take them: skip, and report the offered rate as missed. */
            r->paced_skipped += due - l->sent;
            return;
        }
        send_measured(c);
    }
}

/* ---- receiving ---- */

static void got_probe(struct client *c, uint32_t src)
{
    struct run *r = c->r;
    if (c->role == ROLE_IDLE) {
        /* The publisher's probe on the idle channel: AUTH and SUBSCRIBE are in. */
        if (!c->warmed) {
            c->warmed = TRUE;
            g_atomic_int_inc(&r->idle_done);
        }
        return;
    }
    if (!c->warmed) {
        c->warmed = TRUE;
        g_atomic_int_inc(&r->warmed);
    }
    if (src < r->pubs->len) {
        struct client *p = r->pubs->pdata[src];
        if (!g_atomic_int_get(&p->confirmed)) {
            g_atomic_int_set(&p->confirmed, TRUE);
            g_atomic_int_inc(&r->confirmed);
        }
    }
}

static void got_publish(struct client *c, const struct wire_msg *m, guint64 now)
{
    struct run *r = c->r;
    struct loop *l = c->loop;
    if (m->data.len < BENCH_HDR_LEN || rd32(m->data.ptr) != BENCH_MAGIC)
        return;
    uint32_t src = rd32(m->data.ptr + 4);
    if (src & BENCH_PROBE_BIT) {
        got_probe(c, src & ~BENCH_PROBE_BIT);
        return;
    }
    if (src >= r->pubs->len)
        return;
    guint64 seq = rd64(m->data.ptr + 8), sent = rd64(m->data.ptr + 16);
    store64(&c->received, c->received + 1);
    store64(&l->recv_total, l->recv_total + 1);
    if (phase(r) == PH_MEASURE) {
        store64(&l->recv_window, l->recv_window + 1);
        store64(&l->bytes_window, l->bytes_window + m->frame_len);
        c->in_window[src]++;
    }
    hist_add(l->hist, now > sent ? now - sent : 0);
    guint64 *next = &c->next_seq[src];
    if (seq == *next) {
        (*next)++;
    } else if (seq > *next) {
        c->gaps += seq - *next;
        *next = seq + 1;
    } else {
        c->reorders++;
    }
}

static void send_auth(struct client *c, const struct wire_msg *info)
{
    struct run *r = c->r;
    uint8_t hash[WIRE_HASH_LEN];
    uint8_t buf[3 * (WIRE_HEADER_LEN + 1 + WIRE_MAX_NAME) + WIRE_HASH_LEN + 64];
    const char *secret = r->o->secret;
    size_t il = strlen(c->ident);
    if (wire_auth_hash(info->data.ptr, info->data.len, secret, strlen(secret), hash) != 0) {
        fail(r, "SHA-1 failed");
        return;
    }
    size_t n = wire_encode_auth(buf, sizeof buf, c->ident, il, hash);
    const char *sub = c->role == ROLE_SUB    ? BENCH_CHANNEL
                      : c->role == ROLE_IDLE ? BENCH_IDLE_CHANNEL
                                             : NULL;
    if (sub)
        n += wire_encode_sub(buf + n, sizeof buf - n, WIRE_OP_SUBSCRIBE, c->ident, il, sub,
                             strlen(sub));
    /* AUTH and what follows in one write: the broker queues frames behind AUTH. */
    bufferevent_write(c->bev, buf, n);
}

static void idle_launch(struct run *r);

static void got_frame(struct client *c, const struct wire_msg *m, guint64 now)
{
    struct run *r = c->r;
    switch (m->op) {
    case WIRE_OP_INFO:
        if (c->state != C_INFO_WAIT)
            break;
        c->state = C_READY;
        send_auth(c, m);
        if (c->role == ROLE_IDLE) {
            r->idle_inflight--;
            idle_launch(r);
        }
        break;
    case WIRE_OP_PUBLISH:
        got_publish(c, m, now);
        break;
    case WIRE_OP_ERROR:
        __atomic_fetch_add(&r->errors_seen, 1, __ATOMIC_RELAXED);
        note_error(r, g_strdup_printf("%s got ERROR '%.*s' during %s", c->ident, (int)m->data.len,
                                      (const char *)m->data.ptr, phase_name(phase(r))));
        break;
    default:
        break;
    }
}

/* A stalled subscriber stops reading once it is warm: the broker must queue. */
static gboolean reading(const struct client *c) { return !(c->stalled && c->warmed); }

/*
 * The complete frames at the head of data; returns the bytes used, or
 * (size_t)-1 after a failure.  *need is set to the length of an incomplete
 * frame at the end.
 */
static size_t parse_frames(struct client *c, const uint8_t *data, size_t len, size_t *need)
{
    guint64 now = now_ns();
    char reason[128];
    size_t off = 0;
    *need = 0;
    while (len - off >= WIRE_HEADER_LEN && reading(c)) {
        uint32_t flen = wire_peek_length(data + off);
        if (flen < WIRE_HEADER_LEN || flen > MAX_FRAME) {
            fail(c->r, "%s: bad frame length %u from the broker", c->ident, flen);
            return (size_t)-1;
        }
        if (len - off < flen) {
            *need = flen;
            break;
        }
        struct wire_msg m;
        const char *err = NULL;
        if (wire_decode(data + off, flen, MAX_FRAME, &m, reason, sizeof reason, &err) !=
            WIRE_FRAME) {
            fail(c->r, "%s: undecodable frame from the broker: %s", c->ident, err ? err : "?");
            return (size_t)-1;
        }
        got_frame(c, &m, now);
        off += flen;
        if (c->state == C_DEAD)
            return (size_t)-1;
    }
    return off;
}

static void after_input(struct client *c)
{
    if (g_atomic_int_get(&c->r->window_blocked)) {
        g_atomic_int_set(&c->r->window_blocked, 0);
        wake_publishers(c->r);
    }
}

static void client_lost(struct client *c, gboolean eof, int err);

/* Plain sockets: read into rbuf, then take the complete frames out. */
static void on_sock_read(evutil_socket_t fd, G_GNUC_UNUSED short what, void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < SUB_READS && c->rev && reading(c); i++) {
        size_t room = c->rcap - c->rlen;
        ssize_t n = read(fd, c->rbuf + c->rlen, room);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            client_lost(c, n == 0, errno);
            return;
        }
        if (n < 0)
            break;
        c->rlen += (size_t)n;
        size_t need;
        size_t used = parse_frames(c, c->rbuf, c->rlen, &need);
        if (used == (size_t)-1)
            return;
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
        if (need > c->rcap) {
            c->rcap = need;
            c->rbuf = g_realloc(c->rbuf, c->rcap);
        }
        if ((size_t)n < room)
            break; /* the socket is empty */
    }
    if (c->rev && !reading(c))
        event_del(c->rev);
    after_input(c);
}

/* TLS: the bufferevent reads (and decrypts); frames are taken from its input. */
static void on_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), need;
    if (len < WIRE_HEADER_LEN)
        return;
    size_t used = parse_frames(c, evbuffer_pullup(in, -1), len, &need);
    if (used == (size_t)-1)
        return;
    evbuffer_drain(in, used);
    if (!reading(c))
        bufferevent_disable(bev, EV_READ);
    after_input(c);
}

static void on_write(G_GNUC_UNUSED struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    if (c->role == ROLE_PUB)
        pump(c);
}

static void client_drop(struct client *c)
{
    if (c->rev)
        event_free(c->rev);
    c->rev = NULL;
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    c->state = C_DEAD;
}

static void client_lost(struct client *c, gboolean eof, int err)
{
    struct run *r = c->r;
    int ph = phase(r);
    if (ph != PH_DONE) {
        __atomic_fetch_add(&r->conns_lost, 1, __ATOMIC_RELAXED);
        note_error(r,
                   g_strdup_printf("%s: connection %s during %s", c->ident,
                                   eof ? "closed by the broker" : g_strerror(err), phase_name(ph)));
    }
    gboolean was_connecting = c->state == C_CONNECTING || c->state == C_INFO_WAIT;
    client_drop(c);
    if (c->role == ROLE_IDLE && was_connecting) {
        r->idle_inflight--;
        idle_launch(r);
    } else if (ph == PH_WARM) {
        g_mutex_lock(&r->lock);
        char *first = g_strdup(r->first_error);
        g_mutex_unlock(&r->lock);
        fail(r, "%s", first);
        g_free(first);
    }
}

static void on_event(G_GNUC_UNUSED struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->state = c->r->p->relay ? C_READY : C_INFO_WAIT;
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        client_lost(c, (what & BEV_EVENT_EOF) != 0, EVUTIL_SOCKET_ERROR());
}

/* Publishers on the first n_pub_loops loops, subscribers round robin on the rest. */
static struct loop *loop_for(struct run *r, enum role role, int index)
{
    if (role != ROLE_SUB || r->n_loops == r->n_pub_loops)
        return &r->loops[role == ROLE_SUB    ? (guint)index % r->n_loops
                         : role == ROLE_IDLE ? 0
                                             : (guint)index % r->n_pub_loops];
    guint n_sub = r->n_loops - r->n_pub_loops;
    return &r->loops[r->n_pub_loops + (guint)index % n_sub];
}

static struct client *client_new(struct run *r, enum role role, int index)
{
    struct client *c = g_new0(struct client, 1);
    c->r = r;
    c->role = role;
    c->index = index;
    c->loop = loop_for(r, role, index);
    c->ident = key_ident(role == ROLE_PUB ? "pub" : role == ROLE_SUB ? "sub" : "idle", index);
    c->rcap = role == ROLE_SUB ? SUB_BUF : SMALL_BUF;
    if (role != ROLE_SUB) {
        size_t size = MAX((size_t)r->p->size, BENCH_HDR_LEN);
        size_t il = strlen(c->ident), cl = strlen(BENCH_CHANNEL);
        c->frame_len = wire_encode_publish(NULL, 0, c->ident, il, BENCH_CHANNEL, cl, NULL, size);
        c->frame = g_malloc(c->frame_len);
        uint8_t *filler = g_malloc(size);
        for (size_t i = 0; i < size; i++)
            filler[i] = (uint8_t)('a' + i % 26);
        wire_encode_publish(c->frame, c->frame_len, c->ident, il, BENCH_CHANNEL, cl, filler, size);
        g_free(filler);
        c->payload_off = c->frame_len - size;
    } else {
        c->next_seq = g_new0(guint64, MAX(r->p->publishers, 1));
        c->in_window = g_new0(guint64, MAX(r->p->publishers, 1));
    }
    return c;
}

static const struct sockaddr_storage *client_addr(struct run *r, struct client *c,
                                                  struct sockaddr_storage *spread)
{
    const struct sockaddr_storage *addr =
        (r->p->relay && c->role == ROLE_SUB) ? &r->t->sub_addr : &r->t->addr;
    guint n_ports = r->o->sub_ports ? g_strv_length(r->o->sub_ports) : 0;
    if (c->role == ROLE_SUB && !r->p->relay && r->o->host && n_ports) {
        /* Subscribers spread over the nodes of a cluster. */
        *spread = *addr;
        in_port_t port = htons((in_port_t)atoi(r->o->sub_ports[(guint)c->index % n_ports]));
        if (spread->ss_family == AF_INET6)
            ((struct sockaddr_in6 *)spread)->sin6_port = port;
        else
            ((struct sockaddr_in *)spread)->sin_port = port;
        addr = spread;
    }
    return addr;
}

static struct bufferevent *client_bev(struct run *r, struct client *c, evutil_socket_t fd)
{
    struct event_base *base = c->loop->base;
    if (!r->ssl_ctx)
        return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    SSL *ssl = SSL_new(r->ssl_ctx);
    struct bufferevent *bev =
        ssl ? bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE)
            : NULL;
    if (bev) {
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        /* OpenSSL bufferevents do honour this (plain ones stop at 4 KiB). */
        bufferevent_set_max_single_read(bev, SUB_BUF);
    } else if (ssl) {
        SSL_free(ssl);
    }
    return bev;
}

static gboolean client_connect(struct run *r, struct client *c, gboolean small_rcvbuf)
{
    struct sockaddr_storage spread;
    const struct sockaddr_storage *addr = client_addr(r, c, &spread);
    evutil_socket_t fd = socket(addr->ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        fail(r, "socket: %s", g_strerror(errno));
        return FALSE;
    }
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (small_rcvbuf) {
        /* A stalled reader: keep the kernel from absorbing what the broker must queue. */
        int sz = 16384;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    c->bev = client_bev(r, c, fd);
    if (!c->bev) {
        evutil_closesocket(fd);
        fail(r, "%s: cannot set up the connection", c->ident);
        return FALSE;
    }
    c->rbuf = g_malloc(c->rcap);
    bufferevent_setcb(c->bev, r->ssl_ctx ? on_read : NULL, on_write, on_event, c);
    if (c->role == ROLE_PUB) {
        bufferevent_set_max_single_write(c->bev, PUB_HIGH);
        bufferevent_setwatermark(c->bev, EV_WRITE, PUB_LOW, 0);
    }
    if (r->ssl_ctx) {
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    } else {
        bufferevent_enable(c->bev, EV_WRITE);
        c->rev = event_new(c->loop->base, fd, EV_READ | EV_PERSIST, on_sock_read, c);
        event_add(c->rev, NULL);
    }
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)addr, (int)r->t->addr_len) <
        0) {
        fail(r, "%s: connect: %s", c->ident, g_strerror(errno));
        client_drop(c);
        return FALSE;
    }
    return TRUE;
}

static void client_free(gpointer p)
{
    struct client *c = p;
    client_drop(c);
    g_free(c->ident);
    g_free(c->frame);
    g_free(c->rbuf);
    g_free(c->next_seq);
    g_free(c->in_window);
    g_free(c);
}

/* On loop 0's thread: keep IDLE_CONCURRENCY connections in their handshake. */
static void idle_launch(struct run *r)
{
    while (phase(r) == PH_MEASURE && r->idle_started < r->p->connections &&
           r->idle_inflight < IDLE_CONCURRENCY) {
        struct client *c = client_new(r, ROLE_IDLE, r->idle_started++);
        g_ptr_array_add(r->idle, c);
        r->idle_inflight++;
        if (!client_connect(r, c, FALSE))
            return;
    }
}

/* A loop's wake event: whatever the phase asks of its publishers. */
static void on_wake(G_GNUC_UNUSED evutil_socket_t fd, G_GNUC_UNUSED short what, void *arg)
{
    struct loop *l = arg;
    struct run *r = l->r;
    int ph = phase(r);
    if (ph == PH_MEASURE && r->p->mode == MODE_IDLE && l->index == 0) {
        idle_launch(r);
        struct client *p = r->pubs->len ? r->pubs->pdata[0] : NULL;
        if (p && p->bev && r->idle_started == r->p->connections && r->idle_inflight == 0)
            bufferevent_write(p->bev, r->idle_probe, r->idle_probe_len);
        return;
    }
    guint want_subs = r->subs->len;
    for (guint i = 0; i < r->pubs->len; i++) {
        struct client *p = r->pubs->pdata[i];
        if (p->loop != l)
            continue;
        if (ph == PH_WARM && p->state == C_READY &&
            (!g_atomic_int_get(&p->confirmed) ||
             (i == 0 && (guint)g_atomic_int_get(&r->warmed) < want_subs)))
            send_probe(p);
        else if (ph == PH_MEASURE)
            pump(p);
    }
}

/* ---- threads ---- */

static gpointer loop_thread(gpointer arg)
{
    struct loop *l = arg;
    g_atomic_int_set(&l->tid, (int)syscall(SYS_gettid));
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* A thread's utime + stime in seconds, from /proc/self/task/TID/stat. */
static double thread_cpu(int tid)
{
    char path[64], *stat = NULL;
    double v = -1;
    g_snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    if (tid > 0 && g_file_get_contents(path, &stat, NULL, NULL)) {
        const char *p = strrchr(stat, ')');
        unsigned long ut, st;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            v = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    g_free(stat);
    return v;
}

static void loops_sample(struct run *r, gboolean end)
{
    for (guint i = 0; i < r->n_loops; i++) {
        struct loop *l = &r->loops[i];
        double v = thread_cpu(g_atomic_int_get(&l->tid));
        if (end)
            l->cpu1 = v;
        else
            l->cpu0 = v;
    }
}

/*
 * How many loops, and how many of them publish: subscribers get the most
 * (they read what the broker multiplies), many publishers get a share.
 */
static void loops_plan(struct run *r)
{
    const struct plan *p = r->p;
    guint n = (guint)CLAMP(r->o->threads > 0 ? r->o->threads : 4, 2, BENCH_MAX_THREADS);
    r->n_loops = n;
    gboolean one = p->mode == MODE_PACED || p->publishers <= 1;
    r->n_pub_loops = one ? 1 : MAX(1u, MIN(n / 2, (guint)p->publishers));
    if ((guint)p->subscribers < n - r->n_pub_loops)
        r->n_loops = r->n_pub_loops + (guint)MAX(p->subscribers, 1);
}

static void loops_start(struct run *r)
{
    for (guint i = 0; i < r->n_loops; i++)
        r->loops[i].thread = g_thread_new("bench-loop", loop_thread, &r->loops[i]);
    /* The tids, before the window can open. */
    for (guint i = 0; i < r->n_loops; i++)
        while (!g_atomic_int_get(&r->loops[i].tid))
            g_usleep(1000);
}

static void loops_stop(struct run *r)
{
    for (guint i = 0; i < r->n_loops; i++) {
        struct loop *l = &r->loops[i];
        if (l->thread) {
            event_base_loopbreak(l->base);
            g_thread_join(l->thread);
            l->thread = NULL;
        }
    }
}

/* ---- phases ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg);

static void begin_measure(struct run *r)
{
    proc_sample(r->t->pid, &r->start);
    r->before = r->start;
    if (r->t->pid > 0)
        proc_reset_peak(r->t->pid);
    perf_start(r->o, r->t, r->p->name);
    target_counters(r->t, &r->counted0);
    r->res->load_start = load_average();
    getrusage(RUSAGE_SELF, &r->ru0);
    loops_sample(r, FALSE);
    r->t0 = r->phase_ns = now_ns();
    /* Only measured messages (sent from now on) reach the counters and histograms. */
    g_atomic_int_set(&r->ph, PH_MEASURE);
    switch (r->p->mode) {
    case MODE_STREAM:
        g_atomic_int_set(&r->sending, 1);
        wake_publishers(r);
        break;
    case MODE_PACED: {
        g_atomic_int_set(&r->sending, 1);
        r->pace = event_new(r->loops[0].base, -1, EV_PERSIST, on_pace, r);
        long us = MAX(1000000L / MAX(r->p->rate, 1), 50L);
        struct timeval tv = {us / 1000000, us % 1000000};
        event_add(r->pace, &tv);
        break;
    }
    case MODE_IDLE:
        event_active(r->loops[0].wake, EV_READ, 0);
        return; /* ends when all are in, not after --duration */
    }
    double d = r->o->duration;
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6)};
    r->deadline = evtimer_new(r->base, on_deadline, r);
    evtimer_add(r->deadline, &tv);
}

static void end_measure(struct run *r)
{
    g_atomic_int_set(&r->sending, 0);
    r->t_end = now_ns();
    if (r->pace)
        event_del(r->pace);
    getrusage(RUSAGE_SELF, &r->ru1);
    loops_sample(r, TRUE);
    proc_sample(r->t->pid, &r->end);
    struct broker_counters c;
    if (r->counted0.ok && target_counters(r->t, &c)) {
        struct broker_counters *w = &r->res->counted_window;
        r->res->have_window_counters = TRUE;
        w->publishes = c.publishes - r->counted0.publishes;
        w->deliveries = c.deliveries - r->counted0.deliveries;
        w->drops = c.drops - r->counted0.drops;
        w->slow_disconnects = c.slow_disconnects - r->counted0.slow_disconnects;
    }
    perf_stop(r->t);
    g_atomic_int_set(&r->ph, PH_DRAIN);
    r->phase_ns = r->last_progress_ns = r->t_end;
    r->progress_mark = total_received(r);
}

static void on_deadline(G_GNUC_UNUSED evutil_socket_t fd, G_GNUC_UNUSED short what, void *arg)
{
    struct run *r = arg;
    if (phase(r) == PH_MEASURE)
        end_measure(r);
}

static gboolean all_caught_up(struct run *r)
{
    guint64 sent = total_sent(r);
    for (guint i = 0; i < r->subs->len; i++) {
        struct client *s = r->subs->pdata[i];
        if (!s->stalled && g_atomic_int_get((int *)&s->state) != C_DEAD &&
            load64(&s->received) < sent)
            return FALSE;
    }
    return TRUE;
}

static void warm_step(struct run *r, guint64 now)
{
    guint want_subs = r->subs->len, want_pubs = r->pubs->len;
    guint warmed = (guint)g_atomic_int_get(&r->warmed),
          confirmed = (guint)g_atomic_int_get(&r->confirmed);
    if (warmed == want_subs && confirmed == want_pubs) {
        begin_measure(r);
        return;
    }
    if (now - r->phase_ns > WARM_TIMEOUT_NS) {
        g_mutex_lock(&r->lock);
        char *first = g_strdup(r->first_error);
        g_mutex_unlock(&r->lock);
        fail(r,
             "warm-up: after %d s, %u of %u subscribers got a probe and %u of %u "
             "publishers were seen%s%s",
             (int)(WARM_TIMEOUT_NS / 1000000000u), warmed, want_subs, confirmed, want_pubs,
             first ? "; " : "", first ? first : "");
        g_free(first);
        return;
    }
    wake_publishers(r);
}

static void idle_step(struct run *r, guint64 now)
{
    int done = g_atomic_int_get(&r->idle_done);
    if (done >= r->p->connections) {
        r->idle_t1 = now;
        getrusage(RUSAGE_SELF, &r->ru1);
        loops_sample(r, TRUE);
        proc_sample(r->t->pid, &r->end);
        perf_stop(r->t);
        g_atomic_int_set(&r->ph, PH_IDLE_HOLD);
        r->hold_t0 = now;
    } else if (now - r->phase_ns > IDLE_TIMEOUT_NS) {
        g_mutex_lock(&r->lock);
        char *first = g_strdup(r->first_error);
        g_mutex_unlock(&r->lock);
        fail(r,
             "idle: %d of %d connections authenticated after %.0f s (%" G_GUINT64_FORMAT
             " lost%s%s)",
             done, r->p->connections, (double)(now - r->phase_ns) / 1e9, load64(&r->conns_lost),
             first ? "; first: " : "", first ? first : "");
        g_free(first);
    }
}

static void on_tick(G_GNUC_UNUSED evutil_socket_t fd, G_GNUC_UNUSED short what, void *arg)
{
    struct run *r = arg;
    guint64 now = now_ns();
    switch (phase(r)) {
    case PH_WARM:
        warm_step(r, now);
        break;
    case PH_MEASURE:
        if (r->o->verbose && now - r->progress_ns >= 500000000u) {
            r->progress_ns = now;
            fprintf(stderr,
                    "hpfriends-bench: %s: %.1f s: sent %" G_GUINT64_FORMAT
                    ", received %" G_GUINT64_FORMAT "\n",
                    r->p->name, (double)(now - r->t0) / 1e9, total_sent(r), total_received(r));
        }
        if (r->p->mode == MODE_IDLE) {
            idle_step(r, now);
            if (phase(r) == PH_MEASURE) /* go on launching; probe once all are in */
                event_active(r->loops[0].wake, EV_READ, 0);
        }
        break;
    case PH_IDLE_HOLD:
        if (now - r->hold_t0 >= IDLE_HOLD_NS) {
            proc_sample(r->t->pid, &r->held);
            g_atomic_int_set(&r->ph, PH_DONE);
            event_base_loopbreak(r->base);
        }
        break;
    case PH_DRAIN: {
        guint64 got = total_received(r);
        if (got != r->progress_mark) {
            r->progress_mark = got;
            r->last_progress_ns = now;
        }
        if (all_caught_up(r) || now - r->last_progress_ns > DRAIN_QUIET_NS ||
            now - r->phase_ns > DRAIN_MAX_NS) {
            g_atomic_int_set(&r->ph, PH_DONE);
            event_base_loopbreak(r->base);
        }
        break;
    }
    case PH_DONE:
        break;
    }
}

/* ---- results ---- */

/* Each loop thread's CPU over the window, and whether one was the limit. */
static void thread_result(struct run *r, struct result *res)
{
    double window = (double)((r->p->mode == MODE_IDLE ? r->idle_t1 : r->t_end) - r->t0) / 1e9;
    res->n_threads = r->n_loops;
    for (guint i = 0; i < r->n_loops && window > 0; i++) {
        const struct loop *l = &r->loops[i];
        double pct = l->cpu0 >= 0 && l->cpu1 >= 0 ? 100 * (l->cpu1 - l->cpu0) / window : 0;
        res->thread_pct[i] = pct;
        g_snprintf(res->thread_what[i], sizeof res->thread_what[i], "%s",
                   r->p->mode == MODE_IDLE && i == 0 ? "idle+pub"
                   : i < r->n_pub_loops              ? "pub"
                                                     : "sub");
        res->bench_max_pct = MAX(res->bench_max_pct, pct);
    }
    res->bench_bound = res->bench_max_pct >= BENCH_BOUND_PCT;
}

/*
 * With several publishers flooding (--window 0): how evenly the broker read
 * them, as each one's deliveries in the window (to the reading subscribers,
 * added up): the least served, the median and the most.  The publishers of
 * a loop thread write whenever their sockets take more, so a gap between
 * them is the broker's (or the relay's) choice, not the scheduler's.  (With
 * a window, the bench chooses who may send.)
 */
static int cmp_u64(gconstpointer a, gconstpointer b)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
    return x < y ? -1 : x > y;
}

static void report_fairness(struct run *r)
{
    guint n = r->pubs->len;
    if (n < 2 || r->p->mode != MODE_STREAM || r->p->window > 0)
        return;
    guint64 *per = g_new0(guint64, n);
    for (guint i = 0; i < r->subs->len; i++) {
        struct client *s = r->subs->pdata[i];
        if (s->stalled)
            continue;
        for (guint j = 0; j < n; j++)
            per[j] += s->in_window[j];
    }
    guint most = 0;
    for (guint j = 1; j < n; j++)
        if (per[j] > per[most])
            most = j;
    qsort(per, n, sizeof *per, cmp_u64);
    struct result *res = r->res;
    res->have_fairness = TRUE;
    res->pub_min = per[0];
    res->pub_median = per[n / 2];
    res->pub_max = per[n - 1];
    result_note(res,
                "per publisher in the window: least served %" G_GUINT64_FORMAT
                ", median %" G_GUINT64_FORMAT ", most %" G_GUINT64_FORMAT
                " (publisher %u of %u) deliveries",
                res->pub_min, res->pub_median, res->pub_max, most, n);
    g_free(per);
}

static void fill_result(struct run *r, struct result *res)
{
    const struct plan *p = r->p;
    res->errors_seen = load64(&r->errors_seen);
    if (r->first_error)
        result_note(res, "first client-side problem: %s", r->first_error);
    if (r->conns_lost)
        result_note(res, "%" G_GUINT64_FORMAT " connections lost before the run ended",
                    r->conns_lost);
    if (r->failure) {
        res->error = g_strdup(r->failure);
        return;
    }
    if (r->start.ok && r->end.ok) {
        res->have_proc = TRUE;
        res->cpu_s = r->end.cpu_s - r->start.cpu_s;
        res->faults = (double)(r->end.minflt - r->start.minflt);
        res->rss_start_kib = r->start.rss_kib;
        res->hwm_kib = r->end.hwm_kib;
        res->rss_end_kib = r->end.rss_kib;
    }
    res->bench_cpu_s = (double)(r->ru1.ru_utime.tv_sec - r->ru0.ru_utime.tv_sec +
                                r->ru1.ru_stime.tv_sec - r->ru0.ru_stime.tv_sec) +
                       (double)(r->ru1.ru_utime.tv_usec - r->ru0.ru_utime.tv_usec +
                                r->ru1.ru_stime.tv_usec - r->ru0.ru_stime.tv_usec) /
                           1e6;
    thread_result(r, res);

    if (p->mode == MODE_IDLE) {
        res->window_s = (double)(r->idle_t1 - r->t0) / 1e9;
        if (r->held.ok && r->before.ok) {
            res->have_per_conn = TRUE;
            res->per_conn_kib =
                (double)(r->held.rss_kib - r->before.rss_kib) / (double)p->connections;
            res->rss_end_kib = r->held.rss_kib;
            if (r->held.hwm_kib > res->hwm_kib)
                res->hwm_kib = r->held.hwm_kib;
            result_note(res,
                        "%d connections authenticated in %.2f s (%.0f/s); broker RSS %.1f MiB "
                        "before, %.1f MiB after 1 s idle: %.2f KiB per connection; broker CPU "
                        "in that idle second %.3f s",
                        p->connections, res->window_s, p->connections / res->window_s,
                        r->before.rss_kib / 1024.0, r->held.rss_kib / 1024.0, res->per_conn_kib,
                        r->held.cpu_s - r->end.cpu_s);
        }
        return;
    }

    guint64 sent = total_sent(r), recv_window = 0, bytes_window = 0;
    for (guint i = 0; i < r->n_loops; i++) {
        const struct loop *l = &r->loops[i];
        recv_window += l->recv_window;
        bytes_window += l->bytes_window;
        r->hist->n += l->hist->n;
        r->hist->max = MAX(r->hist->max, l->hist->max);
        for (guint b = 0; b < HIST_BUCKETS; b++)
            r->hist->counts[b] += l->hist->counts[b];
    }
    res->window_s = (double)(r->t_end - r->t0) / 1e9;
    res->sent = sent;
    res->delivered_window = recv_window;
    res->delivered_total = total_received(r);
    res->deliveries_per_s = (double)recv_window / res->window_s;
    res->mb_per_s = (double)bytes_window / res->window_s / 1e6;
    if (r->hist->n) {
        res->have_latency = TRUE;
        res->p50_us = hist_quantile(r->hist, 0.50) / 1e3;
        res->p99_us = hist_quantile(r->hist, 0.99) / 1e3;
        res->p999_us = hist_quantile(r->hist, 0.999) / 1e3;
        res->max_us = (double)r->hist->max / 1e3;
    }
    guint readers = 0;
    guint64 gaps = 0;
    for (guint i = 0; i < r->subs->len; i++) {
        struct client *s = r->subs->pdata[i];
        res->reordered += s->reorders;
        if (s->stalled) {
            res->stalled_received += s->received;
            res->stalled_drops += sent - MIN(s->received, sent);
            continue;
        }
        readers++;
        res->expected += sent;
        res->drops += sent - MIN(s->received, sent);
        gaps += s->gaps;
    }
    report_fairness(r);
    if (res->have_counters) {
        const struct broker_counters *k = &res->counted;
        result_note(
            res,
            "broker counters over window + drain: %.0f publishes (bench sent %" G_GUINT64_FORMAT
            "), %.0f deliveries queued, %.0f drops, %.0f slow-consumer disconnects",
            k->publishes, sent, k->deliveries, k->drops, k->slow_disconnects);
        /* Every delivery the broker queued for a reader must arrive; what it
         * dropped is counted.  A difference is a message lost uncounted. */
        double unexplained = (double)res->drops - k->drops;
        if (!p->stalled && readers > 0 && (unexplained > 0.5 || unexplained < -0.5) &&
            k->publishes >= (double)sent)
            result_note(res,
                        "MISMATCH: readers lack %" G_GUINT64_FORMAT
                        " deliveries but the broker counted %.0f drops",
                        res->drops, k->drops);
    }
    if (res->drops)
        result_note(res,
                    "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                    " deliveries missing after the drain (%" G_GUINT64_FORMAT
                    " as gaps in the sequence, the rest at the tail)",
                    res->drops, res->expected, gaps);
    if (res->reordered)
        result_note(res, "%" G_GUINT64_FORMAT " messages arrived out of order or twice",
                    res->reordered);
    if (p->mode == MODE_PACED)
        result_note(res,
                    "offered %d msg/s, sent %.0f msg/s%s (%" G_GUINT64_FORMAT
                    " not sent: more than %u KiB waited in the publisher's socket)",
                    p->rate, (double)sent / res->window_s,
                    r->paced_skipped ? ": the rate was NOT sustained" : "", r->paced_skipped,
                    PACED_MAX_QUEUE / 1024);
    if (p->stalled)
        result_note(res,
                    "stalled subscriber(s): %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                    " messages received (it reads nothing after warm-up; the rest sits in "
                    "kernel buffers, the broker queue, or was dropped); readers: %u",
                    res->stalled_received, sent * (guint64)p->stalled, readers);
}

/* Publisher 0's probe on the idle channel: its receipt proves an idle client is in. */
static void idle_probe_make(struct run *r)
{
    char *ident = key_ident("pub", 0);
    uint8_t payload[BENCH_HDR_LEN] = {0};
    wr32(payload, BENCH_MAGIC);
    wr32(payload + 4, BENCH_PROBE_BIT);
    size_t il = strlen(ident), cl = strlen(BENCH_IDLE_CHANNEL);
    r->idle_probe_len =
        wire_encode_publish(NULL, 0, ident, il, BENCH_IDLE_CHANNEL, cl, NULL, sizeof payload);
    r->idle_probe = g_malloc(r->idle_probe_len);
    wire_encode_publish(r->idle_probe, r->idle_probe_len, ident, il, BENCH_IDLE_CHANNEL, cl,
                        payload, sizeof payload);
    g_free(ident);
}

static gboolean run_setup(struct run *r)
{
    if (r->p->tls) {
        r->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!r->ssl_ctx) {
            fail(r, "cannot create a TLS client context");
            return FALSE;
        }
        SSL_CTX_set_verify(r->ssl_ctx, SSL_VERIFY_NONE, NULL); /* a throw-away certificate */
    }
    loops_plan(r);
    if (r->p->mode == MODE_IDLE)
        idle_probe_make(r);
    for (guint i = 0; i < r->n_loops; i++) {
        struct loop *l = &r->loops[i];
        l->r = r;
        l->index = i;
        l->base = event_base_new();
        l->wake = event_new(l->base, -1, 0, on_wake, l);
        l->hist = g_new0(struct hist, 1);
        if (!l->base)
            return FALSE;
    }
    for (int i = 0; i < r->p->publishers; i++)
        g_ptr_array_add(r->pubs, client_new(r, ROLE_PUB, i));
    for (int i = 0; i < r->p->subscribers; i++) {
        struct client *c = client_new(r, ROLE_SUB, i);
        c->stalled = i >= r->p->subscribers - r->p->stalled;
        g_ptr_array_add(r->subs, c);
    }
    /* Connected before the loops run: no other thread touches them yet. */
    gboolean ok = TRUE;
    for (guint i = 0; ok && i < r->subs->len; i++) {
        struct client *c = r->subs->pdata[i];
        ok = client_connect(r, c, c->stalled);
    }
    for (guint i = 0; ok && i < r->pubs->len; i++)
        ok = client_connect(r, r->pubs->pdata[i], FALSE);
    return ok;
}

static void run_counters(struct run *r, const struct target *t, struct result *res)
{
    struct broker_counters c1;
    if (r->counted0.ok && r->p->graph)
        result_note(res,
                    "broker start-up %.2f s with the graph; its last graph build: %.3f s, %.0f "
                    "users, %.0f (publisher, channel) entries",
                    t->start_s, r->counted0.graph_build_s, r->counted0.graph_users,
                    r->counted0.graph_entries);
    if (r->counted0.ok && target_counters(t, &c1)) {
        res->have_counters = TRUE;
        res->counted.publishes = c1.publishes - r->counted0.publishes;
        res->counted.deliveries = c1.deliveries - r->counted0.deliveries;
        res->counted.drops = c1.drops - r->counted0.drops;
        res->counted.slow_disconnects = c1.slow_disconnects - r->counted0.slow_disconnects;
        res->counted.graph_reloads = c1.graph_reloads - r->counted0.graph_reloads;
        if (res->counted.graph_reloads > 0)
            result_note(res,
                        "the broker rebuilt its graph %.0f times during the run (last build "
                        "%.3f s)",
                        res->counted.graph_reloads, c1.graph_build_s);
    }
}

void run_plan(const struct opts *o, const struct plan *p, struct target *t, struct result *res)
{
    static gsize threads_ready;
    if (g_once_init_enter(&threads_ready))
        g_once_init_leave(&threads_ready, evthread_use_pthreads() == 0 ? 1 : 2);
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    struct run run = {
        .o = o,
        .p = p,
        .t = t,
        .res = res,
        .base = event_base_new_with_config(cfg),
        .pubs = g_ptr_array_new_with_free_func(client_free),
        .subs = g_ptr_array_new_with_free_func(client_free),
        .idle = g_ptr_array_new_with_free_func(client_free),
        .hist = g_new0(struct hist, 1),
    };
    struct run *r = &run;
    event_config_free(cfg);
    g_mutex_init(&r->lock);
    r->ph = PH_WARM;
    r->phase_ns = now_ns();
    gboolean ok = run_setup(r);

    r->tick = event_new(r->base, -1, EV_PERSIST, on_tick, r);
    struct timeval tick = {0, TICK_US};
    event_add(r->tick, &tick);
    if (ok) {
        loops_start(r);
        event_base_dispatch(r->base);
    }
    if (phase(r) == PH_MEASURE && r->p->mode != MODE_IDLE)
        end_measure(r); /* failed mid-window: keep what was measured */
    loops_stop(r);
    perf_stop(t);
    res->load_end = load_average();
    /* After the drain: the broker has handled everything that will arrive. */
    run_counters(r, t, res);
    fill_result(r, res);

    /* The loops are stopped: their clients go first, then the loops. */
    g_ptr_array_unref(r->idle);
    g_ptr_array_unref(r->pubs);
    g_ptr_array_unref(r->subs);
    if (r->pace)
        event_free(r->pace);
    if (r->deadline)
        event_free(r->deadline);
    event_free(r->tick);
    for (guint i = 0; i < r->n_loops; i++) {
        struct loop *l = &r->loops[i];
        if (l->wake)
            event_free(l->wake);
        if (l->base)
            event_base_free(l->base);
        g_free(l->hist);
    }
    if (r->ssl_ctx)
        SSL_CTX_free(r->ssl_ctx);
    event_base_free(r->base);
    g_free(r->hist);
    g_free(r->idle_probe);
    g_free(r->failure);
    g_free(r->first_error);
    g_mutex_clear(&r->lock);
}
