/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Keeping the running broker in step with storage: poll the data version,
 * and when it moved (or on SIGHUP) read a snapshot and flatten the graph on
 * the worker thread; then, on the loop thread, swap the graph in and
 * re-check every live session against the new authkeys.  The poll timer
 * also has the per-authkey traffic counters saved (counters.c).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "broker.h"
#include "cluster.h"
#include "counters.h"
#include "flow.h"
#include "graph.h"
#include "log.h"
#include "router.h"
#include "service.h"
#include "snapshot.h"
#include "web/web.h"
#include "worker.h"

/* How often traffic counters are written back, in reload ticks' seconds. */
#define COUNTERS_FLUSH_SECONDS 10

/* The data version we run on, and the reloads under way. */
struct reload {
    guint64 data_version;
    gboolean have_data;
    gboolean running;
    gboolean pending_force;  /* a forced reload asked for while one ran */
    gboolean pending_notify; /* ... and it was a SIGHUP: READY=1 once it is done */
    struct event *timer;
    guint ticks;      /* seconds since the counters were last saved */
    gboolean failing; /* the last reload failed: say when it works again */
    struct log_ratelimit rl;
};

struct reload *reload_new(void)
{
    struct reload *r = g_new0(struct reload, 1);
    r->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60);
    return r;
}

void reload_free(struct reload *r)
{
    if (!r)
        return;
    if (r->timer)
        event_free(r->timer);
    g_free(r);
}

guint64 reload_data_version(const struct broker *b) { return b->reload->data_version; }
gboolean reload_have_data(const struct broker *b) { return b->reload->have_data; }

struct reload_job {
    struct broker *b;
    gboolean force;
    gboolean notify; /* SIGHUP: tell the service manager when done */
    guint64 known_version;
    gboolean have_data;
    /* results */
    gboolean changed;
    struct snapshot *snap;
    struct graph *graph;
    GHashTable *cluster_keys; /* [cluster]: what injected messages are checked against */
    double build_ms;
    char *error;
};

/* Worker thread: everything that blocks or takes time. */
static void reload_run(void *arg)
{
    struct reload_job *j = arg;
    struct plugin_instance *st = j->b->storage;
    guint64 version = 0;
    int rc = st->desc->storage->version(st->inst, &version);
    if (rc != HPF_OK) {
        j->error = g_strdup_printf("reading the data version: %s", hpf_strerror(rc));
        return;
    }
    if (!j->force && j->have_data && version == j->known_version)
        return;
    GError *e = NULL;
    j->snap = snapshot_read(st, &e);
    if (!j->snap) {
        j->error = g_strdup(e->message);
        g_error_free(e);
        return;
    }
    j->changed = TRUE;
    if (j->b->cluster)
        j->cluster_keys = cluster_keys_build(j->snap);
    if (j->b->cfg->access == ACCESS_GRAPH) {
        gint64 t0 = g_get_monotonic_time();
        j->graph = graph_build(j->snap, j->b->cfg->require_accept);
        j->build_ms = (double)(g_get_monotonic_time() - t0) / 1000.0;
    }
}

/*
 * Whether the session's AUTH proves the key's current secret.  A new secret
 * (regenerated in the console, or hpfriendsctl authkey set --secret) is
 * meant to shut the old one out: sessions opened with it end at the reload
 * that brings the change, as a deleted key's do.
 */
static gboolean same_secret(const struct conn *c, const struct snap_authkey *k)
{
    uint8_t hash[WIRE_HASH_LEN];
    if (!k->secret ||
        wire_auth_hash(c->nonce, sizeof c->nonce, k->secret, strlen(k->secret), hash) != 0)
        return TRUE; /* cannot tell: keep the session rather than drop it on a fault */
    return CRYPTO_memcmp(hash, c->auth_hash, sizeof hash) == 0;
}

/* Flow health keeps the counts of authkeys storage still has, under the same owner. */
static gboolean key_exists(const char *ident, const char *owner, void *snap)
{
    const struct snapshot *s = snap;
    const struct snap_authkey *k = g_hash_table_lookup(s->authkey_by_ident, ident);
    return k && !g_strcmp0(k->owner, owner);
}

/* Bring one session in line with the new data (it may be closed). */
static void recheck_session(struct broker *b, struct conn *c, const struct snapshot *s)
{
    if (c->state != CONN_READY)
        return;
    if (b->graph)
        c->uid = graph_user_id(b->graph, c->owner);
    if (!c->key_from_storage)
        return;
    const struct snap_authkey *k = g_hash_table_lookup(s->authkey_by_ident, c->ident);
    if (!k) {
        log_notice("%s@%s: authkey deleted: closing its session", c->ident, c->peer);
        conn_fail(c, "revoked", "Authkey %s was revoked", c->ident);
        return;
    }
    if (!same_secret(c, k)) {
        log_notice("%s@%s: authkey secret changed: closing its session", c->ident, c->peer);
        conn_fail(c, "revoked", "Authkey %s: its secret was changed", c->ident);
        return;
    }
    if (strcmp(k->owner, c->owner)) {
        g_free(c->owner);
        c->owner = g_strdup(k->owner);
        if (b->graph)
            c->uid = graph_user_id(b->graph, c->owner);
    }
    g_hash_table_unref(c->may_publish);
    g_hash_table_unref(c->may_subscribe);
    c->may_publish = conn_channel_set(k->publish);
    c->may_subscribe = conn_channel_set(k->subscribe);

    GPtrArray *gone = NULL;
    GHashTableIter it;
    gpointer chan;
    g_hash_table_iter_init(&it, c->subscribed);
    while (g_hash_table_iter_next(&it, &chan, NULL))
        if (!g_hash_table_contains(c->may_subscribe, chan)) {
            if (!gone)
                gone = g_ptr_array_new();
            g_ptr_array_add(gone, chan);
        }
    for (guint i = 0; gone && i < gone->len; i++) {
        log_notice("%s@%s: no longer allowed to subscribe to %s: subscription dropped", c->ident,
                   c->peer, (char *)gone->pdata[i]);
        router_unsubscribe(b->router, gone->pdata[i], c);
        g_hash_table_remove(c->subscribed, gone->pdata[i]);
    }
    if (gone)
        g_ptr_array_unref(gone);
}

/*
 * Freeing a large graph or snapshot takes long enough (hundreds of ms at
 * 100,000 users) to stall the loop: do it on a short-lived thread.
 */
struct garbage {
    struct graph *graph;
    struct snapshot *snap;
    GHashTable *table;
};

static gpointer free_garbage(gpointer p)
{
    struct garbage *g = p;
    graph_free(g->graph);
    snapshot_free(g->snap);
    if (g->table)
        g_hash_table_unref(g->table);
    g_free(g);
    return NULL;
}

static void free_later3(struct graph *graph, struct snapshot *snap, GHashTable *table)
{
    if (!graph && !snap && !table)
        return;
    struct garbage *g = g_new0(struct garbage, 1);
    g->graph = graph;
    g->snap = snap;
    g->table = table;
    GError *e = NULL;
    GThread *t = g_thread_try_new("hpf-free", free_garbage, g, &e);
    if (t) {
        g_thread_unref(t);
    } else {
        g_error_free(e);
        free_garbage(g); /* no thread to be had: pay the stall */
    }
}

static void free_later(struct graph *graph, struct snapshot *snap)
{
    free_later3(graph, snap, NULL);
}

static void apply_result(struct broker *b, struct reload_job *j)
{
    if (j->graph) {
        free_later(b->graph, NULL);
        b->graph = g_steal_pointer(&j->graph);
        b->stats.graph_build_ms = j->build_ms;
        struct graph_stats gs;
        graph_get_stats(b->graph, &gs);
        log_info("graph: version %" G_GUINT64_FORMAT ": %u users, %u channels, %u entries, "
                 "%u distinct reader sets, built in %.1f ms",
                 j->snap->version, gs.users, gs.channels, gs.entries, gs.distinct_sets,
                 j->build_ms);
    }
    if (j->cluster_keys)
        free_later3(NULL, NULL, cluster_set_keys(b->cluster, g_steal_pointer(&j->cluster_keys)));
    b->reload->data_version = j->snap->version;
    b->reload->have_data = TRUE;
    if (b->web)
        web_snapshot_loaded(b->web, j->snap);
    b->stats.graph_reloads++;
    GList *all = g_hash_table_get_values(b->conns);
    for (GList *l = all; l; l = l->next)
        recheck_session(b, l->data, j->snap);
    if (b->flow)
        flow_forget(b->flow, key_exists, j->snap);
    g_list_free(all);
}

static void reload_job_free(struct reload_job *j)
{
    snapshot_free(j->snap);
    graph_free(j->graph);
    if (j->cluster_keys)
        g_hash_table_unref(j->cluster_keys);
    g_free(j->error);
    g_free(j);
}

static void submit(struct broker *b, gboolean force, gboolean notify);

/* The SIGHUP reload is over, whatever came of it. */
static void notify_reloaded(struct broker *b, const struct reload_job *j)
{
    char *status = j->error ? g_strdup_printf("reload failed: %s", j->error)
                            : g_strdup_printf("serving data version %" G_GUINT64_FORMAT,
                                              b->reload->data_version);
    service_notify_reloaded(status);
    g_free(status);
}

static void reload_done(void *arg)
{
    struct reload_job *j = arg;
    struct broker *b = j->b;
    struct reload *r = b->reload;
    r->running = FALSE;
    if (j->error) {
        uint64_t held = 0;
        b->stats.graph_reload_failures++;
        if (log_ratelimit_ok(&r->rl, &held))
            log_err("storage: reload failed: %s (keeping the data of version %" G_GUINT64_FORMAT
                    "; %" G_GUINT64_FORMAT " more failures not logged)",
                    j->error, r->data_version, held);
        r->failing = TRUE;
    } else {
        if (r->failing)
            log_notice("storage: reload works again");
        r->failing = FALSE;
        if (j->changed && !b->stopping)
            apply_result(b, j);
    }
    if (j->notify && !b->stopping)
        notify_reloaded(b, j);
    free_later(NULL, g_steal_pointer(&j->snap));
    reload_job_free(j);
    if (r->pending_force && !b->stopping) {
        gboolean notify = r->pending_notify;
        r->pending_force = r->pending_notify = FALSE;
        submit(b, TRUE, notify);
    }
}

static void submit(struct broker *b, gboolean force, gboolean notify)
{
    struct reload *r = b->reload;
    if (r->running) {
        if (force)
            r->pending_force = TRUE;
        if (notify)
            r->pending_notify = TRUE;
        return;
    }
    struct reload_job *j = g_new0(struct reload_job, 1);
    j->b = b;
    j->force = force;
    j->notify = notify;
    j->known_version = r->data_version;
    j->have_data = r->have_data;
    r->running = TRUE;
    worker_submit(b->worker, reload_run, reload_done, j);
}

void reload_request(struct broker *b) { submit(b, TRUE, FALSE); }
void reload_request_notify(struct broker *b) { submit(b, TRUE, TRUE); }

gboolean reload_initial(struct broker *b, GError **error)
{
    struct reload_job *j = g_new0(struct reload_job, 1);
    j->b = b;
    j->force = TRUE;
    reload_run(j); /* no worker yet: nothing else touches storage */
    gboolean ok = j->error == NULL;
    if (!ok)
        g_set_error(error, HPF_PLUGIN_ERROR, 0, "storage: %s", j->error);
    else
        apply_result(b, j);
    reload_job_free(j);
    return ok;
}

/* ---- the poll timer ---- */

static void on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    struct reload *r = b->reload;
    submit(b, FALSE, FALSE);
    r->ticks += b->cfg->reload_interval;
    if (r->ticks >= COUNTERS_FLUSH_SECONDS) {
        r->ticks = 0;
        counters_flush(b, FALSE);
    }
}

void reload_start(struct broker *b)
{
    struct reload *r = b->reload;
    r->timer = event_new(b->base, -1, EV_PERSIST, on_reload_timer, b);
    struct timeval tv = {(time_t)b->cfg->reload_interval, 0};
    evtimer_add(r->timer, &tv);
}

void reload_stop(struct broker *b)
{
    struct reload *r = b->reload;
    if (r && r->timer) {
        event_free(r->timer);
        r->timer = NULL;
    }
}
