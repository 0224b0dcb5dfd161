/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Router: channel -> subscribers, and the cached views of them that
 * router_view() makes (who of them receives a given publisher's messages),
 * dropped whenever the channel's subscribers change.
 */
#include "router.h"

struct view {
    guint64 stamp;
    GPtrArray *subs; /* void *, a subset of the channel's, in its order */
};

struct channel {
    char *name;
    GPtrArray *subs;   /* void * */
    GHashTable *index; /* sub -> position in subs + 1 */
    GHashTable *views; /* key -> struct view *; NULL until asked for */
};

struct router {
    GHashTable *channels; /* name -> struct channel * (owns) */
    guint subscriptions;
    router_interest_fn interest;
    void *interest_data;
};

void router_set_interest(struct router *r, router_interest_fn fn, void *data)
{
    r->interest = fn;
    r->interest_data = data;
}

static void view_free(gpointer p)
{
    struct view *v = p;
    g_ptr_array_unref(v->subs);
    g_free(v);
}

/* The subscribers changed: every view of them is stale. */
static void views_drop(struct channel *ch)
{
    if (ch->views)
        g_hash_table_remove_all(ch->views);
}

static void channel_free(gpointer p)
{
    struct channel *ch = p;
    if (ch->views)
        g_hash_table_unref(ch->views);
    g_ptr_array_unref(ch->subs);
    g_hash_table_unref(ch->index);
    g_free(ch->name);
    g_free(ch);
}

struct router *router_new(void)
{
    struct router *r = g_new0(struct router, 1);
    r->channels = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, channel_free);
    return r;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    g_hash_table_unref(r->channels);
    g_free(r);
}

gboolean router_subscribe(struct router *r, const char *chan, void *sub)
{
    struct channel *ch = g_hash_table_lookup(r->channels, chan);
    if (!ch) {
        ch = g_new0(struct channel, 1);
        ch->name = g_strdup(chan);
        ch->subs = g_ptr_array_new();
        ch->index = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_hash_table_insert(r->channels, ch->name, ch);
        if (r->interest)
            r->interest(r->interest_data, ch->name, TRUE);
    } else if (g_hash_table_contains(ch->index, sub)) {
        return FALSE;
    }
    views_drop(ch);
    g_ptr_array_add(ch->subs, sub);
    g_hash_table_insert(ch->index, sub, GUINT_TO_POINTER(ch->subs->len));
    r->subscriptions++;
    return TRUE;
}

gboolean router_unsubscribe(struct router *r, const char *chan, void *sub)
{
    struct channel *ch = g_hash_table_lookup(r->channels, chan);
    if (!ch)
        return FALSE;
    guint pos = GPOINTER_TO_UINT(g_hash_table_lookup(ch->index, sub));
    if (!pos)
        return FALSE;
    g_hash_table_remove(ch->index, sub);
    views_drop(ch);
    guint last = ch->subs->len - 1;
    if (pos - 1 != last) {
        void *moved = ch->subs->pdata[last];
        ch->subs->pdata[pos - 1] = moved;
        g_hash_table_insert(ch->index, moved, GUINT_TO_POINTER(pos));
    }
    g_ptr_array_set_size(ch->subs, last);
    r->subscriptions--;
    if (ch->subs->len == 0) {
        if (r->interest)
            r->interest(r->interest_data, ch->name, FALSE);
        g_hash_table_remove(r->channels, chan);
    }
    return TRUE;
}

const GPtrArray *router_subscribers(struct router *r, const char *chan)
{
    struct channel *ch = g_hash_table_lookup(r->channels, chan);
    return ch ? ch->subs : NULL;
}

const GPtrArray *router_view(struct router *r, const char *chan, const char *key, guint64 stamp,
                             router_keep_fn keep, void *ctx)
{
    struct channel *ch = g_hash_table_lookup(r->channels, chan);
    if (!ch)
        return NULL;
    if (!ch->views)
        ch->views = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, view_free);
    struct view *v = g_hash_table_lookup(ch->views, key);
    if (v && v->stamp == stamp)
        return v->subs;
    if (!v) {
        if (g_hash_table_size(ch->views) >= ROUTER_MAX_VIEWS)
            g_hash_table_remove_all(ch->views);
        v = g_new0(struct view, 1);
        v->subs = g_ptr_array_new();
        g_hash_table_insert(ch->views, g_strdup(key), v);
    }
    v->stamp = stamp;
    g_ptr_array_set_size(v->subs, 0);
    for (guint i = 0; i < ch->subs->len; i++)
        if (keep(ch->subs->pdata[i], ctx))
            g_ptr_array_add(v->subs, ch->subs->pdata[i]);
    return v->subs;
}

guint router_channel_count(const struct router *r) { return g_hash_table_size(r->channels); }

guint router_subscription_count(const struct router *r) { return r->subscriptions; }
