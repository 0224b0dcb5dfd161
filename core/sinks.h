/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sinks: every accepted message and broker event, handed to each sink
 * plugin instance on its own worker thread through a bounded queue.  The
 * event loop never waits for a sink: when a queue is full the item is
 * dropped for that sink, counted, and logged (rate-limited).
 *
 * Keys every [sink:NAME] section may hold besides the plugin's own:
 *   channels   = a;b;c   only messages on these channels (default: all)
 *   queue_size = 64M     queue bound in bytes (default 64M)
 */
#ifndef HPF_SINKS_H
#define HPF_SINKS_H

#include <glib.h>

#include "config.h"
#include "loader.h"

struct sinks;

struct sink_stats {
    const char *name;
    guint64 delivered;
    guint64 dropped;
    guint64 errors;
    guint64 queued_bytes;
};

/** Load and configure (pure) every sink of cfg; NULL with error. */
struct sinks *sinks_new(const struct config *cfg, const char *plugin_dir, GError **error);
/** Start the plugins and their threads. */
gboolean sinks_start(struct sinks *s, GError **error);

void sinks_message(struct sinks *s, const char *ident, const char *owner, const char *channel,
                   const guint8 *payload, gsize len);
/**
 * One broker event, in the shape sink plugins receive (<hpfriends/sink.h>):
 * callers fill what applies with designated initializers, and the strings
 * are copied.  A time_us of 0 means now.
 */
void sinks_event(struct sinks *s, const struct hpf_event *ev);
/**
 * Also hand every event to fn on the loop thread (the console's log of
 * recent events), whether or not a sink wants events.  One tap; NULL clears.
 * ev and its strings are valid during the call only.
 */
typedef void (*sinks_tap_fn)(void *ud, const struct hpf_event *ev);
void sinks_set_tap(struct sinks *s, sinks_tap_fn fn, void *ud);
/** Ask every sink to reopen its files (SIGHUP). */
void sinks_reopen(struct sinks *s);
/** Let every queue drain, flush, stop the threads, destroy the plugins. */
void sinks_free(struct sinks *s);

guint sinks_count(const struct sinks *s);
void sinks_get_stats(const struct sinks *s, guint i, struct sink_stats *out);

#endif
