/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The console's sessions, CSRF and login: session cookies and their
 * lifetime, the Origin and CSRF-token checks on state-changing requests,
 * the login throttle, and the password stages of /api/login and
 * /api/password (derivations run on the password worker, never the loop).
 */
#include <string.h>

#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "internal.h"
#include "ipguard.h"
#include "log.h"
#include "password.h"
#include "worker.h"

/*
 * Over TLS the cookie carries the __Host- prefix: browsers then take it
 * only with Secure, Path=/ and no Domain, so no sibling host or plain-HTTP
 * page can plant or shadow it.
 */
#define COOKIE_NAME        "hpf_session"
#define COOKIE_NAME_TLS    "__Host-hpf_session"
#define MAX_SESSIONS       10000
/* Sessions of one user; a new login ends the oldest past it. */
#define MAX_USER_SESSIONS  20
/* Logins waiting for storage (only before the first snapshot is in). */
#define MAX_LOGIN_WAIT     8
/* Password derivations queued or running; more get a 503. */
#define MAX_CRYPTO_JOBS    32
/* Of those, password changes (the rest stay free for logins). */
#define MAX_CRYPTO_CHANGES 8
/* Login bodies are small: a larger one is refused before it is parsed. */
#define MAX_LOGIN_BODY     4096
#define SESSION_MAX_US     ((gint64)24 * 3600 * G_USEC_PER_SEC)

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

/* ---- sessions ---- */

void web_session_free(gpointer p)
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

/*
 * The session named by the request's cookie, if it is current.  *twice
 * when the cookie comes more than once: another page on a sibling host (or
 * over plain HTTP) can plant a second one, with a longer path so that it
 * comes first, and whichever we took, the user might act in a session not
 * theirs.  Then there is no session.
 */
static struct web_session *session_of(struct web *w, struct evhttp_request *req, gboolean *twice)
{
    *twice = FALSE;
    const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    if (!cookie)
        return NULL;
    const char *name = is_secure(w) ? COOKIE_NAME_TLS : COOKIE_NAME;
    struct web_session *found = NULL;
    guint seen = 0;
    /* No bound on the parts: a cookie past the 32nd must count as well. */
    char **parts = g_strsplit(cookie, ";", -1);
    for (char **p = parts; *p; p++) {
        char *kv = g_strstrip(*p);
        const char *eq = strchr(kv, '=');
        if (!eq || (size_t)(eq - kv) != strlen(name) || strncmp(kv, name, strlen(name)))
            continue;
        if (++seen == 1)
            found = g_hash_table_lookup(w->sessions, eq + 1);
    }
    g_strfreev(parts);
    if (seen > 1) {
        *twice = TRUE;
        return NULL;
    }
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
    char *c = g_strdup_printf("%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s",
                              is_secure(w) ? COOKIE_NAME_TLS : COOKIE_NAME, value,
                              is_secure(w) ? "; Secure" : "", clear ? "; Max-Age=0" : "");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", c);
    g_free(c);
}

/* ---- password stages ---- */

/* The derivation of a login or a password change, on the password worker. */
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
    web_release_thread_state();
}

static void crypto_done(void *arg);

/*
 * When a refused login may try again.  A back-off doubles while wrong
 * passwords go on, so "later" would leave people guessing and retrying
 * early, which only makes the next wait longer; checks refused for being
 * too many at once have no wait to name.
 */
static void retry_when(struct ipguard *g, const char *key, char *out, gsize len)
{
    guint secs = ipguard_blocked_seconds(g, key);
    if (!secs)
        g_strlcpy(out, "try again later", len);
    else if (secs < 120)
        g_snprintf(out, len, "try again in %u second%s", secs, secs == 1 ? "" : "s");
    else
        g_snprintf(out, len, "try again in %u minutes", (secs + 59) / 60);
}

static gboolean is_login(const struct web_job *j) { return !strcmp(j->route->path, "/api/login"); }

/*
 * Wrong passwords are what count, per account (many addresses guessing one
 * account, or a stolen session guessing its own password) and, for logins,
 * per address.  How many checks run at once is bounded apart from that
 * (per address at admission, per account here, and globally by the
 * password worker's capacity, of which password changes get only part, so
 * they never keep logins out).  A password change is not counted against
 * its address at all: one account's flood must not lock out the other
 * users behind the same address.  FALSE with the error set.
 */
static gboolean crypto_admit(struct web_job *j)
{
    struct web *w = j->w;
    gboolean login = is_login(j);
    if (!j->user_guarded) {
        const char *key = j->user ? j->user : "";
        const char *why = ipguard_login_begin(w->user_guard, key);
        if (why) {
            char when[64];
            retry_when(w->user_guard, key, when, sizeof when);
            web_job_error(j, 429, "%s for this account; %s", why, when);
            return FALSE;
        }
        j->user_guarded = TRUE;
    }
    if (w->crypto_busy >= MAX_CRYPTO_JOBS ||
        (!login && w->crypto_change_busy >= MAX_CRYPTO_CHANGES)) {
        web_job_error(j, 503, "busy: too many password checks in progress; try again");
        return FALSE;
    }
    return TRUE;
}

/* A password check failed: it counts against the account, and a login's against its address. */
static void crypto_failed(struct web_job *j)
{
    if (is_login(j))
        ipguard_auth_failed(j->w->login_guard, j->peer);
    ipguard_auth_failed(j->w->user_guard, j->user ? j->user : "");
}

void web_crypto_finish(struct web_job *j)
{
    struct web *w = j->w;
    if (!j->verified) {
        /* First pass (storage read): verify on the password worker. */
        if (!crypto_admit(j))
            return;
        j->resubmitted = TRUE;
        j->verified = FALSE;
        w->crypto_busy++;
        if (!is_login(j))
            w->crypto_change_busy++;
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
        crypto_failed(j);
        /* The log escapes the name (no forged lines), as it does every line. */
        log_notice("web: failed login for '%s' from %s", j->user ? j->user : "", j->peer);
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
    /* The console shows channel lists read-only to users who may not set them. */
    json_builder_set_member_name(b, "lists_editable");
    json_builder_add_boolean_value(b, j->is_admin || !j->channels_mode);
    json_builder_end_object(b);
    web_job_ok(j, b);
}

/* Second stage of /api/login and /api/password. */
static void crypto_done(void *arg)
{
    struct web_job *j = arg;
    struct web *w = j->w;
    w->crypto_busy--;
    if (!is_login(j))
        w->crypto_change_busy--;
    if (j->req && is_login(j)) {
        login_complete(j);
    } else if (j->req && !w->stopped) {
        if (!j->verified) {
            crypto_failed(j);
            web_job_error(j, 403, "the current password is wrong");
        } else if (!j->hash) {
            web_job_error(j, 500, "cannot hash the password: OpenSSL failed");
        } else {
            /* Third stage: store it. */
            j->status = 0;
            j->resubmitted = TRUE;
            web_storage_submit(w, j);
            return;
        }
    }
    web_job_end(j);
}

void web_logout(struct web_job *j)
{
    if (j->session_id)
        g_hash_table_remove(j->w->sessions, j->session_id);
    set_cookie(j->w, j->req, "", TRUE);
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

static gboolean session_expired(gpointer k, gpointer v, gpointer ud)
{
    struct web *w = ud;
    return session_over(w, v, g_get_monotonic_time());
}

const char *web_session_csrf(struct web_job *j)
{
    const struct web_session *s =
        j->session_id ? g_hash_table_lookup(j->w->sessions, j->session_id) : NULL;
    return s ? s->csrf : NULL;
}

void web_sessions_expire(struct web *w)
{
    g_hash_table_foreach_remove(w->sessions, session_expired, w);
    ipguard_expire(w->login_guard);
    ipguard_expire(w->user_guard);
}

/* ---- guards of a request ---- */

gboolean web_session_guard(struct web *w, struct evhttp_request *req, const struct web_route *route,
                           struct web_session **out, struct web_refusal *no)
{
    gboolean changes = evhttp_request_get_command(req) != EVHTTP_REQ_GET;
    const char *why = changes ? cross_origin(w, req) : NULL;
    if (why)
        return web_refuse(no, 403, "%s", why);
    gboolean twice;
    struct web_session *s = session_of(w, req, &twice);
    if (twice)
        return web_refuse(no, 400,
                          "the session cookie came twice (one may be planted by another site): "
                          "clear this site's cookies and log in again");
    if (route->session && !s)
        return web_refuse(no, 401, "not logged in");
    if (changes && route->session) {
        const char *token =
            evhttp_find_header(evhttp_request_get_input_headers(req), "X-CSRF-Token");
        if (!token || !same_secret(token, s->csrf))
            return web_refuse(no, 403, "missing or wrong X-CSRF-Token header");
    }
    *out = s;
    return TRUE;
}

gboolean web_login_admit(struct web *w, struct web_job *j, size_t body_len, struct web_refusal *no)
{
    if (body_len > MAX_LOGIN_BODY)
        return web_refuse(no, 413, "login request too large");
    /* Recent wrong passwords from this address, or too many of its logins at once. */
    const char *why = ipguard_login_begin(w->login_guard, j->peer);
    if (why) {
        char when[64];
        retry_when(w->login_guard, j->peer, when, sizeof when);
        return web_refuse(no, 429, "%s from your address; %s", why, when);
    }
    j->guarded = TRUE;
    if (w->crypto_busy >= MAX_CRYPTO_JOBS ||
        (!w->creds && w->storage_wait.length >= MAX_LOGIN_WAIT))
        return web_refuse(no, 503, "busy: too many logins in progress; try again");
    return TRUE;
}

gboolean web_login_start(struct web_job *j)
{
    struct web *w = j->w;
    if (!w->creds)
        return FALSE; /* before the first snapshot: the storage worker looks the hash up */
    /* No storage: the hash is known; only the derivation runs, on its worker. */
    g_hash_table_add(w->jobs, j);
    login_lookup(w, j);
    if (j->status == 200)
        web_crypto_finish(j);
    if (!j->resubmitted)
        web_job_end(j);
    return TRUE;
}
