#include "graph.h"

#include <stdlib.h>
#include <string.h>

struct graph {
    GHashTable *user_ids; /* name -> uid + 1 */
    GPtrArray *user_names; /* uid -> name (owns) */
    GHashTable *by_channel; /* channel -> GHashTable(publisher name -> readers) */
    GHashTable *sets;       /* interned struct graph_readers * (owns) */
    struct graph_stats stats;
};

/* ---- building ---- */

struct edge {
    guint32 from, to;
    gboolean all; /* shares_all */
};

struct builder {
    struct graph *g;
    GHashTable *groups;   /* name -> GArray of member uids */
    GHashTable *accepted; /* "user\nfrom\nchannel" */
    GHashTable *channels; /* channel -> GArray of struct edge */
    gboolean require_accept;
};

static guint32 intern_user(struct graph *g, const char *name)
{
    gpointer v = g_hash_table_lookup(g->user_ids, name);
    if (v)
        return GPOINTER_TO_UINT(v) - 1;
    char *copy = g_strdup(name);
    guint32 uid = g->user_names->len;
    g_ptr_array_add(g->user_names, copy);
    g_hash_table_insert(g->user_ids, copy, GUINT_TO_POINTER(uid + 1));
    return uid;
}

static char *accept_key(const char *user, const char *from, const char *chan)
{
    return g_strjoin("\n", user, from, chan, NULL);
}

static gboolean accepted(struct builder *bd, guint32 user, guint32 from, const char *chan)
{
    if (!bd->require_accept)
        return TRUE;
    char *k = accept_key(bd->g->user_names->pdata[user], bd->g->user_names->pdata[from], chan);
    gboolean ok = g_hash_table_contains(bd->accepted, k);
    g_free(k);
    return ok;
}

static void add_edge(struct builder *bd, const char *chan, guint32 from, guint32 to,
                     gboolean all)
{
    if (from == to)
        return; /* a user always reads itself; such an edge adds nothing */
    if (!accepted(bd, to, from, chan))
        return;
    GArray *edges = g_hash_table_lookup(bd->channels, chan);
    if (!edges) {
        edges = g_array_new(FALSE, FALSE, sizeof(struct edge));
        g_hash_table_insert(bd->channels, g_strdup(chan), edges);
    }
    struct edge e = {from, to, all};
    g_array_append_val(edges, e);
}

static int cmp_edge(const void *a, const void *b)
{
    const struct edge *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return (x->to > y->to) - (x->to < y->to);
}

static int cmp_u32(const void *a, const void *b)
{
    guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;
    return (x > y) - (x < y);
}

static guint readers_hash(gconstpointer p)
{
    const struct graph_readers *r = p;
    guint h = 2166136261u ^ r->n;
    for (guint i = 0; i < r->n; i++)
        h = (h ^ r->ids[i]) * 16777619u;
    return h;
}

static gboolean readers_equal(gconstpointer a, gconstpointer b)
{
    const struct graph_readers *x = a, *y = b;
    return x->n == y->n && memcmp(x->ids, y->ids, x->n * sizeof(guint32)) == 0;
}

static const struct graph_readers *intern_set(struct graph *g, const guint32 *ids, guint n)
{
    struct graph_readers *r = g_malloc(sizeof *r + n * sizeof(guint32));
    r->n = n;
    memcpy(r->ids, ids, n * sizeof(guint32));
    struct graph_readers *have = g_hash_table_lookup(g->sets, r);
    if (have) {
        g_free(r);
        return have;
    }
    g_hash_table_add(g->sets, r);
    g->stats.distinct_sets++;
    g->stats.reader_ids += n;
    return r;
}

/*
 * One channel: edges sorted by source give each user's out-edges as a
 * slice; a breadth-first walk per publisher, with a generation-stamped
 * visited array so nothing is cleared between walks.
 */
static void flatten_channel(struct builder *bd, const char *chan, GArray *edges,
                            guint32 *stamp, guint32 *gen, GArray *queue, GArray *found)
{
    struct graph *g = bd->g;
    guint n_users = g->user_names->len;
    qsort(edges->data, edges->len, sizeof(struct edge), cmp_edge);
    const struct edge *E = (const struct edge *)edges->data;

    /* first[u] .. first[u+1]: u's out-edges, for the users that have any. */
    GHashTable *first = g_hash_table_new(NULL, NULL);
    for (guint i = 0; i < edges->len; i++)
        if (i == 0 || E[i].from != E[i - 1].from)
            g_hash_table_insert(first, GUINT_TO_POINTER(E[i].from + 1), GUINT_TO_POINTER(i + 1));

    GHashTable *table = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, first);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        guint32 pub = GPOINTER_TO_UINT(k) - 1;
        if (++*gen == 0) { /* wrapped: reset the stamps */
            memset(stamp, 0, n_users * sizeof(guint32));
            *gen = 1;
        }
        g_array_set_size(queue, 0);
        g_array_set_size(found, 0);
        stamp[pub] = *gen;
        g_array_append_val(found, pub);
        /* Everything the publisher's own edges reach, whatever their type. */
        for (guint i = GPOINTER_TO_UINT(v) - 1; i < edges->len && E[i].from == pub; i++) {
            guint32 t = E[i].to;
            if (stamp[t] != *gen) {
                stamp[t] = *gen;
                g_array_append_val(queue, t);
                g_array_append_val(found, t);
            }
        }
        /* Then re-distribution along shares_all edges out of the readers. */
        for (guint q = 0; q < queue->len; q++) {
            guint32 w = g_array_index(queue, guint32, q);
            gpointer fw = g_hash_table_lookup(first, GUINT_TO_POINTER(w + 1));
            if (!fw)
                continue;
            for (guint i = GPOINTER_TO_UINT(fw) - 1; i < edges->len && E[i].from == w; i++) {
                guint32 t = E[i].to;
                if (E[i].all && stamp[t] != *gen) {
                    stamp[t] = *gen;
                    g_array_append_val(queue, t);
                    g_array_append_val(found, t);
                }
            }
        }
        qsort(found->data, found->len, sizeof(guint32), cmp_u32);
        const struct graph_readers *set = intern_set(g, (guint32 *)found->data, found->len);
        g_hash_table_insert(table, g->user_names->pdata[pub], (gpointer)set);
        g->stats.entries++;
    }
    g_hash_table_unref(first);
    g_hash_table_insert(g->by_channel, g_strdup(chan), table);
}

static void garray_free(gpointer p) { g_array_unref(p); }

struct graph *graph_build(const struct snapshot *s, gboolean require_accept)
{
    struct graph *g = g_new0(struct graph, 1);
    g->user_ids = g_hash_table_new(g_str_hash, g_str_equal);
    g->user_names = g_ptr_array_new_with_free_func(g_free);
    g->by_channel = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify)g_hash_table_unref);
    g->sets = g_hash_table_new_full(readers_hash, readers_equal, g_free, NULL);

    struct builder bd = {
        .g = g,
        .groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, garray_free),
        .accepted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
        .channels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, garray_free),
        .require_accept = require_accept,
    };

    for (guint i = 0; i < s->users->len; i++)
        intern_user(g, s->users->pdata[i]);
    for (guint i = 0; i < s->authkeys->len; i++)
        intern_user(g, ((struct snap_authkey *)s->authkeys->pdata[i])->owner);
    for (guint i = 0; i < s->groups->len; i++) {
        const struct snap_group *gr = s->groups->pdata[i];
        if (!g_hash_table_contains(bd.groups, gr->name))
            g_hash_table_insert(bd.groups, g_strdup(gr->name),
                                g_array_new(FALSE, FALSE, sizeof(guint32)));
    }
    for (guint i = 0; i < s->members->len; i++) {
        const struct snap_member *m = s->members->pdata[i];
        GArray *mem = g_hash_table_lookup(bd.groups, m->group);
        if (!mem)
            continue; /* membership of a group that does not exist */
        guint32 uid = intern_user(g, m->user);
        g_array_append_val(mem, uid);
    }
    if (require_accept)
        for (guint i = 0; i < s->accepts->len; i++) {
            const struct snap_accept *a = s->accepts->pdata[i];
            g_hash_table_add(bd.accepted, accept_key(a->user, a->from, a->channel));
        }
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        guint32 from = intern_user(g, sh->from);
        gboolean all = sh->type == HPF_SHARE_ALL;
        if (sh->to_group) {
            GArray *mem = g_hash_table_lookup(bd.groups, sh->to);
            for (guint j = 0; mem && j < mem->len; j++)
                add_edge(&bd, sh->channel, from, g_array_index(mem, guint32, j), all);
        } else {
            add_edge(&bd, sh->channel, from, intern_user(g, sh->to), all);
        }
    }

    guint n_users = g->user_names->len;
    guint32 *stamp = g_new0(guint32, n_users ? n_users : 1);
    guint32 gen = 0;
    GArray *queue = g_array_new(FALSE, FALSE, sizeof(guint32));
    GArray *found = g_array_new(FALSE, FALSE, sizeof(guint32));
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, bd.channels);
    while (g_hash_table_iter_next(&it, &k, &v))
        flatten_channel(&bd, k, v, stamp, &gen, queue, found);
    g_array_unref(queue);
    g_array_unref(found);
    g_free(stamp);

    g->stats.users = n_users;
    g->stats.channels = g_hash_table_size(g->by_channel);
    g_hash_table_unref(bd.groups);
    g_hash_table_unref(bd.accepted);
    g_hash_table_unref(bd.channels);
    return g;
}

void graph_free(struct graph *g)
{
    if (!g)
        return;
    g_hash_table_unref(g->by_channel);
    g_hash_table_unref(g->sets);
    g_hash_table_unref(g->user_ids);
    g_ptr_array_unref(g->user_names);
    g_free(g);
}

/* ---- lookups ---- */

const struct graph_readers *graph_readers(const struct graph *g, const char *publisher,
                                          const char *chan)
{
    GHashTable *table = g_hash_table_lookup(g->by_channel, chan);
    return table ? g_hash_table_lookup(table, publisher) : NULL;
}

gboolean graph_readers_has(const struct graph_readers *r, guint32 uid)
{
    if (!r || uid == GRAPH_NO_USER)
        return FALSE;
    guint lo = 0, hi = r->n;
    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        if (r->ids[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n && r->ids[lo] == uid;
}

guint32 graph_user_id(const struct graph *g, const char *name)
{
    gpointer v = g_hash_table_lookup(g->user_ids, name);
    return v ? GPOINTER_TO_UINT(v) - 1 : GRAPH_NO_USER;
}

const char *graph_user_name(const struct graph *g, guint32 uid)
{
    return uid < g->user_names->len ? g->user_names->pdata[uid] : NULL;
}

gboolean graph_may_read(const struct graph *g, const char *publisher, const char *chan,
                        const char *reader)
{
    if (!strcmp(publisher, reader))
        return TRUE;
    return graph_readers_has(graph_readers(g, publisher, chan), graph_user_id(g, reader));
}

void graph_get_stats(const struct graph *g, struct graph_stats *out) { *out = g->stats; }
