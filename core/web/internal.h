/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the console's files: server.c (HTTP, static files), session.c
 * (sessions, CSRF, login) and api.c (the API). */
#ifndef HPF_WEB_INTERNAL_H
#define HPF_WEB_INTERNAL_H

#include <event2/http.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "admin.h"
#include "broker.h"
#include "web.h"

#define WEB_MAX_EVENTS 2000

struct web_event {
    guint64 id; /* 1, 2, ... in the order pushed: the log's paging cursor */
    gint64 time_us;
    int type; /* enum hpf_event_type */
    char *ident, *owner, *peer, *channel, *reason;
    guint64 count;
};

struct web_session {
    char *id;
    char *csrf;
    char *user;
    char *epoch; /* the user's password hash at login: a change ends the session */
    gint64 last_used_us;
    gint64 created_us; /* sessions end a day after login, used or not */
};

/* What a login needs, kept from the broker's last snapshot. */
struct web_cred {
    char *hash;
    gboolean admin;
};

/*
 * Password checks (logins, password changes) running at once: per address
 * (logins; users behind one NAT share it) and per account.  Generous: only
 * wrong passwords count towards the back-off ([web] login_failures).
 */
#define WEB_CHECKS_PER_ADDR 16
#define WEB_CHECKS_PER_USER 8

struct web {
    struct broker *b;
    struct evhttp *http;
    SSL_CTX *tls;
    int port;
    char *root;
    GHashTable *files;           /* name -> GBytes */
    GHashTable *sessions;        /* id -> struct web_session * */
    GHashTable *jobs;            /* struct web_job * in flight */
    GQueue events;               /* struct web_event *, oldest first */
    guint64 events_seq;          /* id of the newest event */
    struct ipguard *login_guard; /* password checks per address */
    struct ipguard *user_guard;  /* password checks per account (user name) */
    struct ipguard *name_guard;  /* "already exists" answers per account (name probing) */
    struct worker *crypto;       /* password hashing, so it never delays storage */
    GHashTable *creds;           /* user -> struct web_cred *, NULL before the first snapshot */
    guint storage_busy;          /* console jobs on the storage worker */
    GQueue storage_wait;         /* struct web_job * waiting for a place there */
    guint crypto_busy;           /* jobs on the password worker */
    guint crypto_change_busy;    /* of which /api/password */
    struct http_gate *gate;      /* counts connections from accept on */
    GHashTable *conns;           /* struct evhttp_connection * -> peer address */
    struct ipguard *conn_guard;  /* connections per address */
    struct event *tick;
    gboolean stopped;
};

struct web_job;
typedef void (*web_run_fn)(struct web_job *j);

struct web_route {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    const char *path;
    gboolean session;  /* needs a logged-in user */
    web_run_fn run;    /* worker thread: storage work */
    web_run_fn finish; /* loop thread, optional: what only the loop may read */
    /* The body members the route reads, separated by spaces ("user", for an
       administrator acting for someone, is taken by every session route);
       any other member is refused before the route runs, so a misspelt or
       foreign field never passes silently. */
    const char *body_keys;
};

struct web_job {
    struct web *w;
    struct evhttp_request *req; /* NULL once the console stopped */
    const struct web_route *route;
    struct admin admin;
    gboolean require_accept;
    gboolean channels_mode; /* access = channels: the lists are the only access control */
    char *user;             /* session's user */
    char *acting;           /* whose objects (user, or another for an admin) */
    char *actor;            /* who, for the audit trail (admin.actor points here) */
    gboolean is_admin;
    char *session_id;
    char *peer;
    JsonNode *body; /* parsed request body (an object) or NULL */
    GHashTable *query;
    /* results */
    int status;
    JsonNode *result; /* object; NULL on error */
    char *error;
    gboolean changed; /* storage changed: reload the broker now */
    gboolean resubmitted;
    /* per route */
    GHashTable *idents; /* logs, shares: ident -> owner of every authkey */
    char *hash;         /* login: stored hash; passwd: the new one */
    char *password;     /* login, passwd: plain text, wiped when freed */
    char *password2;
    gboolean verified;
    gboolean guarded;      /* a login, counted by the login guard (address) until freed */
    gboolean user_guarded; /* counted by the user guard (account) until freed */
};

extern const struct web_route web_routes[];
extern const gsize web_n_routes;

/* Results, from either thread. */
void web_job_error(struct web_job *j, int status, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/** The error of an admin_* call, mapped to an HTTP status. */
void web_job_gerror(struct web_job *j, GError *e);
void web_job_ok(struct web_job *j, JsonBuilder *b);
/** A member of the body: string, or NULL (and a 400 set when required). */
const char *web_body_str(struct web_job *j, const char *key, gboolean required);
/** A string-array member of the body as a NULL-terminated vector, or NULL. */
char **web_body_strv(struct web_job *j, const char *key, gboolean *present);
const char *web_query(struct web_job *j, const char *key);

/* Why a request is refused before it becomes a job (loop thread). */
struct web_refusal {
    int status; /* 0: not refused */
    char *msg;
    const char *allow; /* an Allow header for a 405 */
};
/** Set the refusal (the first one wins); returns FALSE, for guards to return it. */
gboolean web_refuse(struct web_refusal *no, int status, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Loop thread: jobs (server.c). */
void web_job_free(struct web_job *j);
/** Reply (when the request is still there), forget and free the job. */
void web_job_end(struct web_job *j);
/** Run the job's route on the storage worker, or queue it for a place there. */
void web_storage_submit(struct web *w, struct web_job *j);
/** Free the per-thread state a worker job leaves in OpenSSL. */
void web_release_thread_state(void);

/* Loop thread: sessions, CSRF, login (session.c). */
void web_session_free(gpointer p);
/** End sessions past their time; let the login throttle forget old failures. */
void web_sessions_expire(struct web *w);
/**
 * Origin and Sec-Fetch-Site for a change, then the session (*s, or NULL) a
 * route needs and its CSRF token: FALSE with the refusal set when one fails.
 */
gboolean web_session_guard(struct web *w, struct evhttp_request *req, const struct web_route *route,
                           struct web_session **s, struct web_refusal *no);
/** A login may go on (size, throttle, password worker capacity); before its body is parsed. */
gboolean web_login_admit(struct web *w, struct web_job *j, size_t body_len, struct web_refusal *no);
/** Run a login without storage when its credentials are at hand (takes j); FALSE: not yet. */
gboolean web_login_start(struct web_job *j);
/** After a first storage pass: run the password work on the password worker. */
void web_crypto_finish(struct web_job *j);
/** The session's CSRF token (loop thread), or NULL. */
const char *web_session_csrf(struct web_job *j);
void web_logout(struct web_job *j);

/* The event ring and /api/logs (api_logs.c; loop thread but for the check). */
void web_events_push(struct web *w, int type, const char *ident, const char *owner,
                     const char *peer, const char *channel, const char *reason, guint64 count);
void web_events_clear(struct web *w);
/** The query of GET /api/logs is one the log can answer (else a 400 is set); any thread. */
gboolean web_logs_check_query(struct web_job *j);
/** The page of events the query asks for, as this user may see them. */
void web_logs_finish(struct web_job *j);

/* The API's common steps, for route files beside api.c. */
/** Snapshot, the session's user still there, whose objects (acting); NULL with an error set. */
struct snapshot *web_api_begin(struct web_job *j);
/** One user of web_api_users(); explicit_row: a user row, not only an authkey owner. */
typedef void (*web_user_row)(JsonBuilder *b, const struct web_job *j, const struct snapshot *s,
                             const char *name, gboolean explicit_row);
/** The {"users": [...]} answer over every user of s, sorted; s stays the caller's. */
void web_api_users(struct web_job *j, const struct snapshot *s, web_user_row row);

/* Administration and audit routes (api_admin.c); web_routes[] lists them. */
void web_run_admin_users(struct web_job *j);
void web_run_admin_user_add(struct web_job *j);
void web_run_admin_user_del(struct web_job *j);
void web_run_admin_user_admin(struct web_job *j);
void web_run_admin_user_password(struct web_job *j);
void web_run_audit(struct web_job *j);

/* Request parsing, shared with the console's fuzz target. */
/** A query string into key -> value (NULL when empty); FALSE when refused:
 * a key without '=', a key twice, %00, text that is not UTF-8. */
gboolean web_parse_query(const char *q, GHashTable **out);
/** A request body of len bytes: strict JSON, at most 32 deep, an
 * object; NULL with *why set (caller frees) otherwise. */
JsonNode *web_parse_body(const char *text, size_t len, char **why);

#endif
