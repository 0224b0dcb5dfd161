/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_file_storage: the file storage plugin's reader and writer
 * (plugins/storage_file/), through the real loader as the broker uses it.
 *
 * Input: the JSON file its `path` points at (hpfeeds3's authkey file,
 * possibly with hpfriends' own section).  Per input, a fresh instance:
 * create() and start() (which reads the file); when the file is accepted:
 *  - snapshot(), and authkey_get() of every authkey it reported gives the
 *    same key; an unknown ident is NOT_FOUND;
 *  - a write (apply() of one user add, which re-reads the file, rewrites
 *    it and re-reads it) must keep everything the snapshot showed, plus
 *    the new user;
 *  - counters_add() then counters_get() adds up.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "loader.h"
#include "snapshot.h"

#define NEW_USER "fuzz-added-user"

static char *dir;
static char *path;
static GHashTable *keys;
static struct plugin_instance *warm; /* keeps the module mapped */

static void add_list(GString *out, const char *const *v, size_t n)
{
    g_string_append_c(out, '[');
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(out, "%s%s", i ? "," : "", v[i]);
    g_string_append_c(out, ']');
}

static char *key_text(const char *ident, const char *owner, const char *secret,
                      const char *const *pub, size_t npub, const char *const *sub, size_t nsub)
{
    GString *out = g_string_new(NULL);
    g_string_append_printf(out, "authkey %s owner=%s secret=%s pub=", ident, owner, secret);
    add_list(out, pub, npub);
    g_string_append(out, " sub=");
    add_list(out, sub, nsub);
    return g_string_free(out, FALSE);
}

static char *snap_key_text(const struct snap_authkey *k)
{
    return key_text(k->ident, k->owner, k->secret, (const char *const *)k->publish->pdata,
                    k->publish->len, (const char *const *)k->subscribe->pdata, k->subscribe->len);
}

static void on_key(void *ud, const struct hpf_authkey *k)
{
    char **out = ud;
    g_free(*out);
    *out = key_text(k->ident, k->owner, k->secret, k->publish, k->n_publish, k->subscribe,
                    k->n_subscribe);
}

static gint cmp_indirect(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Everything a snapshot says, one sorted line per fact. */
static GPtrArray *facts(const struct snapshot *s)
{
    GPtrArray *f = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < s->users->len; i++)
        g_ptr_array_add(f, g_strdup_printf("user %s admin=%d", (char *)s->users->pdata[i],
                                           g_hash_table_contains(s->admins, s->users->pdata[i])));
    for (guint i = 0; i < s->groups->len; i++) {
        const struct snap_group *g = s->groups->pdata[i];
        g_ptr_array_add(f, g_strdup_printf("group %s owner=%s", g->name, g->owner));
    }
    for (guint i = 0; i < s->members->len; i++) {
        const struct snap_member *m = s->members->pdata[i];
        g_ptr_array_add(f, g_strdup_printf("member %s %s", m->group, m->user));
    }
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        g_ptr_array_add(f, g_strdup_printf("share %s -> %s%s on %s type=%d", sh->from,
                                           sh->to_group ? "@" : "", sh->to, sh->channel, sh->type));
    }
    for (guint i = 0; i < s->accepts->len; i++) {
        const struct snap_accept *a = s->accepts->pdata[i];
        g_ptr_array_add(f,
                        g_strdup_printf("accept %s from %s on %s", a->user, a->from, a->channel));
    }
    for (guint i = 0; i < s->authkeys->len; i++)
        g_ptr_array_add(f, snap_key_text(s->authkeys->pdata[i]));
    g_ptr_array_sort(f, cmp_indirect);
    return f;
}

static char *facts_text(GPtrArray *f)
{
    g_ptr_array_add(f, NULL);
    char *t = g_strjoinv("\n", (char **)f->pdata);
    g_ptr_array_remove_index(f, f->len - 1);
    return t;
}

static void check_keys(struct plugin_instance *pi, const struct snapshot *s)
{
    const struct hpf_storage_ops *ops = pi->desc->storage;
    for (guint i = 0; i < s->authkeys->len; i++) {
        const struct snap_authkey *k = s->authkeys->pdata[i];
        /* The snapshot index keeps the first of a repeated ident; so does lookup. */
        if (g_hash_table_lookup(s->authkey_by_ident, k->ident) != k)
            continue;
        char *got = NULL;
        int rc = ops->authkey_get(pi->inst, k->ident, on_key, &got);
        char *want = snap_key_text(k);
        FUZZ_CHECK(rc == HPF_OK && got && !strcmp(got, want),
                   "authkey_get(%s) = %d:\n  %s\nsnapshot has\n  %s", k->ident, rc,
                   got ? got : "(nothing)", want);
        g_free(want);
        g_free(got);
    }
    char *got = NULL;
    const char *nobody = "fuzz: no such ident";
    if (!g_hash_table_contains(s->authkey_by_ident, nobody)) {
        int rc = ops->authkey_get(pi->inst, nobody, on_key, &got);
        FUZZ_CHECK(rc == HPF_ERR_NOTFOUND && !got, "authkey_get of an unknown ident gave %d", rc);
        g_free(got);
    }
}

static void check_write(struct plugin_instance *pi, const struct snapshot *before)
{
    const struct hpf_storage_ops *ops = pi->desc->storage;
    struct hpf_mutation m = {.op = HPF_MUT_USER_ADD, .user = NEW_USER};
    char err[512] = "";
    int rc = ops->apply(pi->inst, &m, 1, err, sizeof err);
    if (rc != HPF_OK)
        return; /* e.g. the user exists, or the file cannot be rewritten */

    GError *e = NULL;
    struct snapshot *after = snapshot_read(pi, &e);
    FUZZ_CHECK(after != NULL, "snapshot after a write failed: %s", e->message);
    g_clear_error(&e);
    if (!after)
        return;
    GPtrArray *want = facts(before);
    g_ptr_array_add(want, g_strdup_printf("user %s admin=0", NEW_USER));
    g_ptr_array_sort(want, cmp_indirect);
    GPtrArray *got = facts(after);
    char *wt = facts_text(want), *gt = facts_text(got);
    FUZZ_CHECK(!strcmp(wt, gt),
               "rewriting the file changed its data\n--- expected ---\n%s\n--- read back "
               "---\n%s",
               wt, gt);
    g_free(wt);
    g_free(gt);
    g_ptr_array_unref(want);
    g_ptr_array_unref(got);
    snapshot_free(after);
}

static void check_counters(struct plugin_instance *pi, const struct snapshot *s)
{
    const struct hpf_storage_ops *ops = pi->desc->storage;
    if (!ops->counters_add || !ops->counters_get || s->authkeys->len == 0)
        return;
    const char *ident = ((struct snap_authkey *)s->authkeys->pdata[0])->ident;
    struct hpf_counters before, after;
    if (ops->counters_get(pi->inst, ident, &before) != HPF_OK)
        return;
    struct hpf_counters d = {.ident = ident,
                             .published_msgs = 1,
                             .published_bytes = 10,
                             .received_msgs = 2,
                             .received_bytes = 20};
    if (ops->counters_add(pi->inst, &d, 1) != HPF_OK)
        return;
    FUZZ_CHECK(ops->counters_get(pi->inst, ident, &after) == HPF_OK, "counters_get failed");
#define SAT(a, b) ((a) > UINT64_MAX - (b) ? UINT64_MAX : (a) + (b))
    FUZZ_CHECK(after.published_msgs == SAT(before.published_msgs, 1) &&
                   after.published_bytes == SAT(before.published_bytes, 10) &&
                   after.received_msgs == SAT(before.received_msgs, 2) &&
                   after.received_bytes == SAT(before.received_bytes, 20),
               "counters of %s do not add up", ident);
#undef SAT
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_setup();
    dir = fuzz_tmpdir("file");
    path = g_build_filename(dir, "users.json", NULL);
    keys = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(keys, "path", path);

    /*
     * Load the module now and keep it: libFuzzer counts the coverage of
     * code mapped at start-up, and the per-input instances reuse it.
     */
    GHashTable *warm_keys = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(warm_keys, "path", "warm-up.json");
    GError *e = NULL;
    warm = plugin_instance_new(plugin_dir_resolve(NULL), "file", HPF_KIND_STORAGE, "storage",
                               warm_keys, dir, &e);
    if (!warm) {
        fprintf(stderr, "fuzz_file_storage: %s\n", e->message);
        abort();
    }
    g_hash_table_unref(warm_keys);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_file(path, data, size);
    GError *e = NULL;
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), "file",
                                                     HPF_KIND_STORAGE, "storage", keys, dir, &e);
    if (!pi) {
        fprintf(stderr, "fuzz_file_storage: %s\n", e->message);
        abort(); /* set-up, not input: the plugin must load */
    }
    if (!plugin_instance_start(pi, &e)) {
        FUZZ_CHECK(e && e->message && *e->message, "start() failed without a reason");
        g_clear_error(&e);
        plugin_instance_free(pi);
        return 0;
    }
    struct snapshot *s = snapshot_read(pi, &e);
    FUZZ_CHECK(s != NULL, "a started store gives no snapshot: %s", e->message);
    g_clear_error(&e);
    if (s) {
        check_keys(pi, s);
        check_write(pi, s);
        check_counters(pi, s);
        snapshot_free(s);
    }
    plugin_instance_free(pi);
    return 0;
}
