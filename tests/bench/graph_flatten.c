/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * graph-flatten-bench: how long graph_build() takes, how much memory the
 * flattened table holds, and what one graph_may_read() costs, on a random
 * sharing graph of a chosen size (the default is the "100k users, 1k
 * groups, 1M edges" deployment the flattener is sized for).
 *
 * The random graph, all draws from one GRand seeded with --seed:
 *   users     u000000 .. : all declared explicitly.
 *   groups    g00000 .. : a uniform random owner; --members-per-group
 *             distinct members drawn uniformly from all users.
 *   edges     --edges share rows.  The sender is drawn from a Zipf law of
 *             exponent --zipf over users (rank k has weight 1/k^s; ranks
 *             are scattered over user ids by a fixed permutation; --zipf 0
 *             is uniform): a few users share a lot, most share a little,
 *             as with honeypot operators.  The target is a uniform group
 *             with probability --group-edge-ratio, otherwise a uniform
 *             user (a self-loop now and then).  The channel is uniform over
 *             --channels; the type is shares_all with probability
 *             --shares-all-ratio.
 *   accepts   only with --accept P: require_accept is on, and each user an
 *             edge reaches (each member, for a group edge) accepts that
 *             (sender, channel) offer with probability P percent.
 *
 * Lookups replay a pool of 2^20 random (publisher, channel, reader)
 * triples: publishers drawn like senders, uniform channels, and a reader
 * that is a real reader of that entry half of the time when the entry has
 * readers, otherwise a uniform user.  The baseline is one g_str_hash
 * lookup of the reader's name in a table of all user names, over the same
 * pool: graph_may_read() does three such lookups and a binary search.
 *
 * RSS figures come from /proc/self/status.  The peak is VmHWM after
 * resetting it through /proc/self/clear_refs, minus VmRSS before the
 * build; "retained" is VmRSS after the build (and malloc_trim) minus VmRSS
 * before, i.e. what the finished graph keeps.
 */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "graph.h"
#include "snapshot.h"

struct opts {
    gint users, groups, channels, members;
    gint64 edges, lookups;
    gint seed, builds;
    gdouble shares_all, group_edges, accept, zipf;
    gboolean json;
};

struct triple {
    guint32 pub, chan, reader;
};

struct world {
    char **users, **groups, **chans;
    double *zipf_cdf; /* cumulative weights of ranks, NULL when uniform */
    guint32 zipf_mul; /* rank -> user id permutation: rank * mul mod n */
    struct snapshot *snap;
    guint64 expanded_edges; /* edges after group expansion */
    guint64 accepts;
};

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

/* CPU time next to wall time: on a shared box the wall clock also counts
 * time spent waiting for a core. */
static double cpu_ms(void) { return clock_ms(CLOCK_PROCESS_CPUTIME_ID); }

/* A field of /proc/self/status in KiB, or -1. */
static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Reset VmHWM to the current RSS (Linux >= 4.0).  FALSE when unsupported. */
static gboolean reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return FALSE;
    gboolean ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

static void trim_heap(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static guint32 gcd32(guint32 a, guint32 b)
{
    while (b) {
        guint32 t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static guint32 draw_sender(const struct world *w, GRand *rnd, guint32 n_users)
{
    if (!w->zipf_cdf)
        return g_rand_int_range(rnd, 0, n_users);
    double x = g_rand_double(rnd) * w->zipf_cdf[n_users - 1];
    guint32 lo = 0, hi = n_users - 1;
    while (lo < hi) {
        guint32 mid = lo + (hi - lo) / 2;
        if (w->zipf_cdf[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (guint32)(((guint64)lo * w->zipf_mul) % n_users);
}

static void world_build(struct world *w, const struct opts *o, GRand *rnd)
{
    guint32 nu = o->users, ng = o->groups, nc = o->channels;
    w->snap = snapshot_new();
    w->users = g_new(char *, nu + 1);
    w->groups = g_new(char *, ng + 1);
    w->chans = g_new(char *, nc + 1);
    for (guint32 i = 0; i < nu; i++) {
        w->users[i] = g_strdup_printf("u%06u", i);
        snapshot_add_user(w->snap, w->users[i], FALSE);
    }
    w->users[nu] = NULL;
    for (guint32 i = 0; i < nc; i++)
        w->chans[i] = g_strdup_printf("chan%03u", i);
    w->chans[nc] = NULL;

    if (o->zipf > 0) {
        w->zipf_cdf = g_new(double, nu);
        double acc = 0;
        for (guint32 k = 0; k < nu; k++)
            w->zipf_cdf[k] = acc += pow(k + 1, -o->zipf);
        /* Any multiplier coprime with n permutes 0..n-1. */
        w->zipf_mul = 2654435761u % nu;
        while (w->zipf_mul == 0 || gcd32(w->zipf_mul, nu) != 1)
            w->zipf_mul++;
    }

    /* Members, kept per group for the accept pass. */
    GArray **members = g_new0(GArray *, ng ? ng : 1);
    for (guint32 i = 0; i < ng; i++) {
        w->groups[i] = g_strdup_printf("g%05u", i);
        snapshot_add_group(w->snap, w->groups[i], w->users[g_rand_int_range(rnd, 0, nu)]);
        members[i] = g_array_new(FALSE, FALSE, sizeof(guint32));
        guint32 want = MIN((guint32)o->members, nu);
        while (members[i]->len < want) {
            guint32 u = g_rand_int_range(rnd, 0, nu);
            gboolean dup = FALSE;
            for (guint j = 0; j < members[i]->len && !dup; j++)
                dup = g_array_index(members[i], guint32, j) == u;
            if (dup)
                continue;
            g_array_append_val(members[i], u);
            snapshot_add_member(w->snap, w->groups[i], w->users[u]);
        }
    }
    w->groups[ng] = NULL;

    gboolean accepting = o->accept >= 0;
    double p_accept = o->accept / 100.0;
    for (gint64 e = 0; e < o->edges; e++) {
        guint32 from = draw_sender(w, rnd, nu);
        guint32 chan = g_rand_int_range(rnd, 0, nc);
        int type = g_rand_double(rnd) < o->shares_all ? HPF_SHARE_ALL : HPF_SHARE_SHARES;
        if (ng && g_rand_double(rnd) < o->group_edges) {
            guint32 gi = g_rand_int_range(rnd, 0, ng);
            snapshot_add_share(w->snap, w->users[from], w->groups[gi], TRUE, w->chans[chan], type);
            w->expanded_edges += members[gi]->len;
            for (guint j = 0; accepting && j < members[gi]->len; j++)
                if (g_rand_double(rnd) < p_accept) {
                    snapshot_add_accept(w->snap, w->users[g_array_index(members[gi], guint32, j)],
                                        w->users[from], w->chans[chan]);
                    w->accepts++;
                }
        } else {
            guint32 to = g_rand_int_range(rnd, 0, nu);
            snapshot_add_share(w->snap, w->users[from], w->users[to], FALSE, w->chans[chan], type);
            w->expanded_edges++;
            if (accepting && g_rand_double(rnd) < p_accept) {
                snapshot_add_accept(w->snap, w->users[to], w->users[from], w->chans[chan]);
                w->accepts++;
            }
        }
    }
    for (guint32 i = 0; i < ng; i++)
        g_array_unref(members[i]);
    g_free(members);
}

/* Returns the time snapshot_free() took: like graph_free(), it runs
 * wherever the broker drops an old snapshot. */
static double world_free(struct world *w)
{
    double t0 = now_ms();
    snapshot_free(w->snap);
    double ms = now_ms() - t0;
    g_strfreev(w->users);
    g_strfreev(w->groups);
    g_strfreev(w->chans);
    g_free(w->zipf_cdf);
    return ms;
}

enum { POOL_BITS = 20 };

static struct triple *make_pool(const struct world *w, const struct graph *g, const struct opts *o,
                                GRand *rnd, guint64 *listed)
{
    guint32 n = 1u << POOL_BITS;
    struct triple *pool = g_new(struct triple, n);
    *listed = 0;
    for (guint32 i = 0; i < n; i++) {
        struct triple *t = &pool[i];
        t->pub = draw_sender(w, rnd, o->users);
        t->chan = g_rand_int_range(rnd, 0, o->channels);
        const struct graph_readers *r = graph_readers(g, w->users[t->pub], w->chans[t->chan]);
        if (r && g_rand_boolean(rnd)) {
            /* Ids are the graph's; map back to our index through the name. */
            const char *name = graph_user_name(g, r->ids[g_rand_int_range(rnd, 0, r->n)]);
            t->reader = (guint32)strtoul(name + 1, NULL, 10);
            (*listed)++;
        } else {
            t->reader = g_rand_int_range(rnd, 0, o->users);
        }
    }
    return pool;
}

struct lookups {
    double may_read_ns, readers_ns, has_ns, baseline_ns, hit_ratio, listed_ratio;
};

static void time_lookups(const struct world *w, const struct graph *g, const struct opts *o,
                         GRand *rnd, struct lookups *out)
{
    if (o->lookups == 0) {
        memset(out, 0, sizeof *out);
        return;
    }
    guint64 listed;
    struct triple *pool = make_pool(w, g, o, rnd, &listed);
    guint32 mask = (1u << POOL_BITS) - 1;
    out->listed_ratio = (double)listed / (mask + 1);

    /* Warm both paths once over the pool so neither pays first-touch. */
    guint64 hits = 0, base_hits = 0, has_hits = 0;
    GHashTable *names = g_hash_table_new(g_str_hash, g_str_equal);
    for (gint i = 0; i < o->users; i++)
        g_hash_table_insert(names, w->users[i], w->users[i]);
    for (guint32 i = 0; i <= mask; i++)
        hits += graph_may_read(g, w->users[pool[i].pub], w->chans[pool[i].chan],
                               w->users[pool[i].reader]);

    hits = 0;
    double t0 = now_ms();
    for (gint64 i = 0; i < o->lookups; i++) {
        const struct triple *t = &pool[i & mask];
        hits += graph_may_read(g, w->users[t->pub], w->chans[t->chan], w->users[t->reader]);
    }
    double t1 = now_ms();
    for (gint64 i = 0; i < o->lookups; i++) {
        const struct triple *t = &pool[i & mask];
        base_hits += g_hash_table_lookup(names, w->users[t->reader]) != NULL;
    }
    double t2 = now_ms();

    /* What the broker does: graph_readers() once per message, then per
     * subscriber a binary search with the uid it cached at AUTH. */
    guint64 sets_found = 0;
    for (gint64 i = 0; i < o->lookups; i++) {
        const struct triple *t = &pool[i & mask];
        sets_found += graph_readers(g, w->users[t->pub], w->chans[t->chan]) != NULL;
    }
    double t25 = now_ms();
    const struct graph_readers **sets = g_new(const struct graph_readers *, mask + 1);
    guint32 *uids = g_new(guint32, mask + 1);
    for (guint32 i = 0; i <= mask; i++) {
        sets[i] = graph_readers(g, w->users[pool[i].pub], w->chans[pool[i].chan]);
        uids[i] = graph_user_id(g, w->users[pool[i].reader]);
    }
    double t3 = now_ms();
    for (gint64 i = 0; i < o->lookups; i++)
        has_hits += graph_readers_has(sets[i & mask], uids[i & mask]);
    double t4 = now_ms();

    double n = o->lookups ? (double)o->lookups : 1;
    out->may_read_ns = (t1 - t0) * 1e6 / n;
    out->baseline_ns = (t2 - t1) * 1e6 / n;
    out->readers_ns = (t25 - t2) * 1e6 / n;
    out->has_ns = (t4 - t3) * 1e6 / n;
    out->hit_ratio = hits / n;
    if (base_hits != (guint64)o->lookups || has_hits > hits || sets_found > (guint64)o->lookups)
        fprintf(stderr, "graph-flatten-bench: lookup self-check failed\n");
    g_free(sets);
    g_free(uids);
    g_hash_table_unref(names);
    g_free(pool);
}

static double mib(long kib) { return kib < 0 ? -1 : kib / 1024.0; }

int main(int argc, char **argv)
{
    struct opts o = {
        .users = 100000,
        .groups = 1000,
        .edges = 1000000,
        .channels = 100,
        .members = 20,
        .seed = 1,
        .builds = 1,
        .shares_all = 0.3,
        .group_edges = 0.1,
        .accept = -1,
        .zipf = 0.8,
        .lookups = 10000000,
    };
    GOptionEntry entries[] = {
        {"users", 0, 0, G_OPTION_ARG_INT, &o.users, "users (100000)", "N"},
        {"groups", 0, 0, G_OPTION_ARG_INT, &o.groups, "groups (1000)", "N"},
        {"edges", 0, 0, G_OPTION_ARG_INT64, &o.edges, "share rows (1000000)", "N"},
        {"channels", 0, 0, G_OPTION_ARG_INT, &o.channels, "channels (100)", "N"},
        {"members-per-group", 0, 0, G_OPTION_ARG_INT, &o.members, "members per group (20)", "N"},
        {"shares-all-ratio", 0, 0, G_OPTION_ARG_DOUBLE, &o.shares_all,
         "fraction of edges of type shares_all (0.3)", "R"},
        {"group-edge-ratio", 0, 0, G_OPTION_ARG_DOUBLE, &o.group_edges,
         "fraction of edges to a group (0.1)", "R"},
        {"zipf", 0, 0, G_OPTION_ARG_DOUBLE, &o.zipf, "Zipf exponent of senders; 0 = uniform (0.8)",
         "S"},
        {"accept", 0, 0, G_OPTION_ARG_DOUBLE, &o.accept,
         "require_accept, each offer accepted with this percent chance (off)", "P"},
        {"seed", 0, 0, G_OPTION_ARG_INT, &o.seed, "PRNG seed (1)", "S"},
        {"builds", 0, 0, G_OPTION_ARG_INT, &o.builds, "time this many builds (1)", "N"},
        {"lookups", 0, 0, G_OPTION_ARG_INT64, &o.lookups, "timed lookups (10000000)", "N"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &o.json, "print one JSON object", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *err = NULL;
    GOptionContext *ctx = g_option_context_new("- time the sharing-graph flattener");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "graph-flatten-bench: %s\n", err->message);
        g_error_free(err);
        g_option_context_free(ctx);
        return 2;
    }
    g_option_context_free(ctx);
    if (o.users < 1 || o.groups < 0 || o.edges < 0 || o.channels < 1 || o.members < 0 ||
        o.builds < 1 || o.lookups < 0 || o.accept > 100 || o.zipf < 0) {
        fprintf(stderr, "graph-flatten-bench: option out of range\n");
        return 2;
    }

    GRand *rnd = g_rand_new_with_seed((guint32)o.seed);
    struct world w = {0};
    double t0 = now_ms();
    world_build(&w, &o, rnd);
    double gen_ms = now_ms() - t0;
    gboolean require_accept = o.accept >= 0;

    /* The first build is the one measured for memory. */
    trim_heap();
    long rss_before = status_kib("VmRSS");
    gboolean peak_ok = reset_peak();
    double c0 = cpu_ms();
    t0 = now_ms();
    struct graph *g = graph_build(w.snap, require_accept);
    double build_ms = now_ms() - t0, build_min = build_ms, build_max = build_ms;
    double build_cpu_ms = cpu_ms() - c0;
    long hwm = status_kib("VmHWM");
    trim_heap();
    long rss_after = status_kib("VmRSS");
    for (gint i = 1; i < o.builds; i++) {
        graph_free(g);
        t0 = now_ms();
        g = graph_build(w.snap, require_accept);
        double ms = now_ms() - t0;
        build_min = MIN(build_min, ms);
        build_max = MAX(build_max, ms);
    }

    struct graph_stats st;
    graph_get_stats(g, &st);
    struct lookups lk;
    time_lookups(&w, g, &o, rnd, &lk);

    t0 = now_ms();
    graph_free(g);
    double free_ms = now_ms() - t0;
    double snap_free_ms = world_free(&w);

    double peak_mib = peak_ok && hwm >= 0 && rss_before >= 0 ? mib(hwm - rss_before) : -1;
    double kept_mib = rss_after >= 0 && rss_before >= 0 ? mib(rss_after - rss_before) : -1;
    double avg_set = st.distinct_sets ? (double)st.reader_ids / st.distinct_sets : 0;

    if (o.json) {
        printf("{\"users\": %d, \"groups\": %d, \"edges\": %" G_GINT64_FORMAT
               ", \"channels\": %d, \"members_per_group\": %d, \"shares_all_ratio\": %g, "
               "\"group_edge_ratio\": %g, \"zipf\": %g, \"require_accept\": %s, "
               "\"accept_percent\": %g, \"seed\": %d, "
               "\"expanded_edges\": %" G_GUINT64_FORMAT ", \"accepts\": %" G_GUINT64_FORMAT ", "
               "\"generate_ms\": %.1f, \"build_ms\": %.1f, \"build_ms_min\": %.1f, "
               "\"build_ms_max\": %.1f, \"build_cpu_ms\": %.1f, \"builds\": %d, \"free_ms\": %.1f, "
               "\"snapshot_free_ms\": %.1f, "
               "\"rss_before_mib\": %.1f, \"build_peak_delta_mib\": %.1f, "
               "\"retained_delta_mib\": %.1f, "
               "\"graph_users\": %u, \"graph_channels\": %u, \"entries\": %u, "
               "\"distinct_sets\": %u, \"reader_ids\": %" G_GUINT64_FORMAT ", "
               "\"avg_set\": %.2f, \"lookups\": %" G_GINT64_FORMAT ", "
               "\"may_read_ns\": %.1f, \"readers_ns\": %.1f, \"readers_has_ns\": %.1f, "
               "\"str_hash_ns\": %.1f, "
               "\"hit_ratio\": %.3f}\n",
               o.users, o.groups, o.edges, o.channels, o.members, o.shares_all, o.group_edges,
               o.zipf, require_accept ? "true" : "false", require_accept ? o.accept : 0.0, o.seed,
               w.expanded_edges, w.accepts, gen_ms, build_ms, build_min, build_max, build_cpu_ms,
               o.builds, free_ms, snap_free_ms, mib(rss_before), peak_mib, kept_mib, st.users,
               st.channels, st.entries, st.distinct_sets, st.reader_ids, avg_set, o.lookups,
               lk.may_read_ns, lk.readers_ns, lk.has_ns, lk.baseline_ns, lk.hit_ratio);
    } else {
        printf("graph-flatten-bench: %d users, %d groups x %d members, %" G_GINT64_FORMAT
               " edges on %d channels\n"
               "  shares_all %.2f, group edges %.2f, zipf %.2f, require_accept %s, seed %d\n\n",
               o.users, o.groups, o.members, o.edges, o.channels, o.shares_all, o.group_edges,
               o.zipf, require_accept ? "on" : "off", o.seed);
        printf("  %-28s %14" G_GUINT64_FORMAT "\n", "edges after group expansion",
               w.expanded_edges);
        if (require_accept)
            printf("  %-28s %14" G_GUINT64_FORMAT "  (%.0f%%)\n", "accepts", w.accepts, o.accept);
        printf("  %-28s %14.1f ms\n", "generate snapshot", gen_ms);
        if (o.builds > 1)
            printf("  %-28s %14.1f ms  (min %.1f, max %.1f over %d)\n", "graph_build", build_ms,
                   build_min, build_max, o.builds);
        else
            printf("  %-28s %14.1f ms\n", "graph_build", build_ms);
        printf("  %-28s %14.1f ms\n", "graph_build, CPU time", build_cpu_ms);
        printf("  %-28s %14.1f ms\n", "graph_free", free_ms);
        printf("  %-28s %14.1f ms\n", "snapshot_free", snap_free_ms);
        printf("  %-28s %14.1f MiB\n", "RSS before build", mib(rss_before));
        if (peak_mib >= 0)
            printf("  %-28s %14.1f MiB\n", "peak RSS during build, +", peak_mib);
        else
            printf("  %-28s %14s\n", "peak RSS during build, +", "n/a");
        printf("  %-28s %14.1f MiB\n", "RSS kept by the graph, +", kept_mib);
        printf("  %-28s %14u\n", "users", st.users);
        printf("  %-28s %14u\n", "channels", st.channels);
        printf("  %-28s %14u\n", "entries (publisher, chan)", st.entries);
        printf("  %-28s %14u\n", "distinct reader sets", st.distinct_sets);
        printf("  %-28s %14" G_GUINT64_FORMAT "\n", "reader ids stored", st.reader_ids);
        printf("  %-28s %14.2f\n", "average set size", avg_set);
        printf("  %-28s %14" G_GINT64_FORMAT "  (%.0f%% true, %.0f%% from a set)\n", "lookups",
               o.lookups, 100 * lk.hit_ratio, 100 * lk.listed_ratio);
        printf("  %-28s %14.1f ns\n", "graph_may_read", lk.may_read_ns);
        printf("  %-28s %14.1f ns\n", "graph_readers (per message)", lk.readers_ns);
        printf("  %-28s %14.1f ns\n", "graph_readers_has (per sub)", lk.has_ns);
        printf("  %-28s %14.1f ns\n", "baseline: one str-hash get", lk.baseline_ns);
    }

    g_rand_free(rnd);
    return 0;
}
