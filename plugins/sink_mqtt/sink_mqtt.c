/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sink_mqtt: publishes each accepted message to an MQTT broker (libmosquitto),
 * on a topic built from a template (`hpfeeds/{channel}`, with {owner} and
 * {ident}), QoS 0 or 1, retain off, in the record format `format` names
 * (raw payload by default; see plugins/common/sink_format.h).
 *
 * Three threads touch an instance.  The broker's sink thread calls
 * message(): it builds topic and body and appends them to a bounded FIFO
 * (`max_queued` messages and `max_queued_bytes` of topics and bodies; a full
 * FIFO drops the new message, counts it and says so, rate-limited).  A
 * message over `max_message_size` is dropped there too: a server that
 * refuses a packet disconnects, and the message would be sent again at
 * every reconnect.  The client speaks MQTT v5 so that libmosquitto learns
 * the server's Maximum Packet Size from CONNACK and refuses to publish a
 * larger message (MOSQ_ERR_OVERSIZE_PACKET: dropped, counted, logged)
 * instead of sending it.  A publisher thread of our own takes from the FIFO
 * whenever the MQTT connection is up and fewer than MAX_INFLIGHT messages
 * are unacknowledged, and is the only caller of mosquitto_publish(), so
 * order is kept.  libmosquitto's network thread (mosquitto_loop_start)
 * connects, reconnects with exponential back-off, and calls back on
 * connect, disconnect and publish; the callbacks only change state under
 * `lock` and signal `cond`, never calling back into libmosquitto, so no
 * lock is ever held across a libmosquitto call.  While the broker is away
 * the FIFO holds what arrives; QoS 1 messages libmosquitto had not got
 * acknowledged are sent again after the reconnect, QoS 0 messages it had
 * queued but not written are lost and counted as dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <mosquitto.h>

#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#include "../common/sink_format.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0"
#endif

#define MAX_INFLIGHT      1000
#define COMPLAIN_EVERY_US (10 * G_USEC_PER_SEC)
#define MAX_TOPIC         65535

struct out_msg {
    char *topic;
    GString *body;
    size_t size; /* topic and body: what it holds of max_queued_bytes */
};

struct mqtt_sink {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;

    /* configuration */
    char *server, *topic, *client_id, *username, *password;
    char *cafile, *capath, *certfile, *keyfile;
    bool tls;
    int protocol; /* MQTT_PROTOCOL_V5 or MQTT_PROTOCOL_V311 */
    uint64_t port, qos, keepalive, max_queued, max_queued_bytes, max_message_size, reconnect_min,
        reconnect_max, flush_timeout;
    enum sinkfmt_kind format;

    struct mosquitto *mosq;
    GThread *publisher;
    GString *topic_buf; /* sink thread only */

    GMutex lock; /* guards everything below */
    GCond cond;
    GQueue fifo;         /* struct out_msg * */
    uint64_t fifo_bytes; /* sum of the sizes in fifo */
    bool connected, quit;
    unsigned generation;  /* connections so far: a failed publish on an old one is stale */
    unsigned disconnects; /* disconnections so far (QoS 0 write-offs) */
    unsigned inflight;    /* handed to libmosquitto, not yet written (QoS 0) or acked (QoS 1) */
    uint64_t dropped, dropped_reported;
    int64_t last_complaint_us;
    int64_t last_refusal_us, last_liberr_us, last_pubfail_us; /* complaint rate limits */
    int64_t last_oversize_us;
};

static const char *const config_keys[] = {
    "host",
    "port",
    "topic",
    "qos",
    "format",
    "client_id",
    "username",
    "password",
    "tls",
    "cafile",
    "capath",
    "certfile",
    "keyfile",
    "keepalive",
    "protocol",
    "max_queued",
    "reconnect_min",
    "reconnect_max",
    "flush_timeout",
    "max_queued_bytes",
    "max_message_size",
    NULL,
};

/* ---- configuration (create(): pure) ---- */

static char *config_dup(struct mqtt_sink *m, const char *key, const char *def)
{
    const char *v = m->host->config_get(m->ctx, key);
    return g_strdup(v && *v ? v : def);
}

static char *config_path_dup(struct mqtt_sink *m, const char *key)
{
    char *p = m->host->config_path(m->ctx, key);
    char *out = p && *p ? g_strdup(p) : NULL;
    free(p);
    return out;
}

/* {channel}, {owner}, {ident} and literal text; anything else in braces is an error. */
static bool topic_template_ok(const char *t, char *err, size_t err_len)
{
    for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
        if (strncmp(p, "{channel}", 9) && strncmp(p, "{owner}", 7) && strncmp(p, "{ident}", 7)) {
            snprintf(err, err_len,
                     "topic: unknown placeholder at '%s' (expected {channel}, "
                     "{owner} or {ident})",
                     p);
            return false;
        }
    }
    if (!*t || strchr(t, '+') || strchr(t, '#')) {
        snprintf(err, err_len, "topic: '%s' is empty or holds a wildcard (+ or #)", t);
        return false;
    }
    return true;
}

static int read_numbers(struct mqtt_sink *m, char *err, size_t err_len)
{
    const struct hpf_host *h = m->host;
    if (h->config_uint(m->ctx, "port", 1, 65535, &m->port, err, err_len) ||
        h->config_uint(m->ctx, "qos", 0, 1, &m->qos, err, err_len) ||
        h->config_uint(m->ctx, "keepalive", 5, 3600, &m->keepalive, err, err_len) ||
        h->config_uint(m->ctx, "max_queued", 1, 10000000, &m->max_queued, err, err_len) ||
        h->config_size(m->ctx, "max_queued_bytes", 1024, UINT64_C(1) << 40, &m->max_queued_bytes,
                       err, err_len) ||
        h->config_size(m->ctx, "max_message_size", 16, 268435455, &m->max_message_size, err,
                       err_len) ||
        h->config_uint(m->ctx, "reconnect_min", 1, 3600, &m->reconnect_min, err, err_len) ||
        h->config_uint(m->ctx, "reconnect_max", 1, 3600, &m->reconnect_max, err, err_len) ||
        h->config_uint(m->ctx, "flush_timeout", 0, 3600, &m->flush_timeout, err, err_len) ||
        h->config_bool(m->ctx, "tls", &m->tls, err, err_len))
        return HPF_ERR_INVALID;
    if (m->reconnect_max < m->reconnect_min)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "reconnect_max: %" PRIu64 " is less than reconnect_min (%" PRIu64 ")",
                             m->reconnect_max, m->reconnect_min);
    return HPF_OK;
}

static int read_strings(struct mqtt_sink *m, char *err, size_t err_len)
{
    const char *proto = m->host->config_get(m->ctx, "protocol");
    if (proto && *proto && strcmp(proto, "5") && strcmp(proto, "3.1.1"))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "protocol: expected 5 or 3.1.1, got '%s'", proto);
    m->protocol = proto && !strcmp(proto, "3.1.1") ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5;
    const char *fmt = m->host->config_get(m->ctx, "format");
    if (fmt && !sinkfmt_parse(fmt, &m->format))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "format: expected raw, normalized, cef or splunk, got '%s'", fmt);
    m->server = config_dup(m, "host", "127.0.0.1");
    m->topic = config_dup(m, "topic", "hpfeeds/{channel}");
    m->client_id = config_dup(m, "client_id", NULL);
    m->username = config_dup(m, "username", NULL);
    m->password = config_dup(m, "password", NULL);
    m->cafile = config_path_dup(m, "cafile");
    m->capath = config_path_dup(m, "capath");
    m->certfile = config_path_dup(m, "certfile");
    m->keyfile = config_path_dup(m, "keyfile");
    if (!topic_template_ok(m->topic, err, err_len))
        return HPF_ERR_INVALID;
    if (m->password && !m->username)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "password: set without username");
    if (!m->certfile != !m->keyfile)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "certfile and keyfile: set both or neither");
    if (!m->tls && (m->cafile || m->capath || m->certfile))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "cafile, capath, certfile: need tls = true");
    return HPF_OK;
}

static void mqtt_destroy(void *instance);

static int mqtt_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                       void **instance, char *err, size_t err_len)
{
    struct mqtt_sink *m = g_new0(struct mqtt_sink, 1);
    m->host = host;
    m->ctx = ctx;
    m->port = 1883;
    m->qos = 0;
    m->keepalive = 60;
    m->max_queued = 100000;
    m->max_queued_bytes = UINT64_C(64) << 20;
    m->max_message_size = 256 * 1024;
    m->reconnect_min = 1;
    m->reconnect_max = 30;
    m->flush_timeout = 5;
    m->format = SINKFMT_RAW;
    g_mutex_init(&m->lock);
    g_cond_init(&m->cond);
    g_queue_init(&m->fifo);
    int rc = read_numbers(m, err, err_len);
    if (rc == HPF_OK)
        rc = read_strings(m, err, err_len);
    if (rc != HPF_OK) {
        mqtt_destroy(m);
        return rc;
    }
    if (m->tls && !m->cafile && !m->capath)
        m->capath = g_strdup("/etc/ssl/certs"); /* the system's trust store */
    m->topic_buf = g_string_sized_new(128);
    *instance = m;
    return HPF_OK;
}

/* ---- libmosquitto's thread: callbacks ---- */

/* True at most once a minute per *last: for complaints repeated at every retry. */
static bool complaint_due(struct mqtt_sink *m, int64_t *last)
{
    int64_t now = g_get_monotonic_time();
    g_mutex_lock(&m->lock);
    bool due = !*last || now - *last >= 60 * G_USEC_PER_SEC;
    if (due)
        *last = now;
    g_mutex_unlock(&m->lock);
    return due;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct mqtt_sink *m = obj;
    if (rc != 0) {
        if (complaint_due(m, &m->last_refusal_us))
            m->host->log(m->ctx, HPF_LOG_WARNING,
                         "mqtt broker %s:%" PRIu64 " refused: %s; retrying", m->server, m->port,
                         m->protocol == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(rc)
                                                         : mosquitto_connack_string(rc));
        return;
    }
    g_mutex_lock(&m->lock);
    m->connected = true;
    m->generation++;
    uint64_t dropped = m->dropped;
    guint queued = m->fifo.length;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    m->host->log(m->ctx, HPF_LOG_NOTICE,
                 "connected to %s:%" PRIu64 " (%u queued, %" PRIu64 " dropped in all)", m->server,
                 m->port, queued, dropped);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    struct mqtt_sink *m = obj;
    g_mutex_lock(&m->lock);
    bool was = m->connected;
    m->connected = false;
    uint64_t lost = 0;
    if (m->qos == 0) {
        /* QoS 0 packets not yet written are discarded at the reconnect. */
        lost = m->inflight;
        m->dropped += lost;
        m->inflight = 0;
    }
    m->disconnects++;
    bool quitting = m->quit;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    if (was && !quitting)
        m->host->log(m->ctx, HPF_LOG_WARNING,
                     "disconnected from %s:%" PRIu64 ": %s (%" PRIu64 " unsent messages lost); "
                     "reconnecting",
                     m->server, m->port, rc ? mosquitto_strerror(rc) : "closed", lost);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    struct mqtt_sink *m = obj;
    g_mutex_lock(&m->lock);
    if (m->inflight > 0)
        m->inflight--;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
}

/* libmosquitto's own errors (a TLS handshake that fails, ...): otherwise silent. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *text)
{
    struct mqtt_sink *m = obj;
    if ((level & MOSQ_LOG_ERR) && complaint_due(m, &m->last_liberr_us))
        m->host->log(m->ctx, HPF_LOG_WARNING, "mqtt %s:%" PRIu64 ": %s", m->server, m->port, text);
}

/* ---- the publisher thread ---- */

static void out_msg_free(struct out_msg *o)
{
    g_free(o->topic);
    g_string_free(o->body, TRUE);
    g_free(o);
}

/*
 * Hands one message to libmosquitto; false when it must wait for a
 * connection.  gen and disc: the connection and disconnection counts when
 * it was taken from the FIFO.
 */
static bool publish_one(struct mqtt_sink *m, struct out_msg *o, unsigned gen, unsigned disc)
{
    int rc = mosquitto_publish(m->mosq, NULL, o->topic, (int)o->body->len, o->body->str,
                               (int)m->qos, false);
    if (rc == MOSQ_ERR_SUCCESS) {
        out_msg_free(o);
        return true;
    }
    g_mutex_lock(&m->lock);
    /* A disconnect since it was taken wrote it off (QoS 0) or kept it in the window. */
    bool written_off = m->qos == 0 && m->disconnects != disc;
    if (!written_off && m->inflight > 0)
        m->inflight--;
    if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
        if (written_off && m->dropped > 0)
            m->dropped--;               /* not lost after all: queued again */
        g_queue_push_head(&m->fifo, o); /* keep the order; try again once connected */
        m->fifo_bytes += o->size;
        if (m->generation == gen)
            m->connected = false;
        o = NULL;
    } else if (!written_off) {
        m->dropped++;
    }
    uint64_t total = m->dropped;
    g_mutex_unlock(&m->lock);
    if (o) {
        if (complaint_due(m, &m->last_pubfail_us))
            m->host->log(m->ctx, HPF_LOG_WARNING,
                         "publish on %s failed: %s: dropped (%" PRIu64 " dropped in all)", o->topic,
                         mosquitto_strerror(rc), total);
        out_msg_free(o);
    }
    return rc == MOSQ_ERR_SUCCESS;
}

static void *publisher_main(void *arg)
{
    struct mqtt_sink *m = arg;
    g_mutex_lock(&m->lock);
    for (;;) {
        while (!m->quit && !(m->connected && m->fifo.length && m->inflight < MAX_INFLIGHT))
            g_cond_wait(&m->cond, &m->lock);
        if (m->quit)
            break;
        struct out_msg *o = g_queue_pop_head(&m->fifo);
        m->fifo_bytes -= o->size;
        unsigned gen = m->generation, disc = m->disconnects;
        m->inflight++;
        g_cond_broadcast(&m->cond); /* room in the FIFO; flush() may be waiting */
        g_mutex_unlock(&m->lock);
        publish_one(m, o, gen, disc);
        g_mutex_lock(&m->lock);
    }
    g_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- start, message, flush, destroy ---- */

static int configure_client(struct mqtt_sink *m, char *err, size_t err_len)
{
    int rc = MOSQ_ERR_SUCCESS;
    if (m->username)
        rc = mosquitto_username_pw_set(m->mosq, m->username, m->password);
    if (rc == MOSQ_ERR_SUCCESS && m->tls) {
        rc = mosquitto_tls_set(m->mosq, m->cafile, m->capath, m->certfile, m->keyfile, NULL);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_tls_opts_set(m->mosq, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_tls_insecure_set(m->mosq, false);
    }
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_reconnect_delay_set(m->mosq, (unsigned)m->reconnect_min,
                                           (unsigned)m->reconnect_max, true);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_max_inflight_messages_set(m->mosq, MAX_INFLIGHT);
    /* v5: the server's Maximum Packet Size reaches libmosquitto, which then refuses larger. */
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, m->protocol);
    if (rc != MOSQ_ERR_SUCCESS)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "mqtt client set-up failed: %s",
                             mosquitto_strerror(rc));
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
    mosquitto_publish_callback_set(m->mosq, on_publish);
    mosquitto_log_callback_set(m->mosq, on_log);
    return HPF_OK;
}

static int mqtt_start(void *instance, char *err, size_t err_len)
{
    struct mqtt_sink *m = instance;
    mosquitto_lib_init();
    m->mosq = mosquitto_new(m->client_id, true, m);
    if (!m->mosq)
        return hpf_set_error(err, err_len, HPF_ERR_NOMEM, "mosquitto_new failed: %s",
                             g_strerror(errno));
    int rc = configure_client(m, err, err_len);
    if (rc != HPF_OK)
        return rc;
    /* A broker that is down now is not a start-up error: the loop keeps trying. */
    int crc = mosquitto_connect_async(m->mosq, m->server, (int)m->port, (int)m->keepalive);
    if (crc != MOSQ_ERR_SUCCESS)
        m->host->log(m->ctx, HPF_LOG_WARNING,
                     "mqtt broker %s:%" PRIu64 " not reachable yet: %s; will keep trying",
                     m->server, m->port,
                     crc == MOSQ_ERR_ERRNO ? g_strerror(errno) : mosquitto_strerror(crc));
    if ((crc = mosquitto_loop_start(m->mosq)) != MOSQ_ERR_SUCCESS)
        return hpf_set_error(err, err_len, HPF_ERR_IO, "mqtt network thread: %s",
                             mosquitto_strerror(crc));
    m->publisher = g_thread_new("sink_mqtt", publisher_main, m);
    return HPF_OK;
}

/*
 * Appends `s` to the topic as valid UTF-8, with MQTT's wildcards (+ #) and
 * control characters (which brokers refuse in topics) made '_'.
 */
static void append_topic_part(GString *t, const char *s)
{
    char *valid = g_utf8_make_valid(s ? s : "", -1);
    for (char *p = valid; *p; p++) {
        unsigned char c = (unsigned char)*p;
        g_string_append_c(t, (c == '+' || c == '#' || c < 0x20 || c == 0x7f) ? '_' : *p);
    }
    g_free(valid);
}

static void build_topic(struct mqtt_sink *m, const struct hpf_message *msg)
{
    GString *t = m->topic_buf;
    g_string_truncate(t, 0);
    for (const char *p = m->topic; *p;) {
        if (!strncmp(p, "{channel}", 9)) {
            append_topic_part(t, msg->channel);
            p += 9;
        } else if (!strncmp(p, "{owner}", 7)) {
            append_topic_part(t, msg->owner);
            p += 7;
        } else if (!strncmp(p, "{ident}", 7)) {
            append_topic_part(t, msg->ident);
            p += 7;
        } else {
            g_string_append_c(t, *p++);
        }
    }
    if (t->len > MAX_TOPIC)
        g_string_truncate(t, MAX_TOPIC);
}

/* Logs drops at most every COMPLAIN_EVERY_US; called with the lock held. */
static bool drop_report_due(struct mqtt_sink *m, uint64_t *held)
{
    int64_t now = g_get_monotonic_time();
    if (m->last_complaint_us && now - m->last_complaint_us < COMPLAIN_EVERY_US)
        return false;
    *held = m->dropped - m->dropped_reported;
    m->dropped_reported = m->dropped;
    m->last_complaint_us = now;
    return true;
}

static struct out_msg *make_msg(struct mqtt_sink *m, const struct hpf_message *msg)
{
    struct out_msg *o = g_new(struct out_msg, 1);
    build_topic(m, msg);
    o->topic = g_strndup(m->topic_buf->str, m->topic_buf->len);
    o->body = g_string_sized_new(msg->payload_len + 64);
    sinkfmt_append(o->body, m->format, msg);
    o->size = m->topic_buf->len + o->body->len;
    return o;
}

/* A message no server would take: dropped before it can block the queue. */
static int drop_oversize(struct mqtt_sink *m, struct out_msg *o)
{
    g_mutex_lock(&m->lock);
    uint64_t total = ++m->dropped;
    g_mutex_unlock(&m->lock);
    if (complaint_due(m, &m->last_oversize_us))
        m->host->log(m->ctx, HPF_LOG_WARNING,
                     "message of %zu bytes on %s is larger than max_message_size (%" PRIu64
                     "): dropped (%" PRIu64 " dropped in all)",
                     o->body->len, o->topic, m->max_message_size, total);
    out_msg_free(o);
    return HPF_ERR_UNAVAILABLE;
}

static int mqtt_message(void *instance, const struct hpf_message *msg)
{
    struct mqtt_sink *m = instance;
    /* Formatted first: the byte bound needs its size. */
    struct out_msg *o = make_msg(m, msg);
    if (o->body->len > m->max_message_size)
        return drop_oversize(m, o);
    g_mutex_lock(&m->lock);
    bool full = m->fifo.length >= m->max_queued || m->fifo_bytes + o->size > m->max_queued_bytes,
         connected = m->connected;
    uint64_t held = 0, total = 0, bytes = m->fifo_bytes;
    guint count = m->fifo.length;
    bool report = false;
    if (full) {
        m->dropped++;
        total = m->dropped;
        report = drop_report_due(m, &held);
    } else {
        g_queue_push_tail(&m->fifo, o);
        m->fifo_bytes += o->size;
        g_cond_broadcast(&m->cond);
    }
    g_mutex_unlock(&m->lock);
    if (!full)
        return HPF_OK;
    if (report)
        m->host->log(m->ctx, HPF_LOG_WARNING,
                     "queue full (%u messages, %" PRIu64 " bytes; max_queued %" PRIu64
                     ", max_queued_bytes %" PRIu64 "; broker %s): dropping; %" PRIu64
                     " dropped since the last report, %" PRIu64 " in all",
                     count, bytes, m->max_queued, m->max_queued_bytes, connected ? "slow" : "away",
                     held, total);
    out_msg_free(o);
    return HPF_ERR_UNAVAILABLE;
}

/* Shutdown: wait up to flush_timeout for the FIFO and the in-flight window to drain. */
static int mqtt_flush(void *instance)
{
    struct mqtt_sink *m = instance;
    int64_t deadline = g_get_monotonic_time() + (int64_t)m->flush_timeout * G_USEC_PER_SEC;
    g_mutex_lock(&m->lock);
    while ((m->fifo.length || m->inflight) && m->connected &&
           g_cond_wait_until(&m->cond, &m->lock, deadline))
        ;
    guint left = m->fifo.length + m->inflight;
    g_mutex_unlock(&m->lock);
    if (left)
        m->host->log(m->ctx, HPF_LOG_WARNING, "flush: %u messages not delivered to %s:%" PRIu64,
                     left, m->server, m->port);
    return left ? HPF_ERR_UNAVAILABLE : HPF_OK;
}

static void mqtt_destroy(void *instance)
{
    struct mqtt_sink *m = instance;
    if (!m)
        return;
    if (m->publisher) {
        g_mutex_lock(&m->lock);
        m->quit = true;
        g_cond_broadcast(&m->cond);
        g_mutex_unlock(&m->lock);
        g_thread_join(m->publisher);
    }
    if (m->mosq) {
        mosquitto_disconnect(m->mosq);
        mosquitto_loop_stop(m->mosq, false);
        mosquitto_destroy(m->mosq);
        mosquitto_lib_cleanup();
    }
    g_queue_clear_full(&m->fifo, (GDestroyNotify)out_msg_free);
    if (m->topic_buf)
        g_string_free(m->topic_buf, TRUE);
    g_free(m->server);
    g_free(m->topic);
    g_free(m->client_id);
    g_free(m->username);
    g_free(m->password);
    g_free(m->cafile);
    g_free(m->capath);
    g_free(m->certfile);
    g_free(m->keyfile);
    g_mutex_clear(&m->lock);
    g_cond_clear(&m->cond);
    g_free(m);
}

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES,
    .message = mqtt_message,
    .flush = mqtt_flush,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "sink_mqtt",
    .version = PLUGIN_VERSION,
    .description = "messages to an MQTT broker (libmosquitto), raw or normalized, QoS 0/1",
    .kinds = HPF_KIND_SINK,
    .config_keys = config_keys,
    .create = mqtt_create,
    .start = mqtt_start,
    .destroy = mqtt_destroy,
    .sink = &sink_ops,
};

HPF_PLUGIN_DEFINE(plugin)
