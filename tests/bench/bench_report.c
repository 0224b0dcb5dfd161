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

static GPtrArray *target_checks(const struct result *rs, guint n)
{
    GPtrArray *out = g_ptr_array_new();
    const struct result *relay = find(rs, n, "relay"), *fanout = find(rs, n, "fanout"),
                        *graph = find(rs, n, "graph"), *lat = find(rs, n, "latency"),
                        *lat_relay = find(rs, n, "latency-relay"), *idle = find(rs, n, "idle"),
                        *slow = find(rs, n, "slow");
    struct target_check *t;
    if (relay && fanout && relay->deliveries_per_s > 0) {
        t = g_new0(struct target_check, 1);
        t->name = "fanout deliveries/s >= 0.60 x relay";
        t->value = fanout->deliveries_per_s / relay->deliveries_per_s;
        t->limit = 0.60;
        t->met = t->value >= t->limit;
        t->detail = g_strdup_printf("%.0f vs %.0f: %.3f", fanout->deliveries_per_s,
                                    relay->deliveries_per_s, t->value);
        g_ptr_array_add(out, t);
    }
    if (fanout && graph && fanout->deliveries_per_s > 0) {
        t = g_new0(struct target_check, 1);
        t->name = "graph deliveries/s within 10% of fanout";
        t->value = graph->deliveries_per_s / fanout->deliveries_per_s;
        t->limit = 0.90;
        t->met = t->value >= t->limit;
        t->detail = g_strdup_printf("%.0f vs %.0f: %.3f", graph->deliveries_per_s,
                                    fanout->deliveries_per_s, t->value);
        g_ptr_array_add(out, t);
    }
    if (lat && lat->have_latency) {
        t = g_new0(struct target_check, 1);
        t->name = "latency p99 < 2 ms";
        t->value = lat->p99_us / 1000;
        t->limit = 2;
        t->met = t->value < t->limit && lat->drops == 0;
        t->detail = g_strdup_printf(
            "p99 %.2f ms at %.0f deliveries/s, %" G_GUINT64_FORMAT " drops%s", t->value,
            lat->deliveries_per_s, lat->drops, lat->drops ? " (drops fail it)" : "");
        if (lat_relay && lat_relay->have_latency) {
            char *d = t->detail;
            t->detail = g_strdup_printf("%s; the relay at the same load: p99 %.2f ms", d,
                                        lat_relay->p99_us / 1000);
            g_free(d);
        }
        g_ptr_array_add(out, t);
    }
    if (idle && idle->have_per_conn) {
        t = g_new0(struct target_check, 1);
        t->name = "idle broker RSS < 4 KiB per connection";
        t->value = idle->per_conn_kib;
        t->limit = 4;
        t->met = t->value < t->limit;
        t->detail = g_strdup_printf("%.2f KiB", t->value);
        g_ptr_array_add(out, t);
    }
    if (slow && slow->have_proc && slow->plan) {
        double bound = max_queued_mib(slow->plan) + 20;
        t = g_new0(struct target_check, 1);
        t->name = "slow: peak RSS < max_queued_bytes + 20 MiB, readers at full speed";
        t->value = slow->hwm_kib / 1024.0;
        t->limit = bound;
        /* Full speed: no drops for the readers, and a rate near the relay's
         * (or fanout's, when relay did not run) in the same run. */
        const struct result *ref = relay ? relay : fanout;
        double ratio = ref && ref->deliveries_per_s > 0
                           ? slow->deliveries_per_s / ref->deliveries_per_s
                           : 0;
        t->met = t->value < bound && slow->drops == 0 && (!ref || ratio >= 0.60);
        t->detail = g_strdup_printf("peak %.1f MiB vs %.1f MiB; readers %.0f deliveries/s%s%s "
                                    "(%.3f), %" G_GUINT64_FORMAT " drops",
                                    t->value, bound, slow->deliveries_per_s,
                                    ref ? " vs " : "", ref ? ref->name : "", ratio, slow->drops);
        g_ptr_array_add(out, t);
    }
    return out;
}

static void target_check_free(gpointer p)
{
    struct target_check *t = p;
    g_free(t->detail);
    g_free(t);
}

static double relay_rate(const struct result *rs, guint n)
{
    for (guint i = 0; i < n; i++)
        if (!strcmp(rs[i].name, "relay") && !rs[i].error && !rs[i].skipped)
            return rs[i].deliveries_per_s;
    return 0;
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
    case MODE_IDLE: g_string_append_printf(s, "; %d connections", p->connections); break;
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
    double relay = relay_rate(rs, n);
    printf("hpfriends-bench: %.1f s per scenario, %ld CPUs; broker %s\n", o->duration,
           sysconf(_SC_NPROCESSORS_ONLN), o->host ? o->host : o->broker);
    printf("%-13s %10s %7s %8s %8s %9s %7s %6s %7s %8s %8s %7s %9s %8s\n", "scenario",
           "deliv/s", "MB/s", "p50 us", "p99 us", "p99.9 us", "brk CPU", "CPU %", "ns/out",
           "peak MiB", "end MiB", "bench %", "drops", "vs relay");
    for (guint i = 0; i < n; i++) {
        const struct result *r = &rs[i];
        GString *line = g_string_new(NULL);
        g_string_append_printf(line, "%-13s", r->name);
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
        cell(line, 7, r->window_s > 0, "%.0f", 100 * r->bench_cpu_s / r->window_s);
        cell(line, 9, d, "%.0f", (double)r->drops);
        cell(line, 8, d && relay > 0, "%.3f", r->deliveries_per_s / relay);
        puts(line->str);
        g_string_free(line, TRUE);
    }
    printf("\nColumns: deliveries/s and MB/s (whole frames) received inside the window; latency\n"
           "publish->receipt; brk CPU = broker (or relay) utime+stime over the window, CPU %% of\n"
           "one core; ns/out = broker CPU per message put out (delivery queued or dropped, by its\n"
           "own counters when it has an exporter, else per delivery received); peak = VmHWM\n"
           "since the window opened, end = VmRSS at its end; bench %% = this process's CPU;\n"
           "drops = deliveries a reading subscriber still lacked after the drain; vs relay =\n"
           "deliveries/s / relay's.\n");
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
                   " deliveries in the window, %" G_GUINT64_FORMAT
                   " in all; latency max %.0f us\n",
                   r->window_s, r->sent, r->delivered_window, r->delivered_total, r->max_us);
        if (r->have_proc && r->rss_start_kib > 0)
            printf("  - broker RSS when the window opened: %.1f MiB\n", r->rss_start_kib / 1024.0);
        if (r->have_window_counters)
            printf("  - broker counters in the window: %.0f publishes, %.0f deliveries queued "
                   "(%.0f/s), %.0f drops\n",
                   r->counted_window.publishes, r->counted_window.deliveries,
                   r->counted_window.deliveries / r->window_s, r->counted_window.drops);
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
    double relay = relay_rate(rs, n);
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
        add_int(jb, "error_frames", (gint64)r->errors_seen);
        add_num(jb, "ratio_to_relay", d && relay > 0, relay > 0 ? r->deliveries_per_s / relay : 0);
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
