/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sink_http: batches accepted messages and POSTs them (libcurl) in one of
 * three bodies (`api`): ndjson (one record a line), elasticsearch-bulk (an
 * index action line before each document, index from a template) or
 * splunk-hec (one HEC event object per record).  The records are those of
 * `format` (plugins/common/sink_format.h; `raw` is the JSON envelope
 * sink_file writes, as HTTP bodies must be text).
 *
 * The broker's sink thread frames each record for the api and appends it to
 * a bounded spool (`max_queued` records, those being sent included: a full
 * spool drops the new record, counts it and says so, rate-limited).  A
 * writer thread of our own takes up to batch_size records (or batch_bytes),
 * once enough are waiting or the oldest has waited flush_interval, and POSTs
 * them.  2xx: done.  429, 5xx or a transport error: the same body again
 * after a back-off doubling from retry_min to retry_max, for as long as it
 * takes (new records meanwhile fill the spool and then drop).  Any other
 * status: the batch is dropped, counted and logged (retrying cannot help).
 * TLS peers are always verified.  No lock is held across network I/O.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#include "../common/sink_format.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0"
#endif

#define COMPLAIN_EVERY_US (10 * G_USEC_PER_SEC)
#define MAX_RESPONSE      65536

enum api { API_NDJSON, API_ES_BULK, API_SPLUNK_HEC };

struct http_sink {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;

    /* configuration */
    char *url, *index, *sourcetype, *token, *username, *password, *cafile;
    char **headers;
    enum api api;
    enum sinkfmt_kind format;
    uint64_t batch_size, batch_bytes, max_queued, max_queued_bytes, timeout, flush_timeout;
    int64_t flush_interval_us, retry_min_us, retry_max_us;

    GThread *writer;
    CURL *curl;              /* writer thread only */
    struct curl_slist *hdrs; /* writer thread only */
    GString *response;       /* writer thread only */
    GString *body;           /* writer thread only */
    char curl_err[CURL_ERROR_SIZE];

    GMutex lock; /* guards everything below */
    GCond cond;
    GQueue spool;      /* GString *: one framed record each */
    int64_t oldest_us; /* when the head of the spool was queued */
    unsigned inflight; /* records in the batch being sent */
    bool quit, failing;
    uint64_t dropped, dropped_reported;
    uint64_t queued_bytes;      /* records in the spool and in flight */
    uint64_t refused;           /* writer thread only: records the server refused */
    int64_t last_item_error_us; /* writer thread only */
    int64_t last_complaint_us;
    int64_t last_refusal_us; /* writer thread only */
};

static const char *const config_keys[] = {
    "url",        "api",         "format",         "index",         "sourcetype",
    "token",      "username",    "password",       "headers",       "cafile",
    "batch_size", "batch_bytes", "flush_interval", "max_queued",    "max_queued_bytes",
    "retry_min",  "retry_max",   "timeout",        "flush_timeout", NULL,
};

/* ---- configuration (create(): pure) ---- */

static char *config_dup(struct http_sink *h, const char *key, const char *def)
{
    const char *v = h->host->config_get(h->ctx, key);
    return g_strdup(v && *v ? v : def);
}

/* Seconds with a fraction, in (0, max]; unset leaves *out. */
static int config_seconds(struct http_sink *h, const char *key, double max, int64_t *out, char *err,
                          size_t err_len)
{
    const char *v = h->host->config_get(h->ctx, key);
    if (!v)
        return HPF_OK;
    char *end = NULL;
    double secs = g_ascii_strtod(v, &end);
    if (end == v || *end || !(secs > 0) || secs > max)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "%s: expected seconds (more than 0, at most %g), got '%s'", key, max,
                             v);
    *out = (int64_t)(secs * G_USEC_PER_SEC);
    return HPF_OK;
}

static int read_api(struct http_sink *h, char *err, size_t err_len)
{
    const char *v = h->host->config_get(h->ctx, "api");
    if (!v || !strcmp(v, "ndjson"))
        h->api = API_NDJSON;
    else if (!strcmp(v, "elasticsearch-bulk"))
        h->api = API_ES_BULK;
    else if (!strcmp(v, "splunk-hec"))
        h->api = API_SPLUNK_HEC;
    else
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "api: expected ndjson, elasticsearch-bulk or splunk-hec, got '%s'", v);
    const char *fmt = h->host->config_get(h->ctx, "format");
    if (fmt && !sinkfmt_parse(fmt, &h->format))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "format: expected raw, normalized, cef or splunk, got '%s'", fmt);
    return HPF_OK;
}

/* "Name: value; Name: value" -> a NULL-terminated list, each checked. */
static int read_headers(struct http_sink *h, char *err, size_t err_len)
{
    const char *v = h->host->config_get(h->ctx, "headers");
    if (!v)
        return HPF_OK;
    h->headers = g_strsplit(v, ";", 64);
    for (char **p = h->headers; *p; p++) {
        g_strstrip(*p);
        const char *colon = strchr(*p, ':');
        if (!colon || colon == *p || strpbrk(*p, "\r\n"))
            return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                                 "headers: expected 'Name: value' entries separated by ';', "
                                 "got '%s'",
                                 *p);
    }
    return HPF_OK;
}

static int read_numbers(struct http_sink *h, char *err, size_t err_len)
{
    const struct hpf_host *x = h->host;
    if (x->config_uint(h->ctx, "batch_size", 1, 100000, &h->batch_size, err, err_len) ||
        x->config_size(h->ctx, "batch_bytes", 1024, 1024 * 1024 * 1024, &h->batch_bytes, err,
                       err_len) ||
        x->config_uint(h->ctx, "max_queued", 1, 10000000, &h->max_queued, err, err_len) ||
        x->config_size(h->ctx, "max_queued_bytes", 1024, UINT64_C(1) << 40, &h->max_queued_bytes,
                       err, err_len) ||
        x->config_uint(h->ctx, "timeout", 1, 3600, &h->timeout, err, err_len) ||
        x->config_uint(h->ctx, "flush_timeout", 0, 3600, &h->flush_timeout, err, err_len) ||
        config_seconds(h, "flush_interval", 3600, &h->flush_interval_us, err, err_len) ||
        config_seconds(h, "retry_min", 3600, &h->retry_min_us, err, err_len) ||
        config_seconds(h, "retry_max", 3600, &h->retry_max_us, err, err_len))
        return HPF_ERR_INVALID;
    if (h->retry_max_us < h->retry_min_us)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "retry_max: less than retry_min");
    return HPF_OK;
}

static int read_strings(struct http_sink *h, char *err, size_t err_len)
{
    h->url = config_dup(h, "url", NULL);
    if (!h->url ||
        (g_ascii_strncasecmp(h->url, "http://", 7) && g_ascii_strncasecmp(h->url, "https://", 8)))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "url: required, http://... or https://..., got '%s'",
                             h->url ? h->url : "");
    h->index = config_dup(h, "index", "hpfeeds-{channel}");
    h->sourcetype = config_dup(h, "sourcetype", "hpfriends");
    h->token = config_dup(h, "token", NULL);
    h->username = config_dup(h, "username", NULL);
    h->password = config_dup(h, "password", NULL);
    char *ca = h->host->config_path(h->ctx, "cafile");
    h->cafile = ca && *ca ? g_strdup(ca) : NULL;
    free(ca);
    if (!h->username != !h->password)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "username and password: set both or neither");
    if (h->token && h->username)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "token: set either token or username/password");
    if (h->api == API_SPLUNK_HEC && !h->token)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "token: required with api = splunk-hec");
    return HPF_OK;
}

static void http_destroy(void *instance);

static int http_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                       void **instance, char *err, size_t err_len)
{
    struct http_sink *h = g_new0(struct http_sink, 1);
    h->host = host;
    h->ctx = ctx;
    h->format = SINKFMT_NORMALIZED;
    h->batch_size = 500;
    h->batch_bytes = 5 * 1024 * 1024;
    h->max_queued = 100000;
    h->max_queued_bytes = UINT64_C(64) << 20;
    h->timeout = 10;
    h->flush_timeout = 5;
    h->flush_interval_us = G_USEC_PER_SEC;
    h->retry_min_us = G_USEC_PER_SEC / 2;
    h->retry_max_us = 30 * G_USEC_PER_SEC;
    g_mutex_init(&h->lock);
    g_cond_init(&h->cond);
    g_queue_init(&h->spool);
    int rc = read_api(h, err, err_len);
    if (rc == HPF_OK)
        rc = read_numbers(h, err, err_len);
    if (rc == HPF_OK)
        rc = read_headers(h, err, err_len);
    if (rc == HPF_OK)
        rc = read_strings(h, err, err_len);
    if (rc != HPF_OK) {
        http_destroy(h);
        return rc;
    }
    *instance = h;
    return HPF_OK;
}

/* ---- framing (sink thread) ---- */

/* The record as a JSON value: itself when the format is JSON, else a string. */
static void append_record_json(struct http_sink *h, GString *out, const struct hpf_message *msg)
{
    if (h->format == SINKFMT_RAW) {
        sinkfmt_append_envelope(out, msg);
    } else if (h->format == SINKFMT_NORMALIZED) {
        sinkfmt_append(out, SINKFMT_NORMALIZED, msg);
    } else {
        GString *text = g_string_new(NULL);
        sinkfmt_append(text, h->format, msg);
        JsonNode *n = json_node_init_string(json_node_alloc(), text->str);
        sinkfmt_append_json(out, n);
        json_node_unref(n);
        g_string_free(text, TRUE);
    }
}

/*
 * An index name Elasticsearch takes, whatever the channel: lower case, no
 * \\ / * ? " < > | , # : space or control character (each made '_'), not
 * starting with - _ +, not . or .., at most 255 bytes.
 */
static char *index_name(const char *s)
{
    char *valid = g_utf8_make_valid(s, -1);
    char *lower = g_utf8_strdown(valid, -1);
    g_free(valid);
    for (char *p = lower; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f || strchr("\\/*?\"<>|,#:", *p))
            *p = '_';
    const char *start = lower + strspn(lower, "-_+");
    char *out =
        *start && strcmp(start, ".") && strcmp(start, "..") ? g_strdup(start) : g_strdup("hpfeeds");
    g_free(lower);
    if (strlen(out) > 255) {
        const char *end = g_utf8_find_prev_char(out, out + 256);
        out[end ? end - out : 0] = '\0';
    }
    return out;
}

static void append_index_action(struct http_sink *h, GString *out, const struct hpf_message *msg)
{
    GString *name = g_string_new(NULL);
    for (const char *p = h->index; *p;) {
        if (!strncmp(p, "{channel}", 9)) {
            g_string_append(name, msg->channel ? msg->channel : "");
            p += 9;
        } else if (!strncmp(p, "{date}", 6)) {
            GDateTime *t = g_date_time_new_from_unix_utc(msg->time_us / G_USEC_PER_SEC);
            char *d = t ? g_date_time_format(t, "%Y.%m.%d") : g_strdup("0000.00.00");
            g_string_append(name, d);
            g_free(d);
            if (t)
                g_date_time_unref(t);
            p += 6;
        } else {
            g_string_append_c(name, *p++);
        }
    }
    char *lower = index_name(name->str);
    JsonNode *n = json_node_init_string(json_node_alloc(), lower);
    g_string_append(out, "{\"index\":{\"_index\":");
    sinkfmt_append_json(out, n);
    g_string_append(out, "}}\n");
    json_node_unref(n);
    g_free(lower);
    g_string_free(name, TRUE);
}

static GString *frame(struct http_sink *h, const struct hpf_message *msg)
{
    GString *out = g_string_sized_new(msg->payload_len + 256);
    if (h->api == API_NDJSON) {
        if (h->format == SINKFMT_CEF || h->format == SINKFMT_SPLUNK)
            sinkfmt_append(out, h->format, msg); /* a text line as it is */
        else
            append_record_json(h, out, msg);
    } else if (h->api == API_ES_BULK) {
        append_index_action(h, out, msg);
        append_record_json(h, out, msg);
    } else {
        g_string_append_printf(out, "{\"time\":%" G_GINT64_FORMAT ".%06d,\"sourcetype\":",
                               msg->time_us / G_USEC_PER_SEC, (int)(msg->time_us % G_USEC_PER_SEC));
        JsonNode *n = json_node_init_string(json_node_alloc(), h->sourcetype);
        sinkfmt_append_json(out, n);
        json_node_unref(n);
        g_string_append(out, ",\"source\":\"hpfriends\",\"event\":");
        append_record_json(h, out, msg);
        g_string_append_c(out, '}');
    }
    /* Lines never hold raw newlines: the JSON writer escapes them. */
    g_string_append_c(out, '\n');
    return out;
}

static int http_message(void *instance, const struct hpf_message *msg)
{
    struct http_sink *h = instance;
    /* Framed first: the byte bound needs its size. */
    GString *rec = frame(h, msg);
    g_mutex_lock(&h->lock);
    guint count = h->spool.length + h->inflight;
    uint64_t bytes = h->queued_bytes, held = 0, total = 0;
    bool full = count >= h->max_queued || bytes + rec->len > h->max_queued_bytes, report = false;
    if (full) {
        total = ++h->dropped;
        int64_t now = g_get_monotonic_time();
        if (!h->last_complaint_us || now - h->last_complaint_us >= COMPLAIN_EVERY_US) {
            held = h->dropped - h->dropped_reported;
            h->dropped_reported = h->dropped;
            h->last_complaint_us = now;
            report = true;
        }
    } else {
        if (!h->spool.length)
            h->oldest_us = g_get_monotonic_time();
        g_queue_push_tail(&h->spool, rec);
        h->queued_bytes += rec->len;
        /* The first record starts the writer's flush_interval clock; a full batch ends it. */
        if (h->spool.length == 1 || h->spool.length >= h->batch_size)
            g_cond_broadcast(&h->cond);
    }
    bool failing = h->failing;
    g_mutex_unlock(&h->lock);
    if (!full)
        return HPF_OK;
    if (report)
        h->host->log(h->ctx, HPF_LOG_WARNING,
                     "spool full (%u records, %" PRIu64 " bytes; max_queued %" PRIu64
                     ", max_queued_bytes %" PRIu64 "; %s): dropping; %" PRIu64
                     " dropped since the last report, %" PRIu64 " in all",
                     count, bytes, h->max_queued, h->max_queued_bytes,
                     failing ? "server failing" : "server slow", held, total);
    g_string_free(rec, TRUE);
    return HPF_ERR_UNAVAILABLE;
}

/* ---- the writer thread ---- */

static size_t on_response(char *data, size_t size, size_t n, void *ud)
{
    GString *r = ud;
    size_t len = size * n;
    if (r->len < MAX_RESPONSE)
        g_string_append_len(r, data, (gssize)MIN(len, MAX_RESPONSE - r->len));
    return len;
}

static int setup_curl(struct http_sink *h, char *err, size_t err_len)
{
    h->curl = curl_easy_init();
    if (!h->curl)
        return hpf_set_error(err, err_len, HPF_ERR_NOMEM, "curl_easy_init failed");
    const char *ctype = h->api == API_NDJSON    ? "Content-Type: application/x-ndjson"
                        : h->api == API_ES_BULK ? "Content-Type: application/x-ndjson"
                                                : "Content-Type: application/json";
    h->hdrs = curl_slist_append(NULL, ctype);
    if (h->token) {
        char *auth = g_strdup_printf("Authorization: %s %s",
                                     h->api == API_SPLUNK_HEC ? "Splunk" : "Bearer", h->token);
        h->hdrs = curl_slist_append(h->hdrs, auth);
        g_free(auth);
    }
    for (char **p = h->headers; p && *p; p++)
        h->hdrs = curl_slist_append(h->hdrs, *p);
    h->hdrs = curl_slist_append(h->hdrs, "Expect:"); /* no 100-continue round trip */
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)h->timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)h->timeout);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_response);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h->response);
    if (h->cafile)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->cafile);
    if (h->username) {
        curl_easy_setopt(c, CURLOPT_USERNAME, h->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, h->password);
    }
    return HPF_OK;
}

enum post_result { POST_OK, POST_RETRY, POST_REFUSED };

static enum post_result post(struct http_sink *h, long *status, const char **why)
{
    g_string_truncate(h->response, 0);
    h->curl_err[0] = '\0';
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, h->body->str);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body->len);
    CURLcode rc = curl_easy_perform(h->curl);
    *status = 0;
    if (rc != CURLE_OK) {
        *why = h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc);
        return POST_RETRY;
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
    for (gsize i = 0; i < h->response->len; i++) /* the body goes into one log line */
        if ((unsigned char)h->response->str[i] < 0x20)
            h->response->str[i] = ' ';
    *why = h->response->len ? h->response->str : "";
    if (*status >= 200 && *status < 300)
        return POST_OK;
    return (*status == 429 || *status >= 500) ? POST_RETRY : POST_REFUSED;
}

/* Waits until a batch is due (full, or its oldest record old enough); false: quit. */
static bool wait_batch(struct http_sink *h)
{
    g_mutex_lock(&h->lock);
    for (;;) {
        if (h->quit) {
            g_mutex_unlock(&h->lock);
            return false;
        }
        if (h->spool.length >= h->batch_size)
            break;
        int64_t due = h->oldest_us + h->flush_interval_us;
        if (h->spool.length && g_get_monotonic_time() >= due)
            break;
        if (h->spool.length)
            g_cond_wait_until(&h->cond, &h->lock, due);
        else
            g_cond_wait(&h->cond, &h->lock);
    }
    g_string_truncate(h->body, 0);
    unsigned n = 0;
    while (h->spool.length && n < h->batch_size) {
        GString *rec = g_queue_peek_head(&h->spool);
        if (n && h->body->len + rec->len > h->batch_bytes)
            break;
        g_string_append_len(h->body, rec->str, (gssize)rec->len);
        g_string_free(g_queue_pop_head(&h->spool), TRUE);
        n++;
    }
    h->inflight = n;
    h->oldest_us = g_get_monotonic_time();
    g_mutex_unlock(&h->lock);
    return true;
}

/* Sleeps up to delay_us unless told to quit; true when quitting. */
static bool sleep_or_quit(struct http_sink *h, int64_t delay_us)
{
    int64_t until = g_get_monotonic_time() + delay_us;
    g_mutex_lock(&h->lock);
    while (!h->quit && g_cond_wait_until(&h->cond, &h->lock, until))
        ;
    bool quit = h->quit;
    g_mutex_unlock(&h->lock);
    return quit;
}

static void set_failing(struct http_sink *h, bool failing)
{
    g_mutex_lock(&h->lock);
    h->failing = failing;
    g_mutex_unlock(&h->lock);
}

/* An item of a _bulk reply that failed: its status (0: none) and error reason. */
static unsigned item_status(JsonNode *item, const char **reason)
{
    if (!JSON_NODE_HOLDS_OBJECT(item))
        return 0;
    GList *ops = json_object_get_values(json_node_get_object(item));
    JsonNode *op = ops ? ops->data : NULL;
    g_list_free(ops);
    if (!op || !JSON_NODE_HOLDS_OBJECT(op))
        return 0;
    JsonObject *o = json_node_get_object(op);
    gint64 status = json_object_get_int_member_with_default(o, "status", 0);
    JsonNode *err = json_object_get_member(o, "error");
    if (err && JSON_NODE_HOLDS_OBJECT(err))
        *reason =
            json_object_get_string_member_with_default(json_node_get_object(err), "reason", "?");
    return status >= 300 ? (unsigned)status : 0;
}

/*
 * Elasticsearch answers a _bulk with 200 even when items failed
 * ("errors": true, each item with its status): those records are counted
 * as refused and logged, rate-limited, with the first reason.
 */
static void check_bulk_reply(struct http_sink *h)
{
    if (h->api != API_ES_BULK || !strstr(h->response->str, "\"errors\":true"))
        return;
    JsonParser *p = json_parser_new();
    JsonNode *root = NULL, *items = NULL;
    if (json_parser_load_from_data(p, h->response->str, (gssize)h->response->len, NULL))
        root = json_parser_get_root(p);
    if (root && JSON_NODE_HOLDS_OBJECT(root))
        items = json_object_get_member(json_node_get_object(root), "items");
    unsigned failed = 0, status = 0;
    const char *reason = "the reply is too long or not JSON: failed items not counted";
    if (items && JSON_NODE_HOLDS_ARRAY(items)) {
        reason = "?";
        JsonArray *a = json_node_get_array(items);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            const char *r = NULL;
            unsigned st = item_status(json_array_get_element(a, i), &r);
            if (st && !failed++) {
                status = st;
                reason = r ? r : "?";
            }
        }
    }
    h->refused += failed;
    int64_t now = g_get_monotonic_time();
    if (!h->last_item_error_us || now - h->last_item_error_us >= COMPLAIN_EVERY_US) {
        h->last_item_error_us = now;
        h->host->log(h->ctx, HPF_LOG_ERR,
                     "%s: the bulk reply says errors: %u of %u records failed (first: status %u, "
                     "%.200s): dropped (%" PRIu64 " records refused in all)",
                     h->url, failed, h->inflight, status, reason, h->refused);
    }
    g_object_unref(p);
}

/* Sends the batch in h->body until it is accepted or refused; false: quit. */
static bool send_batch(struct http_sink *h)
{
    int64_t delay = h->retry_min_us;
    for (unsigned attempt = 1;; attempt++) {
        long status;
        const char *why;
        enum post_result r = post(h, &status, &why);
        if (r == POST_OK) {
            check_bulk_reply(h);
            if (attempt > 1)
                h->host->log(h->ctx, HPF_LOG_NOTICE, "%s accepted the batch after %u attempts",
                             h->url, attempt);
            set_failing(h, false);
            return true;
        }
        if (r == POST_REFUSED) {
            g_mutex_lock(&h->lock);
            h->dropped += h->inflight;
            g_mutex_unlock(&h->lock);
            /* The broker's error count never sees these: the log keeps the total. */
            h->refused += h->inflight;
            int64_t now = g_get_monotonic_time();
            if (h->last_refusal_us && now - h->last_refusal_us < COMPLAIN_EVERY_US)
                return true;
            h->last_refusal_us = now;
            h->host->log(h->ctx, HPF_LOG_ERR,
                         "%s refused a batch of %u records: HTTP %ld %.200s: "
                         "dropped (%" PRIu64 " records refused in all)",
                         h->url, h->inflight, status, why, h->refused);
            return true;
        }
        set_failing(h, true);
        h->host->log(h->ctx, attempt == 1 ? HPF_LOG_WARNING : HPF_LOG_INFO,
                     "POST to %s failed (attempt %u): %s%ld %.200s; retrying in %.1f s", h->url,
                     attempt, status ? "HTTP " : "", status, why, (double)delay / G_USEC_PER_SEC);
        if (sleep_or_quit(h, delay))
            return false;
        delay = MIN(delay * 2, h->retry_max_us);
    }
}

static void *writer_main(void *arg)
{
    struct http_sink *h = arg;
    while (wait_batch(h)) {
        bool go_on = send_batch(h);
        g_mutex_lock(&h->lock);
        h->inflight = 0;
        h->queued_bytes -= h->body->len;
        g_cond_broadcast(&h->cond);
        g_mutex_unlock(&h->lock);
        if (!go_on)
            break;
    }
    return NULL;
}

/* ---- start, flush, destroy ---- */

static int http_start(void *instance, char *err, size_t err_len)
{
    struct http_sink *h = instance;
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        return hpf_set_error(err, err_len, HPF_ERR_IO, "curl_global_init: %s",
                             curl_easy_strerror(rc));
    h->response = g_string_new(NULL);
    h->body = g_string_new(NULL);
    int st = setup_curl(h, err, err_len);
    if (st != HPF_OK)
        return st;
    h->writer = g_thread_new("sink_http", writer_main, h);
    return HPF_OK;
}

/*
 * Shutdown: send what is spooled now, without waiting for flush_interval,
 * for up to flush_timeout.
 */
static int http_flush(void *instance)
{
    struct http_sink *h = instance;
    int64_t deadline = g_get_monotonic_time() + (int64_t)h->flush_timeout * G_USEC_PER_SEC;
    g_mutex_lock(&h->lock);
    h->flush_interval_us = 0; /* read by the writer under the lock */
    g_cond_broadcast(&h->cond);
    while ((h->spool.length || h->inflight) && g_cond_wait_until(&h->cond, &h->lock, deadline))
        ;
    guint left = h->spool.length + h->inflight;
    g_mutex_unlock(&h->lock);
    if (left)
        h->host->log(h->ctx, HPF_LOG_WARNING, "flush: %u records not accepted by %s", left, h->url);
    return left ? HPF_ERR_UNAVAILABLE : HPF_OK;
}

static void gstring_free(gpointer s) { g_string_free(s, TRUE); }

static void http_destroy(void *instance)
{
    struct http_sink *h = instance;
    if (!h)
        return;
    if (h->writer) {
        g_mutex_lock(&h->lock);
        h->quit = true;
        g_cond_broadcast(&h->cond);
        g_mutex_unlock(&h->lock);
        g_thread_join(h->writer);
    }
    if (h->curl) {
        curl_easy_cleanup(h->curl);
        curl_slist_free_all(h->hdrs);
    }
    if (h->response) {
        curl_global_cleanup();
        g_string_free(h->response, TRUE);
        g_string_free(h->body, TRUE);
    }
    g_queue_clear_full(&h->spool, gstring_free);
    g_strfreev(h->headers);
    g_free(h->url);
    g_free(h->index);
    g_free(h->sourcetype);
    g_free(h->token);
    g_free(h->username);
    g_free(h->password);
    g_free(h->cafile);
    g_mutex_clear(&h->lock);
    g_cond_clear(&h->cond);
    g_free(h);
}

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES,
    .message = http_message,
    .flush = http_flush,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "sink_http",
    .version = PLUGIN_VERSION,
    .description = "batched POSTs (libcurl): ndjson, Elasticsearch bulk or Splunk HEC",
    .kinds = HPF_KIND_SINK,
    .config_keys = config_keys,
    .create = http_create,
    .start = http_start,
    .destroy = http_destroy,
    .sink = &sink_ops,
};

HPF_PLUGIN_DEFINE(plugin)
