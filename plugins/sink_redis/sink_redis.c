/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sink_redis: appends each accepted message to a Redis stream (hiredis):
 * `XADD KEY MAXLEN ~ N * time T ident I owner O channel C payload P`, where
 * KEY comes from a template (`hpfeeds:{channel}`: a stream per channel, or
 * a fixed name: one stream) and P is the record `format` names (the raw
 * payload bytes by default; `record` instead of `payload` for the other
 * formats).  MAXLEN ~ keeps each stream near its bound at little cost.
 *
 * The broker's sink thread formats into a bounded FIFO (`max_queued`
 * entries, counting those being written: a full FIFO drops the new entry,
 * counts it and says so, rate-limited).  A writer thread of our own owns the
 * connection: it takes up to `batch` entries, pipelines their XADDs and
 * reads the replies.  When the connection fails, the entries whose replies
 * did not come back go to the head of the FIFO again (sent twice at worst,
 * never lost while they fit), and the writer reconnects with a back-off
 * doubling from reconnect_min to reconnect_max.  No lock is held across
 * network I/O.  Debian 12's hiredis (0.14) has no TLS: reach a remote Redis
 * through a TLS tunnel.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <hiredis/hiredis.h>

#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#include "../common/sink_format.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0"
#endif

#define COMPLAIN_EVERY_US (10 * G_USEC_PER_SEC)
#define MAX_KEY           4096
#define XADD_ARGS         16 /* XADD key MAXLEN ~ N * and five field-value pairs */

struct entry {
    char *key;
    char *fields[5]; /* time, ident, owner, channel: text; the body */
    size_t body_len;
    size_t size; /* key and fields: what it holds of max_queued_bytes */
};

struct redis_sink {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;

    /* configuration */
    char *server, *stream, *username, *password;
    uint64_t port, db, maxlen, batch, max_queued, max_queued_bytes, reconnect_min, reconnect_max,
        timeout, flush_timeout;
    enum sinkfmt_kind format;

    GThread *writer;
    redisContext *rc; /* writer thread only */
    GString *key_buf; /* sink thread only */

    GMutex lock; /* guards everything below */
    GCond cond;
    GQueue fifo;           /* struct entry * */
    unsigned inflight;     /* taken by the writer, reply not yet read */
    uint64_t queued_bytes; /* sizes of the entries in fifo and in flight */
    bool connected, quit;
    uint64_t dropped, dropped_reported, written;
    int64_t last_complaint_us;
    int64_t last_refusal_us, last_oom_us; /* writer thread only */
    uint64_t refused;                     /* writer thread only: entries Redis refused */
};

static const char *const config_keys[] = {
    "host",    "port",          "stream",           "maxlen",
    "format",  "username",      "password",         "db",
    "batch",   "max_queued",    "reconnect_min",    "reconnect_max",
    "timeout", "flush_timeout", "max_queued_bytes", NULL,
};

/* ---- configuration (create(): pure) ---- */

static char *config_dup(struct redis_sink *r, const char *key, const char *def)
{
    const char *v = r->host->config_get(r->ctx, key);
    return g_strdup(v && *v ? v : def);
}

static bool stream_template_ok(const char *t, char *err, size_t err_len)
{
    for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
        if (strncmp(p, "{channel}", 9) && strncmp(p, "{owner}", 7) && strncmp(p, "{ident}", 7)) {
            snprintf(err, err_len,
                     "stream: unknown placeholder at '%s' (expected {channel}, {owner} or "
                     "{ident})",
                     p);
            return false;
        }
    }
    if (!*t || strlen(t) > 256) {
        snprintf(err, err_len, "stream: expected 1 to 256 characters");
        return false;
    }
    return true;
}

static int read_config(struct redis_sink *r, char *err, size_t err_len)
{
    const struct hpf_host *h = r->host;
    const struct hpf_plugin_ctx *c = r->ctx;
    if (h->config_uint(c, "port", 1, 65535, &r->port, err, err_len) ||
        h->config_uint(c, "db", 0, 65535, &r->db, err, err_len) ||
        h->config_uint(c, "maxlen", 0, UINT32_MAX, &r->maxlen, err, err_len) ||
        h->config_uint(c, "batch", 1, 10000, &r->batch, err, err_len) ||
        h->config_uint(c, "max_queued", 1, 10000000, &r->max_queued, err, err_len) ||
        h->config_size(c, "max_queued_bytes", 1024, UINT64_C(1) << 40, &r->max_queued_bytes, err,
                       err_len) ||
        h->config_uint(c, "reconnect_min", 1, 3600, &r->reconnect_min, err, err_len) ||
        h->config_uint(c, "reconnect_max", 1, 3600, &r->reconnect_max, err, err_len) ||
        h->config_uint(c, "timeout", 1, 3600, &r->timeout, err, err_len) ||
        h->config_uint(c, "flush_timeout", 0, 3600, &r->flush_timeout, err, err_len))
        return HPF_ERR_INVALID;
    if (r->reconnect_max < r->reconnect_min)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "reconnect_max: %" PRIu64 " is less than reconnect_min (%" PRIu64 ")",
                             r->reconnect_max, r->reconnect_min);
    const char *fmt = h->config_get(c, "format");
    if (fmt && !sinkfmt_parse(fmt, &r->format))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "format: expected raw, normalized, cef or splunk, got '%s'", fmt);
    r->server = config_dup(r, "host", "127.0.0.1");
    r->stream = config_dup(r, "stream", "hpfeeds:{channel}");
    r->username = config_dup(r, "username", NULL);
    r->password = config_dup(r, "password", NULL);
    if (!stream_template_ok(r->stream, err, err_len))
        return HPF_ERR_INVALID;
    if (r->username && !r->password)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "username: set without password");
    return HPF_OK;
}

static void redis_destroy(void *instance);

static int redis_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                        void **instance, char *err, size_t err_len)
{
    struct redis_sink *r = g_new0(struct redis_sink, 1);
    r->host = host;
    r->ctx = ctx;
    r->port = 6379;
    r->maxlen = 1000000;
    r->batch = 256;
    r->max_queued = 100000;
    r->max_queued_bytes = UINT64_C(64) << 20;
    r->reconnect_min = 1;
    r->reconnect_max = 30;
    r->timeout = 5;
    r->flush_timeout = 5;
    r->format = SINKFMT_RAW;
    g_mutex_init(&r->lock);
    g_cond_init(&r->cond);
    g_queue_init(&r->fifo);
    int rc = read_config(r, err, err_len);
    if (rc != HPF_OK) {
        redis_destroy(r);
        return rc;
    }
    r->key_buf = g_string_sized_new(64);
    *instance = r;
    return HPF_OK;
}

/* ---- the writer thread ---- */

static void entry_free(struct entry *e)
{
    g_free(e->key);
    for (size_t i = 0; i < G_N_ELEMENTS(e->fields); i++)
        g_free(e->fields[i]);
    g_free(e);
}

static void disconnect(struct redis_sink *r)
{
    if (r->rc)
        redisFree(r->rc);
    r->rc = NULL;
    g_mutex_lock(&r->lock);
    r->connected = false;
    g_mutex_unlock(&r->lock);
}

/* One command on a fresh connection (AUTH, SELECT); false with *why set. */
static bool setup_command(struct redis_sink *r, const char **why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = redisvCommand(r->rc, fmt, ap);
    va_end(ap);
    bool ok = reply && reply->type != REDIS_REPLY_ERROR;
    if (!ok) {
        static __thread char buf[256];
        snprintf(buf, sizeof buf, "%s", reply ? reply->str : r->rc->errstr);
        *why = buf;
    }
    if (reply)
        freeReplyObject(reply);
    return ok;
}

static bool try_connect(struct redis_sink *r, const char **why)
{
    struct timeval tv = {.tv_sec = (time_t)r->timeout};
    r->rc = redisConnectWithTimeout(r->server, (int)r->port, tv);
    if (!r->rc || r->rc->err) {
        static __thread char buf[256];
        snprintf(buf, sizeof buf, "%s", r->rc ? r->rc->errstr : "out of memory");
        *why = buf;
        if (r->rc)
            redisFree(r->rc);
        r->rc = NULL;
        return false;
    }
    redisSetTimeout(r->rc, tv);
    redisEnableKeepAlive(r->rc);
    bool ok = true;
    if (r->username)
        ok = setup_command(r, why, "AUTH %s %s", r->username, r->password);
    else if (r->password)
        ok = setup_command(r, why, "AUTH %s", r->password);
    if (ok && r->db)
        ok = setup_command(r, why, "SELECT %" PRIu64, r->db);
    if (!ok) {
        redisFree(r->rc);
        r->rc = NULL;
    }
    return ok;
}

/* Waits up to delay_us unless told to quit; true when quitting. */
static bool sleep_or_quit(struct redis_sink *r, int64_t delay_us)
{
    int64_t until = g_get_monotonic_time() + delay_us;
    g_mutex_lock(&r->lock);
    while (!r->quit && g_cond_wait_until(&r->cond, &r->lock, until))
        ;
    bool quit = r->quit;
    g_mutex_unlock(&r->lock);
    return quit;
}

/* Connects, retrying with back-off; false when told to quit first. */
static bool ensure_connected(struct redis_sink *r)
{
    int64_t delay = (int64_t)r->reconnect_min * G_USEC_PER_SEC;
    int64_t last_log = 0;
    while (!r->rc) {
        const char *why = "";
        if (try_connect(r, &why)) {
            g_mutex_lock(&r->lock);
            r->connected = true;
            uint64_t dropped = r->dropped;
            guint queued = r->fifo.length;
            g_mutex_unlock(&r->lock);
            r->host->log(r->ctx, HPF_LOG_NOTICE,
                         "connected to %s:%" PRIu64 " (%u queued, %" PRIu64 " dropped in all)",
                         r->server, r->port, queued, dropped);
            return true;
        }
        int64_t now = g_get_monotonic_time();
        if (!last_log || now - last_log >= 60 * G_USEC_PER_SEC) {
            r->host->log(r->ctx, HPF_LOG_WARNING,
                         "redis %s:%" PRIu64 " unavailable: %s; retrying (back-off up to "
                         "%" PRIu64 " s)",
                         r->server, r->port, why, r->reconnect_max);
            last_log = now;
        }
        if (sleep_or_quit(r, delay))
            return false;
        delay = MIN(delay * 2, (int64_t)r->reconnect_max * G_USEC_PER_SEC);
    }
    return true;
}

static void append_xadd(struct redis_sink *r, const struct entry *e)
{
    static const char *const names[] = {"time", "ident", "owner", "channel"};
    const char *argv[XADD_ARGS];
    size_t lens[XADD_ARGS];
    int n = 0;
    char maxlen[24];
    snprintf(maxlen, sizeof maxlen, "%" PRIu64, r->maxlen);
#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
    ARG("XADD", 4);
    ARG(e->key, strlen(e->key));
    if (r->maxlen) {
        ARG("MAXLEN", 6);
        ARG("~", 1);
        ARG(maxlen, strlen(maxlen));
    }
    ARG("*", 1);
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        ARG(names[i], strlen(names[i]));
        ARG(e->fields[i], strlen(e->fields[i]));
    }
    const char *body = r->format == SINKFMT_RAW ? "payload" : "record";
    ARG(body, strlen(body));
    ARG(e->fields[4], e->body_len);
#undef ARG
    redisAppendCommandArgv(r->rc, n, argv, lens);
}

/*
 * An XADD Redis refused: logged at most every COMPLAIN_EVERY_US (writer
 * thread), with the running total, as the broker's error count never sees
 * an entry dropped after it was accepted.
 */
static void complain_refused(struct redis_sink *r, const char *key, const char *why)
{
    r->refused++;
    int64_t now = g_get_monotonic_time();
    if (r->last_refusal_us && now - r->last_refusal_us < COMPLAIN_EVERY_US)
        return;
    r->last_refusal_us = now;
    r->host->log(r->ctx, HPF_LOG_WARNING,
                 "XADD to %s refused: %s: dropped (%" PRIu64 " refused in all)", key, why,
                 r->refused);
}

/* Out of memory (maxmemory, noeviction) passes: the entry is kept and sent again. */
static bool temporary_error(const redisReply *reply) { return !strncmp(reply->str, "OOM", 3); }

/* Puts back at the FIFO's head, in order, the kept entries then batch[from..]. */
static void requeue(struct redis_sink *r, GPtrArray *kept, GPtrArray *batch, guint from)
{
    for (guint i = batch->len; i > from; i--)
        g_queue_push_head(&r->fifo, batch->pdata[i - 1]);
    for (guint i = kept->len; i > 0; i--)
        g_queue_push_head(&r->fifo, kept->pdata[i - 1]);
}

/*
 * Writes one pipelined batch; on a connection error the unconfirmed
 * entries go back to the head of the FIFO, in order, and so do those Redis
 * could not take for lack of memory.  Returns the number of the latter.
 */
static guint write_batch(struct redis_sink *r, GPtrArray *batch, GPtrArray *kept)
{
    guint done = 0, refused = 0;
    uint64_t done_bytes = 0;
    const char *why = NULL;
    for (guint i = 0; i < batch->len; i++)
        append_xadd(r, batch->pdata[i]);
    for (; done < batch->len; done++) {
        struct entry *e = batch->pdata[done];
        redisReply *reply = NULL;
        if (redisGetReply(r->rc, (void **)&reply) != REDIS_OK) {
            why = r->rc->errstr[0] ? r->rc->errstr : "connection lost";
            break;
        }
        bool keep = reply->type == REDIS_REPLY_ERROR && temporary_error(reply);
        if (reply->type == REDIS_REPLY_ERROR && !keep) { /* e.g. WRONGTYPE: not retried */
            refused++;
            complain_refused(r, e->key, reply->str);
        }
        freeReplyObject(reply);
        if (keep) {
            g_ptr_array_add(kept, e);
            continue;
        }
        done_bytes += e->size;
        entry_free(e);
    }
    guint n_kept = kept->len;
    g_mutex_lock(&r->lock);
    requeue(r, kept, batch, done);
    r->inflight = 0;
    r->queued_bytes -= done_bytes;
    r->written += done - refused - n_kept;
    r->dropped += refused;
    g_cond_broadcast(&r->cond);
    g_mutex_unlock(&r->lock);
    g_ptr_array_set_size(kept, 0);
    if (why) {
        r->host->log(r->ctx, HPF_LOG_WARNING,
                     "connection to %s:%" PRIu64 " lost: %s (%u entries to send again); "
                     "reconnecting",
                     r->server, r->port, why, batch->len - done + n_kept);
        disconnect(r);
    }
    return n_kept;
}

/* After an OOM reply: waits, doubling from reconnect_min to reconnect_max; true: quit. */
static bool oom_backoff(struct redis_sink *r, guint kept, int64_t *delay)
{
    int64_t min = (int64_t)r->reconnect_min * G_USEC_PER_SEC;
    int64_t max = (int64_t)r->reconnect_max * G_USEC_PER_SEC;
    *delay = *delay ? MIN(*delay * 2, max) : min;
    int64_t now = g_get_monotonic_time();
    if (!r->last_oom_us || now - r->last_oom_us >= COMPLAIN_EVERY_US) {
        r->last_oom_us = now;
        r->host->log(r->ctx, HPF_LOG_WARNING,
                     "redis %s:%" PRIu64 " out of memory (OOM): %u entries kept, retrying in "
                     "%.1f s",
                     r->server, r->port, kept, (double)*delay / G_USEC_PER_SEC);
    }
    return sleep_or_quit(r, *delay);
}

static void *writer_main(void *arg)
{
    struct redis_sink *r = arg;
    GPtrArray *batch = g_ptr_array_new(), *kept = g_ptr_array_new();
    int64_t oom_delay = 0;
    for (;;) {
        g_mutex_lock(&r->lock);
        while (!r->quit && !r->fifo.length)
            g_cond_wait(&r->cond, &r->lock);
        bool quit = r->quit;
        g_mutex_unlock(&r->lock);
        if (quit || !ensure_connected(r))
            break;
        g_mutex_lock(&r->lock);
        while (r->fifo.length && batch->len < r->batch)
            g_ptr_array_add(batch, g_queue_pop_head(&r->fifo));
        r->inflight = batch->len;
        g_mutex_unlock(&r->lock);
        guint n_kept = write_batch(r, batch, kept);
        g_ptr_array_set_size(batch, 0);
        if (!n_kept)
            oom_delay = 0;
        else if (oom_backoff(r, n_kept, &oom_delay))
            break;
    }
    g_ptr_array_free(batch, TRUE);
    g_ptr_array_free(kept, TRUE);
    return NULL;
}

/* ---- start, message, flush, destroy ---- */

static int redis_start(void *instance, char *err, size_t err_len)
{
    struct redis_sink *r = instance;
    /* Connecting is the writer's job: a Redis that is down is not a start-up error. */
    r->writer = g_thread_new("sink_redis", writer_main, r);
    return HPF_OK;
}

static void build_key(struct redis_sink *r, const struct hpf_message *msg)
{
    GString *k = r->key_buf;
    g_string_truncate(k, 0);
    for (const char *p = r->stream; *p;) {
        if (!strncmp(p, "{channel}", 9)) {
            g_string_append(k, msg->channel ? msg->channel : "");
            p += 9;
        } else if (!strncmp(p, "{owner}", 7)) {
            g_string_append(k, msg->owner ? msg->owner : "");
            p += 7;
        } else if (!strncmp(p, "{ident}", 7)) {
            g_string_append(k, msg->ident ? msg->ident : "");
            p += 7;
        } else {
            g_string_append_c(k, *p++);
        }
    }
    if (k->len > MAX_KEY)
        g_string_truncate(k, MAX_KEY);
}

static struct entry *make_entry(struct redis_sink *r, const struct hpf_message *msg)
{
    struct entry *e = g_new0(struct entry, 1);
    build_key(r, msg);
    e->key = g_strndup(r->key_buf->str, r->key_buf->len);
    GString *t = g_string_new(NULL);
    sinkfmt_append_time(t, msg->time_us);
    e->fields[0] = g_string_free(t, FALSE);
    e->fields[1] = g_strdup(msg->ident ? msg->ident : "");
    e->fields[2] = g_strdup(msg->owner ? msg->owner : "");
    e->fields[3] = g_strdup(msg->channel ? msg->channel : "");
    GString *body = g_string_sized_new(msg->payload_len + 1);
    sinkfmt_append(body, r->format, msg);
    e->body_len = body->len;
    e->fields[4] = g_string_free(body, FALSE);
    e->size = r->key_buf->len + e->body_len;
    for (int i = 0; i < 4; i++)
        e->size += strlen(e->fields[i]);
    return e;
}

static int redis_message(void *instance, const struct hpf_message *msg)
{
    struct redis_sink *r = instance;
    /* Formatted first: the byte bound needs its size. */
    struct entry *e = make_entry(r, msg);
    g_mutex_lock(&r->lock);
    guint count = r->fifo.length + r->inflight;
    uint64_t bytes = r->queued_bytes, held = 0, total = 0;
    bool full = count >= r->max_queued || bytes + e->size > r->max_queued_bytes, report = false;
    if (full) {
        total = ++r->dropped;
        int64_t now = g_get_monotonic_time();
        if (!r->last_complaint_us || now - r->last_complaint_us >= COMPLAIN_EVERY_US) {
            held = r->dropped - r->dropped_reported;
            r->dropped_reported = r->dropped;
            r->last_complaint_us = now;
            report = true;
        }
    } else {
        g_queue_push_tail(&r->fifo, e);
        r->queued_bytes += e->size;
        g_cond_broadcast(&r->cond);
    }
    bool connected = r->connected;
    g_mutex_unlock(&r->lock);
    if (!full)
        return HPF_OK;
    if (report)
        r->host->log(r->ctx, HPF_LOG_WARNING,
                     "queue full (%u entries, %" PRIu64 " bytes; max_queued %" PRIu64
                     ", max_queued_bytes %" PRIu64 "; redis %s): dropping; %" PRIu64
                     " dropped since the last report, %" PRIu64 " in all",
                     count, bytes, r->max_queued, r->max_queued_bytes, connected ? "slow" : "away",
                     held, total);
    entry_free(e);
    return HPF_ERR_UNAVAILABLE;
}

/* Shutdown: while connected, wait up to flush_timeout for the FIFO to drain. */
static int redis_flush(void *instance)
{
    struct redis_sink *r = instance;
    int64_t deadline = g_get_monotonic_time() + (int64_t)r->flush_timeout * G_USEC_PER_SEC;
    g_mutex_lock(&r->lock);
    while ((r->fifo.length || r->inflight) && r->connected &&
           g_cond_wait_until(&r->cond, &r->lock, deadline))
        ;
    guint left = r->fifo.length + r->inflight;
    g_mutex_unlock(&r->lock);
    if (left)
        r->host->log(r->ctx, HPF_LOG_WARNING, "flush: %u entries not written to %s:%" PRIu64, left,
                     r->server, r->port);
    return left ? HPF_ERR_UNAVAILABLE : HPF_OK;
}

static void redis_destroy(void *instance)
{
    struct redis_sink *r = instance;
    if (!r)
        return;
    if (r->writer) {
        g_mutex_lock(&r->lock);
        r->quit = true;
        g_cond_broadcast(&r->cond);
        g_mutex_unlock(&r->lock);
        g_thread_join(r->writer);
    }
    if (r->rc)
        redisFree(r->rc);
    g_queue_clear_full(&r->fifo, (GDestroyNotify)entry_free);
    if (r->key_buf)
        g_string_free(r->key_buf, TRUE);
    g_free(r->server);
    g_free(r->stream);
    g_free(r->username);
    g_free(r->password);
    g_mutex_clear(&r->lock);
    g_cond_clear(&r->cond);
    g_free(r);
}

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES,
    .message = redis_message,
    .flush = redis_flush,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "sink_redis",
    .version = PLUGIN_VERSION,
    .description = "messages to Redis streams (hiredis): XADD with MAXLEN ~, pipelined",
    .kinds = HPF_KIND_SINK,
    .config_keys = config_keys,
    .create = redis_create,
    .start = redis_start,
    .destroy = redis_destroy,
    .sink = &sink_ops,
};

HPF_PLUGIN_DEFINE(plugin)
