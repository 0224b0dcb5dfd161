/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus metrics: hpfeeds3's metric names (so existing dashboards keep
 * working) plus hpfriends' own, served as text on the exporter address at
 * /metrics, with /healthz beside it.  Counters live on the loop thread;
 * gauges are computed when scraped.
 */
#ifndef HPF_METRICS_H
#define HPF_METRICS_H

#include <glib.h>

struct broker;
struct broker_stats;
struct cluster_counters;
struct graph_stats;
struct metrics;

/** Per (ident, channel) publish statistics; owned by the metrics. */
struct pub_stat {
    guint64 count;
    guint64 size_sum;
    guint64 buckets[14]; /* cumulative at render time; raw counts here */
};

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

void metrics_ready(struct metrics *m, const char *ident);
void metrics_lost(struct metrics *m, const char *ident);
void metrics_error(struct metrics *m, const char *ident, const char *category);
/**
 * A failed AUTH naming ident: counted as metrics_error() on ident's series
 * when it has one (it has authenticated since the broker started), else on
 * the series of no ident (ident=""), so a client spraying idents adds no
 * series.
 */
void metrics_auth_failed(struct metrics *m, const char *ident, const char *category);
void metrics_deadline(struct metrics *m, const char *ident, gboolean started);
/** A closed connection's send-buffer totals. */
void metrics_send_totals(struct metrics *m, const char *ident, guint64 fill, guint64 drain);
struct pub_stat *metrics_pub_stat(struct metrics *m, const char *ident, const char *chan);
void pub_stat_observe(struct pub_stat *ps, gsize size);

/**
 * What a scrape shows besides the metrics' own counters, collected from the
 * broker by metrics_render() (or made up by a test).
 */
struct metrics_view {
    guint connections; /* live, authenticated or not */
    GHashTable *live;  /* conn_totals_by_ident() */
    GHashTable *subs;  /* conn_subscription_counts() */
    const struct broker_stats *stats;
    guint64 data_version;
    guint subscriptions;                    /* over all channels */
    guint64 input_partial;                  /* bytes held in incomplete frames */
    guint input_held;                       /* sessions not read for the input budget */
    const struct graph_stats *graph;        /* NULL: no graph */
    GArray *sinks;                          /* struct sink_stats; NULL: none */
    const struct cluster_counters *cluster; /* NULL: a single node */
};

/** The exposition text for m and v. */
char *metrics_format(const struct metrics *m, const struct metrics_view *v);
/** The exposition text for the broker's current state. */
char *metrics_render(struct broker *b);
/** Appends value escaped as an exposition-format label value (no quotes). */
void metrics_label_value(GString *out, const char *value);

/** Serve /metrics and /healthz on cfg->exporter; FALSE with error. */
gboolean metrics_listen(struct broker *b, GError **error);
void metrics_stop(struct broker *b);

#endif
