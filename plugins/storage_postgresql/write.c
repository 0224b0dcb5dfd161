/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql writes: apply() and counters.
 *
 * apply() runs in one transaction: it locks the data_version row (so
 * writers on every node take turns, and each reads what the previous one
 * committed), reads everything, runs the whole batch against that copy in
 * memory (model.c: storage_sqlite's rules and messages), writes the
 * difference between before and after, bumps data_version and commits.
 * A batch that fails validation, or a write the server refuses, or an
 * outage half-way, leaves the database as it was.
 *
 * Records that change in place (a user's admin flag or password, a share's
 * type, a group's owner, an authkey replaced) are updated, not deleted and
 * inserted, so an auth_keys row keeps its id and the columns we do not know.
 * Deletes and updates go one statement each as gm_diff() reports them;
 * inserts are collected and sent in batches afterwards (batch.c).
 */
#include "pg_store.h"
#include "../common/mutation_check.h"
#include "../common/sql_channels.h"

#include <string.h>

struct wctx {
    struct pstore *s;
    struct pg_batch batch; /* inserts, sent after the deletes and updates */
    bool failed;
    struct pg_fail f;
    char what[300]; /* the record a failed write was for */
};

static const char *bool_text(bool b) { return b ? "true" : "false"; }

/* Names the record the next writes are for; after a failure, the one that failed. */
static void note(struct wctx *w, const char *kind, const char *name)
{
    if (!w->failed)
        g_snprintf(w->what, sizeof w->what, "%s '%.200s'", kind, name);
}

static void run(struct wctx *w, const char *sql, int n, const char *const *params)
{
    if (!w->failed && !pg_run(w->s, sql, n, params, &w->f))
        w->failed = true;
}

/* An authkey's owner row: only for an owner other than the identifier. */
static void key_owner(struct wctx *w, const struct gm_key *k)
{
    const char *params[] = {k->ident, k->owner};
    if (k->owner && strcmp(k->owner, k->ident))
        run(w,
            "INSERT INTO hpf_key_owners (identifier, owner) VALUES ($1, $2) "
            "ON CONFLICT (identifier) DO UPDATE SET owner = excluded.owner",
            2, params);
    else
        run(w, "DELETE FROM hpf_key_owners WHERE identifier = $1", 1, params);
}

/* Records that change in place: updated where they are (the rows keep their ids). */
static void key_update(struct wctx *w, const struct gm_key *k)
{
    note(w, "authkey", k->ident);
    char *pub = sql_channels_format((const char *const *)k->publish->pdata, k->publish->len);
    char *sub = sql_channels_format((const char *const *)k->subscribe->pdata, k->subscribe->len);
    const char *params[] = {k->ident, k->secret, pub, sub};
    run(w, "UPDATE auth_keys SET secret = $2, publish = $3, subscribe = $4 WHERE identifier = $1",
        4, params);
    g_free(pub);
    g_free(sub);
    key_owner(w, k);
}

static void user_update(struct wctx *w, const struct gm_user *u)
{
    note(w, "user", u->name);
    const char *params[] = {u->name, bool_text(u->admin), u->password};
    run(w, "UPDATE hpf_users SET admin = $2, password = $3 WHERE name = $1", 3, params);
}

static void group_update(struct wctx *w, const struct gm_group *g)
{
    note(w, "group", g->name);
    const char *params[] = {g->name, g->owner};
    run(w, "UPDATE hpf_groups SET owner = $2 WHERE name = $1", 2, params);
}

static void share_update(struct wctx *w, const struct gm_share *sh)
{
    note(w, "share on channel", sh->channel);
    const char *params[] = {sh->from, sh->to, bool_text(sh->to_group), sh->channel,
                            hpf_share_type_name(sh->type)};
    run(w,
        "UPDATE hpf_shares SET type = $5 WHERE from_user = $1 AND to_name = $2 AND "
        "to_is_group = $3 AND channel = $4",
        5, params);
}

static bool on_del(void *ud, enum gm_kind kind, const void *r, const void *replacement)
{
    struct wctx *w = ud;
    bool update = replacement != NULL;
    switch (kind) {
    case GM_USER:
        if (update) {
            user_update(w, replacement);
            return true;
        }
        note(w, "user", ((const struct gm_user *)r)->name);
        run(w, "DELETE FROM hpf_users WHERE name = $1", 1,
            (const char *const[]){((const struct gm_user *)r)->name});
        return false;
    case GM_GROUP:
        if (update) {
            group_update(w, replacement);
            return true;
        }
        note(w, "group", ((const struct gm_group *)r)->name);
        run(w, "DELETE FROM hpf_groups WHERE name = $1", 1,
            (const char *const[]){((const struct gm_group *)r)->name});
        return false;
    case GM_MEMBER: {
        const struct gm_member *m = r;
        note(w, "member of group", m->group);
        run(w, "DELETE FROM hpf_members WHERE group_name = $1 AND user_name = $2", 2,
            (const char *const[]){m->group, m->user});
        return false;
    }
    case GM_SHARE: {
        if (update) {
            share_update(w, replacement);
            return true;
        }
        const struct gm_share *sh = r;
        note(w, "share on channel", sh->channel);
        run(w,
            "DELETE FROM hpf_shares WHERE from_user = $1 AND to_name = $2 AND "
            "to_is_group = $3 AND channel = $4",
            4, (const char *const[]){sh->from, sh->to, bool_text(sh->to_group), sh->channel});
        return false;
    }
    case GM_ACCEPT: {
        const struct gm_accept *a = r;
        note(w, "acceptance on channel", a->channel);
        run(w, "DELETE FROM hpf_accepts WHERE user_name = $1 AND from_user = $2 AND channel = $3",
            3, (const char *const[]){a->user, a->from, a->channel});
        return false;
    }
    case GM_DECLINE: {
        const struct gm_accept *a = r;
        note(w, "decline on channel", a->channel);
        run(w, "DELETE FROM hpf_declines WHERE user_name = $1 AND from_user = $2 AND channel = $3",
            3, (const char *const[]){a->user, a->from, a->channel});
        return false;
    }
    case GM_KEY: {
        const struct gm_key *k = r, *n = replacement;
        if (update && n->usable) {
            key_update(w, n);
            return true;
        }
        note(w, "authkey", k->ident);
        run(w, "DELETE FROM auth_keys WHERE identifier = $1", 1, (const char *const[]){k->ident});
        run(w, "DELETE FROM hpf_key_owners WHERE identifier = $1", 1,
            (const char *const[]){k->ident});
        return false;
    }
    }
    return false;
}

static size_t list_bytes(const GPtrArray *a)
{
    size_t n = 2;
    for (guint i = 0; i < a->len; i++)
        n += strlen(a->pdata[i]) * 2 + 3; /* quoted, escapes at worst doubling */
    return n;
}

static JsonArray *list_json(const GPtrArray *a)
{
    JsonArray *out = json_array_sized_new(a->len);
    for (guint i = 0; i < a->len; i++)
        json_array_add_string_element(out, a->pdata[i]);
    return out;
}

static void key_add(struct wctx *w, const struct gm_key *k)
{
    size_t bytes = 64 + 2 * (strlen(k->ident) + (k->secret ? strlen(k->secret) : 0)) +
                   list_bytes(k->publish) + list_bytes(k->subscribe);
    JsonObject *o = pg_batch_row(&w->batch, PB_KEYS, bytes);
    json_object_set_string_member(o, "identifier", k->ident);
    json_object_set_string_member(o, "secret", k->secret);
    json_object_set_array_member(o, "publish", list_json(k->publish));
    json_object_set_array_member(o, "subscribe", list_json(k->subscribe));
    if (k->owner && strcmp(k->owner, k->ident)) {
        o = pg_batch_row(&w->batch, PB_OWNERS, 32 + 2 * (strlen(k->ident) + strlen(k->owner)));
        json_object_set_string_member(o, "identifier", k->ident);
        json_object_set_string_member(o, "owner", k->owner);
    }
}

/* A row of n text columns (names[i] = values[i]) and optionally one boolean. */
static void row_add(struct wctx *w, enum pg_btable t, int n, const char *const *names,
                    const char *const *values, const char *bool_name, bool bool_value)
{
    size_t bytes = 32;
    for (int i = 0; i < n; i++)
        bytes += 8 + 2 * (values[i] ? strlen(values[i]) : 0);
    JsonObject *o = pg_batch_row(&w->batch, t, bytes);
    for (int i = 0; i < n; i++)
        json_object_set_string_member(o, names[i], values[i]);
    if (bool_name)
        json_object_set_boolean_member(o, bool_name, bool_value);
}

static void on_add(void *ud, enum gm_kind kind, const void *r)
{
    struct wctx *w = ud;
    switch (kind) {
    case GM_USER: {
        const struct gm_user *u = r;
        row_add(w, PB_USERS, 2, (const char *const[]){"name", "password"},
                (const char *const[]){u->name, u->password}, "admin", u->admin);
        break;
    }
    case GM_GROUP: {
        const struct gm_group *g = r;
        row_add(w, PB_GROUPS, 2, (const char *const[]){"name", "owner"},
                (const char *const[]){g->name, g->owner}, NULL, false);
        break;
    }
    case GM_MEMBER: {
        const struct gm_member *m = r;
        row_add(w, PB_MEMBERS, 2, (const char *const[]){"group_name", "user_name"},
                (const char *const[]){m->group, m->user}, NULL, false);
        break;
    }
    case GM_SHARE: {
        const struct gm_share *sh = r;
        row_add(w, PB_SHARES, 4, (const char *const[]){"from_user", "to_name", "channel", "type"},
                (const char *const[]){sh->from, sh->to, sh->channel, hpf_share_type_name(sh->type)},
                "to_is_group", sh->to_group);
        break;
    }
    case GM_ACCEPT: {
        const struct gm_accept *a = r;
        row_add(w, PB_ACCEPTS, 3, (const char *const[]){"user_name", "from_user", "channel"},
                (const char *const[]){a->user, a->from, a->channel}, NULL, false);
        break;
    }
    case GM_DECLINE: {
        const struct gm_accept *a = r;
        row_add(w, PB_DECLINES, 3, (const char *const[]){"user_name", "from_user", "channel"},
                (const char *const[]){a->user, a->from, a->channel}, NULL, false);
        break;
    }
    case GM_KEY:
        key_add(w, r);
        break;
    }
}

static const struct gm_diff_ops diff_ops = {.del = on_del, .add = on_add};

/* Validation and writes inside the open transaction; false when refused or failed. */
static bool apply_locked(struct wctx *w, const struct hpf_mutation *mutations, size_t n,
                         int *status, char *err, size_t err_len)
{
    struct pstore *s = w->s;
    note(w, "data_version", "lock");
    run(w, "SELECT value FROM hpf_meta WHERE key = 'data_version' FOR UPDATE", 0, NULL);
    if (w->failed)
        return false;
    note(w, "table", "auth_keys and hpf_*");
    struct gm_model *before = pg_load_model(s, &w->f);
    if (!before) {
        w->failed = true;
        return false;
    }
    struct gm_model *after = gm_model_copy(before);
    *status = gm_apply(after, mutations, n, err, err_len);
    if (*status == HPF_OK)
        gm_diff(before, after, &diff_ops, w);
    gm_model_free(before);
    gm_model_free(after);
    if (*status != HPF_OK)
        return false;
    note(w, "table", "hpf_key_owners");
    run(w,
        "DELETE FROM hpf_key_owners o WHERE NOT EXISTS "
        "(SELECT 1 FROM auth_keys k WHERE k.identifier = o.identifier)",
        0, NULL);
    if (!w->failed && !pg_batch_flush(s, &w->batch, &w->f, w->what, sizeof w->what))
        w->failed = true;
    for (size_t i = 0; i < n && !w->failed; i++) {
        note(w, "table", "hpf_audit");
        if (mutations[i].op == HPF_MUT_AUDIT && !pg_audit_insert(s, &mutations[i], &w->f))
            w->failed = true;
    }
    note(w, "table", "hpf_meta");
    run(w, "UPDATE hpf_meta SET value = value + 1 WHERE key = 'data_version'", 0, NULL);
    return !w->failed;
}

/* The transaction of apply(): refused, failed (nothing written) or committed. */
static int apply_txn(struct wctx *w, const struct hpf_mutation *mutations, size_t n, char *err,
                     size_t err_len)
{
    struct pstore *s = w->s;
    int status;
    g_strlcpy(w->what, "BEGIN", sizeof w->what);
    if (!pg_begin(s, NULL, &w->f)) {
        pg_rollback(s);
        status = pg_trouble(s, "apply", &w->f);
        return hpf_set_error(err, err_len, status, "apply: postgresql at %s: %s", s->where,
                             w->f.msg);
    }
    status = HPF_OK;
    if (!apply_locked(w, mutations, n, &status, err, err_len)) {
        pg_rollback(s);
        if (status != HPF_OK)
            return status; /* refused: err says why, nothing was written */
        if (w->f.status == HPF_ERR_UNAVAILABLE)
            pg_trouble(s, "apply", &w->f);
        return hpf_set_error(err, err_len, w->f.status,
                             "apply: postgresql at %s: %s: %s (nothing written)", s->where, w->what,
                             w->f.msg);
    }
    if (!pg_commit(s, &w->f)) {
        status = pg_trouble(s, "apply", &w->f);
        return hpf_set_error(err, err_len, status,
                             "apply: postgresql at %s: commit: %s (nothing written)", s->where,
                             w->f.msg);
    }
    pg_healthy(s);
    return HPF_OK;
}

int pg_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len)
{
    struct pstore *s = instance;
    int status = mut_check_batch(mutations, n, err, err_len);
    if (status != HPF_OK)
        return status;
    struct wctx w = {.s = s};
    pg_batch_init(&w.batch);
    status = apply_txn(&w, mutations, n, err, err_len);
    pg_batch_clear(&w.batch);
    return status;
}

/* Adds saturate at the largest bigint rather than fail the whole batch. */
#define ADD_SAT(c) c " = LEAST(h." c "::numeric + excluded." c ", 9223372036854775807)::bigint"

static const char counters_sql[] =
    "INSERT INTO hpf_counters AS h (ident, published_msgs, published_bytes, received_msgs, "
    "received_bytes) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ident) DO UPDATE "
    "SET " ADD_SAT("published_msgs") ", " ADD_SAT("published_bytes") ", " ADD_SAT(
        "received_msgs") ", " ADD_SAT("received_bytes");

static void count_text(char out[24], uint64_t v)
{
    g_snprintf(out, 24, "%" G_GUINT64_FORMAT, MIN(v, (uint64_t)G_MAXINT64));
}

static gint by_ident(gconstpointer a, gconstpointer b)
{
    const struct hpf_counters *x = *(const struct hpf_counters *const *)a;
    const struct hpf_counters *y = *(const struct hpf_counters *const *)b;
    return strcmp(x->ident, y->ident);
}

int pg_counters_add(void *instance, const struct hpf_counters *deltas, size_t n)
{
    struct pstore *s = instance;
    if (n == 0)
        return HPF_OK;
    if (!mut_counters_ok(deltas, n))
        return HPF_ERR_INVALID;
    /* Rows locked in ident order: nodes flushing the same idents cannot deadlock. */
    GPtrArray *order = g_ptr_array_sized_new((guint)n);
    for (size_t i = 0; i < n; i++)
        g_ptr_array_add(order, (gpointer)&deltas[i]);
    g_ptr_array_sort(order, by_ident);
    struct pg_fail f;
    bool ok = pg_begin(s, NULL, &f);
    for (guint i = 0; ok && i < order->len; i++) {
        const struct hpf_counters *d = order->pdata[i];
        char v[4][24];
        count_text(v[0], d->published_msgs);
        count_text(v[1], d->published_bytes);
        count_text(v[2], d->received_msgs);
        count_text(v[3], d->received_bytes);
        const char *params[] = {d->ident, v[0], v[1], v[2], v[3]};
        ok = pg_run(s, counters_sql, 5, params, &f);
    }
    g_ptr_array_unref(order);
    if (ok)
        ok = pg_commit(s, &f);
    if (!ok) {
        pg_rollback(s);
        return pg_trouble(s, "saving counters", &f);
    }
    pg_healthy(s);
    return HPF_OK;
}
