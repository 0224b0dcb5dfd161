/*
 * The console's HTTP side: listener, static files (read once at start, so
 * serving them never touches the disk), sessions, CSRF and Origin checks,
 * request bodies, and the hand-off of API requests to the workers.
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
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "accept.h"
#include "ipguard.h"
#include "log.h"
#include "password.h"
#include "sinks.h"
#include "snapshot.h"
#include "tls.h"
#include "internal.h"
#include "worker.h"

#ifndef HPF_WEBDIR
#define HPF_WEBDIR "/usr/local/share/hpfriends/web"
#endif

#define COOKIE_NAME "hpf_session"
#define MAX_BODY 65536
#define MAX_FILE (4 * 1024 * 1024)
#define MAX_SESSIONS 10000
/* Sessions of one user; a new login ends the oldest past it. */
#define MAX_USER_SESSIONS 20
/* Requests being worked on at once; more get a 503 rather than a queue. */
#define MAX_JOBS 256
/*
 * hpfeeds AUTH and reloads share the storage worker: the console keeps at
 * most this many jobs there, the rest wait in a short queue of its own.
 */
#define MAX_STORAGE_JOBS 2
#define MAX_STORAGE_WAIT 64
/* Logins waiting for storage (only before the first snapshot is in). */
#define MAX_LOGIN_WAIT 8
/* Password derivations queued or running; more get a 503. */
#define MAX_CRYPTO_JOBS 32
/* Login bodies are small; nesting deeper than this is refused unparsed. */
#define MAX_LOGIN_BODY 4096
#define MAX_JSON_DEPTH 32
#define SESSION_MAX_US ((gint64)24 * 3600 * G_USEC_PER_SEC)
/* Connections (counted from accept, by the gate), in all and per address. */
#define MAX_CONNS 512
#define MAX_CONNS_PER_IP 64
/* A connection's first request must be complete this long after accept. */
#define FIRST_REQUEST_SECONDS 10

/* ---- small helpers ---- */

static char *random_hex(gsize bytes)
{
    guint8 raw[64];
    g_assert(bytes <= sizeof raw);
    if (RAND_bytes(raw, (int)bytes) != 1)
        return NULL;
    GString *s = g_string_sized_new(bytes * 2);
    for (gsize i = 0; i < bytes; i++)
        g_string_append_printf(s, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof raw);
    return g_string_free(s, FALSE);
}

static gboolean same_secret(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status < 500 ? "Error" : "Internal Server Error";
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

static void reply_text(struct evhttp_request *req, int status, const char *ctype,
                       const char *text, gsize len)
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
    json_builder_add_string_value(b, msg);
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
        case HPF_ERR_NOTFOUND: status = 404; break;
        case HPF_ERR_EXISTS: status = 409; break;
        case HPF_ERR_INVALID: status = 400; break;
        case HPF_ERR_UNSUPPORTED: status = 501; break;
        case HPF_ERR_IO:
        case HPF_ERR_UNAVAILABLE: status = 503; break;
        default: status = 500; break;
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

/* ---- sessions ---- */

static void session_free(gpointer p)
{
    struct web_session *s = p;
    OPENSSL_cleanse(s->id, strlen(s->id));
    OPENSSL_cleanse(s->csrf, strlen(s->csrf));
    g_free(s->id);
    g_free(s->csrf);
    g_free(s->user);
    g_free(s->epoch);
    g_free(s);
}

static void cred_free(gpointer p)
{
    struct web_cred *c = p;
    g_free(c->hash);
    g_free(c);
}

void web_snapshot_loaded(struct web *w, const struct snapshot *s)
{
    GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cred_free);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->passwords);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        struct web_cred *c = g_new0(struct web_cred, 1);
        c->hash = g_strdup(v);
        c->admin = g_hash_table_contains(s->admins, k);
        g_hash_table_insert(t, g_strdup(k), c);
    }
    if (w->creds)
        g_hash_table_unref(w->creds);
    w->creds = t;
}

/* Over its idle time or its lifetime, or its user's password changed since. */
static gboolean session_over(const struct web *w, const struct web_session *s, gint64 now)
{
    if (now - s->last_used_us > (gint64)w->b->cfg->web->session_timeout * G_USEC_PER_SEC ||
        now - s->created_us > SESSION_MAX_US)
        return TRUE;
    if (!w->creds)
        return FALSE;
    const struct web_cred *c = g_hash_table_lookup(w->creds, s->user);
    return !c || g_strcmp0(c->hash, s->epoch);
}

static gboolean is_secure(const struct web *w) { return w->tls != NULL; }

/* The session named by the request's cookie, if it is current. */
static struct web_session *session_of(struct web *w, struct evhttp_request *req)
{
    const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    if (!cookie)
        return NULL;
    struct web_session *found = NULL;
    char **parts = g_strsplit(cookie, ";", 32);
    for (char **p = parts; *p && !found; p++) {
        char *kv = g_strstrip(*p);
        if (!g_str_has_prefix(kv, COOKIE_NAME "="))
            continue;
        found = g_hash_table_lookup(w->sessions, kv + strlen(COOKIE_NAME "="));
    }
    g_strfreev(parts);
    gint64 now = g_get_monotonic_time();
    if (found && session_over(w, found, now)) {
        g_hash_table_remove(w->sessions, found->id);
        return NULL;
    }
    if (found)
        found->last_used_us = now;
    return found;
}

static void set_cookie(struct web *w, struct evhttp_request *req, const char *value, gboolean clear)
{
    char *c = g_strdup_printf(COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict%s%s", value,
                              is_secure(w) ? "; Secure" : "", clear ? "; Max-Age=0" : "");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", c);
    g_free(c);
}

/* ---- the event log ---- */

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
    /* Only what concerns an authkey: connects and pre-AUTH disconnects name none. */
    if (!ident || type == HPF_EVENT_CONNECT)
        return;
    struct web_event *e = g_new0(struct web_event, 1);
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

static void on_event(void *ud, const struct hpf_event *ev)
{
    web_events_push(ud, ev->type, ev->ident, ev->owner, ev->peer, ev->channel, ev->reason,
                    ev->count);
}

/* ---- jobs ---- */

static void job_free(struct web_job *j)
{
    if (j->guarded)
        ipguard_release(j->w->login_guard, j->peer);
    if (j->password)
        OPENSSL_cleanse(j->password, strlen(j->password));
    if (j->password2)
        OPENSSL_cleanse(j->password2, strlen(j->password2));
    g_free(j->password);
    g_free(j->password2);
    g_free(j->hash);
    g_free(j->user);
    g_free(j->acting);
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
static void release_thread_state(void) { OPENSSL_thread_stop(); }

static void job_run(void *arg)
{
    struct web_job *j = arg;
    if (j->req)
        j->route->run(j);
    release_thread_state();
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

static void storage_submit(struct web *w, struct web_job *j)
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
    if (j->req && j->status == 200 && j->route->finish)
        j->route->finish(j);
    if (j->resubmitted)
        return; /* another stage runs it on */
    if (j->changed && !w->stopped)
        reload_request(w->b);
    job_reply(j);
    g_hash_table_remove(w->jobs, j);
    job_free(j);
}

/* Hand a job on to the password worker; its completion is job_done again. */
static void crypto_run(void *arg)
{
    struct web_job *j = arg;
    if (!j->req)
        return;
    /* A user without a password still costs one derivation: no timing hint. */
    if (!strcmp(j->route->path, "/api/login")) {
        char *dummy = j->hash ? NULL
                              : g_strdup_printf("pbkdf2-sha256$%u$AAAAAAAAAAAAAAAAAAAAAA==$"
                                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                                password_iterations());
        gboolean match = password_verify(j->password ? j->password : "", j->hash ? j->hash : dummy);
        j->verified = match && j->hash;
        g_free(dummy);
    } else {
        /* /api/password: check the old one, hash the new one. */
        j->verified = j->hash && password_verify(j->password, j->hash);
        g_clear_pointer(&j->hash, g_free);
        if (j->verified)
            j->hash = password_hash(j->password2, password_iterations());
    }
    release_thread_state();
}

static void crypto_done(void *arg);

void web_crypto_finish(struct web_job *j)
{
    struct web *w = j->w;
    if (!j->verified) {
        /* First pass (storage read): verify on the password worker. */
        if (w->crypto_busy >= MAX_CRYPTO_JOBS) {
            web_job_error(j, 503, "busy: too many password checks in progress; try again");
            return;
        }
        j->resubmitted = TRUE;
        j->verified = FALSE;
        w->crypto_busy++;
        worker_submit(w->crypto, crypto_run, crypto_done, j);
    } else if (j->session_id) {
        /* /api/password stored the new hash: that ends the user's other sessions. */
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, w->sessions);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            struct web_session *s = v;
            if (!strcmp(s->user, j->user) && strcmp(s->id, j->session_id))
                g_hash_table_iter_remove(&it);
        }
        struct web_session *s = g_hash_table_lookup(w->sessions, j->session_id);
        if (s) {
            g_free(s->epoch);
            s->epoch = g_strdup(j->hash);
        }
        /* Until the reload brings it in, or the current session would end too. */
        struct web_cred *c = w->creds ? g_hash_table_lookup(w->creds, j->user) : NULL;
        if (c) {
            g_free(c->hash);
            c->hash = g_strdup(j->hash);
        }
    }
}

static void login_complete(struct web_job *j)
{
    struct web *w = j->w;
    if (!j->verified) {
        ipguard_auth_failed(w->login_guard, j->peer);
        char *name = g_strescape(j->user ? j->user : "", NULL); /* no forged log lines */
        log_notice("web: failed login for '%s' from %s", name, j->peer);
        g_free(name);
        web_job_error(j, 401, "wrong user name or password");
        return;
    }
    struct web_session *oldest = NULL;
    guint mine = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, w->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct web_session *o = v;
        if (strcmp(o->user, j->user))
            continue;
        mine++;
        if (!oldest || o->created_us < oldest->created_us)
            oldest = o;
    }
    if (mine >= MAX_USER_SESSIONS)
        g_hash_table_remove(w->sessions, oldest->id);
    if (g_hash_table_size(w->sessions) >= MAX_SESSIONS) {
        web_job_error(j, 503, "too many sessions; try again later");
        return;
    }
    struct web_session *s = g_new0(struct web_session, 1);
    s->id = random_hex(32);
    s->csrf = random_hex(32);
    if (!s->id || !s->csrf) {
        g_free(s->id);
        g_free(s->csrf);
        g_free(s);
        web_job_error(j, 500, "cannot make a session id: RAND_bytes failed");
        return;
    }
    s->user = g_strdup(j->user);
    s->epoch = g_strdup(j->hash);
    s->last_used_us = s->created_us = g_get_monotonic_time();
    g_hash_table_insert(w->sessions, s->id, s);
    set_cookie(w, j->req, s->id, FALSE);
    log_notice("web: '%s' logged in from %s", j->user, j->peer);
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "user");
    json_builder_add_string_value(b, j->user);
    json_builder_set_member_name(b, "admin");
    json_builder_add_boolean_value(b, j->is_admin);
    json_builder_set_member_name(b, "csrf");
    json_builder_add_string_value(b, s->csrf);
    json_builder_end_object(b);
    web_job_ok(j, b);
}

/* Second stage of /api/login and /api/password. */
static void crypto_done(void *arg)
{
    struct web_job *j = arg;
    struct web *w = j->w;
    w->crypto_busy--;
    if (j->req && !strcmp(j->route->path, "/api/login")) {
        login_complete(j);
    } else if (j->req && !w->stopped) {
        if (!j->verified) {
            web_job_error(j, 403, "the current password is wrong");
        } else if (!j->hash) {
            web_job_error(j, 500, "cannot hash the password: OpenSSL failed");
        } else {
            /* Third stage: store it. */
            j->status = 0;
            j->resubmitted = TRUE;
            storage_submit(w, j);
            return;
        }
    }
    job_reply(j);
    g_hash_table_remove(w->jobs, j);
    job_free(j);
}

void web_logout(struct web_job *j)
{
    if (j->session_id)
        g_hash_table_remove(j->w->sessions, j->session_id);
    set_cookie(j->w, j->req, "", TRUE);
}

/* ---- requests ---- */

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    default: return "?";
    }
}

/*
 * A state-changing request must come from our own pages: when the browser
 * says where it comes from (Origin, Sec-Fetch-Site), that must be us.
 * Clients that send neither (curl, scripts) still need the CSRF token.
 */
static const char *cross_origin(struct web *w, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *origin = evhttp_find_header(in, "Origin");
    const char *host = evhttp_find_header(in, "Host");
    const char *site = evhttp_find_header(in, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") && strcmp(site, "none"))
        return "cross-site request refused";
    if (origin) {
        char *want = g_strdup_printf("%s://%s", is_secure(w) ? "https" : "http", host ? host : "");
        gboolean ok = host && !strcmp(origin, want);
        g_free(want);
        if (!ok)
            return "cross-origin request refused (Origin does not match Host)";
    }
    return NULL;
}

static GHashTable *parse_query(const char *q)
{
    if (!q || !*q)
        return NULL;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(q, &kv) != 0)
        return NULL;
    GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (struct evkeyval *e = kv.tqh_first; e; e = e->next.tqe_next)
        g_hash_table_replace(t, g_strdup(e->key), g_strdup(e->value));
    evhttp_clear_headers(&kv);
    return t;
}

/*
 * json-glib parses recursively, without a depth limit: refuse deep nesting
 * before it sees the text, so no request can run the loop's stack out.
 */
static gboolean json_too_deep(const char *text, size_t len, guint max)
{
    guint depth = 0;
    gboolean in_string = FALSE;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = FALSE;
        } else if (c == '"') {
            in_string = TRUE;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return TRUE;
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return FALSE;
}

/* The first stage of a login, on the loop: the hash comes from the last snapshot. */
static void login_lookup(struct web *w, struct web_job *j)
{
    const char *user = web_body_str(j, "user", TRUE);
    const char *pw = user ? web_body_str(j, "password", TRUE) : NULL;
    if (!user || !pw)
        return;
    const struct web_cred *c = g_hash_table_lookup(w->creds, user);
    g_free(j->user);
    j->user = g_strdup(user);
    j->password = g_strdup(pw);
    j->hash = c ? g_strdup(c->hash) : NULL;
    j->is_admin = c && c->admin;
    j->status = 200;
}

static void serve_file(struct web *w, struct evhttp_request *req, const char *path)
{
    const char *name = !strcmp(path, "/") ? "index.html" : path + 1;
    GBytes *data = strchr(name, '/') ? NULL : g_hash_table_lookup(w->files, name);
    if (!data) {
        reply_error(req, 404, "not found");
        return;
    }
    const char *ctype = "application/octet-stream";
    if (g_str_has_suffix(name, ".html"))
        ctype = "text/html; charset=utf-8";
    else if (g_str_has_suffix(name, ".js"))
        ctype = "text/javascript; charset=utf-8";
    else if (g_str_has_suffix(name, ".css"))
        ctype = "text/css; charset=utf-8";
    else if (g_str_has_suffix(name, ".svg"))
        ctype = "image/svg+xml";
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
                      "default-src 'none'; script-src 'self'; style-src 'self'; "
                      "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                      "form-action 'self'; frame-ancestors 'none'");
    gsize len;
    const char *bytes = g_bytes_get_data(data, &len);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
        len = 0;
    reply_text(req, 200, ctype, bytes, len);
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

static void on_request(struct evhttp_request *req, void *arg)
{
    struct web *w = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (w->stopped) {
        reply_error(req, 503, "shutting down");
        return;
    }
    http_gate_request(w->gate, req);
    if (!path || path[0] != '/') {
        reply_error(req, 400, "bad request path");
        return;
    }
    if (!g_str_has_prefix(path, "/api/")) {
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
            reply_error(req, 405, "method not allowed");
        } else {
            serve_file(w, req, path);
        }
        return;
    }

    const char *method = method_name(cmd);
    const struct web_route *route = NULL;
    gboolean path_known = FALSE;
    for (gsize i = 0; i < web_n_routes; i++) {
        if (strcmp(web_routes[i].path, path))
            continue;
        path_known = TRUE;
        if (!strcmp(web_routes[i].method, method))
            route = &web_routes[i];
    }
    if (!route) {
        reply_error(req, path_known ? 405 : 404,
                    path_known ? "method not allowed here" : "no such API endpoint");
        return;
    }

    gboolean changes = cmd != EVHTTP_REQ_GET;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *why;
    if (changes && (why = cross_origin(w, req))) {
        reply_error(req, 403, why);
        return;
    }
    if (g_hash_table_size(w->jobs) >= MAX_JOBS) {
        reply_error(req, 503, "busy: too many requests in progress; try again");
        return;
    }
    struct web_session *s = session_of(w, req);
    if (route->session && !s) {
        reply_error(req, 401, "not logged in");
        return;
    }
    if (changes && route->session) {
        const char *token = evhttp_find_header(in, "X-CSRF-Token");
        if (!token || !same_secret(token, s->csrf)) {
            reply_error(req, 403, "missing or wrong X-CSRF-Token header");
            return;
        }
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
    j->require_accept = w->b->cfg->require_accept;
    j->peer = g_strdup(peer);
    j->query = parse_query(evhttp_uri_get_query(uri));
    if (s) {
        j->user = g_strdup(s->user);
        j->session_id = g_strdup(s->id);
    }

    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    gboolean login = !strcmp(route->path, "/api/login");
    if (login) {
        /* Before the body is even parsed. */
        if (len > MAX_LOGIN_BODY) {
            reply_error(req, 413, "login request too large");
            job_free(j);
            return;
        }
        if (ipguard_login_begin(w->login_guard, j->peer)) {
            reply_error(req, 429, "too many failed logins from your address; try again later");
            job_free(j);
            return;
        }
        j->guarded = TRUE;
        if (w->crypto_busy >= MAX_CRYPTO_JOBS ||
            (!w->creds && w->storage_wait.length >= MAX_LOGIN_WAIT)) {
            reply_error(req, 503, "busy: too many logins in progress; try again");
            job_free(j);
            return;
        }
    }
    if (changes && len > 0) {
        const char *ctype = evhttp_find_header(in, "Content-Type");
        if (!ctype || g_ascii_strncasecmp(ctype, "application/json", 16)) {
            reply_error(req, 415, "send the body as Content-Type: application/json");
            job_free(j);
            return;
        }
        JsonParser *p = json_parser_new();
        GError *e = NULL;
        const char *text = (const char *)evbuffer_pullup(body, (ev_ssize_t)len);
        if (json_too_deep(text, len, MAX_JSON_DEPTH)) {
            reply_error(req, 400, "bad JSON: nested too deeply");
            g_object_unref(p);
            job_free(j);
            return;
        }
        if (!json_parser_load_from_data(p, text, (gssize)len, &e)) {
            char *msg = g_strdup_printf("bad JSON: %s", e->message);
            reply_error(req, 400, msg);
            g_free(msg);
            g_error_free(e);
            g_object_unref(p);
            job_free(j);
            return;
        }
        JsonNode *root = json_parser_get_root(p);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
            reply_error(req, 400, "bad JSON: the body must be an object");
            g_object_unref(p);
            job_free(j);
            return;
        }
        j->body = json_node_copy(root);
        g_object_unref(p);
    } else if (changes && route->session && strcmp(route->path, "/api/logout")) {
        reply_error(req, 400, "bad JSON: empty body, expected an object");
        job_free(j);
        return;
    }

    if (login && w->creds) {
        /* No storage: the hash is known; only the derivation runs, on its worker. */
        login_lookup(w, j);
        if (j->status != 200) {
            job_reply(j);
            job_free(j);
            return;
        }
        g_hash_table_add(w->jobs, j);
        web_crypto_finish(j);
        return;
    }
    if (w->storage_busy >= MAX_STORAGE_JOBS && w->storage_wait.length >= MAX_STORAGE_WAIT) {
        reply_error(req, 503, "busy: too many requests in progress; try again");
        job_free(j);
        return;
    }
    g_hash_table_add(w->jobs, j);
    storage_submit(w, j);
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
        if (g_file_test(path, G_FILE_TEST_IS_REGULAR) && g_file_get_contents(path, &data, &len, NULL)) {
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

static gboolean expire_session(gpointer k, gpointer v, gpointer ud)
{
    struct web *w = ud;
    return session_over(w, v, g_get_monotonic_time());
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct web *w = arg;
    g_hash_table_foreach_remove(w->sessions, expire_session, w);
    ipguard_expire(w->login_guard);
    ipguard_expire(w->conn_guard);
}

gboolean web_start(struct broker *b, FILE *ready, GError **error)
{
    const struct web_conf *wc = b->cfg->web;
    if (!wc)
        return TRUE;
    struct web *w = g_new0(struct web, 1);
    b->web = w;
    w->b = b;
    w->files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
    w->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, session_free);
    w->jobs = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_queue_init(&w->events);
    g_queue_init(&w->storage_wait);
    w->login_guard = ipguard_new(0, wc->login_failures, 30);
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
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_body_size(w->http, MAX_BODY);
    evhttp_set_max_headers_size(w->http, 16384);
    evhttp_set_timeout(w->http, 30);
    evhttp_set_gencb(w->http, on_request, w);
    const char *host = *wc->listen->host && strcmp(wc->listen->host, "*") ? wc->listen->host
                       : strchr(wc->listen->host, ':') ? "::"
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
    sinks_set_tap(b->sinks, on_event, w);
    reload_request(b); /* a snapshot for the login table */
    w->tick = event_new(b->base, -1, EV_PERSIST, on_tick, w);
    struct timeval minute = {60, 0};
    evtimer_add(w->tick, &minute);
    return TRUE;
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
        job_free(q);
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
    g_queue_clear_full(&w->events, web_event_free);
    ipguard_free(w->login_guard);
    g_hash_table_unref(w->conns);
    ipguard_free(w->conn_guard);
    if (w->creds)
        g_hash_table_unref(w->creds);
    if (w->tls)
        SSL_CTX_free(w->tls);
    g_free(w->root);
    g_free(w);
}

const char *web_session_csrf(struct web_job *j)
{
    const struct web_session *s =
        j->session_id ? g_hash_table_lookup(j->w->sessions, j->session_id) : NULL;
    return s ? s->csrf : NULL;
}
