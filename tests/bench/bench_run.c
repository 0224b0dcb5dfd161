/*
 * The scenario runner: hpfeeds clients on one libevent loop.
 *
 * Every run goes through the same phases:
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
 * Payloads carry (magic, source, seq, CLOCK_MONOTONIC ns at send): one
 * process sends and receives, so the clocks agree.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bench_common.h"
#include "wire.h"

#define TICK_US 20000
#define WARM_TIMEOUT_NS (60 * G_GUINT64_CONSTANT(1000000000))
#define IDLE_TIMEOUT_NS (300 * G_GUINT64_CONSTANT(1000000000))
#define DRAIN_QUIET_NS (2 * G_GUINT64_CONSTANT(1000000000))
#define DRAIN_MAX_NS (30 * G_GUINT64_CONSTANT(1000000000))
#define IDLE_HOLD_NS G_GUINT64_CONSTANT(1000000000)
/* A streaming publisher refills its output buffer to PUB_HIGH once the
 * socket has taken it down to PUB_LOW: TCP decides the pace. */
#define PUB_LOW (64u * 1024)
#define PUB_HIGH (128u * 1024)
#define SUB_MAX_READ (128 * 1024)
#define PACED_MAX_QUEUE (4u << 20)
#define IDLE_CONCURRENCY 256
#define MAX_FRAME (16u << 20)

/* ---- state ---- */

enum role { ROLE_PUB, ROLE_SUB, ROLE_IDLE };
enum cstate { C_CONNECTING, C_INFO_WAIT, C_READY, C_DEAD };
enum phase { PH_WARM, PH_MEASURE, PH_IDLE_HOLD, PH_DRAIN, PH_DONE };

struct run;

struct client {
    struct run *r;
    struct bufferevent *bev;
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
    guint64 received;
    guint64 *next_seq; /* per publisher */
    guint64 gaps, reorders;
};

struct run {
    const struct opts *o;
    const struct plan *p;
    struct target *t;
    struct result *res;
    struct event_base *base;
    GPtrArray *pubs, *subs, *idle; /* struct client * */
    enum phase ph;
    struct event *tick, *pace, *deadline;
    guint64 phase_ns, t0, t_end, last_progress_ns, progress_mark, progress_ns;
    gboolean sending;
    guint64 sent, recv_window, bytes_window, recv_total;
    guint warmed, confirmed;
    gboolean window_blocked;
    struct hist *hist;
    char *failure;
    guint64 errors_seen, conns_lost;
    char *first_error;
    guint next_pub;
    guint64 paced_skipped; /* messages not sent: the publisher's socket was full */
    /* idle */
    int idle_started, idle_inflight, idle_done;
    guint8 *idle_seen;
    guint64 idle_t1, hold_t0;
    struct proc_sample before, start, end, held;
    struct rusage ru0, ru1;
    struct broker_counters counted0;
};

/*
 * Two priorities: subscribers (and timers) first, publishers only when no
 * subscriber has anything to read.  One thread serves both ends, and a
 * publisher that is served as often as a subscriber would outrun it (200 to
 * 1 in ingest), filling the broker's queues with what the bench itself
 * cannot take in.
 */
enum { PRIO_READ = 0, PRIO_PUBLISH = 1, N_PRIOS = 2 };

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

static const char *phase_name(enum phase ph)
{
    static const char *const names[] = {"warm-up", "measurement", "idle hold", "drain", "done"};
    return names[ph];
}

static void fail(struct run *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(struct run *r, const char *fmt, ...)
{
    if (!r->failure) {
        va_list ap;
        va_start(ap, fmt);
        r->failure = g_strdup_vprintf(fmt, ap);
        va_end(ap);
    }
    r->ph = PH_DONE;
    event_base_loopbreak(r->base);
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
    c->r->sent++;
}

static guint64 min_received(struct run *r)
{
    guint64 lo = G_MAXUINT64;
    for (guint i = 0; i < r->subs->len; i++) {
        struct client *s = r->subs->pdata[i];
        if (!s->stalled && s->received < lo)
            lo = s->received;
    }
    return lo == G_MAXUINT64 ? r->sent : lo;
}

/* Stream mode: top the output buffer up, within the in-flight window. */
static void pump(struct client *c)
{
    struct run *r = c->r;
    if (!r->sending || r->p->mode != MODE_STREAM || c->state != C_READY || !c->bev)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    guint64 budget = G_MAXUINT64;
    if (r->p->window > 0) {
        guint64 inflight = r->sent - min_received(r);
        if (inflight >= (guint64)r->p->window) {
            r->window_blocked = TRUE;
            return;
        }
        budget = (guint64)r->p->window - inflight;
        /* A share each, so that many publishers all take part. */
        budget = MIN(budget, MAX(1u, (guint64)r->p->window / r->pubs->len));
    }
    while (budget-- > 0 && evbuffer_get_length(out) < PUB_HIGH)
        send_measured(c);
}

static void pump_all(struct run *r)
{
    r->window_blocked = FALSE;
    for (guint i = 0; i < r->pubs->len; i++)
        pump(r->pubs->pdata[i]);
}

static void on_pace(G_GNUC_UNUSED evutil_socket_t fd, G_GNUC_UNUSED short what, void *arg)
{
    struct run *r = arg;
    if (!r->sending || r->pubs->len == 0)
        return;
    guint64 due = (guint64)((double)(now_ns() - r->t0) * r->p->rate / 1e9) - r->paced_skipped;
    for (guint tries = 0; r->sent < due && tries < 10000; tries++) {
        struct client *c = r->pubs->pdata[r->next_pub++ % r->pubs->len];
        if (c->state != C_READY || !c->bev)
            continue;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > PACED_MAX_QUEUE) {
            /* The broker does not take them: skip, and report the offered rate as missed. */
            r->paced_skipped += due - r->sent;
            return;
        }
        send_measured(c);
    }
}

/* ---- receiving ---- */

static void got_probe(struct client *c, uint32_t src)
{
    struct run *r = c->r;
    if (!c->warmed) {
        c->warmed = TRUE;
        r->warmed++;
        if (c->stalled)
            bufferevent_disable(c->bev, EV_READ);
    }
    if (src < r->pubs->len) {
        struct client *p = r->pubs->pdata[src];
        if (!p->confirmed) {
            p->confirmed = TRUE;
            r->confirmed++;
        }
    } else if (r->idle_seen && src - r->pubs->len < (guint)r->p->connections) {
        guint i = src - r->pubs->len;
        if (!r->idle_seen[i]) {
            r->idle_seen[i] = 1;
            r->idle_done++;
        }
    }
}

static void got_publish(struct client *c, const struct wire_msg *m, guint64 now)
{
    struct run *r = c->r;
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
    c->received++;
    r->recv_total++;
    if (r->ph == PH_MEASURE) {
        r->recv_window++;
        r->bytes_window += m->frame_len;
    }
    hist_add(r->hist, now > sent ? now - sent : 0);
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
    uint8_t buf[2 * (WIRE_HEADER_LEN + 1 + WIRE_MAX_NAME) + WIRE_HASH_LEN + 64];
    const char *secret = r->o->secret;
    size_t il = strlen(c->ident);
    if (wire_auth_hash(info->data.ptr, info->data.len, secret, strlen(secret), hash) != 0) {
        fail(r, "SHA-1 failed");
        return;
    }
    size_t n = wire_encode_auth(buf, sizeof buf, c->ident, il, hash);
    if (c->role == ROLE_SUB)
        n += wire_encode_sub(buf + n, sizeof buf - n, WIRE_OP_SUBSCRIBE, c->ident, il,
                             BENCH_CHANNEL, strlen(BENCH_CHANNEL));
    /* AUTH and what follows in one write: the broker queues frames behind AUTH. */
    bufferevent_write(c->bev, buf, n);
    if (c->role == ROLE_IDLE)
        send_probe(c);
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
    case WIRE_OP_PUBLISH: got_publish(c, m, now); break;
    case WIRE_OP_ERROR:
        r->errors_seen++;
        if (!r->first_error)
            r->first_error = g_strdup_printf("%s got ERROR '%.*s' during %s", c->ident,
                                             (int)m->data.len, (const char *)m->data.ptr,
                                             phase_name(r->ph));
        break;
    default: break;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    guint64 now = now_ns();
    char reason[128];
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len < WIRE_HEADER_LEN || (c->stalled && c->warmed))
            break;
        uint8_t hdr[WIRE_HEADER_LEN];
        evbuffer_copyout(in, hdr, sizeof hdr);
        uint32_t flen = wire_peek_length(hdr);
        if (flen < WIRE_HEADER_LEN || flen > MAX_FRAME) {
            fail(c->r, "%s: bad frame length %u from the broker", c->ident, flen);
            return;
        }
        if (len < flen)
            break;
        struct wire_msg m;
        const char *err = NULL;
        const uint8_t *f = evbuffer_pullup(in, flen);
        if (wire_decode(f, flen, MAX_FRAME, &m, reason, sizeof reason, &err) != WIRE_FRAME) {
            fail(c->r, "%s: undecodable frame from the broker: %s", c->ident, err ? err : "?");
            return;
        }
        got_frame(c, &m, now);
        evbuffer_drain(in, flen);
        if (c->r->ph == PH_DONE && c->r->failure)
            return;
    }
    if (c->r->window_blocked)
        pump_all(c->r);
}

static void on_write(G_GNUC_UNUSED struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    if (c->role == ROLE_PUB)
        pump(c);
}

static void client_drop(struct client *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    c->state = C_DEAD;
}

static void on_event(G_GNUC_UNUSED struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    struct run *r = c->r;
    if (what & BEV_EVENT_CONNECTED) {
        c->state = r->p->relay ? C_READY : C_INFO_WAIT;
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    gboolean counted = r->ph != PH_DONE;
    if (counted) {
        r->conns_lost++;
        if (!r->first_error)
            r->first_error = g_strdup_printf(
                "%s: connection %s during %s", c->ident,
                (what & BEV_EVENT_EOF) ? "closed by the broker"
                                       : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()),
                phase_name(r->ph));
    }
    gboolean was_connecting = c->state == C_CONNECTING || c->state == C_INFO_WAIT;
    client_drop(c);
    if (c->role == ROLE_IDLE && was_connecting) {
        r->idle_inflight--;
        idle_launch(r);
    } else if (r->ph == PH_WARM) {
        fail(r, "%s", r->first_error);
    }
}

static struct client *client_new(struct run *r, enum role role, int index)
{
    struct client *c = g_new0(struct client, 1);
    c->r = r;
    c->role = role;
    c->index = index;
    c->ident = key_ident(role == ROLE_PUB ? "pub" : role == ROLE_SUB ? "sub" : "idle", index);
    if (role != ROLE_SUB) {
        size_t size = MAX((size_t)r->p->size, BENCH_HDR_LEN);
        size_t il = strlen(c->ident), cl = strlen(BENCH_CHANNEL);
        c->frame_len = wire_encode_publish(NULL, 0, c->ident, il, BENCH_CHANNEL, cl, NULL, size);
        c->frame = g_malloc(c->frame_len);
        uint8_t *filler = g_malloc(size);
        for (size_t i = 0; i < size; i++)
            filler[i] = (uint8_t)('a' + i % 26);
        wire_encode_publish(c->frame, c->frame_len, c->ident, il, BENCH_CHANNEL, cl, filler,
                            size);
        g_free(filler);
        c->payload_off = c->frame_len - size;
        if (role == ROLE_IDLE) /* the source number idle probes carry */
            c->index = (int)r->pubs->len + index;
    } else {
        c->next_seq = g_new0(guint64, MAX(r->p->publishers, 1));
    }
    return c;
}

static gboolean client_connect(struct run *r, struct client *c, gboolean small_rcvbuf)
{
    const struct sockaddr_storage *addr =
        (r->p->relay && c->role == ROLE_SUB) ? &r->t->sub_addr : &r->t->addr;
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
    c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
    /* A paced publisher is not throttled by priority: its timer sets the rate, and
     * libevent runs only the most urgent priority each turn, so a low-priority
     * publisher would wait behind every busy reader (latency the broker never saw). */
    bufferevent_priority_set(c->bev, c->role == ROLE_PUB && r->p->mode == MODE_STREAM
                                         ? PRIO_PUBLISH
                                         : PRIO_READ);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    if (c->role == ROLE_SUB)
        bufferevent_set_max_single_read(c->bev, SUB_MAX_READ);
    if (c->role == ROLE_PUB) {
        bufferevent_set_max_single_write(c->bev, PUB_HIGH);
        bufferevent_setwatermark(c->bev, EV_WRITE, PUB_LOW, 0);
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
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
    g_free(c->next_seq);
    g_free(c);
}

static void idle_launch(struct run *r)
{
    while (r->ph == PH_MEASURE && r->idle_started < r->p->connections &&
           r->idle_inflight < IDLE_CONCURRENCY) {
        struct client *c = client_new(r, ROLE_IDLE, r->idle_started++);
        g_ptr_array_add(r->idle, c);
        r->idle_inflight++;
        if (!client_connect(r, c, FALSE))
            return;
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
    memset(r->hist, 0, sizeof *r->hist);
    getrusage(RUSAGE_SELF, &r->ru0);
    r->t0 = r->phase_ns = now_ns();
    r->ph = PH_MEASURE;
    switch (r->p->mode) {
    case MODE_STREAM:
        r->sending = TRUE;
        pump_all(r);
        break;
    case MODE_PACED: {
        r->sending = TRUE;
        r->pace = event_new(r->base, -1, EV_PERSIST, on_pace, r);
        event_priority_set(r->pace, PRIO_READ);
        long us = MAX(1000000L / MAX(r->p->rate, 1), 50L);
        struct timeval tv = {us / 1000000, us % 1000000};
        event_add(r->pace, &tv);
        break;
    }
    case MODE_IDLE:
        r->idle_seen = g_new0(guint8, r->p->connections);
        idle_launch(r);
        return; /* ends when all are in, not after --duration */
    }
    double d = r->o->duration;
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6)};
    r->deadline = evtimer_new(r->base, on_deadline, r);
    event_priority_set(r->deadline, PRIO_READ);
    evtimer_add(r->deadline, &tv);
}

static void end_measure(struct run *r)
{
    r->sending = FALSE;
    r->t_end = now_ns();
    if (r->pace)
        event_del(r->pace);
    getrusage(RUSAGE_SELF, &r->ru1);
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
    r->ph = PH_DRAIN;
    r->phase_ns = r->last_progress_ns = r->t_end;
    r->progress_mark = r->recv_total;
}

static void on_deadline(G_GNUC_UNUSED evutil_socket_t fd, G_GNUC_UNUSED short what, void *arg)
{
    struct run *r = arg;
    if (r->ph == PH_MEASURE)
        end_measure(r);
}

static gboolean all_caught_up(struct run *r)
{
    for (guint i = 0; i < r->subs->len; i++) {
        struct client *s = r->subs->pdata[i];
        if (!s->stalled && s->state != C_DEAD && s->received < r->sent)
            return FALSE;
    }
    return TRUE;
}

static void warm_step(struct run *r, guint64 now)
{
    guint want_subs = r->subs->len, want_pubs = r->pubs->len;
    if (r->warmed == want_subs && r->confirmed == want_pubs) {
        begin_measure(r);
        return;
    }
    if (now - r->phase_ns > WARM_TIMEOUT_NS) {
        fail(r, "warm-up: after %d s, %u of %u subscribers got a probe and %u of %u "
                "publishers were seen%s%s",
             (int)(WARM_TIMEOUT_NS / 1000000000u), r->warmed, want_subs, r->confirmed, want_pubs,
             r->first_error ? "; " : "", r->first_error ? r->first_error : "");
        return;
    }
    for (guint i = 0; i < r->pubs->len; i++) {
        struct client *p = r->pubs->pdata[i];
        if (p->state == C_READY && (!p->confirmed || (i == 0 && r->warmed < want_subs)))
            send_probe(p);
    }
}

static void on_tick(G_GNUC_UNUSED evutil_socket_t fd, G_GNUC_UNUSED short what, void *arg)
{
    struct run *r = arg;
    guint64 now = now_ns();
    switch (r->ph) {
    case PH_WARM: warm_step(r, now); break;
    case PH_MEASURE:
        if (r->o->verbose && now - r->progress_ns >= 500000000u) {
            r->progress_ns = now;
            fprintf(stderr, "hpfriends-bench: %s: %.1f s: sent %" G_GUINT64_FORMAT
                            ", received %" G_GUINT64_FORMAT "\n",
                    r->p->name, (double)(now - r->t0) / 1e9, r->sent, r->recv_total);
        }
        if (r->p->mode != MODE_IDLE)
            break;
        if (r->idle_done >= r->p->connections) {
            r->idle_t1 = now;
            getrusage(RUSAGE_SELF, &r->ru1);
            proc_sample(r->t->pid, &r->end);
            perf_stop(r->t);
            r->ph = PH_IDLE_HOLD;
            r->hold_t0 = now;
        } else if (now - r->phase_ns > IDLE_TIMEOUT_NS ||
                   (r->idle_started == r->p->connections && r->idle_inflight == 0 &&
                    r->conns_lost > 0 && now - r->phase_ns > 10 * DRAIN_QUIET_NS)) {
            fail(r, "idle: %d of %d connections authenticated after %.0f s (%" G_GUINT64_FORMAT
                    " lost%s%s)",
                 r->idle_done, r->p->connections, (double)(now - r->phase_ns) / 1e9,
                 r->conns_lost, r->first_error ? "; first: " : "",
                 r->first_error ? r->first_error : "");
        }
        break;
    case PH_IDLE_HOLD:
        if (now - r->hold_t0 >= IDLE_HOLD_NS) {
            proc_sample(r->t->pid, &r->held);
            r->ph = PH_DONE;
            event_base_loopbreak(r->base);
        }
        break;
    case PH_DRAIN:
        if (r->recv_total != r->progress_mark) {
            r->progress_mark = r->recv_total;
            r->last_progress_ns = now;
        }
        if (all_caught_up(r) || now - r->last_progress_ns > DRAIN_QUIET_NS ||
            now - r->phase_ns > DRAIN_MAX_NS) {
            r->ph = PH_DONE;
            event_base_loopbreak(r->base);
        }
        break;
    case PH_DONE: break;
    }
}

/* ---- results ---- */

static void fill_result(struct run *r, struct result *res)
{
    const struct plan *p = r->p;
    res->errors_seen = r->errors_seen;
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
        res->rss_start_kib = r->start.rss_kib;
        res->hwm_kib = r->end.hwm_kib;
        res->rss_end_kib = r->end.rss_kib;
    }
    res->bench_cpu_s = (double)(r->ru1.ru_utime.tv_sec - r->ru0.ru_utime.tv_sec +
                                r->ru1.ru_stime.tv_sec - r->ru0.ru_stime.tv_sec) +
                       (double)(r->ru1.ru_utime.tv_usec - r->ru0.ru_utime.tv_usec +
                                r->ru1.ru_stime.tv_usec - r->ru0.ru_stime.tv_usec) /
                           1e6;

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

    res->window_s = (double)(r->t_end - r->t0) / 1e9;
    res->sent = r->sent;
    res->delivered_window = r->recv_window;
    res->delivered_total = r->recv_total;
    res->deliveries_per_s = (double)r->recv_window / res->window_s;
    res->mb_per_s = (double)r->bytes_window / res->window_s / 1e6;
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
            res->stalled_drops += r->sent - MIN(s->received, r->sent);
            continue;
        }
        readers++;
        res->expected += r->sent;
        res->drops += r->sent - MIN(s->received, r->sent);
        gaps += s->gaps;
    }
    if (res->have_counters) {
        const struct broker_counters *k = &res->counted;
        result_note(res,
                    "broker counters over window + drain: %.0f publishes (bench sent %" G_GUINT64_FORMAT
                    "), %.0f deliveries queued, %.0f drops, %.0f slow-consumer disconnects",
                    k->publishes, r->sent, k->deliveries, k->drops, k->slow_disconnects);
        /* Every delivery the broker queued for a reader must arrive; what it
         * dropped is counted.  A difference is a message lost uncounted. */
        double unexplained = (double)res->drops - k->drops;
        if (!p->stalled && readers > 0 && (unexplained > 0.5 || unexplained < -0.5) &&
            k->publishes >= (double)r->sent)
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
                    p->rate, (double)r->sent / res->window_s,
                    r->paced_skipped ? ": the rate was NOT sustained" : "", r->paced_skipped,
                    PACED_MAX_QUEUE / 1024);
    if (p->stalled)
        result_note(res,
                    "stalled subscriber(s): %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                    " messages received (it reads nothing after warm-up; the rest sits in "
                    "kernel buffers, the broker queue, or was dropped); readers: %u",
                    res->stalled_received, r->sent * (guint64)p->stalled, readers);
}

void run_plan(const struct opts *o, const struct plan *p, struct target *t, struct result *res)
{
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
    event_base_priority_init(r->base, N_PRIOS);

    for (int i = 0; i < p->publishers; i++)
        g_ptr_array_add(r->pubs, client_new(r, ROLE_PUB, i));
    for (int i = 0; i < p->subscribers; i++) {
        struct client *c = client_new(r, ROLE_SUB, i);
        c->stalled = i >= p->subscribers - p->stalled;
        g_ptr_array_add(r->subs, c);
    }
    r->ph = PH_WARM;
    r->phase_ns = now_ns();
    gboolean ok = TRUE;
    for (guint i = 0; ok && i < r->subs->len; i++) {
        struct client *c = r->subs->pdata[i];
        ok = client_connect(r, c, c->stalled);
    }
    for (guint i = 0; ok && i < r->pubs->len; i++)
        ok = client_connect(r, r->pubs->pdata[i], FALSE);

    r->tick = event_new(r->base, -1, EV_PERSIST, on_tick, r);
    event_priority_set(r->tick, PRIO_READ);
    struct timeval tick = {0, TICK_US};
    event_add(r->tick, &tick);
    if (ok)
        event_base_dispatch(r->base);
    if (r->ph == PH_MEASURE && r->p->mode != MODE_IDLE)
        end_measure(r); /* failed mid-window: keep what was measured */
    perf_stop(t);
    res->load_end = load_average();
    /* After the drain: the broker has handled everything that will arrive. */
    struct broker_counters c1;
    if (r->counted0.ok && p->graph)
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
            result_note(res, "the broker rebuilt its graph %.0f times during the run (last build "
                             "%.3f s)",
                        res->counted.graph_reloads, c1.graph_build_s);
    }
    fill_result(r, res);

    g_ptr_array_unref(r->idle);
    g_ptr_array_unref(r->pubs);
    g_ptr_array_unref(r->subs);
    if (r->pace)
        event_free(r->pace);
    if (r->deadline)
        event_free(r->deadline);
    event_free(r->tick);
    event_base_free(r->base);
    g_free(r->hist);
    g_free(r->idle_seen);
    g_free(r->failure);
    g_free(r->first_error);
}
