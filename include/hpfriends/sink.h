/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file hpfriends/sink.h
 * @brief Sink plugins: where accepted messages and broker events go.
 *
 * A sink sets HPF_KIND_SINK and points `sink` at a constant struct
 * hpf_sink_ops.  Each [sink:NAME] config section is one instance; the
 * same plugin may be configured several times.
 *
 * Threading: each sink instance gets its own worker thread.  The broker
 * copies every message and event into a bounded queue and calls the sink
 * from that thread, one call at a time, so a sink may block on disk or
 * network without slowing the broker.  When the queue is full the broker
 * drops, counts and logs (rate-limited): it never waits for a sink.
 */
#ifndef HPFRIENDS_SINK_H
#define HPFRIENDS_SINK_H

#include <hpfriends/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What a sink wants to receive (ops->wants). */
enum hpf_sink_wants {
    HPF_SINK_MESSAGES = 1u << 0,
    HPF_SINK_EVENTS = 1u << 1,
};

/** One accepted PUBLISH.  Frozen for ABI major 1 (plugin.h says why). */
struct hpf_message {
    int64_t time_us; /**< receipt time, microseconds since the Unix epoch */
    const char *ident;
    const char *owner;
    const char *channel;
    const uint8_t *payload;
    size_t payload_len;
};

enum hpf_event_type {
    HPF_EVENT_AUTH_FAILED = 1, /**< ident, peer, reason */
    HPF_EVENT_DENIED,          /**< ident, owner, peer, channel, reason */
    HPF_EVENT_SLOW_DROP,       /**< ident, owner, peer, count */
    /** ident (may be NULL), owner, peer, reason ("closed by broker: ..."
     *  when the broker ended it), count (messages dropped for this
     *  subscriber over its queue bound; 0: none) */
    HPF_EVENT_DISCONNECT,
    HPF_EVENT_CONNECT, /**< peer */
    /** Connections refused by the per-address limits: one event per
     *  address and window (a minute, or until its back-off ends), never
     *  one per connection.  peer (the address), reason (a sentence:
     *  "refused 57 connections from 192.0.2.5 in the last minute: too
     *  many authentication failures"), count (connections refused).
     *  A plugin that does not know this type may treat it as any event. */
    HPF_EVENT_REFUSED,
};

/** The event's name as the bundled sinks and the console write it
 *  ("auth_failed", "denied", ...); NULL for a type this header does not know. */
static inline const char *hpf_event_name(int type)
{
    switch (type) {
    case HPF_EVENT_AUTH_FAILED:
        return "auth_failed";
    case HPF_EVENT_DENIED:
        return "denied";
    case HPF_EVENT_SLOW_DROP:
        return "slow_drop";
    case HPF_EVENT_DISCONNECT:
        return "disconnect";
    case HPF_EVENT_CONNECT:
        return "connect";
    case HPF_EVENT_REFUSED:
        return "refused";
    default:
        return NULL;
    }
}

/** A broker event; unset strings are NULL. */
struct hpf_event {
    int64_t time_us;
    int type; /**< enum hpf_event_type */
    const char *ident;
    const char *owner;
    const char *peer;
    const char *channel;
    const char *reason;
    uint64_t count;
};

struct hpf_sink_ops {
    uint32_t wants; /**< enum hpf_sink_wants bits */
    /** One message (when wants has HPF_SINK_MESSAGES).  May be NULL. */
    int (*message)(void *instance, const struct hpf_message *msg);
    /** One event (when wants has HPF_SINK_EVENTS).  May be NULL. */
    int (*event)(void *instance, const struct hpf_event *ev);
    /** Reopen files (SIGHUP, logrotate).  May be NULL. */
    int (*reopen)(void *instance);
    /** Make everything so far durable (shutdown).  May be NULL. */
    int (*flush)(void *instance);
    /**
     * ABI 1.1.  What this instance wants, after its configuration: a
     * subset of `wants` (a file sink set to write events only answers
     * HPF_SINK_EVENTS).  The broker then never queues the rest for it, so
     * it costs nothing and cannot fill the instance's queue.  Called once,
     * right after create().  May be NULL: every instance gets `wants`.
     */
    uint32_t (*instance_wants)(void *instance);
    const void *reserved[7];
};

#ifdef __cplusplus
}
#endif

#endif
