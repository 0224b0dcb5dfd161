/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The console's event log: a bounded ring of the broker's recent events
 * that concern an authkey (failed AUTH, denials, drops, disconnects) or an
 * address (connections refused by the per-address limits), and GET
 * /api/logs over it.  Each event gets a sequence number, so a page of the
 * log can be asked for by cursor (older than `before`, newer than `after`)
 * and a reader polling for news never sees a row twice.  Filters (ident,
 * type, time range) run here on the loop thread, over at most
 * WEB_MAX_EVENTS events; who may see what was settled on the storage
 * worker from a fresh snapshot (run_logs in api.c): a user sees the events
 * of their own authkeys, an administrator everyone's, with an owner for
 * each.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "internal.h"

/* Rows a page holds at most, and when the query names no limit. */
#define LOGS_MAX_LIMIT     200
#define LOGS_DEFAULT_LIMIT 50

static const char *const query_keys[] = {"user",  "ident",  "type",  "since",
                                         "until", "before", "after", "limit"};

/* ---- the ring ---- */

static void web_event_free(gpointer p)
{
    struct web_event *e = p;
    g_free(e->ident);
    g_free(e->owner);
    g_free(e->peer);
    g_free(e->channel);
    g_free(e->reason);
    g_free(e);
}

void web_events_push(struct web *w, int type, const char *ident, const char *owner,
                     const char *peer, const char *channel, const char *reason, guint64 count)
{
    /* Only what concerns an authkey, or an address refused outright:
     * connects and pre-AUTH disconnects name none. */
    if (type == HPF_EVENT_CONNECT || (!ident && type != HPF_EVENT_REFUSED))
        return;
    struct web_event *e = g_new0(struct web_event, 1);
    e->id = ++w->events_seq;
    e->time_us = g_get_real_time();
    e->type = type;
    e->ident = g_strdup(ident);
    e->owner = g_strdup(owner);
    e->peer = g_strdup(peer);
    e->channel = g_strdup(channel);
    e->reason = g_strdup(reason);
    e->count = count;
    g_queue_push_tail(&w->events, e);
    while (w->events.length > WEB_MAX_EVENTS)
        web_event_free(g_queue_pop_head(&w->events));
}

void web_events_clear(struct web *w) { g_queue_clear_full(&w->events, web_event_free); }

/* ---- the query ---- */

struct log_query {
    const char *ident;
    guint types; /* bit (1 << type); 0: every type */
    gint64 since_us, until_us;
    guint64 before, after; /* 0: none */
    guint limit;
};

/* Digits only, into *n (G_MAXUINT64 when too large for it). */
static gboolean whole_number(const char *v, guint64 *n)
{
    char *end = NULL;
    *n = g_ascii_strtoull(v, &end, 10);
    return g_ascii_isdigit(*v) && !*end;
}

/*
 * The whole number from 1 to max under key; an absent key leaves *out as it
 * is.  FALSE on anything else: the caller's error says what the key is for.
 */
static gboolean query_count(struct web_job *j, const char *key, guint64 max, guint64 *out)
{
    const char *v = web_query(j, key);
    guint64 n;
    if (!v)
        return TRUE;
    if (!whole_number(v, &n) || n < 1 || n > max)
        return FALSE;
    *out = n;
    return TRUE;
}

static gboolean parse_id(struct web_job *j, const char *key, guint64 *out)
{
    if (query_count(j, key, G_MAXUINT64 - 1, out))
        return TRUE;
    web_job_error(j, 400, "'%s' must be an event id (a whole number from 1)", key);
    return FALSE;
}

static gboolean parse_limit(struct web_job *j, guint *out)
{
    guint64 n = LOGS_DEFAULT_LIMIT;
    if (!query_count(j, "limit", LOGS_MAX_LIMIT, &n)) {
        web_job_error(j, 400, "'limit' must be a whole number from 1 to %d", LOGS_MAX_LIMIT);
        return FALSE;
    }
    *out = (guint)n;
    return TRUE;
}

/* An instant: seconds since the epoch, or ISO 8601 (UTC unless it says otherwise). */
static gboolean parse_time(struct web_job *j, const char *key, gint64 *out)
{
    const char *v = web_query(j, key);
    if (!v)
        return TRUE;
    guint64 secs;
    if (whole_number(v, &secs) && secs < (guint64)G_MAXINT64 / G_USEC_PER_SEC) {
        *out = (gint64)secs * G_USEC_PER_SEC;
        return TRUE;
    }
    GTimeZone *utc = g_time_zone_new_utc();
    GDateTime *t = g_date_time_new_from_iso8601(v, utc);
    g_time_zone_unref(utc);
    if (!t) {
        web_job_error(j, 400,
                      "'%s' must be a time: 2026-01-31T13:45:00Z (UTC unless a zone is given) "
                      "or seconds since 1970",
                      key);
        return FALSE;
    }
    *out = g_date_time_to_unix(t) * G_USEC_PER_SEC;
    g_date_time_unref(t);
    return TRUE;
}

static int type_of(const char *name)
{
    for (int t = HPF_EVENT_AUTH_FAILED; t <= HPF_EVENT_REFUSED; t++)
        if (t != HPF_EVENT_CONNECT && !g_strcmp0(hpf_event_name(t), name))
            return t;
    return 0;
}

static gboolean parse_types(struct web_job *j, guint *out)
{
    const char *v = web_query(j, "type");
    *out = 0;
    if (!v)
        return TRUE;
    gboolean good = TRUE;
    char **names = g_strsplit(v, ",", 0);
    for (char **p = names; *p; p++) {
        int t = type_of(g_strstrip(*p));
        if (!t) {
            good = FALSE;
            break;
        }
        *out |= 1u << t;
    }
    g_strfreev(names);
    if (!good || !*out)
        web_job_error(j, 400,
                      "'type' must be one or more of auth_failed, denied, slow_drop, disconnect, "
                      "refused, joined by commas");
    return good && *out;
}

static gboolean known_keys(struct web_job *j)
{
    if (!j->query)
        return TRUE;
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, j->query);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        gboolean known = FALSE;
        for (gsize i = 0; i < G_N_ELEMENTS(query_keys) && !known; i++)
            known = !strcmp(k, query_keys[i]);
        if (!known) {
            char *esc = log_escape(k);
            char *key = g_utf8_strlen(esc, -1) > 32 ? g_utf8_substring(esc, 0, 32) : g_strdup(esc);
            g_free(esc);
            web_job_error(j, 400,
                          "unknown parameter '%s': the log takes ident, type, since, until, "
                          "before, after and limit",
                          key);
            g_free(key);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean parse_query(struct web_job *j, struct log_query *q)
{
    memset(q, 0, sizeof *q);
    if (!known_keys(j) || !parse_limit(j, &q->limit) || !parse_types(j, &q->types) ||
        !parse_id(j, "before", &q->before) || !parse_id(j, "after", &q->after) ||
        !parse_time(j, "since", &q->since_us) || !parse_time(j, "until", &q->until_us))
        return FALSE;
    q->ident = web_query(j, "ident");
    if (q->ident && !*q->ident) {
        web_job_error(j, 400, "'ident' must not be empty: leave it out to see every key");
        return FALSE;
    }
    if (q->since_us && q->until_us && q->since_us > q->until_us) {
        web_job_error(j, 400, "'since' must not be later than 'until'");
        return FALSE;
    }
    return TRUE;
}

gboolean web_logs_check_query(struct web_job *j)
{
    struct log_query q;
    return parse_query(j, &q);
}

/* ---- the answer ---- */

/* Whose is the event: its owner when the broker knew one, else whoever holds the ident now. */
static const char *owner_of(const struct web_job *j, const struct web_event *e)
{
    if (e->owner)
        return e->owner;
    return e->ident && j->idents ? g_hash_table_lookup(j->idents, e->ident) : NULL;
}

/* An owner's events go to that owner only (an ident may change hands);
 * owner-less ones (AUTH failures) to whoever holds the ident now; events
 * of no authkey (refusals) to administrators. */
static gboolean visible(const struct web_job *j, gboolean all, const struct web_event *e)
{
    if (all)
        return TRUE;
    const char *owner = owner_of(j, e);
    return owner && !strcmp(owner, j->acting);
}

static gboolean matches(const struct log_query *q, const struct web_event *e)
{
    if (q->types && !(q->types & (1u << e->type)))
        return FALSE;
    if (q->ident && g_strcmp0(q->ident, e->ident))
        return FALSE;
    if (q->since_us && e->time_us < q->since_us)
        return FALSE;
    /* until names a second: events within it are in range. */
    if (q->until_us && e->time_us >= q->until_us + G_USEC_PER_SEC)
        return FALSE;
    return TRUE;
}

static void add_escaped(JsonObject *o, const char *key, const char *v)
{
    /* What a client sent (an ident, a channel) is shown escaped, as in the
     * log: json-glib would write bytes that are not UTF-8 as if Latin-1. */
    if (!v)
        return;
    char *s = log_escape(v);
    json_object_set_string_member(o, key, s);
    g_free(s);
}

static JsonObject *event_json(const struct web_job *j, gboolean all, const struct web_event *e)
{
    JsonObject *o = json_object_new();
    json_object_set_int_member(o, "id", (gint64)e->id);
    GDateTime *t = g_date_time_new_from_unix_utc(e->time_us / G_USEC_PER_SEC);
    char *ts = t ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("");
    json_object_set_string_member(o, "time", ts);
    g_free(ts);
    if (t)
        g_date_time_unref(t);
    const char *type = hpf_event_name(e->type); /* the ring holds no connects */
    json_object_set_string_member(o, "type", type ? type : "other");
    add_escaped(o, "ident", e->ident);
    const char *owner = all ? owner_of(j, e) : NULL;
    if (owner)
        json_object_set_string_member(o, "owner", owner);
    add_escaped(o, "peer", e->peer);
    add_escaped(o, "channel", e->channel);
    add_escaped(o, "reason", e->reason);
    json_object_set_int_member(o, "count", (gint64)e->count);
    return o;
}

void web_logs_finish(struct web_job *j)
{
    struct log_query q;
    if (!parse_query(j, &q)) /* checked on the worker already */
        return;
    gboolean all = j->is_admin && !web_query(j, "user");
    JsonArray *a = json_array_new();
    gboolean more = FALSE;
    guint64 last = 0;
    for (GList *l = j->w->events.tail; l; l = l->prev) {
        const struct web_event *e = l->data;
        if (q.before && e->id >= q.before)
            continue;
        if (q.after && e->id <= q.after)
            break;
        if (!visible(j, all, e) || !matches(&q, e))
            continue;
        if (json_array_get_length(a) == q.limit) {
            more = TRUE;
            break;
        }
        json_array_add_object_element(a, event_json(j, all, e));
        last = e->id;
    }
    JsonObject *r = json_node_get_object(j->result);
    json_object_set_array_member(r, "events", a);
    json_object_set_boolean_member(r, "more", more);
    if (more)
        json_object_set_int_member(r, "next_before", (gint64)last);
    json_object_set_int_member(r, "limit", q.limit);
    json_object_set_boolean_member(r, "owners", all);
}
