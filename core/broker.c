/* SPDX-License-Identifier: BSD-3-Clause */
/* The broker: plugins, listeners, signals, the housekeeping tick. */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/util.h>

#include "accept.h"
#include "broker.h"
#include "cluster.h"
#include "counters.h"
#include "flow.h"
#include "graph.h"
#include "ipguard.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "service.h"
#include "sinks.h"
#include "tls.h"
#include "web/web.h"
#include "worker.h"

struct listener {
    struct broker *b;
    struct evconnlistener *l;
    gboolean tls;
    char *host; /* as configured: "" or "*" for any */
};

static void listener_free(gpointer p)
{
    struct listener *li = p;
    accept_guard_detach(li->l);
    evconnlistener_free(li->l);
    g_free(li->host);
    g_free(li);
}

static char *deny_text(gboolean legacy, enum deny_kind kind, const char *ident, const char *chan)
{
    switch (kind) {
    case DENY_AUTH:
        return legacy ? g_strdup("authfail.")
                      : g_strdup_printf("Authentication failed for %s", ident);
    case DENY_IDENT:
        return legacy ? g_strdup("identfail.")
                      : g_strdup_printf("Invalid authkey in message, ident=%s", ident);
    case DENY_PUB:
        return legacy ? g_strdup("accessfail.")
                      : g_strdup_printf("Authkey not allowed to pub here. ident=%s, chan=%s", ident,
                                        chan);
    case DENY_SUB:
        return legacy ? g_strdup("accessfail.")
                      : g_strdup_printf("Authkey not allowed to sub here. ident=%s, chan=%s", ident,
                                        chan);
    }
    return g_strdup("denied");
}

/* The ident and channel are the client's bytes: shown escaped, as in the log. */
char *broker_deny_text(const struct broker *b, enum deny_kind kind, const char *ident,
                       const char *chan)
{
    char *i = log_escape(ident), *c = log_escape(chan);
    char *text = deny_text(b->cfg->error_style == ERROR_STYLE_LEGACY, kind, i, c);
    g_free(i);
    g_free(c);
    return text;
}

static guint64 id_hash_key(gconstpointer p) { return *(const guint64 *)p; }
static guint id_hash(gconstpointer p) { return (guint)(id_hash_key(p) ^ (id_hash_key(p) >> 32)); }
static gboolean id_equal(gconstpointer a, gconstpointer b)
{
    return *(const guint64 *)a == *(const guint64 *)b;
}

struct broker *broker_new(struct config *cfg, GError **error)
{
    struct broker *b = g_new0(struct broker, 1);
    b->cfg = cfg;
    /* The changelist folds the write-event add and delete that every
     * subscriber's queue goes through in one loop turn into no syscall;
     * without it each delivery batch costs two epoll_ctl.  (Its caveat,
     * dup()ed descriptors, does not apply: we never dup a socket.) */
    struct event_config *ecfg = event_config_new();
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    b->base = ecfg ? event_base_new_with_config(ecfg) : NULL;
    if (ecfg)
        event_config_free(ecfg);
    if (!b->base) {
        g_set_error(error, CONFIG_ERROR, 0, "cannot create the event loop");
        g_free(b);
        return NULL;
    }
    b->listeners = g_ptr_array_new_with_free_func(listener_free);
    b->conns = g_hash_table_new(id_hash, id_equal);
    b->out = output_new(b);
    b->router = router_new();
    b->auth_chain = g_ptr_array_new_with_free_func((GDestroyNotify)plugin_instance_free);
    b->reload = reload_new();
    b->counters = counters_new();
    b->flow = flow_new(FLOW_MAX_SERIES);
    b->metrics = metrics_new();
    b->ipguard = ipguard_new(cfg->max_connections_per_ip, cfg->auth_failures_before_backoff,
                             cfg->auth_backoff);
    ipguard_count_refusals(b->ipguard);
    return b;
}

/* ---- accepting ---- */

static void reject_connection(evutil_socket_t fd, const char *text)
{
    uint8_t buf[128];
    size_t n = wire_encode_error(buf, sizeof buf, text, strlen(text));
    ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w; /* best effort: the peer learns why, or just sees the close */
    shutdown(fd, SHUT_WR);
    evutil_closesocket(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct listener *li = arg;
    struct broker *b = li->b;
    if (b->stopping) {
        evutil_closesocket(fd);
        return;
    }
    if (g_hash_table_size(b->conns) >= b->cfg->max_connections) {
        static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10);
        uint64_t held = 0;
        if (log_ratelimit_ok(&rl, &held))
            log_warn("broker: refusing connection: max_connections (%u) reached (%" G_GUINT64_FORMAT
                     " more refused since last said)",
                     b->cfg->max_connections, held);
        reject_connection(fd, "Too many connections");
        return;
    }
    char addr[48];
    ipguard_key(sa, addr, sizeof addr);
    const char *why = ipguard_admit(b->ipguard, addr);
    if (why) {
        static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10);
        if (log_ratelimit_ok(&rl, NULL))
            log_warn("broker: refusing a connection from %s: %s", addr, why);
        reject_connection(fd, why);
        return;
    }
    conn_new(b, fd, sa, li->tls);
}

/* hpfeeds3's device=: only connections arriving over that interface are accepted. */
static gboolean bind_device(struct evconnlistener *l, const struct listen_addr *la,
                            const char *spec, GError **error)
{
    if (!la->device)
        return TRUE;
    if (setsockopt(evconnlistener_get_fd(l), SOL_SOCKET, SO_BINDTODEVICE, la->device,
                   (socklen_t)strlen(la->device)) == 0)
        return TRUE;
    g_set_error(error, CONFIG_ERROR, 0, "listen %s: device %s: %s", spec, la->device,
                g_strerror(errno));
    return FALSE;
}

static gboolean bind_one(struct broker *b, const struct listen_addr *la, FILE *ready,
                         GError **error)
{
    struct evutil_addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV;
    const char *host = (*la->host && strcmp(la->host, "*")) ? la->host : NULL;
    char *spec = listen_addr_to_string(la);
    int rc = evutil_getaddrinfo(host, la->port, &hints, &res);
    if (rc != 0) {
        g_set_error(error, CONFIG_ERROR, 0, "listen %s: %s", spec, evutil_gai_strerror(rc));
        g_free(spec);
        return FALSE;
    }
    if (la->tls && !b->tls) {
        char *cert = config_resolve_path(b->cfg, b->cfg->tls_cert);
        char *key = config_resolve_path(b->cfg, b->cfg->tls_key);
        b->tls = tls_server_ctx(cert, key, error);
        g_free(cert);
        g_free(key);
        if (!b->tls) {
            g_prefix_error(error, "listen %s: ", spec);
            evutil_freeaddrinfo(res);
            g_free(spec);
            return FALSE;
        }
    }
    struct listener *li = g_new0(struct listener, 1);
    li->b = b;
    li->tls = la->tls;
    struct evconnlistener *l = evconnlistener_new_bind(
        b->base, on_accept, li, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, res->ai_addr, (int)res->ai_addrlen);
    evutil_freeaddrinfo(res);
    if (!l) {
        g_set_error(error, CONFIG_ERROR, 0, "listen %s: %s", spec,
                    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        g_free(li);
        g_free(spec);
        return FALSE;
    }
    li->l = l;
    li->host = g_strdup(la->host);
    g_ptr_array_add(b->listeners, li);
    if (!bind_device(l, la, spec, error)) {
        g_free(spec);
        return FALSE;
    }
    /* Out of descriptors: rest, and tell the waiting clients (plain ones) why they go. */
    if (la->tls) {
        accept_guard_attach(l, "broker", NULL, 0);
    } else {
        uint8_t busy[64];
        const char *text = "Too many connections";
        accept_guard_attach(l, "broker", busy,
                            wire_encode_error(busy, sizeof busy, text, strlen(text)));
    }

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            evutil_inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
            port = ntohs(s6->sin6_port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            evutil_inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
            port = ntohs(s4->sin_port);
        }
    }
    log_notice("broker: listening on %s (port %d)", spec, port);
    if (ready)
        fprintf(ready, "%s %s %d\n", la->tls ? "tls" : "tcp", addr, port);
    g_free(spec);
    return TRUE;
}

gint64 broker_now_s(struct broker *b)
{
    /* time() is a vDSO read; the loop's cached time takes the base's lock,
     * and this runs per published message (perf: 3.6 % of the broker under
     * hpfriends-bench -s ingest). */
    (void)b;
    return (gint64)time(NULL);
}

gboolean broker_listen_endpoint(struct broker *b, char **host, int *port, gboolean *tls)
{
    const struct listener *li = b->listeners && b->listeners->len ? b->listeners->pdata[0] : NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (!li || getsockname(evconnlistener_get_fd(li->l), (struct sockaddr *)&ss, &sl) != 0)
        return FALSE;
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    *host = g_strdup(li->host);
    *tls = li->tls;
    return TRUE;
}

/* ---- housekeeping ---- */

void broker_slow_close(struct broker *b, struct conn *c, const char *how)
{
    /* conn_close's disconnect event says "closed by broker: slow consumer"
     * and carries the drops: one event per connection. */
    if (!c->close_why)
        c->close_why = g_strdup("slow consumer");
    log_warn("%s@%s: disconnecting slow consumer: %zu bytes %s %u s, %" G_GUINT64_FORMAT
             " messages dropped",
             c->ident, c->peer, conn_queued(c), how, b->cfg->slow_deadline, c->dropped);
    b->stats.slow_disconnects++;
}

static void check_slow_consumers(struct broker *b)
{
    gint64 now = g_get_monotonic_time();
    gint64 deadline = (gint64)b->cfg->slow_deadline * G_USEC_PER_SEC;
    GPtrArray *victims = NULL;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, b->conns);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct conn *c = v;
        if (!c->over_since_us)
            continue;
        if (conn_queued(c) <= b->cfg->max_queued_bytes / 2) {
            metrics_deadline(b->metrics, c->ident, FALSE);
            log_notice("%s@%s: slow consumer caught up; %" G_GUINT64_FORMAT
                       " messages were dropped for it",
                       c->ident, c->peer, c->dropped);
            c->over_since_us = 0;
        } else if (now - c->over_since_us >= deadline) {
            if (!victims)
                victims = g_ptr_array_new();
            g_ptr_array_add(victims, c);
        }
    }
    for (guint i = 0; victims && i < victims->len; i++) {
        struct conn *c = victims->pdata[i];
        broker_slow_close(b, c, "queued for over");
        conn_close(c, "slow consumer");
    }
    if (victims)
        g_ptr_array_unref(victims);
}

/*
 * glibc keeps freed memory for reuse, and after a burst (a flood of
 * clients, a backlog drained) that can be tens of MiB that nothing uses
 * (measured in tests/integration/t08_soak: 88 MiB resident, 15 MiB after a
 * trim).  What is resident but not in use is the process's RSS less what
 * malloc has handed out; its lowest value is what the process needs beside
 * the heap.  Give memory back when that grew by a good part (judged every
 * fifth tick), and once a burst of closed connections is over (no more
 * closed in the last tick): 3,000 abandoned TLS handshakes leave some
 * 16 MiB resident, and a trim takes it back to within 5 MiB of the start
 * (t11_hostile).  (Not mallinfo2's free count alone: what a trim gave back
 * stays counted free, and a heap with holes would be trimmed again and
 * again, on a loop that faults the same pages back in.)
 */
#define TRIM_AFTER_CLOSES 64
#define TRIM_GROWTH       ((size_t)8 * 1024 * 1024) /* periodic: this much more held */
#define TRIM_BURST_FLOOR  ((size_t)1024 * 1024)     /* after a burst: this much counted free */

#ifdef __GLIBC__
/* Resident bytes not handed out by malloc, as mi counts them (0 when /proc
 * cannot say). */
static size_t held_idle(const struct mallinfo2 *mi)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    size_t rss = (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
    size_t used = mi->uordblks + mi->hblkhd;
    return rss > used ? rss - used : 0;
}
#endif

static void release_free_memory(const struct broker *b, gboolean periodic)
{
#ifdef __GLIBC__
    static guint64 lost_seen, lost_trimmed;
    static size_t low = SIZE_MAX; /* least held_idle() seen */
    guint64 lost = b->stats.connections_lost;
    gboolean burst_over = lost == lost_seen && lost - lost_trimmed >= TRIM_AFTER_CLOSES;
    lost_seen = lost;
    if (!burst_over && !periodic)
        return;
    struct mallinfo2 mi = mallinfo2();
    size_t idle = held_idle(&mi);
    low = MIN(low, idle);
    size_t grown = idle - low;
    /* After a burst, what malloc counts free (abandoned TLS handshakes
     * leave their memory "in use" in the resident count until then). */
    gboolean burst_free = burst_over && mi.fordblks >= TRIM_BURST_FLOOR;
    if (burst_free || grown > TRIM_GROWTH) {
        malloc_trim(0);
        mi = mallinfo2();
        low = MIN(low, held_idle(&mi));
    }
    if (burst_over)
        lost_trimmed = lost;
#endif
}

/*
 * The fanout's buffers are large and short-lived: every read of a busy
 * publisher takes a 256 KiB frame block and an input chain as large, freed
 * again once the subscribers' sockets took them.  glibc's defaults give
 * such memory back at once (blocks over its mmap threshold are unmapped;
 * free space over twice that at the top of the heap is trimmed) and take
 * fresh, zeroed pages for the next read: 14,000 page faults a second in
 * `hpfriends-bench -s fanout`, and ns/out 5-10 % higher.  Fixed thresholds
 * keep up to TRIM_KEEP free at the top of the heap and serve blocks under
 * MMAP_ABOVE from it.  What a burst leaves beyond that is still given back
 * by release_free_memory().  GLIBC_TUNABLES naming malloc settings, or
 * glibc's MALLOC_*_ variables, take precedence.
 */
#define MMAP_ABOVE ((size_t)1024 * 1024)
#define TRIM_KEEP  ((size_t)4 * 1024 * 1024)

void broker_tune_malloc(void)
{
#ifdef __GLIBC__
    const char *tunables = g_getenv("GLIBC_TUNABLES");
    if ((tunables && strstr(tunables, "glibc.malloc.")) || g_getenv("MALLOC_TRIM_THRESHOLD_") ||
        g_getenv("MALLOC_MMAP_THRESHOLD_"))
        return;
    mallopt(M_MMAP_THRESHOLD, (int)MMAP_ABOVE);
    mallopt(M_TRIM_THRESHOLD, (int)TRIM_KEEP);
#endif
}

/* Addresses whose refusals a tick reports at most (the rest wait a second). */
#define REFUSAL_SUMMARIES_PER_TICK 64

static void on_refusals(void *ud, const char *addr, guint count, gint64 first_us, const char *why)
{
    struct broker *b = ud;
    gint64 secs = (g_get_monotonic_time() - first_us) / G_USEC_PER_SEC;
    char span[32];
    if (secs >= IPGUARD_SUMMARY_WINDOW_S)
        g_strlcpy(span, "minute", sizeof span);
    else
        g_snprintf(span, sizeof span, "%" G_GINT64_FORMAT " s", MAX(secs, (gint64)1));
    char *text = g_strdup_printf("refused %u connection%s from %s in the last %s: %s", count,
                                 count == 1 ? "" : "s", addr, span, why);
    sinks_event(b->sinks,
                &(struct hpf_event){
                    .type = HPF_EVENT_REFUSED, .peer = addr, .reason = text, .count = count});
    g_free(text);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    static guint ticks;
    check_slow_consumers(b);
    ipguard_summaries(b->ipguard, REFUSAL_SUMMARIES_PER_TICK, FALSE, on_refusals, b);
    if (++ticks % 60 == 0)
        ipguard_expire(b->ipguard);
    release_free_memory(b, ticks % 5 == 0);
}

/* How long a stopping broker waits for subscribers to take what is queued. */
#define SHUTDOWN_DRAIN_US (2 * G_USEC_PER_SEC)

static void close_all(struct broker *b, const char *reason)
{
    GList *all = g_hash_table_get_values(b->conns);
    for (GList *l = all; l; l = l->next)
        conn_close(l->data, reason);
    g_list_free(all);
}

/*
 * Stopping: no new connections and no new input, then give subscribers a
 * moment to receive what is already queued for them, then close.
 */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    size_t queued = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, b->conns);
    while (g_hash_table_iter_next(&it, NULL, &v))
        queued += conn_queued(v);
    if (queued > 0 && g_get_monotonic_time() < b->stop_deadline_us)
        return;
    if (queued > 0)
        log_warn("broker: %zu queued bytes not delivered at shutdown", queued);
    close_all(b, "broker shutting down");
    event_base_loopexit(b->base, NULL);
}

static void begin_shutdown(struct broker *b, const char *why)
{
    if (b->stopping)
        return;
    b->stopping = TRUE;
    log_notice("broker: %s: shutting down", why);
    char *status = g_strdup_printf("%s: shutting down", why);
    service_notify_stopping(status);
    g_free(status);
    g_ptr_array_set_size(b->listeners, 0);
    metrics_stop(b);
    web_stop(b->web);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, b->conns);
    while (g_hash_table_iter_next(&it, NULL, &v))
        conn_stop_reading(v);
    b->stop_deadline_us = g_get_monotonic_time() + SHUTDOWN_DRAIN_US;
    event_del(b->tick);
    event_assign(b->tick, b->base, -1, EV_PERSIST, on_drain_tick, b);
    struct timeval tick = {0, 50000};
    evtimer_add(b->tick, &tick);
}

/* New certificate and key for new sessions; live sessions keep theirs. */
static void reload_tls(struct broker *b)
{
    if (!b->tls)
        return;
    GError *e = NULL;
    char *cert = config_resolve_path(b->cfg, b->cfg->tls_cert);
    char *key = config_resolve_path(b->cfg, b->cfg->tls_key);
    SSL_CTX *ctx = tls_server_ctx(cert, key, &e);
    g_free(cert);
    g_free(key);
    if (!ctx) {
        log_err("broker: TLS reload failed, keeping the old certificate: %s", e->message);
        g_error_free(e);
        return;
    }
    SSL_CTX_free(b->tls); /* sessions hold their own reference */
    b->tls = ctx;
    log_notice("broker: TLS certificate and key reloaded");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct broker *b = arg;
    if (sig == SIGHUP) {
        log_notice("broker: SIGHUP: reloading the graph and authkeys, reopening sinks");
        if (!b->stopping) /* STOPPING=1 was sent: no READY=1 will follow */
            service_notify_reloading();
        reload_tls(b);
        reload_request_notify(b);
        sinks_reopen(b->sinks);
        return;
    }
    begin_shutdown(b, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- plugins ---- */

static struct plugin_instance *load_plugin(struct broker *b, const struct plugin_conf *pc,
                                           enum hpf_kind kind, gboolean start, GError **error)
{
    const char *dir = plugin_dir_resolve(b->cfg->plugin_dir);
    char *iname =
        kind == HPF_KIND_STORAGE ? g_strdup("storage") : g_strdup_printf("%s", pc->section);
    struct plugin_instance *pi =
        plugin_instance_new(dir, pc->plugin, kind, iname, pc->keys, b->cfg->dir, error);
    g_free(iname);
    if (pi && start && !plugin_instance_start(pi, error)) {
        plugin_instance_free(pi);
        pi = NULL;
    }
    if (!pi)
        config_prefix_error(b->cfg, error);
    return pi;
}

gboolean broker_load_plugins(struct broker *b, gboolean start, GError **error)
{
    b->storage = load_plugin(b, b->cfg->storage, HPF_KIND_STORAGE, start, error);
    if (!b->storage)
        return FALSE;
    plugin_set_storage(b->storage);
    for (guint i = 0; i < b->cfg->auth->len; i++) {
        struct plugin_instance *pi =
            load_plugin(b, b->cfg->auth->pdata[i], HPF_KIND_AUTH, start, error);
        if (!pi)
            return FALSE;
        g_ptr_array_add(b->auth_chain, pi);
    }
    b->sinks = sinks_new(b->cfg, plugin_dir_resolve(b->cfg->plugin_dir), error);
    if (!b->sinks)
        return FALSE;
    if (start && !sinks_start(b->sinks, error)) {
        config_prefix_error(b->cfg, error);
        return FALSE;
    }
    if (b->cfg->cluster) {
        b->cluster = cluster_new(b, error);
        if (!b->cluster || (start && !cluster_start(b->cluster, error))) {
            config_prefix_error(b->cfg, error);
            return FALSE;
        }
    }
    return TRUE;
}

/*
 * Listeners, exporter and console: what may need root (ports below 1024,
 * TLS keys only root may read).  Their "ready" lines go to ready.
 */
static gboolean bind_all(struct broker *b, FILE *ready, GError **error)
{
    gboolean ok = TRUE;
    for (guint i = 0; i < b->cfg->listen->len && ok; i++)
        ok = bind_one(b, b->cfg->listen->pdata[i], ready, error);
    if (ok && b->cfg->exporter) {
        ok = metrics_listen(b, error);
        if (ok) {
            log_notice("broker: metrics on http://%s/metrics (port %d)", b->cfg->exporter,
                       b->exporter_port);
            if (ready)
                fprintf(ready, "http %s %d\n", "exporter", b->exporter_port);
        }
    }
    if (ok && b->cfg->web)
        ok = web_start(b, ready, error);
    return ok;
}

/* Plugins, the worker, signals and the first data: as the service user. */
static gboolean start_serving(struct broker *b, GError **error)
{
    if (!broker_load_plugins(b, TRUE, error))
        return FALSE;
    b->worker = worker_new(b->base, "storage");
    if (!b->worker) {
        g_set_error(error, CONFIG_ERROR, 0, "cannot start the storage worker");
        return FALSE;
    }

    /* Signals first: whoever sees the ready file may signal at once. */
    b->sig_term = evsignal_new(b->base, SIGTERM, on_signal, b);
    b->sig_int = evsignal_new(b->base, SIGINT, on_signal, b);
    b->sig_hup = evsignal_new(b->base, SIGHUP, on_signal, b);
    evsignal_add(b->sig_term, NULL);
    evsignal_add(b->sig_int, NULL);
    evsignal_add(b->sig_hup, NULL);

    /* Start on current data; if storage is down, serve and keep trying. */
    GError *e = NULL;
    if (!reload_initial(b, &e)) {
        log_err("%s (will retry every %u s)", e->message, b->cfg->reload_interval);
        g_error_free(e);
    }
    reload_start(b);
    if (b->web)
        web_begin(b);
    return TRUE;
}

/* Under a temporary name first: readers never see half a file. */
static gboolean write_ready_file(const char *ready_file, const char *text, size_t len,
                                 GError **error)
{
    char *tmp = g_strdup_printf("%s.tmp", ready_file);
    FILE *f = fopen(tmp, "w");
    gboolean ok = f != NULL;
    if (!ok)
        g_set_error(error, CONFIG_ERROR, 0, "--ready-file %s: %s", tmp, g_strerror(errno));
    if (ok) {
        gboolean wrote = len == 0 || fwrite(text, 1, len, f) == len;
        if (fclose(f) != 0 || !wrote) {
            g_set_error(error, CONFIG_ERROR, 0, "--ready-file %s: %s", tmp, g_strerror(errno));
            ok = FALSE;
        }
    }
    if (ok && rename(tmp, ready_file) != 0) {
        g_set_error(error, CONFIG_ERROR, 0, "--ready-file %s: %s", ready_file, g_strerror(errno));
        ok = FALSE;
    }
    if (!ok && f)
        unlink(tmp);
    g_free(tmp);
    return ok;
}

/*
 * The order matters for a broker started as root with [broker] user: bind
 * (and read TLS keys) as root, then switch users for good, then open
 * storage and sinks, so that the files they create belong to the service
 * user and a sink can reopen its file on SIGHUP (logrotate) with the same
 * rights it first opened it with.  Nothing is accepted before the loop
 * runs, so binding before the data is loaded loses no connection.
 */
gboolean broker_start(struct broker *b, const char *ready_file, GError **error)
{
    char *lines = NULL;
    size_t len = 0;
    FILE *ready = ready_file ? open_memstream(&lines, &len) : NULL;
    if (ready_file && !ready) {
        g_set_error(error, CONFIG_ERROR, 0, "--ready-file: %s", g_strerror(errno));
        return FALSE;
    }
    gboolean ok = bind_all(b, ready, error);
    if (ready)
        fclose(ready);
    ok = ok && service_drop_privileges(b->cfg, error) && start_serving(b, error);
    if (ok && ready_file)
        ok = write_ready_file(ready_file, lines, len, error);
    free(lines);
    if (!ok)
        return FALSE;

    b->tick = event_new(b->base, -1, EV_PERSIST, on_tick, b);
    struct timeval one = {1, 0};
    evtimer_add(b->tick, &one);
    log_notice("broker: %s ready (access = %s)", b->cfg->name,
               b->cfg->access == ACCESS_GRAPH ? "graph" : "channels");
    return TRUE;
}

int broker_run(struct broker *b) { return event_base_dispatch(b->base) < 0 ? 1 : 0; }

void broker_free(struct broker *b)
{
    if (!b)
        return;
    ipguard_summaries(b->ipguard, 0, TRUE, on_refusals, b); /* what the last ticks had not said */
    close_all(b, "broker shutting down");
    g_ptr_array_unref(b->listeners);
    cluster_free(b->cluster);
    reload_stop(b);
    /* Finish queued plugin calls before the plugins go, then save counters. */
    web_stop(b->web);
    worker_free(b->worker);
    web_free(b->web);
    if (b->storage && b->storage->started)
        counters_flush(b, TRUE);
    counters_free(b->counters);
    flow_free(b->flow);
    reload_free(b->reload);
    graph_free(b->graph);
    /* Every accepted message is queued by now: let the sinks drain and flush. */
    sinks_free(b->sinks);
    metrics_stop(b);
    metrics_free(b->metrics);
    ipguard_free(b->ipguard);
    g_ptr_array_unref(b->auth_chain);
    plugin_instance_free(b->storage);
    router_free(b->router);
    g_hash_table_unref(b->conns);
    output_free(b->out);
    conn_budget_free(b);
    if (b->sig_term) {
        event_free(b->sig_term);
        event_free(b->sig_int);
        event_free(b->sig_hup);
    }
    if (b->tick) /* made last in broker_start: absent when a listener failed */
        event_free(b->tick);
    if (b->tls)
        SSL_CTX_free(b->tls);
    event_base_free(b->base);
    g_free(b);
}
