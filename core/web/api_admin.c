/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The console's administration and audit routes.  The routes under
 * /api/admin/ are for administrators only (anyone else gets 403, whatever
 * they ask): the user list with create, delete, the admin flag and
 * password resets.  Acting as
 * another user needs no route of its own: an administrator adds ?user=NAME
 * to the other routes (api.c's begin()), and the audit trail records such
 * changes as "admin A acting as U".  /api/audit lists the trail: a user
 * sees the records about their own objects, an administrator everything
 * (filtered by actor or by whose object) or, acting as a user, what that
 * user sees.
 */
#include <hpfriends/names.h>
#include <openssl/rand.h>
#include <string.h>

#include "jsonutil.h"
#include "password.h"
#include "snapshot.h"
#include "internal.h"

/* Longest console password an administrator may set, in bytes. */
#define ADMIN_PASSWORD_MAX 1024
/* Records a page of /api/audit shows unless ?limit says otherwise. */
#define AUDIT_PAGE         100

/* The snapshot for an administrator's route; NULL (403 or another error set) otherwise. */
static struct snapshot *begin_admin(struct web_job *j)
{
    struct snapshot *s = web_api_begin(j);
    if (s && !j->is_admin) {
        web_job_error(j, 403, "administrators only");
        snapshot_free(s);
        return NULL;
    }
    return s;
}

static void ok_with(struct web_job *j, const char *key, const char *value)
{
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    jsonutil_add_bool(b, "ok", TRUE);
    if (key)
        jsonutil_add_str(b, key, value);
    json_builder_end_object(b);
    j->changed = TRUE;
    web_job_ok(j, b);
}

static guint count_keys(const struct snapshot *s, const char *user)
{
    guint n = 0;
    for (guint i = 0; i < s->authkeys->len; i++)
        n += !strcmp(((struct snap_authkey *)s->authkeys->pdata[i])->owner, user);
    return n;
}

static guint count_shares(const struct snapshot *s, const char *user)
{
    guint n = 0;
    for (guint i = 0; i < s->shares->len; i++)
        n += !strcmp(((struct snap_share *)s->shares->pdata[i])->from, user);
    return n;
}

static void user_obj(JsonBuilder *b, const struct web_job *j, const struct snapshot *s,
                     const char *name, gboolean row)
{
    json_builder_begin_object(b);
    jsonutil_add_str(b, "name", name);
    jsonutil_add_bool(b, "admin", g_hash_table_contains(s->admins, name));
    jsonutil_add_bool(b, "password", g_hash_table_contains(s->passwords, name));
    /* An authkey owner without a user row counts as a user; it cannot log in. */
    jsonutil_add_bool(b, "explicit", row);
    json_builder_set_member_name(b, "authkeys");
    json_builder_add_int_value(b, count_keys(s, name));
    json_builder_set_member_name(b, "shares");
    json_builder_add_int_value(b, count_shares(s, name));
    json_builder_end_object(b);
}

void web_run_admin_users(struct web_job *j)
{
    struct snapshot *s = begin_admin(j);
    if (!s)
        return;
    web_api_users(j, s, user_obj);
    snapshot_free(s);
}

/* A password to give out once: 18 random bytes as 24 URL-safe characters. */
static char *new_password(void)
{
    guint8 raw[18];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return NULL;
    char *text = g_base64_encode(raw, sizeof raw);
    for (char *p = text; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    OPENSSL_cleanse(raw, sizeof raw);
    return text;
}

/*
 * Set name's console password to pw (NULL: a new one, returned in
 * *made).  Hashed here, on the storage worker: an administrator's reset is
 * rare, and the password worker is the login path's.
 */
static gboolean set_password(struct web_job *j, const char *name, const char *pw, char **made,
                             GError **e)
{
    char *fresh = pw ? NULL : new_password();
    if (!pw && !fresh) {
        g_set_error(e, ADMIN_ERROR, HPF_ERR_IO, "cannot make a password: RAND_bytes failed");
        return FALSE;
    }
    char *hash = password_hash(pw ? pw : fresh, password_iterations());
    gboolean ok = hash && admin_user_set_password(&j->admin, name, hash, e);
    if (!hash)
        g_set_error(e, ADMIN_ERROR, HPF_ERR_IO, "cannot hash the password: OpenSSL failed");
    g_free(hash);
    if (ok && made)
        *made = g_strdup(fresh);
    if (fresh)
        OPENSSL_cleanse(fresh, strlen(fresh));
    g_free(fresh);
    return ok;
}

/* NULL when pw (may be NULL: none given) is one an administrator may set; else why not. */
static const char *password_problem(const char *pw)
{
    if (!pw)
        return NULL;
    if (strlen(pw) < PASSWORD_MIN_LEN)
        return "the password is too short: at least " G_STRINGIFY(PASSWORD_MIN_LEN) " characters";
    if (strlen(pw) > ADMIN_PASSWORD_MAX || hpf_name_check(pw, ADMIN_PASSWORD_MAX))
        return "the password must be at most " G_STRINGIFY(
            ADMIN_PASSWORD_MAX) " bytes of UTF-8 text without control characters";
    return NULL;
}

/* The body's "password": absent (NULL), or a string; FALSE (400 set) when it is neither. */
static gboolean body_password(struct web_job *j, const char **pw)
{
    JsonObject *o = j->body ? json_node_get_object(j->body) : NULL;
    *pw = NULL;
    if (!o || !json_object_has_member(o, "password") ||
        json_node_is_null(json_object_get_member(o, "password")))
        return TRUE;
    *pw = jsonutil_get_str(o, "password");
    const char *why = *pw ? password_problem(*pw) : "\"password\" must be a string";
    if (why)
        web_job_error(j, 400, "%s", why);
    return why == NULL;
}

/* The body's boolean key (absent: FALSE); -1 (400 set) when it is not a boolean. */
static int body_bool(struct web_job *j, const char *key)
{
    int v = j->body ? jsonutil_get_bool(json_node_get_object(j->body), key) : FALSE;
    if (v < 0)
        web_job_error(j, 400, "\"%s\" must be true or false", key);
    return v;
}

/* POST {name, admin?, password?}: a new user; with a password, it may log in. */
void web_run_admin_user_add(struct web_job *j)
{
    struct snapshot *s = begin_admin(j);
    if (!s)
        return;
    snapshot_free(s);
    const char *name = web_body_str(j, "name", TRUE);
    const char *pw;
    int admin = name ? body_bool(j, "admin") : -1;
    if (!name || admin < 0 || !body_password(j, &pw))
        return;
    GError *e = NULL;
    gboolean ok = admin_user_add(&j->admin, name, admin, &e);
    if (ok && pw)
        ok = set_password(j, name, pw, NULL, &e);
    if (!ok) {
        web_job_gerror(j, e);
        g_error_free(e);
        return;
    }
    ok_with(j, NULL, NULL);
}

/* The user named in the body, other than the administrator: NULL (error set) otherwise. */
static const char *other_user(struct web_job *j, const char *verb)
{
    const char *name = web_body_str(j, "name", TRUE);
    if (name && !strcmp(name, j->user)) {
        web_job_error(j, 400, "you cannot %s yourself here: ask another administrator", verb);
        return NULL;
    }
    return name;
}

/* DELETE {name}: the user and everything it owns (the console asks first). */
void web_run_admin_user_del(struct web_job *j)
{
    struct snapshot *s = begin_admin(j);
    if (!s)
        return;
    snapshot_free(s);
    const char *name = other_user(j, "delete");
    if (!name)
        return;
    GError *e = NULL;
    if (!admin_user_del(&j->admin, name, &e)) {
        web_job_gerror(j, e);
        g_error_free(e);
        return;
    }
    ok_with(j, NULL, NULL);
}

/* POST {name, admin}: set or clear the admin flag (never one's own). */
void web_run_admin_user_admin(struct web_job *j)
{
    struct snapshot *s = begin_admin(j);
    if (!s)
        return;
    snapshot_free(s);
    const char *name = other_user(j, "change the admin flag of");
    int admin = name ? body_bool(j, "admin") : -1;
    if (!name || admin < 0)
        return;
    GError *e = NULL;
    if (!admin_user_set_admin(&j->admin, name, admin, &e)) {
        web_job_gerror(j, e);
        g_error_free(e);
        return;
    }
    ok_with(j, NULL, NULL);
}

/*
 * POST {name, password?}: reset a console password.  Without one, a new
 * password is made and returned this once ("password"); it is stored only
 * as a hash.  The user's sessions end at the next reload (their epoch was
 * the old hash).
 */
void web_run_admin_user_password(struct web_job *j)
{
    struct snapshot *s = begin_admin(j);
    if (!s)
        return;
    const char *name = web_body_str(j, "name", TRUE);
    const char *pw;
    if (!name || !body_password(j, &pw)) {
        snapshot_free(s);
        return;
    }
    gboolean known = snapshot_has_user(s, name);
    snapshot_free(s);
    if (!known) {
        web_job_error(j, 404, "user not found");
        return;
    }
    char *made = NULL;
    GError *e = NULL;
    if (!set_password(j, name, pw, &made, &e)) {
        web_job_gerror(j, e);
        g_error_free(e);
        return;
    }
    ok_with(j, made ? "password" : NULL, made);
    if (made)
        OPENSSL_cleanse(made, strlen(made));
    g_free(made);
}

/* ---- /api/audit ---- */

static void record_obj(JsonBuilder *b, const struct admin_audit_entry *r)
{
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_int_value(b, r->id);
    json_builder_set_member_name(b, "time");
    json_builder_add_int_value(b, r->time);
    jsonutil_add_str(b, "actor", r->actor);
    jsonutil_add_str(b, "user", r->user);
    jsonutil_add_str(b, "action", r->action);
    jsonutil_add_str(b, "object", r->object);
    jsonutil_add_str(b, "detail", r->detail);
    json_builder_end_object(b);
}

/* ?limit and ?before as numbers in their range; FALSE (400 set) otherwise. */
static gboolean page_of(struct web_job *j, struct hpf_audit_query *q)
{
    const char *limit = web_query(j, "limit"), *before = web_query(j, "before");
    guint64 v = AUDIT_PAGE;
    if (limit && (!g_ascii_string_to_unsigned(limit, 10, 1, HPF_AUDIT_LIST_MAX, &v, NULL))) {
        web_job_error(j, 400, "limit: a number of records, 1-%d", HPF_AUDIT_LIST_MAX);
        return FALSE;
    }
    q->limit = (uint32_t)v;
    v = 0;
    if (before && !g_ascii_string_to_unsigned(before, 10, 1, G_MAXINT64, &v, NULL)) {
        web_job_error(j, 400, "before: a record id (a positive number)");
        return FALSE;
    }
    q->before = (int64_t)v;
    return TRUE;
}

/*
 * GET ?limit&before: records newest first.  A user (or an administrator
 * acting as one, ?user=NAME) sees those about the user's own objects; an
 * administrator acting as nobody sees all, filtered by ?actor and ?about.
 */
void web_run_audit(struct web_job *j)
{
    struct snapshot *s = web_api_begin(j);
    if (!s)
        return;
    snapshot_free(s);
    struct hpf_audit_query q = {0};
    if (!page_of(j, &q))
        return;
    gboolean everyone = j->is_admin && !strcmp(j->acting, j->user);
    q.user = everyone ? web_query(j, "about") : j->acting;
    q.actor = everyone ? web_query(j, "actor") : NULL;
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    jsonutil_add_bool(b, "all", everyone);
    GError *e = NULL;
    GPtrArray *list = admin_audit_supported(&j->admin) ? admin_audit_list(&j->admin, &q, &e) : NULL;
    if (!list && e) {
        g_object_unref(b);
        web_job_gerror(j, e);
        g_error_free(e);
        return;
    }
    jsonutil_add_bool(b, "supported", list != NULL);
    if (!list)
        jsonutil_add_str(b, "message", "this storage keeps no audit trail");
    json_builder_set_member_name(b, "records");
    json_builder_begin_array(b);
    for (guint i = 0; list && i < list->len; i++)
        record_obj(b, list->pdata[i]);
    json_builder_end_array(b);
    /* A full page may have more behind it: the next one starts before its last id. */
    if (list && list->len == q.limit) {
        json_builder_set_member_name(b, "next_before");
        json_builder_add_int_value(b, ((struct admin_audit_entry *)list->pdata[list->len - 1])->id);
    }
    json_builder_end_object(b);
    if (list)
        g_ptr_array_unref(list);
    web_job_ok(j, b);
}
