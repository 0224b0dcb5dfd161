/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One client connection: framing, the session state machine, closing.
 *
 * Input is read in batches: a read event takes what the socket holds, up to
 * READ_BATCH, and every complete frame in it is handled before the loop
 * turns (see handle_publish.c for what that means for the fanout).  libevent
 * 2.1's socket bufferevent reads at most 4 KiB per event and keeps its
 * input's end frozen while our callback runs, so on_read tops the input up
 * itself; OpenSSL bufferevents honour max_single_read.
 *
 * Memory per session is bounded two ways.  An idle plain session is parked:
 * its bufferevent (about 1 KiB with its evbuffers) is freed and a bare event
 * in struct conn watches the socket until there is input, or output the
 * socket does not take at once (see "Parking" below).  And bytes held in
 * incomplete frames count against a broker-wide input budget and a share of
 * it per address, with a deadline for each frame to complete (see "The
 * input budget").
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "broker.h"
#include "counters.h"
#include "ipguard.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "sinks.h"

/* How long a closing connection may take to flush its last ERROR. */
#define CLOSE_FLUSH_SECONDS  5
/* How long we keep reading (and discarding) after our half-close. */
#define CLOSE_LINGER_SECONDS 2
/* What one read event takes from a connection at most: large enough that a
 * busy publisher costs one read and one write per subscriber per loop turn,
 * small enough that it cannot keep the loop from the other connections. */
#define READ_BATCH           (256 * 1024)
/* An OpenSSL bufferevent reserves this much input per read and fills it with
 * at most two TLS records (16 KiB each): more would only be allocated and
 * released again at every read. */
#define TLS_READ             (32 * 1024)
/* What libevent 2.1 reads from a socket per read event at most. */
#define LIBEVENT_MAX_READ    4096
/* At most this much a read while sessions wait for their turn behind a
 * backlog (output.c): a turn is a share of about the same size for each,
 * not whatever its peer's socket has grown to hold. */
#define TURN_READ            (64 * 1024)

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static struct conn *attach(struct broker *b, struct bufferevent *bev, const struct sockaddr *sa,
                           gboolean tls, evutil_socket_t own_fd);

static void describe_peer(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        g_snprintf(out, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        g_snprintf(out, len, "[%s]:%d", host, port);
    } else {
        g_strlcpy(out, "unknown", len);
    }
}

static void set_keepalive(evutil_socket_t fd)
{
    int on = 1, idle = 10, intvl = 5, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

static void on_auth_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->state == CONN_AWAIT_AUTH || c->state == CONN_AUTHING)
        conn_fail(c, "auth-timeout", "Timed out waiting for AUTH");
}

/* A plain socket's bufferevent; the socket stays ours (parking frees the
 * bufferevent and keeps the socket). */
static struct bufferevent *plain_bev(struct broker *b, evutil_socket_t fd)
{
    struct bufferevent *bev = bufferevent_socket_new(b->base, fd, 0);
    if (bev)
        bufferevent_set_max_single_read(bev, READ_BATCH);
    return bev;
}

static void bev_setup(struct conn *c)
{
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* Never buffer more than one frame's worth of input. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, c->b->cfg->max_frame);
}

/*
 * The input budget.  An authenticated session may send a frame of up to
 * max_frame in as many pieces, as slowly as it likes, and until its last
 * byte is in the broker holds the rest.  Bytes held in incomplete frames are
 * counted per session, per address and in all, against [broker]
 * input_budget and input_budget_per_ip:
 *
 *   - over a bound, a session holding more than HOLD_FLOOR of an incomplete
 *     frame is held: no longer read (its peer waits, as under backpressure:
 *     nothing is lost) until the totals are back under;
 *   - over a bound by a quarter more and the two frames finishers may add
 *     (below), sessions holding less are held too, except one whose socket
 *     holds the rest of its frame (it completes at once): many sessions
 *     each under HOLD_FLOOR cannot carry the total further, and honest
 *     small frames still flow;
 *   - reads take no more than the budget has room for (at least libevent's
 *     4 KiB), and a held session is not read at all.
 *
 * Sessions sending frames under HOLD_FLOOR keep flowing while the budget is
 * spent by large ones.  What frees a spent budget is frames completing, or
 * sessions closing.  So that held sessions always complete, one of them at a
 * time is the finisher, read past the budget (pick_finisher): among the
 * held whose peer has bytes waiting in the socket, one whose socket holds
 * the rest of its frame, else the one with the fewest bytes left.  A
 * finisher whose socket runs dry before its frame is whole, or that makes
 * no progress for a whole check, goes back to waiting and the next is
 * chosen; what it read stays counted.  One whose frame, completed, would
 * carry the total (or its address's) a max_frame past a bound and a
 * quarter keeps its turn until its frame is whole, or is cut when it sends
 * nothing for a whole check of its turn: finishers add at most two
 * max_frame.
 *
 * A frame must arrive whole within frame_timeout of its first byte.  The
 * clock stops while the broker, not the peer, is what keeps the frame from
 * completing: while a subscriber's backlog holds the session back, or while
 * the budget holds it and its peer's next bytes are already waiting in the
 * socket; never past HELD_FRAME_TIMEOUTS times frame_timeout in all.  A
 * session holding a frame longer is closed: the peer that stalls with part
 * of a frame sent is cut, and what it held is freed.
 */
#define HOLD_FLOOR          (16 * 1024)
#define FRAME_CHECK_SECONDS 1
#define HELD_FRAME_TIMEOUTS 10

struct budget {
    struct broker *b;
    size_t total;
    GHashTable *by_addr;      /* address (owned) -> bytes, while not 0 */
    GHashTable *holders;      /* struct conn * with part of a frame buffered */
    GPtrArray *held;          /* struct conn * not read for the budget */
    struct conn *finisher;    /* a once-held session read past the budget */
    size_t finisher_mark;     /* its partial bytes at the last check */
    gint64 finisher_since_us; /* its turn began */
    GHashTable *turns;        /* address (owned) -> finisher turns that completed no frame,
                        * while any session is held */
    gboolean finisher_sticky; /* it keeps its turn until its frame is whole */
    guint said_held;          /* budget_say: sessions held when last said */
    gint64 said_us;
    guint cut;            /* sessions cut at frame_timeout since */
    struct event *check;  /* frame deadlines, every FRAME_CHECK_SECONDS */
    struct event *resume; /* active: the held may be read again */
};

static void on_frame_check(evutil_socket_t fd, short what, void *arg);
static void on_budget_resume(evutil_socket_t fd, short what, void *arg);

static struct budget *budget_get(struct broker *b)
{
    struct budget *g = b->budget;
    if (g)
        return g;
    g = b->budget = g_new0(struct budget, 1);
    g->b = b;
    g->by_addr = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g->holders = g_hash_table_new(g_direct_hash, g_direct_equal);
    g->held = g_ptr_array_new();
    g->turns = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g->check = event_new(b->base, -1, EV_PERSIST, on_frame_check, g);
    g->resume = event_new(b->base, -1, 0, on_budget_resume, g);
    struct timeval tv = {FRAME_CHECK_SECONDS, 0};
    evtimer_add(g->check, &tv);
    return g;
}

void conn_budget_free(struct broker *b)
{
    struct budget *g = b->budget;
    if (!g)
        return;
    g_hash_table_unref(g->by_addr);
    g_hash_table_unref(g->holders);
    g_ptr_array_unref(g->held);
    g_hash_table_unref(g->turns);
    event_free(g->check);
    event_free(g->resume);
    g_free(g);
    b->budget = NULL;
}

void conn_budget_stats(const struct broker *b, guint64 *bytes, guint *held)
{
    const struct budget *g = b->budget;
    *bytes = g ? g->total : 0;
    *held = g ? g->held->len : 0;
}

void conn_budget_kick(struct broker *b)
{
    struct budget *g = b->budget;
    if (g && g->held->len)
        event_active(g->resume, EV_TIMEOUT, 0);
}

static size_t addr_bytes(const struct budget *g, const char *addr)
{
    return GPOINTER_TO_SIZE(g_hash_table_lookup(g->by_addr, addr));
}

/* Finisher turns of addr that completed no frame (pick_finisher). */
static guint addr_turns(const struct budget *g, const char *addr)
{
    return GPOINTER_TO_UINT(g_hash_table_lookup(g->turns, addr));
}

static void addr_turns_set(struct budget *g, const char *addr, guint turns)
{
    g_hash_table_replace(g->turns, g_strdup(addr), GUINT_TO_POINTER(turns));
}

/* A bound and a quarter. */
static size_t hard_bound(size_t bound) { return bound + bound / 4; }

/* Bytes c needs to complete the frame it holds part of (0: unknown yet). */
static size_t frame_rest(const struct conn *c)
{
    uint8_t hdr[4];
    if (!c->bev || c->partial < sizeof hdr)
        return 0;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (evbuffer_copyout(in, hdr, sizeof hdr) != (ev_ssize_t)sizeof hdr)
        return 0;
    size_t flen = wire_peek_length(hdr);
    return flen > c->partial ? flen - c->partial : 0;
}

/* Bytes waiting in c's socket, not read yet (0 when it cannot say). */
static size_t socket_waiting(const struct conn *c)
{
    int n = 0;
    evutil_socket_t fd = c->bev ? bufferevent_getfd(c->bev) : -1;
    if (fd < 0 || ioctl(fd, FIONREAD, &n) < 0 || n < 0)
        return 0;
    return (size_t)n;
}

/* Whether the bytes waiting in c's socket complete its frame. */
static gboolean completes_now(const struct conn *c)
{
    size_t n = socket_waiting(c);
    return n > 0 && n >= frame_rest(c);
}

/* Bytes c may still read into incomplete frames before a bound is reached. */
static size_t budget_room(const struct conn *c)
{
    const struct budget *g = c->b->budget;
    const struct config *cfg = c->b->cfg;
    if (!g)
        return MIN(cfg->input_budget, cfg->input_budget_per_ip);
    if (c == g->finisher)
        return MAX(frame_rest(c), (size_t)LIBEVENT_MAX_READ);
    size_t a = addr_bytes(g, c->addr);
    size_t all = cfg->input_budget - MIN(g->total, cfg->input_budget);
    size_t mine = cfg->input_budget_per_ip - MIN(a, cfg->input_budget_per_ip);
    return MIN(all, mine);
}

/* Past this, sessions under HOLD_FLOOR are held too: a bound and a quarter,
 * and the two frames finishers may add (see pick_finisher). */
static size_t all_hold_bound(const struct config *cfg, size_t bound)
{
    return hard_bound(bound) + 2 * (size_t)cfg->max_frame;
}

/* Whether c, holding c->partial bytes of an incomplete frame, is to be held. */
static gboolean budget_holds(const struct budget *g, const struct conn *c)
{
    const struct config *cfg = g->b->cfg;
    size_t partial = c->partial;
    if (!partial || c == g->finisher)
        return FALSE;
    size_t a = addr_bytes(g, c->addr);
    /* Many sessions each under the floor: only those whose socket holds
     * the rest of a small frame go on (they complete at once). */
    if (g->total > all_hold_bound(cfg, cfg->input_budget) ||
        a > all_hold_bound(cfg, cfg->input_budget_per_ip))
        return frame_rest(c) > HOLD_FLOOR || !completes_now(c);
    return partial > HOLD_FLOOR && (g->total > cfg->input_budget || a > cfg->input_budget_per_ip);
}

/* c holds partial bytes of an incomplete frame now (0: none); new_frame:
 * frames were completed since, so the bytes are another frame's. */
static void budget_set(struct conn *c, size_t partial, gboolean new_frame)
{
    if (!partial)
        c->partial_since_us = c->partial_born_us = 0;
    else if (!c->partial || new_frame)
        c->partial_since_us = c->partial_born_us = g_get_monotonic_time();
    if (partial == c->partial)
        return;
    struct budget *g = budget_get(c->b);
    gpointer key = NULL;
    size_t a = addr_bytes(g, c->addr) - c->partial + partial;
    if (g_hash_table_lookup_extended(g->by_addr, c->addr, &key, NULL))
        g_hash_table_steal(g->by_addr, key);
    else
        key = g_strdup(c->addr);
    if (a)
        g_hash_table_insert(g->by_addr, key, GSIZE_TO_POINTER(a));
    else
        g_free(key);
    g->total = g->total - c->partial + partial;
    if (partial)
        g_hash_table_add(g->holders, c);
    else
        g_hash_table_remove(g->holders, c);
    /* Fewer bytes held: the held may go on. */
    if (partial < c->partial && g->held->len)
        event_active(g->resume, EV_TIMEOUT, 0);
    c->partial = partial;
}

static void budget_hold(struct conn *c)
{
    struct budget *g = c->b->budget;
    c->input_held = TRUE;
    g_ptr_array_add(g->held, c);
    bufferevent_disable(c->bev, EV_READ);
    /* No session finishing: one of the held gets the turn. */
    if (!g->finisher)
        event_active(g->resume, EV_TIMEOUT, 0);
    /* Per session at debug only: on_frame_check says how many are held. */
    log_debug("%s@%s: %zu bytes of an incomplete frame held over the input budget: "
              "reading paused",
              c->ident, c->peer, c->partial);
}

/* Says when sessions start being held for the budget, every BUDGET_SAY_SECONDS
 * while they are, and when none is any more: one line, not one per session. */
#define BUDGET_SAY_SECONDS 10

static void budget_say(struct budget *g, gint64 now)
{
    guint held = g->held->len + (g->finisher != NULL);
    if (!held && !g->said_held) {
        g->cut = 0;
        return;
    }
    if (held && g->said_held && now - g->said_us < BUDGET_SAY_SECONDS * G_USEC_PER_SEC)
        return;
    if (held)
        log_notice("input budget spent: %u sessions held (not read) with %zu bytes in "
                   "incomplete frames; %u cut at frame_timeout since the last report",
                   held, g->total, g->cut);
    else
        log_notice("input budget: no session held any more (%u cut at frame_timeout)", g->cut);
    g->said_held = held;
    g->said_us = now;
    g->cut = 0;
}

/*
 * Whether c's peer has sent on while the broker was not reading it: its
 * socket holds bytes not read yet.  (A peer can make a byte wait now and
 * then to look busy: HELD_FRAME_TIMEOUTS bounds what that buys it.)
 */
static gboolean peer_waiting(const struct conn *c) { return socket_waiting(c) > 0; }

/* The finisher is done (its frame completed, it closed, or it ran dry). */
static void finisher_done(struct budget *g)
{
    g->finisher = NULL;
    if (g->held->len)
        event_active(g->resume, EV_TIMEOUT, 0);
}

/* After c's input is handled: count what is left of an incomplete frame,
 * and stop reading c when the budget says so. */
static void budget_account(struct conn *c, size_t left, gboolean handled)
{
    budget_set(c, left, handled);
    struct budget *g = c->b->budget;
    if (!g)
        return;
    if (c == g->finisher) {
        if (handled || !left) {
            /* A turn that completed a frame does not count against its
             * address (pick_finisher). */
            guint turns = addr_turns(g, c->addr);
            if (turns)
                addr_turns_set(g, c->addr, turns - 1);
            finisher_done(g);
        } else if (!g->finisher_sticky && !peer_waiting(c)) {
            /* Read to the end of what its peer sent and still incomplete:
             * the next held session's turn (pick_finisher bounds what
             * finishers may leave behind this way). */
            finisher_done(g);
            budget_hold(c);
            return;
        }
    }
    if (!c->input_held && budget_holds(g, c))
        budget_hold(c);
}

/* c is closing: its bytes leave the budget. */
static void budget_forget(struct conn *c)
{
    struct budget *g = c->b->budget;
    if (c->input_held) {
        g_ptr_array_remove_fast(g->held, c);
        c->input_held = FALSE;
    }
    if (g && g->finisher == c)
        finisher_done(g);
    budget_set(c, 0, FALSE);
}

static void budget_release(struct budget *g, guint i)
{
    struct conn *c = g->held->pdata[i];
    g_ptr_array_remove_index_fast(g->held, i);
    c->input_held = FALSE;
    /* A subscriber's backlog may hold it still (output.c resumes it then). */
    if (!c->input_paused && c->state == CONN_READY && !g->b->stopping)
        bufferevent_enable(c->bev, EV_READ);
}

/*
 * No finisher: a held session whose peer has sent on becomes one and is read
 * again: first one whose socket holds the rest of its frame (it completes
 * at once); else, so that many sessions of a few addresses cannot keep the
 * others waiting, one of the address with the fewest turns that completed
 * no frame since sessions began to be held, and of those the one with the
 * most bytes waiting (a sender kept from sending by the broker fills its
 * socket; one that stalled has at most what it sent).  A finisher whose
 * socket runs dry before its frame is whole is held again and leaves its
 * bytes behind, so one whose frame, completed, would carry the total (or
 * its address's) a max_frame past the hard bound must finish: it keeps its
 * turn until its frame is whole, or is cut when it sends nothing for a
 * check of its turn (on_frame_check).
 */
static void pick_finisher(struct budget *g)
{
    if (!g->held->len && !g->finisher)
        g_hash_table_remove_all(g->turns);
    if (g->finisher || !g->held->len || g->b->stopping)
        return;
    guint best = G_MAXUINT, best_turns = G_MAXUINT;
    size_t best_waiting = 0, best_rest = 0;
    gboolean whole = FALSE; /* best's socket holds the rest of its frame */
    for (guint i = 0; i < g->held->len; i++) {
        struct conn *c = g->held->pdata[i];
        size_t waiting = 0;
        if (c->input_paused || c->state != CONN_READY || !(waiting = socket_waiting(c)))
            continue;
        size_t rest = frame_rest(c);
        if (waiting >= rest) {
            best = i;
            best_rest = rest;
            whole = TRUE;
            break;
        }
        guint turns = addr_turns(g, c->addr);
        if (turns < best_turns || (turns == best_turns && waiting > best_waiting)) {
            best = i;
            best_turns = turns;
            best_waiting = waiting;
            best_rest = rest;
        }
    }
    if (best == G_MAXUINT)
        return;
    struct conn *c = g->finisher = g->held->pdata[best];
    const struct config *cfg = g->b->cfg;
    addr_turns_set(g, c->addr, addr_turns(g, c->addr) + 1);
    g->finisher_mark = c->partial;
    g->finisher_since_us = g_get_monotonic_time();
    /* One that could carry a total past its bound and a quarter and a
     * max_frame, were it held again before its frame is whole, must finish. */
    size_t rest = best_rest ? best_rest : cfg->max_frame;
    g->finisher_sticky =
        !whole &&
        (g->total + rest > hard_bound(cfg->input_budget) + cfg->max_frame ||
         addr_bytes(g, c->addr) + rest > hard_bound(cfg->input_budget_per_ip) + cfg->max_frame);
    budget_release(g, best);
}

/* The held that the budget no longer holds are read again; then a finisher. */
static void budget_review(struct budget *g)
{
    for (guint i = g->held->len; i-- > 0;) {
        struct conn *c = g->held->pdata[i];
        if (!budget_holds(g, c))
            budget_release(g, i);
    }
    pick_finisher(g);
}

static void on_budget_resume(evutil_socket_t fd, short what, void *arg) { budget_review(arg); }

/*
 * A held session is not read, so its peer's close goes unseen: one whose
 * socket saw the peer's FIN or RST is read again, to its end, which closes
 * it and frees what it held.  Checked with the frame deadlines.  (A FIN
 * queued behind data the peer could not send yet arrives only as the
 * session is read: such a session waits for its frame_timeout.)
 */
static void budget_release_closed(struct budget *g)
{
    for (guint i = g->held->len; i-- > 0;) {
        struct conn *c = g->held->pdata[i];
        struct tcp_info ti;
        socklen_t len = sizeof ti;
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        /* The peer's FIN (CLOSE_WAIT) or RST (CLOSE) arrived. */
        if (fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
            ti.tcpi_state != TCP_ESTABLISHED)
            budget_release(g, i);
    }
}

static void on_frame_check(evutil_socket_t fd, short what, void *arg)
{
    struct budget *g = arg;
    const guint limit = g->b->cfg->frame_timeout;
    gint64 now = g_get_monotonic_time();
    /* A finisher that made no progress for a whole check gives its turn
     * to a held session whose peer has sent on; what it read stays counted,
     * and with nothing waiting its clock runs while it is held.  One that
     * had to finish (see pick_finisher) and sent nothing in its turn is cut:
     * what it holds is what keeps the others waiting. */
    struct conn *f = g->finisher;
    if (f && (f->partial != g->finisher_mark ||
              now - g->finisher_since_us < FRAME_CHECK_SECONDS * G_USEC_PER_SEC * 3 / 4))
        f = NULL; /* it progresses, or its turn only began */
    if (f && g->finisher_sticky && !f->input_paused) {
        g->cut++;
        conn_fail(f, "frame-timeout",
                  "Frame not completed: nothing sent for %d s of its turn while the input "
                  "budget is spent (%zu bytes held)",
                  FRAME_CHECK_SECONDS, f->partial);
        f = NULL;
    }
    if (f && !g->finisher_sticky) {
        for (guint i = 0; i < g->held->len; i++) {
            struct conn *c = g->held->pdata[i];
            if (!c->input_paused && c->state == CONN_READY && peer_waiting(c)) {
                g->finisher = NULL;
                budget_hold(f);
                break;
            }
        }
    }
    if (g->finisher)
        g->finisher_mark = g->finisher->partial;
    GPtrArray *late = NULL;
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, g->holders);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        struct conn *c = k;
        /* The broker, not the peer, stalls it: the clock stops, for up to
         * HELD_FRAME_TIMEOUTS times frame_timeout in all. */
        if (c->input_paused || (c->input_held && peer_waiting(c)))
            c->partial_since_us = now;
        if (now - c->partial_since_us >= (gint64)limit * G_USEC_PER_SEC ||
            now - c->partial_born_us >= (gint64)limit * HELD_FRAME_TIMEOUTS * G_USEC_PER_SEC)
            g_ptr_array_add(late ? late : (late = g_ptr_array_new()), c);
    }
    for (guint i = 0; late && i < late->len; i++) {
        struct conn *c = late->pdata[i];
        g->cut++;
        if (now - c->partial_since_us >= (gint64)limit * G_USEC_PER_SEC)
            conn_fail(c, "frame-timeout", "Frame not completed within %u seconds (%zu bytes held)",
                      limit, c->partial);
        else
            conn_fail(c, "frame-timeout",
                      "Frame not completed within %u seconds of its first byte, the limit for "
                      "a frame held back for the input budget (%zu bytes held)",
                      limit * HELD_FRAME_TIMEOUTS, c->partial);
    }
    if (late)
        g_ptr_array_unref(late);
    budget_release_closed(g);
    budget_review(g);
    budget_say(g, now);
}

struct conn *conn_new(struct broker *b, evutil_socket_t fd, const struct sockaddr *sa, gboolean tls)
{
    struct bufferevent *bev;
    set_keepalive(fd);
    /* A peer that takes nothing for slow_deadline (its window closed, or it
     * vanished with data unacknowledged) is cut off by the kernel as well:
     * light traffic fits in the socket buffers, so its queue never stays
     * full and the slow-consumer deadline alone would keep it forever. */
    unsigned int user_timeout = b->cfg->slow_deadline * 1000u;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
    if (tls) {
        SSL *ssl = SSL_new(b->tls);
        bev = ssl ? bufferevent_openssl_socket_new(b->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                   BEV_OPT_CLOSE_ON_FREE)
                  : NULL;
        if (bev)
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        else if (ssl)
            SSL_free(ssl);
        if (bev)
            bufferevent_set_max_single_read(bev, TLS_READ);
    } else {
        bev = plain_bev(b, fd);
    }
    if (!bev) {
        char addr[48];
        ipguard_key(sa, addr, sizeof addr);
        log_err("%s: cannot set up the connection", addr);
        ipguard_release(b->ipguard, addr);
        evutil_closesocket(fd);
        return NULL;
    }
    return attach(b, bev, sa, tls, tls ? -1 : fd);
}

struct conn *conn_attach(struct broker *b, struct bufferevent *bev, const struct sockaddr *sa,
                         gboolean tls)
{
    return attach(b, bev, sa, tls, -1);
}

static struct conn *attach(struct broker *b, struct bufferevent *bev, const struct sockaddr *sa,
                           gboolean tls, evutil_socket_t own_fd)
{
    struct conn *c = g_new0(struct conn, 1);
    c->b = b;
    c->fd = own_fd;
    c->own_fd = own_fd >= 0;
    c->busy = TRUE;
    c->id = ++b->next_conn_id;
    describe_peer(sa, c->peer, sizeof c->peer);
    ipguard_key(sa, c->addr, sizeof c->addr);
    c->tls = tls;
    c->bev = bev;
    bev_setup(c);
    c->subscribed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_insert(b->conns, &c->id, c);
    b->stats.connections_made++;

    if (RAND_bytes(c->nonce, sizeof c->nonce) != 1) {
        log_err("%s: cannot draw a nonce: RAND_bytes failed", c->peer);
        conn_close(c, "no randomness");
        return NULL;
    }
    /* INFO in one write: the Python blocking client needs it in one recv(). */
    const char *name = b->cfg->name;
    uint8_t info[WIRE_HEADER_LEN + 1 + WIRE_MAX_NAME + WIRE_NONCE_LEN];
    size_t n = wire_encode_info(info, sizeof info, name, strlen(name), c->nonce, sizeof c->nonce);
    bufferevent_write(c->bev, info, n);
    output_attach(c);

    c->timer = evtimer_new(b->base, on_auth_timeout, c);
    struct timeval tv = {(time_t)b->cfg->auth_timeout, 0};
    evtimer_add(c->timer, &tv);
    log_debug("%s: connected", c->peer);
    sinks_event(b->sinks, &(struct hpf_event){.type = HPF_EVENT_CONNECT, .peer = c->peer});
    return c;
}

size_t conn_queued(const struct conn *c)
{
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

GHashTable *conn_totals_by_ident(struct broker *b)
{
    GHashTable *live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, b->conns);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct conn *c = v;
        if (!c->ident)
            continue;
        struct conn_ident_totals *t = g_hash_table_lookup(live, c->ident);
        if (!t) {
            t = g_new0(struct conn_ident_totals, 1);
            g_hash_table_insert(live, g_strdup(c->ident), t);
        }
        size_t queued = conn_queued(c);
        t->connections++;
        t->send_size += queued;
        t->recv_size += c->bev ? evbuffer_get_length(bufferevent_get_input(c->bev)) : 0;
        t->fill += c->sent_fill;
        t->drain += c->sent_fill - MIN(c->sent_fill, (guint64)queued);
        t->pub_msgs += c->pub_msgs;
        t->pub_bytes += c->pub_bytes;
        t->recv_msgs += c->recv_msgs;
        t->recv_bytes += c->recv_bytes;
    }
    return live;
}

GHashTable *conn_subscription_counts(struct broker *b)
{
    GHashTable *subs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, b->conns);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct conn *c = v;
        if (!c->ident)
            continue;
        GHashTableIter si;
        gpointer chan;
        g_hash_table_iter_init(&si, c->subscribed);
        while (g_hash_table_iter_next(&si, &chan, NULL)) {
            char *key = g_strconcat(c->ident, "\n", (char *)chan, NULL);
            gpointer n = g_hash_table_lookup(subs, key);
            g_hash_table_insert(subs, key, GSIZE_TO_POINTER(GPOINTER_TO_SIZE(n) + 1));
        }
    }
    return subs;
}

static void drop_subscriptions(struct conn *c)
{
    GHashTableIter it;
    gpointer chan;
    g_hash_table_iter_init(&it, c->subscribed);
    while (g_hash_table_iter_next(&it, &chan, NULL))
        router_unsubscribe(c->b->router, chan, c);
    g_hash_table_remove_all(c->subscribed);
}

void conn_close(struct conn *c, const char *reason)
{
    struct broker *b = c->b;
    /* After conn_fail the peer's close (or the flush deadline) only ends
     * what the broker began: the event names the broker and its reason. */
    char *by_broker = c->close_why ? g_strconcat("closed by broker: ", c->close_why, NULL) : NULL;
    if (by_broker)
        reason = by_broker;
    log_debug("%s%s%s: disconnected: %s", c->ident ? c->ident : "", c->ident ? "@" : "", c->peer,
              reason);
    output_forget(c);
    budget_forget(c);
    handle_publish_flush_one(c, TRUE);
    drop_subscriptions(c);
    counters_collect(b, c);
    sinks_event(b->sinks, &(struct hpf_event){.type = HPF_EVENT_DISCONNECT,
                                              .ident = c->ident,
                                              .owner = c->owner,
                                              .peer = c->peer,
                                              .reason = reason,
                                              .count = c->dropped});
    if (c->ident) {
        guint64 queued = conn_queued(c);
        metrics_lost(b->metrics, c->ident);
        metrics_send_totals(b->metrics, c->ident, c->sent_fill,
                            c->sent_fill - MIN(c->sent_fill, queued));
    }
    g_hash_table_remove(b->conns, &c->id);
    ipguard_release(b->ipguard, c->addr);
    b->stats.connections_lost++;
    if (c->timer)
        event_free(c->timer);
    if (c->parked)
        event_del(&c->park_ev);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->own_fd)
        evutil_closesocket(c->fd);
    g_hash_table_unref(c->subscribed);
    if (c->may_publish)
        g_hash_table_unref(c->may_publish);
    if (c->may_subscribe)
        g_hash_table_unref(c->may_subscribe);
    g_free(c->ident);
    g_free(c->owner);
    g_free(c->pub_stat_chan);
    g_free(c->close_why);
    g_free(c);
    g_free(by_broker);
}

static void send_error_frame(struct conn *c, const char *text)
{
    /* Deliveries already counted for c go out before the ERROR. */
    handle_publish_flush_one(c, FALSE);
    size_t len = strlen(text);
    size_t n = wire_encode_error(NULL, 0, text, len);
    uint8_t *buf = g_malloc(n);
    wire_encode_error(buf, n, text, len);
    struct evbuffer *out = conn_output(c);
    if (out)
        evbuffer_add(out, buf, n);
    g_free(buf);
    conn_output_kick(c);
}

void conn_send_error(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    send_error_frame(c, text);
    g_free(text);
}

static void on_close_deadline(evutil_socket_t fd, short what, void *arg)
{
    conn_close(arg, "closed after error");
}

void conn_fail(struct conn *c, const char *category, const char *fmt, ...)
{
    if (c->state == CONN_CLOSING)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    log_info("%s%s%s: closing: %s", c->ident ? c->ident : "", c->ident ? "@" : "", c->peer, text);
    if (!c->close_why)
        c->close_why = g_strdup(text);
    if (category)
        metrics_error(c->b->metrics, c->ident, category);
    send_error_frame(c, text);
    g_free(text);

    c->state = CONN_CLOSING;
    drop_subscriptions(c);
    if (c->bev) {
        bufferevent_disable(c->bev, EV_READ);
        evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
        budget_forget(c);
    } else {
        event_del(&c->park_ev); /* still parked (no memory for more): the deadline closes */
    }
    /* on_write finishes the close once the ERROR is out; bound the wait.
     * An authenticated session has no timer until now. */
    if (c->timer) {
        evtimer_del(c->timer);
        event_assign(c->timer, c->b->base, -1, 0, on_close_deadline, c);
    } else {
        c->timer = evtimer_new(c->b->base, on_close_deadline, c);
    }
    struct timeval tv = {CLOSE_FLUSH_SECONDS, 0};
    evtimer_add(c->timer, &tv);
}

/*
 * After the last ERROR is flushed: half-close, then read and discard until
 * the peer closes too.  Closing with unread input would make the kernel
 * send a RST, which can destroy the ERROR before the client reads it.
 */
static void linger_read(struct bufferevent *bev, void *arg)
{
    evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
}

static void begin_linger(struct conn *c)
{
    if (c->tls) {
        /* A TLS stream cannot be half-closed underneath OpenSSL. */
        conn_close(c, "closed after error");
        return;
    }
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    bufferevent_setcb(c->bev, linger_read, NULL, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    evtimer_del(c->timer);
    struct timeval tv = {CLOSE_LINGER_SECONDS, 0};
    evtimer_add(c->timer, &tv);
}

/* The output is empty: a closing session lingers (a TLS one is freed at
 * once, so nothing may touch c after this), any other may park. */
void conn_output_drained(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        begin_linger(c);
    else
        conn_idle(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (output_written(c))
        conn_output_drained(c);
}

/* The socket failed with err. */
static void close_on_error(struct conn *c, int err)
{
    /* A subscriber over its queue bound whose peer took nothing for
     * slow_deadline: the kernel's TCP_USER_TIMEOUT (conn_new) can end it
     * before the slow-consumer sweep does; either way it is the broker's
     * doing, and the same event says so. */
    if (err == ETIMEDOUT && c->over_since_us && c->state == CONN_READY)
        broker_slow_close(c->b, c,
                          "queued, the kernel timing the connection out (TCP_USER_TIMEOUT) after");
    conn_close(c, g_strerror(err));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_EOF)
        conn_close(c, "closed by peer");
    else if (what & BEV_EVENT_ERROR)
        close_on_error(c, EVUTIL_SOCKET_ERROR());
    else if (what & BEV_EVENT_TIMEOUT)
        conn_close(c, "timeout");
}

/*
 * A plain socket's input, topped up from the socket with one readv to
 * READ_BATCH (or max_frame, the input's high watermark, when lower);
 * authenticated sessions only.  An error or EOF is left in the socket for
 * the bufferevent's next read to report.  libevent sizes its own read by
 * FIONREAD: when the input holds less than its 4 KiB, the socket had no
 * more and the readv is skipped (many publishers of small messages would
 * pay a second syscall for nothing).  (Sizing the reservation by another
 * FIONREAD measured slower under ingest.)  Without libevent's read first
 * (top_up FALSE: conn_read_turn), the readv is the read.  Returns what
 * the readv read.
 */
static size_t read_batch(struct conn *c, gboolean top_up)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    /* Before AUTH a peer gets libevent's 4 KiB a read, nothing more. */
    if (c->tls || fd < 0 || c->state != CONN_READY)
        return 0;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t have = evbuffer_get_length(in);
    size_t bound = MIN((size_t)READ_BATCH, (size_t)c->b->cfg->max_frame);
    /* What may join an incomplete frame is what the input budget has room for. */
    bound = MIN(bound, have + budget_room(c));
    if (output_waiting(c->b))
        bound = MIN(bound, have + TURN_READ);
    if ((top_up && have < LIBEVENT_MAX_READ) || have >= bound)
        return 0;
    size_t taken = 0;
    struct evbuffer_iovec v[2];
    evbuffer_unfreeze(in, 0);
    int n = evbuffer_reserve_space(in, (ev_ssize_t)(bound - have), v, 2);
    if (n > 0) {
        struct iovec iov[2];
        for (int i = 0; i < n; i++)
            iov[i] = (struct iovec){.iov_base = v[i].iov_base, .iov_len = v[i].iov_len};
        ssize_t got = readv(fd, iov, n);
        size_t left = taken = got > 0 ? (size_t)got : 0;
        int used = 0;
        for (; used < n && left > 0; used++) {
            v[used].iov_len = MIN(v[used].iov_len, left);
            left -= v[used].iov_len;
        }
        evbuffer_commit_space(in, v, used);
    }
    evbuffer_freeze(in, 0);
    return taken;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    c->busy = TRUE;
    /* Not while a backlog holds input back: that waits in the socket. */
    if (!output_hold_input(c))
        read_batch(c, TRUE);
    conn_process_input(c);
    output_read_done(c);
}

void conn_read_turn(struct conn *c)
{
    size_t got = read_batch(c, FALSE);
    conn_process_input(c);
    /* A peer with nothing to say (a subscriber) is not paused again at the
     * next backlog for having had its turn. */
    if (got) {
        c->busy = TRUE;
        output_read_done(c);
    }
}

/*
 * Parking.  A socket bufferevent and its two evbuffers cost about 1 KiB,
 * most of an idle session's memory.  A plain session with nothing
 * buffered, queued or held gives its bufferevent back as soon as it goes
 * idle (conn_idle): once INFO is out, while the worker checks its AUTH
 * (park_ev not armed then: conn_resume_reading), and whenever an
 * authenticated one has nothing to do; park_ev alone then watches the
 * socket.  Input (or
 * EOF, or an error) brings a new bufferevent and is read at once; output is
 * written straight to the socket, once a turn (conn_write_parked), and only
 * what the socket does not take brings the bufferevent back (conn_output).
 * Parking at once keeps the bufferevents few at any moment, so their memory
 * is reused instead of left behind in the heap after a burst of sessions.
 * A session that woke up PARK_EAGER_WAKES times without a quiet second
 * between is busy: it keeps its bufferevent until an idle sweep (output.c,
 * every second) finds it quiet, so a busy publisher or subscriber does not
 * pay a bufferevent and four epoll_ctl calls per read or per turn.
 */
#define PARK_EAGER_WAKES 4

static gboolean unpark(struct conn *c)
{
    struct bufferevent *bev = plain_bev(c->b, c->fd);
    if (!bev) {
        log_err("%s: cannot set up the connection's buffers", c->peer);
        return FALSE;
    }
    event_del(&c->park_ev);
    c->parked = FALSE;
    c->bev = bev;
    c->busy = TRUE;
    c->wakes++;
    bev_setup(c);
    output_attach(c);
    if (c->b->stopping || c->state == CONN_AUTHING)
        bufferevent_disable(bev, EV_READ);
    return TRUE;
}

static void on_parked_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (!unpark(c))
        return;
    /* A subscriber's backlog holds input back: it waits in the socket. */
    if (output_hold_input(c))
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_unfreeze(in, 0);
    size_t want = MIN((size_t)READ_BATCH, (size_t)c->b->cfg->max_frame);
    want = MIN(want, MAX(budget_room(c), (size_t)LIBEVENT_MAX_READ));
    /* Before AUTH a peer gets libevent's 4 KiB a read, nothing more. */
    if (c->state != CONN_READY)
        want = LIBEVENT_MAX_READ;
    int n = evbuffer_read(in, fd, (int)want);
    int err = EVUTIL_SOCKET_ERROR();
    evbuffer_freeze(in, 0);
    if (n == 0)
        conn_close(c, "closed by peer");
    else if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR)
        close_on_error(c, err);
    else if (n > 0) {
        conn_process_input(c);
        output_read_done(c);
    }
}

gboolean conn_park(struct conn *c)
{
    struct bufferevent *bev = c->bev;
    if (!c->own_fd || !bev || c->state == CONN_CLOSING || c->b->stopping)
        return FALSE;
    /* Reading is off while the worker checks an AUTH, and on only then
     * otherwise (a session held back for a backlog or the budget is not
     * parked). */
    gboolean reading = c->state != CONN_AUTHING;
    short enabled = bufferevent_get_enabled(bev);
    if (c->out_listed || c->run_block || c->input_paused || c->input_held || c->backlogged ||
        c->over_since_us || (enabled & EV_WRITE) || reading != !!(enabled & EV_READ) ||
        evbuffer_get_length(bufferevent_get_input(bev)) ||
        evbuffer_get_length(bufferevent_get_output(bev)))
        return FALSE;
    c->backlog_exempt = FALSE; /* its queue is empty */
    bufferevent_free(bev);
    c->bev = NULL;
    event_assign(&c->park_ev, c->b->base, c->fd, EV_READ | EV_PERSIST, on_parked_read, c);
    if (reading)
        event_add(&c->park_ev, NULL);
    c->parked = TRUE;
    return TRUE;
}

void conn_resume_reading(struct conn *c)
{
    if (c->parked)
        event_add(&c->park_ev, NULL);
    else
        bufferevent_enable(c->bev, EV_READ);
}

void conn_idle(struct conn *c)
{
    if (c->wakes < PARK_EAGER_WAKES)
        conn_park(c);
}

struct evbuffer *conn_output(struct conn *c)
{
    if (c->parked && !unpark(c))
        return NULL;
    return bufferevent_get_output(c->bev);
}

size_t conn_write_parked(struct conn *c, const void *data, size_t len)
{
    if (!c->parked)
        return 0;
    /* Once a turn: more for the same subscriber in the same turn is
     * gathered into one write at its end, as for the unparked. */
    struct timeval tv;
    event_base_gettimeofday_cached(c->b->base, &tv);
    gint64 turn = (gint64)tv.tv_sec * G_USEC_PER_SEC + tv.tv_usec;
    if (turn == c->direct_turn)
        return 0;
    c->direct_turn = turn;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    return n > 0 ? (size_t)n : 0;
}

void conn_stop_reading(struct conn *c)
{
    if (c->parked)
        event_del(&c->park_ev);
    else
        bufferevent_disable(c->bev, EV_READ);
}

/*
 * Whether op may come now (checked at the header, before anything waits
 * for the rest of the frame): AUTH first and only then, after it what
 * clients send.  FALSE: c is failed.
 */
static gboolean op_acceptable(struct conn *c, uint8_t op)
{
    if (c->state == CONN_AWAIT_AUTH) {
        if (op == WIRE_OP_AUTH)
            return TRUE;
        conn_fail(c, "first-not-auth", "First message was not AUTH");
        return FALSE;
    }
    switch (op) {
    case WIRE_OP_PUBLISH:
    case WIRE_OP_SUBSCRIBE:
    case WIRE_OP_UNSUBSCRIBE:
        return TRUE;
    case WIRE_OP_AUTH:
        conn_fail(c, "bad-frame", "Bad frame: AUTH on an authenticated connection");
        return FALSE;
    default:
        conn_fail(c, "bad-frame", "Bad frame: %s is not sent by clients", wire_op_name(op));
        return FALSE;
    }
}

/* Handles a whole frame whose op op_acceptable() let through. */
static gboolean dispatch(struct conn *c, const struct wire_msg *m, struct frame_block *blk,
                         size_t off)
{
    switch (m->op) {
    case WIRE_OP_AUTH:
        return handle_auth(c, m);
    case WIRE_OP_PUBLISH:
        return handle_publish(c, m, blk, off);
    case WIRE_OP_SUBSCRIBE:
        return handle_subscribe(c, m);
    default:
        return handle_unsubscribe(c, m);
    }
}

/* At most this much input is copied into one block (more when one frame is larger). */
#define BLOCK_MAX ((size_t)READ_BATCH)

/*
 * Copy the complete frames at the head of in (at least the first, of flen
 * bytes) into a new block.
 */
static struct frame_block *block_new(struct evbuffer *in, size_t len, uint32_t flen,
                                     uint32_t max_frame)
{
    size_t want = MAX((size_t)flen, MIN(len, BLOCK_MAX));
    struct frame_block *blk = g_malloc(sizeof *blk + want);
    blk->refs = 1;
    evbuffer_copyout(in, blk->data, want);
    size_t span = flen;
    while (want - span >= 4) {
        uint32_t next = wire_peek_length(blk->data + span);
        if (next < WIRE_HEADER_LEN || next > max_frame || next > want - span)
            break;
        span += next;
    }
    blk->len = span;
    return blk;
}

void frame_block_unref(struct frame_block *blk)
{
    if (blk && g_atomic_int_dec_and_test(&blk->refs))
        g_free(blk);
}

void conn_process_input(struct conn *c)
{
    struct broker *b = c->b;
    if (!c->bev || output_hold_input(c)) /* parked: nothing buffered */
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    /* Before AUTH only an AUTH-sized frame is acceptable. */
    const uint32_t max_frame = c->state == CONN_AWAIT_AUTH
                                   ? MIN(b->cfg->max_frame, WIRE_MAX_PREAUTH_FRAME)
                                   : b->cfg->max_frame;
    char reason[128];
    gboolean handled = FALSE;
    struct frame_block *blk = NULL;
    size_t pos = 0;  /* where the next frame is in blk */
    size_t done = 0; /* handled bytes at the head of in, drained once (each drain runs
                      * the bufferevent's watermark callback) */

    while (c->state == CONN_AWAIT_AUTH || c->state == CONN_READY) {
        size_t len = evbuffer_get_length(in) - done;
        if (len < 4)
            break;
        uint8_t hdr[WIRE_HEADER_LEN];
        size_t hl = len < WIRE_HEADER_LEN ? len : WIRE_HEADER_LEN;
        const uint8_t *h = hdr;
        if (blk && pos + hl <= blk->len) {
            h = blk->data + pos; /* already copied out */
        } else {
            evbuffer_drain(in, done);
            done = 0;
            evbuffer_copyout(in, hdr, hl);
        }

        struct wire_msg m;
        const char *err = NULL;
        uint32_t flen = wire_peek_length(h);
        /* Reject a bad length or opcode before waiting for the body. */
        int rc = wire_decode(h, hl, max_frame, &m, reason, sizeof reason, &err);
        if (rc == WIRE_INVALID) {
            conn_fail(c, "bad-frame", "Bad frame: %s", err);
            break;
        }
        if (hl == WIRE_HEADER_LEN && !op_acceptable(c, h[4]))
            break;
        if (len < flen)
            break;
        if (!blk || pos + flen > blk->len) {
            frame_block_unref(blk);
            evbuffer_drain(in, done);
            done = 0;
            blk = block_new(in, len, flen, max_frame);
            pos = 0;
        }
        const uint8_t *frame = blk->data + pos;
        rc = wire_decode(frame, flen, max_frame, &m, reason, sizeof reason, &err);
        if (rc != WIRE_FRAME) {
            conn_fail(c, "bad-frame", "Bad frame: %s", err ? err : "truncated");
            break;
        }
        gboolean go_on = dispatch(c, &m, blk, pos);
        handled = TRUE;
        if (c->state != CONN_CLOSING) {
            done += flen;
            pos += flen;
        }
        if (!go_on)
            break;
    }
    /* Closing drained everything already (conn_fail). */
    if (c->state != CONN_CLOSING)
        evbuffer_drain(in, done);
    if (c->state == CONN_READY)
        budget_account(c, evbuffer_get_length(in), handled);
    frame_block_unref(blk);
    handle_publish_flush(b);
    conn_idle(c);
}
