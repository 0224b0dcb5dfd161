/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The graph flattener.  A build interns every user and channel as a small
 * integer, collects each channel's share edges (dropping self-loops and,
 * with require_accept, offers not yet accepted), then walks the edges from
 * every publisher to find its readers.  Reader sets are sorted uid arrays,
 * interned so that identical sets are stored once, and carved out of a few
 * large blocks rather than allocated one by one; the result is immutable
 * and only looked up by the loop thread.
 */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

struct graph {
    GHashTable *user_ids;   /* name -> uid + 1 */
    GPtrArray *user_names;  /* uid -> name (owns) */
    GHashTable *by_channel; /* channel -> GHashTable(publisher name -> readers) */
    GHashTable *sets;       /* interned struct graph_readers *, in set_blocks */
    GPtrArray *set_blocks;  /* the sets' memory (owns) */
    char *block;            /* the one sets are being carved from */
    gsize block_left;       /* bytes free at its end */
    struct graph_stats stats;
};

/* ---- building ---- */

struct edge {
    guint32 from, to;
    gboolean all; /* shares_all */
};

/* A channel that carries edges, numbered in order of first sight. */
struct chan {
    char *name;
    guint expect;  /* edges before self-loops and unaccepted offers go */
    GArray *edges; /* struct edge */
};

/* An acceptance with every name resolved: compared as three integers
 * instead of joining and hashing three strings per edge. */
struct acc {
    guint32 user, from, chan;
};

struct builder {
    struct graph *g;
    GHashTable *groups;   /* name -> GArray of member uids */
    GHashTable *chan_ids; /* name -> index in chans + 1 */
    GPtrArray *chans;     /* struct chan * */
    GHashTable *accepted; /* struct acc * (keys point into acc_keys) */
    struct acc *acc_keys;
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

static guint32 intern_chan(struct builder *bd, const char *name)
{
    gpointer v = g_hash_table_lookup(bd->chan_ids, name);
    if (v)
        return GPOINTER_TO_UINT(v) - 1;
    struct chan *c = g_new0(struct chan, 1);
    c->name = g_strdup(name);
    guint32 id = bd->chans->len;
    g_ptr_array_add(bd->chans, c);
    g_hash_table_insert(bd->chan_ids, c->name, GUINT_TO_POINTER(id + 1));
    return id;
}

static void chan_free(gpointer p)
{
    struct chan *c = p;
    g_free(c->name);
    if (c->edges)
        g_array_unref(c->edges);
    g_free(c);
}

static guint acc_hash(gconstpointer p)
{
    const struct acc *a = p;
    return (a->user * 2654435761u) ^ (a->from * 2246822519u) ^ (a->chan * 3266489917u);
}

static gboolean acc_equal(gconstpointer p, gconstpointer q)
{
    const struct acc *a = p, *b = q;
    return a->user == b->user && a->from == b->from && a->chan == b->chan;
}

static gboolean accepted(const struct builder *bd, guint32 user, guint32 from, guint32 chan)
{
    if (!bd->require_accept)
        return TRUE;
    struct acc k = {user, from, chan};
    return g_hash_table_contains(bd->accepted, &k);
}

static void add_edge(struct builder *bd, guint32 chan, guint32 from, guint32 to, gboolean all)
{
    if (from == to)
        return; /* a user always reads itself; such an edge adds nothing */
    if (!accepted(bd, to, from, chan))
        return;
    struct edge e = {from, to, all};
    g_array_append_val(((struct chan *)bd->chans->pdata[chan])->edges, e);
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

/*
 * Sets are immutable and die with the graph, so they are carved out of
 * large blocks: no per-set allocator overhead, and freeing a graph of a
 * million sets is a few dozen free() calls instead of a million, which
 * matters where the old graph is freed (the event loop).
 */
enum { SET_BLOCK = 1 << 20 };

static struct graph_readers *set_alloc(struct graph *g, gsize size)
{
    /* size is a multiple of 4, so every set stays aligned. */
    if (size > SET_BLOCK / 8) {
        gpointer own = g_malloc(size);
        g_ptr_array_add(g->set_blocks, own);
        return own;
    }
    if (size > g->block_left) {
        g->block = g_malloc(SET_BLOCK);
        g_ptr_array_add(g->set_blocks, g->block);
        g->block_left = SET_BLOCK;
    }
    struct graph_readers *r = (struct graph_readers *)(g->block + SET_BLOCK - g->block_left);
    g->block_left -= size;
    return r;
}

/* `probe` is scratch space shaped like a set, already filled in: only a new
 * set is copied out of it. */
static const struct graph_readers *intern_set(struct graph *g, const struct graph_readers *probe)
{
    struct graph_readers *have = g_hash_table_lookup(g->sets, probe);
    if (have)
        return have;
    gsize size = sizeof *probe + probe->n * sizeof(guint32);
    struct graph_readers *r = set_alloc(g, size);
    memcpy(r, probe, size);
    g_hash_table_add(g->sets, r);
    g->stats.distinct_sets++;
    g->stats.reader_ids += probe->n;
    return r;
}

/*
 * Scratch shared by every channel.  Per-user arrays are valid only where
 * their stamp says so, so nothing is cleared between channels or
 * publishers.  Stacks and lists are plain arrays of n_users entries (none
 * can hold a user or a component twice), except succ, which grows.
 */
struct walk {
    guint n_users;
    guint32 *stamp; /* stamp[u] == gen: u already found for this publisher */
    guint32 gen;
    guint32 *src_stamp; /* src_stamp[u] == src_gen: u has edges on this channel */
    guint32 src_gen;
    /* u's out-edges: sorted[begin[u] .. end[u]), the shares_all ones first,
     * up to mid[u]. */
    guint32 *begin, *mid, *end;
    GArray *sorted;   /* struct edge, this channel's edges grouped by source */
    guint32 *sources; /* users with out-edges on this channel */
    guint n_sources;

    /* Strongly connected components of the channel's shares_all edges. */
    guint32 *vis_stamp; /* vis_stamp[u] == vis_gen: index, low, comp valid */
    guint32 vis_gen;
    guint32 *index, *low, *comp;
    guint32 next_index;
    guint32 *tarjan; /* Tarjan's stack of users */
    guint n_tarjan;
    struct frame *frames; /* the depth-first call stack */
    guint n_frames;
    guint32 *members; /* every component's users, one after another */
    guint32 *mem_at;  /* component c's users: members[mem_at[c] .. mem_at[c + 1]) */
    guint n_comps;
    guint32 *succ;    /* every component's successor components */
    guint32 *succ_at; /* likewise */
    guint n_succ, succ_cap;
    guint32 *c_stamp; /* per component: already reached for this publisher */
    guint32 c_gen;

    guint32 *queue;              /* components to expand for this publisher */
    struct graph_readers *found; /* grows as needed */
    guint found_cap;
};

struct frame {
    guint32 user, next; /* next: the next of its shares_all edges to follow */
};

#define ON_STACK G_MAXUINT32

static void walk_init(struct walk *w, guint n_users)
{
    gsize n = n_users ? n_users : 1;
    *w = (struct walk){.n_users = n_users};
    w->stamp = g_new0(guint32, n);
    w->src_stamp = g_new0(guint32, n);
    w->vis_stamp = g_new0(guint32, n);
    w->c_stamp = g_new0(guint32, n);
    w->begin = g_new(guint32, n);
    w->mid = g_new(guint32, n);
    w->end = g_new(guint32, n);
    w->sources = g_new(guint32, n);
    w->index = g_new(guint32, n);
    w->low = g_new(guint32, n);
    w->comp = g_new(guint32, n);
    w->tarjan = g_new(guint32, n);
    w->frames = g_new(struct frame, n);
    w->members = g_new(guint32, n);
    w->mem_at = g_new(guint32, n + 1);
    w->succ_at = g_new(guint32, n + 1);
    w->queue = g_new(guint32, n);
    w->succ_cap = 64;
    w->succ = g_new(guint32, w->succ_cap);
    w->sorted = g_array_new(FALSE, FALSE, sizeof(struct edge));
    w->found_cap = 64;
    w->found = g_malloc(sizeof *w->found + w->found_cap * sizeof(guint32));
}

static void walk_clear(struct walk *w)
{
    g_free(w->stamp);
    g_free(w->src_stamp);
    g_free(w->vis_stamp);
    g_free(w->c_stamp);
    g_free(w->begin);
    g_free(w->mid);
    g_free(w->end);
    g_free(w->sources);
    g_free(w->index);
    g_free(w->low);
    g_free(w->comp);
    g_free(w->tarjan);
    g_free(w->frames);
    g_free(w->members);
    g_free(w->mem_at);
    g_free(w->succ_at);
    g_free(w->queue);
    g_free(w->succ);
    g_array_unref(w->sorted);
    g_free(w->found);
}

static guint32 next_gen(guint32 *gen, guint32 *stamps, guint n)
{
    if (++*gen == 0) { /* wrapped: reset the stamps */
        memset(stamps, 0, n * sizeof(guint32));
        *gen = 1;
    }
    return *gen;
}

static void found_add(struct walk *w, guint32 uid)
{
    if (w->found->n == w->found_cap) {
        w->found_cap *= 2;
        w->found = g_realloc(w->found, sizeof *w->found + w->found_cap * sizeof(guint32));
    }
    w->found->ids[w->found->n++] = uid;
}

/*
 * Sort the readers found for one publisher.  A big set is read back from
 * the stamps in id order, linear in the number of users; that beats
 * comparison sorting once a set holds more than a small share of them,
 * which is the case on channels where shares_all re-distribution reaches
 * far.
 */
static void sort_found(struct walk *w, guint32 gen)
{
    struct graph_readers *f = w->found;
    if (f->n < 64 || (guint64)f->n * 64 < w->n_users) {
        qsort(f->ids, f->n, sizeof(guint32), cmp_u32);
        return;
    }
    guint k = 0;
    for (guint32 u = 0; u < w->n_users; u++)
        if (w->stamp[u] == gen)
            f->ids[k++] = u;
}

/*
 * Group one channel's edges by source with a counting sort (linear, and
 * touching only the users that have edges here), shares_all edges first in
 * each group, so a user's out-edges are a slice found by array index.
 */
static void group_by_source(struct walk *w, const GArray *edges)
{
    guint32 sg = next_gen(&w->src_gen, w->src_stamp, w->n_users);
    const struct edge *E = (const struct edge *)edges->data;
    w->n_sources = 0;
    for (guint i = 0; i < edges->len; i++) {
        guint32 f = E[i].from;
        if (w->src_stamp[f] != sg) {
            w->src_stamp[f] = sg;
            w->mid[f] = w->end[f] = 0;
            w->sources[w->n_sources++] = f;
        }
        w->end[f]++; /* for now: counts */
        w->mid[f] += E[i].all ? 1 : 0;
    }
    guint32 at = 0;
    for (guint i = 0; i < w->n_sources; i++) {
        guint32 f = w->sources[i];
        guint32 n = w->end[f], n_all = w->mid[f];
        w->begin[f] = at;
        w->mid[f] = at;         /* for now: where the next shares_all edge goes */
        w->end[f] = at + n_all; /* and the next shares edge */
        at += n;
    }
    g_array_set_size(w->sorted, edges->len);
    struct edge *S = (struct edge *)w->sorted->data;
    for (guint i = 0; i < edges->len; i++) {
        guint32 f = E[i].from;
        S[E[i].all ? w->mid[f]++ : w->end[f]++] = E[i];
    }
    /* Now mid[f] is where f's shares edges start, end[f] where they end. */
}

static gboolean has_edges(const struct walk *w, guint32 u) { return w->src_stamp[u] == w->src_gen; }

static void visit(struct walk *w, guint32 u)
{
    w->vis_stamp[u] = w->vis_gen;
    w->index[u] = w->low[u] = w->next_index++;
    w->comp[u] = ON_STACK;
    w->tarjan[w->n_tarjan++] = u;
    w->frames[w->n_frames++] = (struct frame){u, has_edges(w, u) ? w->begin[u] : 0};
}

/* Close the component rooted at `root`: its users, and the components its
 * shares_all edges lead to (all closed already: Tarjan closes a component
 * after every component reachable from it). */
static void close_component(struct walk *w, guint32 root, const struct edge *S)
{
    guint32 c = w->n_comps++;
    guint32 first = w->mem_at[c], n_members = first;
    guint32 u;
    do {
        u = w->tarjan[--w->n_tarjan];
        w->comp[u] = c;
        w->members[n_members++] = u;
    } while (u != root);
    w->mem_at[c + 1] = n_members;

    /* c_stamp marks the successors listed so far, and c itself. */
    guint32 mark = next_gen(&w->c_gen, w->c_stamp, w->n_users);
    w->c_stamp[c] = mark;
    for (guint32 m = first; m < n_members; m++) {
        guint32 v = w->members[m];
        if (!has_edges(w, v))
            continue;
        for (guint32 i = w->begin[v]; i < w->mid[v]; i++) {
            guint32 d = w->comp[S[i].to];
            if (w->c_stamp[d] != mark) {
                w->c_stamp[d] = mark;
                if (w->n_succ == w->succ_cap) {
                    w->succ_cap *= 2;
                    w->succ = g_renew(guint32, w->succ, w->succ_cap);
                }
                w->succ[w->n_succ++] = d;
            }
        }
    }
    w->succ_at[c + 1] = w->n_succ;
}

/* Tarjan's algorithm over shares_all edges, from `start`, without recursion. */
static void components_from(struct walk *w, guint32 start, const struct edge *S)
{
    visit(w, start);
    while (w->n_frames) {
        struct frame *f = &w->frames[w->n_frames - 1];
        guint32 u = f->user;
        if (has_edges(w, u) && f->next < w->mid[u]) {
            guint32 t = S[f->next++].to;
            if (w->vis_stamp[t] != w->vis_gen)
                visit(w, t);
            else if (w->comp[t] == ON_STACK)
                w->low[u] = MIN(w->low[u], w->index[t]);
            continue;
        }
        w->n_frames--;
        if (w->low[u] == w->index[u])
            close_component(w, u, S);
        if (w->n_frames) {
            guint32 parent = w->frames[w->n_frames - 1].user;
            w->low[parent] = MIN(w->low[parent], w->low[u]);
        }
    }
}

/*
 * One channel.  By the rule, a publisher's readers are itself, the targets
 * of its own edges, and whatever shares_all edges lead to from those
 * targets (passing through the publisher again only leads to its own
 * shares_all targets, which are direct targets anyway).  So the readers are
 * the union, over direct targets, of everything reachable from them along
 * shares_all edges.  Walking that on the DAG of components, a ring of users
 * who all re-distribute to each other is one node, expanded once per
 * publisher, instead of being re-walked edge by edge.
 */
static void flatten_channel(struct builder *bd, const struct chan *c, struct walk *w)
{
    struct graph *g = bd->g;
    group_by_source(w, c->edges);
    const struct edge *S = (const struct edge *)w->sorted->data;

    next_gen(&w->vis_gen, w->vis_stamp, w->n_users);
    w->next_index = 0;
    w->n_comps = 0;
    w->n_succ = 0;
    w->mem_at[0] = w->succ_at[0] = 0;
    for (guint i = 0; i < w->sorted->len; i++)
        if (w->vis_stamp[S[i].to] != w->vis_gen)
            components_from(w, S[i].to, S);

    GHashTable *table = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint p = 0; p < w->n_sources; p++) {
        guint32 pub = w->sources[p];
        guint32 gen = next_gen(&w->gen, w->stamp, w->n_users);
        guint32 cg = next_gen(&w->c_gen, w->c_stamp, w->n_users);
        guint n_queue = 0;
        w->found->n = 0;
        w->stamp[pub] = gen;
        found_add(w, pub);
        for (guint32 i = w->begin[pub]; i < w->end[pub]; i++) {
            guint32 d = w->comp[S[i].to];
            if (w->c_stamp[d] != cg) {
                w->c_stamp[d] = cg;
                w->queue[n_queue++] = d;
            }
        }
        for (guint q = 0; q < n_queue; q++) {
            guint32 d = w->queue[q];
            for (guint32 m = w->mem_at[d]; m < w->mem_at[d + 1]; m++) {
                guint32 u = w->members[m];
                if (w->stamp[u] != gen) {
                    w->stamp[u] = gen;
                    found_add(w, u);
                }
            }
            for (guint32 k = w->succ_at[d]; k < w->succ_at[d + 1]; k++)
                if (w->c_stamp[w->succ[k]] != cg) {
                    w->c_stamp[w->succ[k]] = cg;
                    w->queue[n_queue++] = w->succ[k];
                }
        }
        sort_found(w, gen);
        const struct graph_readers *set = intern_set(g, w->found);
        g_hash_table_insert(table, g->user_names->pdata[pub], (gpointer)set);
        g->stats.entries++;
    }
    g_hash_table_insert(g->by_channel, g_strdup(c->name), table);
}

static void garray_free(gpointer p) { g_array_unref(p); }

/* Acceptances whose user, offerer or channel no share names can never
 * match an edge, so they are dropped rather than interned. */
static void load_accepts(struct builder *bd, const struct snapshot *s)
{
    bd->accepted = g_hash_table_new(acc_hash, acc_equal);
    bd->acc_keys = g_new(struct acc, s->accepts->len ? s->accepts->len : 1);
    guint n = 0;
    for (guint i = 0; i < s->accepts->len; i++) {
        const struct snap_accept *a = s->accepts->pdata[i];
        guint32 user = graph_user_id(bd->g, a->user);
        guint32 from = graph_user_id(bd->g, a->from);
        gpointer chan = g_hash_table_lookup(bd->chan_ids, a->channel);
        if (user == GRAPH_NO_USER || from == GRAPH_NO_USER || !chan)
            continue;
        struct acc *k = &bd->acc_keys[n++];
        *k = (struct acc){user, from, GPOINTER_TO_UINT(chan) - 1};
        g_hash_table_add(bd->accepted, k);
    }
}

struct graph *graph_build(const struct snapshot *s, gboolean require_accept)
{
    struct graph *g = g_new0(struct graph, 1);
    g->user_ids = g_hash_table_new(g_str_hash, g_str_equal);
    g->user_names = g_ptr_array_new_with_free_func(g_free);
    g->by_channel =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
    g->sets = g_hash_table_new(readers_hash, readers_equal);
    g->set_blocks = g_ptr_array_new_with_free_func(g_free);

    struct builder bd = {
        .g = g,
        .groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, garray_free),
        .chan_ids = g_hash_table_new(g_str_hash, g_str_equal),
        .chans = g_ptr_array_new_with_free_func(chan_free),
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

    /* Resolve every share's names once; acceptances are matched against
     * the resolved ids, so they are loaded once all users are known. */
    struct rshare {
        guint32 from, to, chan; /* to: a uid, or GRAPH_NO_USER for a group */
        const GArray *members;
    } *rs = g_new(struct rshare, s->shares->len ? s->shares->len : 1);
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        rs[i].from = intern_user(g, sh->from);
        rs[i].chan = intern_chan(&bd, sh->channel);
        rs[i].to = sh->to_group ? GRAPH_NO_USER : intern_user(g, sh->to);
        rs[i].members = sh->to_group ? g_hash_table_lookup(bd.groups, sh->to) : NULL;
        struct chan *c = bd.chans->pdata[rs[i].chan];
        c->expect += rs[i].members ? rs[i].members->len : !sh->to_group;
    }
    /* Sized up front: growing millions of edges by doubling costs copies
     * and, at the peak, up to twice the memory. */
    for (guint i = 0; i < bd.chans->len; i++) {
        struct chan *c = bd.chans->pdata[i];
        c->edges = g_array_sized_new(FALSE, FALSE, sizeof(struct edge), c->expect);
    }
    if (require_accept)
        load_accepts(&bd, s);
    for (guint i = 0; i < s->shares->len; i++) {
        const struct rshare *r = &rs[i];
        gboolean all = ((struct snap_share *)s->shares->pdata[i])->type == HPF_SHARE_ALL;
        if (r->to != GRAPH_NO_USER)
            add_edge(&bd, r->chan, r->from, r->to, all);
        for (guint j = 0; r->members && j < r->members->len; j++)
            add_edge(&bd, r->chan, r->from, g_array_index(r->members, guint32, j), all);
    }
    g_free(rs);

    guint n_users = g->user_names->len;
    struct walk w;
    walk_init(&w, n_users);
    for (guint i = 0; i < bd.chans->len; i++) {
        struct chan *c = bd.chans->pdata[i];
        if (c->edges->len) /* channels with only self-loops or unaccepted offers */
            flatten_channel(&bd, c, &w);
        /* Done with this channel's edges: give the memory back early. */
        g_array_unref(c->edges);
        c->edges = NULL;
    }
    walk_clear(&w);

    g->stats.users = n_users;
    g->stats.channels = g_hash_table_size(g->by_channel);
    g_hash_table_unref(bd.groups);
    if (bd.accepted)
        g_hash_table_unref(bd.accepted);
    g_free(bd.acc_keys);
    g_hash_table_unref(bd.chan_ids);
    g_ptr_array_unref(bd.chans);
    return g;
}

void graph_free(struct graph *g)
{
    if (!g)
        return;
    g_hash_table_unref(g->by_channel);
    g_hash_table_unref(g->sets);
    g_ptr_array_unref(g->set_blocks);
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
