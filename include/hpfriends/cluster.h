/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file hpfriends/cluster.h
 * @brief Cluster plugins: several hpfriendsd nodes acting as one broker.
 *
 * A cluster plugin sets HPF_KIND_CLUSTER and points `cluster` at a constant
 * struct hpf_cluster_ops.  One instance at most, configured by the
 * [cluster] section (`plugin = NAME` plus the plugin's own keys).
 *
 * What the broker does with it:
 *
 *  - every PUBLISH accepted from a local client goes to ops->publish() once,
 *    after the local fanout and after the sinks got it;
 *  - when the first local client subscribes to a channel, ops->interest()
 *    is called with on = true; when the last one is gone (UNSUBSCRIBE, a
 *    closed connection, a permission withdrawn on reload), with on = false;
 *  - a message the plugin received from another node is handed back with
 *    host->cluster_inject(), carrying the publisher's ident and owner as
 *    the origin node accepted it.  The broker first checks it against
 *    storage's authkeys as of its last reload (the ident exists, the owner
 *    is that key's owner, the channel is in its publish list) and refuses
 *    (counts, logs) what does not match.  Then it delivers it to its local
 *    subscribers with the same access decision as a local publish (the
 *    owner decides in `access = graph`), counts it as delivered where it
 *    is delivered, and never hands it to ops->publish() again.  Sinks and
 *    the per-authkey publish counters see a message on its origin node
 *    only, so across the cluster each message is logged and counted once.
 *
 * Threading: publish() and interest() are called on the event loop thread
 * and must not block: queue the work for a thread of your own.
 * host->cluster_inject() may be called from any thread; it copies what it
 * is given and returns at once (the broker's hand-over queue is bounded:
 * what does not fit is dropped, counted and logged).  Messages injected
 * from one thread are delivered in the order they were injected.
 */
#ifndef HPFRIENDS_CLUSTER_H
#define HPFRIENDS_CLUSTER_H

#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Counters a cluster plugin reports (metrics); all monotonic. */
struct hpf_cluster_stats {
    uint64_t forwarded;      /**< messages handed to the transport */
    uint64_t forward_failed; /**< messages that could not be forwarded */
    uint64_t received;       /**< messages received from other nodes */
    uint64_t received_bad;   /**< received but malformed: not injected */
    bool connected;          /**< the transport is up right now */
    /** received from another process that uses this node's name (a
     * configuration mistake: every node needs its own name) */
    uint64_t same_name;
    /** dropped by the transport because this node read too slowly */
    uint64_t slow_consumer_drops;
    /** largest message (payload and headers) the transport takes right
     * now; 0 when unknown.  The broker warns when its own max_frame does
     * not fit. */
    uint64_t max_payload;
    uint64_t reserved[5];
};

struct hpf_cluster_ops {
    /**
     * A message accepted from a local publisher (msg->time_us, ident,
     * owner, channel, payload).  Event loop thread; must not block.  Copy
     * what you keep.  Return HPF_OK, or an error when it was not forwarded
     * (the plugin counts and logs it; the broker does not retry).
     */
    int (*publish)(void *instance, const struct hpf_message *msg);
    /** Local interest in channel began (on) or ended (!on).  Loop thread. */
    int (*interest)(void *instance, const char *channel, bool on);
    /** Fill in stats.  May be NULL.  Loop thread. */
    void (*stats)(void *instance, struct hpf_cluster_stats *stats);
    const void *reserved[8];
};

#ifdef __cplusplus
}
#endif

#endif
