/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfriends-bench: a load generator for hpfriendsd.
 *
 * Starts a broker per scenario (temporary config, sqlite storage, port 0,
 * --ready-file), or targets one with --host/--port, drives it from several
 * libevent loops (one thread each: publishers on their own, subscribers
 * spread over the rest) and prints one table: deliveries/s, MB/s,
 * publish->receipt latency percentiles, broker CPU seconds and RSS, drops,
 * the bench's own CPU per thread.  Scenarios (each *-relay runs the same
 * load through the naive relay of bench_relay.c, and the broker's row is
 * shown as a ratio to it):
 *
 *   relay, fanout        1 publisher -> 50 subscribers, 1 KiB, paced by TCP
 *                        backpressure only.
 *   graph                fanout with access = graph and 10,000 users /
 *                        100,000 shares loaded: the cost of the sharing
 *                        decision.
 *   relay-large, fanout-large   1 -> 50, 100 KiB payloads (large reports).
 *   relay-500, fanout-500       1 -> 500, 1 KiB.
 *   ingest-relay, ingest 200 publishers -> 1 subscriber, 512 B, at most 2000
 *                        messages in flight (--window 0: an open-loop flood,
 *                        which the broker's backpressure holds back).
 *   latency-relay, latency       10,000 msg/s from a timer, 10 subscribers.
 *   latency50k-relay, latency50k 50,000 msg/s, 10 subscribers.
 *   slow-base, slow      10 reading subscribers; slow adds 1 that never
 *                        reads (the readers must not notice it).
 *   idle                 10,000 authenticated connections, each subscribed
 *                        to a channel nobody publishes on: broker RSS per
 *                        connection.
 *   tls-fanout           fanout over TLS (a throw-away certificate).
 *
 * Only deliveries received inside the --duration window count towards the
 * rate; drops are what a reading subscriber still lacks after the drain.
 * MB/s counts whole delivered frames.  Broker CPU is utime + stime over the
 * window from /proc/PID/stat; peak RSS is VmHWM, reset when the window
 * opens; "bench %" is this process over the same window, "max thr %" its
 * busiest thread: at BENCH_BOUND_PCT or more the load generator may have
 * been the limit, and the row is marked bench-bound (its targets fail).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_common.h"

enum {
    S_RELAY,
    S_FANOUT,
    S_GRAPH,
    S_RELAY_LARGE,
    S_FANOUT_LARGE,
    S_RELAY_500,
    S_FANOUT_500,
    S_INGEST_RELAY,
    S_INGEST,
    S_LATENCY_RELAY,
    S_LATENCY,
    S_LATENCY50K_RELAY,
    S_LATENCY50K,
    S_SLOW_BASE,
    S_SLOW,
    S_IDLE,
    S_TLS_FANOUT,
    S_COUNT
};

/* ingest is closed loop by default (2000 messages in flight, broker and
 * relay alike); --window 0 floods, and the broker's backpressure holds the
 * publishers back in turns (the notes then give each one's deliveries). */
#define FANOUT(n, sz) .mode = MODE_STREAM, .publishers = 1, .subscribers = (n), .size = (sz)
#define INGEST        .mode = MODE_STREAM, .publishers = 200, .subscribers = 1, .size = 512, .window = 2000
#define PACED(r)      .mode = MODE_PACED, .publishers = 1, .subscribers = 10, .size = 1024, .rate = (r)

static const struct plan defaults[S_COUNT] = {
    [S_RELAY] = {.name = "relay",
                 .what = "1 -> 50 x 1 KiB via the naive relay",
                 .relay = TRUE,
                 FANOUT(50, 1024)},
    [S_FANOUT] = {.name = "fanout",
                  .what = "1 publisher -> 50 subscribers",
                  .ref = "relay",
                  FANOUT(50, 1024)},
    [S_GRAPH] = {.name = "graph",
                 .what = "fanout, access = graph",
                 .ref = "relay",
                 .graph = TRUE,
                 FANOUT(50, 1024),
                 .users = 10000,
                 .edges = 100000},
    [S_RELAY_LARGE] = {.name = "relay-large",
                       .what = "1 -> 50 x 100 KiB via the naive relay",
                       .relay = TRUE,
                       FANOUT(50, 100 * 1024)},
    [S_FANOUT_LARGE] = {.name = "fanout-large",
                        .what = "1 -> 50 x 100 KiB (large reports)",
                        .ref = "relay-large",
                        FANOUT(50, 100 * 1024)},
    [S_RELAY_500] = {.name = "relay-500",
                     .what = "1 -> 500 x 1 KiB via the naive relay",
                     .relay = TRUE,
                     FANOUT(500, 1024)},
    [S_FANOUT_500] = {.name = "fanout-500",
                      .what = "1 -> 500 x 1 KiB",
                      .ref = "relay-500",
                      FANOUT(500, 1024)},
    [S_INGEST_RELAY] = {.name = "ingest-relay",
                        .what = "200 -> 1 x 512 B via the naive relay",
                        .relay = TRUE,
                        INGEST},
    [S_INGEST] = {.name = "ingest",
                  .what = "200 publishers -> 1 subscriber",
                  .ref = "ingest-relay",
                  INGEST},
    [S_LATENCY_RELAY] = {.name = "latency-relay",
                         .what = "latency's load through the relay",
                         .relay = TRUE,
                         PACED(10000)},
    [S_LATENCY] = {.name = "latency",
                   .what = "timer-paced, 10 subscribers",
                   .ref = "latency-relay",
                   PACED(10000)},
    [S_LATENCY50K_RELAY] = {.name = "latency50k-relay",
                            .what = "latency50k's load through the relay",
                            .relay = TRUE,
                            PACED(50000)},
    [S_LATENCY50K] = {.name = "latency50k",
                      .what = "timer-paced, 10 subscribers",
                      .ref = "latency50k-relay",
                      PACED(50000)},
    [S_SLOW_BASE] = {.name = "slow-base",
                     .what = "slow's reading subscribers alone",
                     FANOUT(10, 1024)},
    [S_SLOW] = {.name = "slow",
                .what = "1 stalled + 10 reading subscribers",
                .ref = "slow-base",
                .mode = MODE_STREAM,
                .publishers = 1,
                .subscribers = 11,
                .stalled = 1,
                .size = 1024},
    [S_IDLE] = {.name = "idle",
                .what = "authenticated, subscribed idle connections",
                .mode = MODE_IDLE,
                .publishers = 1,
                .subscribers = 1,
                .size = 64,
                .connections = 10000},
    [S_TLS_FANOUT] = {.name = "tls-fanout",
                      .what = "1 -> 50 x 1 KiB over TLS",
                      .ref = "relay",
                      .tls = TRUE,
                      FANOUT(50, 1024)},
};

static struct opts o = {
    .duration = 5,
    .port = 10000,
    .seed = 1,
    .subscribers = -1,
    .publishers = -1,
    .size = -1,
    .rate = -1,
    .connections = -1,
    .users = -1,
    .edges = -1,
    .window = -1,
    .threads = -1,
    .max_queued = -1,
};

static const GOptionEntry entries[] = {
    {"scenario", 's', 0, G_OPTION_ARG_STRING_ARRAY, &o.scenarios,
     "relay, fanout, graph, relay-large, fanout-large, relay-500, fanout-500, ingest-relay, "
     "ingest, latency-relay, latency, latency50k-relay, latency50k, slow-base, slow, idle, "
     "tls-fanout, "
     "or all (repeatable; default all)",
     "NAME"},
    {"duration", 'd', 0, G_OPTION_ARG_DOUBLE, &o.duration, "Seconds per scenario (5)", "S"},
    {"host", 0, 0, G_OPTION_ARG_STRING, &o.host,
     "Use a running broker at this numeric address instead of starting one", "ADDR"},
    {"port", 0, 0, G_OPTION_ARG_INT, &o.port, "Its port (10000)", "PORT"},
    {"sub-port", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.sub_ports,
     "With --host: connect subscribers to these ports instead, round robin (the nodes of "
     "a cluster; repeatable)",
     "PORT"},
    {"broker-pid", 0, 0, G_OPTION_ARG_INT, &o.broker_pid, "Its process id, for CPU and RSS figures",
     "PID"},
    {"broker", 0, 0, G_OPTION_ARG_FILENAME, &o.broker,
     "hpfriendsd to start ($HPF_BUILDDIR/core/hpfriendsd)", "PATH"},
    {"ctl", 0, 0, G_OPTION_ARG_FILENAME, &o.ctl,
     "hpfriendsctl for the graph import ($HPF_BUILDDIR/core/hpfriendsctl)", "PATH"},
    {"plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &o.plugin_dir,
     "Plugins ($HPFRIENDS_PLUGIN_DIR, else $HPF_BUILDDIR/plugins/.libs)", "DIR"},
    {"secret", 0, 0, G_OPTION_ARG_STRING, &o.secret, "Secret of every bench authkey", "S"},
    {"write-authdb", 0, 0, G_OPTION_ARG_FILENAME, &o.write_authdb,
     "Write an hpfeeds3 SQLite authkeys file with the keys the scenarios use, and exit "
     "(for --host runs)",
     "FILE"},
    {"subscribers", 0, 0, G_OPTION_ARG_INT, &o.subscribers,
     "Subscribers in relay/fanout/graph/latency, readers in slow", "N"},
    {"publishers", 0, 0, G_OPTION_ARG_INT, &o.publishers, "Publishers in ingest (200)", "N"},
    {"size", 0, 0, G_OPTION_ARG_INT, &o.size, "Payload bytes, all scenarios (>= 24)", "B"},
    {"rate", 0, 0, G_OPTION_ARG_INT, &o.rate, "latency*: messages per second (10000, 50000)", "N"},
    {"connections", 0, 0, G_OPTION_ARG_INT, &o.connections, "idle: connections (10000)", "N"},
    {"users", 0, 0, G_OPTION_ARG_INT, &o.users, "graph: users (10000)", "N"},
    {"edges", 0, 0, G_OPTION_ARG_INT, &o.edges, "graph: share edges (100000)", "N"},
    {"window", 0, 0, G_OPTION_ARG_INT, &o.window,
     "Streaming scenarios: at most N messages in flight to the slowest reader (0 = TCP "
     "backpressure only: the default except for ingest, which uses 2000)",
     "N"},
    {"threads", 0, 0, G_OPTION_ARG_INT, &o.threads,
     "Event loops (threads) the bench's clients are spread over (4; 2 to 16)", "N"},
    {"max-queued", 0, 0, G_OPTION_ARG_INT64, &o.max_queued,
     "Broker max_queued_bytes (its default, 8 MiB, when absent)", "B"},
    {"seed", 0, 0, G_OPTION_ARG_INT, &o.seed, "Random seed of the generated graph (1)", "N"},
    {"json", 0, 0, G_OPTION_ARG_NONE, &o.json, "Print JSON instead of the table", NULL},
    {"json-out", 0, 0, G_OPTION_ARG_FILENAME, &o.json_out, "Also write the JSON to FILE", "FILE"},
    {"perf", 0, 0, G_OPTION_ARG_FILENAME, &o.perf_dir,
     "Record the broker with perf during each window into DIR/perf-SCENARIO.data", "DIR"},
    {"keep", 0, 0, G_OPTION_ARG_NONE, &o.keep, "Keep each broker's temp dir (config, log)", NULL},
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &o.verbose, "Progress on stderr", NULL},
    {NULL},
};

void result_note(struct result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(r->notes, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

void result_clear(struct result *r)
{
    g_free(r->skipped);
    g_free(r->error);
    g_free(r->broker_exit);
    if (r->notes)
        g_ptr_array_unref(r->notes);
}

static struct plan make_plan(int s)
{
    struct plan p = defaults[s];
    if (o.subscribers > 0 && p.publishers == 1 && s != S_IDLE)
        p.subscribers = o.subscribers + p.stalled;
    if (o.publishers > 0 && p.publishers > 1)
        p.publishers = o.publishers;
    if (o.size >= 0)
        p.size = MAX(o.size, (int)BENCH_HDR_LEN);
    if (o.rate > 0 && p.mode == MODE_PACED)
        p.rate = o.rate;
    if (o.connections > 0)
        p.connections = o.connections;
    if (o.users > 0)
        p.users = o.users;
    if (o.edges >= 0)
        p.edges = o.edges;
    if (o.window >= 0)
        p.window = o.window;
    if (o.max_queued > 0)
        p.max_queued = (guint64)o.max_queued;
    return p;
}

static int scenario_index(const char *name)
{
    for (int s = 0; s < S_COUNT; s++)
        if (!strcmp(defaults[s].name, name))
            return s;
    return -1;
}

static char *build_path(const char *rel)
{
    const char *bd = g_getenv("HPF_BUILDDIR");
    return bd ? g_build_filename(bd, rel, NULL) : g_strdup(rel);
}

/* Raise our descriptor limit to the hard limit; brokers we start inherit it. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

static void run_one(struct plan *p, struct result *res, rlim_t nofile)
{
    res->name = p->name;
    res->plan = p;
    res->notes = g_ptr_array_new_with_free_func(g_free);
    if (p->graph && o.host) {
        res->skipped = g_strdup("needs a broker the bench starts (access = graph with the "
                                "generated graph); not run with --host");
        return;
    }
    if (p->mode == MODE_IDLE && (rlim_t)p->connections + 100 > nofile) {
        int was = p->connections;
        p->connections = (int)(nofile - 100);
        result_note(res, "RLIMIT_NOFILE is %lu: %d connections instead of %d",
                    (unsigned long)nofile, p->connections, was);
    }
    if (o.verbose)
        fprintf(stderr, "hpfriends-bench: %s: starting\n", p->name);
    struct target t;
    GError *e = NULL;
    if (!target_start(&o, p, &t, &e)) {
        res->error = g_strdup(e->message);
        g_error_free(e);
        target_stop(&o, &t, &res->broker_exit, NULL);
        return;
    }
    if (o.verbose)
        fprintf(stderr, "hpfriends-bench: %s: %s pid %d\n", p->name,
                t.is_relay ? "relay" : "broker", (int)t.pid);
    run_plan(&o, p, &t, res);
    GPtrArray *warn = NULL;
    target_stop(&o, &t, &res->broker_exit, &warn);
    for (guint i = 0; warn && i < warn->len; i++)
        result_note(res, "broker log: %s", (char *)warn->pdata[i]);
    if (warn)
        g_ptr_array_unref(warn);
    if (o.verbose)
        fprintf(stderr, "hpfriends-bench: %s: %.0f deliveries/s%s%s\n", p->name,
                res->deliveries_per_s, res->error ? ", error: " : "", res->error ? res->error : "");
}

int main(int argc, char **argv)
{
    GError *e = NULL;
    GOptionContext *ctx = g_option_context_new("- load generator for hpfriendsd");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
        fprintf(stderr, "hpfriends-bench: %s\n", e->message);
        return 2;
    }
    g_option_context_free(ctx);
    if (argc > 1) {
        fprintf(stderr, "hpfriends-bench: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    if (o.duration <= 0) {
        fprintf(stderr, "hpfriends-bench: --duration must be positive\n");
        return 2;
    }
    if (!o.broker)
        o.broker = build_path("core/hpfriendsd");
    if (!o.ctl)
        o.ctl = build_path("core/hpfriendsctl");
    if (!o.plugin_dir)
        o.plugin_dir = g_getenv("HPFRIENDS_PLUGIN_DIR") ? g_strdup(g_getenv("HPFRIENDS_PLUGIN_DIR"))
                                                        : build_path("plugins/.libs");
    if (!g_path_is_absolute(o.plugin_dir)) {
        /* The broker resolves a relative plugin dir against its config's directory. */
        char *cwd = g_get_current_dir();
        char *abs = g_build_filename(cwd, o.plugin_dir, NULL);
        g_free(cwd);
        g_free(o.plugin_dir);
        o.plugin_dir = abs;
    }
    if (!o.secret)
        o.secret = g_strdup(BENCH_SECRET);

    /* Which scenarios, in table order. */
    gboolean want[S_COUNT] = {FALSE};
    gboolean any = FALSE;
    for (char **s = o.scenarios; s && *s; s++) {
        char **names = g_strsplit(*s, ",", -1);
        for (char **n = names; *n; n++) {
            if (!strcmp(*n, "all")) {
                for (int i = 0; i < S_COUNT; i++)
                    want[i] = TRUE;
            } else if (scenario_index(*n) >= 0) {
                want[scenario_index(*n)] = TRUE;
            } else {
                fprintf(stderr, "hpfriends-bench: unknown scenario '%s'\n", *n);
                return 2;
            }
            any = TRUE;
        }
        g_strfreev(names);
    }
    if (!any)
        for (int i = 0; i < S_COUNT; i++)
            want[i] = TRUE;

    struct plan plans[S_COUNT];
    for (int s = 0; s < S_COUNT; s++)
        plans[s] = make_plan(s);

    if (o.write_authdb) {
        const struct plan *all[S_COUNT];
        for (int s = 0; s < S_COUNT; s++)
            all[s] = &plans[s];
        if (!authdb_write(o.write_authdb, &o, all, S_COUNT, &e)) {
            fprintf(stderr, "hpfriends-bench: %s\n", e->message);
            return 1;
        }
        printf("hpfriends-bench: wrote %s (secret '%s'); start the broker with --auth %s "
               "(or [storage] path = it, access = channels)\n",
               o.write_authdb, o.secret, o.write_authdb);
        return 0;
    }
    if (!o.host && !g_file_test(o.broker, G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "hpfriends-bench: no broker at %s (set HPF_BUILDDIR or --broker)\n",
                o.broker);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    rlim_t nofile = raise_nofile();
    struct result results[S_COUNT];
    memset(results, 0, sizeof results);
    guint n = 0;
    int failures = 0;
    for (int s = 0; s < S_COUNT; s++) {
        if (!want[s])
            continue;
        run_one(&plans[s], &results[n], nofile);
        failures += results[n].error != NULL || results[n].broker_exit != NULL;
        n++;
    }
    if (o.json)
        report_json(&o, results, n, stdout);
    else
        report_table(&o, results, n);
    if (o.json_out) {
        FILE *f = fopen(o.json_out, "w");
        if (f) {
            report_json(&o, results, n, f);
            fclose(f);
        } else {
            fprintf(stderr, "hpfriends-bench: %s: %s\n", o.json_out, g_strerror(errno));
        }
    }
    for (guint i = 0; i < n; i++)
        result_clear(&results[i]);
    g_strfreev(o.scenarios);
    g_free(o.host);
    g_strfreev(o.sub_ports);
    g_free(o.broker);
    g_free(o.ctl);
    g_free(o.plugin_dir);
    g_free(o.secret);
    g_free(o.write_authdb);
    g_free(o.perf_dir);
    g_free(o.json_out);
    return failures ? 1 : 0;
}
