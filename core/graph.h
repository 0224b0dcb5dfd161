/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sharing graph, flattened.
 *
 * graph_build() turns a storage snapshot into a table
 *     (publisher user, channel) -> sorted set of reader user ids
 * following the reader rule (README, "Who receives what"): the publisher
 * itself; every user an edge on the channel reaches from the publisher (a
 * group edge reaches all its members); then, from every reader other than
 * the publisher, whatever its `shares_all` edges on the channel reach,
 * repeatedly.  With require_accept, an edge from F reaches a user only once
 * that user has accepted F's offer on the channel.
 *
 * Built off the event loop, then immutable: the loop thread only looks
 * things up.  Per message that is two hash lookups and, per subscriber, a
 * binary search in a sorted array; the graph is never walked per message.
 * Identical reader sets are stored once.
 */
#ifndef HPF_GRAPH_H
#define HPF_GRAPH_H

#include <glib.h>

#include "snapshot.h"

#define GRAPH_NO_USER G_MAXUINT32

struct graph;

struct graph_readers {
    guint n;
    guint32 ids[]; /* sorted ascending */
};

struct graph_stats {
    guint users;
    guint channels;
    guint entries;       /* (publisher, channel) pairs with edges */
    guint distinct_sets; /* after interning */
    guint64 reader_ids;  /* ids stored over all distinct sets */
};

struct graph *graph_build(const struct snapshot *s, gboolean require_accept);
void graph_free(struct graph *g);

/** Readers of publisher's messages on chan, or NULL when only itself. */
const struct graph_readers *graph_readers(const struct graph *g, const char *publisher,
                                          const char *chan);
gboolean graph_readers_has(const struct graph_readers *r, guint32 uid);

/** Id of a user in this graph, or GRAPH_NO_USER. */
guint32 graph_user_id(const struct graph *g, const char *name);
const char *graph_user_name(const struct graph *g, guint32 uid);

/** Does reader receive publisher's messages on chan? */
gboolean graph_may_read(const struct graph *g, const char *publisher, const char *chan,
                        const char *reader);

void graph_get_stats(const struct graph *g, struct graph_stats *out);

#endif
