/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The console's HTTP side: listener, static files (read once at start, so
 * serving them never touches the disk), connection caps, route lookup,
 * request bodies, and the hand-off of API requests to the workers.
 * Sessions, CSRF and login are in session.c.
 */
#include "web.h"

#include <errno.h>
#include <sys/queue.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "accept.h"
#include "ipguard.h"
#include "jsonutil.h"
#include "log.h"
#include "sinks.h"
#include "snapshot.h"
#include "tls.h"
#include "internal.h"
#include "worker.h"

#ifndef HPF_WEBDIR
#define HPF_WEBDIR "/usr/local/share/hpfriends/web"
#endif

#define MAX_BODY              65536
#define MAX_FILE              (4 * 1024 * 1024)
/* Requests being worked on at once; more get a 503 rather than a queue. */
#define MAX_JOBS              256
/*
 * hpfeeds AUTH and reloads share the storage worker: the console keeps at
 * most this many jobs there, the rest wait in a short queue of its own.
 */
#define MAX_STORAGE_JOBS      2
#define MAX_STORAGE_WAIT      64
/* Nesting deeper than this is refused unparsed. */
#define MAX_JSON_DEPTH        32
/* Connections (counted from accept, by the gate), in all and per address. */
#define MAX_CONNS             512
#define MAX_CONNS_PER_IP      64
/* A connection's first request must be complete this long after accept. */
#define FIRST_REQUEST_SECONDS 10
/*
 * Authkey idents and group names are global, so creating one answers
 * whether another user's exists (and sharing with a @group whether it
 * does).  That cannot be hidden while users choose names, but it can be
 * slowed: this many such answers to one account within a minute, and its
 * creations and shares wait 60 s (doubling while it goes on, up to 15
 * minutes).  Administrators see every name anyway.
 */
#define NAME_PROBES           10

/* ---- small helpers ---- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Error" : "Internal Server Error";
    }
}

static void common_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Cache-Control", "no-store");
}

static void reply_text(struct evhttp_request *req, int status, const char *ctype, const char *text,
                       gsize len)
{
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, text, len);
    common_headers(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, status, reason_of(status), body);
    evbuffer_free(body);
}

static void reply_json_node(struct evhttp_request *req, int status, JsonNode *node)
{
    JsonGenerator *gen = json_generator_new();
    json_generator_set_root(gen, node);
    gsize len = 0;
    char *text = json_generator_to_data(gen, &len);
    g_object_unref(gen);
    reply_text(req, status, "application/json; charset=utf-8", text, len);
    g_free(text);
}

static void reply_error(struct evhttp_request *req, int status, const char *msg)
{
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error");
    /* Messages may quote what a client sent: the reply stays UTF-8. */
    char *valid = g_utf8_make_valid(msg, -1);
    json_builder_add_string_value(b, valid);
    g_free(valid);
    json_builder_end_object(b);
    JsonNode *n = json_builder_get_root(b);
    reply_json_node(req, status, n);
    json_node_unref(n);
    g_object_unref(b);
}

/* ---- results, from either thread ---- */

void web_job_error(struct web_job *j, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_free(j->error);
    j->error = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    j->status = status;
    g_clear_pointer(&j->result, json_node_unref);
}

void web_job_gerror(struct web_job *j, GError *e)
{
    int status = 500;
    if (e->domain == ADMIN_ERROR || e->domain == HPF_PLUGIN_ERROR) {
        switch (e->code) {
        case HPF_ERR_NOTFOUND:
            status = 404;
            break;
        case HPF_ERR_EXISTS:
            status = 409;
            break;
        case HPF_ERR_INVALID:
            status = 400;
            break;
        case HPF_ERR_UNSUPPORTED:
            status = 501;
            break;
        case HPF_ERR_IO:
        case HPF_ERR_UNAVAILABLE:
            status = 503;
            break;
        default:
            status = 500;
            break;
        }
    }
    web_job_error(j, status, "%s", e->message);
}

void web_job_ok(struct web_job *j, JsonBuilder *b)
{
    g_clear_pointer(&j->result, json_node_unref);
    j->result = json_builder_get_root(b);
    j->status = 200;
    g_object_unref(b);
}

const char *web_body_str(struct web_job *j, const char *key, gboolean required)
{
    JsonObject *o = j->body ? json_node_get_object(j->body) : NULL;
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
        return json_node_get_string(n);
    if (j->status == 0 && (required || n))
        web_job_error(j, 400, n ? "'%s' must be a string" : "missing '%s'", key);
    return NULL;
}

char **web_body_strv(struct web_job *j, const char *key, gboolean *present)
{
    JsonObject *o = j->body ? json_node_get_object(j->body) : NULL;
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    *present = n != NULL;
    if (!n)
        return NULL;
    if (!JSON_NODE_HOLDS_ARRAY(n)) {
        web_job_error(j, 400, "'%s' must be an array of strings", key);
        return NULL;
    }
    JsonArray *a = json_node_get_array(n);
    guint len = json_array_get_length(a);
    char **v = g_new0(char *, len + 1);
    for (guint i = 0; i < len; i++) {
        JsonNode *e = json_array_get_element(a, i);
        if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING) {
            g_strfreev(v);
            web_job_error(j, 400, "'%s' must be an array of strings", key);
            return NULL;
        }
        v[i] = g_strdup(json_node_get_string(e));
    }
    return v;
}

const char *web_query(struct web_job *j, const char *key)
{
    return j->query ? g_hash_table_lookup(j->query, key) : NULL;
}

/* ---- the event log (kept in api_logs.c) ---- */

static void on_event(void *ud, const struct hpf_event *ev)
{
    web_events_push(ud, ev->type, ev->ident, ev->owner, ev->peer, ev->channel, ev->reason,
                    ev->count);
}

/* ---- jobs ---- */

void web_job_free(struct web_job *j)
{
    if (j->guarded)
        ipguard_release(j->w->login_guard, j->peer);
    if (j->user_guarded)
        ipguard_release(j->w->user_guard, j->user ? j->user : "");
    if (j->password)
        OPENSSL_cleanse(j->password, strlen(j->password));
    if (j->password2)
        OPENSSL_cleanse(j->password2, strlen(j->password2));
    g_free(j->password);
    g_free(j->password2);
    g_free(j->hash);
    g_free(j->user);
    g_free(j->acting);
    g_free(j->actor);
    g_free(j->session_id);
    g_free(j->peer);
    g_free(j->error);
    if (j->body)
        json_node_unref(j->body);
    if (j->result)
        json_node_unref(j->result);
    if (j->query)
        g_hash_table_unref(j->query);
    if (j->idents)
        g_hash_table_unref(j->idents);
    g_free(j);
}

/*
 * OpenSSL keeps per-thread state (error queue, random generators) that it
 * frees only when the thread exits, and GLib keeps idle pool threads alive:
 * release it after each job, so nothing stays behind the workers' backs.
 */
void web_release_thread_state(void) { OPENSSL_thread_stop(); }

static void job_run(void *arg)
{
    struct web_job *j = arg;
    if (j->req)
        j->route->run(j);
    web_release_thread_state();
}

static void job_reply(struct web_job *j)
{
    if (!j->req)
        return;
    if (j->status == 0)
        web_job_error(j, 500, "no result");
    if (j->result)
        reply_json_node(j->req, j->status, j->result);
    else
        reply_error(j->req, j->status, j->error ? j->error : reason_of(j->status));
    j->req = NULL;
}

static void job_done(void *arg);

/*
 * A request whose answer says whether another user's name exists: creating
 * an authkey or a group (409 when it does), sharing with a user or @group
 * (404 when it does not).
 */
static gboolean creates_name(const struct web_route *r)
{
    return !strcmp(r->method, "POST") &&
           (!strcmp(r->path, "/api/authkeys") || !strcmp(r->path, "/api/groups") ||
            !strcmp(r->path, "/api/shares"));
}

static gboolean name_answered(const struct web_job *j)
{
    return creates_name(j->route) &&
           j->status == (strcmp(j->route->path, "/api/shares") ? 409 : 404);
}

/* Counted while the account is not an administrator: see NAME_PROBES. */
static gboolean name_probe_counted(struct web *w, const char *user)
{
    const struct web_cred *c = w->creds && user ? g_hash_table_lookup(w->creds, user) : NULL;
    return user && !(c && c->admin);
}

void web_storage_submit(struct web *w, struct web_job *j)
{
    if (w->storage_busy < MAX_STORAGE_JOBS) {
        w->storage_busy++;
        worker_submit(w->b->worker, job_run, job_done, j);
    } else {
        g_queue_push_tail(&w->storage_wait, j);
    }
}

static void job_done(void *arg)
{
    struct web_job *j = arg;
    struct web *w = j->w;
    w->storage_busy--;
    while (w->storage_busy < MAX_STORAGE_JOBS && !g_queue_is_empty(&w->storage_wait)) {
        w->storage_busy++;
        worker_submit(w->b->worker, job_run, job_done, g_queue_pop_head(&w->storage_wait));
    }
    j->resubmitted = FALSE;
    if (name_answered(j) && name_probe_counted(w, j->user))
        ipguard_auth_failed(w->name_guard, j->user);
    if (j->req && j->status == 200 && j->route->finish)
        j->route->finish(j);
    if (j->resubmitted)
        return; /* another stage runs it on */
    if (j->changed && !w->stopped)
        reload_request(w->b);
    web_job_end(j);
}

void web_job_end(struct web_job *j)
{
    job_reply(j);
    g_hash_table_remove(j->w->jobs, j);
    web_job_free(j);
}

/* ---- requests ---- */

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "?";
    }
}

/*
 * The query as a table (NULL when there is none).  A query libevent cannot
 * take apart (a key without '=') is refused rather than read as empty: that
 * would drop ?user= and act on the caller's own objects.
 */
gboolean web_parse_query(const char *q, GHashTable **out)
{
    *out = NULL;
    if (!q || !*q)
        return TRUE;
    /* A NUL would cut the decoded text short ("jojo%00x" acting on "jojo"). */
    if (strstr(q, "%00"))
        return FALSE;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(q, &kv) != 0) {
        evhttp_clear_headers(&kv);
        return FALSE;
    }
    GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    gboolean ok = TRUE;
    for (struct evkeyval *e = kv.tqh_first; e && ok; e = e->next.tqe_next) {
        /* One value a key (no guessing which of two counts), and text only. */
        ok = !g_hash_table_contains(t, e->key) && g_utf8_validate(e->key, -1, NULL) &&
             g_utf8_validate(e->value, -1, NULL);
        if (ok)
            g_hash_table_insert(t, g_strdup(e->key), g_strdup(e->value));
    }
    evhttp_clear_headers(&kv);
    if (!ok) {
        g_hash_table_unref(t);
        return FALSE;
    }
    *out = t;
    return TRUE;
}

static const char *content_type(const char *name)
{
    if (g_str_has_suffix(name, ".html"))
        return "text/html; charset=utf-8";
    if (g_str_has_suffix(name, ".js"))
        return "text/javascript; charset=utf-8";
    if (g_str_has_suffix(name, ".css"))
        return "text/css; charset=utf-8";
    if (g_str_has_suffix(name, ".svg"))
        return "image/svg+xml";
    return "application/octet-stream";
}

/* A static file; FALSE with the refusal set. */
static gboolean serve_file(struct web *w, struct evhttp_request *req, const char *path,
                           struct web_refusal *no)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        no->allow = "GET, HEAD";
        return web_refuse(no, 405, "method not allowed");
    }
    const char *name = !strcmp(path, "/") ? "index.html" : path + 1;
    GBytes *data = strchr(name, '/') ? NULL : g_hash_table_lookup(w->files, name);
    if (!data)
        return web_refuse(no, 404, "not found");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
                      "default-src 'none'; script-src 'self'; style-src 'self'; "
                      "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                      "form-action 'self'; frame-ancestors 'none'");
    gsize len;
    const char *bytes = g_bytes_get_data(data, &len);
    if (cmd == EVHTTP_REQ_HEAD)
        len = 0;
    reply_text(req, 200, content_type(name), bytes, len);
    return TRUE;
}

static void on_conn_close(void *arg, struct evhttp_connection *evcon)
{
    struct web *w = arg;
    char *peer = g_hash_table_lookup(w->conns, evcon);
    if (peer) {
        ipguard_release(w->conn_guard, peer);
        g_hash_table_remove(w->conns, evcon);
    }
}

/* Per address, at accept (the total is the gate's): NULL admits, else why not. */
static const char *conn_admit(void *arg, struct evhttp_connection *evcon, const char *peer)
{
    struct web *w = arg;
    const char *why = ipguard_admit(w->conn_guard, peer);
    if (why)
        return why;
    g_hash_table_insert(w->conns, evcon, g_strdup(peer));
    return NULL;
}

/* Not while stopping; the gate learns the connection has sent a request. */
static gboolean request_admit(struct web *w, struct evhttp_request *req, struct web_refusal *no)
{
    if (w->stopped)
        return web_refuse(no, 503, "shutting down");
    http_gate_request(w->gate, req);
    /* Every method reaches us (so the refusal is JSON like the rest). */
    if (!strcmp(method_name(evhttp_request_get_command(req)), "?"))
        return web_refuse(no, 501, "method not implemented");
    const char *twice = http_repeated_header(req);
    if (twice)
        return web_refuse(no, 400, "bad request: %s%s", twice,
                          strchr(twice, ' ') ? "" : " header more than once");
    return TRUE;
}

/*
 * DNS rebinding: a page of another site whose name now resolves to us sends
 * its own name in Host, and its Origin matches it.  Only names the admin
 * listed ([web] hostnames), IP literals and localhost are ours.  A request
 * without Host (HTTP/1.0) comes from no browser and passes.
 */
static gboolean host_allowed(struct web *w, struct evhttp_request *req, struct web_refusal *no)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    char **names = w->b->cfg->web->hostnames;
    if (!h || (names && names[0] && !strcmp(names[0], "*")))
        return TRUE;
    char *host;
    if (h[0] == '[') { /* [v6]:port */
        const char *end = strchr(h, ']');
        host = end ? g_strndup(h + 1, end - h - 1) : g_strdup(h);
    } else {
        const char *colon = strchr(h, ':');
        host = colon ? g_strndup(h, colon - h) : g_strdup(h);
    }
    gboolean ok = g_hostname_is_ip_address(host) || !g_ascii_strcasecmp(host, "localhost");
    for (char **n = names; n && *n && !ok; n++)
        ok = !g_ascii_strcasecmp(host, *n);
    g_free(host);
    if (!ok)
        return web_refuse(no, 403,
                          "this console does not answer to that Host name (add it to "
                          "[web] hostnames)");
    return TRUE;
}

gboolean web_refuse(struct web_refusal *no, int status, const char *fmt, ...)
{
    if (no->status)
        return FALSE;
    va_list ap;
    va_start(ap, fmt);
    no->msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    no->status = status;
    return FALSE;
}

/* The route of an API path and method: 404 for an unknown path, 405 for another method. */
static const struct web_route *route_lookup(struct evhttp_request *req, const char *path,
                                            struct web_refusal *no)
{
    const char *method = method_name(evhttp_request_get_command(req));
    gboolean path_known = FALSE;
    for (gsize i = 0; i < web_n_routes; i++) {
        if (strcmp(web_routes[i].path, path))
            continue;
        path_known = TRUE;
        if (!strcmp(web_routes[i].method, method))
            return &web_routes[i];
    }
    if (path_known)
        web_refuse(no, 405, "method not allowed here");
    else
        web_refuse(no, 404, "no such API endpoint");
    return NULL;
}

/* The job of an admitted API request, with its session's user, or NULL (refused). */
static struct web_job *job_new(struct web *w, struct evhttp_request *req,
                               const struct web_route *route, const struct web_session *s,
                               struct web_refusal *no)
{
    GHashTable *query;
    if (!web_parse_query(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)), &query)) {
        web_refuse(no, 400,
                   "bad query string: use key=value pairs joined by '&', each key once, "
                   "UTF-8 text without NUL");
        return NULL;
    }
    char peer[64] = "?";
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
    if (addr)
        g_strlcpy(peer, addr, sizeof peer);
    struct web_job *j = g_new0(struct web_job, 1);
    j->w = w;
    j->req = req;
    j->route = route;
    j->admin.storage = w->b->storage;
    j->admin.audit_keep = w->b->cfg->audit_keep;
    j->require_accept = w->b->cfg->require_accept;
    j->channels_mode = w->b->cfg->access == ACCESS_CHANNELS;
    j->peer = g_strdup(peer);
    j->query = query;
    if (s) {
        j->user = g_strdup(s->user);
        j->session_id = g_strdup(s->id);
        j->actor = g_strdup(s->user);
        j->admin.actor = j->actor;
    }
    return j;
}

/* Whether name is one of the words of a space-separated list. */
static gboolean word_in(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return TRUE;
        p = sp ? sp + 1 : p + len;
    }
    return FALSE;
}

/* Every member of the body is one the route reads (web_route.body_keys). */
static gboolean body_keys_known(struct web_job *j, struct web_refusal *no)
{
    JsonObject *o = json_node_get_object(j->body);
    GList *names = json_object_get_members(o);
    const char *unknown = NULL;
    for (GList *l = names; l && !unknown; l = l->next)
        if (!word_in(j->route->body_keys, l->data) &&
            !(j->route->session && !strcmp(l->data, "user")))
            unknown = l->data;
    gboolean ok = TRUE;
    if (unknown) {
        /* g_utf8_substring() reads past a string shorter than its end. */
        char *cut = g_utf8_validate(unknown, -1, NULL) && g_utf8_strlen(unknown, -1) > 64
                        ? g_utf8_substring(unknown, 0, 64)
                        : g_strndup(unknown, 256);
        char *shown = log_escape(cut);
        g_free(cut);
        const char *keys = j->route->body_keys;
        ok = web_refuse(no, 400, "unknown field '%s' (%s %s takes %s)", shown, j->route->method,
                        j->route->path, keys && *keys ? keys : "no fields");
        g_free(shown);
    }
    g_list_free(names);
    return ok;
}

/* The JSON object of a change's body into j->body; FALSE (refused) when it is not one. */
static gboolean body_read(struct web_job *j, struct evhttp_request *req, struct web_refusal *no)
{
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET)
        return TRUE;
    if (len == 0) {
        if (j->route->session && strcmp(j->route->path, "/api/logout"))
            return web_refuse(no, 400, "bad JSON: empty body, expected an object");
        return TRUE;
    }
    const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    if (!ctype || g_ascii_strncasecmp(ctype, "application/json", 16))
        return web_refuse(no, 415, "send the body as Content-Type: application/json");
    const char *text = (const char *)evbuffer_pullup(body, (ev_ssize_t)len);
    char *why = NULL;
    j->body = web_parse_body(text, len, &why);
    if (!j->body) {
        web_refuse(no, 400, "%s", why);
        g_free(why);
        return FALSE;
    }
    return body_keys_known(j, no);
}

JsonNode *web_parse_body(const char *text, size_t len, char **why)
{
    JsonNode *out = jsonutil_parse(text, len, MAX_JSON_DEPTH, why);
    if (out && !JSON_NODE_HOLDS_OBJECT(out)) {
        json_node_unref(out);
        out = NULL;
        *why = g_strdup("bad JSON: the body must be an object");
    }
    return out;
}

/* Hand an admitted job on: a login with the credentials at hand, else the storage worker. */
static gboolean dispatch(struct web *w, struct web_job *j, struct web_refusal *no)
{
    if (!strcmp(j->route->path, "/api/login") && web_login_start(j))
        return TRUE;
    if (w->storage_busy >= MAX_STORAGE_JOBS && w->storage_wait.length >= MAX_STORAGE_WAIT)
        return web_refuse(no, 503, "busy: too many requests in progress; try again");
    g_hash_table_add(w->jobs, j);
    web_storage_submit(w, j);
    return TRUE;
}

/* An API request: route, guards, body, then a job; FALSE with the refusal set. */
static gboolean api_request(struct web *w, struct evhttp_request *req, const char *path,
                            struct web_refusal *no)
{
    struct web_session *s = NULL;
    const struct web_route *route = route_lookup(req, path, no);
    if (!route || !web_session_guard(w, req, route, &s, no))
        return FALSE;
    if (g_hash_table_size(w->jobs) >= MAX_JOBS)
        return web_refuse(no, 503, "busy: too many requests in progress; try again");
    /* Every creation waits, not only of taken names: a 429 for those alone would answer too. */
    if (creates_name(route) && name_probe_counted(w, s->user)) {
        if (ipguard_admit(w->name_guard, s->user))
            return web_refuse(no, 429,
                              "too many names were tried that exist (or, to share with, do "
                              "not) from this account; try again later");
        ipguard_release(w->name_guard, s->user); /* only its back-off counts here */
    }
    struct web_job *j = job_new(w, req, route, s, no);
    if (!j)
        return FALSE;
    size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(req));
    /* A login is throttled and sized before its body is even parsed. */
    gboolean ok = (strcmp(route->path, "/api/login") || web_login_admit(w, j, len, no)) &&
                  body_read(j, req, no) && dispatch(w, j, no);
    if (!ok)
        web_job_free(j);
    return ok;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct web *w = arg;
    struct web_refusal no = {0};
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    gboolean admitted = request_admit(w, req, &no) && host_allowed(w, req, &no);
    if (admitted && (!path || path[0] != '/'))
        web_refuse(&no, 400, "bad request path");
    else if (admitted && !g_str_has_prefix(path, "/api/"))
        serve_file(w, req, path, &no);
    else if (admitted)
        api_request(w, req, path, &no);
    if (no.status) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        if (no.allow)
            evhttp_add_header(out, "Allow", no.allow);
        reply_error(req, no.status, no.msg);
    }
    g_free(no.msg);
}

/* ---- life cycle ---- */

static gboolean load_files(struct web *w, GError **error)
{
    GDir *d = g_dir_open(w->root, 0, error);
    if (!d) {
        g_prefix_error(error, "web: static files: ");
        return FALSE;
    }
    const char *name;
    while ((name = g_dir_read_name(d))) {
        char *path = g_build_filename(w->root, name, NULL);
        char *data = NULL;
        gsize len = 0;
        if (g_file_test(path, G_FILE_TEST_IS_REGULAR) &&
            g_file_get_contents(path, &data, &len, NULL)) {
            if (len <= MAX_FILE)
                g_hash_table_insert(w->files, g_strdup(name), g_bytes_new_take(data, len));
            else
                g_free(data);
        }
        g_free(path);
    }
    g_dir_close(d);
    if (!g_hash_table_contains(w->files, "index.html")) {
        g_set_error(error, CONFIG_ERROR, 0, "web: %s has no index.html (set [web] root)", w->root);
        return FALSE;
    }
    return TRUE;
}

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
    struct web *w = arg;
    SSL *ssl = SSL_new(w->tls);
    if (!ssl)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct web *w = arg;
    web_sessions_expire(w);
    ipguard_expire(w->conn_guard);
    ipguard_expire(w->name_guard);
}

gboolean web_start(struct broker *b, FILE *ready, GError **error)
{
    const struct web_conf *wc = b->cfg->web;
    if (!wc)
        return TRUE;
    struct web *w = g_new0(struct web, 1);
    b->web = w;
    w->b = b;
    w->files =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
    w->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, web_session_free);
    w->jobs = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_queue_init(&w->events);
    g_queue_init(&w->storage_wait);
    w->login_guard = ipguard_new(WEB_CHECKS_PER_ADDR, wc->login_failures, 30);
    w->user_guard = ipguard_new(WEB_CHECKS_PER_USER, wc->login_failures, 30);
    w->name_guard = ipguard_new(0, NAME_PROBES, 60);
    w->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    w->conn_guard = ipguard_new(MAX_CONNS_PER_IP, 0, 0);
    const char *env = g_getenv("HPFRIENDS_WEB_ROOT");
    w->root = env && *env ? g_strdup(env)
              : wc->root  ? config_resolve_path(b->cfg, wc->root)
                          : g_strdup(HPF_WEBDIR);
    if (!load_files(w, error))
        return FALSE;
    w->crypto = worker_new(b->base, "web-passwords");
    if (!w->crypto) {
        g_set_error(error, CONFIG_ERROR, 0, "web: cannot start the password worker");
        return FALSE;
    }
    char *spec = listen_addr_to_string(wc->listen);
    if (wc->listen->tls) {
        char *cert = config_resolve_path(b->cfg, wc->tls_cert ? wc->tls_cert : b->cfg->tls_cert);
        char *key = config_resolve_path(b->cfg, wc->tls_key ? wc->tls_key : b->cfg->tls_key);
        w->tls = tls_server_ctx(cert, key, error);
        g_free(cert);
        g_free(key);
        if (!w->tls) {
            g_prefix_error(error, "[web] listen %s: ", spec);
            g_free(spec);
            return FALSE;
        }
    }
    w->http = evhttp_new(b->base);
    /* All methods libevent knows reach on_request, which answers 501 in JSON
     * for those we do not serve (libevent's own 501 is an HTML page). */
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(w->http, MAX_BODY);
    evhttp_set_max_headers_size(w->http, 16384);
    evhttp_set_timeout(w->http, 30);
    evhttp_set_gencb(w->http, on_request, w);
    const char *host = *wc->listen->host && strcmp(wc->listen->host, "*") ? wc->listen->host
                       : strchr(wc->listen->host, ':')                    ? "::"
                                                                          : "0.0.0.0";
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(w->http, host, (ev_uint16_t)atoi(wc->listen->port));
    if (!bs) {
        g_set_error(error, CONFIG_ERROR, 0, "[web] listen %s: cannot listen: %s", spec,
                    g_strerror(errno));
        g_free(spec);
        return FALSE;
    }
    const struct http_gate_ops gate_ops = {
        .make_bev = w->tls ? make_tls_bev : NULL,
        .admit = conn_admit,
        .closed = on_conn_close,
    };
    w->gate = http_gate_new(w->http, bs, "web", MAX_CONNS, FIRST_REQUEST_SECONDS, &gate_ops, w);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
        w->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    log_notice("web: console on %s://%s (port %d), files from %s", w->tls ? "https" : "http",
               spec + 4, w->port, w->root);
    if (ready)
        fprintf(ready, "http web %d\n", w->port);
    g_free(spec);
    return TRUE;
}

void web_begin(struct broker *b)
{
    struct web *w = b->web;
    if (!w)
        return;
    sinks_set_tap(b->sinks, on_event, w);
    reload_request(b); /* a snapshot for the login table */
    w->tick = event_new(b->base, -1, EV_PERSIST, on_tick, w);
    struct timeval minute = {60, 0};
    evtimer_add(w->tick, &minute);
}

void web_stop(struct web *w)
{
    if (!w || w->stopped)
        return;
    w->stopped = TRUE;
    /* Requests in flight die with their connections: their jobs finish unanswered. */
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, w->jobs);
    while (g_hash_table_iter_next(&it, &k, NULL))
        ((struct web_job *)k)->req = NULL;
    /* Jobs still waiting for the storage worker never run. */
    struct web_job *q;
    while ((q = g_queue_pop_head(&w->storage_wait))) {
        g_hash_table_remove(w->jobs, q);
        web_job_free(q);
    }
    if (w->http)
        evhttp_free(w->http);
    w->http = NULL;
    http_gate_free(w->gate);
    w->gate = NULL;
    if (w->tick)
        event_del(w->tick);
    if (w->b->sinks)
        sinks_set_tap(w->b->sinks, NULL, NULL);
}

void web_free(struct web *w)
{
    if (!w)
        return;
    web_stop(w);
    worker_free(w->crypto); /* runs the last completions, which free their jobs */
    g_hash_table_unref(w->jobs);
    if (w->tick)
        event_free(w->tick);
    g_hash_table_unref(w->files);
    g_hash_table_unref(w->sessions);
    web_events_clear(w);
    ipguard_free(w->login_guard);
    ipguard_free(w->user_guard);
    ipguard_free(w->name_guard);
    g_hash_table_unref(w->conns);
    ipguard_free(w->conn_guard);
    if (w->creds)
        g_hash_table_unref(w->creds);
    if (w->tls)
        SSL_CTX_free(w->tls);
    g_free(w->root);
    g_free(w);
}
