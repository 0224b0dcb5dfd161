/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The console's JSON API.  Each route's run() executes on the storage
 * worker with a fresh snapshot, so authorization is always decided on
 * current data: a user acts on their own shares, authkeys and the groups
 * they own; an admin may name another user (?user=NAME, or "user" in the
 * body).  Objects of other users are reported as not found, so a user
 * cannot probe for them.  Changes go through the same admin_* operations as
 * hpfriendsctl, then the broker reloads.
 */
#include <string.h>

#include "counters.h"
#include "flow.h"
#include "jsonutil.h"
#include "log.h"
#include "password.h"
#include "snapshot.h"
#include "internal.h"

/* ---- common ---- */

#define OBJ(b)        json_builder_begin_object(b)
#define END(b)        json_builder_end_object(b)
#define STR(b, k, v)  jsonutil_add_str(b, k, v)
#define BOOL(b, k, v) jsonutil_add_bool(b, k, v)
#define INT(b, k, v)                                \
    do {                                            \
        json_builder_set_member_name(b, k);         \
        json_builder_add_int_value(b, (gint64)(v)); \
    } while (0)

static void ok_simple(struct web_job *j)
{
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    BOOL(b, "ok", TRUE);
    END(b);
    web_job_ok(j, b);
}

/* Most characters of a value echoed in an error message. */
#define ECHO_MAX 64

/*
 * A value for an error message (caller frees): cut to ECHO_MAX characters
 * with an ellipsis, so a 5,000-character name cannot fill the console's
 * status line.  The message travels as JSON and is shown as text, like
 * every other API error.
 */
static char *echo(const char *v)
{
    const char *p = v ? v : "";
    gboolean utf8 = g_utf8_validate(p, -1, NULL);
    glong n = utf8 ? g_utf8_strlen(p, -1) : (glong)strlen(p);
    if (n <= ECHO_MAX)
        return g_strdup(p);
    char *cut = utf8 ? g_utf8_substring(p, 0, ECHO_MAX) : g_strndup(p, ECHO_MAX);
    char *out = g_strconcat(cut, "\u2026", NULL);
    g_free(cut);
    return out;
}

/* Snapshot, check the session's user still exists, settle whose objects. */
static struct snapshot *begin(struct web_job *j)
{
    GError *e = NULL;
    struct snapshot *s = admin_snapshot(&j->admin, &e);
    if (!s) {
        web_job_gerror(j, e);
        g_error_free(e);
        return NULL;
    }
    if (!j->user || !snapshot_has_user(s, j->user)) {
        web_job_error(j, 401, "your user no longer exists");
        snapshot_free(s);
        return NULL;
    }
    j->is_admin = g_hash_table_contains(s->admins, j->user);
    const char *as = web_query(j, "user");
    if (!as && j->body)
        as = web_body_str(j, "user", FALSE);
    if (j->status) {
        snapshot_free(s);
        return NULL;
    }
    if (as && strcmp(as, j->user)) {
        if (!j->is_admin) {
            web_job_error(j, 403, "only an administrator may act for another user");
            snapshot_free(s);
            return NULL;
        }
        if (!snapshot_has_user(s, as)) {
            web_job_error(j, 404, "user '%s' not found", as);
            snapshot_free(s);
            return NULL;
        }
    }
    g_free(j->acting);
    j->acting = g_strdup(as ? as : j->user);
    if (strcmp(j->acting, j->user)) {
        g_free(j->actor);
        j->actor = g_strdup_printf("admin %s acting as %s", j->user, j->acting);
        j->admin.actor = j->actor;
    }
    return s;
}

struct snapshot *web_api_begin(struct web_job *j) { return begin(j); }

/* Report an admin_* result.  Takes the error by address: it is read only
 * after the call ran (argument evaluation order is unspecified). */
static void done_op(struct web_job *j, gboolean ok, GError **e)
{
    if (!ok) {
        web_job_gerror(j, *e);
        g_clear_error(e);
        return;
    }
    j->changed = TRUE;
    ok_simple(j);
}

/* ---- session ---- */

static void run_login(struct web_job *j)
{
    const char *user = web_body_str(j, "user", TRUE);
    const char *pw = user ? web_body_str(j, "password", TRUE) : NULL;
    if (!user || !pw)
        return;
    GError *e = NULL;
    struct snapshot *s = admin_snapshot(&j->admin, &e);
    if (!s) {
        web_job_gerror(j, e);
        g_error_free(e);
        return;
    }
    g_free(j->user);
    j->user = g_strdup(user);
    j->password = g_strdup(pw);
    j->hash = g_strdup(g_hash_table_lookup(s->passwords, user));
    j->is_admin = g_hash_table_contains(s->admins, user);
    snapshot_free(s);
    j->status = 200; /* on to the password worker */
}

static void run_session(struct web_job *j)
{
    struct snapshot *s = begin(j);
    if (!s)
        return;
    snapshot_free(s);
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    STR(b, "user", j->user);
    BOOL(b, "admin", j->is_admin);
    BOOL(b, "require_accept", j->require_accept);
    /* The console shows channel lists read-only to users who may not set them. */
    BOOL(b, "lists_editable", j->is_admin || !j->channels_mode);
    END(b);
    web_job_ok(j, b);
}

static void finish_session(struct web_job *j)
{
    const char *csrf = web_session_csrf(j);
    if (csrf && j->result)
        json_object_set_string_member(json_node_get_object(j->result), "csrf", csrf);
}

static void run_logout(struct web_job *j) { ok_simple(j); }

static void finish_logout(struct web_job *j) { web_logout(j); }

static void run_password(struct web_job *j)
{
    if (j->verified) {
        /* Last stage: the new hash is made, store it. */
        GError *e = NULL;
        gboolean ok = admin_user_set_password(&j->admin, j->user, j->hash, &e);
        if (!ok) {
            web_job_gerror(j, e);
            g_error_free(e);
        } else {
            ok_simple(j);
        }
        return;
    }
    const char *old = web_body_str(j, "old", TRUE);
    const char *new = old ? web_body_str(j, "new", TRUE) : NULL;
    if (!old || !new)
        return;
    if (strlen(new) < PASSWORD_MIN_LEN) {
        web_job_error(j, 400, "the new password is too short: at least %d characters",
                      PASSWORD_MIN_LEN);
        return;
    }
    /* Once the old one checks out, equal strings mean an unchanged password. */
    if (!strcmp(old, new)) {
        web_job_error(j, 400, "the new password is the same as the current one: choose another");
        return;
    }
    struct snapshot *s = begin(j);
    if (!s)
        return;
    if (strcmp(j->acting, j->user)) {
        web_job_error(j, 403, "change your own password only (use hpfriendsctl user passwd)");
        snapshot_free(s);
        return;
    }
    j->hash = g_strdup(g_hash_table_lookup(s->passwords, j->user));
    snapshot_free(s);
    j->password = g_strdup(old);
    j->password2 = g_strdup(new);
    j->status = 200;
}

/* ---- users ---- */

/*
 * The {"users": [...]} answer, one entry a user, sorted by name: the user
 * rows and the authkey owners without one (they count as users, but cannot
 * log in; explicit says which).  The plain list and the administrators'
 * list (api_admin.c) differ only in what row() writes of each.
 */
void web_api_users(struct web_job *j, const struct snapshot *s, web_user_row row)
{
    GHashTable *rows = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTable *names = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < s->users->len; i++) {
        g_hash_table_add(rows, s->users->pdata[i]);
        g_hash_table_add(names, s->users->pdata[i]);
    }
    for (guint i = 0; i < s->authkeys->len; i++)
        g_hash_table_add(names, ((struct snap_authkey *)s->authkeys->pdata[i])->owner);
    GList *sorted = g_list_sort(g_hash_table_get_keys(names), (GCompareFunc)strcmp);
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    json_builder_set_member_name(b, "users");
    json_builder_begin_array(b);
    for (GList *l = sorted; l; l = l->next)
        row(b, j, s, l->data, g_hash_table_contains(rows, l->data));
    json_builder_end_array(b);
    END(b);
    g_list_free(sorted);
    g_hash_table_unref(names);
    g_hash_table_unref(rows);
    web_job_ok(j, b);
}

/* A user as anyone sees them; whether admin and with a password, for administrators. */
static void user_row(JsonBuilder *b, const struct web_job *j, const struct snapshot *s,
                     const char *name, gboolean explicit_row)
{
    OBJ(b);
    STR(b, "name", name);
    if (j->is_admin) {
        BOOL(b, "admin", g_hash_table_contains(s->admins, name));
        BOOL(b, "password", g_hash_table_contains(s->passwords, name));
    }
    END(b);
}

static void run_users(struct web_job *j)
{
    struct snapshot *s = begin(j);
    if (!s)
        return;
    web_api_users(j, s, user_row);
    snapshot_free(s);
}

/* ---- shares ---- */

static void recipient_state(const struct snapshot *s, const struct snap_share *sh, const char *user,
                            JsonBuilder *b)
{
    OBJ(b);
    STR(b, "user", user);
    STR(b, "state", offer_state_name(snapshot_offer_state(s, user, sh->from, sh->channel)));
    END(b);
}

/* A share, and the consent of each of its recipients (pending, accepted or declined). */
static void share_obj_states(JsonBuilder *b, const struct snapshot *s, const struct snap_share *sh)
{
    OBJ(b);
    STR(b, "from", sh->from);
    char *to = g_strdup_printf("%s%s", sh->to_group ? "@" : "", sh->to);
    STR(b, "to", to);
    g_free(to);
    BOOL(b, "to_group", sh->to_group);
    STR(b, "channel", sh->channel);
    STR(b, "type", share_type_name(sh->type));
    json_builder_set_member_name(b, "recipients");
    json_builder_begin_array(b);
    if (!sh->to_group)
        recipient_state(s, sh, sh->to, b);
    for (guint i = 0; sh->to_group && i < s->members->len; i++) {
        const struct snap_member *m = s->members->pdata[i];
        if (!strcmp(m->group, sh->to))
            recipient_state(s, sh, m->user, b);
    }
    json_builder_end_array(b);
    END(b);
}

static void run_shares(struct web_job *j)
{
    struct snapshot *s = begin(j);
    if (!s)
        return;
    gboolean all = j->is_admin && !g_strcmp0(web_query(j, "all"), "1");
    /* For finish_shares: whose keys publish what. */
    j->idents = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < s->authkeys->len; i++) {
        const struct snap_authkey *k = s->authkeys->pdata[i];
        if (all || !strcmp(k->owner, j->acting))
            g_hash_table_insert(j->idents, g_strdup(k->ident), g_strdup(k->owner));
    }
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    json_builder_set_member_name(b, "shares");
    json_builder_begin_array(b);
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        if (all || !strcmp(sh->from, j->acting))
            share_obj_states(b, s, sh);
    }
    json_builder_end_array(b);
    END(b);
    snapshot_free(s);
    web_job_ok(j, b);
}

struct share_flow {
    GHashTable *key_owner; /* ident -> owner */
    GHashTable *sums;      /* "owner\nchannel" -> guint64 * */
    gint64 now;
};

static void share_flow_add(const struct flow_series *s, void *data)
{
    struct share_flow *sf = data;
    const char *owner = g_hash_table_lookup(sf->key_owner, s->key.ident);
    if (s->key.kind != FLOW_PUBLISHED || !owner || g_strcmp0(owner, s->owner))
        return;
    char *k = g_strconcat(owner, "\n", s->key.chan, NULL);
    guint64 *sum = g_hash_table_lookup(sf->sums, k);
    if (!sum) {
        sum = g_new0(guint64, 1);
        g_hash_table_insert(sf->sums, g_strdup(k), sum);
    }
    *sum += flow_last_hour(s, sf->now);
    g_free(k);
}

/*
 * Flow health on My shares: what the sender's keys published on the
 * share's channel in the last hour (the broker's in-memory counts), so a
 * sender sees whether anything is there to reach the partner.
 */
static void finish_shares(struct web_job *j)
{
    struct broker *b = j->w->b;
    if (!b->flow || !j->idents)
        return;
    struct share_flow sf = {
        .key_owner = j->idents,
        .sums = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
        .now = broker_now_s(b),
    };
    flow_foreach(b->flow, share_flow_add, &sf);
    JsonArray *a = json_object_get_array_member(json_node_get_object(j->result), "shares");
    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);
        char *k = g_strconcat(json_object_get_string_member(o, "from"), "\n",
                              json_object_get_string_member(o, "channel"), NULL);
        const guint64 *sum = g_hash_table_lookup(sf.sums, k);
        json_object_set_int_member(o, "published_hour", sum ? (gint64)*sum : 0);
        g_free(k);
    }
    g_hash_table_unref(sf.sums);
}

/* An optional boolean member: 0 when absent, -1 (and a 400) when not a boolean. */
static int body_flag(struct web_job *j, const char *key)
{
    JsonObject *o = j->body ? json_node_get_object(j->body) : NULL;
    int v = o ? jsonutil_get_bool(o, key) : 0;
    if (v < 0)
        web_job_error(j, 400, "'%s' must be true or false", key);
    return v;
}

/*
 * A widening (shares to shares_all) reaches further than its recipients
 * agreed to: it needs "confirm": true, and drops their acceptances.
 */
static gboolean share_change_confirmed(struct web_job *j, const struct snapshot *s, const char *to,
                                       const char *chan, int t)
{
    int old = admin_share_type(s, j->acting, to, chan);
    int confirm = body_flag(j, "confirm");
    if (confirm < 0)
        return FALSE;
    if (!admin_share_widens(old, t) || confirm)
        return TRUE;
    web_job_error(j, 409,
                  "changed from %s to %s: %s may then pass it on, and must accept again; "
                  "confirm to widen",
                  share_type_name(old), share_type_name(t), to);
    return FALSE;
}

static void share_changed(struct web_job *j, const struct admin_share_change *ch, int t)
{
    j->changed = TRUE;
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    BOOL(b, "ok", TRUE);
    if (ch->old_type >= 0 && ch->old_type != t) {
        char *msg = g_strdup_printf("changed from %s to %s", share_type_name(ch->old_type),
                                    share_type_name(t));
        STR(b, "changed", msg);
        g_free(msg);
        INT(b, "acceptances_dropped", ch->voided);
    }
    END(b);
    web_job_ok(j, b);
}

static void run_share_add(struct web_job *j)
{
    const char *to = web_body_str(j, "to", TRUE);
    const char *chan = to ? web_body_str(j, "channel", TRUE) : NULL;
    const char *type = chan ? web_body_str(j, "type", FALSE) : NULL;
    if (j->status)
        return;
    int t = type ? share_type_parse(type) : HPF_SHARE_SHARES;
    if (t < 0) {
        web_job_error(j, 400, "'type' must be shares or shares_all");
        return;
    }
    struct snapshot *s = begin(j);
    if (!s)
        return;
    gboolean go = share_change_confirmed(j, s, to, chan, t);
    snapshot_free(s);
    if (!go)
        return;
    GError *e = NULL;
    struct admin_share_change ch;
    if (admin_share_set(&j->admin, j->acting, to, chan, t, &ch, &e))
        share_changed(j, &ch, t);
    else
        done_op(j, FALSE, &e);
}

static void run_share_del(struct web_job *j)
{
    const char *to = web_body_str(j, "to", TRUE);
    const char *chan = to ? web_body_str(j, "channel", TRUE) : NULL;
    if (!chan)
        return;
    struct snapshot *s = begin(j);
    if (!s)
        return;
    snapshot_free(s);
    GError *e = NULL;
    done_op(j, admin_share_del(&j->admin, j->acting, to, chan, &e), &e);
}

/* ---- offers: shares to me ---- */

/* The share behind an offer of `from` on `chan` to user, and how it reaches them. */
static const struct snap_share *find_offer(const struct snapshot *s, const char *user,
                                           const char *from, const char *chan)
{
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        if (strcmp(sh->from, from) || strcmp(sh->channel, chan))
            continue;
        if (sh->to_group ? snapshot_is_member(s, sh->to, user) : !strcmp(sh->to, user))
            return sh;
    }
    return NULL;
}

static void run_offers(struct web_job *j)
{
    struct snapshot *s = begin(j);
    if (!s)
        return;
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    BOOL(b, "require_accept", j->require_accept);
    /* The console shows channel lists read-only to users who may not set them. */
    BOOL(b, "lists_editable", j->is_admin || !j->channels_mode);
    guint pending = 0;
    json_builder_set_member_name(b, "offers");
    json_builder_begin_array(b);
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        if (!strcmp(sh->from, j->acting))
            continue;
        if (sh->to_group ? !snapshot_is_member(s, sh->to, j->acting) : strcmp(sh->to, j->acting))
            continue;
        OBJ(b);
        STR(b, "from", sh->from);
        STR(b, "channel", sh->channel);
        STR(b, "type", share_type_name(sh->type));
        char *via = sh->to_group ? g_strdup_printf("@%s", sh->to) : NULL;
        STR(b, "via", via);
        g_free(via);
        enum offer_state st = snapshot_offer_state(s, j->acting, sh->from, sh->channel);
        BOOL(b, "accepted", st == OFFER_ACCEPTED);
        STR(b, "state", offer_state_name(st));
        /* Only offers still waiting for an answer: a declined one was answered. */
        pending += st == OFFER_PENDING;
        END(b);
    }
    json_builder_end_array(b);
    INT(b, "pending", pending);
    END(b);
    snapshot_free(s);
    web_job_ok(j, b);
}

/*
 * Accept, decline, or (want pending) withdraw either answer.  Accept and
 * decline replace each other; saying again what holds is no error;
 * answering an offer that does not reach the user is a 404.
 */
static void offer_decide(struct web_job *j, enum offer_state want)
{
    const char *from = web_body_str(j, "from", TRUE);
    const char *chan = from ? web_body_str(j, "channel", TRUE) : NULL;
    if (!chan)
        return;
    struct snapshot *s = begin(j);
    if (!s)
        return;
    gboolean offered = find_offer(s, j->acting, from, chan) != NULL;
    enum offer_state now = snapshot_offer_state(s, j->acting, from, chan);
    snapshot_free(s);
    /* Withdrawing needs no offer (an answer outlives a removed share), but
       something to withdraw. */
    if (!offered && (want != OFFER_PENDING || now == OFFER_PENDING)) {
        g_autofree char *f = echo(from), *c = echo(chan);
        web_job_error(j, 404, "'%s' offers you nothing on '%s'", f, c);
        return;
    }
    if (want == now) {
        ok_simple(j); /* already so */
        return;
    }
    GError *e = NULL;
    done_op(j, admin_offer_answer(&j->admin, j->acting, from, chan, now, want, &e), &e);
}

static void run_accept(struct web_job *j) { offer_decide(j, OFFER_ACCEPTED); }
static void run_decline(struct web_job *j) { offer_decide(j, OFFER_DECLINED); }
static void run_reject(struct web_job *j) { offer_decide(j, OFFER_PENDING); }

/* ---- authkeys ---- */

/* Whose object name is, NULL when there is none: one per kind begin_owned() serves. */
typedef const char *(*owner_fn)(const struct snapshot *s, const char *name);

/*
 * The preamble of the routes that act on one object (authkey, group) of the
 * acting user: the snapshot, when no answer is set yet (a missing name or a
 * bad body member already gave its 400) and the acting user owns the object.
 * Another user's object gets the same 404 as a missing one (not_found, with
 * one %s for the name), so nobody learns which names exist.  Caller frees
 * the snapshot; NULL means the answer is set.
 */
static struct snapshot *begin_owned(struct web_job *j, const char *name, owner_fn owner_of,
                                    const char *not_found)
{
    struct snapshot *s = name && !j->status ? begin(j) : NULL;
    if (!s)
        return NULL;
    const char *owner = owner_of(s, name);
    if (!owner || strcmp(owner, j->acting)) {
        g_autofree char *n = echo(name);
        web_job_error(j, 404, not_found, n);
        snapshot_free(s);
        return NULL;
    }
    return s;
}

static const char *key_owner(const struct snapshot *s, const char *ident)
{
    const struct snap_authkey *k = g_hash_table_lookup(s->authkey_by_ident, ident);
    return k ? k->owner : NULL;
}

static struct snapshot *begin_own_key(struct web_job *j, const char *ident)
{
    return begin_owned(j, ident, key_owner, "authkey '%s' not found");
}

/*
 * As done_op(), for the routes that make a secret: shown this once.  owner
 * may be NULL (not echoed); takes secret.
 */
static void done_secret(struct web_job *j, gboolean ok, GError **e, const char *ident,
                        const char *owner, char *secret)
{
    if (!ok) {
        web_job_gerror(j, *e);
        g_clear_error(e);
        g_free(secret);
        return;
    }
    j->changed = TRUE;
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    STR(b, "ident", ident);
    if (owner)
        STR(b, "owner", owner);
    STR(b, "secret", secret);
    END(b);
    web_job_ok(j, b);
    g_free(secret);
}

static void run_authkeys(struct web_job *j)
{
    struct snapshot *s = begin(j);
    if (!s)
        return;
    const struct hpf_storage_ops *ops = j->admin.storage->desc->storage;
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    /* Shown next to the list fields: the rule the server reads them by. */
    STR(b, "channel_list_rule", ADMIN_CHANNEL_LIST_RULE);
    json_builder_set_member_name(b, "authkeys");
    json_builder_begin_array(b);
    for (guint i = 0; i < s->authkeys->len; i++) {
        const struct snap_authkey *k = s->authkeys->pdata[i];
        if (strcmp(k->owner, j->acting) || g_hash_table_lookup(s->authkey_by_ident, k->ident) != k)
            continue;
        struct hpf_counters c = {0};
        if (ops->counters_get)
            ops->counters_get(j->admin.storage->inst, k->ident, &c);
        OBJ(b);
        STR(b, "ident", k->ident);
        STR(b, "owner", k->owner);
        jsonutil_add_strv(b, "publish", k->publish);
        jsonutil_add_strv(b, "subscribe", k->subscribe);
        INT(b, "published_msgs", c.published_msgs);
        INT(b, "published_bytes", c.published_bytes);
        INT(b, "received_msgs", c.received_msgs);
        INT(b, "received_bytes", c.received_bytes);
        INT(b, "connections", 0);
        END(b);
    }
    json_builder_end_array(b);
    END(b);
    snapshot_free(s);
    web_job_ok(j, b);
}

/* ---- flow health (loop thread: the broker's in-memory buckets) ---- */

static void set_time(JsonObject *o, const char *key, gint64 secs)
{
    GDateTime *t = secs > 0 ? g_date_time_new_from_unix_utc(secs) : NULL;
    if (!t) {
        json_object_set_null_member(o, key);
        return;
    }
    char *ts = g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ");
    json_object_set_string_member(o, key, ts);
    g_free(ts);
    g_date_time_unref(t);
}

struct flow_view {
    GHashTable *by_ident; /* ident -> the key's JsonObject */
    gint64 now;
};

/* One series into its key's object: the newest time, the channel's counts. */
static void flow_into(const struct flow_series *s, void *data)
{
    struct flow_view *v = data;
    JsonObject *o = g_hash_table_lookup(v->by_ident, s->key.ident);
    /* Counts made under another owner of the ident are not this key's. */
    if (!o || g_strcmp0(s->owner, json_object_get_string_member(o, "owner")))
        return;
    guint64 hour = flow_last_hour(s, v->now), day = flow_last_day(s, v->now);
    if (s->key.kind == FLOW_CONNECTED) {
        set_time(o, "last_connected", s->last);
    } else if (s->key.kind == FLOW_DELIVERED) {
        set_time(o, "last_delivered", s->last);
        json_object_set_int_member(o, "delivered_hour", (gint64)hour);
        json_object_set_int_member(o, "delivered_day", (gint64)day);
    } else {
        /* Series come newest first: the first one seen holds the key's last publish. */
        if (json_object_get_null_member(o, "last_published"))
            set_time(o, "last_published", s->last);
        JsonObject *c = json_object_new();
        json_object_set_string_member(c, "channel", s->key.chan);
        json_object_set_int_member(c, "hour", (gint64)hour);
        json_object_set_int_member(c, "day", (gint64)day);
        set_time(c, "last", s->last);
        json_array_add_object_element(json_object_get_array_member(o, "flow"), c);
    }
}

/*
 * Each key's recent traffic: last connected, last published, messages per
 * channel in the last hour and day, and what was delivered to it.  Kept
 * in memory since the broker started ("flow_since"); null and zero when
 * not seen since.
 */
static void add_flow(struct broker *b, GHashTable *by_ident)
{
    GHashTableIter it;
    gpointer o;
    g_hash_table_iter_init(&it, by_ident);
    while (g_hash_table_iter_next(&it, NULL, &o)) {
        json_object_set_null_member(o, "last_connected");
        json_object_set_null_member(o, "last_published");
        json_object_set_null_member(o, "last_delivered");
        json_object_set_int_member(o, "delivered_hour", 0);
        json_object_set_int_member(o, "delivered_day", 0);
        json_object_set_array_member(o, "flow", json_array_new());
    }
    if (!b->flow)
        return;
    counters_collect_all(b); /* delivered counts move into the buckets on collection */
    struct flow_view v = {.by_ident = by_ident, .now = broker_now_s(b)};
    flow_foreach(b->flow, flow_into, &v);
}

/*
 * Where sensors connect, for the connection snippet: [web] public_hpfeeds
 * when set, else the first hpfeeds listener (host null when it listens on
 * every address: the console's own host name is the best guess, and the
 * page fills it in).
 */
static void add_endpoint(struct web_job *j)
{
    struct broker *b = j->w->b;
    const struct web_conf *wc = b->cfg->web;
    JsonObject *root = json_node_get_object(j->result);
    if (b->flow)
        set_time(root, "flow_since", flow_since(b->flow));
    JsonObject *e = json_object_new();
    char *host = NULL;
    int port = 0;
    gboolean tls = FALSE;
    gboolean bound = broker_listen_endpoint(b, &host, &port, &tls);
    if (wc && wc->public_host) {
        json_object_set_string_member(e, "host", wc->public_host);
        json_object_set_int_member(e, "port", wc->public_port);
    } else if (bound) {
        gboolean any =
            !*host || !strcmp(host, "*") || !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
        if (any)
            json_object_set_null_member(e, "host");
        else
            json_object_set_string_member(e, "host", host);
        json_object_set_int_member(e, "port", port);
    } else {
        json_object_set_null_member(e, "host");
        json_object_set_null_member(e, "port");
    }
    json_object_set_boolean_member(e, "tls", tls);
    json_object_set_boolean_member(e, "public", wc && wc->public_host);
    g_free(host);
    json_object_set_object_member(root, "hpfeeds", e);
}

static void bump(JsonObject *o, const char *key, guint64 by)
{
    json_object_set_int_member(o, key, json_object_get_int_member(o, key) + (gint64)by);
}

/* Stored counters plus what the broker holds and has not saved yet. */
static void finish_authkeys(struct web_job *j)
{
    struct broker *b = j->w->b;
    GHashTable *by_ident = g_hash_table_new(g_str_hash, g_str_equal);
    JsonArray *a = json_object_get_array_member(json_node_get_object(j->result), "authkeys");
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);
        g_hash_table_insert(by_ident, (gpointer)json_object_get_string_member(o, "ident"), o);
    }
    GHashTableIter it;
    gpointer k, v;
    GHashTable *unsaved = counters_unsaved(b);
    g_hash_table_iter_init(&it, unsaved);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const struct hpf_counters *d = v;
        JsonObject *o = g_hash_table_lookup(by_ident, d->ident);
        if (!o)
            continue;
        bump(o, "published_msgs", d->published_msgs);
        bump(o, "published_bytes", d->published_bytes);
        bump(o, "received_msgs", d->received_msgs);
        bump(o, "received_bytes", d->received_bytes);
    }
    g_hash_table_unref(unsaved);
    GHashTable *live = conn_totals_by_ident(b);
    g_hash_table_iter_init(&it, live);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const struct conn_ident_totals *t = v;
        JsonObject *o = g_hash_table_lookup(by_ident, k);
        if (o)
            bump(o, "connections", t->connections);
    }
    g_hash_table_unref(live);
    add_flow(b, by_ident);
    g_hash_table_unref(by_ident);
    add_endpoint(j);
}

/*
 * With access = channels the lists are the only access control: a user who
 * set their own could read every channel.  Only an administrator sets them
 * then; a user may still make a key (its lists empty) or delete one.
 */
/*
 * A channel list member: an array of names, or text read by the rule
 * hpfriendsctl applies (admin_channel_list()), so the console's fields
 * and the command line cannot differ.
 */
static char **body_channels(struct web_job *j, const char *key, gboolean *present)
{
    JsonObject *o = j->body ? json_node_get_object(j->body) : NULL;
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return web_body_strv(j, key, present);
    const char *text = json_node_get_string(n);
    *present = TRUE;
    GError *e = NULL;
    char **v = admin_channel_list(text, &e);
    if (!v) {
        web_job_error(j, 400, "'%s': %s", key, e->message);
        g_error_free(e);
    }
    return v;
}

static gboolean lists_allowed(struct web_job *j, gboolean sets_lists)
{
    if (!j->channels_mode || j->is_admin || !sets_lists)
        return TRUE;
    web_job_error(j, 403,
                  "with access = channels only an administrator may set an authkey's "
                  "publish and subscribe lists");
    return FALSE;
}

static void run_authkey_add(struct web_job *j)
{
    const char *ident = web_body_str(j, "ident", TRUE);
    if (!ident)
        return;
    gboolean has_pub, has_sub;
    char **pub = body_channels(j, "publish", &has_pub);
    char **sub = j->status ? NULL : body_channels(j, "subscribe", &has_sub);
    struct snapshot *s = j->status ? NULL : begin(j);
    if (s && !lists_allowed(j, (pub && *pub) || (sub && *sub)))
        g_clear_pointer(&s, snapshot_free);
    if (s) {
        snapshot_free(s);
        GError *e = NULL;
        char *secret = NULL;
        gboolean ok = admin_authkey_add(&j->admin, j->acting, ident, NULL, pub, sub, &secret, &e);
        done_secret(j, ok, &e, ident, j->acting, secret);
    }
    g_strfreev(pub);
    g_strfreev(sub);
}

static void run_authkey_set(struct web_job *j)
{
    const char *ident = web_body_str(j, "ident", TRUE);
    if (!ident)
        return;
    gboolean has_pub = FALSE, has_sub = FALSE;
    char **pub = body_channels(j, "publish", &has_pub);
    char **sub = j->status ? NULL : body_channels(j, "subscribe", &has_sub);
    struct snapshot *s = begin_own_key(j, ident);
    if (s && lists_allowed(j, has_pub || has_sub)) {
        GError *e = NULL;
        done_op(j, admin_authkey_set(&j->admin, ident, NULL, NULL, pub, sub, &e), &e);
    }
    snapshot_free(s);
    g_strfreev(pub);
    g_strfreev(sub);
}

/* A new generated secret, shown once; sessions opened with the old one end at the reload. */
static void run_authkey_secret(struct web_job *j)
{
    const char *ident = web_body_str(j, "ident", TRUE);
    struct snapshot *s = begin_own_key(j, ident);
    if (s) {
        GError *e = NULL;
        char *secret = NULL;
        gboolean ok = admin_authkey_regenerate(&j->admin, ident, &secret, &e);
        done_secret(j, ok, &e, ident, NULL, secret);
    }
    snapshot_free(s);
}

static void run_authkey_del(struct web_job *j)
{
    const char *ident = web_body_str(j, "ident", TRUE);
    struct snapshot *s = begin_own_key(j, ident);
    if (s) {
        GError *e = NULL;
        done_op(j, admin_authkey_del(&j->admin, ident, &e), &e);
    }
    snapshot_free(s);
}

/* ---- groups ---- */

static void run_groups(struct web_job *j)
{
    struct snapshot *s = begin(j);
    if (!s)
        return;
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    json_builder_set_member_name(b, "groups");
    json_builder_begin_array(b);
    for (guint i = 0; i < s->groups->len; i++) {
        const struct snap_group *g = s->groups->pdata[i];
        gboolean mine = !strcmp(g->owner, j->acting);
        if (!mine && !snapshot_is_member(s, g->name, j->acting))
            continue;
        OBJ(b);
        STR(b, "name", g->name);
        STR(b, "owner", g->owner);
        BOOL(b, "mine", mine);
        BOOL(b, "member", snapshot_is_member(s, g->name, j->acting));
        json_builder_set_member_name(b, "members");
        json_builder_begin_array(b);
        for (guint m = 0; m < s->members->len; m++) {
            const struct snap_member *mb = s->members->pdata[m];
            if (!strcmp(mb->group, g->name))
                json_builder_add_string_value(b, mb->user);
        }
        json_builder_end_array(b);
        END(b);
    }
    json_builder_end_array(b);
    END(b);
    snapshot_free(s);
    web_job_ok(j, b);
}

static const char *group_owner(const struct snapshot *s, const char *name)
{
    const struct snap_group *g = snapshot_find_group(s, name);
    return g ? g->owner : NULL;
}

static struct snapshot *begin_own_group(struct web_job *j, const char *name)
{
    return begin_owned(j, name, group_owner, "group '%s' not found among your groups");
}

static void run_group_add(struct web_job *j)
{
    const char *name = web_body_str(j, "name", TRUE);
    if (!name)
        return;
    struct snapshot *s = begin(j);
    if (!s)
        return;
    snapshot_free(s);
    GError *e = NULL;
    done_op(j, admin_group_add(&j->admin, name, j->acting, &e), &e);
}

static void run_group_del(struct web_job *j)
{
    const char *name = web_body_str(j, "name", TRUE);
    struct snapshot *s = begin_own_group(j, name);
    if (s) {
        GError *e = NULL;
        done_op(j, admin_group_del(&j->admin, name, &e), &e);
    }
    snapshot_free(s);
}

static void run_member_add(struct web_job *j)
{
    const char *group = web_body_str(j, "group", TRUE);
    const char *member = group ? web_body_str(j, "member", TRUE) : NULL;
    struct snapshot *s = member ? begin_own_group(j, group) : NULL;
    if (s) {
        GError *e = NULL;
        g_autofree char *m = echo(member);
        if (!snapshot_has_user(s, member))
            web_job_error(j, 404, "user '%s' not found", m);
        else
            done_op(j, admin_member_add(&j->admin, group, member, &e), &e);
    }
    snapshot_free(s);
}

static void run_member_del(struct web_job *j)
{
    const char *group = web_body_str(j, "group", TRUE);
    const char *member = group ? web_body_str(j, "member", TRUE) : NULL;
    struct snapshot *s = member ? begin_own_group(j, group) : NULL;
    if (s) {
        GError *e = NULL;
        done_op(j, admin_member_del(&j->admin, group, member, &e), &e);
    }
    snapshot_free(s);
}

static void run_group_leave(struct web_job *j)
{
    const char *group = web_body_str(j, "group", TRUE);
    if (!group)
        return;
    struct snapshot *s = begin(j);
    if (!s)
        return;
    if (!snapshot_is_member(s, group, j->acting)) {
        g_autofree char *g = echo(group);
        web_job_error(j, 404, "you are not a member of group '%s'", g);
    } else {
        GError *e = NULL;
        done_op(j, admin_member_del(&j->admin, group, j->acting, &e), &e);
    }
    snapshot_free(s);
}

/* ---- logs (the ring and the answer: api_logs.c) ---- */

static void run_logs(struct web_job *j)
{
    struct snapshot *s = begin(j);
    if (!s)
        return;
    if (!web_logs_check_query(j)) {
        snapshot_free(s);
        return;
    }
    /* Whose each ident is now: what a user may see, the owner an admin is shown. */
    j->idents = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < s->authkeys->len; i++) {
        const struct snap_authkey *k = s->authkeys->pdata[i];
        g_hash_table_replace(j->idents, g_strdup(k->ident), g_strdup(k->owner));
    }
    snapshot_free(s);
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    END(b);
    web_job_ok(j, b);
}

/* ---- graph and readers ---- */

static void node(JsonBuilder *b, GHashTable *seen, const char *id, const char *label,
                 const char *kind)
{
    if (!g_hash_table_add(seen, g_strdup(id)))
        return;
    OBJ(b);
    STR(b, "id", id);
    STR(b, "label", label);
    STR(b, "kind", kind);
    END(b);
}

/*
 * Most edges (shares and group memberships) /api/graph returns: an
 * administrator's view is the whole graph, and the browser lays out and
 * draws all it gets.  Past this the answer says "truncated" and keeps the
 * edges around the user first.  At 4,000 edges of 255-byte channel names
 * the answer stays near 1.5 MB.
 */
#define GRAPH_MAX_EDGES 4000

/* What one /api/graph answer shows, with lookup tables built once, so the
 * cost stays linear in the snapshot rather than shares times members. */
struct graph_view {
    const struct snapshot *s;
    const char *me;
    gboolean all;
    gboolean require_accept;
    GHashTable *groups;   /* names of the groups I own or am in */
    GHashTable *members;  /* group name -> GPtrArray of member names */
    GHashTable *accepts;  /* "user\nfrom\nchannel" (names hold no control characters) */
    GHashTable *declines; /* the same keys, for offers declined */
    GPtrArray *shares;    /* struct snap_share * shown */
    GPtrArray *in_groups; /* struct snap_member * shown */
    gboolean truncated;
};

static char *accept_key(const char *user, const char *from, const char *channel)
{
    return g_strjoin("\n", user, from, channel, NULL);
}

static void graph_view_init(struct graph_view *v, const struct snapshot *s, const char *me,
                            gboolean all, gboolean require_accept)
{
    memset(v, 0, sizeof *v);
    v->s = s;
    v->me = me;
    v->all = all;
    v->require_accept = require_accept;
    v->groups = g_hash_table_new(g_str_hash, g_str_equal);
    v->members =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_ptr_array_unref);
    v->accepts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    v->declines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    v->shares = g_ptr_array_new();
    v->in_groups = g_ptr_array_new();
    for (guint i = 0; i < s->members->len; i++) {
        const struct snap_member *m = s->members->pdata[i];
        GPtrArray *list = g_hash_table_lookup(v->members, m->group);
        if (!list) {
            list = g_ptr_array_new();
            g_hash_table_insert(v->members, m->group, list);
        }
        g_ptr_array_add(list, m->user);
        if (!strcmp(m->user, me))
            g_hash_table_add(v->groups, m->group);
    }
    for (guint i = 0; i < s->groups->len; i++) {
        const struct snap_group *g = s->groups->pdata[i];
        if (!strcmp(g->owner, me))
            g_hash_table_add(v->groups, g->name);
    }
    for (guint i = 0; require_accept && i < s->accepts->len; i++) {
        const struct snap_accept *a = s->accepts->pdata[i];
        g_hash_table_add(v->accepts, accept_key(a->user, a->from, a->channel));
    }
    for (guint i = 0; require_accept && i < s->declines->len; i++) {
        const struct snap_accept *d = s->declines->pdata[i];
        g_hash_table_add(v->declines, accept_key(d->user, d->from, d->channel));
    }
}

static void graph_view_clear(struct graph_view *v)
{
    g_hash_table_unref(v->groups);
    g_hash_table_unref(v->members);
    g_hash_table_unref(v->accepts);
    g_hash_table_unref(v->declines);
    g_ptr_array_unref(v->shares);
    g_ptr_array_unref(v->in_groups);
}

/* A share from me, to me or to a group of mine (owned or joined). */
static gboolean graph_share_near(const struct graph_view *v, const struct snap_share *sh)
{
    if (!strcmp(sh->from, v->me))
        return TRUE;
    return sh->to_group ? g_hash_table_contains(v->groups, sh->to) : !strcmp(sh->to, v->me);
}

/* Adds an edge; when GRAPH_MAX_EDGES are there, marks the answer
 * truncated instead and says to stop. */
static gboolean graph_add(struct graph_view *v, GPtrArray *to, const void *edge)
{
    if (v->shares->len + v->in_groups->len >= GRAPH_MAX_EDGES) {
        v->truncated = TRUE;
        return FALSE;
    }
    g_ptr_array_add(to, (gpointer)edge);
    return TRUE;
}

/* Edges near me first (all a user sees), then, for an administrator's
 * whole graph, the others, up to GRAPH_MAX_EDGES. */
static void graph_collect(struct graph_view *v)
{
    const struct snapshot *s = v->s;
    for (int far = 0; far <= v->all; far++) {
        for (guint i = 0; i < s->shares->len; i++) {
            const struct snap_share *sh = s->shares->pdata[i];
            if (graph_share_near(v, sh) == !far && !graph_add(v, v->shares, sh))
                return;
        }
        for (guint i = 0; i < s->members->len; i++) {
            const struct snap_member *m = s->members->pdata[i];
            if (g_hash_table_contains(v->groups, m->group) == !far &&
                !graph_add(v, v->in_groups, m))
                return;
        }
    }
}

/* Consent of a share's recipients: "active" without require_accept, else
 * "accepted" when every recipient accepted, "pending" when one has not,
 * with the counts (a share to a group asks each member). */
static void graph_share_state(const struct graph_view *v, const struct snap_share *sh,
                              JsonBuilder *b)
{
    if (!v->require_accept) {
        STR(b, "state", "active");
        return;
    }
    GPtrArray *list = sh->to_group ? g_hash_table_lookup(v->members, sh->to) : NULL;
    guint n = sh->to_group ? (list ? list->len : 0) : 1, ok = 0, no = 0;
    for (guint i = 0; i < n; i++) {
        char *key = accept_key(sh->to_group ? list->pdata[i] : sh->to, sh->from, sh->channel);
        ok += g_hash_table_contains(v->accepts, key);
        no += g_hash_table_contains(v->declines, key);
        g_free(key);
    }
    /* Accepted or declined when every recipient answered so; else pending. */
    STR(b, "state", n && no == n ? "declined" : ok == n ? "accepted" : "pending");
    INT(b, "recipients", n);
    INT(b, "accepted", ok);
    INT(b, "declined", no);
}

static void graph_nodes(const struct graph_view *v, JsonBuilder *b)
{
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    json_builder_set_member_name(b, "nodes");
    json_builder_begin_array(b);
    node(b, seen, v->me, v->me, "user");
    for (guint i = 0; i < v->shares->len; i++) {
        const struct snap_share *sh = v->shares->pdata[i];
        char *to_id = g_strdup_printf("%s%s", sh->to_group ? "@" : "", sh->to);
        node(b, seen, sh->from, sh->from, "user");
        node(b, seen, to_id, to_id, sh->to_group ? "group" : "user");
        g_free(to_id);
    }
    for (guint i = 0; i < v->in_groups->len; i++) {
        const struct snap_member *m = v->in_groups->pdata[i];
        char *gid = g_strdup_printf("@%s", m->group);
        node(b, seen, gid, gid, "group");
        node(b, seen, m->user, m->user, "user");
        g_free(gid);
    }
    json_builder_end_array(b);
    g_hash_table_unref(seen);
}

static void graph_edges(const struct graph_view *v, JsonBuilder *b)
{
    json_builder_set_member_name(b, "edges");
    json_builder_begin_array(b);
    for (guint i = 0; i < v->shares->len; i++) {
        const struct snap_share *sh = v->shares->pdata[i];
        char *to_id = g_strdup_printf("%s%s", sh->to_group ? "@" : "", sh->to);
        OBJ(b);
        STR(b, "from", sh->from);
        STR(b, "to", to_id);
        STR(b, "kind", share_type_name(sh->type));
        STR(b, "channel", sh->channel);
        graph_share_state(v, sh, b);
        END(b);
        g_free(to_id);
    }
    for (guint i = 0; i < v->in_groups->len; i++) {
        const struct snap_member *m = v->in_groups->pdata[i];
        char *gid = g_strdup_printf("@%s", m->group);
        OBJ(b);
        STR(b, "from", gid);
        STR(b, "to", m->user);
        STR(b, "kind", "member");
        END(b);
        g_free(gid);
    }
    json_builder_end_array(b);
}

/* The sharing graph around the acting user (an administrator without
 * ?user= gets all of it): nodes, share and membership edges with each
 * share's consent state, bounded by GRAPH_MAX_EDGES. */
static void run_graph(struct web_job *j)
{
    struct snapshot *s = begin(j);
    if (!s)
        return;
    struct graph_view v;
    graph_view_init(&v, s, j->acting, j->is_admin && !web_query(j, "user"), j->require_accept);
    graph_collect(&v);
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    STR(b, "center", v.me);
    BOOL(b, "require_accept", v.require_accept);
    BOOL(b, "truncated", v.truncated);
    INT(b, "max_edges", GRAPH_MAX_EDGES);
    graph_nodes(&v, b);
    graph_edges(&v, b);
    END(b);
    graph_view_clear(&v);
    snapshot_free(s);
    web_job_ok(j, b);
}

/* Readers as objects; pending ones (not accepted yet) are marked as such, and those
 * who declined too. */
static void reader_objs(JsonBuilder *b, const GPtrArray *r, gboolean pending)
{
    for (guint i = 0; i < r->len; i++) {
        const struct admin_reader *rd = r->pdata[i];
        OBJ(b);
        STR(b, "user", rd->user);
        STR(b, "path", rd->path);
        if (pending)
            BOOL(b, "pending", TRUE);
        if (pending && rd->declined)
            BOOL(b, "declined", TRUE);
        END(b);
    }
}

static void run_readers(struct web_job *j)
{
    const char *chan = web_query(j, "channel");
    if (!chan || !admin_valid_channel(chan)) {
        web_job_error(j, 400,
                      "give a channel name: 1-255 bytes of UTF-8 text, no control characters, "
                      "spaces or commas");
        return;
    }
    struct snapshot *s = begin(j);
    if (!s)
        return;
    GPtrArray *r = admin_readers(s, j->acting, chan, j->require_accept);
    JsonBuilder *b = json_builder_new();
    OBJ(b);
    STR(b, "publisher", j->acting);
    STR(b, "channel", chan);
    BOOL(b, "require_accept", j->require_accept);
    /* The console shows channel lists read-only to users who may not set them. */
    BOOL(b, "lists_editable", j->is_admin || !j->channels_mode);
    json_builder_set_member_name(b, "readers");
    json_builder_begin_array(b);
    reader_objs(b, r, FALSE);
    GPtrArray *pending = j->require_accept ? admin_pending_readers(s, j->acting, chan, r) : NULL;
    if (pending)
        reader_objs(b, pending, TRUE);
    json_builder_end_array(b);
    END(b);
    if (pending)
        g_ptr_array_unref(pending);
    g_ptr_array_unref(r);
    snapshot_free(s);
    web_job_ok(j, b);
}

const struct web_route web_routes[] = {
    {"POST", "/api/login", FALSE, run_login, web_crypto_finish, "user password"},
    {"POST", "/api/logout", TRUE, run_logout, finish_logout, ""},
    {"GET", "/api/session", TRUE, run_session, finish_session, NULL},
    {"POST", "/api/password", TRUE, run_password, web_crypto_finish, "old new"},
    {"GET", "/api/users", TRUE, run_users, NULL, NULL},
    {"GET", "/api/shares", TRUE, run_shares, finish_shares, NULL},
    {"POST", "/api/shares", TRUE, run_share_add, NULL, "to channel type confirm"},
    {"DELETE", "/api/shares", TRUE, run_share_del, NULL, "to channel"},
    {"GET", "/api/offers", TRUE, run_offers, NULL, NULL},
    {"POST", "/api/offers/accept", TRUE, run_accept, NULL, "from channel"},
    {"POST", "/api/offers/reject", TRUE, run_reject, NULL, "from channel"},
    {"POST", "/api/offers/decline", TRUE, run_decline, NULL, "from channel"},
    {"GET", "/api/authkeys", TRUE, run_authkeys, finish_authkeys, NULL},
    {"POST", "/api/authkeys", TRUE, run_authkey_add, NULL, "ident publish subscribe"},
    {"PUT", "/api/authkeys", TRUE, run_authkey_set, NULL, "ident publish subscribe"},
    {"DELETE", "/api/authkeys", TRUE, run_authkey_del, NULL, "ident"},
    {"POST", "/api/authkeys/secret", TRUE, run_authkey_secret, NULL, "ident"},
    {"GET", "/api/groups", TRUE, run_groups, NULL, NULL},
    {"POST", "/api/groups", TRUE, run_group_add, NULL, "name"},
    {"DELETE", "/api/groups", TRUE, run_group_del, NULL, "name"},
    {"POST", "/api/groups/members", TRUE, run_member_add, NULL, "group member"},
    {"DELETE", "/api/groups/members", TRUE, run_member_del, NULL, "group member"},
    {"POST", "/api/groups/leave", TRUE, run_group_leave, NULL, "group"},
    {"GET", "/api/logs", TRUE, run_logs, web_logs_finish, NULL},
    {"GET", "/api/graph", TRUE, run_graph, NULL, NULL},
    {"GET", "/api/readers", TRUE, run_readers, NULL, NULL},
    /* api_admin.c */
    {"GET", "/api/audit", TRUE, web_run_audit, NULL, NULL},
    {"GET", "/api/admin/users", TRUE, web_run_admin_users, NULL, NULL},
    {"POST", "/api/admin/users", TRUE, web_run_admin_user_add, NULL, "name admin password"},
    {"DELETE", "/api/admin/users", TRUE, web_run_admin_user_del, NULL, "name"},
    {"POST", "/api/admin/users/admin", TRUE, web_run_admin_user_admin, NULL, "name admin"},
    {"POST", "/api/admin/users/password", TRUE, web_run_admin_user_password, NULL, "name password"},
};
const gsize web_n_routes = G_N_ELEMENTS(web_routes);
