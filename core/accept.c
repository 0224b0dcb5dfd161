/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Accepting under pressure.  A listening socket is level-triggered: when
 * accept() fails because the process is out of descriptors, the loop would
 * call it again at once, forever, at full CPU, while the connections wait
 * unanswered.  So a listener that fails rests a moment, and a reserve
 * descriptor, kept open for just this, lets the broker accept the waiting
 * connections one at a time to tell them why it closes them.  The HTTP gate
 * counts an evhttp server's connections from accept on (evhttp only shows
 * a connection with its first complete request, so a crowd of half-sent
 * requests would otherwise go uncounted) and bounds the time to that first
 * request.
 */
#include "accept.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>

#include "log.h"

struct guard {
    struct evconnlistener *l;
    struct event *rest;
    char *who;
    GBytes *refusal; /* NULL: close without a word */
    struct log_ratelimit rl;
};

static GHashTable *guards; /* struct evconnlistener * -> struct guard * */
static int reserve_fd = -1;

static void reserve_take(void)
{
    if (reserve_fd < 0)
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Accept what waits, with the reserve descriptor, and close it with a word. */
static guint refuse_waiting(struct guard *g)
{
    evutil_socket_t lfd = evconnlistener_get_fd(g->l);
    guint n = 0;
    for (; n < ACCEPT_REFUSE_BATCH; n++) {
        if (reserve_fd >= 0) {
            close(reserve_fd);
            reserve_fd = -1;
        }
        int fd = accept(lfd, NULL, NULL); /* closed at once: no flags needed */
        if (fd < 0)
            break;
        if (g->refusal) {
            gsize len;
            const void *p = g_bytes_get_data(g->refusal, &len);
            ssize_t w = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)w; /* best effort: the peer learns why, or just sees the close */
        }
        close(fd);
    }
    reserve_take();
    return n;
}

static void on_rest_over(evutil_socket_t fd, short what, void *arg)
{
    struct guard *g = arg;
    evconnlistener_enable(g->l);
}

static void on_accept_error(struct evconnlistener *l, void *ptr)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct guard *g = guards ? g_hash_table_lookup(guards, l) : NULL;
    if (!g)
        return;
    guint refused = 0;
    if (err == EMFILE || err == ENFILE)
        refused = refuse_waiting(g);
    uint64_t held = 0;
    if (log_ratelimit_ok(&g->rl, &held))
        log_err(
            "%s: accept failed: %s; pausing the listener %d ms (%u refused now, %" G_GUINT64_FORMAT
            " more failures since last said)",
            g->who, g_strerror(err), ACCEPT_BACKOFF_MS, refused, held);
    evconnlistener_disable(l);
    struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};
    evtimer_add(g->rest, &tv);
}

static void guard_free(gpointer p)
{
    struct guard *g = p;
    event_free(g->rest);
    if (g->refusal)
        g_bytes_unref(g->refusal);
    g_free(g->who);
    g_free(g);
}

void accept_guard_attach(struct evconnlistener *l, const char *who, const void *refusal,
                         size_t refusal_len)
{
    if (!guards)
        guards = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, guard_free);
    reserve_take();
    struct guard *g = g_new0(struct guard, 1);
    g->l = l;
    g->rest = evtimer_new(evconnlistener_get_base(l), on_rest_over, g);
    g->who = g_strdup(who);
    g->refusal = refusal ? g_bytes_new(refusal, refusal_len) : NULL;
    g->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10);
    g_hash_table_replace(guards, l, g);
    evconnlistener_set_error_cb(l, on_accept_error);
}

void accept_guard_detach(struct evconnlistener *l)
{
    if (guards)
        g_hash_table_remove(guards, l);
}

/* ---- the HTTP gate ---- */

struct gate_conn {
    struct http_gate *g;
    struct evhttp_connection *evcon;
    struct event *deadline; /* NULL once the first request is in */
};

struct http_gate {
    struct evhttp *http;
    struct evconnlistener *l;
    char *who;
    guint max_conns, first_request_s;
    struct http_gate_ops ops;
    void *arg;
    GPtrArray *fresh; /* bufferevents made this loop turn, connections not yet seen */
    struct event *settle;
    GHashTable *conns;     /* struct evhttp_connection * -> struct gate_conn * */
    GHashTable *lingering; /* struct parting * (set) */
    guint linger_max;
    struct log_ratelimit rl;
};

/*
 * A refused client may still be sending its request.  Closing a socket with
 * input unread, or input still to come, answers it with a reset, and the
 * client sees "connection reset" or a broken pipe instead of the 503.  So a
 * refused socket is kept a moment after the reply: its sending side shut,
 * what arrives read and dropped, until the peer closes, LINGER_BYTES came or
 * LINGER_MS passed.  At most LINGER_MAX at once, and no more than a
 * sixteenth of the descriptors the process may open; past that, closed at
 * once.
 */
#define LINGER_MAX   256
#define LINGER_BYTES (64 * 1024)
#define LINGER_MS    2000

struct parting {
    struct http_gate *g;
    evutil_socket_t fd;
    struct event *ev;
    size_t got;
    gint64 until_us;
};

static void linger_free(gpointer p)
{
    struct parting *lg = p;
    event_free(lg->ev);
    evutil_closesocket(lg->fd);
    g_free(lg);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    struct parting *lg = arg;
    gint64 left_us = lg->until_us - g_get_monotonic_time();
    if (what & EV_READ) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            lg->got += (size_t)n;
        gboolean again = n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
        if (again && lg->got < LINGER_BYTES && left_us > 0) {
            struct timeval tv = {(time_t)(left_us / G_USEC_PER_SEC),
                                 (suseconds_t)(left_us % G_USEC_PER_SEC)};
            event_add(lg->ev, &tv);
            return;
        }
    }
    g_hash_table_remove(lg->g->lingering, lg); /* closes */
}

/* Keep fd's connection (a dup: the caller closes fd) until the peer is done sending. */
static void linger_start(struct http_gate *g, evutil_socket_t fd, struct event_base *base)
{
    if (g_hash_table_size(g->lingering) >= g->linger_max)
        return;
    evutil_socket_t d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return;
    shutdown(d, SHUT_WR);
    struct parting *lg = g_new0(struct parting, 1);
    lg->g = g;
    lg->fd = d;
    lg->until_us = g_get_monotonic_time() + (gint64)LINGER_MS * 1000;
    lg->ev = event_new(base, d, EV_READ, on_linger, lg);
    struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    g_hash_table_add(g->lingering, lg);
    event_add(lg->ev, &tv);
}

/* JSON, as every other error of the console: a client reads one format. */
static const char http_503[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 33\r\n"
                               "Connection: close\r\n\r\n"
                               "{\"error\":\"too many connections\"}\n";

static void gate_conn_free(gpointer p)
{
    struct gate_conn *gc = p;
    if (gc->deadline)
        event_free(gc->deadline);
    g_free(gc);
}

static void gate_closed(struct evhttp_connection *evcon, void *arg)
{
    struct http_gate *g = arg;
    if (!g_hash_table_remove(g->conns, evcon))
        return;
    if (g->ops.closed)
        g->ops.closed(g->arg, evcon);
}

/* No complete request in time (the first after accept, or the next after a
 * reply): nothing of ours holds the connection while it waits for one. */
static void on_request_late(evutil_socket_t fd, short what, void *arg)
{
    struct gate_conn *gc = arg;
    log_debug("%s: closing a connection: no complete request within %u s", gc->g->who,
              gc->g->first_request_s);
    evhttp_connection_free(gc->evcon); /* runs gate_closed, which frees gc */
}

/* The next complete request must come within first_request_s. */
static void gate_arm(struct gate_conn *gc, struct event_base *base)
{
    if (!gc->deadline)
        gc->deadline = evtimer_new(base, on_request_late, gc);
    struct timeval tv = {(time_t)gc->g->first_request_s, 0};
    evtimer_add(gc->deadline, &tv);
}

static void gate_refuse(struct http_gate *g, struct evhttp_connection *evcon,
                        struct bufferevent *bev, const char *peer, const char *why)
{
    if (log_ratelimit_ok(&g->rl, NULL))
        log_warn("%s: refusing a connection from %s: %s", g->who, peer, why);
    if (!g->ops.make_bev) {
        evutil_socket_t fd = bufferevent_getfd(bev);
        ssize_t w = send(fd, http_503, sizeof http_503 - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w == (ssize_t)sizeof http_503 - 1) /* the whole reply is out: let it arrive */
            linger_start(g, fd, bufferevent_get_base(bev));
    }
    evhttp_connection_free(evcon);
}

static void gate_accept(struct http_gate *g, struct evhttp_connection *evcon,
                        struct bufferevent *bev)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    const char *peer = addr ? addr : "?";
    const char *why = g_hash_table_size(g->conns) >= g->max_conns ? "too many connections" : NULL;
    if (!why && g->ops.admit)
        why = g->ops.admit(g->arg, evcon, peer);
    if (why) {
        gate_refuse(g, evcon, bev, peer, why);
        return;
    }
    struct gate_conn *gc = g_new0(struct gate_conn, 1);
    gc->g = g;
    gc->evcon = evcon;
    gate_arm(gc, bufferevent_get_base(bev));
    g_hash_table_insert(g->conns, evcon, gc);
    evhttp_connection_set_closecb(evcon, gate_closed, g);
}

/*
 * Runs in the loop turn that accepted, after evhttp has wrapped each new
 * bufferevent in its connection (whose callbacks take the connection as
 * their argument: the only public way from one to the other) and before
 * any of them has read a byte.
 */
static void gate_settle(evutil_socket_t fd, short what, void *arg)
{
    struct http_gate *g = arg;
    GPtrArray *fresh = g->fresh;
    g->fresh = g_ptr_array_new();
    for (guint i = 0; i < fresh->len; i++) {
        struct bufferevent *bev = fresh->pdata[i];
        bufferevent_data_cb readcb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
        if (readcb && cbarg)
            gate_accept(g, cbarg, bev);
    }
    g_ptr_array_unref(fresh);
}

static struct bufferevent *gate_bev(struct event_base *base, void *arg)
{
    struct http_gate *g = arg;
    struct bufferevent *bev = g->ops.make_bev
                                  ? g->ops.make_bev(base, g->arg)
                                  : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev) {
        g_ptr_array_add(g->fresh, bev);
        if (g->fresh->len == 1)
            event_active(g->settle, EV_TIMEOUT, 0);
    }
    return bev;
}

struct http_gate *http_gate_new(struct evhttp *http, struct evhttp_bound_socket *bs,
                                const char *who, guint max_conns, guint first_request_s,
                                const struct http_gate_ops *ops, void *arg)
{
    struct http_gate *g = g_new0(struct http_gate, 1);
    struct evconnlistener *l = evhttp_bound_socket_get_listener(bs);
    g->http = http;
    g->l = l;
    g->who = g_strdup(who);
    g->max_conns = max_conns;
    g->first_request_s = first_request_s;
    if (ops)
        g->ops = *ops;
    g->arg = arg;
    g->fresh = g_ptr_array_new();
    g->settle = event_new(evconnlistener_get_base(l), -1, 0, gate_settle, g);
    g->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, gate_conn_free);
    g->lingering = g_hash_table_new_full(g_direct_hash, g_direct_equal, linger_free, NULL);
    struct rlimit nofile;
    g->linger_max = getrlimit(RLIMIT_NOFILE, &nofile) == 0
                        ? (guint)MIN((rlim_t)LINGER_MAX, nofile.rlim_cur / 16)
                        : 0;
    g->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10);
    evhttp_set_bevcb(http, gate_bev, g);
    /* Over TLS a plain-text 503 would be noise to the peer: just close. */
    if (g->ops.make_bev)
        accept_guard_attach(l, who, NULL, 0);
    else
        accept_guard_attach(l, who, http_503, sizeof http_503 - 1);
    return g;
}

/* A reply went out on a kept-alive connection: the clock runs again for the
 * next request, so a client cannot hold its place by trickling one. */
static void gate_request_done(struct evhttp_request *req, void *arg)
{
    struct http_gate *g = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct gate_conn *gc = evcon ? g_hash_table_lookup(g->conns, evcon) : NULL;
    if (gc)
        gate_arm(gc, evhttp_connection_get_base(evcon));
}

void http_gate_request(struct http_gate *g, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct gate_conn *gc = evcon ? g_hash_table_lookup(g->conns, evcon) : NULL;
    if (!gc)
        return;
    /* The request is in: no clock while it is being answered, however long
     * the storage takes. */
    if (gc->deadline)
        evtimer_del(gc->deadline);
    evhttp_request_set_on_complete_cb(req, gate_request_done, g);
}

const char *http_repeated_header(struct evhttp_request *req)
{
    static const char *const once[] = {
        "Host",           "Origin",       "Cookie",
        "Content-Length", "Content-Type", "Transfer-Encoding",
        "Sec-Fetch-Site", "Referer",      "Expect",
        "Authorization",  "X-CSRF-Token",
    };
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    for (gsize i = 0; i < G_N_ELEMENTS(once); i++) {
        guint n = 0;
        for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
            if (!g_ascii_strcasecmp(kv->key, once[i]) && ++n > 1)
                return once[i];
    }
    /* libevent reads such a body as chunked; something in front of us may not. */
    if (evhttp_find_header(h, "Content-Length") && evhttp_find_header(h, "Transfer-Encoding"))
        return "Content-Length with Transfer-Encoding";
    return NULL;
}

guint http_gate_count(const struct http_gate *g) { return g_hash_table_size(g->conns); }

void http_gate_free(struct http_gate *g)
{
    if (!g)
        return;
    accept_guard_detach(g->l);
    event_free(g->settle);
    g_ptr_array_unref(g->fresh);
    g_hash_table_unref(g->conns);
    g_hash_table_unref(g->lingering);
    g_free(g->who);
    g_free(g);
}
