/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The storage data model and apply()'s rules; see model.h.
 *
 * The checks that need no stored data are mut_check()'s, shared with the
 * other backends; the ones against the model, their order and their
 * messages follow storage_sqlite's apply.c exactly: a batch that fails there
 * fails here with the same status and the same one-line reason.  References
 * are checked against user and group records only (an authkey owner without
 * a user record is no user for a mutation, as in SQLite).
 */
#include "model.h"
#include "mutation_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- records ---- */

static void user_free(gpointer p)
{
    struct gm_user *u = p;
    g_free(u->name);
    g_free(u->password);
    g_free(u);
}

static void group_free(gpointer p)
{
    struct gm_group *g = p;
    g_free(g->name);
    g_free(g->owner);
    g_free(g);
}

static void member_free(gpointer p)
{
    struct gm_member *mb = p;
    g_free(mb->group);
    g_free(mb->user);
    g_free(mb);
}

static void share_free(gpointer p)
{
    struct gm_share *s = p;
    g_free(s->from);
    g_free(s->to);
    g_free(s->channel);
    g_free(s);
}

static void accept_free(gpointer p)
{
    struct gm_accept *a = p;
    g_free(a->user);
    g_free(a->from);
    g_free(a->channel);
    g_free(a);
}

static GPtrArray *str_list(const char *const *items, size_t n)
{
    GPtrArray *a = g_ptr_array_new_full((guint)n, g_free);
    for (size_t i = 0; i < n; i++)
        g_ptr_array_add(a, g_strdup(items[i] ? items[i] : ""));
    return a;
}

struct gm_key *gm_key_new(const char *ident, const char *owner, const char *secret,
                          const char *const *publish, size_t n_publish,
                          const char *const *subscribe, size_t n_subscribe)
{
    struct gm_key *k = g_new0(struct gm_key, 1);
    k->ident = g_strdup(ident);
    k->owner = g_strdup(mut_key_owner(owner, ident));
    k->secret = g_strdup(secret);
    k->publish = str_list(publish, publish ? n_publish : 0);
    k->subscribe = str_list(subscribe, subscribe ? n_subscribe : 0);
    k->usable = secret != NULL;
    return k;
}

void gm_key_free(struct gm_model *m, struct gm_key *k)
{
    if (!k)
        return;
    if (k->raw && m->raw_unref)
        m->raw_unref(k->raw);
    g_free(k->ident);
    g_free(k->owner);
    g_free(k->secret);
    g_ptr_array_unref(k->publish);
    g_ptr_array_unref(k->subscribe);
    g_free(k);
}

/* ---- the edge sets: records hashed and compared by their identifying fields ---- */

static guint hash_mix(guint h, const char *s) { return h * 31u + g_str_hash(s); }

static guint member_hash(gconstpointer p)
{
    const struct gm_member *mb = p;
    return hash_mix(g_str_hash(mb->group), mb->user);
}

static gboolean member_equal(gconstpointer a, gconstpointer b)
{
    const struct gm_member *x = a, *y = b;
    return !strcmp(x->group, y->group) && !strcmp(x->user, y->user);
}

static guint share_hash(gconstpointer p)
{
    const struct gm_share *s = p;
    return hash_mix(hash_mix(g_str_hash(s->from), s->to), s->channel) * 2u + s->to_group;
}

static gboolean share_equal(gconstpointer a, gconstpointer b)
{
    const struct gm_share *x = a, *y = b;
    return x->to_group == y->to_group && !strcmp(x->from, y->from) && !strcmp(x->to, y->to) &&
           !strcmp(x->channel, y->channel);
}

static guint accept_hash(gconstpointer p)
{
    const struct gm_accept *a = p;
    return hash_mix(hash_mix(g_str_hash(a->user), a->from), a->channel);
}

static gboolean accept_equal(gconstpointer a, gconstpointer b)
{
    const struct gm_accept *x = a, *y = b;
    return !strcmp(x->user, y->user) && !strcmp(x->from, y->from) &&
           !strcmp(x->channel, y->channel);
}

/* ---- the model ---- */

struct gm_model *gm_model_new(gpointer (*raw_ref)(gpointer), GDestroyNotify raw_unref)
{
    struct gm_model *m = g_new0(struct gm_model, 1);
    m->keys = g_ptr_array_new();
    m->users = g_ptr_array_new_with_free_func(user_free);
    m->groups = g_ptr_array_new_with_free_func(group_free);
    m->members = g_ptr_array_new_with_free_func(member_free);
    m->shares = g_ptr_array_new_with_free_func(share_free);
    m->accepts = g_ptr_array_new_with_free_func(accept_free);
    m->declines = g_ptr_array_new_with_free_func(accept_free);
    m->key_by_ident = g_hash_table_new(g_str_hash, g_str_equal);
    m->user_by_name = g_hash_table_new(g_str_hash, g_str_equal);
    m->group_by_name = g_hash_table_new(g_str_hash, g_str_equal);
    m->member_set = g_hash_table_new(member_hash, member_equal);
    m->share_set = g_hash_table_new(share_hash, share_equal);
    m->accept_set = g_hash_table_new(accept_hash, accept_equal);
    m->decline_set = g_hash_table_new(accept_hash, accept_equal);
    m->raw_ref = raw_ref;
    m->raw_unref = raw_unref;
    return m;
}

void gm_model_free(struct gm_model *m)
{
    if (!m)
        return;
    g_hash_table_destroy(m->key_by_ident);
    g_hash_table_destroy(m->user_by_name);
    g_hash_table_destroy(m->group_by_name);
    g_hash_table_destroy(m->member_set);
    g_hash_table_destroy(m->share_set);
    g_hash_table_destroy(m->accept_set);
    g_hash_table_destroy(m->decline_set);
    for (guint i = 0; i < m->keys->len; i++)
        gm_key_free(m, m->keys->pdata[i]);
    g_ptr_array_unref(m->keys);
    g_ptr_array_unref(m->users);
    g_ptr_array_unref(m->groups);
    g_ptr_array_unref(m->members);
    g_ptr_array_unref(m->shares);
    g_ptr_array_unref(m->accepts);
    g_ptr_array_unref(m->declines);
    g_free(m);
}

bool gm_add_user(struct gm_model *m, const char *name, bool admin)
{
    if (g_hash_table_contains(m->user_by_name, name))
        return false;
    struct gm_user *u = g_new0(struct gm_user, 1);
    u->name = g_strdup(name);
    u->admin = admin;
    g_ptr_array_add(m->users, u);
    g_hash_table_insert(m->user_by_name, u->name, u);
    return true;
}

bool gm_set_password(struct gm_model *m, const char *name, const char *hash)
{
    struct gm_user *u = g_hash_table_lookup(m->user_by_name, name);
    if (!u)
        return false;
    g_free(u->password);
    u->password = g_strdup(hash);
    return true;
}

bool gm_add_group(struct gm_model *m, const char *name, const char *owner)
{
    if (g_hash_table_contains(m->group_by_name, name))
        return false;
    struct gm_group *g = g_new0(struct gm_group, 1);
    g->name = g_strdup(name);
    g->owner = g_strdup(owner);
    g_ptr_array_add(m->groups, g);
    g_hash_table_insert(m->group_by_name, g->name, g);
    return true;
}

static struct gm_member *find_member(const struct gm_model *m, const char *group, const char *user)
{
    const struct gm_member probe = {.group = (char *)group, .user = (char *)user};
    return g_hash_table_lookup(m->member_set, &probe);
}

bool gm_is_member(const struct gm_model *m, const char *group, const char *user)
{
    return find_member(m, group, user) != NULL;
}

bool gm_add_member(struct gm_model *m, const char *group, const char *user)
{
    if (gm_is_member(m, group, user))
        return false;
    struct gm_member *mb = g_new0(struct gm_member, 1);
    mb->group = g_strdup(group);
    mb->user = g_strdup(user);
    g_ptr_array_add(m->members, mb);
    g_hash_table_add(m->member_set, mb);
    return true;
}

static struct gm_share *find_share(const struct gm_model *m, const char *from, const char *to,
                                   bool to_group, const char *channel)
{
    const struct gm_share probe = {
        .from = (char *)from, .to = (char *)to, .to_group = to_group, .channel = (char *)channel};
    return g_hash_table_lookup(m->share_set, &probe);
}

bool gm_add_share(struct gm_model *m, const char *from, const char *to, bool to_group,
                  const char *channel, int type)
{
    if (find_share(m, from, to, to_group, channel))
        return false;
    struct gm_share *s = g_new0(struct gm_share, 1);
    s->from = g_strdup(from);
    s->to = g_strdup(to);
    s->to_group = to_group;
    s->channel = g_strdup(channel);
    s->type = type == HPF_SHARE_ALL ? HPF_SHARE_ALL : HPF_SHARE_SHARES;
    g_ptr_array_add(m->shares, s);
    g_hash_table_add(m->share_set, s);
    return true;
}

static struct gm_accept *find_in(GHashTable *set, const char *user, const char *from,
                                 const char *channel)
{
    const struct gm_accept probe = {
        .user = (char *)user, .from = (char *)from, .channel = (char *)channel};
    return g_hash_table_lookup(set, &probe);
}

static struct gm_accept *find_accept(const struct gm_model *m, const char *user, const char *from,
                                     const char *channel)
{
    return find_in(m->accept_set, user, from, channel);
}

static struct gm_accept *find_decline(const struct gm_model *m, const char *user, const char *from,
                                      const char *channel)
{
    return find_in(m->decline_set, user, from, channel);
}

static void add_answer(GPtrArray *a, GHashTable *set, const char *user, const char *from,
                       const char *channel)
{
    struct gm_accept *r = g_new0(struct gm_accept, 1);
    r->user = g_strdup(user);
    r->from = g_strdup(from);
    r->channel = g_strdup(channel);
    g_ptr_array_add(a, r);
    g_hash_table_add(set, r);
}

bool gm_add_accept(struct gm_model *m, const char *user, const char *from, const char *channel)
{
    if (find_accept(m, user, from, channel))
        return false;
    add_answer(m->accepts, m->accept_set, user, from, channel);
    return true;
}

bool gm_add_decline(struct gm_model *m, const char *user, const char *from, const char *channel)
{
    if (find_decline(m, user, from, channel) || find_accept(m, user, from, channel))
        return false;
    add_answer(m->declines, m->decline_set, user, from, channel);
    return true;
}

bool gm_add_key(struct gm_model *m, struct gm_key *k)
{
    if (g_hash_table_contains(m->key_by_ident, k->ident)) {
        gm_key_free(m, k);
        return false;
    }
    g_ptr_array_add(m->keys, k);
    g_hash_table_insert(m->key_by_ident, k->ident, k);
    return true;
}

const struct gm_key *gm_find_key(const struct gm_model *m, const char *ident)
{
    return g_hash_table_lookup(m->key_by_ident, ident);
}

static struct gm_key *key_copy(const struct gm_model *m, const struct gm_key *k)
{
    struct gm_key *c = g_new0(struct gm_key, 1);
    c->ident = g_strdup(k->ident);
    c->owner = g_strdup(k->owner);
    c->secret = g_strdup(k->secret);
    c->publish = str_list((const char *const *)k->publish->pdata, k->publish->len);
    c->subscribe = str_list((const char *const *)k->subscribe->pdata, k->subscribe->len);
    c->usable = k->usable;
    c->raw = k->raw && m->raw_ref ? m->raw_ref(k->raw) : NULL;
    return c;
}

struct gm_model *gm_model_copy(const struct gm_model *m)
{
    struct gm_model *c = gm_model_new(m->raw_ref, m->raw_unref);
    for (guint i = 0; i < m->keys->len; i++)
        gm_add_key(c, key_copy(c, m->keys->pdata[i]));
    for (guint i = 0; i < m->users->len; i++) {
        const struct gm_user *u = m->users->pdata[i];
        gm_add_user(c, u->name, u->admin);
        gm_set_password(c, u->name, u->password);
    }
    for (guint i = 0; i < m->groups->len; i++) {
        const struct gm_group *g = m->groups->pdata[i];
        gm_add_group(c, g->name, g->owner);
    }
    for (guint i = 0; i < m->members->len; i++) {
        const struct gm_member *mb = m->members->pdata[i];
        gm_add_member(c, mb->group, mb->user);
    }
    for (guint i = 0; i < m->shares->len; i++) {
        const struct gm_share *s = m->shares->pdata[i];
        gm_add_share(c, s->from, s->to, s->to_group, s->channel, s->type);
    }
    for (guint i = 0; i < m->accepts->len; i++) {
        const struct gm_accept *a = m->accepts->pdata[i];
        gm_add_accept(c, a->user, a->from, a->channel);
    }
    for (guint i = 0; i < m->declines->len; i++) {
        const struct gm_accept *a = m->declines->pdata[i];
        gm_add_decline(c, a->user, a->from, a->channel);
    }
    return c;
}

/* ---- removal helpers (arrays keep their order) ---- */

typedef bool (*match_fn)(const void *record, const void *arg);

/* set: the array's edge set (see gm_model), which holds exactly its records. */
static void remove_where(GPtrArray *a, GHashTable *set, match_fn match, const void *arg)
{
    for (guint i = a->len; i-- > 0;)
        if (match(a->pdata[i], arg)) {
            g_hash_table_remove(set, a->pdata[i]);
            g_ptr_array_remove_index(a, i);
        }
}

/* One record, found in the set, out of both. */
static void remove_record(GPtrArray *a, GHashTable *set, gpointer record)
{
    guint i;
    g_hash_table_remove(set, record);
    if (g_ptr_array_find(a, record, &i))
        g_ptr_array_remove_index(a, i);
}

static void remove_user(struct gm_model *m, const char *name)
{
    struct gm_user *u = g_hash_table_lookup(m->user_by_name, name);
    if (!u)
        return;
    g_hash_table_remove(m->user_by_name, name);
    g_ptr_array_remove(m->users, u);
}

static void remove_group(struct gm_model *m, const char *name)
{
    struct gm_group *g = g_hash_table_lookup(m->group_by_name, name);
    if (!g)
        return;
    g_hash_table_remove(m->group_by_name, name);
    g_ptr_array_remove(m->groups, g);
}

static void remove_key_at(struct gm_model *m, guint i)
{
    struct gm_key *k = m->keys->pdata[i];
    g_hash_table_remove(m->key_by_ident, k->ident);
    g_ptr_array_remove_index(m->keys, i);
    gm_key_free(m, k);
}

/* ---- apply ---- */

struct batch {
    struct gm_model *m;
    char *err;
    size_t err_len;
};

static int fail(struct batch *b, int status, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int fail(struct batch *b, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hpf_set_errorv(b->err, b->err_len, status, fmt, ap);
    va_end(ap);
    return status;
}

#define CHECK(expr)                  \
    do {                             \
        int check_status_ = (expr);  \
        if (check_status_ != HPF_OK) \
            return check_status_;    \
    } while (0)

static int require_user(struct batch *b, const char *user)
{
    if (!g_hash_table_contains(b->m->user_by_name, user))
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' not found", user);
    return HPF_OK;
}

static int require_group(struct batch *b, const char *group)
{
    if (!g_hash_table_contains(b->m->group_by_name, group))
        return fail(b, HPF_ERR_NOTFOUND, "group '%s' not found", group);
    return HPF_OK;
}

static int user_add(struct batch *b, const struct hpf_mutation *mu)
{
    if (g_hash_table_contains(b->m->user_by_name, mu->user))
        return fail(b, HPF_ERR_EXISTS, "user '%s' already exists", mu->user);
    gm_add_user(b->m, mu->user, false);
    return HPF_OK;
}

static bool member_in(const void *r, const void *arg)
{
    return g_hash_table_contains((GHashTable *)arg, ((const struct gm_member *)r)->group);
}

static bool share_to_group_in(const void *r, const void *arg)
{
    const struct gm_share *s = r;
    return s->to_group && g_hash_table_contains((GHashTable *)arg, s->to);
}

static bool member_is_user(const void *r, const void *arg)
{
    return !strcmp(((const struct gm_member *)r)->user, arg);
}

static bool share_touches_user(const void *r, const void *arg)
{
    const struct gm_share *s = r;
    return !strcmp(s->from, arg) || (!s->to_group && !strcmp(s->to, arg));
}

static bool accept_touches_user(const void *r, const void *arg)
{
    const struct gm_accept *a = r;
    return !strcmp(a->user, arg) || !strcmp(a->from, arg);
}

static int user_del(struct batch *b, const struct hpf_mutation *mu)
{
    struct gm_model *m = b->m;
    CHECK(require_user(b, mu->user));
    /* The groups it owns go, and with them their members and the shares to them. */
    GHashTable *owned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < m->groups->len; i++) {
        const struct gm_group *g = m->groups->pdata[i];
        if (!strcmp(g->owner, mu->user))
            g_hash_table_add(owned, g_strdup(g->name));
    }
    remove_where(m->members, m->member_set, member_in, owned);
    remove_where(m->shares, m->share_set, share_to_group_in, owned);
    GHashTableIter it;
    gpointer name;
    g_hash_table_iter_init(&it, owned);
    while (g_hash_table_iter_next(&it, &name, NULL))
        remove_group(m, name);
    g_hash_table_destroy(owned);

    remove_where(m->members, m->member_set, member_is_user, mu->user);
    remove_where(m->shares, m->share_set, share_touches_user, mu->user);
    remove_where(m->accepts, m->accept_set, accept_touches_user, mu->user);
    remove_where(m->declines, m->decline_set, accept_touches_user, mu->user);
    /* Effective owner: an authkey without one belongs to its ident. */
    for (guint i = m->keys->len; i-- > 0;)
        if (!strcmp(((struct gm_key *)m->keys->pdata[i])->owner, mu->user))
            remove_key_at(m, i);
    remove_user(m, mu->user);
    return HPF_OK;
}

static int user_set_admin(struct batch *b, const struct hpf_mutation *mu)
{
    struct gm_user *u = g_hash_table_lookup(b->m->user_by_name, mu->user);
    if (!u)
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' not found", mu->user);
    u->admin = mu->flag;
    return HPF_OK;
}

static int user_set_password(struct batch *b, const struct hpf_mutation *mu)
{
    if (!gm_set_password(b->m, mu->user, mu->password))
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' not found", mu->user);
    return HPF_OK;
}

static int group_add(struct batch *b, const struct hpf_mutation *mu)
{
    if (g_hash_table_contains(b->m->group_by_name, mu->group))
        return fail(b, HPF_ERR_EXISTS, "group '%s' already exists", mu->group);
    CHECK(require_user(b, mu->user));
    gm_add_group(b->m, mu->group, mu->user);
    return HPF_OK;
}

static bool member_of_group(const void *r, const void *arg)
{
    return !strcmp(((const struct gm_member *)r)->group, arg);
}

static bool share_to_group(const void *r, const void *arg)
{
    const struct gm_share *s = r;
    return s->to_group && !strcmp(s->to, arg);
}

static int group_del(struct batch *b, const struct hpf_mutation *mu)
{
    CHECK(require_group(b, mu->group));
    remove_where(b->m->members, b->m->member_set, member_of_group, mu->group);
    remove_where(b->m->shares, b->m->share_set, share_to_group, mu->group);
    remove_group(b->m, mu->group);
    return HPF_OK;
}

static int member_add(struct batch *b, const struct hpf_mutation *mu)
{
    CHECK(require_group(b, mu->group));
    CHECK(require_user(b, mu->user));
    if (gm_is_member(b->m, mu->group, mu->user))
        return fail(b, HPF_ERR_EXISTS, "user '%s' is already a member of group '%s'", mu->user,
                    mu->group);
    gm_add_member(b->m, mu->group, mu->user);
    return HPF_OK;
}

static int member_del(struct batch *b, const struct hpf_mutation *mu)
{
    struct gm_member *mb = find_member(b->m, mu->group, mu->user);
    if (mb) {
        remove_record(b->m->members, b->m->member_set, mb);
        return HPF_OK;
    }
    return fail(b, HPF_ERR_NOTFOUND, "user '%s' is not a member of group '%s'", mu->user,
                mu->group);
}

static const char *target_kind(const struct hpf_mutation *mu)
{
    return mu->target_is_group ? "group" : "user";
}

static int share_add(struct batch *b, const struct hpf_mutation *mu)
{
    CHECK(require_user(b, mu->user));
    CHECK(mu->target_is_group ? require_group(b, mu->target) : require_user(b, mu->target));
    /* An existing edge keeps its place and takes the new type. */
    struct gm_share *s = find_share(b->m, mu->user, mu->target, mu->target_is_group, mu->channel);
    if (s)
        s->type = mu->share_type;
    else
        gm_add_share(b->m, mu->user, mu->target, mu->target_is_group, mu->channel, mu->share_type);
    return HPF_OK;
}

static int share_del(struct batch *b, const struct hpf_mutation *mu)
{
    struct gm_share *s = find_share(b->m, mu->user, mu->target, mu->target_is_group, mu->channel);
    if (!s)
        return fail(b, HPF_ERR_NOTFOUND, "no share from '%s' to %s '%s' on '%s'", mu->user,
                    target_kind(mu), mu->target, mu->channel);
    remove_record(b->m->shares, b->m->share_set, s);
    return HPF_OK;
}

static int accept_add(struct batch *b, const struct hpf_mutation *mu)
{
    CHECK(require_user(b, mu->user));
    CHECK(require_user(b, mu->target));
    if (find_accept(b->m, mu->user, mu->target, mu->channel))
        return fail(b, HPF_ERR_EXISTS, "user '%s' already accepted '%s' on '%s'", mu->user,
                    mu->target, mu->channel);
    struct gm_accept *d = find_decline(b->m, mu->user, mu->target, mu->channel);
    if (d)
        remove_record(b->m->declines, b->m->decline_set, d);
    gm_add_accept(b->m, mu->user, mu->target, mu->channel);
    return HPF_OK;
}

static int accept_del(struct batch *b, const struct hpf_mutation *mu)
{
    struct gm_accept *a = find_accept(b->m, mu->user, mu->target, mu->channel);
    if (!a)
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' has not accepted '%s' on '%s'", mu->user,
                    mu->target, mu->channel);
    remove_record(b->m->accepts, b->m->accept_set, a);
    return HPF_OK;
}

static int decline_add(struct batch *b, const struct hpf_mutation *mu)
{
    CHECK(require_user(b, mu->user));
    CHECK(require_user(b, mu->target));
    if (find_decline(b->m, mu->user, mu->target, mu->channel))
        return fail(b, HPF_ERR_EXISTS, "user '%s' already declined '%s' on '%s'", mu->user,
                    mu->target, mu->channel);
    struct gm_accept *a = find_accept(b->m, mu->user, mu->target, mu->channel);
    if (a)
        remove_record(b->m->accepts, b->m->accept_set, a);
    gm_add_decline(b->m, mu->user, mu->target, mu->channel);
    return HPF_OK;
}

static int decline_del(struct batch *b, const struct hpf_mutation *mu)
{
    struct gm_accept *d = find_decline(b->m, mu->user, mu->target, mu->channel);
    if (!d)
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' has not declined '%s' on '%s'", mu->user,
                    mu->target, mu->channel);
    remove_record(b->m->declines, b->m->decline_set, d);
    return HPF_OK;
}

static int authkey_add(struct batch *b, const struct hpf_mutation *mu)
{
    const struct hpf_authkey *k = mu->authkey;
    const char *owner = mut_key_owner(k->owner, k->ident);
    CHECK(require_user(b, owner));

    struct gm_key *nk = gm_key_new(k->ident, owner, k->secret, k->publish, k->n_publish,
                                   k->subscribe, k->n_subscribe);
    struct gm_key *old = g_hash_table_lookup(b->m->key_by_ident, k->ident);
    if (old) {
        if (!mu->replace) {
            gm_key_free(b->m, nk);
            return fail(b, HPF_ERR_EXISTS, "authkey '%s' already exists", k->ident);
        }
        /* In place: a replaced key keeps its position in the file. */
        guint i;
        g_ptr_array_find(b->m->keys, old, &i);
        b->m->keys->pdata[i] = nk;
        g_hash_table_replace(b->m->key_by_ident, nk->ident, nk);
        gm_key_free(b->m, old);
        return HPF_OK;
    }
    gm_add_key(b->m, nk);
    return HPF_OK;
}

static int authkey_del(struct batch *b, const struct hpf_mutation *mu)
{
    const char *ident = mu->authkey->ident;
    struct gm_key *k = g_hash_table_lookup(b->m->key_by_ident, ident);
    if (!k)
        return fail(b, HPF_ERR_NOTFOUND, "authkey '%s' not found", ident);
    guint i;
    g_ptr_array_find(b->m->keys, k, &i);
    remove_key_at(b->m, i);
    return HPF_OK;
}

/* Graph and authkeys; counters are not data to import. */
static int clear_all(struct batch *b, const struct hpf_mutation *mu)
{
    (void)mu;
    struct gm_model *m = b->m;
    g_hash_table_remove_all(m->accept_set);
    g_ptr_array_set_size(m->accepts, 0);
    g_hash_table_remove_all(m->decline_set);
    g_ptr_array_set_size(m->declines, 0);
    g_hash_table_remove_all(m->share_set);
    g_ptr_array_set_size(m->shares, 0);
    g_hash_table_remove_all(m->member_set);
    g_ptr_array_set_size(m->members, 0);
    g_hash_table_remove_all(m->group_by_name);
    g_ptr_array_set_size(m->groups, 0);
    g_hash_table_remove_all(m->user_by_name);
    g_ptr_array_set_size(m->users, 0);
    while (m->keys->len > 0)
        remove_key_at(m, m->keys->len - 1);
    return HPF_OK;
}

/* The model holds no audit trail: each backend stores the record itself. */
static int audit_noop(struct batch *b, const struct hpf_mutation *mu)
{
    (void)b;
    (void)mu;
    return HPF_OK;
}

/* By op; mut_check() has vouched for the op before one is called. */
static int (*const op_fn[MUT_OP_COUNT])(struct batch *, const struct hpf_mutation *) = {
    [HPF_MUT_USER_ADD] = user_add,
    [HPF_MUT_USER_DEL] = user_del,
    [HPF_MUT_GROUP_ADD] = group_add,
    [HPF_MUT_GROUP_DEL] = group_del,
    [HPF_MUT_MEMBER_ADD] = member_add,
    [HPF_MUT_MEMBER_DEL] = member_del,
    [HPF_MUT_SHARE_ADD] = share_add,
    [HPF_MUT_SHARE_DEL] = share_del,
    [HPF_MUT_ACCEPT_ADD] = accept_add,
    [HPF_MUT_ACCEPT_DEL] = accept_del,
    [HPF_MUT_AUTHKEY_ADD] = authkey_add,
    [HPF_MUT_AUTHKEY_DEL] = authkey_del,
    [HPF_MUT_CLEAR] = clear_all,
    [HPF_MUT_USER_SET_ADMIN] = user_set_admin,
    [HPF_MUT_USER_SET_PASSWORD] = user_set_password,
    [HPF_MUT_DECLINE_ADD] = decline_add,
    [HPF_MUT_DECLINE_DEL] = decline_del,
    [HPF_MUT_AUDIT] = audit_noop,
};

int gm_apply(struct gm_model *m, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len)
{
    struct batch b = {.m = m, .err = err, .err_len = err_len};
    int status = mut_check_batch(mutations, n, err, err_len);
    for (size_t i = 0; i < n && status == HPF_OK; i++) {
        status = mut_check(&mutations[i], err, err_len);
        if (status == HPF_OK)
            status = op_fn[mutations[i].op](&b, &mutations[i]);
    }
    return status;
}

/* ---- reading it out ---- */

void gm_emit_key(const struct gm_key *k, hpf_authkey_cb cb, void *ud)
{
    struct hpf_authkey key = {
        .ident = k->ident,
        .owner = k->owner,
        .secret = k->secret,
        .publish = (const char *const *)k->publish->pdata,
        .n_publish = k->publish->len,
        .subscribe = (const char *const *)k->subscribe->pdata,
        .n_subscribe = k->subscribe->len,
    };
    cb(ud, &key);
}

void gm_visit(const struct gm_model *m, const struct hpf_snapshot_visitor *v, void *ud)
{
    for (guint i = 0; v->user && i < m->users->len; i++) {
        const struct gm_user *u = m->users->pdata[i];
        v->user(ud, u->name, u->admin);
        if (v->user_password && u->password)
            v->user_password(ud, u->name, u->password);
    }
    for (guint i = 0; v->group && i < m->groups->len; i++) {
        const struct gm_group *g = m->groups->pdata[i];
        v->group(ud, g->name, g->owner);
    }
    for (guint i = 0; v->member && i < m->members->len; i++) {
        const struct gm_member *mb = m->members->pdata[i];
        v->member(ud, mb->group, mb->user);
    }
    for (guint i = 0; v->share && i < m->shares->len; i++) {
        const struct gm_share *s = m->shares->pdata[i];
        v->share(ud, s->from, s->to, s->to_group, s->channel, s->type);
    }
    for (guint i = 0; v->accept && i < m->accepts->len; i++) {
        const struct gm_accept *a = m->accepts->pdata[i];
        v->accept(ud, a->user, a->from, a->channel);
    }
    for (guint i = 0; v->decline && i < m->declines->len; i++) {
        const struct gm_accept *a = m->declines->pdata[i];
        v->decline(ud, a->user, a->from, a->channel);
    }
    for (guint i = 0; v->authkey && i < m->keys->len; i++) {
        const struct gm_key *k = m->keys->pdata[i];
        if (k->usable)
            gm_emit_key(k, v->authkey, ud);
    }
}

/* Each string with its terminating NUL: no two sequences feed the same bytes. */
static void feed(GChecksum *sum, const char *s)
{
    g_checksum_update(sum, (const guchar *)(s ? s : ""), (gssize)strlen(s ? s : "") + 1);
}

static void feed_int(GChecksum *sum, gint64 v)
{
    char buf[32];
    g_snprintf(buf, sizeof buf, "%" G_GINT64_FORMAT, v);
    feed(sum, buf);
}

void gm_digest(const struct gm_model *m, GChecksum *sum)
{
    feed(sum, "keys");
    for (guint i = 0; i < m->keys->len; i++) {
        const struct gm_key *k = m->keys->pdata[i];
        feed(sum, k->ident);
        feed_int(sum, k->usable);
        feed(sum, k->owner);
        feed(sum, k->secret);
        feed_int(sum, k->publish->len);
        for (guint j = 0; j < k->publish->len; j++)
            feed(sum, k->publish->pdata[j]);
        feed_int(sum, k->subscribe->len);
        for (guint j = 0; j < k->subscribe->len; j++)
            feed(sum, k->subscribe->pdata[j]);
    }
    feed(sum, "users");
    for (guint i = 0; i < m->users->len; i++) {
        const struct gm_user *u = m->users->pdata[i];
        feed(sum, u->name);
        feed_int(sum, u->admin);
        feed(sum, u->password ? u->password : "");
    }
    feed(sum, "groups");
    for (guint i = 0; i < m->groups->len; i++) {
        const struct gm_group *g = m->groups->pdata[i];
        feed(sum, g->name);
        feed(sum, g->owner);
    }
    feed(sum, "members");
    for (guint i = 0; i < m->members->len; i++) {
        const struct gm_member *mb = m->members->pdata[i];
        feed(sum, mb->group);
        feed(sum, mb->user);
    }
    feed(sum, "shares");
    for (guint i = 0; i < m->shares->len; i++) {
        const struct gm_share *s = m->shares->pdata[i];
        feed(sum, s->from);
        feed(sum, s->to);
        feed_int(sum, s->to_group);
        feed(sum, s->channel);
        feed_int(sum, s->type);
    }
    feed(sum, "accepts");
    for (guint i = 0; i < m->accepts->len; i++) {
        const struct gm_accept *a = m->accepts->pdata[i];
        feed(sum, a->user);
        feed(sum, a->from);
        feed(sum, a->channel);
    }
    /* Only when there are some: data written before declines keeps its digest. */
    if (m->declines->len > 0)
        feed(sum, "declines");
    for (guint i = 0; i < m->declines->len; i++) {
        const struct gm_accept *a = m->declines->pdata[i];
        feed(sum, a->user);
        feed(sum, a->from);
        feed(sum, a->channel);
    }
}

/* ---- differences ---- */

static bool lists_equal(const GPtrArray *a, const GPtrArray *b)
{
    if (a->len != b->len)
        return false;
    for (guint i = 0; i < a->len; i++)
        if (strcmp(a->pdata[i], b->pdata[i]))
            return false;
    return true;
}

static bool keys_equal(const struct gm_key *a, const struct gm_key *b)
{
    return a->usable == b->usable && !g_strcmp0(a->owner, b->owner) &&
           !g_strcmp0(a->secret, b->secret) && lists_equal(a->publish, b->publish) &&
           lists_equal(a->subscribe, b->subscribe) && a->raw == b->raw;
}

/* A lookup key for records without a natural one; \x1f cannot clash with text. */
static char *share_id(const struct gm_share *s)
{
    return g_strdup_printf("%s\x1f%s\x1f%d\x1f%s", s->from, s->to, s->to_group, s->channel);
}

static char *member_id(const struct gm_member *mb)
{
    return g_strdup_printf("%s\x1f%s", mb->group, mb->user);
}

static char *accept_id(const struct gm_accept *a)
{
    return g_strdup_printf("%s\x1f%s\x1f%s", a->user, a->from, a->channel);
}

typedef char *(*id_fn)(const void *record);

static GHashTable *index_by(const GPtrArray *a, id_fn id)
{
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < a->len; i++)
        g_hash_table_insert(h, id(a->pdata[i]), a->pdata[i]);
    return h;
}

static void diff_list(const GPtrArray *before, const GPtrArray *after, id_fn id, enum gm_kind kind,
                      const struct gm_diff_ops *ops, void *ud, bool adding)
{
    GHashTable *other = index_by(adding ? before : after, id);
    const GPtrArray *mine = adding ? after : before;
    for (guint i = 0; i < mine->len; i++) {
        char *k = id(mine->pdata[i]);
        bool present = g_hash_table_contains(other, k);
        g_free(k);
        if (present)
            continue;
        if (adding)
            ops->add(ud, kind, mine->pdata[i]);
        else
            ops->del(ud, kind, mine->pdata[i], NULL);
    }
    g_hash_table_destroy(other);
}

void gm_diff(const struct gm_model *before, const struct gm_model *after,
             const struct gm_diff_ops *ops, void *ud)
{
    /* Records on both sides whose values changed: handled in place or re-added. */
    GPtrArray *readd_users = g_ptr_array_new();
    GPtrArray *readd_groups = g_ptr_array_new();
    GPtrArray *readd_shares = g_ptr_array_new();
    GPtrArray *readd_keys = g_ptr_array_new();

    /* deletions, dependents first */
    diff_list(before->declines, after->declines, (id_fn)accept_id, GM_DECLINE, ops, ud, false);
    diff_list(before->accepts, after->accepts, (id_fn)accept_id, GM_ACCEPT, ops, ud, false);
    GHashTable *after_shares = index_by(after->shares, (id_fn)share_id);
    for (guint i = 0; i < before->shares->len; i++) {
        const struct gm_share *s = before->shares->pdata[i];
        char *k = share_id(s);
        const struct gm_share *n = g_hash_table_lookup(after_shares, k);
        g_free(k);
        if (!n)
            ops->del(ud, GM_SHARE, s, NULL);
        else if (n->type != s->type && !ops->del(ud, GM_SHARE, s, n))
            g_ptr_array_add(readd_shares, (gpointer)n);
    }
    g_hash_table_destroy(after_shares);
    diff_list(before->members, after->members, (id_fn)member_id, GM_MEMBER, ops, ud, false);
    for (guint i = 0; i < before->groups->len; i++) {
        const struct gm_group *g = before->groups->pdata[i];
        const struct gm_group *n = g_hash_table_lookup(after->group_by_name, g->name);
        if (!n)
            ops->del(ud, GM_GROUP, g, NULL);
        else if (strcmp(n->owner, g->owner) && !ops->del(ud, GM_GROUP, g, n))
            g_ptr_array_add(readd_groups, (gpointer)n);
    }
    for (guint i = 0; i < before->keys->len; i++) {
        const struct gm_key *k = before->keys->pdata[i];
        const struct gm_key *n = g_hash_table_lookup(after->key_by_ident, k->ident);
        if (!n)
            ops->del(ud, GM_KEY, k, NULL);
        else if (!keys_equal(k, n) && !ops->del(ud, GM_KEY, k, n))
            g_ptr_array_add(readd_keys, (gpointer)n);
    }
    for (guint i = 0; i < before->users->len; i++) {
        const struct gm_user *u = before->users->pdata[i];
        const struct gm_user *n = g_hash_table_lookup(after->user_by_name, u->name);
        if (!n)
            ops->del(ud, GM_USER, u, NULL);
        else if ((n->admin != u->admin || g_strcmp0(n->password, u->password)) &&
                 !ops->del(ud, GM_USER, u, n))
            g_ptr_array_add(readd_users, (gpointer)n);
    }

    /* additions, referenced records first */
    for (guint i = 0; i < after->users->len; i++) {
        const struct gm_user *u = after->users->pdata[i];
        if (!g_hash_table_contains(before->user_by_name, u->name))
            ops->add(ud, GM_USER, u);
    }
    for (guint i = 0; i < readd_users->len; i++)
        ops->add(ud, GM_USER, readd_users->pdata[i]);
    for (guint i = 0; i < after->groups->len; i++) {
        const struct gm_group *g = after->groups->pdata[i];
        if (!g_hash_table_contains(before->group_by_name, g->name))
            ops->add(ud, GM_GROUP, g);
    }
    for (guint i = 0; i < readd_groups->len; i++)
        ops->add(ud, GM_GROUP, readd_groups->pdata[i]);
    diff_list(before->members, after->members, (id_fn)member_id, GM_MEMBER, ops, ud, true);
    diff_list(before->shares, after->shares, (id_fn)share_id, GM_SHARE, ops, ud, true);
    for (guint i = 0; i < readd_shares->len; i++)
        ops->add(ud, GM_SHARE, readd_shares->pdata[i]);
    diff_list(before->accepts, after->accepts, (id_fn)accept_id, GM_ACCEPT, ops, ud, true);
    diff_list(before->declines, after->declines, (id_fn)accept_id, GM_DECLINE, ops, ud, true);
    for (guint i = 0; i < after->keys->len; i++) {
        const struct gm_key *k = after->keys->pdata[i];
        if (!g_hash_table_contains(before->key_by_ident, k->ident))
            ops->add(ud, GM_KEY, k);
    }
    for (guint i = 0; i < readd_keys->len; i++)
        ops->add(ud, GM_KEY, readd_keys->pdata[i]);

    g_ptr_array_unref(readd_users);
    g_ptr_array_unref(readd_groups);
    g_ptr_array_unref(readd_shares);
    g_ptr_array_unref(readd_keys);
}
