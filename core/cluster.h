/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cluster glue: the [cluster] plugin, what local publishers and subscribers
 * tell it, and the hand-over of messages it receives from other nodes to
 * the event loop (include/hpfriends/cluster.h has the contract).
 */
#ifndef HPF_CLUSTER_H
#define HPF_CLUSTER_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct cluster;
struct snapshot;

/* Hand-over bounds: past either, injected messages are dropped and counted. */
#define CLUSTER_INJECT_MAX_MSGS  100000u
#define CLUSTER_INJECT_MAX_BYTES (64u * 1024u * 1024u)

struct cluster_counters {
    guint64 injected;     /* received from other nodes and fanned out here */
    guint64 inject_drops; /* dropped: hand-over queue full, or unencodable */
    guint64 refused;      /* ident unknown, not the owner's, or may not publish there */
    guint64 forwarded;    /* the plugin's counters, see hpf_cluster_stats */
    guint64 forward_failed;
    guint64 received;
    guint64 received_bad;
    guint64 same_name;
    guint64 slow_consumer_drops;
    gboolean connected;
};

/** Load and create() the plugin of cfg->cluster (pure; `-t` stops here). */
struct cluster *cluster_new(struct broker *b, GError **error);
/** start() it and begin following local interest; on the loop thread. */
gboolean cluster_start(struct cluster *cl, GError **error);
/** A message accepted from a local publisher: forward it once. */
void cluster_publish(struct cluster *cl, const char *ident, const char *owner, const char *chan,
                     const uint8_t *payload, size_t len);
/**
 * What injected messages are checked against, built from a snapshot (any
 * thread): ident -> owner and publish channels.
 */
GHashTable *cluster_keys_build(const struct snapshot *s);
/** Loop thread: use keys (taken over) from now on; returns the old table. */
GHashTable *cluster_set_keys(struct cluster *cl, GHashTable *keys);
void cluster_get_counters(struct cluster *cl, struct cluster_counters *out);
/** Stop the plugin (its threads end), drop what is still queued.  NULL is fine. */
void cluster_free(struct cluster *cl);

#endif
