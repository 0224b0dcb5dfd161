/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Worker thread (core/worker.c): jobs run in submission order on one thread
 * that is not the loop's, their completions run on the loop thread, the
 * pending count follows both, and worker_free() waits for what is queued
 * and still runs its completions.
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <glib.h>

#include "../common/cunit_run.h"
#include "worker.h"

#define N_JOBS 200

struct record {
    GThread *loop_thread;
    GThread *run_thread[N_JOBS];
    GThread *done_thread[N_JOBS];
    int run_order[N_JOBS];
    int done_order[N_JOBS];
    int n_run, n_done;
    struct event_base *base;
};

struct job {
    struct record *r;
    int index;
};

static void job_run(void *p)
{
    struct job *j = p;
    j->r->run_thread[j->index] = g_thread_self();
    j->r->run_order[j->r->n_run++] = j->index; /* one worker thread: no race */
}

static void job_done(void *p)
{
    struct job *j = p;
    j->r->done_thread[j->index] = g_thread_self();
    j->r->done_order[j->r->n_done++] = j->index;
    if (j->r->n_done == N_JOBS)
        event_base_loopbreak(j->r->base);
    g_free(j);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) { event_base_loopbreak(arg); }

static void test_order_and_threads(void)
{
    struct record r = {0};
    r.loop_thread = g_thread_self();
    r.base = event_base_new();
    struct worker *w = worker_new(r.base, "test");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    for (int i = 0; i < N_JOBS; i++) {
        struct job *j = g_new(struct job, 1);
        j->r = &r;
        j->index = i;
        worker_submit(w, job_run, job_done, j);
    }
    CU_ASSERT(worker_pending(w) > 0);
    /* A bound, not a timing assertion: the completions come long before. */
    struct timeval limit = {30, 0};
    struct event *t = evtimer_new(r.base, on_timeout, r.base);
    evtimer_add(t, &limit);
    event_base_dispatch(r.base);
    event_free(t);

    CU_ASSERT_EQUAL(r.n_run, N_JOBS);
    CU_ASSERT_EQUAL(r.n_done, N_JOBS);
    CU_ASSERT_EQUAL(worker_pending(w), 0);
    for (int i = 0; i < N_JOBS; i++) {
        CU_ASSERT_EQUAL(r.run_order[i], i);
        CU_ASSERT_EQUAL(r.done_order[i], i);
        CU_ASSERT_PTR_NOT_EQUAL(r.run_thread[i], r.loop_thread);
        CU_ASSERT_PTR_EQUAL(r.run_thread[i], r.run_thread[0]);
        CU_ASSERT_PTR_EQUAL(r.done_thread[i], r.loop_thread);
    }
    worker_free(w);
    event_base_free(r.base);
}

static void test_free_drains(void)
{
    struct record r = {0};
    r.loop_thread = g_thread_self();
    r.base = event_base_new();
    struct worker *w = worker_new(r.base, "test");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    for (int i = 0; i < N_JOBS; i++) {
        struct job *j = g_new(struct job, 1);
        j->r = &r;
        j->index = i;
        worker_submit(w, job_run, job_done, j);
    }
    /* The loop never runs: worker_free() itself waits and completes. */
    worker_free(w);
    CU_ASSERT_EQUAL(r.n_run, N_JOBS);
    CU_ASSERT_EQUAL(r.n_done, N_JOBS);
    for (int i = 0; i < N_JOBS; i++)
        CU_ASSERT_PTR_EQUAL(r.done_thread[i], r.loop_thread);
    event_base_free(r.base);
}

static int n_plain;
static void plain_run(void *p) { n_plain += GPOINTER_TO_INT(p); }

static void test_no_completion(void)
{
    struct event_base *base = event_base_new();
    struct worker *w = worker_new(base, "test");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    n_plain = 0;
    for (int i = 0; i < 10; i++)
        worker_submit(w, plain_run, NULL, GINT_TO_POINTER(1));
    worker_free(w);
    CU_ASSERT_EQUAL(n_plain, 10);
    worker_free(NULL); /* a no-op */
    event_base_free(base);
}

int main(void)
{
    evthread_use_pthreads();
    static const struct test_case cases[] = {
        {"jobs in order on the worker, completions on the loop", test_order_and_threads},
        {"worker_free waits for queued jobs and completes them", test_free_drains},
        {"a job without completion", test_no_completion},
        {NULL, NULL},
    };
    return cunit_run("worker", cases);
}
