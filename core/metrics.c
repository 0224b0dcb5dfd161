/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Prometheus exporter: per-ident and per-channel counters kept as the
 * broker runs, a scrape that collects the rest of the broker's state into a
 * view and renders it one metric group at a time, and the HTTP server for
 * /metrics and /healthz.
 */
#include "metrics.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "accept.h"
#include "broker.h"
#include "cluster.h"
#include "graph.h"
#include "router.h"
#include "sinks.h"

/* hpfeeds3's buckets for hpfeeds_broker_receive_publish_size. */
static const guint64 size_buckets[] = {1024,   2048,   4096,   8192,    16384,   32768,  65536,
                                       131072, 262144, 524288, 1048576, 2097152, 4194304};
G_STATIC_ASSERT(G_N_ELEMENTS(size_buckets) < G_N_ELEMENTS(((struct pub_stat *)0)->buckets));

struct ident_stat {
    guint64 ready, lost;
    guint64 send_fill, send_drain; /* of closed connections */
    guint64 deadline_start, deadline_recover;
    GHashTable *errors; /* category -> guint64 count (in the pointer) */
};

struct metrics {
    GHashTable *idents; /* ident -> struct ident_stat * */
    GHashTable *pubs;   /* "ident\nchan" -> struct pub_stat * */
    struct evhttp *http;
    struct http_gate *gate;
};

static void ident_stat_free(gpointer p)
{
    struct ident_stat *s = p;
    g_hash_table_unref(s->errors);
    g_free(s);
}

struct metrics *metrics_new(void)
{
    struct metrics *m = g_new0(struct metrics, 1);
    m->idents = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ident_stat_free);
    m->pubs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    g_hash_table_unref(m->idents);
    g_hash_table_unref(m->pubs);
    g_free(m);
}

/*
 * Series are made for idents that authenticated (failed AUTHs of idents
 * without one are counted under ident="", see metrics_auth_failed); past
 * this many, new idents share one, so memory stays bounded however many
 * keys come and go.
 */
#define MAX_IDENT_SERIES 10000
#define OVERFLOW_IDENT   "(other)"

static struct ident_stat *ident_stat(struct metrics *m, const char *ident)
{
    if (!ident)
        ident = "";
    struct ident_stat *s = g_hash_table_lookup(m->idents, ident);
    if (!s && g_hash_table_size(m->idents) >= MAX_IDENT_SERIES) {
        ident = OVERFLOW_IDENT;
        s = g_hash_table_lookup(m->idents, ident);
    }
    if (!s) {
        s = g_new0(struct ident_stat, 1);
        s->errors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_hash_table_insert(m->idents, g_strdup(ident), s);
    }
    return s;
}

void metrics_ready(struct metrics *m, const char *ident) { ident_stat(m, ident)->ready++; }
void metrics_lost(struct metrics *m, const char *ident) { ident_stat(m, ident)->lost++; }

void metrics_error(struct metrics *m, const char *ident, const char *category)
{
    struct ident_stat *s = ident_stat(m, ident);
    gpointer v = g_hash_table_lookup(s->errors, category);
    g_hash_table_insert(s->errors, g_strdup(category), GSIZE_TO_POINTER(GPOINTER_TO_SIZE(v) + 1));
}

void metrics_auth_failed(struct metrics *m, const char *ident, const char *category)
{
    /* Any client may name any ident: only one that has authenticated owns series. */
    metrics_error(m, ident && g_hash_table_contains(m->idents, ident) ? ident : NULL, category);
}

void metrics_deadline(struct metrics *m, const char *ident, gboolean started)
{
    struct ident_stat *s = ident_stat(m, ident);
    if (started)
        s->deadline_start++;
    else
        s->deadline_recover++;
}

void metrics_send_totals(struct metrics *m, const char *ident, guint64 fill, guint64 drain)
{
    struct ident_stat *s = ident_stat(m, ident);
    s->send_fill += fill;
    s->send_drain += drain;
}

/*
 * Publish histograms per (ident, channel): authenticated and allowed ones
 * only, but keys come and go and a graph-mode key may publish on many
 * channels, so past this many, new pairs share one.
 */
#define MAX_PUB_SERIES 20000

struct pub_stat *metrics_pub_stat(struct metrics *m, const char *ident, const char *chan)
{
    char *key = g_strconcat(ident, "\n", chan, NULL);
    struct pub_stat *ps = g_hash_table_lookup(m->pubs, key);
    if (!ps && g_hash_table_size(m->pubs) >= MAX_PUB_SERIES) {
        g_free(key);
        key = g_strdup(OVERFLOW_IDENT "\n" OVERFLOW_IDENT);
        ps = g_hash_table_lookup(m->pubs, key);
    }
    if (!ps) {
        ps = g_new0(struct pub_stat, 1);
        g_hash_table_insert(m->pubs, key, ps);
    } else {
        g_free(key);
    }
    return ps;
}

void pub_stat_observe(struct pub_stat *ps, gsize size)
{
    ps->count++;
    ps->size_sum += size;
    gsize i = 0;
    while (i < G_N_ELEMENTS(size_buckets) && size > size_buckets[i])
        i++;
    ps->buckets[i]++;
}

/* ---- rendering ---- */

/*
 * A label value as the exposition format wants it: backslash, double quote
 * and newline escaped; bytes that are not UTF-8 (a failed AUTH's ident is
 * whatever the peer sent) replaced by U+FFFD, since one invalid byte makes
 * Prometheus reject the whole scrape.
 */
void metrics_label_value(GString *out, const char *value)
{
    const char *p = value ? value : "", *end = p + strlen(p);
    while (p < end) {
        gunichar u = g_utf8_get_char_validated(p, end - p);
        if (u >= 0x110000) {
            g_string_append(out, "\xef\xbf\xbd");
            p++;
            continue;
        }
        if (u == '\\' || u == '"')
            g_string_append_c(out, '\\');
        if (u == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_len(out, p, g_utf8_next_char(p) - p);
        p = g_utf8_next_char(p);
    }
}

static void label(GString *out, const char *name, const char *value)
{
    g_string_append_printf(out, "%s=\"", name);
    metrics_label_value(out, value);
    g_string_append_c(out, '"');
}

static void head(GString *out, const char *name, const char *type, const char *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(GString *out, const char *name, double v)
{
    g_string_append_printf(out, "%s %.17g\n", name, v);
}

static gint cmp_keys(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keys of a string-keyed table, sorted, for stable output. */
static GPtrArray *sorted_keys(GHashTable *t)
{
    GPtrArray *keys = g_ptr_array_new();
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, t);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_ptr_array_add(keys, k);
    g_ptr_array_sort(keys, cmp_keys);
    return keys;
}

/* name{k1="v1"[,k2="v2"] (the caller closes the brace). */
static void series(GString *out, const char *name, const char *k1, const char *v1, const char *k2,
                   const char *v2)
{
    g_string_append_printf(out, "%s{", name);
    label(out, k1, v1);
    if (k2) {
        g_string_append_c(out, ',');
        label(out, k2, v2);
    }
}

static void series_u64(GString *out, const char *name, const char *k1, const char *v1,
                       const char *k2, const char *v2, guint64 v)
{
    series(out, name, k1, v1, k2, v2);
    g_string_append_printf(out, "} %" G_GUINT64_FORMAT "\n", v);
}

/* hpfeeds3's per-ident counters, the connection errors by category. */
static void render_ident_counters(GString *out, const struct metrics *m, GPtrArray *idents)
{
    static const struct {
        const char *name, *type, *help;
        gsize offset;
    } per_ident[] = {
        {"hpfeeds_broker_connection_ready", "counter",
         "Number of connections established + authenticated",
         G_STRUCT_OFFSET(struct ident_stat, ready)},
        {"hpfeeds_broker_connection_lost", "counter", "Number of connections lost",
         G_STRUCT_OFFSET(struct ident_stat, lost)},
        {"hpfeeds_broker_connection_send_buffer_deadline_start", "counter",
         "High watermark was exceeded and this connection was put on a deadline timer",
         G_STRUCT_OFFSET(struct ident_stat, deadline_start)},
        {"hpfeeds_broker_connection_send_buffer_deadline_recover", "counter",
         "Buffer recovered to low watermark or better and deadline timer was cancelled",
         G_STRUCT_OFFSET(struct ident_stat, deadline_recover)},
    };
    for (gsize d = 0; d < G_N_ELEMENTS(per_ident); d++) {
        head(out, per_ident[d].name, per_ident[d].type, per_ident[d].help);
        for (guint i = 0; i < idents->len; i++) {
            struct ident_stat *s = g_hash_table_lookup(m->idents, idents->pdata[i]);
            series_u64(out, per_ident[d].name, "ident", idents->pdata[i], NULL, NULL,
                       G_STRUCT_MEMBER(guint64, s, per_ident[d].offset));
        }
    }

    head(out, "hpfeeds_broker_connection_error", "counter",
         "Number of connections that experienced a protocol error");
    for (guint i = 0; i < idents->len; i++) {
        struct ident_stat *s = g_hash_table_lookup(m->idents, idents->pdata[i]);
        GPtrArray *cats = sorted_keys(s->errors);
        for (guint j = 0; j < cats->len; j++)
            series_u64(out, "hpfeeds_broker_connection_error", "ident", idents->pdata[i],
                       "category", cats->pdata[j],
                       GPOINTER_TO_SIZE(g_hash_table_lookup(s->errors, cats->pdata[j])));
        g_ptr_array_unref(cats);
    }
}

/* Send buffer totals (closed connections plus the live ones) and live buffer sizes. */
static void render_buffers(GString *out, const struct metrics *m, GPtrArray *idents,
                           GHashTable *live)
{
    head(out, "hpfeeds_broker_connection_send_buffer_fill", "counter",
         "Number of bytes queued in the send buffer");
    head(out, "hpfeeds_broker_connection_send_buffer_drain", "counter",
         "Number of bytes drained from the send buffer and sent");
    for (guint i = 0; i < idents->len; i++) {
        struct ident_stat *s = g_hash_table_lookup(m->idents, idents->pdata[i]);
        const struct conn_ident_totals *li = g_hash_table_lookup(live, idents->pdata[i]);
        series_u64(out, "hpfeeds_broker_connection_send_buffer_fill", "ident", idents->pdata[i],
                   NULL, NULL, s->send_fill + (li ? li->fill : 0));
        series_u64(out, "hpfeeds_broker_connection_send_buffer_drain", "ident", idents->pdata[i],
                   NULL, NULL, s->send_drain + (li ? li->drain : 0));
    }

    GPtrArray *live_idents = sorted_keys(live);
    head(out, "hpfeeds_broker_connection_send_buffer_size", "gauge",
         "Number of bytes queued for transmission");
    head(out, "hpfeeds_broker_connection_receive_buffer_size", "gauge",
         "Number of bytes received but not yet parsed");
    for (guint i = 0; i < live_idents->len; i++) {
        const struct conn_ident_totals *li = g_hash_table_lookup(live, live_idents->pdata[i]);
        series_u64(out, "hpfeeds_broker_connection_send_buffer_size", "ident",
                   live_idents->pdata[i], NULL, NULL, li->send_size);
        series_u64(out, "hpfeeds_broker_connection_receive_buffer_size", "ident",
                   live_idents->pdata[i], NULL, NULL, li->recv_size);
    }
    g_ptr_array_unref(live_idents);
}

/* hpfeeds3's connection metrics. */
static void render_connections(GString *out, const struct metrics *m, const struct metrics_view *v)
{
    head(out, "hpfeeds_broker_client_connections", "gauge",
         "Number of clients connected to broker");
    sample(out, "hpfeeds_broker_client_connections", v->connections);
    head(out, "hpfeeds_broker_connection_made", "counter", "Number of connections established");
    sample(out, "hpfeeds_broker_connection_made", (double)v->stats->connections_made);

    GPtrArray *idents = sorted_keys(m->idents);
    render_ident_counters(out, m, idents);
    render_buffers(out, m, idents, v->live);
    g_ptr_array_unref(idents);
}

static void render_subscriptions(GString *out, GHashTable *subs)
{
    head(out, "hpfeeds_broker_subscriptions", "gauge", "Number of subscriptions to a channel");
    GPtrArray *sk = sorted_keys(subs);
    for (guint i = 0; i < sk->len; i++) {
        char **parts = g_strsplit(sk->pdata[i], "\n", 2);
        series_u64(out, "hpfeeds_broker_subscriptions", "ident", parts[0], "chan", parts[1],
                   GPOINTER_TO_SIZE(g_hash_table_lookup(subs, sk->pdata[i])));
        g_strfreev(parts);
    }
    g_ptr_array_unref(sk);
}

/* One (ident, channel)'s size histogram: cumulative buckets, count, sum. */
static void render_size_histogram(GString *out, const struct pub_stat *ps, const char *ident,
                                  const char *chan)
{
    const char *name = "hpfeeds_broker_receive_publish_size_bucket";
    guint64 cum = 0;
    for (gsize j = 0; j <= G_N_ELEMENTS(size_buckets); j++) {
        cum += ps->buckets[j];
        series(out, name, "ident", ident, "chan", chan);
        if (j < G_N_ELEMENTS(size_buckets))
            g_string_append_printf(out, ",le=\"%" G_GUINT64_FORMAT "\"", size_buckets[j]);
        else
            g_string_append(out, ",le=\"+Inf\"");
        g_string_append_printf(out, "} %" G_GUINT64_FORMAT "\n", cum);
    }
    series_u64(out, "hpfeeds_broker_receive_publish_size_count", "ident", ident, "chan", chan,
               ps->count);
    series_u64(out, "hpfeeds_broker_receive_publish_size_sum", "ident", ident, "chan", chan,
               ps->size_sum);
}

/* hpfeeds3's per (ident, channel) publish count and size histogram. */
static void render_publishes(GString *out, const struct metrics *m)
{
    head(out, "hpfeeds_broker_receive_publish_count", "counter",
         "Number of events received by broker for a channel");
    GPtrArray *pk = sorted_keys(m->pubs);
    for (guint i = 0; i < pk->len; i++) {
        struct pub_stat *ps = g_hash_table_lookup(m->pubs, pk->pdata[i]);
        char **parts = g_strsplit(pk->pdata[i], "\n", 2);
        series_u64(out, "hpfeeds_broker_receive_publish_count", "ident", parts[0], "chan", parts[1],
                   ps->count);
        g_strfreev(parts);
    }
    head(out, "hpfeeds_broker_receive_publish_size", "histogram",
         "Sizes of messages received by broker for a channel");
    for (guint i = 0; i < pk->len; i++) {
        char **parts = g_strsplit(pk->pdata[i], "\n", 2);
        render_size_histogram(out, g_hash_table_lookup(m->pubs, pk->pdata[i]), parts[0], parts[1]);
        g_strfreev(parts);
    }
    g_ptr_array_unref(pk);
}

/* hpfriends' own broker-wide counters and gauges. */
static void render_own(GString *out, const struct metrics_view *v)
{
    const struct broker_stats *st = v->stats;
    const struct {
        const char *name, *type, *help;
        double v;
    } own[] = {
        {"hpfriends_publishes_total", "counter", "Accepted PUBLISH frames", (double)st->publishes},
        {"hpfriends_publish_bytes_total", "counter", "Payload bytes of accepted PUBLISH frames",
         (double)st->publish_bytes},
        {"hpfriends_deliveries_total", "counter", "Messages queued to subscribers",
         (double)st->deliveries},
        {"hpfriends_drops_total", "counter",
         "Messages dropped because a subscriber's output queue was full", (double)st->drops},
        {"hpfriends_slow_disconnects_total", "counter",
         "Subscribers disconnected for staying over max_queued_bytes",
         (double)st->slow_disconnects},
        {"hpfriends_auth_failures_total", "counter", "Failed AUTH attempts",
         (double)st->auth_failures},
        {"hpfriends_graph_reloads_total", "counter", "Data reloads applied",
         (double)st->graph_reloads},
        {"hpfriends_graph_reload_failures_total", "counter", "Data reloads that failed",
         (double)st->graph_reload_failures},
        {"hpfriends_graph_build_seconds", "gauge", "Time the last graph flattening took",
         st->graph_build_ms / 1000.0},
        {"hpfriends_data_version", "gauge", "Storage data version in force",
         (double)v->data_version},
        {"hpfriends_subscriptions", "gauge", "Subscriptions over all channels",
         (double)v->subscriptions},
        {"hpfriends_input_partial_bytes", "gauge",
         "Bytes held in incomplete frames (counted against input_budget)",
         (double)v->input_partial},
        {"hpfriends_input_held_sessions", "gauge",
         "Sessions not read while the input budget is spent", (double)v->input_held},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(own); i++) {
        head(out, own[i].name, own[i].type, own[i].help);
        sample(out, own[i].name, own[i].v);
    }
}

static void render_graph(GString *out, const struct graph_stats *gs)
{
    if (!gs)
        return;
    head(out, "hpfriends_graph_entries", "gauge", "(publisher, channel) entries in the table");
    sample(out, "hpfriends_graph_entries", gs->entries);
    head(out, "hpfriends_graph_users", "gauge", "Users in the graph");
    sample(out, "hpfriends_graph_users", gs->users);
}

static void render_sinks(GString *out, GArray *sinks)
{
    static const char *const sink_names[] = {
        "hpfriends_sink_delivered_total", "hpfriends_sink_dropped_total",
        "hpfriends_sink_errors_total", "hpfriends_sink_queued_bytes"};
    static const char *const sink_help[] = {
        "Messages and events a sink handled", "Items dropped: sink queue full",
        "Items a sink failed to handle", "Bytes waiting in a sink queue"};
    for (gsize d = 0; d < G_N_ELEMENTS(sink_names); d++) {
        head(out, sink_names[d], d == 3 ? "gauge" : "counter", sink_help[d]);
        for (guint i = 0; sinks && i < sinks->len; i++) {
            const struct sink_stats *st = &g_array_index(sinks, struct sink_stats, i);
            const guint64 vals[] = {st->delivered, st->dropped, st->errors, st->queued_bytes};
            series_u64(out, sink_names[d], "sink", st->name, NULL, NULL, vals[d]);
        }
    }
}

static void render_cluster(GString *out, const struct cluster_counters *cc)
{
    if (!cc)
        return;
    const struct {
        const char *name, *type, *help;
        guint64 v;
    } cl[] = {
        {"hpfriends_cluster_forwarded_total", "counter",
         "Local publishes handed to the cluster transport", cc->forwarded},
        {"hpfriends_cluster_forward_failed_total", "counter",
         "Local publishes that could not be forwarded to other nodes", cc->forward_failed},
        {"hpfriends_cluster_received_total", "counter", "Messages received from other nodes",
         cc->received},
        {"hpfriends_cluster_received_bad_total", "counter",
         "Messages from other nodes refused as malformed", cc->received_bad},
        {"hpfriends_cluster_injected_total", "counter",
         "Messages from other nodes fanned out to local subscribers", cc->injected},
        {"hpfriends_cluster_refused_total", "counter",
         "Messages from other nodes refused: ident unknown, owner not the ident's, or "
         "channel not in its publish list",
         cc->refused},
        {"hpfriends_cluster_inject_drops_total", "counter",
         "Messages from other nodes dropped: hand-over queue full", cc->inject_drops},
        {"hpfriends_cluster_same_node_name_total", "counter",
         "Messages from another node that uses this node's name (a configuration mistake)",
         cc->same_name},
        {"hpfriends_cluster_slow_consumer_drops_total", "counter",
         "Messages from other nodes the transport dropped because this node read too slowly",
         cc->slow_consumer_drops},
        {"hpfriends_cluster_connected", "gauge", "1 while the cluster transport is up",
         cc->connected ? 1 : 0},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cl); i++) {
        head(out, cl[i].name, cl[i].type, cl[i].help);
        sample(out, cl[i].name, (double)cl[i].v);
    }
}

char *metrics_format(const struct metrics *m, const struct metrics_view *v)
{
    GString *out = g_string_sized_new(4096);
    render_connections(out, m, v);
    render_subscriptions(out, v->subs);
    render_publishes(out, m);
    render_own(out, v);
    render_graph(out, v->graph);
    render_sinks(out, v->sinks);
    render_cluster(out, v->cluster);
    return g_string_free(out, FALSE);
}

char *metrics_render(struct broker *b)
{
    struct graph_stats gs;
    struct cluster_counters cc;
    struct metrics_view v = {
        .connections = g_hash_table_size(b->conns),
        .live = conn_totals_by_ident(b),
        .subs = conn_subscription_counts(b),
        .stats = &b->stats,
        .data_version = reload_data_version(b),
        .subscriptions = router_subscription_count(b->router),
        .sinks = g_array_new(FALSE, FALSE, sizeof(struct sink_stats)),
    };
    conn_budget_stats(b, &v.input_partial, &v.input_held);
    if (b->graph) {
        graph_get_stats(b->graph, &gs);
        v.graph = &gs;
    }
    for (guint i = 0; i < sinks_count(b->sinks); i++) {
        struct sink_stats st;
        sinks_get_stats(b->sinks, i, &st);
        g_array_append_val(v.sinks, st);
    }
    if (b->cluster) {
        cluster_get_counters(b->cluster, &cc);
        v.cluster = &cc;
    }
    char *text = metrics_format(b->metrics, &v);
    g_hash_table_unref(v.live);
    g_hash_table_unref(v.subs);
    g_array_unref(v.sinks);
    return text;
}

/* ---- HTTP ---- */

/*
 * The exporter answers anyone who can reach it, so it holds nothing for
 * long: a scrape is a GET with a few short headers and no body, and a
 * handful of scrapers at once is plenty.
 */
#define EXPORTER_MAX_HEADERS           8192
#define EXPORTER_MAX_CONNS             16
#define EXPORTER_FIRST_REQUEST_SECONDS 5

static void on_request(struct evhttp_request *req, void *arg)
{
    struct broker *b = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *body = evbuffer_new();
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    http_gate_request(b->metrics->gate, req);
    if (http_repeated_header(req)) {
        evhttp_send_error(req, 400, "Bad Request");
    } else if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_add_header(hdr, "Allow", "GET");
        evhttp_send_error(req, 405, "Method Not Allowed");
    } else if (!strcmp(uri, "/metrics")) {
        char *text = metrics_render(b);
        evbuffer_add(body, text, strlen(text));
        g_free(text);
        evhttp_add_header(hdr, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, 200, "OK", body);
    } else if (!strcmp(uri, "/healthz")) {
        /* Healthy: listening, and the data in force is readable. */
        gboolean ok = b->listeners->len > 0 && reload_have_data(b) && !b->stopping;
        evbuffer_add_printf(body, "%s\n",
                            ok ? "ok" : (b->stopping ? "stopping" : "storage unavailable"));
        evhttp_add_header(hdr, "Content-Type", "text/plain; charset=utf-8");
        evhttp_send_reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", body);
    } else {
        evhttp_send_error(req, 404, "Not Found");
    }
    evbuffer_free(body);
}

gboolean metrics_listen(struct broker *b, GError **error)
{
    if (!b->cfg->exporter)
        return TRUE;
    GError *e = NULL;
    struct listen_addr *la = config_parse_listen(b->cfg->exporter, &e);
    if (!la) {
        g_set_error(error, CONFIG_ERROR, 0, "exporter: %s", e->message);
        g_error_free(e);
        return FALSE;
    }
    b->metrics->http = evhttp_new(b->base);
    /* Every method reaches on_request, which answers all but GET with 405. */
    evhttp_set_allowed_methods(b->metrics->http,
                               EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                   EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(b->metrics->http, EXPORTER_MAX_HEADERS);
    evhttp_set_max_body_size(b->metrics->http, 0);
    evhttp_set_gencb(b->metrics->http, on_request, b);
    evhttp_set_timeout(b->metrics->http, 10);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(
        b->metrics->http, *la->host ? la->host : "0.0.0.0", (ev_uint16_t)atoi(la->port));
    if (!bs) {
        g_set_error(error, CONFIG_ERROR, 0, "exporter %s: cannot listen", b->cfg->exporter);
        listen_addr_free(la);
        return FALSE;
    }
    b->metrics->gate = http_gate_new(b->metrics->http, bs, "exporter", EXPORTER_MAX_CONNS,
                                     EXPORTER_FIRST_REQUEST_SECONDS, NULL, NULL);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int port = 0;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    b->exporter_port = port;
    listen_addr_free(la);
    return TRUE;
}

void metrics_stop(struct broker *b)
{
    if (b->metrics && b->metrics->http) {
        evhttp_free(b->metrics->http);
        b->metrics->http = NULL;
        http_gate_free(b->metrics->gate);
        b->metrics->gate = NULL;
    }
}
