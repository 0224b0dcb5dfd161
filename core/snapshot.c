/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Snapshots: the storage plugin's visitor fills plain GLib arrays and
 * tables with copies of every row, so nothing refers back into storage
 * once the read is done.  The look-ups here are linear scans: they serve
 * listings and checks, never the per-message path (the flattened graph
 * does that).
 */
#include "snapshot.h"

#include <string.h>

static void group_free(gpointer p)
{
    struct snap_group *g = p;
    g_free(g->name);
    g_free(g->owner);
    g_free(g);
}

static void member_free(gpointer p)
{
    struct snap_member *m = p;
    g_free(m->group);
    g_free(m->user);
    g_free(m);
}

static void share_free(gpointer p)
{
    struct snap_share *sh = p;
    g_free(sh->from);
    g_free(sh->to);
    g_free(sh->channel);
    g_free(sh);
}

static void accept_free(gpointer p)
{
    struct snap_accept *a = p;
    g_free(a->user);
    g_free(a->from);
    g_free(a->channel);
    g_free(a);
}

static void authkey_free(gpointer p)
{
    struct snap_authkey *k = p;
    g_free(k->ident);
    g_free(k->owner);
    g_free(k->secret);
    g_ptr_array_unref(k->publish);
    g_ptr_array_unref(k->subscribe);
    g_free(k);
}

struct snapshot *snapshot_new(void)
{
    struct snapshot *s = g_new0(struct snapshot, 1);
    s->users = g_ptr_array_new_with_free_func(g_free);
    s->admins = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s->passwords = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    s->groups = g_ptr_array_new_with_free_func(group_free);
    s->members = g_ptr_array_new_with_free_func(member_free);
    s->shares = g_ptr_array_new_with_free_func(share_free);
    s->accepts = g_ptr_array_new_with_free_func(accept_free);
    s->declines = g_ptr_array_new_with_free_func(accept_free);
    s->authkeys = g_ptr_array_new_with_free_func(authkey_free);
    s->authkey_by_ident = g_hash_table_new(g_str_hash, g_str_equal);
    return s;
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    g_hash_table_unref(s->authkey_by_ident);
    g_ptr_array_unref(s->users);
    g_hash_table_unref(s->admins);
    g_hash_table_unref(s->passwords);
    g_ptr_array_unref(s->groups);
    g_ptr_array_unref(s->members);
    g_ptr_array_unref(s->shares);
    g_ptr_array_unref(s->accepts);
    g_ptr_array_unref(s->declines);
    g_ptr_array_unref(s->authkeys);
    g_free(s);
}

void snapshot_add_user(struct snapshot *s, const char *name, gboolean admin)
{
    g_ptr_array_add(s->users, g_strdup(name));
    if (admin)
        g_hash_table_add(s->admins, g_strdup(name));
}

void snapshot_set_password(struct snapshot *s, const char *name, const char *hash)
{
    if (name && hash)
        g_hash_table_replace(s->passwords, g_strdup(name), g_strdup(hash));
}

void snapshot_add_group(struct snapshot *s, const char *name, const char *owner)
{
    struct snap_group *g = g_new0(struct snap_group, 1);
    g->name = g_strdup(name);
    g->owner = g_strdup(owner);
    g_ptr_array_add(s->groups, g);
}

void snapshot_add_member(struct snapshot *s, const char *group, const char *user)
{
    struct snap_member *m = g_new0(struct snap_member, 1);
    m->group = g_strdup(group);
    m->user = g_strdup(user);
    g_ptr_array_add(s->members, m);
}

void snapshot_add_share(struct snapshot *s, const char *from, const char *to, gboolean to_group,
                        const char *channel, int type)
{
    struct snap_share *sh = g_new0(struct snap_share, 1);
    sh->from = g_strdup(from);
    sh->to = g_strdup(to);
    sh->to_group = to_group;
    sh->channel = g_strdup(channel);
    sh->type = type;
    g_ptr_array_add(s->shares, sh);
}

static void add_answer(GPtrArray *to, const char *user, const char *from, const char *channel)
{
    struct snap_accept *a = g_new0(struct snap_accept, 1);
    a->user = g_strdup(user);
    a->from = g_strdup(from);
    a->channel = g_strdup(channel);
    g_ptr_array_add(to, a);
}

void snapshot_add_accept(struct snapshot *s, const char *user, const char *from,
                         const char *channel)
{
    add_answer(s->accepts, user, from, channel);
}

void snapshot_add_decline(struct snapshot *s, const char *user, const char *from,
                          const char *channel)
{
    add_answer(s->declines, user, from, channel);
}

static GPtrArray *strv_copy(const char *const *v, size_t n)
{
    GPtrArray *a = g_ptr_array_new_full((guint)n, g_free);
    for (size_t i = 0; i < n; i++)
        if (v[i])
            g_ptr_array_add(a, g_strdup(v[i]));
    return a;
}

void snapshot_add_authkey(struct snapshot *s, const struct hpf_authkey *key)
{
    if (!key->ident)
        return;
    struct snap_authkey *k = g_new0(struct snap_authkey, 1);
    k->ident = g_strdup(key->ident);
    k->owner = g_strdup(key->owner && *key->owner ? key->owner : key->ident);
    k->secret = g_strdup(key->secret ? key->secret : "");
    k->publish = strv_copy(key->publish, key->n_publish);
    k->subscribe = strv_copy(key->subscribe, key->n_subscribe);
    g_ptr_array_add(s->authkeys, k);
    if (!g_hash_table_contains(s->authkey_by_ident, k->ident))
        g_hash_table_insert(s->authkey_by_ident, k->ident, k);
}

/* ---- visitor glue ---- */

static void v_user(void *ud, const char *name, bool admin) { snapshot_add_user(ud, name, admin); }
static void v_password(void *ud, const char *name, const char *hash)
{
    snapshot_set_password(ud, name, hash);
}
static void v_group(void *ud, const char *name, const char *owner)
{
    snapshot_add_group(ud, name, owner);
}
static void v_member(void *ud, const char *group, const char *user)
{
    snapshot_add_member(ud, group, user);
}
static void v_share(void *ud, const char *from, const char *to, bool to_group, const char *channel,
                    int type)
{
    snapshot_add_share(ud, from, to, to_group, channel, type);
}
static void v_accept(void *ud, const char *user, const char *from, const char *channel)
{
    snapshot_add_accept(ud, user, from, channel);
}
static void v_decline(void *ud, const char *user, const char *from, const char *channel)
{
    snapshot_add_decline(ud, user, from, channel);
}
static void v_authkey(void *ud, const struct hpf_authkey *key) { snapshot_add_authkey(ud, key); }

static const struct hpf_snapshot_visitor visitor = {
    .user = v_user,
    .group = v_group,
    .member = v_member,
    .share = v_share,
    .accept = v_accept,
    .authkey = v_authkey,
    .user_password = v_password,
    .decline = v_decline,
};

struct snapshot *snapshot_read(struct plugin_instance *storage, GError **error)
{
    const struct hpf_storage_ops *ops = storage->desc->storage;
    struct snapshot *s = snapshot_new();
    int rc = ops->version(storage->inst, &s->version);
    if (rc == HPF_OK)
        rc = ops->snapshot(storage->inst, &visitor, s);
    if (rc != HPF_OK) {
        g_set_error(error, HPF_PLUGIN_ERROR, rc, "%s: reading a snapshot failed: %s", storage->name,
                    hpf_strerror(rc));
        snapshot_free(s);
        return NULL;
    }
    return s;
}

gboolean snapshot_has_user(const struct snapshot *s, const char *name)
{
    for (guint i = 0; i < s->users->len; i++)
        if (!strcmp(s->users->pdata[i], name))
            return TRUE;
    for (guint i = 0; i < s->authkeys->len; i++)
        if (!strcmp(((struct snap_authkey *)s->authkeys->pdata[i])->owner, name))
            return TRUE;
    return FALSE;
}

gboolean snapshot_is_member(const struct snapshot *s, const char *group, const char *user)
{
    for (guint i = 0; i < s->members->len; i++) {
        const struct snap_member *m = s->members->pdata[i];
        if (!strcmp(m->group, group) && !strcmp(m->user, user))
            return TRUE;
    }
    return FALSE;
}

static gboolean has_answer(const GPtrArray *in, const char *user, const char *from,
                           const char *channel)
{
    for (guint i = 0; i < in->len; i++) {
        const struct snap_accept *a = in->pdata[i];
        if (!strcmp(a->user, user) && !strcmp(a->from, from) && !strcmp(a->channel, channel))
            return TRUE;
    }
    return FALSE;
}

gboolean snapshot_has_accept(const struct snapshot *s, const char *user, const char *from,
                             const char *channel)
{
    return has_answer(s->accepts, user, from, channel);
}

enum offer_state snapshot_offer_state(const struct snapshot *s, const char *user, const char *from,
                                      const char *channel)
{
    if (has_answer(s->accepts, user, from, channel))
        return OFFER_ACCEPTED;
    if (has_answer(s->declines, user, from, channel))
        return OFFER_DECLINED;
    return OFFER_PENDING;
}

const char *offer_state_name(enum offer_state st)
{
    switch (st) {
    case OFFER_ACCEPTED:
        return "accepted";
    case OFFER_DECLINED:
        return "declined";
    case OFFER_PENDING:
        break;
    }
    return "pending";
}

const struct snap_group *snapshot_find_group(const struct snapshot *s, const char *name)
{
    for (guint i = 0; i < s->groups->len; i++) {
        const struct snap_group *g = s->groups->pdata[i];
        if (!strcmp(g->name, name))
            return g;
    }
    return NULL;
}

const char *share_type_name(int type) { return hpf_share_type_name(type); }

int share_type_parse(const char *name) { return hpf_share_type_from_name(name); }
