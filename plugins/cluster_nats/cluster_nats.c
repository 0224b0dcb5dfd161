/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cluster_nats: hpfriendsd nodes exchange accepted messages over NATS.
 *
 * Subjects.  hpfeeds channel names are arbitrary bytes; NATS subjects are
 * '.'-separated tokens without spaces or wildcards.  A channel C travels on
 * "<subject_prefix>.x<hex(C)>" (lower-case hex, two digits per byte; the
 * 'x' keeps the token non-empty for an empty channel), which maps every
 * channel to its own subject and back.
 *
 * Headers.  Hpf-Ident and Hpf-Owner carry the publisher's ident and owner
 * as the origin node accepted them, Hpf-Origin the origin's node name.
 * Values are percent-encoded (every byte outside '!'..'~', and '%' itself)
 * so that any bytes survive NATS's header syntax.  The payload is the
 * message body, bytes as they are.
 *
 * Echoes.  The connection is made with no_echo, so the server never hands a
 * node its own messages.  Hpf-Instance carries a random id drawn at each
 * start; a message with our own id is dropped all the same.  A message
 * that names this node in Hpf-Origin under another id comes from another
 * process configured with our name: it is delivered (it is no echo), but
 * counted and logged as an error, since such a mistake is easy to make.
 *
 * Threads.  The broker calls publish() and interest() on its event loop;
 * publish() only queues a command (bounded by what the commands really
 * cost in memory and by their number: what does not fit is counted and
 * logged) and interest() records the wanted state of the channel's
 * subscription (one entry per channel, however often it flaps), for this
 * plugin's sender thread, which talks to libnats, so a slow or absent NATS
 * never blocks the loop.  Writes to NATS have a deadline, so a stalled
 * server turns into counted publish errors rather than a stuck sender; on
 * stop, what is still queued is dropped (counted, logged once).  libnats
 * delivers received messages on one thread of its global delivery pool
 * (pool size 1: messages are handed on in the order they arrived); that
 * thread decodes them and calls host->cluster_inject(), which copies.
 * Connecting.  start() tries once; when no server takes the node (none
 * answers, or a TLS or authorization failure), the sender thread tries
 * again every reconnect_wait (doubling up to CONNECT_RETRY_MAX_MS) and
 * logs why, while publishes fail (counted) and interest is kept for when
 * the connection comes.  libnats's own retry of a failed first connect is
 * not used: libnats 3.4 closes such a connection for good after a TLS
 * failure and forgets the reason.  Once connected, libnats keeps
 * reconnecting by itself and buffers publishes up to reconnect_buffer
 * bytes; past that, publishes fail and are counted.  A connection libnats
 * closes on its own is dropped and made anew by the sender thread.
 *
 * TLS.  On with tls = true, any tls:// server URL or any tls_* key (libnats
 * would otherwise talk in clear to a tls:// URL whose server offers no
 * TLS).  libnats checks the server's name only when given one, so the name
 * defaults to the host the server URLs share (an IP address is checked
 * against the certificate's IP addresses); servers on several hosts need
 * tls_hostname, the one name libnats checks for all of them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <nats/nats.h>
#include <openssl/ssl.h>

#include <hpfriends/cluster.h>
#include <hpfriends/plugin.h>

#include "codec.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0"
#endif

#define DEFAULT_PREFIX            "hpfriends"
#define DEFAULT_QUEUE_BYTES       (64u * 1024u * 1024u)
#define DEFAULT_RECONNECT_BUFFER  (8 * 1024 * 1024)
#define DEFAULT_RECONNECT_WAIT_MS 250
/* At most this many publishes wait for the sender, whatever their size. */
#define QUEUE_MAX_CMDS            1000000u
/* What a queued command costs beyond its strings: its allocations' heads. */
#define CMD_OVERHEAD              64u
/* A write to NATS that does not finish within this fails (ms). */
#define WRITE_DEADLINE_MS         2000
/* destroy(): how long the sender may take to notice before the connection
 * is closed under it (ms), and how long libnats's threads get to end. */
#define STOP_GRACE_MS             2500
#define CLOSE_WAIT_MS             4000
/* Retries of a connect that failed: reconnect_wait, doubling up to this (ms). */
#define CONNECT_RETRY_MAX_MS      5000
/* A subscribe that failed on a live connection is tried again after this. */
#define RESUB_RETRY_US            (5 * G_USEC_PER_SEC)
/* One attempt at one server (TCP, TLS and the NATS handshake); a stop
 * that comes while the sender is in a connect waits for it, so this bounds
 * that wait too (per listed server, plus name resolution). */
#define CONNECT_TIMEOUT_MS        2000
/* Counters bumped on several threads, read on the loop thread. */
#define COUNT_ADD(x)              __atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)
#define COUNT_GET(x)              __atomic_load_n(&(x), __ATOMIC_RELAXED)

#define HDR_IDENT            CNATS_HDR_IDENT
#define HDR_OWNER            CNATS_HDR_OWNER
#define HDR_ORIGIN           "Hpf-Origin"
#define HDR_INSTANCE         "Hpf-Instance"
/* Seconds between two log lines about the same kind of trouble. */
#define COMPLAIN_INTERVAL_US (10 * G_USEC_PER_SEC)

static const char *const config_keys[] = {
    "servers",
    "node",
    "subject_prefix",
    "queue_size",
    "reconnect_buffer",
    "reconnect_wait",
    "user",
    "password",
    "token",
    "credentials",
    "tls",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "tls_hostname",
    "allow_anonymous",
    NULL,
};

/* A publish waiting for the sender thread. */
struct cmd {
    char *subject;
    char *ident; /* percent-encoded */
    char *owner;
    size_t len;
    size_t cost;    /* what it holds in memory, all told */
    uint8_t data[]; /* payload */
};

/* Rate-limited complaints: one line per interval, with what was held back. */
struct complaint {
    gint64 last_us;
    guint64 held;
};

struct nats_cluster {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;

    /* configuration */
    char **servers;
    char *node;
    char *node_enc;    /* percent-encoded, as in Hpf-Origin */
    char instance[17]; /* random, hex: this start of this node */
    char *prefix;
    guint64 queue_limit;
    int reconnect_buffer;
    int reconnect_wait_ms;
    char *user, *password, *token, *credentials;
    bool tls;
    char *tls_ca, *tls_cert, *tls_key;
    char *tls_hostname; /* as set, or the host the server URLs share */
    bool tls_hostname_set;

    natsOptions *opts;  /* built by start(), for every connect attempt */
    natsConnection *nc; /* set and cleared by the sender (and start()) */
    GThread *sender;
    bool opened; /* start() ran: libnats's global state exists */

    GMutex lock; /* guards queue, queued_bytes, interest, stopping, sender_done */
    GCond cond;
    GQueue queue;         /* struct cmd *, oldest first */
    guint64 queued_bytes; /* sum of cost */
    GHashTable *interest; /* subject -> GINT_TO_POINTER(wanted 0/1), not yet applied */
    bool stopping;
    bool sender_done;
    gint closing; /* destroy() began: a disconnect is ours, not news */

    /* sender thread only (and start(), before it runs) */
    GHashTable *subs; /* subject -> natsSubscription *, NULL until connected */
    struct complaint pub_fail_c;
    struct complaint connect_c; /* failed connect attempts */
    char *connect_why;          /* the last failure said */
    char *reconnect_why;        /* libnats's last reconnect failure said */
    gint64 next_connect_us;
    int connect_wait_ms;

    /* loop thread only */
    struct complaint queue_full_c;

    /* any thread */
    uint64_t forwarded, forward_failed, received, received_bad; /* COUNT_*() */
    uint64_t same_name;  /* COUNT_*(): another instance uses our node name */
    uint64_t sc_dropped; /* COUNT_*(): slow-consumer drops, summed by the sender */
    gint same_name_said;
    gint connected;
    gint lost;              /* libnats closed the connection by itself */
    gint64 next_resub_us;   /* sender: when to retry subjects wanted, not subscribed */
    gint64 max_payload;     /* atomic: of the connection, 0 when unknown */
    struct complaint bad_c; /* delivery thread only */
};

/* ---- small helpers ---- */

static bool complain_now(struct complaint *c, guint64 *held)
{
    gint64 now = g_get_monotonic_time();
    if (c->last_us && now - c->last_us < COMPLAIN_INTERVAL_US) {
        c->held++;
        return false;
    }
    c->last_us = now;
    *held = c->held;
    c->held = 0;
    return true;
}

static void cmd_free(struct cmd *c)
{
    if (!c)
        return;
    g_free(c->subject);
    g_free(c->ident);
    g_free(c->owner);
    g_free(c);
}

/* ---- libnats callbacks: libnats's threads ---- */

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    struct nats_cluster *nc_ = closure;
    const char *ident_h = NULL, *owner_h = NULL, *origin_h = NULL;
    struct cnats_in in = {NULL, NULL, NULL};
    const char *why = NULL;
    const char *inst_h = NULL;
    if (natsMsgHeader_Get(m, HDR_INSTANCE, &inst_h) == NATS_OK && inst_h &&
        !strcmp(inst_h, nc_->instance))
        goto out; /* our own message (cannot happen with no_echo) */
    if (natsMsgHeader_Get(m, HDR_ORIGIN, &origin_h) == NATS_OK && origin_h &&
        !strcmp(origin_h, nc_->node_enc)) {
        COUNT_ADD(nc_->same_name);
        if (g_atomic_int_compare_and_exchange(&nc_->same_name_said, 0, 1))
            nc_->host->log(nc_->ctx, HPF_LOG_ERR,
                           "another node uses the name %s (instance %s; this one is %s): give "
                           "every node its own [cluster] node name",
                           nc_->node, inst_h ? inst_h : "none", nc_->instance);
    }
    if (natsMsgHeader_Get(m, HDR_IDENT, &ident_h) != NATS_OK)
        ident_h = NULL;
    if (natsMsgHeader_Get(m, HDR_OWNER, &owner_h) != NATS_OK)
        owner_h = NULL;
    why = cnats_decode(nc_->prefix, natsMsg_GetSubject(m), ident_h, owner_h, &in);
    if (why) {
        COUNT_ADD(nc_->received_bad);
        guint64 held = 0;
        if (complain_now(&nc_->bad_c, &held))
            nc_->host->log(nc_->ctx, HPF_LOG_WARNING,
                           "dropped a message on %s: %s (%" G_GUINT64_FORMAT
                           " more since last said)",
                           natsMsg_GetSubject(m), why, held);
        goto out;
    }
    COUNT_ADD(nc_->received);
    struct hpf_message msg = {
        .time_us = g_get_real_time(),
        .ident = in.ident,
        .owner = in.owner,
        .channel = in.channel,
        .payload = (const uint8_t *)natsMsg_GetData(m),
        .payload_len = (size_t)natsMsg_GetDataLength(m),
    };
    /* The broker counts and logs what its hand-over queue cannot take. */
    (void)nc_->host->cluster_inject(nc_->ctx, &msg);
out:
    cnats_in_clear(&in);
    natsMsg_Destroy(m);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    struct nats_cluster *c = closure;
    g_atomic_int_set(&c->connected, 0);
    if (g_atomic_int_get(&c->closing))
        return;
    c->host->log(c->ctx, HPF_LOG_WARNING,
                 "disconnected from NATS; reconnecting (publishes are buffered up to %d bytes, "
                 "then counted as not forwarded)",
                 c->reconnect_buffer);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    struct nats_cluster *c = closure;
    char url[256] = "?";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    g_atomic_int_set(&c->connected, 1);
    c->host->log(c->ctx, HPF_LOG_NOTICE, "connected to NATS at %s", url);
}

static void on_closed(natsConnection *nc, void *closure)
{
    struct nats_cluster *c = closure;
    /* Ours (destroy()), or a connection not (yet) stored as c->nc: the
     * sender checks natsConnection_IsClosed() after storing it. */
    if (g_atomic_int_get(&c->closing) || nc != g_atomic_pointer_get(&c->nc))
        return;
    g_atomic_int_set(&c->connected, 0);
    /* libnats gave up on it: the sender thread makes a new connection. */
    g_atomic_int_set(&c->lost, 1);
    g_mutex_lock(&c->lock);
    g_cond_signal(&c->cond);
    g_mutex_unlock(&c->lock);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    struct nats_cluster *c = closure;
    const char *last = NULL;
    natsConnection_GetLastError(nc, &last);
    c->host->log(c->ctx, HPF_LOG_WARNING, "NATS error: %s%s%s", natsStatus_GetText(err),
                 last ? ": " : "", last ? last : "");
}

/* ---- the sender thread ---- */

static void send_publish(struct nats_cluster *c, struct cmd *cmd)
{
    natsMsg *m = NULL;
    natsStatus s =
        c->nc ? natsMsg_Create(&m, cmd->subject, NULL, (const char *)cmd->data, (int)cmd->len)
              : NATS_NOT_YET_CONNECTED;
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, HDR_IDENT, cmd->ident);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, HDR_OWNER, cmd->owner);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, HDR_ORIGIN, c->node_enc);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, HDR_INSTANCE, c->instance);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(c->nc, m);
    natsMsg_Destroy(m);
    if (s == NATS_OK) {
        COUNT_ADD(c->forwarded);
        return;
    }
    COUNT_ADD(c->forward_failed);
    guint64 held = 0;
    if (complain_now(&c->pub_fail_c, &held))
        c->host->log(c->ctx, HPF_LOG_WARNING,
                     "could not forward a message (%zu bytes) to NATS: %s (%" G_GUINT64_FORMAT
                     " more failed since last said; %" G_GINT64_FORMAT " in all)",
                     cmd->len, natsStatus_GetText(s), held, (gint64)COUNT_GET(c->forward_failed));
}

static natsSubscription *subscribe(struct nats_cluster *c, const char *subject)
{
    natsSubscription *sub = NULL;
    natsStatus s = natsConnection_Subscribe(&sub, c->nc, subject, on_message, c);
    if (s != NATS_OK) {
        c->host->log(c->ctx, HPF_LOG_ERR, "cannot subscribe to %s: %s", subject,
                     natsStatus_GetText(s));
        return NULL;
    }
    /* No limit in count; bytes as the broker's own hand-over bound. */
    natsSubscription_SetPendingLimits(sub, -1, 64 * 1024 * 1024);
    return sub;
}

/* Sender thread: subscribe the subjects wanted but not subscribed (value
 * NULL); what fails again is retried in RESUB_RETRY_US. */
static void resubscribe(struct nats_cluster *c)
{
    GHashTableIter it;
    gpointer k, v;
    c->next_resub_us = 0;
    g_hash_table_iter_init(&it, c->subs);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (v)
            continue;
        natsSubscription *sub = subscribe(c, k);
        if (sub)
            g_hash_table_iter_replace(&it, sub);
        else
            c->next_resub_us = g_get_monotonic_time() + RESUB_RETRY_US;
    }
}

/* Without a connection, or when subscribing fails, the wanted subject is
 * kept (value NULL) and subscribed once the connection comes, or later. */
static void send_interest(struct nats_cluster *c, const char *subject, bool on)
{
    gpointer v = NULL;
    bool known = g_hash_table_lookup_extended(c->subs, subject, NULL, &v);
    natsSubscription *sub = v;
    if (on) {
        if (known)
            return;
        if (c->nc && !(sub = subscribe(c, subject)))
            c->next_resub_us = g_get_monotonic_time() + RESUB_RETRY_US;
        g_hash_table_insert(c->subs, g_strdup(subject), sub);
    } else if (known) {
        int64_t d = 0;
        if (sub && natsSubscription_GetDropped(sub, &d) == NATS_OK && d > 0)
            __atomic_fetch_add(&c->sc_dropped, (uint64_t)d, __ATOMIC_RELAXED);
        if (sub)
            natsSubscription_Unsubscribe(sub);
        g_hash_table_remove(c->subs, subject); /* destroys it */
    }
}

static void sub_free(gpointer sub)
{
    if (sub)
        natsSubscription_Destroy(sub);
}

/* libnats's last error on this thread, without its "(file.c:123): " head. */
static const char *last_error(natsStatus s)
{
    natsStatus ls = NATS_OK;
    const char *t = nats_GetLastError(&ls);
    if (!t || !*t)
        return natsStatus_GetText(s);
    const char *e = *t == '(' ? strstr(t, "): ") : NULL;
    return e ? e + 3 : t;
}

/* Why a connection failed (status s, NATS_OK when unknown; libnats's text
 * why), with what in the configuration it points at.  *serious: a mistake
 * to fix rather than an outage. */
static char *describe_failure(const struct nats_cluster *c, natsStatus s, const char *why,
                              bool *serious)
{
    GString *m = g_string_new(s != NATS_OK ? natsStatus_GetText(s) : "");
    why = why ? why : "";
    if (*why && strcmp(why, m->str))
        g_string_append_printf(m, "%s%s", m->len ? ": " : "", why);
    *serious = true;
    if (strstr(why, "hostname mismatch") || strstr(why, "IP address mismatch"))
        g_string_append_printf(m, " (the server's certificate does not name %s%s)", c->tls_hostname,
                               c->tls_hostname_set ? ", tls_hostname" : "");
    /* ":depth=": libnats's report of a failed certificate check */
    else if (strstr(why, ":depth=") || (s == NATS_SSL_ERROR && strstr(why, "certificate")))
        g_string_append_printf(m, " (the server's certificate is not trusted: %s%s)",
                               c->tls_ca ? "no CA in tls_ca "
                                         : "no CA the system trusts; set tls_ca",
                               c->tls_ca ? c->tls_ca : "");
    else if (s == NATS_SECURE_CONNECTION_WANTED)
        g_string_append(m, " (TLS is on, by a tls:// URL, tls = true or a tls_* key, but the "
                           "server offers no TLS)");
    else if (c->tls &&
             (s == NATS_PROTOCOL_ERROR || s == NATS_IO_ERROR || s == NATS_CONNECTION_CLOSED))
        g_string_append_printf(m,
                               c->tls_cert ? " (the server ended the connection after the "
                                             "TLS handshake: it may refuse the client "
                                             "certificate %s; see its log)"
                                           : " (the server ended the connection after the "
                                             "TLS handshake: no tls_cert and tls_key are "
                                             "set, and a server that verifies client "
                                             "certificates refuses a node without one)%s",
                               c->tls_cert ? c->tls_cert : "");
    else if (!strstr(why, "Authorization") && !strstr(why, "Authentication"))
        *serious = false;
    return g_string_free(m, FALSE);
}

static void set_connect_wait(struct nats_cluster *c, int ms)
{
    c->connect_wait_ms = ms;
    c->next_connect_us = g_get_monotonic_time() + (gint64)ms * 1000;
}

/* Sender thread (or start(), before it runs): one attempt at the servers.
 * On failure, says why (when it changed, else rate-limited) and sets when
 * to try again. */
static bool try_connect(struct nats_cluster *c)
{
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_Connect(&nc, c->opts);
    if (s != NATS_OK) {
        bool serious = false;
        char *why = describe_failure(c, s, last_error(s), &serious);
        if (!c->connect_why || strcmp(why, c->connect_why))
            c->connect_c.last_us = 0; /* news: say it now */
        guint64 held = 0;
        if (complain_now(&c->connect_c, &held)) {
            char *urls = g_strjoinv(",", c->servers);
            char more[64] = "";
            if (held)
                snprintf(more, sizeof more, " (%" G_GUINT64_FORMAT " more failed since last said)",
                         held);
            c->host->log(c->ctx, serious ? HPF_LOG_ERR : HPF_LOG_WARNING,
                         "node %s: cannot connect to NATS (%s): %s; serving local clients, "
                         "not forwarding, trying again%s",
                         c->node, urls, why, more);
            g_free(urls);
        }
        g_free(c->connect_why);
        c->connect_why = why;
        set_connect_wait(
            c, MAX(c->reconnect_wait_ms, MIN(c->connect_wait_ms * 2, CONNECT_RETRY_MAX_MS)));
        return false;
    }
    g_atomic_pointer_set(&c->nc, nc);
    /* libnats may have closed it for good between Connect() and the line
     * above, when on_closed() could not yet know it as ours: then it is
     * lost now, and the next turn makes a new one. */
    if (natsConnection_IsClosed(nc)) {
        g_atomic_int_set(&c->lost, 1);
        return false;
    }
    g_atomic_int_set(&c->connected, 1);
    __atomic_store_n(&c->max_payload, natsConnection_GetMaxPayload(nc), __ATOMIC_RELAXED);
    g_free(c->connect_why);
    c->connect_why = NULL;
    c->connect_c.last_us = 0;
    c->connect_wait_ms = c->reconnect_wait_ms;
    char url[256] = "?";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    c->host->log(c->ctx, HPF_LOG_NOTICE, "node %s (instance %s) connected to NATS at %s%s", c->node,
                 c->instance, url, c->tls ? " (TLS)" : "");
    resubscribe(c);
    return true;
}

/* Sender thread: libnats closed the connection by itself; start anew. */
static void drop_connection(struct nats_cluster *c)
{
    const char *last = NULL;
    natsStatus s = natsConnection_GetLastError(c->nc, &last);
    c->host->log(c->ctx, HPF_LOG_ERR, "the NATS connection was closed (%s%s%s); connecting anew",
                 natsStatus_GetText(s), last && *last ? ": " : "", last ? last : "");
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, c->subs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        sub_free(v);
        g_hash_table_iter_replace(&it, NULL);
    }
    natsConnection *nc = c->nc;
    g_atomic_pointer_set(&c->nc, NULL);
    natsConnection_Destroy(nc);
    g_atomic_int_set(&c->lost, 0);
    g_atomic_int_set(&c->connected, 0);
    set_connect_wait(c, c->reconnect_wait_ms);
}

/* Sender thread: while libnats reconnects, say why it fails when that
 * changes (it keeps no other record a log could show). */
static void watch_reconnect(struct nats_cluster *c)
{
    if (g_atomic_int_get(&c->connected)) {
        g_free(c->reconnect_why);
        c->reconnect_why = NULL;
        return;
    }
    const char *last = NULL;
    natsStatus s = natsConnection_GetLastError(c->nc, &last);
    if (!last || !*last || (c->reconnect_why && !strcmp(last, c->reconnect_why)))
        return;
    g_free(c->reconnect_why);
    c->reconnect_why = g_strdup(last);
    bool serious = false;
    char *why = describe_failure(c, s, c->reconnect_why, &serious);
    c->host->log(c->ctx, serious ? HPF_LOG_ERR : HPF_LOG_WARNING, "reconnecting to NATS: %s", why);
    g_free(why);
}

/* Sender thread: slow-consumer drops of the live subscriptions, plus those
 * of the ones gone (already in sc_dropped). */
static uint64_t live_dropped(struct nats_cluster *c)
{
    uint64_t sum = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, c->subs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        int64_t d = 0;
        if (v && natsSubscription_GetDropped(v, &d) == NATS_OK && d > 0)
            sum += (uint64_t)d;
    }
    return sum;
}

static gpointer sender_main(gpointer arg)
{
    struct nats_cluster *c = arg;
    uint64_t dropped_shown = 0; /* live_dropped() as last added */
    for (;;) {
        g_mutex_lock(&c->lock);
        /* Wake each second at least, to keep the slow-consumer count fresh,
         * and when the next connect attempt is due. */
        gint64 wake = g_get_monotonic_time() + G_USEC_PER_SEC;
        if (!c->nc && c->next_connect_us < wake)
            wake = c->next_connect_us;
        if (!c->queue.length && !g_hash_table_size(c->interest) && !c->stopping &&
            !g_atomic_int_get(&c->lost))
            g_cond_wait_until(&c->cond, &c->lock, wake);
        if (c->stopping) {
            /* Stop now: what is queued is not sent (NATS may be the reason
             * we are slow), it is counted. */
            guint n = c->queue.length;
            struct cmd *cmd;
            while ((cmd = g_queue_pop_head(&c->queue)))
                cmd_free(cmd);
            c->queued_bytes = 0;
            g_mutex_unlock(&c->lock);
            if (n) {
                __atomic_fetch_add(&c->forward_failed, n, __ATOMIC_RELAXED);
                c->host->log(c->ctx, HPF_LOG_WARNING,
                             "stopping: %u queued messages were not forwarded to NATS", n);
            }
            break;
        }
        GHashTable *interest = NULL;
        if (g_hash_table_size(c->interest)) {
            interest = c->interest;
            c->interest = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        }
        struct cmd *cmd = g_queue_pop_head(&c->queue);
        if (cmd)
            c->queued_bytes -= cmd->cost;
        g_mutex_unlock(&c->lock);
        if (c->nc && g_atomic_int_get(&c->lost))
            drop_connection(c);
        if (!c->nc && g_get_monotonic_time() >= c->next_connect_us)
            try_connect(c);
        if (interest) {
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, interest);
            while (g_hash_table_iter_next(&it, &k, &v))
                send_interest(c, k, GPOINTER_TO_INT(v) != 0);
            g_hash_table_unref(interest);
        }
        if (cmd) {
            send_publish(c, cmd);
            cmd_free(cmd);
        }
        uint64_t d = live_dropped(c);
        if (d > dropped_shown)
            __atomic_fetch_add(&c->sc_dropped, d - dropped_shown, __ATOMIC_RELAXED);
        dropped_shown = d;
        if (c->nc) {
            __atomic_store_n(&c->max_payload, natsConnection_GetMaxPayload(c->nc),
                             __ATOMIC_RELAXED);
            watch_reconnect(c);
            if (c->next_resub_us && g_get_monotonic_time() >= c->next_resub_us &&
                g_atomic_int_get(&c->connected))
                resubscribe(c);
        }
    }
    g_mutex_lock(&c->lock);
    c->sender_done = true;
    g_cond_broadcast(&c->cond);
    g_mutex_unlock(&c->lock);
    return NULL;
}

/* Loop thread: queue a publish unless the bounds say no. */
static bool enqueue(struct nats_cluster *c, struct cmd *cmd)
{
    g_mutex_lock(&c->lock);
    bool ok = !c->stopping && c->queue.length < QUEUE_MAX_CMDS &&
              (c->queued_bytes + cmd->cost <= c->queue_limit || c->queue.length == 0);
    if (ok) {
        g_queue_push_tail(&c->queue, cmd);
        c->queued_bytes += cmd->cost;
        g_cond_signal(&c->cond);
    }
    g_mutex_unlock(&c->lock);
    return ok;
}

/* ---- the cluster ops: loop thread ---- */

static int op_publish(void *inst, const struct hpf_message *msg)
{
    struct nats_cluster *c = inst;
    struct cmd *cmd = g_malloc(sizeof *cmd + msg->payload_len);
    cmd->len = msg->payload_len;
    if (msg->payload_len)
        memcpy(cmd->data, msg->payload, msg->payload_len);
    cmd->subject = cnats_subject_for(c->prefix, msg->channel);
    cmd->ident = cnats_pct_encode(msg->ident);
    cmd->owner = cnats_pct_encode(msg->owner);
    cmd->cost = sizeof *cmd + cmd->len + strlen(cmd->subject) + strlen(cmd->ident) +
                strlen(cmd->owner) + 3 + CMD_OVERHEAD;
    if (enqueue(c, cmd))
        return HPF_OK;
    cmd_free(cmd);
    COUNT_ADD(c->forward_failed);
    guint64 held = 0;
    if (complain_now(&c->queue_full_c, &held))
        c->host->log(c->ctx, HPF_LOG_WARNING,
                     "send queue full (%" G_GUINT64_FORMAT " bytes or %u messages): a message "
                     "was not forwarded (%" G_GUINT64_FORMAT " more since last said)",
                     c->queue_limit, QUEUE_MAX_CMDS, held);
    return HPF_ERR_UNAVAILABLE;
}

/* The wanted state replaces any not yet applied: one entry per channel
 * (and the router calls this only for channels with or just without local
 * subscribers), so flapping interest costs no memory. */
static int op_interest(void *inst, const char *channel, bool on)
{
    struct nats_cluster *c = inst;
    char *subject = cnats_subject_for(c->prefix, channel);
    g_mutex_lock(&c->lock);
    g_hash_table_replace(c->interest, subject, GINT_TO_POINTER(on ? 1 : 0));
    g_cond_signal(&c->cond);
    g_mutex_unlock(&c->lock);
    return HPF_OK;
}

static void op_stats(void *inst, struct hpf_cluster_stats *st)
{
    struct nats_cluster *c = inst;
    st->forwarded = COUNT_GET(c->forwarded);
    st->forward_failed = COUNT_GET(c->forward_failed);
    st->received = COUNT_GET(c->received);
    st->received_bad = COUNT_GET(c->received_bad);
    st->same_name = COUNT_GET(c->same_name);
    st->slow_consumer_drops = COUNT_GET(c->sc_dropped);
    st->connected = g_atomic_int_get(&c->connected) != 0;
    if (st->connected) {
        /* The sender thread reads it: the connection may be replaced under us. */
        int64_t mp = __atomic_load_n(&c->max_payload, __ATOMIC_RELAXED);
        st->max_payload = mp > 0 ? (uint64_t)mp : 0;
    }
}

/* ---- life cycle ---- */

static void destroy(void *inst);

static char *dup_key(const struct nats_cluster *c, const char *key)
{
    const char *v = c->host->config_get(c->ctx, key);
    return v && *v ? g_strdup(v) : NULL;
}

/* The host of a server URL, without user info, port or IPv6 brackets. */
static char *url_host(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *end = h + strcspn(h, "/?#");
    for (const char *p = h; p < end; p++)
        if (*p == '@')
            h = p + 1;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        return close ? g_strndup(h + 1, (size_t)(close - h - 1)) : NULL;
    }
    const char *colon = memchr(h, ':', (size_t)(end - h));
    return g_strndup(h, (size_t)((colon ? colon : end) - h));
}

/* A certificate or key file: readable, and PEM (what libnats loads). */
static bool check_pem(const char *key, const char *path, char *err, size_t err_len)
{
    char *data = NULL;
    gsize len = 0;
    GError *e = NULL;
    if (!g_file_get_contents(path, &data, &len, &e)) {
        snprintf(err, err_len, "%s: %s", key, e->message);
        g_error_free(e);
        return false;
    }
    bool pem = g_strstr_len(data, (gssize)len, "-----BEGIN ") != NULL;
    memset(data, 0, len); /* tls_key: no copy of the secret lingers */
    g_free(data);
    if (!pem)
        snprintf(err, err_len, "%s: %s holds no PEM block (-----BEGIN ...)", key, path);
    return pem;
}

/* Paths through config_path (relative to the config file), kept in GLib memory. */
static char *path_key(const struct nats_cluster *c, const char *key)
{
    char *p = c->host->config_path(c->ctx, key);
    char *out = p ? g_strdup(p) : NULL;
    free(p);
    return out;
}

/* servers: nats:// or tls:// URLs, separated by commas, semicolons or blanks. */
static bool read_servers(struct nats_cluster *c, char *err, size_t err_len)
{
    const char *v = c->host->config_get(c->ctx, "servers");
    if (!v || !*v) {
        snprintf(err, err_len, "servers: missing (e.g. servers = nats://127.0.0.1:4222)");
        return false;
    }
    c->servers = g_strsplit_set(v, ",; \t", -1);
    /* Drop the empty pieces that separators next to each other leave. */
    char **w = c->servers;
    for (char **r = c->servers; *r; r++) {
        if (**r)
            *w++ = *r;
        else
            g_free(*r);
    }
    *w = NULL;
    if (!c->servers[0]) {
        snprintf(err, err_len, "servers: no server URL in '%s'", v);
        return false;
    }
    for (char **s = c->servers; *s; s++) {
        if (!g_str_has_prefix(*s, "nats://") && !g_str_has_prefix(*s, "tls://")) {
            snprintf(err, err_len, "servers: '%s' is not a nats:// or tls:// URL", *s);
            return false;
        }
    }
    return true;
}

/* Who this node is on the bus, and how much it may hold back. */
static bool read_node(struct nats_cluster *c, char *err, size_t err_len)
{
    const struct hpf_host *host = c->host;
    c->node = dup_key(c, "node");
    if (!c->node)
        c->node = g_strdup_printf("%s-%d", g_get_host_name(), (int)getpid());
    c->node_enc = cnats_pct_encode(c->node);
    c->prefix = dup_key(c, "subject_prefix");
    if (!c->prefix)
        c->prefix = g_strdup(DEFAULT_PREFIX);
    if (!cnats_valid_prefix(c->prefix)) {
        snprintf(err, err_len,
                 "subject_prefix: '%s' must be NATS tokens of letters, digits, '_' or '-' "
                 "separated by single dots",
                 c->prefix);
        return false;
    }
    uint64_t queue = c->queue_limit, buffer = (uint64_t)c->reconnect_buffer;
    if (host->config_size(c->ctx, "queue_size", 1024, UINT64_MAX, &queue, err, err_len) != HPF_OK ||
        host->config_size(c->ctx, "reconnect_buffer", 1024, G_MAXINT, &buffer, err, err_len) !=
            HPF_OK)
        return false;
    c->queue_limit = queue;
    c->reconnect_buffer = (int)buffer;
    const char *v = host->config_get(c->ctx, "reconnect_wait");
    if (v) {
        char *end = NULL;
        double s = g_ascii_strtod(v, &end);
        if (end == v || *end || !(s > 0 && s <= 60)) {
            snprintf(err, err_len, "reconnect_wait: expected seconds in (0, 60], got '%s'", v);
            return false;
        }
        c->reconnect_wait_ms = (int)(s * 1000);
        if (c->reconnect_wait_ms < 1)
            c->reconnect_wait_ms = 1;
    }
    return true;
}

static bool read_credentials(struct nats_cluster *c, char *err, size_t err_len)
{
    c->user = dup_key(c, "user");
    c->password = dup_key(c, "password");
    c->token = dup_key(c, "token");
    c->credentials = path_key(c, "credentials");
    if (c->password && !c->user) {
        snprintf(err, err_len, "password: set user too");
        return false;
    }
    bool anonymous = false;
    if (c->host->config_bool(c->ctx, "allow_anonymous", &anonymous, err, err_len) != HPF_OK)
        return false;
    /* Whoever may publish on the prefix speaks for the cluster: no NATS
     * without credentials unless the operator says so. */
    if (!c->user && !c->token && !c->credentials && !anonymous) {
        snprintf(err, err_len,
                 "no NATS credentials: set user and password, token or credentials "
                 "(or allow_anonymous = true for a NATS that only the nodes can reach)");
        return false;
    }
    return true;
}

/* libnats checks the server's name only when told one, and one for every
 * server: by default the host all server URLs name. */
static bool default_tls_hostname(struct nats_cluster *c, char *err, size_t err_len)
{
    for (char **s = c->servers; *s; s++) {
        char *h = url_host(*s);
        if (!h || !*h) {
            snprintf(err, err_len, "servers: no host in '%s'", *s);
            g_free(h);
            return false;
        }
        if (!c->tls_hostname) {
            c->tls_hostname = h;
        } else if (g_ascii_strcasecmp(h, c->tls_hostname)) {
            snprintf(err, err_len,
                     "tls_hostname: missing, and the servers are on several hosts (%s, %s); "
                     "set the one name every server's certificate carries, which is checked "
                     "for all of them",
                     c->tls_hostname, h);
            g_free(h);
            return false;
        } else {
            g_free(h);
        }
    }
    return true;
}

static bool read_tls(struct nats_cluster *c, char *err, size_t err_len)
{
    bool tls_set = c->host->config_get(c->ctx, "tls") != NULL;
    if (c->host->config_bool(c->ctx, "tls", &c->tls, err, err_len) != HPF_OK)
        return false;
    bool tls_off = tls_set && !c->tls;
    c->tls_ca = path_key(c, "tls_ca");
    c->tls_cert = path_key(c, "tls_cert");
    c->tls_key = path_key(c, "tls_key");
    c->tls_hostname = dup_key(c, "tls_hostname");
    c->tls_hostname_set = c->tls_hostname != NULL;
    if (!c->tls_cert != !c->tls_key) {
        snprintf(err, err_len, "%s: set tls_cert and tls_key both, or neither",
                 c->tls_cert ? "tls_key" : "tls_cert");
        return false;
    }
    /* What asks for TLS besides tls = true. */
    const char *wants_tls = c->tls_ca         ? "tls_ca"
                            : c->tls_cert     ? "tls_cert"
                            : c->tls_hostname ? "tls_hostname"
                                              : NULL;
    for (char **s = c->servers; *s && !wants_tls; s++)
        if (g_str_has_prefix(*s, "tls://"))
            wants_tls = "a tls:// URL in servers";
    if (tls_off && wants_tls) {
        snprintf(err, err_len, "tls: false, but %s asks for TLS", wants_tls);
        return false;
    }
    c->tls = c->tls || wants_tls;
    if ((c->tls_ca && !check_pem("tls_ca", c->tls_ca, err, err_len)) ||
        (c->tls_cert && !check_pem("tls_cert", c->tls_cert, err, err_len)) ||
        (c->tls_key && !check_pem("tls_key", c->tls_key, err, err_len)))
        return false;
    return !c->tls || c->tls_hostname_set || default_tls_hostname(c, err, err_len);
}

static int create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx, void **instance,
                  char *err, size_t err_len)
{
    struct nats_cluster *c = g_new0(struct nats_cluster, 1);
    c->host = host;
    c->ctx = ctx;
    g_mutex_init(&c->lock);
    g_cond_init(&c->cond);
    g_queue_init(&c->queue);
    c->interest = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    snprintf(c->instance, sizeof c->instance, "%08x%08x", g_random_int(), g_random_int());
    c->queue_limit = DEFAULT_QUEUE_BYTES;
    c->reconnect_buffer = DEFAULT_RECONNECT_BUFFER;
    c->reconnect_wait_ms = DEFAULT_RECONNECT_WAIT_MS;

    if (!read_servers(c, err, err_len) || !read_node(c, err, err_len) ||
        !read_credentials(c, err, err_len) || !read_tls(c, err, err_len)) {
        destroy(c);
        return HPF_ERR_INVALID;
    }
    c->subs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, sub_free);
    *instance = c;
    return HPF_OK;
}

/* One option step: stop at the first failure and remember which it was. */
#define OPT_STEP(label, call) \
    do {                      \
        if (s == NATS_OK) {   \
            what = (label);   \
            s = (call);       \
        }                     \
    } while (0)

static int start(void *inst, char *err, size_t err_len)
{
    struct nats_cluster *c = inst;
    natsOptions *o = NULL;
    const char *what = "options";
    natsStatus s = natsOptions_Create(&o);
    int n = (int)g_strv_length(c->servers);
    c->opened = true;

    /* One delivery thread for every subscription: arrival order is kept
     * across channels too, and channels cost no thread each. */
    OPT_STEP("delivery pool", nats_SetMessageDeliveryPoolSize(1));
    OPT_STEP("global delivery", natsOptions_UseGlobalMessageDelivery(o, true));
    OPT_STEP("servers", natsOptions_SetServers(o, (const char **)c->servers, n));
    OPT_STEP("name", natsOptions_SetName(o, c->node));
    OPT_STEP("no_echo", natsOptions_SetNoEcho(o, true));
    OPT_STEP("reconnect", natsOptions_SetMaxReconnect(o, -1));
    OPT_STEP("reconnect_wait", natsOptions_SetReconnectWait(o, c->reconnect_wait_ms));
    OPT_STEP("reconnect_buffer", natsOptions_SetReconnectBufSize(o, c->reconnect_buffer));
    /* A stalled server: publishes fail (counted) instead of blocking the sender. */
    OPT_STEP("write deadline", natsOptions_SetWriteDeadline(o, WRITE_DEADLINE_MS));
    OPT_STEP("callbacks", natsOptions_SetDisconnectedCB(o, on_disconnected, c));
    OPT_STEP("callbacks", natsOptions_SetReconnectedCB(o, on_reconnected, c));
    OPT_STEP("servers", natsOptions_SetTimeout(o, CONNECT_TIMEOUT_MS));
    OPT_STEP("callbacks", natsOptions_SetClosedCB(o, on_closed, c));
    OPT_STEP("callbacks", natsOptions_SetErrorHandler(o, on_error, c));
    if (c->user)
        OPT_STEP("user", natsOptions_SetUserInfo(o, c->user, c->password));
    if (c->token)
        OPT_STEP("token", natsOptions_SetToken(o, c->token));
    if (c->credentials)
        OPT_STEP("credentials", natsOptions_SetUserCredentialsFromFiles(o, c->credentials, NULL));
    /* Secure first: it makes the TLS context the other steps fill in. */
    if (c->tls)
        OPT_STEP("tls", natsOptions_SetSecure(o, true));
    if (c->tls_ca)
        OPT_STEP("tls_ca", natsOptions_LoadCATrustedCertificates(o, c->tls_ca));
    if (c->tls_cert)
        OPT_STEP("tls_cert", natsOptions_LoadCertificatesChain(o, c->tls_cert, c->tls_key));
    if (c->tls_hostname)
        OPT_STEP("tls_hostname", natsOptions_SetExpectedHostname(o, c->tls_hostname));
    /* A name taken from the listed URLs need not be one the servers that a
     * NATS cluster announces carry: then the node uses the listed ones only,
     * rather than fail over to servers whose name check must fail. */
    if (c->tls && !c->tls_hostname_set)
        OPT_STEP("servers", natsOptions_SetIgnoreDiscoveredServers(o, true));
    if (s != NATS_OK) {
        const char *file = !strcmp(what, "tls_ca")        ? c->tls_ca
                           : !strcmp(what, "tls_cert")    ? c->tls_cert
                           : !strcmp(what, "credentials") ? c->credentials
                                                          : NULL;
        if (!strcmp(what, "tls_cert"))
            snprintf(err, err_len, "tls_cert, tls_key: cannot load %s with %s: %s", c->tls_cert,
                     c->tls_key, last_error(s));
        else if (file)
            snprintf(err, err_len, "%s: cannot load %s: %s", what, file, last_error(s));
        else
            snprintf(err, err_len, "NATS %s: %s", what, last_error(s));
        natsOptions_Destroy(o);
        return HPF_ERR_INVALID;
    }
    c->opts = o;
    if (!c->tls) {
        for (char **u = c->servers; *u; u++) {
            char *h = url_host(*u);
            if (h && !g_str_has_prefix(h, "127.") && strcmp(h, "localhost") && strcmp(h, "::1"))
                c->host->log(c->ctx, HPF_LOG_WARNING,
                             "NATS server %s is reached without TLS: messages and "
                             "credentials cross the network in clear",
                             h);
            g_free(h);
        }
    }
    /* Start even when no server takes the node: it serves its local
     * clients and joins the cluster once it can (the sender retries). */
    c->connect_wait_ms = c->reconnect_wait_ms;
    try_connect(c);
    c->sender = g_thread_new("cluster_nats", sender_main, c);
    return HPF_OK;
}

static void comp_free(SSL_COMP *m) { OPENSSL_free(m); }

/* An instance libnats may still call back into, after a shutdown timeout. */
static void *volatile kept_after_timeout;

static void destroy(void *inst)
{
    struct nats_cluster *c = inst;
    if (!c)
        return;
    bool closed = false;
    if (c->sender) {
        g_mutex_lock(&c->lock);
        c->stopping = true;
        g_cond_broadcast(&c->cond);
        /* The sender drops what is queued and ends, unless it is inside a
         * write to a stalled server: then close the connection under it,
         * which fails that write. */
        gint64 until = g_get_monotonic_time() + STOP_GRACE_MS * (gint64)1000;
        while (!c->sender_done)
            if (!g_cond_wait_until(&c->cond, &c->lock, until))
                break;
        bool done = c->sender_done;
        g_mutex_unlock(&c->lock);
        natsConnection *nc = g_atomic_pointer_get(&c->nc);
        if (!done && nc) {
            c->host->log(c->ctx, HPF_LOG_WARNING,
                         "stopping: the NATS sender is stuck in a write; closing the connection");
            g_atomic_int_set(&c->closing, 1);
            natsConnection_Close(nc);
            closed = true;
        }
        g_thread_join(c->sender);
    }
    g_atomic_int_set(&c->closing, 1);
    if (c->nc && !closed) {
        /* Hand what is buffered to the server before going (bounded). */
        if (g_atomic_int_get(&c->connected))
            natsConnection_FlushTimeout(c->nc, 500);
        natsConnection_Close(c->nc);
    }
    if (c->subs)
        g_hash_table_unref(c->subs); /* destroys the subscriptions */
    if (c->nc)
        natsConnection_Destroy(c->nc);
    if (c->opts)
        natsOptions_Destroy(c->opts);
    if (c->opened) {
        /* Wait for libnats's own threads (delivery, flusher, reconnect),
         * which call back into us, before this instance goes away. */
        /* libnats 3.4, as it ends, frees OpenSSL's list of compression
         * methods (sk_free of SSL_COMP_get_compression_methods()), which
         * OpenSSL, once a TLS context existed, frees again at exit: a crash
         * in OPENSSL_cleanup.  The last reference may drop on a libnats
         * thread after nats_CloseAndWait() returns, so take the list away
         * first (libnats then frees NULL) and free it here, once. */
        STACK_OF(SSL_COMP) *comp = SSL_COMP_set0_compression_methods(NULL);
        natsStatus s = nats_CloseAndWait(CLOSE_WAIT_MS);
        if (s != NATS_OK) {
            /* A libnats thread may still run our callbacks: keep what they
             * read (the process is on its way out). */
            kept_after_timeout = c;
            c->host->log(c->ctx, HPF_LOG_WARNING,
                         "libnats did not finish within %d ms (%s); leaving its state alone",
                         CLOSE_WAIT_MS, natsStatus_GetText(s));
            sk_SSL_COMP_pop_free(comp, comp_free);
            return;
        }
        sk_SSL_COMP_pop_free(comp, comp_free);
    }
    struct cmd *cmd;
    while ((cmd = g_queue_pop_head(&c->queue)))
        cmd_free(cmd);
    g_strfreev(c->servers);
    g_free(c->node);
    g_free(c->node_enc);
    if (c->interest)
        g_hash_table_unref(c->interest);
    g_free(c->prefix);
    g_free(c->user);
    g_free(c->password);
    g_free(c->token);
    g_free(c->credentials);
    g_free(c->tls_ca);
    g_free(c->tls_cert);
    g_free(c->tls_key);
    g_free(c->tls_hostname);
    g_free(c->connect_why);
    g_free(c->reconnect_why);
    g_mutex_clear(&c->lock);
    g_cond_clear(&c->cond);
    g_free(c);
}

static const struct hpf_cluster_ops cluster_ops = {
    .publish = op_publish,
    .interest = op_interest,
    .stats = op_stats,
};

static const struct hpf_plugin cluster_nats_plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "cluster_nats",
    .version = PLUGIN_VERSION,
    .description = "several hpfriendsd nodes as one broker, over NATS",
    .kinds = HPF_KIND_CLUSTER,
    .config_keys = config_keys,
    .create = create,
    .start = start,
    .destroy = destroy,
    .cluster = &cluster_ops,
};

HPF_PLUGIN_DEFINE(cluster_nats_plugin)
