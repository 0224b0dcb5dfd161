/* SPDX-License-Identifier: BSD-3-Clause */
/* Latency statistics, the result table and its JSON twin. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "bench_common.h"

guint64 now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (guint64)ts.tv_sec * 1000000000u + (guint64)ts.tv_nsec;
}

/* ---- histogram ---- */

static guint hist_index(guint64 v)
{
    if (v < (1u << HIST_SUB_BITS))
        return (guint)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (HIST_SUB_BITS - 1);
    return (guint)((shift << (HIST_SUB_BITS - 1)) + (v >> shift));
}

void hist_add(struct hist *h, guint64 v)
{
    h->counts[hist_index(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

double hist_quantile(const struct hist *h, double q)
{
    if (h->n == 0)
        return 0;
    guint64 rank = (guint64)(q * (double)h->n + 0.5);
    rank = CLAMP(rank, 1, h->n);
    guint64 seen = 0;
    for (guint i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        if (i < (1u << HIST_SUB_BITS))
            return i;
        guint shift = (i >> (HIST_SUB_BITS - 1)) - 1;
        double lo = (double)((guint64)(i - (shift << (HIST_SUB_BITS - 1))) << shift);
        return MIN(lo + (double)(G_GUINT64_CONSTANT(1) << shift) / 2, (double)h->max);
    }
    return (double)h->max;
}

static const struct result *find(const struct result *rs, guint n, const char *name)
{
    for (guint i = 0; i < n; i++)
        if (!strcmp(rs[i].name, name) && !rs[i].error && !rs[i].skipped)
            return &rs[i];
    return NULL;
}

/* The broker's max_queued_bytes in a plan: its own, else the broker's default. */
static double max_queued_mib(const struct plan *p)
{
    return (p->max_queued ? (double)p->max_queued : 8.0 * 1024 * 1024) / (1024.0 * 1024.0);
}

/*
 * The performance targets (issue #6), judged from this run's results; a
 * target whose scenarios did not run is left out.
 */
struct target_check {
    const char *name;
    double value, limit;
    gboolean met;
    char *detail;
};

static struct target_check *check_new(GPtrArray *out, const char *name, double value, double limit,
                                      gboolean met)
{
    struct target_check *t = g_new0(struct target_check, 1);
    t->name = name;
    t->value = value;
    t->limit = limit;
    t->met = met;
    g_ptr_array_add(out, t);
    return t;
}

/* Append "; bench-bound: NAME" when a scenario the check rests on was bench-bound. */
static void check_bound(struct target_check *t, const struct result *a, const struct result *b)
{
    const struct result *bound = a && a->bench_bound ? a : b && b->bench_bound ? b : NULL;
    if (!bound)
        return;
    char *d = t->detail;
    t->detail = g_strdup_printf("%s; bench-bound: %s (a bench thread at %.0f %%)", d, bound->name,
                                bound->bench_max_pct);
    g_free(d);
    t->met = FALSE;
}

static double out_count(const struct result *r);

/* Append both scenarios' broker CPU per message put out: the work each did,
 * which moves less with the machine's other load than their rates. */
static void check_cpu_beside(struct target_check *t, const struct result *x,
                             const struct result *ref)
{
    if (!x->have_proc || !ref->have_proc || out_count(x) <= 0 || out_count(ref) <= 0)
        return;
    char *d = t->detail;
    t->detail = g_strdup_printf("%s; broker CPU per delivery %.0f vs %.0f ns", d,
                                1e9 * x->cpu_s / out_count(x), 1e9 * ref->cpu_s / out_count(ref));
    g_free(d);
}

/* x's deliveries/s at least limit times ref's. */
static struct target_check *check_ratio(GPtrArray *out, const char *name, const struct result *x,
                                        const struct result *ref, double limit)
{
    if (!x || !ref || ref->deliveries_per_s <= 0)
        return NULL;
    double v = x->deliveries_per_s / ref->deliveries_per_s;
    struct target_check *t = check_new(out, name, v, limit, v >= limit && x->drops == 0);
    t->detail = g_strdup_printf("%.0f vs %.0f: %.3f%s", x->deliveries_per_s, ref->deliveries_per_s,
                                v, x->drops ? "; drops fail it" : "");
    check_bound(t, x, ref);
    return t;
}

static void check_latency(GPtrArray *out, const char *name, const struct result *lat,
                          const struct result *relay, double limit_ms)
{
    if (!lat || !lat->have_latency)
        return;
    double v = lat->p99_us / 1000;
    struct target_check *t = check_new(out, name, v, limit_ms, v < limit_ms && lat->drops == 0);
    char *beside = relay && relay->have_latency
                       ? g_strdup_printf("p99 %.2f ms", relay->p99_us / 1000)
                       : g_strdup("not run");
    t->detail = g_strdup_printf("p99 %.2f ms at %.0f deliveries/s, %" G_GUINT64_FORMAT
                                " drops%s; the relay at the same load: %s",
                                v, lat->deliveries_per_s, lat->drops,
                                lat->drops ? " (drops fail it)" : "", beside);
    g_free(beside);
    check_bound(t, lat, relay);
}

/*
 * The performance targets (issue #13), judged from this run's results; a
 * target whose scenarios did not run is left out.
 */
static GPtrArray *target_checks(const struct result *rs, guint n)
{
    GPtrArray *out = g_ptr_array_new();
    const struct result *relay = find(rs, n, "relay"), *fanout = find(rs, n, "fanout"),
                        *idle = find(rs, n, "idle"), *slow = find(rs, n, "slow");
    check_ratio(out, "fanout 1->50 x 1 KiB >= 1.2 x relay", fanout, relay, 1.2);
    check_ratio(out, "fanout-large 1->50 x 100 KiB >= 1.0 x relay-large",
                find(rs, n, "fanout-large"), find(rs, n, "relay-large"), 1.0);
    check_ratio(out, "fanout-500 1->500 x 1 KiB >= 1.0 x relay-500", find(rs, n, "fanout-500"),
                find(rs, n, "relay-500"), 1.0);
    check_ratio(out, "ingest 200->1 x 512 B >= 0.8 x ingest-relay", find(rs, n, "ingest"),
                find(rs, n, "ingest-relay"), 0.8);
    const struct result *graph = find(rs, n, "graph");
    struct target_check *gt =
        check_ratio(out, "graph deliveries/s within 10% of fanout", graph, fanout, 0.9);
    if (gt)
        check_cpu_beside(gt, graph, fanout);
    check_latency(out, "latency p99 < 1 ms at 10,000 msg/s -> 10", find(rs, n, "latency"),
                  find(rs, n, "latency-relay"), 1);
    check_latency(out, "latency50k p99 < 2 ms at 50,000 msg/s -> 10", find(rs, n, "latency50k"),
                  find(rs, n, "latency50k-relay"), 2);
    if (idle && idle->have_per_conn) {
        struct target_check *t = check_new(out, "idle subscribed connection <= 1.5 KiB RSS",
                                           idle->per_conn_kib, 1.5, idle->per_conn_kib <= 1.5);
        t->detail = g_strdup_printf("%.2f KiB", t->value);
    }
    if (slow && slow->have_proc && slow->plan) {
        double bound = max_queued_mib(slow->plan) + 20;
        /* Full speed: no drops for the readers, and a rate near that of the
         * same readers without the stalled subscriber (slow-base). */
        const struct result *ref = find(rs, n, "slow-base");
        double ratio =
            ref && ref->deliveries_per_s > 0 ? slow->deliveries_per_s / ref->deliveries_per_s : 0;
        double peak = slow->hwm_kib / 1024.0;
        struct target_check *t =
            check_new(out, "slow: peak RSS < max_queued_bytes + 20 MiB, readers at full speed",
                      peak, bound, peak < bound && slow->drops == 0 && (!ref || ratio >= 0.60));
        if (ref)
            t->detail =
                g_strdup_printf("peak %.1f MiB vs %.1f MiB; readers %.0f deliveries/s vs "
                                "%s (%.3f), %" G_GUINT64_FORMAT " drops",
                                peak, bound, slow->deliveries_per_s, ref->name, ratio, slow->drops);
        else
            t->detail = g_strdup_printf("peak %.1f MiB vs %.1f MiB; readers %.0f deliveries/s "
                                        "(rate not judged: slow-base did not run), "
                                        "%" G_GUINT64_FORMAT " drops",
                                        peak, bound, slow->deliveries_per_s, slow->drops);
        check_bound(t, slow, ref);
    }
    return out;
}

static void target_check_free(gpointer p)
{
    struct target_check *t = p;
    g_free(t->detail);
    g_free(t);
}

/* deliveries/s of the scenario r is compared with, or 0 when it did not run. */
static double ref_rate(const struct result *rs, guint n, const struct result *r)
{
    const struct result *ref = r->plan && r->plan->ref ? find(rs, n, r->plan->ref) : NULL;
    return ref ? ref->deliveries_per_s : 0;
}

/*
 * What the broker put out in the window: queued deliveries plus drops by
 * its own counters, else what the readers received.  CPU per message out is
 * the figure least disturbed by other load on the machine.
 */
static double out_count(const struct result *r)
{
    if (r->have_window_counters)
        return r->counted_window.deliveries + r->counted_window.drops;
    return (double)r->delivered_window;
}

static gboolean has_deliveries(const struct result *r)
{
    return !r->error && !r->skipped && r->plan && r->plan->mode != MODE_IDLE;
}

static char *describe(const struct opts *o, const struct plan *p)
{
    GString *s = g_string_new(p->what);
    switch (p->mode) {
    case MODE_STREAM:
        g_string_append_printf(s, "; %d pub, %d sub, %d B payload, %s", p->publishers,
                               p->subscribers, p->size,
                               p->window ? "in-flight window" : "TCP backpressure");
        if (p->window)
            g_string_append_printf(s, " %d", p->window);
        break;
    case MODE_PACED:
        g_string_append_printf(s, "; %d msg/s, %d sub, %d B payload", p->rate, p->subscribers,
                               p->size);
        break;
    case MODE_IDLE:
        g_string_append_printf(s, "; %d connections", p->connections);
        break;
    }
    if (p->graph)
        g_string_append_printf(s, "; %d users, %d shares", p->users, p->edges);
    if (p->max_queued)
        g_string_append_printf(s, "; max_queued_bytes %" G_GUINT64_FORMAT, p->max_queued);
    else if (!p->relay && !o->host)
        g_string_append(s, "; max_queued_bytes default (8 MiB)");
    return g_string_free(s, FALSE);
}

static void cell(GString *line, int width, gboolean ok, const char *fmt, double v)
{
    if (!ok) {
        g_string_append_printf(line, " %*s", width, "-");
        return;
    }
    char buf[64];
    g_snprintf(buf, sizeof buf, fmt, v);
    g_string_append_printf(line, " %*s", width, buf);
}

void report_table(const struct opts *o, struct result *rs, guint n)
{
    printf("hpfriends-bench: %.1f s per scenario, %ld CPUs; broker %s\n", o->duration,
           sysconf(_SC_NPROCESSORS_ONLN), o->host ? o->host : o->broker);
    printf("%-16s %10s %7s %8s %8s %9s %7s %6s %7s %8s %8s %7s %7s %9s %8s\n", "scenario",
           "deliv/s", "MB/s", "p50 us", "p99 us", "p99.9 us", "brk CPU", "CPU %", "ns/out",
           "peak MiB", "end MiB", "bench %", "max thr", "drops", "vs relay");
    for (guint i = 0; i < n; i++) {
        const struct result *r = &rs[i];
        GString *line = g_string_new(NULL);
        g_string_append_printf(line, "%-16s", r->name);
        if (r->skipped || r->error) {
            g_string_append_printf(line, " %s", r->skipped ? "skipped" : "FAILED");
            puts(line->str);
            g_string_free(line, TRUE);
            continue;
        }
        gboolean d = has_deliveries(r);
        cell(line, 10, d, "%.0f", r->deliveries_per_s);
        cell(line, 7, d, "%.1f", r->mb_per_s);
        cell(line, 8, r->have_latency, "%.0f", r->p50_us);
        cell(line, 8, r->have_latency, "%.0f", r->p99_us);
        cell(line, 9, r->have_latency, "%.0f", r->p999_us);
        cell(line, 7, r->have_proc, "%.2f", r->cpu_s);
        cell(line, 6, r->have_proc && r->window_s > 0, "%.0f", 100 * r->cpu_s / r->window_s);
        cell(line, 7, r->have_proc && out_count(r) > 0, "%.0f", 1e9 * r->cpu_s / out_count(r));
        cell(line, 8, r->have_proc, "%.1f", r->hwm_kib / 1024.0);
        cell(line, 8, r->have_proc, "%.1f", r->rss_end_kib / 1024.0);
        double ref = ref_rate(rs, n, r);
        cell(line, 7, r->window_s > 0, "%.0f", 100 * r->bench_cpu_s / r->window_s);
        cell(line, 7, r->n_threads > 0, "%.0f", r->bench_max_pct);
        cell(line, 9, d, "%.0f", (double)r->drops);
        cell(line, 8, d && ref > 0, "%.3f", r->deliveries_per_s / ref);
        if (r->bench_bound)
            g_string_append(line, " bench-bound");
        puts(line->str);
        g_string_free(line, TRUE);
    }
    printf("\nColumns: deliveries/s and MB/s (whole frames) received inside the window; latency\n"
           "publish->receipt; brk CPU = broker (or relay) utime+stime over the window, CPU %% of\n"
           "one core; ns/out = broker CPU per message put out (delivery queued or dropped, by its\n"
           "own counters when it has an exporter, else per delivery received); peak = VmHWM\n"
           "since the window opened, end = VmRSS at its end; bench %% = this process's CPU,\n"
           "max thr = its busiest thread's (bench-bound: %.0f %% or more, so the load generator\n"
           "may have been the limit; such a row fails its targets); drops = deliveries a\n"
           "reading subscriber still lacked after the drain; vs relay = deliveries/s / those\n"
           "of the same load through the naive relay (fanout-large: relay-large, ...).\n",
           BENCH_BOUND_PCT);
    GPtrArray *checks = target_checks(rs, n);
    g_ptr_array_set_free_func(checks, target_check_free);
    if (checks->len)
        printf("\nTargets (this run):\n");
    for (guint i = 0; i < checks->len; i++) {
        const struct target_check *t = checks->pdata[i];
        printf("  %-66s %-8s %s\n", t->name, t->met ? "met" : "NOT MET", t->detail);
    }
    g_ptr_array_free(checks, TRUE);
    for (guint i = 0; i < n; i++) {
        const struct result *r = &rs[i];
        char *what = r->plan ? describe(o, r->plan) : g_strdup("");
        printf("\n%s: %s\n", r->name, what);
        g_free(what);
        if (r->skipped)
            printf("  - skipped: %s\n", r->skipped);
        if (r->error)
            printf("  - FAILED: %s\n", r->error);
        if (has_deliveries(r))
            printf("  - window %.2f s; sent %" G_GUINT64_FORMAT " messages; %" G_GUINT64_FORMAT
                   " deliveries in the window, %" G_GUINT64_FORMAT " in all; latency max %.0f us\n",
                   r->window_s, r->sent, r->delivered_window, r->delivered_total, r->max_us);
        if (r->have_proc && r->rss_start_kib > 0)
            printf("  - broker RSS when the window opened: %.1f MiB; %.0f page faults/s in the "
                   "window\n",
                   r->rss_start_kib / 1024.0, r->window_s > 0 ? r->faults / r->window_s : 0);
        if (r->have_window_counters)
            printf("  - broker counters in the window: %.0f publishes, %.0f deliveries queued "
                   "(%.0f/s), %.0f drops\n",
                   r->counted_window.publishes, r->counted_window.deliveries,
                   r->counted_window.deliveries / r->window_s, r->counted_window.drops);
        if (r->n_threads) {
            GString *th = g_string_new(NULL);
            for (guint j = 0; j < r->n_threads; j++)
                g_string_append_printf(th, "%s%s %.0f %%", j ? ", " : "", r->thread_what[j],
                                       r->thread_pct[j]);
            printf("  - bench threads (CPU of one core over the window): %s; all %.0f %%%s\n",
                   th->str, r->window_s > 0 ? 100 * r->bench_cpu_s / r->window_s : 0,
                   r->bench_bound ? ": BENCH-BOUND" : "");
            g_string_free(th, TRUE);
        }
        if (r->load_start >= 0 && (r->skipped == NULL))
            printf("  - load average (1 min) %.2f at the start, %.2f at the end\n", r->load_start,
                   r->load_end);
        if (r->broker_exit)
            printf("  - BROKER: %s\n", r->broker_exit);
        for (guint j = 0; r->notes && j < r->notes->len; j++)
            printf("  - %s\n", (const char *)r->notes->pdata[j]);
    }
}

static void add_num(JsonBuilder *jb, const char *name, gboolean ok, double v)
{
    json_builder_set_member_name(jb, name);
    if (ok)
        json_builder_add_double_value(jb, v);
    else
        json_builder_add_null_value(jb);
}

static void add_int(JsonBuilder *jb, const char *name, gint64 v)
{
    json_builder_set_member_name(jb, name);
    json_builder_add_int_value(jb, v);
}

static void add_str(JsonBuilder *jb, const char *name, const char *v)
{
    json_builder_set_member_name(jb, name);
    if (v)
        json_builder_add_string_value(jb, v);
    else
        json_builder_add_null_value(jb);
}

void report_json(const struct opts *o, struct result *rs, guint n, FILE *out)
{
    JsonBuilder *jb = json_builder_new();
    json_builder_begin_object(jb);
    add_num(jb, "duration_s", TRUE, o->duration);
    add_int(jb, "cpus", sysconf(_SC_NPROCESSORS_ONLN));
    add_str(jb, "broker", o->host ? o->host : o->broker);
    json_builder_set_member_name(jb, "scenarios");
    json_builder_begin_array(jb);
    for (guint i = 0; i < n; i++) {
        const struct result *r = &rs[i];
        gboolean d = has_deliveries(r);
        json_builder_begin_object(jb);
        add_str(jb, "name", r->name);
        char *what = r->plan ? describe(o, r->plan) : NULL;
        add_str(jb, "setup", what);
        g_free(what);
        add_str(jb, "skipped", r->skipped);
        add_str(jb, "error", r->error);
        add_num(jb, "window_s", r->window_s > 0, r->window_s);
        add_int(jb, "sent", (gint64)r->sent);
        add_int(jb, "delivered_in_window", (gint64)r->delivered_window);
        add_int(jb, "delivered_total", (gint64)r->delivered_total);
        add_num(jb, "deliveries_per_s", d, r->deliveries_per_s);
        add_num(jb, "mb_per_s", d, r->mb_per_s);
        add_num(jb, "latency_p50_us", r->have_latency, r->p50_us);
        add_num(jb, "latency_p99_us", r->have_latency, r->p99_us);
        add_num(jb, "latency_p999_us", r->have_latency, r->p999_us);
        add_num(jb, "latency_max_us", r->have_latency, r->max_us);
        add_num(jb, "broker_cpu_s", r->have_proc, r->cpu_s);
        add_num(jb, "broker_page_faults", r->have_proc, r->faults);
        add_num(jb, "broker_cpu_ns_per_out", r->have_proc && out_count(r) > 0,
                out_count(r) > 0 ? 1e9 * r->cpu_s / out_count(r) : 0);
        add_num(jb, "broker_window_publishes", r->have_window_counters,
                r->counted_window.publishes);
        add_num(jb, "broker_window_deliveries", r->have_window_counters,
                r->counted_window.deliveries);
        add_num(jb, "broker_window_drops", r->have_window_counters, r->counted_window.drops);
        add_num(jb, "broker_total_drops", r->have_counters, r->counted.drops);
        add_num(jb, "load_average_start", r->load_start >= 0, r->load_start);
        add_num(jb, "load_average_end", r->load_end >= 0, r->load_end);
        add_num(jb, "broker_rss_start_kib", r->have_proc, (double)r->rss_start_kib);
        add_num(jb, "broker_peak_rss_kib", r->have_proc, (double)r->hwm_kib);
        add_num(jb, "broker_rss_end_kib", r->have_proc, (double)r->rss_end_kib);
        add_num(jb, "bench_cpu_s", r->window_s > 0, r->bench_cpu_s);
        add_num(jb, "drops", d, (double)r->drops);
        add_num(jb, "expected_deliveries", d, (double)r->expected);
        add_int(jb, "out_of_order", (gint64)r->reordered);
        add_num(jb, "publisher_least_served", r->have_fairness, (double)r->pub_min);
        add_num(jb, "publisher_median_served", r->have_fairness, (double)r->pub_median);
        add_num(jb, "publisher_most_served", r->have_fairness, (double)r->pub_max);
        add_int(jb, "error_frames", (gint64)r->errors_seen);
        double ref = ref_rate(rs, n, r);
        add_str(jb, "compared_with", r->plan ? r->plan->ref : NULL);
        add_num(jb, "ratio_to_relay", d && ref > 0, ref > 0 ? r->deliveries_per_s / ref : 0);
        add_num(jb, "bench_busiest_thread_pct", r->n_threads > 0, r->bench_max_pct);
        json_builder_set_member_name(jb, "bench_bound");
        json_builder_add_boolean_value(jb, r->bench_bound);
        json_builder_set_member_name(jb, "bench_threads");
        json_builder_begin_array(jb);
        for (guint j = 0; j < r->n_threads; j++) {
            json_builder_begin_object(jb);
            add_str(jb, "runs", r->thread_what[j]);
            add_num(jb, "cpu_pct", TRUE, r->thread_pct[j]);
            json_builder_end_object(jb);
        }
        json_builder_end_array(jb);
        add_num(jb, "per_connection_kib", r->have_per_conn, r->per_conn_kib);
        if (r->plan && r->plan->stalled) {
            add_int(jb, "stalled_received", (gint64)r->stalled_received);
            add_int(jb, "stalled_not_received", (gint64)r->stalled_drops);
        }
        add_str(jb, "broker_exit", r->broker_exit);
        json_builder_set_member_name(jb, "notes");
        json_builder_begin_array(jb);
        for (guint j = 0; r->notes && j < r->notes->len; j++)
            json_builder_add_string_value(jb, r->notes->pdata[j]);
        json_builder_end_array(jb);
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);
    GPtrArray *checks = target_checks(rs, n);
    g_ptr_array_set_free_func(checks, target_check_free);
    json_builder_set_member_name(jb, "targets");
    json_builder_begin_array(jb);
    for (guint i = 0; i < checks->len; i++) {
        const struct target_check *t = checks->pdata[i];
        json_builder_begin_object(jb);
        add_str(jb, "target", t->name);
        add_num(jb, "value", TRUE, t->value);
        add_num(jb, "limit", TRUE, t->limit);
        json_builder_set_member_name(jb, "met");
        json_builder_add_boolean_value(jb, t->met);
        add_str(jb, "detail", t->detail);
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);
    g_ptr_array_free(checks, TRUE);
    json_builder_end_object(jb);
    JsonGenerator *gen = json_generator_new();
    JsonNode *root = json_builder_get_root(jb);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    char *text = json_generator_to_data(gen, NULL);
    fprintf(out, "%s\n", text);
    g_free(text);
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(jb);
}
