/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql writes: apply() and counters.
 *
 * apply() is one InnoDB transaction: it adds one to data_version, which
 * locks that row (so writers from every process and node queue up behind
 * each other), reads everything afresh, runs the whole batch against that
 * copy in memory (model.c: storage_sqlite's rules and messages), writes the
 * difference row by row with prepared statements and commits.  A batch that fails validation, a write the server refuses, or
 * a connection lost half-way leaves the database as it was.  A deadlock
 * with another writer is retried a few times.
 */
#include "mysql_store.h"
#include "../common/mutation_check.h"

#include <mysqld_error.h>
#include <string.h>

#define TXN_TRIES 3

/* One write: a static SQL text and its parameters (strings owned). */
struct wop {
    const char *sql;
    unsigned n;
    struct my_param p[MY_MAX_PARAMS];
};

static void wop_free(gpointer data)
{
    struct wop *w = data;
    for (unsigned i = 0; i < w->n; i++)
        g_free((char *)w->p[i].str);
    g_free(w);
}

/* kinds: 's' a string (copied; NULL stays NULL), 'n' a long long, 'b' a bool (int). */
static void push(GPtrArray *ops, const char *sql, const char *kinds, ...)
{
    struct wop *w = g_new0(struct wop, 1);
    w->sql = sql;
    va_list ap;
    va_start(ap, kinds);
    for (; *kinds && w->n < MY_MAX_PARAMS; kinds++, w->n++) {
        if (*kinds == 's')
            w->p[w->n] = MY_S(g_strdup(va_arg(ap, const char *)));
        else
            w->p[w->n] = MY_N(*kinds == 'b' ? (long long)va_arg(ap, int) : va_arg(ap, long long));
    }
    va_end(ap);
    g_ptr_array_add(ops, w);
}

#define SHARE_WHERE "from_user = ? AND to_name = ? AND to_is_group = ? AND channel = ?"
/* The column may be someone else's collation: match the exact bytes too. */
#define KEY_WHERE   "identifier = ? AND BINARY identifier = ?"

static void put_key(GPtrArray *ops, const struct gm_key *k, gboolean update)
{
    char *pub = my_format_channels(k->publish), *sub = my_format_channels(k->subscribe);
    const char *secret = k->secret ? k->secret : "";
    if (update)
        push(ops, "UPDATE auth_keys SET secret = ?, publish = ?, subscribe = ? WHERE " KEY_WHERE,
             "sssss", secret, pub, sub, k->ident, k->ident);
    else
        push(ops,
             "INSERT INTO auth_keys (identifier, secret, publish, subscribe) VALUES (?, ?, ?, ?)",
             "ssss", k->ident, secret, pub, sub);
    push(ops,
         "INSERT INTO hpf_key_owners (identifier, owner) VALUES (?, ?) "
         "ON DUPLICATE KEY UPDATE owner = VALUES(owner)",
         "ss", k->ident, k->owner);
    g_free(pub);
    g_free(sub);
}

/* Changes of a user, a share or a key are made in place; the rest are delete, then insert. */
static bool on_del(void *ud, enum gm_kind kind, const void *r, const void *replacement)
{
    GPtrArray *ops = ud;
    switch (kind) {
    case GM_USER: {
        const struct gm_user *u = r, *n = replacement;
        if (n)
            push(ops, "UPDATE hpf_users SET admin = ?, password = ? WHERE name = ?", "bss",
                 (int)n->admin, n->password, u->name);
        else
            push(ops, "DELETE FROM hpf_users WHERE name = ?", "s", u->name);
        return n != NULL;
    }
    case GM_GROUP:
        push(ops, "DELETE FROM hpf_groups WHERE name = ?", "s", ((const struct gm_group *)r)->name);
        return false;
    case GM_MEMBER: {
        const struct gm_member *m = r;
        push(ops, "DELETE FROM hpf_members WHERE group_name = ? AND user_name = ?", "ss", m->group,
             m->user);
        return false;
    }
    case GM_SHARE: {
        const struct gm_share *s = r, *n = replacement;
        if (n)
            push(ops, "UPDATE hpf_shares SET type = ? WHERE " SHARE_WHERE, "sssbs",
                 hpf_share_type_name(n->type), s->from, s->to, (int)s->to_group, s->channel);
        else
            push(ops, "DELETE FROM hpf_shares WHERE " SHARE_WHERE, "ssbs", s->from, s->to,
                 (int)s->to_group, s->channel);
        return n != NULL;
    }
    case GM_ACCEPT: {
        const struct gm_accept *a = r;
        push(ops, "DELETE FROM hpf_accepts WHERE user_name = ? AND from_user = ? AND channel = ?",
             "sss", a->user, a->from, a->channel);
        return false;
    }
    case GM_DECLINE: {
        const struct gm_accept *a = r;
        push(ops, "DELETE FROM hpf_declines WHERE user_name = ? AND from_user = ? AND channel = ?",
             "sss", a->user, a->from, a->channel);
        return false;
    }
    case GM_KEY: {
        const struct gm_key *k = r;
        if (replacement) {
            put_key(ops, replacement, TRUE);
            return true;
        }
        push(ops, "DELETE FROM auth_keys WHERE " KEY_WHERE, "ss", k->ident, k->ident);
        push(ops, "DELETE FROM hpf_key_owners WHERE identifier = ?", "s", k->ident);
        return false;
    }
    }
    return false;
}

static void on_add(void *ud, enum gm_kind kind, const void *r)
{
    GPtrArray *ops = ud;
    switch (kind) {
    case GM_USER: {
        const struct gm_user *u = r;
        push(ops, "INSERT INTO hpf_users (name, admin, password) VALUES (?, ?, ?)", "sbs", u->name,
             (int)u->admin, u->password);
        break;
    }
    case GM_GROUP: {
        const struct gm_group *g = r;
        push(ops, "INSERT INTO hpf_groups (name, owner) VALUES (?, ?)", "ss", g->name, g->owner);
        break;
    }
    case GM_MEMBER: {
        const struct gm_member *m = r;
        push(ops, "INSERT INTO hpf_members (group_name, user_name) VALUES (?, ?)", "ss", m->group,
             m->user);
        break;
    }
    case GM_SHARE: {
        const struct gm_share *s = r;
        push(ops,
             "INSERT INTO hpf_shares (from_user, to_name, to_is_group, channel, type) "
             "VALUES (?, ?, ?, ?, ?)",
             "ssbss", s->from, s->to, (int)s->to_group, s->channel, hpf_share_type_name(s->type));
        break;
    }
    case GM_ACCEPT: {
        const struct gm_accept *a = r;
        push(ops, "INSERT INTO hpf_accepts (user_name, from_user, channel) VALUES (?, ?, ?)", "sss",
             a->user, a->from, a->channel);
        break;
    }
    case GM_DECLINE: {
        const struct gm_accept *a = r;
        push(ops, "INSERT INTO hpf_declines (user_name, from_user, channel) VALUES (?, ?, ?)",
             "sss", a->user, a->from, a->channel);
        break;
    }
    case GM_KEY:
        put_key(ops, r, FALSE);
        break;
    }
}

static const struct gm_diff_ops diff_ops = {.del = on_del, .add = on_add};

struct apply_ctx {
    struct mystore *s;
    const struct hpf_mutation *mutations;
    size_t n;
    char *err;
    size_t err_len;
    int status; /* HPF_OK, or why validation refused the batch */
};

/*
 * The first statement of every apply: data_version moves on (the version
 * other nodes poll) and its row stays locked until the commit, so writers
 * queue here; recreated if someone deleted it.
 */
#define BUMP_SQL                                                     \
    "INSERT INTO hpf_meta (name, value) VALUES ('data_version', 1) " \
    "ON DUPLICATE KEY UPDATE value = value + 1"

/* Lock, fresh read, validation, and the list of writes; NULL when refused or failed. */
static GPtrArray *plan(struct apply_ctx *a)
{
    struct mystore *s = a->s;
    if (!my_exec(s, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", NULL, 0, NULL, NULL, NULL) ||
        !my_exec(s, "START TRANSACTION", NULL, 0, NULL, NULL, NULL) ||
        !my_exec(s, BUMP_SQL, NULL, 0, NULL, NULL, NULL))
        return NULL;
    struct gm_model *before = my_load_model(s);
    if (!before)
        return NULL;
    struct gm_model *after = gm_model_copy(before);
    GPtrArray *ops = NULL;
    a->status = gm_apply(after, a->mutations, a->n, a->err, a->err_len);
    if (a->status == HPF_OK) {
        ops = g_ptr_array_new_with_free_func(wop_free);
        gm_diff(before, after, &diff_ops, ops);
    }
    gm_model_free(before);
    gm_model_free(after);
    return ops;
}

/* One attempt; FALSE when the server failed (last_error says why). */
static gboolean attempt(struct apply_ctx *a)
{
    struct mystore *s = a->s;
    a->status = HPF_OK;
    GPtrArray *ops = plan(a);
    if (!ops)
        return FALSE;
    gboolean ok = TRUE;
    for (guint i = 0; ok && i < ops->len; i++) {
        const struct wop *w = ops->pdata[i];
        ok = my_exec(s, w->sql, w->p, w->n, NULL, NULL, NULL);
    }
    g_ptr_array_unref(ops);
    for (size_t i = 0; ok && i < a->n; i++)
        if (a->mutations[i].op == HPF_MUT_AUDIT)
            ok = my_audit_insert(s, &a->mutations[i]);
    return ok && my_exec(s, "COMMIT", NULL, 0, NULL, NULL, NULL);
}

int my_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len)
{
    struct mystore *s = instance;
    int status = mut_check_batch(mutations, n, err, err_len);
    if (status != HPF_OK)
        return status;
    struct apply_ctx a = {.s = s, .mutations = mutations, .n = n, .err = err, .err_len = err_len};
    for (int i = 0; i < TXN_TRIES; i++) {
        if (attempt(&a)) {
            my_healthy(s);
            return HPF_OK;
        }
        my_rollback(s);
        if (a.status != HPF_OK)
            return a.status; /* refused: err says why, nothing was written */
        if (!my_retryable(s))
            break;
    }
    if (s->last_errno == ER_DUP_ENTRY)
        return hpf_set_error(err, err_len, HPF_ERR_EXISTS,
                             "apply: mysql at %s: %s (the table's collation treats two names as "
                             "one; nothing written)",
                             s->where, s->last_error);
    status = my_trouble(s, "apply");
    return hpf_set_error(err, err_len, status, "apply: mysql at %s: %s (nothing written)", s->where,
                         s->last_error);
}

static long long clamp64(uint64_t v) { return v > (uint64_t)INT64_MAX ? INT64_MAX : (long long)v; }

static gboolean add_one(struct mystore *s, const struct hpf_counters *d)
{
    struct my_param p[5] = {MY_S(d->ident), MY_N(clamp64(d->published_msgs)),
                            MY_N(clamp64(d->published_bytes)), MY_N(clamp64(d->received_msgs)),
                            MY_N(clamp64(d->received_bytes))};
    return my_exec(s,
                   "INSERT INTO hpf_counters (ident, published_msgs, published_bytes, "
                   "received_msgs, received_bytes) VALUES (?, ?, ?, ?, ?) "
                   "ON DUPLICATE KEY UPDATE "
                   "published_msgs = published_msgs + VALUES(published_msgs), "
                   "published_bytes = published_bytes + VALUES(published_bytes), "
                   "received_msgs = received_msgs + VALUES(received_msgs), "
                   "received_bytes = received_bytes + VALUES(received_bytes)",
                   p, 5, NULL, NULL, NULL);
}

/* All deltas in one transaction: a failure adds none of them. */
int my_counters_add(void *instance, const struct hpf_counters *deltas, size_t n)
{
    struct mystore *s = instance;
    if (n == 0)
        return HPF_OK;
    if (!mut_counters_ok(deltas, n))
        return HPF_ERR_INVALID;
    gboolean ok = my_exec(s, "START TRANSACTION", NULL, 0, NULL, NULL, NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = add_one(s, &deltas[i]);
    ok = ok && my_exec(s, "COMMIT", NULL, 0, NULL, NULL, NULL);
    if (!ok) {
        my_rollback(s);
        return my_trouble(s, "saving counters");
    }
    my_healthy(s);
    return HPF_OK;
}
