/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-address bookkeeping for the listeners and the console: a table from
 * address (IPv4 or IPv6 text; "local" for Unix sockets) to its connection count
 * and recent AUTH failures, with the failure back-off doubling while
 * failures go on.  Entries that hold nothing are expired by a timer, so
 * the table stays as small as the set of addresses that are active.
 * Refused connections can be counted per address and reported as one
 * summary per address and window, so a client retrying in a loop costs one
 * event a minute, not one per attempt.
 */
#include "ipguard.h"

#include <netinet/in.h>
#include <event2/util.h>

#define WINDOW_US      (60 * G_USEC_PER_SEC)
#define MAX_BACKOFF_US (15 * 60 * G_USEC_PER_SEC)

struct ipstate {
    guint conns;
    guint failures; /* within the current window */
    gint64 window_start;
    gint64 blocked_until;
    gint64 backoff_us; /* next block length */
    guint refused;     /* refused since refused_first, not reported yet */
    gint64 refused_first;
    const char *refused_why; /* static text */
};

struct ipguard {
    GHashTable *ips; /* key -> struct ipstate * */
    guint max_per_ip;
    guint threshold;
    gint64 backoff_us;
    gboolean count_refusals;
    GHashTable *refusing; /* key (borrowed from ips) -> struct ipstate *, refused > 0 */
};

struct ipguard *ipguard_new(guint max_per_ip, guint threshold, guint backoff_seconds)
{
    struct ipguard *g = g_new0(struct ipguard, 1);
    g->ips = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g->max_per_ip = max_per_ip;
    g->threshold = threshold;
    g->backoff_us = (gint64)backoff_seconds * G_USEC_PER_SEC;
    g->refusing = g_hash_table_new(g_str_hash, g_str_equal);
    return g;
}

void ipguard_free(struct ipguard *g)
{
    if (!g)
        return;
    g_hash_table_unref(g->refusing);
    g_hash_table_unref(g->ips);
    g_free(g);
}

void ipguard_key(const struct sockaddr *sa, char *out, gsize len)
{
    if (sa->sa_family == AF_INET)
        evutil_inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, len);
    else if (sa->sa_family == AF_INET6)
        evutil_inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, len);
    else
        g_strlcpy(out, "local", len);
}

static struct ipstate *lookup(struct ipguard *g, const char *key, gboolean create)
{
    struct ipstate *s = g_hash_table_lookup(g->ips, key);
    if (!s && create) {
        s = g_new0(struct ipstate, 1);
        s->backoff_us = g->backoff_us;
        g_hash_table_insert(g->ips, g_strdup(key), s);
    }
    return s;
}

static const char why_backoff[] = "too many authentication failures";

static void count_refusal(struct ipguard *g, const char *key, struct ipstate *s, const char *why)
{
    if (!g->count_refusals)
        return;
    if (!s->refused) {
        s->refused_first = g_get_monotonic_time();
        /* The entry stays while it has refusals to report (ipguard_expire). */
        gpointer stored_key = NULL;
        g_hash_table_lookup_extended(g->ips, key, &stored_key, NULL);
        g_hash_table_replace(g->refusing, stored_key, s);
    }
    if (s->refused < G_MAXUINT)
        s->refused++;
    s->refused_why = why;
}

const char *ipguard_admit(struct ipguard *g, const char *key)
{
    struct ipstate *s = lookup(g, key, TRUE);
    if (s->blocked_until > g_get_monotonic_time()) {
        count_refusal(g, key, s, why_backoff);
        return "Too many authentication failures from your address; try again later";
    }
    if (g->max_per_ip && s->conns >= g->max_per_ip) {
        count_refusal(g, key, s, "too many connections from one address");
        return "Too many connections from your address";
    }
    s->conns++;
    return NULL;
}

void ipguard_count_refusals(struct ipguard *g) { g->count_refusals = TRUE; }

guint ipguard_summaries(struct ipguard *g, guint max, gboolean flush, ipguard_summary_fn fn,
                        void *ud)
{
    gint64 now = g_get_monotonic_time();
    guint n = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, g->refusing);
    while ((flush || n < max) && g_hash_table_iter_next(&it, &k, &v)) {
        struct ipstate *s = v;
        gboolean window_over = now - s->refused_first >= IPGUARD_SUMMARY_WINDOW_S * G_USEC_PER_SEC;
        /* A back-off episode is reported when it ends, not a minute later. */
        gboolean block_over = s->refused_why == why_backoff && s->blocked_until <= now;
        if (!flush && !window_over && !block_over)
            continue;
        fn(ud, k, s->refused, s->refused_first, s->refused_why);
        s->refused = 0;
        g_hash_table_iter_remove(&it);
        n++;
    }
    return n;
}

const char *ipguard_login_begin(struct ipguard *g, const char *key)
{
    struct ipstate *s = lookup(g, key, TRUE);
    if (s->blocked_until > g_get_monotonic_time())
        return "too many wrong passwords";
    if (g->max_per_ip && s->conns >= g->max_per_ip)
        return "too many password checks at once";
    s->conns++;
    return NULL;
}

guint ipguard_blocked_seconds(struct ipguard *g, const char *key)
{
    struct ipstate *s = lookup(g, key, FALSE);
    gint64 left = s ? s->blocked_until - g_get_monotonic_time() : 0;
    return left > 0 ? (guint)((left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC) : 0;
}

void ipguard_release(struct ipguard *g, const char *key)
{
    struct ipstate *s = lookup(g, key, FALSE);
    if (s && s->conns)
        s->conns--;
}

void ipguard_auth_failed(struct ipguard *g, const char *key)
{
    if (!g->threshold)
        return;
    struct ipstate *s = lookup(g, key, TRUE);
    gint64 now = g_get_monotonic_time();
    if (now - s->window_start > WINDOW_US) {
        s->window_start = now;
        s->failures = 0;
    }
    if (++s->failures >= g->threshold) {
        s->blocked_until = now + s->backoff_us;
        s->backoff_us = MIN(s->backoff_us * 2, MAX_BACKOFF_US);
        s->failures = 0;
        s->window_start = now;
    }
}

void ipguard_expire(struct ipguard *g)
{
    gint64 now = g_get_monotonic_time();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, g->ips);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct ipstate *s = v;
        /* Keep the back-off memory for a while after a block ends. */
        if (s->conns == 0 && s->refused == 0 && now - s->window_start > WINDOW_US &&
            now > s->blocked_until + MAX_BACKOFF_US)
            g_hash_table_iter_remove(&it);
    }
}

guint ipguard_tracked(const struct ipguard *g) { return g_hash_table_size(g->ips); }
