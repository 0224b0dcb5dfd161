/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Blocking work off the event loop: one worker thread runs jobs in order,
 * and their completions come back on the loop thread.  Every call into
 * storage and auth plugins goes through here, which also serialises them.
 */
#ifndef HPF_WORKER_H
#define HPF_WORKER_H

#include <event2/event.h>
#include <glib.h>

struct worker;

/** Runs on the worker thread. */
typedef void (*worker_run_fn)(void *job);
/** Runs on the loop thread after run; frees the job. */
typedef void (*worker_done_fn)(void *job);

struct worker *worker_new(struct event_base *base, const char *name);
/** Queue a job.  done may be NULL. */
void worker_submit(struct worker *w, worker_run_fn run, worker_done_fn done, void *job);
/** Jobs queued or running right now. */
guint worker_pending(struct worker *w);
/** Wait for every queued job, run their completions, stop the thread. */
void worker_free(struct worker *w);

#endif
