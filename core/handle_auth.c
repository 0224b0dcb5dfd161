/* SPDX-License-Identifier: BSD-3-Clause */
/* AUTH: ask the auth chain off the loop, then open the session. */
#include <string.h>

#include <event2/buffer.h>
#include <hpfriends/names.h>

#include "broker.h"
#include "flow.h"
#include "graph.h"
#include "ipguard.h"
#include "log.h"
#include "metrics.h"
#include "sinks.h"
#include "wire_str.h"
#include "worker.h"

struct auth_job {
    struct broker *b;
    guint64 conn_id;
    char *ident;
    uint8_t nonce[WIRE_NONCE_LEN];
    uint8_t hash[WIRE_HASH_LEN];
    char peer[64];
    int verdict;
    gboolean from_storage; /* granted from storage's authkeys: re-checked on reload */
    struct auth_request req;
};

/* Worker thread: the chain; first ALLOW or DENY wins, all-DEFER denies. */
static void auth_run(void *arg)
{
    struct auth_job *j = arg;
    j->verdict = HPF_AUTH_DENY;
    for (guint i = 0; i < j->b->auth_chain->len; i++) {
        struct plugin_instance *pi = j->b->auth_chain->pdata[i];
        auth_request_clear(&j->req);
        j->req.pub.ident = j->ident;
        j->req.pub.nonce = j->nonce;
        j->req.pub.nonce_len = sizeof j->nonce;
        j->req.pub.hash = j->hash;
        j->req.pub.peer = j->peer;
        int v = pi->desc->auth->authenticate(pi->inst, &j->req.pub);
        if (v == HPF_AUTH_ALLOW && !j->req.granted) {
            log_err("%s: answered ALLOW without auth_grant(); treating as DENY", pi->name);
            v = HPF_AUTH_DENY;
        }
        if (v == HPF_AUTH_ALLOW || v == HPF_AUTH_DENY || v == HPF_AUTH_ERROR) {
            j->verdict = v;
            j->from_storage = plugin_auth_from_storage(pi);
            return;
        }
    }
}

/*
 * Channel sets are shared: every session of an authkey (a sensor fleet may
 * run hundreds under one key) refers to one set of its channels instead of
 * a copy each.  A set is found by its contents; it leaves the cache when
 * its last session lets go of it (the tag's destroy notify, run as the set
 * is finalised).
 */
static GHashTable *set_cache; /* contents key -> GHashTable * (not a reference) */

static void set_tag_free(gpointer p)
{
    if (!p) /* not the tag */
        return;
    g_hash_table_remove(set_cache, p);
    g_free(p);
}

static char *set_contents_key(GPtrArray *list)
{
    GString *k = g_string_new(NULL);
    for (guint i = 0; i < list->len; i++) {
        const char *chan = list->pdata[i];
        g_string_append_printf(k, "%zu:", strlen(chan));
        g_string_append(k, chan);
    }
    return g_string_free(k, FALSE);
}

GHashTable *conn_channel_set(GPtrArray *list)
{
    /* No channels (a sensor's subscribe list, a sink's publish list): one
     * empty set for every session, kept for the process's life. */
    static GHashTable *empty;
    if (!list || list->len == 0) {
        if (!empty)
            empty = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        return g_hash_table_ref(empty);
    }
    if (!set_cache)
        set_cache = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, NULL);
    char *key = set_contents_key(list);
    GHashTable *set = g_hash_table_lookup(set_cache, key);
    if (set) {
        g_free(key);
        return g_hash_table_ref(set);
    }
    /* The first channel's value is the tag; the others' are unused. */
    set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, set_tag_free);
    g_hash_table_insert(set, g_strdup(list->pdata[0]), key);
    for (guint i = 1; i < list->len; i++)
        if (!g_hash_table_contains(set, list->pdata[i]))
            g_hash_table_insert(set, g_strdup(list->pdata[i]), NULL);
    g_hash_table_insert(set_cache, key, set);
    return set;
}

/* An authkey's channel lists are bounded; a longer one is refused whole. */
static gboolean key_lists_fit(const struct auth_job *j)
{
    guint np = j->req.publish ? j->req.publish->len : 0;
    guint ns = j->req.subscribe ? j->req.subscribe->len : 0;
    if (np <= HPF_KEY_CHANNELS_MAX && ns <= HPF_KEY_CHANNELS_MAX)
        return TRUE;
    log_warn("%s: authkey lists %u publish and %u subscribe channels, more than %u: "
             "refusing it",
             j->ident, np, ns, HPF_KEY_CHANNELS_MAX);
    return FALSE;
}

static void auth_job_free(struct auth_job *j)
{
    auth_request_clear(&j->req);
    g_free(j->ident);
    g_free(j);
}

static void auth_done(void *arg)
{
    struct auth_job *j = arg;
    struct conn *c = g_hash_table_lookup(j->b->conns, &j->conn_id);
    if (!c || c->state != CONN_AUTHING) {
        auth_job_free(j);
        return;
    }
    if (j->verdict == HPF_AUTH_ALLOW && !key_lists_fit(j))
        j->verdict = HPF_AUTH_ERROR;
    if (j->verdict != HPF_AUTH_ALLOW) {
        c->b->stats.auth_failures++;
        sinks_event(c->b->sinks, &(struct hpf_event){.type = HPF_EVENT_AUTH_FAILED,
                                                     .ident = j->ident,
                                                     .peer = c->peer,
                                                     .reason = "authentication failed"});
        /* An undecided AUTH (storage down) is denied but not held against the address. */
        metrics_auth_failed(c->b->metrics, j->ident,
                            j->verdict == HPF_AUTH_ERROR ? "auth-unavailable" : "auth-failed");
        if (j->verdict != HPF_AUTH_ERROR)
            ipguard_auth_failed(c->b->ipguard, c->addr);
        char *text = broker_deny_text(c->b, DENY_AUTH, j->ident, NULL);
        conn_fail(c, NULL, "%s", text);
        g_free(text);
        auth_job_free(j);
        return;
    }
    c->ident = g_steal_pointer(&j->ident);
    c->owner = g_steal_pointer(&j->req.owner);
    c->may_publish = conn_channel_set(j->req.publish);
    c->may_subscribe = conn_channel_set(j->req.subscribe);
    c->key_from_storage = j->from_storage;
    memcpy(c->auth_hash, j->hash, sizeof c->auth_hash);
    c->uid = c->b->graph ? graph_user_id(c->b->graph, c->owner) : GRAPH_NO_USER;
    c->state = CONN_READY;
    c->b->stats.connections_ready++;
    metrics_ready(c->b->metrics, c->ident);
    if (c->b->flow)
        flow_note(c->b->flow, FLOW_CONNECTED, c->ident, NULL, c->owner, 1, broker_now_s(c->b));
    /* Made again if the session ever closes with an error (conn_fail). */
    event_free(c->timer);
    c->timer = NULL;
    log_info("%s@%s: authenticated (owner %s)", c->ident, c->peer, c->owner);
    auth_job_free(j);

    /* Frames pipelined behind AUTH wait in the input buffer: run them now. */
    if (c->b->stopping)
        return; /* no new input while the broker drains */
    conn_resume_reading(c);
    conn_process_input(c);
}

gboolean handle_auth(struct conn *c, const struct wire_msg *m)
{
    char *ident = wire_str_dup(m->name);
    if (!ident || m->data.len != WIRE_HASH_LEN) {
        c->b->stats.auth_failures++;
        if (!ident)
            ident = g_strndup((const char *)m->name.ptr, m->name.len);
        sinks_event(c->b->sinks, &(struct hpf_event){.type = HPF_EVENT_AUTH_FAILED,
                                                     .ident = ident,
                                                     .peer = c->peer,
                                                     .reason = "malformed AUTH"});
        metrics_auth_failed(c->b->metrics, ident, "auth-failed");
        ipguard_auth_failed(c->b->ipguard, c->addr);
        char *text = broker_deny_text(c->b, DENY_AUTH, ident, NULL);
        conn_fail(c, NULL, "%s", text);
        g_free(text);
        g_free(ident);
        return FALSE;
    }
    struct auth_job *j = g_new0(struct auth_job, 1);
    j->b = c->b;
    j->conn_id = c->id;
    j->ident = ident;
    memcpy(j->nonce, c->nonce, sizeof j->nonce);
    memcpy(j->hash, m->data.ptr, WIRE_HASH_LEN);
    g_strlcpy(j->peer, c->peer, sizeof j->peer);
    c->state = CONN_AUTHING;
    bufferevent_disable(c->bev, EV_READ);
    worker_submit(c->b->worker, auth_run, auth_done, j);
    return TRUE;
}
