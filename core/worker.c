/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker: a GLib thread pool of one thread runs jobs in submission
 * order; finished jobs go through an async queue, and a libevent event
 * made active from the worker thread wakes the loop to run their
 * completions.
 */
#include "worker.h"

#include "log.h"

struct job {
    worker_run_fn run;
    worker_done_fn done;
    void *data;
};

struct worker {
    GThreadPool *pool;
    GAsyncQueue *done_q;
    struct event *notify;
    char *name;
    gint pending;
};

static void pool_func(gpointer data, gpointer user_data)
{
    struct worker *w = user_data;
    struct job *j = data;
    j->run(j->data);
    g_async_queue_push(w->done_q, j);
    /* Thread-safe with evthread_use_pthreads(), which main() enables. */
    event_active(w->notify, EV_READ, 0);
}

static void drain_done(struct worker *w)
{
    struct job *j;
    while ((j = g_async_queue_try_pop(w->done_q))) {
        g_atomic_int_dec_and_test(&w->pending);
        if (j->done)
            j->done(j->data);
        g_free(j);
    }
}

static void on_notify(evutil_socket_t fd, short what, void *arg) { drain_done(arg); }

struct worker *worker_new(struct event_base *base, const char *name)
{
    struct worker *w = g_new0(struct worker, 1);
    GError *e = NULL;
    w->name = g_strdup(name);
    w->done_q = g_async_queue_new();
    w->notify = event_new(base, -1, 0, on_notify, w);
    w->pool = g_thread_pool_new(pool_func, w, 1, TRUE, &e);
    if (!w->pool) {
        log_err("%s: cannot start worker thread: %s", name, e->message);
        g_error_free(e);
        event_free(w->notify);
        g_async_queue_unref(w->done_q);
        g_free(w->name);
        g_free(w);
        return NULL;
    }
    return w;
}

void worker_submit(struct worker *w, worker_run_fn run, worker_done_fn done, void *data)
{
    struct job *j = g_new(struct job, 1);
    j->run = run;
    j->done = done;
    j->data = data;
    g_atomic_int_inc(&w->pending);
    g_thread_pool_push(w->pool, j, NULL);
}

guint worker_pending(struct worker *w) { return (guint)g_atomic_int_get(&w->pending); }

void worker_free(struct worker *w)
{
    if (!w)
        return;
    g_thread_pool_free(w->pool, FALSE, TRUE);
    drain_done(w);
    event_free(w->notify);
    g_async_queue_unref(w->done_q);
    g_free(w->name);
    g_free(w);
}
