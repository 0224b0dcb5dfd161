/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfriends-bench internals: what the scenario runner, the broker control
 * and the report share.  See hpfriends_bench.c for the program's contract.
 */
#ifndef HPF_BENCH_COMMON_H
#define HPF_BENCH_COMMON_H

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#define BENCH_CHANNEL      "bench"
/* Idle connections subscribe here; nobody publishes on it. */
#define BENCH_IDLE_CHANNEL "bench-idle"
#define BENCH_SECRET       "bench-secret"
/* Every payload starts with this header; the rest is filler. */
#define BENCH_MAGIC        0x48504642u /* "HPFB" */
#define BENCH_HDR_LEN      24u         /* magic u32, source u32, seq u64, sent ns u64 */
#define BENCH_PROBE_BIT    0x80000000u /* in source: a warm-up probe, not measured */

/* The clients run on at most this many event loops, one thread each. */
#define BENCH_MAX_THREADS 16
/* A bench thread this busy may have been the limit: the scenario is bench-bound. */
#define BENCH_BOUND_PCT   80.0

/* ---- options ---- */

struct opts {
    char **scenarios;
    double duration;
    char *host;
    int port;
    int broker_pid;
    char *broker, *ctl, *plugin_dir;
    char *secret;
    char *write_authdb;
    char *perf_dir;
    char *json_out;
    gboolean json, keep, verbose;
    int seed;
    /* Overrides; negative when not given (each scenario has its own default). */
    int subscribers, publishers, size, rate, connections, users, edges, window;
    int threads; /* event loops (threads) the clients are spread over */
    gint64 max_queued;
    /* --sub-port: subscribers spread over these ports of --host (the nodes
     * of a cluster), round robin; publishers stay on --port. */
    char **sub_ports;
};

/* ---- one scenario, as the runner executes it ---- */

enum plan_mode {
    MODE_STREAM, /* publishers write whenever their socket takes more */
    MODE_PACED,  /* a timer sends rate messages per second */
    MODE_IDLE,   /* many authenticated connections that then sit still */
};

struct plan {
    const char *name;
    const char *what;
    enum plan_mode mode;
    gboolean graph;  /* broker with access = graph and the generated graph */
    gboolean relay;  /* the in-bench relay instead of the broker */
    gboolean tls;    /* clients connect over TLS (a tls: listener, a throw-away certificate) */
    const char *ref; /* deliveries/s are compared with this scenario's ("vs relay") */
    int publishers, subscribers;
    int stalled;        /* of the subscribers, how many never read */
    int size;           /* payload bytes */
    int rate;           /* MODE_PACED: messages per second, all publishers together */
    int connections;    /* MODE_IDLE */
    int users, edges;   /* graph size */
    int window;         /* MODE_STREAM: max messages in flight (0 = TCP backpressure only) */
    guint64 max_queued; /* broker max_queued_bytes; 0 = the broker's default */
};

/* ---- results ---- */

/* The broker's own counters, from its Prometheus exporter. */
struct broker_counters {
    gboolean ok;
    double publishes, deliveries, drops, slow_disconnects;
    double graph_build_s, graph_entries, graph_users, graph_reloads;
};

struct proc_sample {
    double cpu_s;         /* utime + stime */
    unsigned long minflt; /* minor page faults */
    long rss_kib, hwm_kib;
    gboolean ok;
};

struct result {
    const char *name;
    const struct plan *plan;
    char *skipped; /* why it did not run */
    char *error;   /* why it failed */
    double window_s;
    guint64 sent, delivered_window, delivered_total, expected, drops;
    guint64 reordered, errors_seen;
    double deliveries_per_s, mb_per_s;
    gboolean have_latency;
    double p50_us, p99_us, p999_us, max_us;
    gboolean have_proc;
    double cpu_s;
    double faults; /* the broker's minor page faults in the window */
    long rss_start_kib, hwm_kib, rss_end_kib;
    double bench_cpu_s;
    /* Per bench thread over the window: CPU % of one core and what it ran. */
    guint n_threads;
    double thread_pct[BENCH_MAX_THREADS];
    char thread_what[BENCH_MAX_THREADS][24];
    double bench_max_pct; /* the busiest thread */
    gboolean bench_bound; /* a thread at or over BENCH_BOUND_PCT: the bench was the limit */
    /* idle */
    gboolean have_per_conn;
    double per_conn_kib;
    /* slow */
    guint64 stalled_received, stalled_drops;
    /* several publishers: deliveries in the window per publisher */
    gboolean have_fairness;
    guint64 pub_min, pub_median, pub_max;
    /* the broker's view, over the window plus the drain */
    gboolean have_counters, have_window_counters;
    struct broker_counters counted, counted_window;
    double load_start, load_end;
    char *broker_exit; /* set when the broker did not exit 0 on SIGTERM */
    GPtrArray *notes;  /* char * */
};

void result_note(struct result *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void result_clear(struct result *r);

/* ---- the broker (or relay) under test ---- */

struct target {
    pid_t pid;        /* 0: unknown (external broker without --broker-pid) */
    gboolean spawned; /* we started it and stop it */
    gboolean is_relay;
    struct sockaddr_storage addr, sub_addr; /* relay: subscribers connect to sub_addr */
    gboolean tls;                           /* addr is a TLS listener */
    socklen_t addr_len;
    char *dir; /* temp dir of a spawned broker */
    char *log_path;
    pid_t perf_pid;
    int exporter_port; /* 0: no metrics endpoint */
    double start_s;    /* spawn to ready file */
};

/* bench_broker.c */
gboolean target_start(const struct opts *o, const struct plan *p, struct target *t, GError **error);
/*
 * Stops what target_start started; describes an abnormal exit in *exit_desc
 * and, when warnings is not NULL, returns the broker log's warning and
 * error lines there (at most 8, then a count).
 */
void target_stop(const struct opts *o, struct target *t, char **exit_desc, GPtrArray **warnings);
gboolean proc_sample(pid_t pid, struct proc_sample *out);
/* GET /metrics (blocking, bounded); FALSE without an exporter. */
gboolean target_counters(const struct target *t, struct broker_counters *out);
/* /proc/loadavg's first field: other load on a shared machine skews everything. */
double load_average(void);
/* Reset a process's VmHWM to its current RSS (Linux clear_refs "5"). */
gboolean proc_reset_peak(pid_t pid);
void perf_start(const struct opts *o, struct target *t, const char *scenario);
void perf_stop(struct target *t);
/* An hpfeeds3 authkeys database with the keys the plan uses (or all plans). */
gboolean authdb_write(const char *path, const struct opts *o, const struct plan *const *plans,
                      guint n_plans, GError **error);
char *key_ident(const char *role, int i);

GQuark bench_error_quark(void);
/* A numeric IPv4 or IPv6 address and a port. */
gboolean bench_parse_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len);

/* bench_relay.c: fork the relay; its two ports go to t->addr and t->sub_addr.
 * framed: several publishers, so only whole frames are forwarded. */
gboolean relay_spawn(struct target *t, gboolean framed, GError **error);

/* bench_run.c */
void run_plan(const struct opts *o, const struct plan *p, struct target *t, struct result *r);

/* bench_report.c */
void report_table(const struct opts *o, struct result *rs, guint n);
void report_json(const struct opts *o, struct result *rs, guint n, FILE *out);

/* latency histogram: log-linear, 256 sub-buckets per power of two (< 0.4 % error) */
#define HIST_SUB_BITS 8
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 2) << (HIST_SUB_BITS - 1))
struct hist {
    guint64 n, max;
    guint64 counts[HIST_BUCKETS];
};
void hist_add(struct hist *h, guint64 v);
/* Value at quantile q in [0, 1]: the midpoint of its bucket. */
double hist_quantile(const struct hist *h, double q);

guint64 now_ns(void);

#endif
