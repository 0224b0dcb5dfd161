/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file hpfeeds-client.h
 * @brief hpfeeds client library: publish and subscribe on an hpfeeds broker
 *        from a libevent event loop.
 *
 * One struct hpfc_client is one logical connection to one broker.  It owns
 * its TCP (or TLS) connection and keeps it alive:
 *
 *  - hpfc_connect() starts connecting.  The broker greets with INFO; the
 *    client answers AUTH (SHA-1 of the broker's nonce and the secret), then
 *    sends every subscription and every publish queued so far, in order.
 *  - When the connection breaks, the client reconnects on its own with an
 *    exponential back-off (0.5 s doubling up to 30 s by default, each delay
 *    jittered into [d/2, d]) and sends AUTH and all current subscriptions
 *    again.  hpfc_set_reconnect() tunes or disables this.
 *  - hpfc_publish() never loses a message silently: while the client is not
 *    authenticated, publishes wait in a queue; a publish that was not yet
 *    completely handed to the kernel when the connection broke goes back
 *    into that queue and is sent again after the next AUTH.  The queue and
 *    the socket's output buffer together are bounded (8 MiB by default);
 *    past the bound hpfc_publish() refuses with HPFC_ERR_QUEUE_FULL.  Once
 *    bytes are in the kernel, delivery is what TCP and the broker make of
 *    it: hpfeeds has no acknowledgements.
 *
 * The hpfeeds protocol never confirms a successful AUTH.  A broker that
 * rejects the credentials sends an ERROR frame ("Authentication failed for
 * <ident>") and closes the connection, so "authenticated" below means "AUTH
 * was sent": watch the error callback to learn about a rejection.
 *
 * Threading: a client belongs to the thread that runs its event_base.  Call
 * every function from that thread (from callbacks, too); the library takes
 * no locks.  Callbacks always run from the event loop, never from inside an
 * hpfc_* call.  It is safe to call any hpfc_* function, hpfc_free()
 * included, from inside a callback.
 *
 * Signals: the library writes to sockets with write(2); a broker that closes
 * its end can raise SIGPIPE.  Programs should ignore SIGPIPE
 * (signal(SIGPIPE, SIG_IGN)), as most libevent programs do.
 *
 * TLS: hpfc_set_tls() makes every connection of a client TLS (1.2 or
 * newer), with the broker's certificate verified against a CA file or the
 * system's trust store and checked against the host given to
 * hpfc_client_new().  A failed verification is reported to on_state as a
 * disconnect whose reason says why ("TLS handshake with HOST:PORT:
 * certificate verify failed: ..."), and retried like any failed connect.
 *
 * Host names are resolved with the system resolver, which blocks the loop
 * while it runs; pass a numeric address where that matters.
 *
 * Build with `pkg-config --cflags --libs hpfeeds-client`.
 */
#ifndef HPFEEDS_CLIENT_H
#define HPFEEDS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HPFC_MUST_CHECK __attribute__((warn_unused_result))
#else
#define HPFC_MUST_CHECK
#endif

struct event_base;

/** A client: opaque, created by hpfc_client_new(), released by hpfc_free(). */
struct hpfc_client;

/** Status codes returned by hpfc_* calls.  0 is success. */
enum hpfc_status {
    HPFC_OK = 0,
    HPFC_ERR_INVALID,    /**< bad argument: NULL, empty, or a name over 255 bytes */
    HPFC_ERR_NOMEM,      /**< allocation failed; nothing was changed */
    HPFC_ERR_QUEUE_FULL, /**< the publish would exceed the queue bound; not queued */
    HPFC_ERR_IO,         /**< the connection could not be started */
    HPFC_ERR_TLS,        /**< TLS could not be set up (e.g. an unreadable CA file) */
};

/** Connection states, as reported by the state callback and hpfc_state(). */
enum hpfc_state {
    HPFC_STATE_DISCONNECTED = 0, /**< no connection (a reconnect may be scheduled) */
    HPFC_STATE_CONNECTING,       /**< TCP connect in progress (never reported by callback) */
    HPFC_STATE_CONNECTED,        /**< TCP connected, waiting for the broker's INFO */
    HPFC_STATE_AUTHENTICATED,    /**< AUTH sent, subscriptions and queued publishes follow */
};

/** Defaults, overridable per client. */
#define HPFC_DEFAULT_RECONNECT_MIN_MS   500u
#define HPFC_DEFAULT_RECONNECT_MAX_MS   30000u
#define HPFC_DEFAULT_QUEUE_LIMIT        (8u * 1024u * 1024u)
#define HPFC_DEFAULT_MAX_FRAME          (16u * 1024u * 1024u)
#define HPFC_DEFAULT_CONNECT_TIMEOUT_MS 10000u

/**
 * Callbacks.  Any member may be NULL.  Pointers handed to a callback are
 * valid for the duration of that call only: copy what you keep.
 */
struct hpfc_callbacks {
    /**
     * A message was published on a channel this client subscribed to.
     * ident is the publisher's ident.  ident and channel are NUL-terminated
     * (an embedded NUL byte, which hpfeeds allows, cuts them short); the
     * payload is binary, len bytes, and not NUL-terminated.
     */
    void (*on_message)(void *user_data, const char *ident, const char *channel,
                       const uint8_t *payload, size_t len);

    /**
     * The broker sent an ERROR frame, e.g. "Authentication failed for
     * <ident>".  A broker normally closes the connection right after, which
     * is reported to on_state.  message is NUL-terminated.
     */
    void (*on_error)(void *user_data, const char *message);

    /**
     * The connection state changed to state.  For HPFC_STATE_DISCONNECTED,
     * reason says why in one lower-case line ("connection closed by broker",
     * "connect to 127.0.0.1:10000 failed: Connection refused", ...); it is
     * NULL for the other states.  Not called for hpfc_disconnect() nor
     * hpfc_free().
     */
    void (*on_state)(void *user_data, enum hpfc_state state, const char *reason);

    /**
     * Everything queued so far has been written to the socket (the client is
     * authenticated, its queue and output buffer are empty).  Useful to
     * throttle a producer or to close after a batch of publishes.
     */
    void (*on_drained)(void *user_data);

    /** Reserved for callbacks added later; leave zeroed. */
    void (*reserved[4])(void);
};

/**
 * Create a client.  Nothing happens on the network until hpfc_connect().
 *
 * @param base      the event loop the client runs on; must outlive the client
 * @param host      broker host name or numeric address
 * @param port      broker TCP port (1..65535)
 * @param ident     authkey ident, 1..255 bytes
 * @param secret    authkey secret
 * @param cbs       callbacks, copied; may be NULL
 * @param user_data handed to every callback
 * @return the client, or NULL when an argument is invalid or memory ran out
 */
struct hpfc_client *hpfc_client_new(struct event_base *base, const char *host, uint16_t port,
                                    const char *ident, const char *secret,
                                    const struct hpfc_callbacks *cbs, void *user_data);

/**
 * Close the connection, drop queued publishes and subscriptions, and release
 * the client.  No callback runs afterwards.  NULL is a no-op.  Called from
 * inside one of this client's callbacks, the release happens as soon as the
 * callback returns.
 */
void hpfc_free(struct hpfc_client *c);

/**
 * Tune automatic reconnection (before or after connecting).  min_ms is the
 * first delay and max_ms the cap of the doubling; 0 keeps the current value.
 * The delay goes back to min_ms once a connection stayed up for 5 s without
 * the broker sending an ERROR, so a rejected AUTH keeps backing off.
 * With enable false, a lost connection stays lost until hpfc_connect().
 */
void hpfc_set_reconnect(struct hpfc_client *c, bool enable, uint32_t min_ms, uint32_t max_ms);

/**
 * Bound, in bytes, on publishes waiting to be written (the queue while not
 * authenticated plus the socket's output buffer).  0 restores the default.
 */
void hpfc_set_queue_limit(struct hpfc_client *c, size_t bytes);

/**
 * Largest frame accepted from the broker; a longer one is a protocol error
 * that drops the connection.  Values below 5 restore the default.
 */
void hpfc_set_max_frame(struct hpfc_client *c, uint32_t bytes);

/**
 * How long a connection attempt may take until the broker's INFO arrived.
 * 0 restores the default.  Applies from the next attempt.
 */
void hpfc_set_connect_timeout(struct hpfc_client *c, uint32_t ms);

/**
 * Speak TLS to the broker (a tls: listener of hpfriendsd), or plain TCP
 * again with enable false.  Applies from the next connection attempt.
 *
 * The broker's certificate chain must verify against cafile (PEM, one or
 * more CA certificates) or, when cafile is NULL, against the system's
 * default trust store; and it must be issued for the host given to
 * hpfc_client_new(): a numeric address must appear among its IP address
 * names, a host name among its DNS names (the name is also sent as SNI).
 * There is no way to skip verification.
 *
 * @param cafile PEM file of trusted CA certificates, or NULL
 * @return HPFC_OK, HPFC_ERR_INVALID (cafile is ""), HPFC_ERR_NOMEM, or
 *         HPFC_ERR_TLS (cafile cannot be read or holds no certificate;
 *         the previous setting is kept)
 */
HPFC_MUST_CHECK int hpfc_set_tls(struct hpfc_client *c, bool enable, const char *cafile);

/**
 * Start connecting, now.  Cancels a scheduled reconnect.  Does nothing and
 * returns HPFC_OK when a connection is already up or in progress.
 * @return HPFC_OK, HPFC_ERR_NOMEM, or HPFC_ERR_IO (no socket could be
 *         created; nothing is scheduled)
 */
HPFC_MUST_CHECK int hpfc_connect(struct hpfc_client *c);

/**
 * Close the connection and stop reconnecting.  Subscriptions stay, and
 * publishes not yet completely written go back into the queue, so that
 * hpfc_connect() resumes where the client left off.  No callback is called.
 */
void hpfc_disconnect(struct hpfc_client *c);

/**
 * Subscribe to channel (1..255 bytes).  Sent at once when authenticated and
 * again after every reconnect.  Subscribing twice is a no-op.
 * @return HPFC_OK, HPFC_ERR_INVALID, HPFC_ERR_NOMEM
 */
HPFC_MUST_CHECK int hpfc_subscribe(struct hpfc_client *c, const char *channel);

/**
 * Unsubscribe from channel.  A channel not subscribed is a no-op.
 * @return HPFC_OK, HPFC_ERR_INVALID, HPFC_ERR_NOMEM
 */
HPFC_MUST_CHECK int hpfc_unsubscribe(struct hpfc_client *c, const char *channel);

/**
 * Publish len bytes of data on channel (1..255 bytes).  Written at once when
 * authenticated, queued otherwise.  data may be NULL when len is 0.
 * @return HPFC_OK (written or queued), HPFC_ERR_INVALID,
 *         HPFC_ERR_QUEUE_FULL (refused, nothing queued), HPFC_ERR_NOMEM
 */
HPFC_MUST_CHECK int hpfc_publish(struct hpfc_client *c, const char *channel, const void *data,
                                 size_t len);

/** Current connection state. */
enum hpfc_state hpfc_state(const struct hpfc_client *c);

/** Bytes queued or buffered that have not been written to the socket yet. */
size_t hpfc_pending_bytes(const struct hpfc_client *c);

/**
 * Broker name from the last INFO frame (NUL-terminated), or NULL before the
 * first INFO.  Valid until the next INFO or hpfc_free().
 */
const char *hpfc_broker_name(const struct hpfc_client *c);

/**
 * Add another broker to try (several nodes of one hpfriends cluster, say).
 * The broker given to hpfc_client_new() comes first; each time a
 * connection is lost or cannot be made, the next attempt, after the usual
 * back-off, goes to the next broker of the list, round robin, and sends
 * AUTH, every subscription and the queued publishes there.  Publishes that
 * a dying broker had taken but not yet delivered are lost with it: hpfeeds
 * has no acknowledgements.
 * @return HPFC_OK, HPFC_ERR_INVALID (NULL or empty host, port 0),
 *         HPFC_ERR_NOMEM
 */
HPFC_MUST_CHECK int hpfc_add_broker(struct hpfc_client *c, const char *host, uint16_t port);

/**
 * The broker the client is connected or connecting to, or will try next;
 * its port in *port when port is not NULL.  Valid until the next hpfc_*
 * call or callback.
 */
const char *hpfc_current_host(const struct hpfc_client *c, uint16_t *port);

/** Text for an hpfc_status value. */
const char *hpfc_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif
