/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exporter's text (core/metrics.c): for a made-up broker state, the
 * whole scrape must come out byte for byte as pinned here (hpfeeds3's metric
 * names, label escaping, sorted series, cumulative histogram buckets), and
 * the optional groups (graph, sinks, cluster) render from a view alone.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <string.h>

#include "../common/cunit_run.h"
#include "broker.h"
#include "cluster.h"
#include "graph.h"
#include "metrics.h"
#include "router.h"
#include "sinks.h"

/* A broker made up for rendering: no loop running, connections over pairs. */

static guint fx_id_hash(gconstpointer p) { return (guint) * (const guint64 *)p; }
static gboolean fx_id_equal(gconstpointer a, gconstpointer b)
{
    return *(const guint64 *)a == *(const guint64 *)b;
}

struct fixture {
    struct event_base *base;
    struct broker *b;
    GPtrArray *conns;
};

static struct fixture *fixture_new(void)
{
    struct fixture *f = g_new0(struct fixture, 1);
    f->base = event_base_new();
    f->b = g_new0(struct broker, 1);
    f->b->base = f->base;
    f->b->conns = g_hash_table_new(fx_id_hash, fx_id_equal);
    f->b->metrics = metrics_new();
    f->b->router = router_new();
    f->conns = g_ptr_array_new();
    f->b->reload = reload_new();
    return f;
}

/* A connection of ident (NULL: not authenticated) with bytes waiting each way. */
static struct conn *fixture_conn(struct fixture *f, const char *ident, size_t out, size_t in,
                                 guint64 sent_fill, const char *const *subs)
{
    struct bufferevent *pair[2];
    CU_ASSERT_FATAL(bufferevent_pair_new(f->base, 0, pair) == 0);
    bufferevent_free(pair[1]);
    bufferevent_disable(pair[0], EV_READ | EV_WRITE);
    struct conn *c = g_new0(struct conn, 1);
    c->b = f->b;
    c->id = f->conns->len + 1;
    c->bev = pair[0];
    c->ident = g_strdup(ident);
    c->sent_fill = sent_fill;
    c->subscribed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t i = 0; subs && subs[i]; i++) {
        g_hash_table_add(c->subscribed, g_strdup(subs[i]));
        router_subscribe(f->b->router, subs[i], c);
    }
    char *junk = g_malloc0(MAX(out, in) + 1);
    evbuffer_add(bufferevent_get_output(c->bev), junk, out);
    /* The input's end is frozen while reading is off: we play the peer. */
    evbuffer_unfreeze(bufferevent_get_input(c->bev), 0);
    evbuffer_add(bufferevent_get_input(c->bev), junk, in);
    g_free(junk);
    g_ptr_array_add(f->conns, c);
    g_hash_table_insert(f->b->conns, &c->id, c);
    return c;
}

static void fixture_free(struct fixture *f)
{
    for (guint i = 0; i < f->conns->len; i++) {
        struct conn *c = f->conns->pdata[i];
        GHashTableIter it;
        gpointer chan;
        g_hash_table_iter_init(&it, c->subscribed);
        while (g_hash_table_iter_next(&it, &chan, NULL))
            router_unsubscribe(f->b->router, chan, c);
        g_hash_table_unref(c->subscribed);
        bufferevent_free(c->bev);
        g_free(c->ident);
        g_free(c);
    }
    g_ptr_array_unref(f->conns);
    g_hash_table_unref(f->b->conns);
    metrics_free(f->b->metrics);
    router_free(f->b->router);
    reload_free(f->b->reload);
    g_free(f->b);
    event_base_free(f->base);
    g_free(f);
}

/* Some of everything the exporter renders from its own counters and the connections. */
static void fixture_fill(struct fixture *f)
{
    struct metrics *m = f->b->metrics;
    static const char *const s1[] = {"ch.a", "ch\"b", NULL};
    static const char *const s2[] = {"ch.a", NULL};
    fixture_conn(f, "sensor-1", 100, 7, 1000, s1);
    fixture_conn(f, "sensor-1", 20, 0, 50, s2);
    fixture_conn(f, "sub\\2", 0, 3, 0, s2);
    fixture_conn(f, NULL, 0, 5, 0, NULL);
    metrics_ready(m, "sensor-1");
    metrics_ready(m, "sensor-1");
    metrics_ready(m, "sub\\2");
    metrics_lost(m, "gone");
    metrics_error(m, "gone", "bad-frame");
    metrics_error(m, "gone", "auth-failed");
    metrics_error(m, "gone", "bad-frame");
    metrics_deadline(m, "sub\\2", TRUE);
    metrics_deadline(m, "sub\\2", FALSE);
    metrics_send_totals(m, "gone", 300, 250);
    metrics_send_totals(m, "sensor-1", 9, 9);
    struct pub_stat *ps = metrics_pub_stat(m, "sensor-1", "ch.a");
    pub_stat_observe(ps, 10);
    pub_stat_observe(ps, 5000);
    pub_stat_observe(ps, 9000000);
    pub_stat_observe(metrics_pub_stat(m, "sensor-1", "ch\nnl"), 1024);
    struct broker_stats *st = &f->b->stats;
    st->connections_made = 11;
    st->connections_ready = 5;
    st->connections_lost = 3;
    st->auth_failures = 2;
    st->publishes = 4;
    st->publish_bytes = 9007234;
    st->deliveries = 6;
    st->drops = 1;
    st->slow_disconnects = 1;
    st->graph_reloads = 2;
    st->graph_reload_failures = 1;
    st->graph_build_ms = 12.5;
}

/* What the broker rendered for fixture_fill() before the renderer was split. */
static const char expected_scrape[] =
    "# HELP hpfeeds_broker_client_connections Number of clients connected to broker\n"
    "# TYPE hpfeeds_broker_client_connections gauge\n"
    "hpfeeds_broker_client_connections 4\n"
    "# HELP hpfeeds_broker_connection_made Number of connections established\n"
    "# TYPE hpfeeds_broker_connection_made counter\n"
    "hpfeeds_broker_connection_made 11\n"
    "# HELP hpfeeds_broker_connection_ready Number of connections established + authenticated\n"
    "# TYPE hpfeeds_broker_connection_ready counter\n"
    "hpfeeds_broker_connection_ready{ident=\"gone\"} 0\n"
    "hpfeeds_broker_connection_ready{ident=\"sensor-1\"} 2\n"
    "hpfeeds_broker_connection_ready{ident=\"sub\\\\2\"} 1\n"
    "# HELP hpfeeds_broker_connection_lost Number of connections lost\n"
    "# TYPE hpfeeds_broker_connection_lost counter\n"
    "hpfeeds_broker_connection_lost{ident=\"gone\"} 1\n"
    "hpfeeds_broker_connection_lost{ident=\"sensor-1\"} 0\n"
    "hpfeeds_broker_connection_lost{ident=\"sub\\\\2\"} 0\n"
    "# HELP hpfeeds_broker_connection_send_buffer_deadline_start High watermark was exceeded and "
    "this connection was put on a deadline timer\n"
    "# TYPE hpfeeds_broker_connection_send_buffer_deadline_start counter\n"
    "hpfeeds_broker_connection_send_buffer_deadline_start{ident=\"gone\"} 0\n"
    "hpfeeds_broker_connection_send_buffer_deadline_start{ident=\"sensor-1\"} 0\n"
    "hpfeeds_broker_connection_send_buffer_deadline_start{ident=\"sub\\\\2\"} 1\n"
    "# HELP hpfeeds_broker_connection_send_buffer_deadline_recover Buffer recovered to low "
    "watermark or better and deadline timer was cancelled\n"
    "# TYPE hpfeeds_broker_connection_send_buffer_deadline_recover counter\n"
    "hpfeeds_broker_connection_send_buffer_deadline_recover{ident=\"gone\"} 0\n"
    "hpfeeds_broker_connection_send_buffer_deadline_recover{ident=\"sensor-1\"} 0\n"
    "hpfeeds_broker_connection_send_buffer_deadline_recover{ident=\"sub\\\\2\"} 1\n"
    "# HELP hpfeeds_broker_connection_error Number of connections that experienced a protocol "
    "error\n"
    "# TYPE hpfeeds_broker_connection_error counter\n"
    "hpfeeds_broker_connection_error{ident=\"gone\",category=\"auth-failed\"} 1\n"
    "hpfeeds_broker_connection_error{ident=\"gone\",category=\"bad-frame\"} 2\n"
    "# HELP hpfeeds_broker_connection_send_buffer_fill Number of bytes queued in the send buffer\n"
    "# TYPE hpfeeds_broker_connection_send_buffer_fill counter\n"
    "# HELP hpfeeds_broker_connection_send_buffer_drain Number of bytes drained from the send "
    "buffer and sent\n"
    "# TYPE hpfeeds_broker_connection_send_buffer_drain counter\n"
    "hpfeeds_broker_connection_send_buffer_fill{ident=\"gone\"} 300\n"
    "hpfeeds_broker_connection_send_buffer_drain{ident=\"gone\"} 250\n"
    "hpfeeds_broker_connection_send_buffer_fill{ident=\"sensor-1\"} 1059\n"
    "hpfeeds_broker_connection_send_buffer_drain{ident=\"sensor-1\"} 939\n"
    "hpfeeds_broker_connection_send_buffer_fill{ident=\"sub\\\\2\"} 0\n"
    "hpfeeds_broker_connection_send_buffer_drain{ident=\"sub\\\\2\"} 0\n"
    "# HELP hpfeeds_broker_connection_send_buffer_size Number of bytes queued for transmission\n"
    "# TYPE hpfeeds_broker_connection_send_buffer_size gauge\n"
    "# HELP hpfeeds_broker_connection_receive_buffer_size Number of bytes received but not yet "
    "parsed\n"
    "# TYPE hpfeeds_broker_connection_receive_buffer_size gauge\n"
    "hpfeeds_broker_connection_send_buffer_size{ident=\"sensor-1\"} 120\n"
    "hpfeeds_broker_connection_receive_buffer_size{ident=\"sensor-1\"} 7\n"
    "hpfeeds_broker_connection_send_buffer_size{ident=\"sub\\\\2\"} 0\n"
    "hpfeeds_broker_connection_receive_buffer_size{ident=\"sub\\\\2\"} 3\n"
    "# HELP hpfeeds_broker_subscriptions Number of subscriptions to a channel\n"
    "# TYPE hpfeeds_broker_subscriptions gauge\n"
    "hpfeeds_broker_subscriptions{ident=\"sensor-1\",chan=\"ch\\\"b\"} 1\n"
    "hpfeeds_broker_subscriptions{ident=\"sensor-1\",chan=\"ch.a\"} 2\n"
    "hpfeeds_broker_subscriptions{ident=\"sub\\\\2\",chan=\"ch.a\"} 1\n"
    "# HELP hpfeeds_broker_receive_publish_count Number of events received by broker for a "
    "channel\n"
    "# TYPE hpfeeds_broker_receive_publish_count counter\n"
    "hpfeeds_broker_receive_publish_count{ident=\"sensor-1\",chan=\"ch\\nnl\"} 1\n"
    "hpfeeds_broker_receive_publish_count{ident=\"sensor-1\",chan=\"ch.a\"} 3\n"
    "# HELP hpfeeds_broker_receive_publish_size Sizes of messages received by broker for a "
    "channel\n"
    "# TYPE hpfeeds_broker_receive_publish_size histogram\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"1024\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"2048\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"4096\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"8192\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"16384\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"32768\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"65536\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"131072\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"262144\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"524288\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"1048576\"}"
    " 1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"2097152\"}"
    " 1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"4194304\"}"
    " 1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch\\nnl\",le=\"+Inf\"} "
    "1\n"
    "hpfeeds_broker_receive_publish_size_count{ident=\"sensor-1\",chan=\"ch\\nnl\"} 1\n"
    "hpfeeds_broker_receive_publish_size_sum{ident=\"sensor-1\",chan=\"ch\\nnl\"} 1024\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"1024\"} 1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"2048\"} 1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"4096\"} 1\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"8192\"} 2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"16384\"} 2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"32768\"} 2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"65536\"} 2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"131072\"} 2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"262144\"} 2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"524288\"} 2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"1048576\"} "
    "2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"2097152\"} "
    "2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"4194304\"} "
    "2\n"
    "hpfeeds_broker_receive_publish_size_bucket{ident=\"sensor-1\",chan=\"ch.a\",le=\"+Inf\"} 3\n"
    "hpfeeds_broker_receive_publish_size_count{ident=\"sensor-1\",chan=\"ch.a\"} 3\n"
    "hpfeeds_broker_receive_publish_size_sum{ident=\"sensor-1\",chan=\"ch.a\"} 9005010\n"
    "# HELP hpfriends_publishes_total Accepted PUBLISH frames\n"
    "# TYPE hpfriends_publishes_total counter\n"
    "hpfriends_publishes_total 4\n"
    "# HELP hpfriends_publish_bytes_total Payload bytes of accepted PUBLISH frames\n"
    "# TYPE hpfriends_publish_bytes_total counter\n"
    "hpfriends_publish_bytes_total 9007234\n"
    "# HELP hpfriends_deliveries_total Messages queued to subscribers\n"
    "# TYPE hpfriends_deliveries_total counter\n"
    "hpfriends_deliveries_total 6\n"
    "# HELP hpfriends_drops_total Messages dropped because a subscriber's output queue was full\n"
    "# TYPE hpfriends_drops_total counter\n"
    "hpfriends_drops_total 1\n"
    "# HELP hpfriends_slow_disconnects_total Subscribers disconnected for staying over "
    "max_queued_bytes\n"
    "# TYPE hpfriends_slow_disconnects_total counter\n"
    "hpfriends_slow_disconnects_total 1\n"
    "# HELP hpfriends_auth_failures_total Failed AUTH attempts\n"
    "# TYPE hpfriends_auth_failures_total counter\n"
    "hpfriends_auth_failures_total 2\n"
    "# HELP hpfriends_graph_reloads_total Data reloads applied\n"
    "# TYPE hpfriends_graph_reloads_total counter\n"
    "hpfriends_graph_reloads_total 2\n"
    "# HELP hpfriends_graph_reload_failures_total Data reloads that failed\n"
    "# TYPE hpfriends_graph_reload_failures_total counter\n"
    "hpfriends_graph_reload_failures_total 1\n"
    "# HELP hpfriends_graph_build_seconds Time the last graph flattening took\n"
    "# TYPE hpfriends_graph_build_seconds gauge\n"
    "hpfriends_graph_build_seconds 0.012500000000000001\n"
    "# HELP hpfriends_data_version Storage data version in force\n"
    "# TYPE hpfriends_data_version gauge\n"
    "hpfriends_data_version 0\n"
    "# HELP hpfriends_subscriptions Subscriptions over all channels\n"
    "# TYPE hpfriends_subscriptions gauge\n"
    "hpfriends_subscriptions 4\n"
    "# HELP hpfriends_input_partial_bytes Bytes held in incomplete frames (counted against "
    "input_budget)\n"
    "# TYPE hpfriends_input_partial_bytes gauge\n"
    "hpfriends_input_partial_bytes 0\n"
    "# HELP hpfriends_input_held_sessions Sessions not read while the input budget is spent\n"
    "# TYPE hpfriends_input_held_sessions gauge\n"
    "hpfriends_input_held_sessions 0\n"
    "# HELP hpfriends_sink_delivered_total Messages and events a sink handled\n"
    "# TYPE hpfriends_sink_delivered_total counter\n"
    "# HELP hpfriends_sink_dropped_total Items dropped: sink queue full\n"
    "# TYPE hpfriends_sink_dropped_total counter\n"
    "# HELP hpfriends_sink_errors_total Items a sink failed to handle\n"
    "# TYPE hpfriends_sink_errors_total counter\n"
    "# HELP hpfriends_sink_queued_bytes Bytes waiting in a sink queue\n"
    "# TYPE hpfriends_sink_queued_bytes gauge\n";

static void test_scrape(void)
{
    struct fixture *f = fixture_new();
    fixture_fill(f);
    char *text = metrics_render(f->b);
    CU_ASSERT_STRING_EQUAL(text, expected_scrape);
    if (strcmp(text, expected_scrape))
        fprintf(stderr, "---- got:\n%s---- end\n", text);
    g_free(text);
    fixture_free(f);
}

/* An empty broker still names every always-present metric once. */
static void test_empty(void)
{
    struct fixture *f = fixture_new();
    char *text = metrics_render(f->b);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hpfeeds_broker_client_connections 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE hpfeeds_broker_receive_publish_size histogram\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hpfriends_subscriptions 0\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "{"));
    CU_ASSERT_PTR_NULL(strstr(text, "hpfriends_graph_users"));
    CU_ASSERT_PTR_NULL(strstr(text, "hpfriends_cluster_"));
    g_free(text);
    fixture_free(f);
}

static guint count_lines(const char *text)
{
    guint n = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        n++;
    return n;
}

/* A client spraying idents at AUTH grows neither memory nor the scrape. */
static void test_failed_idents_add_no_series(void)
{
    struct fixture *f = fixture_new();
    struct metrics *m = f->b->metrics;
    metrics_ready(m, "sensor");
    metrics_auth_failed(m, NULL, "auth-failed"); /* the series of no ident, made once */
    char *before = metrics_render(f->b);
    for (int i = 0; i < 10000; i++) {
        char ident[32];
        g_snprintf(ident, sizeof ident, "spray-%d", i);
        metrics_auth_failed(m, ident, "auth-failed");
    }
    metrics_auth_failed(m, "sensor", "auth-failed");
    char *text = metrics_render(f->b);
    CU_ASSERT_PTR_NULL(strstr(text, "spray-"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "hpfeeds_broker_connection_error{ident=\"\",category=\"auth-failed\"} 10001\n"));
    /* An ident that has authenticated keeps its own. */
    CU_ASSERT_PTR_NOT_NULL(strstr(
        text, "hpfeeds_broker_connection_error{ident=\"sensor\",category=\"auth-failed\"} 1\n"));
    CU_ASSERT_EQUAL(count_lines(text), count_lines(before) + 1);
    g_free(before);
    g_free(text);
    fixture_free(f);
}

/* Publish histograms per (ident, channel) are bounded too: new pairs past the bound share one. */
static void test_pub_series_bounded(void)
{
    struct metrics *m = metrics_new();
    struct pub_stat *first = metrics_pub_stat(m, "k", "c0");
    struct pub_stat *shared = NULL;
    for (int i = 1; i < 25000; i++) {
        char chan[32];
        g_snprintf(chan, sizeof chan, "c%d", i);
        struct pub_stat *ps = metrics_pub_stat(m, "k", chan);
        if (i == 20000)
            shared = ps;
        if (i > 20000)
            CU_ASSERT_PTR_EQUAL(ps, shared);
    }
    CU_ASSERT_PTR_EQUAL(metrics_pub_stat(m, "k", "c0"), first);
    metrics_free(m);
}

static void test_label_value(void)
{
    /* What a label value may carry is escaped per the exposition format. */
    GString *l = g_string_new(NULL);
    metrics_label_value(l, "evil\nline \"q\" \\ bad\xff\xfe");
    CU_ASSERT_STRING_EQUAL(l->str, "evil\\nline \\\"q\\\" \\\\ bad\xef\xbf\xbd\xef\xbf\xbd");
    g_string_free(l, TRUE);
}

static const char *after(const char *text, const char *from, const char *what)
{
    const char *p = from ? strstr(text, from) : text;
    return p ? strstr(p, what) : NULL;
}

static void test_optional_groups(void)
{
    struct metrics *m = metrics_new();
    struct broker_stats stats = {0};
    struct graph_stats gs = {.users = 3, .entries = 7};
    struct cluster_counters cc = {.forwarded = 5, .refused = 2, .connected = TRUE};
    GArray *sinks = g_array_new(FALSE, FALSE, sizeof(struct sink_stats));
    struct sink_stats s1 = {.name = "file", .delivered = 9, .queued_bytes = 64};
    struct sink_stats s2 = {.name = "a\"b", .dropped = 1, .errors = 4};
    g_array_append_val(sinks, s1);
    g_array_append_val(sinks, s2);
    GHashTable *empty = g_hash_table_new(g_str_hash, g_str_equal);
    struct metrics_view v = {.live = empty,
                             .subs = empty,
                             .stats = &stats,
                             .data_version = 42,
                             .subscriptions = 6,
                             .graph = &gs,
                             .sinks = sinks,
                             .cluster = &cc};
    char *text = metrics_format(m, &v);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hpfriends_data_version 42\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hpfriends_subscriptions 6\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE hpfriends_graph_entries gauge\n"
                                        "hpfriends_graph_entries 7\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hpfriends_graph_users 3\n"));
    /* Sinks in their order, one group per value. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE hpfriends_sink_delivered_total counter\n"
                                        "hpfriends_sink_delivered_total{sink=\"file\"} 9\n"
                                        "hpfriends_sink_delivered_total{sink=\"a\\\"b\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hpfriends_sink_errors_total{sink=\"a\\\"b\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE hpfriends_sink_queued_bytes gauge\n"
                                        "hpfriends_sink_queued_bytes{sink=\"file\"} 64\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hpfriends_cluster_forwarded_total 5\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hpfriends_cluster_refused_total 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE hpfriends_cluster_connected gauge\n"
                                        "hpfriends_cluster_connected 1\n"));
    /* Groups in a fixed order: graph, sinks, cluster last. */
    CU_ASSERT_PTR_NOT_NULL(after(text, "hpfriends_graph_users 3", "hpfriends_sink_delivered"));
    CU_ASSERT_PTR_NOT_NULL(after(text, "hpfriends_sink_queued_bytes{", "hpfriends_cluster_"));
    g_free(text);
    g_hash_table_unref(empty);
    g_array_unref(sinks);
    metrics_free(m);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"whole scrape, byte for byte", test_scrape},
        {"empty broker", test_empty},
        {"failed AUTHs of unknown idents add no series", test_failed_idents_add_no_series},
        {"label values escaped per the exposition format", test_label_value},
        {"publish histograms are bounded", test_pub_series_bounded},
        {"graph, sinks and cluster groups", test_optional_groups},
        {NULL, NULL},
    };
    return cunit_run("metrics", cases);
}
