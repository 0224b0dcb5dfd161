/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfeeds client library: one reconnecting connection per struct
 * hpfc_client, on libevent bufferevents, framing by core/wire.c.
 *
 * Byte accounting.  Every frame written to the bufferevent's output buffer
 * is also appended to c->mirror, so the mirror always holds the tail of the
 * byte stream handed to the output buffer.  Whatever part of the mirror is
 * no longer in the output buffer has reached the kernel; whole frames of it
 * are trimmed away.  When a connection breaks, the mirror therefore starts
 * with the first frame that was not completely written: its PUBLISH frames
 * go back to the front of c->pending and are sent again after the next
 * AUTH, while AUTH and SUBSCRIBE frames are dropped (they are regenerated
 * for the new connection's nonce and the current subscription set).
 */
#include "hpfeeds-client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "wire.h"

/* A session this long without an ERROR resets the reconnect back-off. */
#define STABLE_SESSION_MS 5000u
/* Keep the bound representable in the int that libevent's APIs return. */
#define QUEUE_LIMIT_MAX   ((size_t)INT32_MAX)

struct hpfc_client {
    struct event_base *base;
    char *host;
    uint16_t port;
    char *ident;
    size_t ident_len;
    char *secret;
    size_t secret_len;
    struct hpfc_callbacks cbs;
    void *user_data;

    /* connection */
    struct bufferevent *bev;
    enum hpfc_state state;
    struct evbuffer *pending; /* frames waiting for AUTH; PUBLISH only */
    struct evbuffer *mirror;  /* see the top of this file */
    struct evbuffer *scratch; /* reused while salvaging unsent frames */
    bool mirror_valid;        /* false once an add to the mirror failed */
    uint64_t authed_at_ms;
    bool got_error; /* the broker sent ERROR on this connection */
    char *broker_name;

    /* reconnecting */
    struct event *retry_ev;
    bool want_connected; /* hpfc_connect() called, hpfc_disconnect() not */
    bool reconnect;
    uint32_t min_ms;
    uint32_t max_ms;
    uint32_t backoff_ms;

    /* limits */
    size_t queue_limit;
    uint32_t max_frame;
    uint32_t connect_timeout_ms;

    /* subscriptions, in the order they were made */
    char **subs;
    size_t n_subs;
    size_t cap_subs;

    /* TLS: NULL for plain TCP; see hpfc_set_tls() */
    SSL_CTX *tls_ctx;

    /* re-entrancy: callbacks may call hpfc_free() */
    unsigned busy;
    bool free_requested;

    /* failover: every broker to try, host/port above is brokers[broker_idx] */
    struct hpfc_addr *brokers;
    size_t n_brokers;
    size_t broker_idx;
};

struct hpfc_addr {
    char *host;
    uint16_t port;
};

static void failover_next(struct hpfc_client *c);
static void failover_free(struct hpfc_client *c);

const char *hpfc_strerror(int status)
{
    switch (status) {
    case HPFC_OK:
        return "success";
    case HPFC_ERR_INVALID:
        return "invalid argument";
    case HPFC_ERR_NOMEM:
        return "out of memory";
    case HPFC_ERR_QUEUE_FULL:
        return "publish queue full";
    case HPFC_ERR_IO:
        return "cannot start a connection";
    case HPFC_ERR_TLS:
        return "TLS set-up failed";
    default:
        return "unknown status";
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval ms_to_tv(uint32_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000u),
                         .tv_usec = (suseconds_t)(ms % 1000u) * 1000};
    return tv;
}

/* A name that fits an s8 field; *len gets its length. */
static bool valid_name(const char *s, size_t *len)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > WIRE_MAX_NAME)
        return false;
    *len = n;
    return true;
}

static char *dup_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---- callbacks out ---- */

static void emit_state(struct hpfc_client *c, enum hpfc_state st, const char *reason)
{
    if (c->cbs.on_state && !c->free_requested)
        c->cbs.on_state(c->user_data, st, reason);
}

static void destroy(struct hpfc_client *c);

static void maybe_destroy(struct hpfc_client *c)
{
    if (c->busy == 0 && c->free_requested)
        destroy(c);
}

/* ---- output accounting ---- */

static size_t output_len(const struct hpfc_client *c)
{
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* Drops the whole frames at the head of the mirror that reached the kernel. */
static void trim_mirror(struct hpfc_client *c)
{
    size_t mlen = evbuffer_get_length(c->mirror);
    size_t olen = output_len(c);
    if (!c->mirror_valid || mlen < olen) {
        /* Out of step (only after a failed allocation): useless, keep it small. */
        c->mirror_valid = false;
        evbuffer_drain(c->mirror, mlen);
        return;
    }
    size_t done = mlen - olen;
    while (done >= WIRE_HEADER_LEN) {
        uint8_t hdr[WIRE_HEADER_LEN];
        if (evbuffer_copyout(c->mirror, hdr, sizeof hdr) != (ev_ssize_t)sizeof hdr)
            break;
        uint32_t flen = wire_peek_length(hdr);
        if (flen > done || flen < WIRE_HEADER_LEN)
            break;
        evbuffer_drain(c->mirror, flen);
        done -= flen;
    }
}

/*
 * Moves the PUBLISH frames not completely written back to the front of the
 * pending queue.  Returns the bytes of publishes that could not be kept.
 */
static size_t salvage_unsent(struct hpfc_client *c)
{
    size_t lost = 0;
    trim_mirror(c);
    if (!c->mirror_valid) {
        /* Unknown frame boundaries: the unsent part cannot be recovered. */
        lost = output_len(c);
        goto out;
    }
    while (evbuffer_get_length(c->mirror) >= WIRE_HEADER_LEN) {
        uint8_t hdr[WIRE_HEADER_LEN];
        evbuffer_copyout(c->mirror, hdr, sizeof hdr);
        uint32_t flen = wire_peek_length(hdr);
        if (flen < WIRE_HEADER_LEN || flen > evbuffer_get_length(c->mirror))
            break; /* cannot happen: the mirror holds whole frames */
        if (hdr[4] == WIRE_OP_PUBLISH) {
            if (evbuffer_remove_buffer(c->mirror, c->scratch, flen) != (int)flen) {
                lost += flen;
                break;
            }
        } else {
            evbuffer_drain(c->mirror, flen);
        }
    }
    if (evbuffer_get_length(c->scratch) && evbuffer_prepend_buffer(c->pending, c->scratch) < 0)
        lost += evbuffer_get_length(c->scratch);
out:
    lost += evbuffer_get_length(c->mirror);
    evbuffer_drain(c->scratch, evbuffer_get_length(c->scratch));
    evbuffer_drain(c->mirror, evbuffer_get_length(c->mirror));
    c->mirror_valid = true;
    return lost;
}

/* Writes one frame to the live connection, mirrored. */
static int send_frame(struct hpfc_client *c, const uint8_t *frame, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    /* After expanding, neither add needs memory, so both succeed or none runs. */
    if (evbuffer_expand(c->mirror, len) < 0 || evbuffer_expand(out, len) < 0)
        return HPFC_ERR_NOMEM;
    if (evbuffer_add(out, frame, len) < 0)
        return HPFC_ERR_NOMEM;
    if (evbuffer_add(c->mirror, frame, len) < 0)
        c->mirror_valid = false;
    return HPFC_OK;
}

/* Encodes and writes a SUBSCRIBE or UNSUBSCRIBE. */
static int send_sub(struct hpfc_client *c, uint8_t op, const char *chan, size_t chan_len)
{
    uint8_t buf[WIRE_HEADER_LEN + 1 + 2 * WIRE_MAX_NAME];
    size_t n = wire_encode_sub(buf, sizeof buf, op, c->ident, c->ident_len, chan, chan_len);
    if (n == 0 || n > sizeof buf)
        return HPFC_ERR_INVALID;
    return send_frame(c, buf, n);
}

/* Moves the pending queue to the live connection, mirrored. */
static int flush_pending(struct hpfc_client *c)
{
    size_t n = evbuffer_get_length(c->pending);
    if (n == 0)
        return 0;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_expand(c->mirror, n) < 0)
        return -1;
    int nvec = evbuffer_peek(c->pending, -1, NULL, NULL, 0);
    struct evbuffer_iovec *vec = nvec > 0 ? calloc((size_t)nvec, sizeof *vec) : NULL;
    if (!vec)
        return -1;
    size_t mirrored = 0;
    int got = evbuffer_peek(c->pending, -1, NULL, vec, nvec);
    for (int i = 0; i < got && i < nvec; i++) {
        if (evbuffer_add(c->mirror, vec[i].iov_base, vec[i].iov_len) < 0)
            break;
        mirrored += vec[i].iov_len;
    }
    free(vec);
    if (mirrored != n)
        c->mirror_valid = false;
    if (evbuffer_add_buffer(out, c->pending) < 0) {
        /* Mirrored bytes that never reached the output break the accounting. */
        c->mirror_valid = false;
        return -1;
    }
    return 0;
}

/* ---- connection life cycle ---- */

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/*
 * The one place that decides what a connection is made of: a plain socket,
 * or TLS over it (the handshake runs as part of connecting, and
 * BEV_EVENT_CONNECTED arrives once it completed and the broker's
 * certificate was verified).  The rest of the client only sees a
 * bufferevent that connects, reads and writes.
 */
static struct bufferevent *transport_new(struct hpfc_client *c)
{
    const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    if (!c->tls_ctx)
        return bufferevent_socket_new(c->base, -1, opts);

    SSL *ssl = SSL_new(c->tls_ctx);
    if (!ssl)
        return NULL;
    /* The certificate must name the host we were given: an IP address is
     * matched against its IP SANs, a name against its DNS names (and sent
     * as SNI). */
    unsigned char addr[sizeof(struct in6_addr)];
    bool numeric =
        inet_pton(AF_INET, c->host, addr) == 1 || inet_pton(AF_INET6, c->host, addr) == 1;
    int ok = numeric ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host)
                     : SSL_set1_host(ssl, c->host) && SSL_set_tlsext_host_name(ssl, c->host);
    if (ok != 1) {
        SSL_free(ssl);
        return NULL;
    }
    /* On failure libevent frees nothing it was handed: the SSL is ours. */
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* A broker that closes without close_notify has still closed. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/*
 * Why a TLS connection failed, when it was TLS: the certificate check's
 * verdict, or OpenSSL's error.  False when TLS has nothing to say.
 */
static bool tls_failure(struct hpfc_client *c, struct bufferevent *bev, char *buf, size_t len)
{
    if (!c->tls_ctx)
        return false;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    /* libevent queues SSL_get_error()'s code (a small number, no library)
     * ahead of OpenSSL's own packed error codes. */
    unsigned long e, last = 0, code = 0;
    while ((e = bufferevent_get_openssl_error(bev)) != 0) {
        if (ERR_GET_LIB(e) == 0 && e < 256)
            code = e;
        else
            last = e;
    }
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (ssl && v != X509_V_OK && c->state == HPFC_STATE_CONNECTING) {
        snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(v));
        return true;
    }
    if (last) {
        const char *r = ERR_reason_error_string(last);
        if (r)
            snprintf(buf, len, "%s", r);
        else
            ERR_error_string_n(last, buf, len);
        return true;
    }
    if (code == SSL_ERROR_SSL) {
        snprintf(buf, len, "TLS protocol error (not a TLS listener?)");
        return true;
    }
    return false;
}

static int start_connection(struct hpfc_client *c)
{
    struct bufferevent *bev = transport_new(c);
    if (!bev)
        return HPFC_ERR_NOMEM;
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    /* Until INFO arrives, silence in either direction is a failed attempt. */
    struct timeval tv = ms_to_tv(c->connect_timeout_ms);
    bufferevent_set_timeouts(bev, &tv, &tv);
    c->bev = bev;
    c->state = HPFC_STATE_CONNECTING;
    c->got_error = false;
    if (bufferevent_socket_connect_hostname(bev, NULL, AF_UNSPEC, c->host, c->port) < 0 ||
        bufferevent_enable(bev, EV_READ | EV_WRITE) < 0) {
        c->bev = NULL;
        c->state = HPFC_STATE_DISCONNECTED;
        bufferevent_free(bev);
        return HPFC_ERR_IO;
    }
    return HPFC_OK;
}

/* Closes the live connection, keeping unsent publishes.  Returns bytes lost. */
static size_t drop_connection(struct hpfc_client *c)
{
    if (!c->bev)
        return 0;
    size_t lost = salvage_unsent(c);
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->state = HPFC_STATE_DISCONNECTED;
    return lost;
}

static void schedule_retry(struct hpfc_client *c)
{
    if (!c->reconnect || !c->want_connected || c->free_requested)
        return;
    uint32_t b = c->backoff_ms;
    uint32_t r = 0;
    evutil_secure_rng_get_bytes(&r, sizeof r);
    /* "Equal jitter": somewhere in [b/2, b], so clients that lost the same
     * broker do not all come back in the same millisecond. */
    uint32_t delay = b / 2 + r % (b - b / 2 + 1);
    c->backoff_ms = b > c->max_ms / 2 ? c->max_ms : b * 2;
    struct timeval tv = ms_to_tv(delay);
    evtimer_add(c->retry_ev, &tv);
}

static void host_port(const struct hpfc_client *c, char *buf, size_t len)
{
    if (strchr(c->host, ':'))
        snprintf(buf, len, "[%s]:%u", c->host, (unsigned)c->port);
    else
        snprintf(buf, len, "%s:%u", c->host, (unsigned)c->port);
}

/* The connection is gone: clean up, plan the next attempt, tell the user. */
static void connection_lost(struct hpfc_client *c, const char *why)
{
    bool was_authed = c->state == HPFC_STATE_AUTHENTICATED;
    uint64_t up = was_authed ? now_ms() - c->authed_at_ms : 0;
    size_t lost = drop_connection(c);
    if (was_authed && !c->got_error && up >= STABLE_SESSION_MS)
        c->backoff_ms = c->min_ms;
    failover_next(c);
    schedule_retry(c);

    char reason[900];
    if (lost)
        snprintf(reason, sizeof reason, "%s (%zu bytes of unsent publishes lost: out of memory)",
                 why, lost);
    else
        snprintf(reason, sizeof reason, "%s", why);
    emit_state(c, HPFC_STATE_DISCONNECTED, reason);
}

static void fail_connection(struct hpfc_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail_connection(struct hpfc_client *c, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    connection_lost(c, why);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct hpfc_client *c = arg;
    c->busy++;
    if (!c->bev && c->want_connected) {
        int rc = start_connection(c);
        if (rc != HPFC_OK) {
            schedule_retry(c);
            char why[300];
            snprintf(why, sizeof why, "cannot start a connection: %s", hpfc_strerror(rc));
            emit_state(c, HPFC_STATE_DISCONNECTED, why);
        }
    }
    c->busy--;
    maybe_destroy(c);
}

static void set_socket_options(struct bufferevent *bev)
{
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0)
        return;
    int on = 1;
    /* Small messages should not wait for Nagle; keepalive finds a broker
     * that vanished without a FIN while we only listen.  Best effort. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
#ifdef TCP_KEEPIDLE
    int idle = 30, intvl = 10, cnt = 3;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
#endif
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct hpfc_client *c = arg;
    if (bev != c->bev)
        return;
    c->busy++;
    if (what & BEV_EVENT_CONNECTED) {
        c->state = HPFC_STATE_CONNECTED;
        set_socket_options(bev);
        emit_state(c, HPFC_STATE_CONNECTED, NULL);
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        int err = EVUTIL_SOCKET_ERROR();
        char where[300], why[768];
        host_port(c, where, sizeof where);
        int dns_err = bufferevent_socket_get_dns_error(bev);
        char tls_why[300];
        if (dns_err)
            snprintf(why, sizeof why, "cannot resolve %s: %s", c->host,
                     evutil_gai_strerror(dns_err));
        else if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof why, "%s %s timed out",
                     c->state == HPFC_STATE_CONNECTING ? "connect to" : "waiting for INFO from",
                     where);
        else if ((what & BEV_EVENT_ERROR) && tls_failure(c, bev, tls_why, sizeof tls_why))
            snprintf(why, sizeof why, "%s %s: %s",
                     c->state == HPFC_STATE_CONNECTING ? "TLS handshake with" : "TLS error from",
                     where, tls_why);
        else if ((what & BEV_EVENT_EOF) && c->tls_ctx && c->state == HPFC_STATE_CONNECTING)
            snprintf(why, sizeof why, "connection closed by %s during the TLS handshake", where);
        else if (what & BEV_EVENT_EOF)
            snprintf(why, sizeof why, "connection closed by broker %s", where);
        else if (c->state == HPFC_STATE_CONNECTING)
            snprintf(why, sizeof why, "connect to %s failed: %s", where,
                     err ? evutil_socket_error_to_string(err) : "unknown error");
        else
            snprintf(why, sizeof why, "connection to %s lost: %s", where,
                     err ? evutil_socket_error_to_string(err) : "unknown error");
        connection_lost(c, why);
    }
    c->busy--;
    maybe_destroy(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct hpfc_client *c = arg;
    if (bev != c->bev)
        return;
    c->busy++;
    trim_mirror(c);
    if (c->state == HPFC_STATE_AUTHENTICATED && evbuffer_get_length(c->pending) == 0 &&
        output_len(c) == 0 && c->cbs.on_drained && !c->free_requested)
        c->cbs.on_drained(c->user_data);
    c->busy--;
    maybe_destroy(c);
}

/* ---- frames in ---- */

static void handle_info(struct hpfc_client *c, const struct wire_msg *m)
{
    if (c->state == HPFC_STATE_AUTHENTICATED)
        return; /* a second INFO means nothing to us */

    char *name = dup_bytes(m->name.ptr, m->name.len);
    if (!name) {
        fail_connection(c, "%s", "out of memory");
        return;
    }
    free(c->broker_name);
    c->broker_name = name;

    uint8_t hash[WIRE_HASH_LEN];
    uint8_t auth[WIRE_HEADER_LEN + 1 + WIRE_MAX_NAME + WIRE_HASH_LEN];
    if (wire_auth_hash(m->data.ptr, m->data.len, c->secret, c->secret_len, hash) < 0) {
        fail_connection(c, "%s", "cannot compute the AUTH hash (OpenSSL failed)");
        return;
    }
    size_t n = wire_encode_auth(auth, sizeof auth, c->ident, c->ident_len, hash);
    OPENSSL_cleanse(hash, sizeof hash);
    if (n == 0 || send_frame(c, auth, n) != HPFC_OK) {
        fail_connection(c, "%s", "out of memory");
        return;
    }
    for (size_t i = 0; i < c->n_subs; i++) {
        if (send_sub(c, WIRE_OP_SUBSCRIBE, c->subs[i], strlen(c->subs[i])) != HPFC_OK) {
            fail_connection(c, "%s", "out of memory");
            return;
        }
    }
    if (flush_pending(c) < 0) {
        fail_connection(c, "%s", "out of memory");
        return;
    }
    c->state = HPFC_STATE_AUTHENTICATED;
    c->authed_at_ms = now_ms();
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    emit_state(c, HPFC_STATE_AUTHENTICATED, NULL);
}

static void handle_publish(struct hpfc_client *c, const struct wire_msg *m)
{
    char ident[WIRE_MAX_NAME + 1], chan[WIRE_MAX_NAME + 1];
    memcpy(ident, m->name.ptr, m->name.len);
    ident[m->name.len] = '\0';
    memcpy(chan, m->channel.ptr, m->channel.len);
    chan[m->channel.len] = '\0';
    if (c->cbs.on_message && !c->free_requested)
        c->cbs.on_message(c->user_data, ident, chan, m->data.ptr, m->data.len);
}

static void handle_error(struct hpfc_client *c, const struct wire_msg *m)
{
    c->got_error = true;
    char *text = dup_bytes(m->data.ptr, m->data.len);
    if (c->cbs.on_error && !c->free_requested)
        c->cbs.on_error(c->user_data, text ? text : "(broker error; out of memory copying it)");
    free(text);
}

static void handle_frame(struct hpfc_client *c, const struct wire_msg *m)
{
    switch (m->op) {
    case WIRE_OP_ERROR:
        handle_error(c, m);
        break;
    case WIRE_OP_INFO:
        handle_info(c, m);
        break;
    case WIRE_OP_PUBLISH:
        if (c->state != HPFC_STATE_AUTHENTICATED)
            fail_connection(c, "protocol error: %s", "PUBLISH from broker before INFO");
        else
            handle_publish(c, m);
        break;
    default:
        fail_connection(c, "protocol error: unexpected %s frame from broker", wire_op_name(m->op));
        break;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct hpfc_client *c = arg;
    if (bev != c->bev)
        return;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->busy++;
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail < 4)
            break;
        uint8_t hdr[WIRE_HEADER_LEN];
        size_t hn = avail < sizeof hdr ? avail : sizeof hdr;
        evbuffer_copyout(in, hdr, hn);

        struct wire_msg m;
        char reason[128];
        const char *err = NULL;
        /* The header alone already tells a bad length or opcode. */
        if (wire_decode(hdr, hn, c->max_frame, &m, reason, sizeof reason, &err) == WIRE_INVALID) {
            fail_connection(c, "protocol error: %s", err);
            break;
        }
        if (hn < sizeof hdr)
            break;
        uint32_t flen = wire_peek_length(hdr);
        if (avail < flen)
            break;
        const uint8_t *p = evbuffer_pullup(in, flen);
        if (!p) {
            fail_connection(c, "%s", "out of memory");
            break;
        }
        if (wire_decode(p, flen, c->max_frame, &m, reason, sizeof reason, &err) != WIRE_FRAME) {
            fail_connection(c, "protocol error: %s", err ? err : "truncated frame");
            break;
        }
        handle_frame(c, &m);
        /* A callback may have freed the client or replaced the connection. */
        if (c->free_requested || c->bev != bev)
            break;
        evbuffer_drain(in, flen);
    }
    c->busy--;
    maybe_destroy(c);
}

/* ---- public API ---- */

struct hpfc_client *hpfc_client_new(struct event_base *base, const char *host, uint16_t port,
                                    const char *ident, const char *secret,
                                    const struct hpfc_callbacks *cbs, void *user_data)
{
    size_t ident_len;
    if (!base || !host || !*host || port == 0 || !valid_name(ident, &ident_len) || !secret)
        return NULL;
    struct hpfc_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    c->port = port;
    c->ident_len = ident_len;
    c->secret_len = strlen(secret);
    if (cbs)
        c->cbs = *cbs;
    c->user_data = user_data;
    c->state = HPFC_STATE_DISCONNECTED;
    c->mirror_valid = true;
    c->reconnect = true;
    c->min_ms = HPFC_DEFAULT_RECONNECT_MIN_MS;
    c->max_ms = HPFC_DEFAULT_RECONNECT_MAX_MS;
    c->backoff_ms = c->min_ms;
    c->queue_limit = HPFC_DEFAULT_QUEUE_LIMIT;
    c->max_frame = HPFC_DEFAULT_MAX_FRAME;
    c->connect_timeout_ms = HPFC_DEFAULT_CONNECT_TIMEOUT_MS;

    c->host = strdup(host);
    c->ident = strdup(ident);
    c->secret = strdup(secret);
    c->pending = evbuffer_new();
    c->mirror = evbuffer_new();
    c->scratch = evbuffer_new();
    c->retry_ev = evtimer_new(base, on_retry, c);
    if (!c->host || !c->ident || !c->secret || !c->pending || !c->mirror || !c->scratch ||
        !c->retry_ev) {
        destroy(c);
        return NULL;
    }
    return c;
}

static void destroy(struct hpfc_client *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->retry_ev)
        event_free(c->retry_ev);
    if (c->pending)
        evbuffer_free(c->pending);
    if (c->mirror)
        evbuffer_free(c->mirror);
    if (c->scratch)
        evbuffer_free(c->scratch);
    for (size_t i = 0; i < c->n_subs; i++)
        free(c->subs[i]);
    free(c->subs);
    if (c->secret) {
        OPENSSL_cleanse(c->secret, c->secret_len);
        free(c->secret);
    }
    free(c->ident);
    free(c->host);
    free(c->broker_name);
    SSL_CTX_free(c->tls_ctx);
    failover_free(c);
    free(c);
}

void hpfc_free(struct hpfc_client *c)
{
    if (!c)
        return;
    c->free_requested = true;
    maybe_destroy(c);
}

void hpfc_set_reconnect(struct hpfc_client *c, bool enable, uint32_t min_ms, uint32_t max_ms)
{
    if (!c)
        return;
    c->reconnect = enable;
    if (min_ms)
        c->min_ms = min_ms;
    if (max_ms)
        c->max_ms = max_ms;
    if (c->max_ms < c->min_ms)
        c->max_ms = c->min_ms;
    c->backoff_ms = c->min_ms;
    if (!enable)
        evtimer_del(c->retry_ev);
}

void hpfc_set_queue_limit(struct hpfc_client *c, size_t bytes)
{
    if (!c)
        return;
    if (bytes == 0)
        bytes = HPFC_DEFAULT_QUEUE_LIMIT;
    c->queue_limit = bytes > QUEUE_LIMIT_MAX ? QUEUE_LIMIT_MAX : bytes;
}

void hpfc_set_max_frame(struct hpfc_client *c, uint32_t bytes)
{
    if (c)
        c->max_frame = bytes < WIRE_HEADER_LEN ? HPFC_DEFAULT_MAX_FRAME : bytes;
}

void hpfc_set_connect_timeout(struct hpfc_client *c, uint32_t ms)
{
    if (c)
        c->connect_timeout_ms = ms ? ms : HPFC_DEFAULT_CONNECT_TIMEOUT_MS;
}

int hpfc_set_tls(struct hpfc_client *c, bool enable, const char *cafile)
{
    if (!c || (cafile && !*cafile))
        return HPFC_ERR_INVALID;
    SSL_CTX *ctx = NULL;
    if (enable) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
            return HPFC_ERR_NOMEM;
        bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
                  (cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
                          : SSL_CTX_set_default_verify_paths(ctx)) == 1;
        if (!ok) {
            SSL_CTX_free(ctx);
            ERR_clear_error();
            return HPFC_ERR_TLS;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    }
    SSL_CTX_free(c->tls_ctx);
    c->tls_ctx = ctx;
    return HPFC_OK;
}

int hpfc_connect(struct hpfc_client *c)
{
    if (!c || c->free_requested)
        return HPFC_ERR_INVALID;
    if (c->bev)
        return HPFC_OK;
    evtimer_del(c->retry_ev);
    int rc = start_connection(c);
    c->want_connected = rc == HPFC_OK;
    return rc;
}

void hpfc_disconnect(struct hpfc_client *c)
{
    if (!c)
        return;
    c->want_connected = false;
    evtimer_del(c->retry_ev);
    c->backoff_ms = c->min_ms;
    /* Nothing is lost here unless memory ran out, and then there is nobody
     * to tell: this call promises no callback. */
    (void)drop_connection(c);
}

static ssize_t find_sub(const struct hpfc_client *c, const char *chan)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i], chan) == 0)
            return (ssize_t)i;
    return -1;
}

int hpfc_subscribe(struct hpfc_client *c, const char *channel)
{
    size_t len;
    if (!c || !valid_name(channel, &len))
        return HPFC_ERR_INVALID;
    if (find_sub(c, channel) >= 0)
        return HPFC_OK;
    if (c->n_subs == c->cap_subs) {
        size_t cap = c->cap_subs ? c->cap_subs * 2 : 4;
        char **subs = realloc(c->subs, cap * sizeof *subs);
        if (!subs)
            return HPFC_ERR_NOMEM;
        c->subs = subs;
        c->cap_subs = cap;
    }
    char *copy = strdup(channel);
    if (!copy)
        return HPFC_ERR_NOMEM;
    if (c->state == HPFC_STATE_AUTHENTICATED) {
        int rc = send_sub(c, WIRE_OP_SUBSCRIBE, channel, len);
        if (rc != HPFC_OK) {
            free(copy);
            return rc;
        }
    }
    c->subs[c->n_subs++] = copy;
    return HPFC_OK;
}

int hpfc_unsubscribe(struct hpfc_client *c, const char *channel)
{
    size_t len;
    if (!c || !valid_name(channel, &len))
        return HPFC_ERR_INVALID;
    ssize_t i = find_sub(c, channel);
    if (i < 0)
        return HPFC_OK;
    if (c->state == HPFC_STATE_AUTHENTICATED) {
        int rc = send_sub(c, WIRE_OP_UNSUBSCRIBE, channel, len);
        if (rc != HPFC_OK)
            return rc;
    }
    free(c->subs[i]);
    memmove(&c->subs[i], &c->subs[i + 1], (c->n_subs - (size_t)i - 1) * sizeof *c->subs);
    c->n_subs--;
    return HPFC_OK;
}

int hpfc_publish(struct hpfc_client *c, const char *channel, const void *data, size_t len)
{
    size_t chan_len;
    if (!c || !valid_name(channel, &chan_len) || (!data && len))
        return HPFC_ERR_INVALID;
    size_t n = wire_encode_publish(NULL, 0, c->ident, c->ident_len, channel, chan_len, data, len);
    if (n == 0)
        return HPFC_ERR_INVALID;
    trim_mirror(c);
    size_t queued = hpfc_pending_bytes(c);
    if (n > c->queue_limit || queued > c->queue_limit - n)
        return HPFC_ERR_QUEUE_FULL;

    uint8_t *frame = malloc(n);
    if (!frame)
        return HPFC_ERR_NOMEM;
    wire_encode_publish(frame, n, c->ident, c->ident_len, channel, chan_len, data, len);
    int rc;
    if (c->state == HPFC_STATE_AUTHENTICATED)
        rc = send_frame(c, frame, n);
    else
        rc = evbuffer_add(c->pending, frame, n) < 0 ? HPFC_ERR_NOMEM : HPFC_OK;
    free(frame);
    return rc;
}

enum hpfc_state hpfc_state(const struct hpfc_client *c)
{
    return c ? c->state : HPFC_STATE_DISCONNECTED;
}

size_t hpfc_pending_bytes(const struct hpfc_client *c)
{
    return c ? evbuffer_get_length(c->pending) + output_len(c) : 0;
}

const char *hpfc_broker_name(const struct hpfc_client *c) { return c ? c->broker_name : NULL; }

/* ---- several brokers: failover ---- */

static void failover_free(struct hpfc_client *c)
{
    for (size_t i = 0; i < c->n_brokers; i++)
        free(c->brokers[i].host);
    free(c->brokers);
    c->brokers = NULL;
    c->n_brokers = 0;
}

/* The connection was lost or never came up: the next attempt goes to the
 * next broker of the list, round robin. */
static void failover_next(struct hpfc_client *c)
{
    if (c->n_brokers < 2)
        return;
    size_t next = (c->broker_idx + 1) % c->n_brokers;
    char *host = strdup(c->brokers[next].host);
    if (!host)
        return; /* out of memory: stay with the current one */
    free(c->host);
    c->host = host;
    c->port = c->brokers[next].port;
    c->broker_idx = next;
}

static int failover_append(struct hpfc_client *c, const char *host, uint16_t port)
{
    struct hpfc_addr *grown = realloc(c->brokers, (c->n_brokers + 1) * sizeof *grown);
    if (!grown)
        return HPFC_ERR_NOMEM;
    c->brokers = grown;
    char *h = strdup(host);
    if (!h)
        return HPFC_ERR_NOMEM;
    c->brokers[c->n_brokers].host = h;
    c->brokers[c->n_brokers].port = port;
    c->n_brokers++;
    return HPFC_OK;
}

int hpfc_add_broker(struct hpfc_client *c, const char *host, uint16_t port)
{
    if (!c || !host || !*host || port == 0)
        return HPFC_ERR_INVALID;
    /* The broker given to hpfc_client_new() is the first of the list. */
    if (c->n_brokers == 0 && failover_append(c, c->host, c->port) != HPFC_OK)
        return HPFC_ERR_NOMEM;
    int rc = failover_append(c, host, port);
    if (rc != HPFC_OK && c->n_brokers == 1)
        failover_free(c);
    return rc;
}

const char *hpfc_current_host(const struct hpfc_client *c, uint16_t *port)
{
    if (port)
        *port = c->port;
    return c->host;
}
