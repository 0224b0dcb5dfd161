/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The connections' output: deliveries counted during a loop turn and queued
 * at its end (publish runs), plain sockets written once per turn straight
 * from their queues, and the backpressure that stops reading publishers
 * while a subscriber that keeps up has a backlog.  The lists and timers this
 * takes are this file's own (struct output); conn.c and handle_publish.c
 * reach them through the functions declared in broker.h.
 */
#include <event2/buffer.h>

#include "broker.h"
#include "log.h"

/* What the bufferevent writes per writable event when a backlog waits. */
#define BACKLOG_MAX_WRITE (256 * 1024)
/* A backlog holds publishers back until its connection has taken nothing
 * for BACKLOG_STALL_US, or for [broker] backpressure_hold in all; then it
 * counts as a slow consumer (drops at max_queued_bytes instead).  Checked
 * every BACKLOG_CHECK_US. */
#define BACKLOG_STALL_US  (300 * 1000)
#define BACKLOG_CHECK_US  (50 * 1000)

struct output {
    struct broker *b;
    GPtrArray *runs;             /* struct conn * with a publish run to queue */
    GPtrArray *pending;          /* struct conn * with output to write this turn */
    struct event *flush;         /* active when pending is not empty */
    GPtrArray *backlogged;       /* struct conn * over the mark, not exempt */
    GQueue paused;               /* struct conn * whose reading is stopped, resume order */
    GQueue readers;              /* struct conn * read since a backlog last formed */
    struct event *backlog_timer; /* checks the backlogs' progress */
    struct event *resume;        /* active or due: restart the paused, a batch */
    struct event *settle;        /* active: a backlog formed, pause the readers */
    struct event *idle_sweep;    /* parks the sessions quiet since the last one */
};

static void backlog_update(struct conn *c);

/* ---- publish runs ---- */

void output_run_listed(struct conn *c)
{
    if (c->run_listed)
        return;
    c->run_listed = TRUE;
    g_ptr_array_add(c->b->out->runs, c);
}

void output_runs_flush(struct broker *b)
{
    GPtrArray *runs = b->out->runs;
    for (guint i = 0; i < runs->len; i++) {
        struct conn *s = runs->pdata[i];
        s->run_listed = FALSE;
        handle_publish_flush_one(s, FALSE);
    }
    g_ptr_array_set_size(runs, 0);
}

/* ---- writing ---- */

/*
 * Output of plain sockets.  Whatever is queued for a connection during a
 * loop turn (a frame fanned out from several publishers' reads, an ERROR) is
 * written once, straight from the queue, when the turn's other callbacks are
 * done: one writev per subscriber per turn, in the turn the input came in,
 * and no epoll_ctl as long as the socket takes it all.  Only a backlog the
 * socket refused waits for writability, through the bufferevent (EV_WRITE
 * enabled until on_write sees the queue empty).  The write is not capped at
 * the bufferevent's 16 KiB a turn, so a subscriber fed by many publishers is
 * not served one small write per turn while they are read in full.
 */
void conn_output_kick(struct conn *c)
{
    struct output *o = c->b->out;
    c->busy = TRUE;
    if (!c->bev)
        return;
    /* Judged as the queue grows, not only once the turn's write is done: a
     * turn reads every ready publisher, and fifty of them at 256 KiB each
     * would fill a queue past max_queued_bytes before the write. */
    backlog_update(c);
    if (c->out_listed)
        return;
    /* TLS, pairs (EV_WRITE always on) and a backlog being written: the
     * bufferevent writes; the queue only grew. */
    if (!c->direct_out || (bufferevent_get_enabled(c->bev) & EV_WRITE))
        return;
    if (conn_queued(c) == 0)
        return;
    c->out_listed = TRUE;
    g_ptr_array_add(o->pending, c);
    /* Activated now, it runs after the callbacks already due this turn. */
    if (o->pending->len == 1)
        event_active(o->flush, EV_TIMEOUT, 0);
}

/* The flush event: write every kicked connection's output. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct output *o = arg;
    /* Each connection is handled once; none is freed in here (only plain
     * sessions are listed, and a closing plain one lingers, never freed). */
    for (guint i = 0; i < o->pending->len; i++) {
        struct conn *c = o->pending->pdata[i];
        c->out_listed = FALSE;
        struct evbuffer *out = bufferevent_get_output(c->bev);
        /* A socket bufferevent keeps its output's head frozen except while it
         * writes itself; we write for it here, the same way. */
        evbuffer_unfreeze(out, 1);
        evbuffer_write(out, bufferevent_getfd(c->bev));
        evbuffer_freeze(out, 1);
        backlog_update(c);
        if (evbuffer_get_length(out) == 0) {
            conn_output_drained(c);
        } else {
            /* The rest when the socket takes it; after an error, it meets the
             * error again and reports it to on_event. */
            bufferevent_enable(c->bev, EV_WRITE);
        }
    }
    g_ptr_array_set_size(o->pending, 0);
}

/*
 * Backpressure.  A subscriber that keeps up can still fall behind for a
 * moment (a burst, a busy reader); dropping its messages then would lose
 * data for a well-behaved peer, and queueing without limit is the memory
 * growth brokers are known for.  So while any subscriber's queue is over
 * the mark, publishers are not read (their data waits in their sockets:
 * TCP slows them down).  A subscriber that takes nothing for
 * BACKLOG_STALL_US, or is still over the mark after [broker]
 * backpressure_hold, does
 * not keep up: it stops holding the others back (exempt) and is bounded by
 * max_queued_bytes and slow_deadline as before, until it has caught up to
 * half the mark.
 */
static size_t backlog_mark(const struct broker *b)
{
    size_t max = b->cfg->max_queued_bytes;
    return MIN(CLAMP(max / 16, 64 * 1024, 1024 * 1024), max / 2);
}

static void backlog_arm(struct output *o)
{
    struct timeval tv = {0, BACKLOG_CHECK_US};
    if (o->backlogged->len)
        evtimer_add(o->backlog_timer, &tv);
}

static void backlog_remove(struct conn *c)
{
    struct output *o = c->b->out;
    g_ptr_array_remove_fast(o->backlogged, c);
    c->backlogged = FALSE;
    if (o->backlogged->len == 0) {
        evtimer_del(o->backlog_timer);
        if (o->paused.length)
            event_active(o->resume, EV_TIMEOUT, 0);
    }
}

static void backlog_update(struct conn *c)
{
    struct broker *b = c->b;
    struct output *o = b->out;
    size_t queued = conn_queued(c), mark = backlog_mark(b);
    if (!c->backlogged && !c->backlog_exempt) {
        if (queued > mark && c->state == CONN_READY && b->cfg->backpressure_hold) {
            c->backlogged = TRUE;
            c->backlog_since_us = c->backlog_moved_us = g_get_monotonic_time();
            c->backlog_left = queued;
            g_ptr_array_add(o->backlogged, c);
            if (o->backlogged->len == 1) {
                backlog_arm(o);
                if (o->readers.length)
                    event_active(o->settle, EV_TIMEOUT, 0);
            }
        }
    } else if (queued <= mark / 2) {
        c->backlog_exempt = FALSE;
        if (c->backlogged)
            backlog_remove(c);
    }
}

static void on_backlog_check(evutil_socket_t fd, short what, void *arg)
{
    struct output *o = arg;
    gint64 now = g_get_monotonic_time();
    for (guint i = o->backlogged->len; i-- > 0;) {
        struct conn *c = o->backlogged->pdata[i];
        /* Publishers wait, so the queue only shrinks while the peer reads. */
        size_t queued = conn_queued(c);
        if (queued < c->backlog_left) {
            c->backlog_left = queued;
            c->backlog_moved_us = now;
        }
        gint64 hold_us = (gint64)o->b->cfg->backpressure_hold * 1000;
        if (now - c->backlog_moved_us < MIN(BACKLOG_STALL_US, hold_us) &&
            now - c->backlog_since_us < hold_us)
            continue;
        log_notice("%s@%s: %zu bytes queued for %d ms: a slow consumer, no longer holding "
                   "publishers back",
                   c->ident, c->peer, queued, (int)((now - c->backlog_since_us) / 1000));
        c->backlog_exempt = TRUE;
        backlog_remove(c);
    }
    backlog_arm(o);
}

/* A paused session's input keeps its incomplete frame, often a few hundred
 * bytes at the end of a READ_BATCH chain: moved to a chain of its size,
 * 200 paused publishers hold 200 small chains, not 50 MiB. */
#define PAUSED_TAIL_MAX (16 * 1024)

static void compact_tail(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in);
    /* A TLS session's input is filled by its filter: left as it is. */
    if (c->tls || n == 0 || n > PAUSED_TAIL_MAX)
        return;
    uint8_t tail[PAUSED_TAIL_MAX];
    evbuffer_unfreeze(in, 0);
    evbuffer_remove(in, tail, n);
    evbuffer_add(in, tail, n);
    evbuffer_freeze(in, 0);
}

/* Stop reading c until its turn: at the back of the queue. */
static void pause_input(struct output *o, struct conn *c)
{
    if (c->input_paused)
        return;
    /* Its link leaves the readers (if there) for the paused queue. */
    if (c->read_listed) {
        g_queue_unlink(&o->readers, &c->turn_link);
        c->read_listed = FALSE;
    }
    c->input_paused = TRUE;
    c->turn_link.data = c;
    g_queue_push_tail_link(&o->paused, &c->turn_link);
    bufferevent_disable(c->bev, EV_READ);
    compact_tail(c);
}

gboolean output_hold_input(struct conn *c)
{
    struct output *o = c->b->out;
    if (!o->backlogged->len || c->state != CONN_READY)
        return FALSE;
    /* A subscriber is behind: this input waits (on_resume). */
    pause_input(o, c);
    return TRUE;
}

gboolean output_waiting(const struct broker *b) { return b->out->paused.length > 0; }

void output_read_done(struct conn *c)
{
    struct output *o = c->b->out;
    if (c->read_listed || c->input_paused || !c->bev || c->state != CONN_READY)
        return;
    c->read_listed = TRUE;
    c->turn_link.data = c;
    g_queue_push_tail_link(&o->readers, &c->turn_link);
}

/*
 * A backlog formed: every session that read since the last one formed
 * pauses too, at the back of the queue in the order they read, even when
 * the turn's write clears the backlog at once.  The backlog is a round:
 * one left enabled keeps its place at the head of epoll's ready list and
 * is read first in every turn, before the mark is crossed, while the
 * others wait for their batch.  Runs after the turn's reads, never inside
 * one (pausing compacts the input).
 */
static void on_settle(evutil_socket_t fd, short what, void *arg)
{
    struct output *o = arg;
    GList *l;
    while ((l = g_queue_pop_head_link(&o->readers))) {
        struct conn *c = l->data;
        c->read_listed = FALSE;
        if (c->bev && c->state == CONN_READY)
            pause_input(o, c);
    }
    if (o->paused.length && !o->backlogged->len)
        event_active(o->resume, EV_TIMEOUT, 0);
}

/*
 * Reading resumes in the queue's order, until a backlog forms again or
 * RESUME_BATCH sessions have had their turn in this loop turn: each is
 * read here and now (conn_read_turn), not when epoll next lists it, so
 * the first in the queue is the first read.  When 200 publishers flood
 * one subscriber, the first one or two of them refill its backlog; the
 * rest keep their places (no epoll_ctl for them: resuming all and pausing
 * them again at once was about one system call per message delivered).
 * The next batch runs after the loop has polled.
 */
#define RESUME_BATCH 16

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct output *o = arg;
    guint n = 0;
    while (n < RESUME_BATCH && !o->backlogged->len && !o->b->stopping) {
        GList *l = g_queue_pop_head_link(&o->paused);
        if (!l)
            break;
        struct conn *c = l->data;
        c->input_paused = FALSE;
        /* One closed meanwhile has left the queue (output_forget); one
         * closing is let go here. */
        if (c->state != CONN_READY || !c->bev)
            continue;
        n++;
        /* Held for the input budget: conn.c resumes it. */
        if (c->input_held) {
            conn_process_input(c);
            continue;
        }
        bufferevent_enable(c->bev, EV_READ);
        conn_read_turn(c);
    }
    /* Held sessions may take their turn to finish now. */
    if (n)
        conn_budget_kick(o->b);
    if (o->paused.length && !o->backlogged->len && !o->b->stopping) {
        struct timeval now = {0, 0};
        evtimer_add(o->resume, &now);
    }
}

/* ---- idle sessions ---- */

/* How often quiet sessions are parked (conn.c): one that woke up too often
 * to be parked at once is parked after one to two sweeps without input or
 * output, and may be parked at once again from then on. */
#define IDLE_SWEEP_SECONDS 1

static void on_idle_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct output *o = arg;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, o->b->conns);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct conn *c = v;
        if (c->busy) {
            c->busy = FALSE;
            continue;
        }
        c->wakes = 0;
        if (c->bev)
            conn_park(c);
    }
}

/* ---- a connection's life ---- */

void output_attach(struct conn *c)
{
    /* on_write hears when a backlog is half gone (and when the queue is empty). */
    bufferevent_setwatermark(c->bev, EV_WRITE, backlog_mark(c->b) / 2, 0);
    /* Plain sockets: we write their output ourselves (conn_output_kick). */
    c->direct_out = !c->tls && bufferevent_getfd(c->bev) >= 0;
    if (c->direct_out) {
        bufferevent_set_max_single_write(c->bev, BACKLOG_MAX_WRITE);
        bufferevent_disable(c->bev, EV_WRITE); /* enabled from birth */
        bufferevent_enable(c->bev, EV_READ);
        conn_output_kick(c);
    } else {
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    }
}

gboolean output_written(struct conn *c)
{
    backlog_update(c);
    if (conn_queued(c) != 0)
        return FALSE;
    if (c->direct_out) /* backlog written: back to writing at the end of the turn */
        bufferevent_disable(c->bev, EV_WRITE);
    return TRUE;
}

void output_forget(struct conn *c)
{
    struct output *o = c->b->out;
    if (c->run_listed)
        g_ptr_array_remove_fast(o->runs, c);
    if (c->out_listed)
        g_ptr_array_remove_fast(o->pending, c);
    if (c->input_paused) {
        g_queue_unlink(&o->paused, &c->turn_link);
        c->input_paused = FALSE;
    }
    if (c->read_listed) {
        g_queue_unlink(&o->readers, &c->turn_link);
        c->read_listed = FALSE;
    }
    if (c->backlogged)
        backlog_remove(c);
}

struct output *output_new(struct broker *b)
{
    struct output *o = g_new0(struct output, 1);
    o->b = b;
    o->runs = g_ptr_array_new();
    o->pending = g_ptr_array_new();
    o->flush = event_new(b->base, -1, 0, on_flush, o);
    o->backlogged = g_ptr_array_new();
    g_queue_init(&o->paused);
    g_queue_init(&o->readers);
    o->backlog_timer = evtimer_new(b->base, on_backlog_check, o);
    o->resume = event_new(b->base, -1, 0, on_resume, o);
    o->settle = event_new(b->base, -1, 0, on_settle, o);
    o->idle_sweep = event_new(b->base, -1, EV_PERSIST, on_idle_sweep, o);
    struct timeval tv = {IDLE_SWEEP_SECONDS, 0};
    evtimer_add(o->idle_sweep, &tv);
    return o;
}

void output_free(struct output *o)
{
    if (!o)
        return;
    g_ptr_array_unref(o->runs);
    g_ptr_array_unref(o->pending);
    g_ptr_array_unref(o->backlogged);
    /* paused and readers hold links of the connections' own: nothing to free. */
    event_free(o->flush);
    event_free(o->backlog_timer);
    event_free(o->resume);
    event_free(o->settle);
    event_free(o->idle_sweep);
    g_free(o);
}
