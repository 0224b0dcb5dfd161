/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The admin console: an HTTP listener (evhttp, TLS optional) serving a JSON
 * API under /api/ and the single-page console's static files.  Runs on the
 * broker's event loop; everything that touches storage runs on the storage
 * worker and password hashing on a worker of its own, with replies sent
 * from their completions.
 */
#ifndef HPF_WEB_H
#define HPF_WEB_H

#include <stdio.h>

#include <glib.h>

struct broker;
struct snapshot;
struct web;

/** Start the console of b->cfg->web (does nothing without one); adds "http web PORT" to ready.
 * It binds and reads its files and keys only: web_begin() hooks it to the
 * sinks and storage once those run (the broker may switch users between). */
gboolean web_start(struct broker *b, FILE *ready, GError **error);
void web_begin(struct broker *b);
/** Stop listening; pending requests are dropped (their jobs still finish). */
void web_stop(struct web *w);
/** Free everything; after the storage worker has finished. */
void web_free(struct web *w);
/** The broker read a new snapshot: keep what logins and sessions need from it. */
void web_snapshot_loaded(struct web *w, const struct snapshot *s);

#endif
