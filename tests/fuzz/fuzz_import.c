/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_import: `hpfriendsctl import` (admin_import() in core/export.c) into
 * storage_sqlite on a scratch file, and what runs on imported data.
 *
 * Input: a JSON document.  When the import succeeds:
 *  - export, import the export, export again: the two exports must be the
 *    same text (an export is always importable, and import loses nothing
 *    export shows);
 *  - the snapshot is flattened with graph_build() (with and without
 *    require_accept), and the flattened table must agree with
 *    admin_readers() (the independent walk behind `hpfriendsctl readers`)
 *    on who reads whom, for every user and channel of the data;
 *  - the Graphviz output is made.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "fuzz_common.h"
#include "graph.h"

/* Bounds on the cross-check, so a big input cannot time out. */
#define MAX_NAMES    40
#define MAX_CHANNELS 6

static struct admin adm;

static void add_name(GPtrArray *names, GHashTable *seen, const char *n)
{
    if (names->len < MAX_NAMES && g_hash_table_add(seen, (gpointer)n))
        g_ptr_array_add(names, (gpointer)n);
}

static void check_graph(const struct snapshot *s, gboolean require_accept)
{
    struct graph *g = graph_build(s, require_accept);
    struct graph_stats st;
    graph_get_stats(g, &st);

    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    GPtrArray *names = g_ptr_array_new();
    for (guint i = 0; i < s->users->len; i++)
        add_name(names, seen, s->users->pdata[i]);
    for (guint i = 0; i < s->authkeys->len; i++)
        add_name(names, seen, ((struct snap_authkey *)s->authkeys->pdata[i])->owner);
    for (guint i = 0; i < s->members->len; i++)
        add_name(names, seen, ((struct snap_member *)s->members->pdata[i])->user);
    GHashTable *cseen = g_hash_table_new(g_str_hash, g_str_equal);
    GPtrArray *chans = g_ptr_array_new();
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        add_name(names, seen, sh->from);
        if (!sh->to_group)
            add_name(names, seen, sh->to);
        if (chans->len < MAX_CHANNELS && g_hash_table_add(cseen, sh->channel))
            g_ptr_array_add(chans, sh->channel);
    }
    g_ptr_array_add(chans, "fuzz.no-such-channel");

    for (guint u = 0; u < names->len; u++) {
        const char *pub = names->pdata[u];
        for (guint ci = 0; ci < chans->len; ci++) {
            const char *chan = chans->pdata[ci];
            GPtrArray *r = admin_readers(s, pub, chan, require_accept);
            FUZZ_CHECK(r->len >= 1 && !strcmp(((struct admin_reader *)r->pdata[0])->user, pub),
                       "readers of %s on %s do not start with the publisher", pub, chan);
            GHashTable *rs = g_hash_table_new(g_str_hash, g_str_equal);
            for (guint i = 0; i < r->len; i++)
                g_hash_table_add(rs, ((struct admin_reader *)r->pdata[i])->user);
            for (guint k = 0; k < names->len; k++) {
                const char *reader = names->pdata[k];
                gboolean says = g_hash_table_contains(rs, reader);
                gboolean flat = graph_may_read(g, pub, chan, reader);
                FUZZ_CHECK(says == flat,
                           "require_accept=%d: '%s' on '%s' read by '%s': readers says %s, "
                           "the flattened graph says %s",
                           require_accept, pub, chan, reader, says ? "yes" : "no",
                           flat ? "yes" : "no");
            }
            g_hash_table_unref(rs);
            g_ptr_array_unref(r);
        }
    }
    g_ptr_array_unref(chans);
    g_hash_table_unref(cseen);
    g_ptr_array_unref(names);
    g_hash_table_unref(seen);
    graph_free(g);
}

static void check_imported(void)
{
    GError *e = NULL;
    char *first = admin_export(&adm, &e);
    FUZZ_CHECK(first != NULL, "export after a good import failed: %s", e->message);
    if (!first) {
        g_clear_error(&e);
        return;
    }

    struct snapshot *s = admin_snapshot(&adm, &e);
    FUZZ_CHECK(s != NULL, "snapshot after a good import failed: %s", e->message);
    g_clear_error(&e);
    if (s) {
        check_graph(s, FALSE);
        check_graph(s, TRUE);
        g_free(admin_graph_dot(s));
        snapshot_free(s);
    }

    gboolean ok = admin_import(&adm, first, strlen(first), &e);
    FUZZ_CHECK(ok, "an export does not import again: %s\n--- export ---\n%s", e->message, first);
    g_clear_error(&e);
    if (ok) {
        char *second = admin_export(&adm, &e);
        FUZZ_CHECK(second && !strcmp(first, second),
                   "export, import, export changed the data\n--- first ---\n%s\n--- second "
                   "---\n%s",
                   first, second ? second : e->message);
        g_clear_error(&e);
        g_free(second);
    }
    g_free(first);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_setup();
    char *dir = fuzz_tmpdir("import");
    GHashTable *keys = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(keys, "path", "import.db");
    GError *e = NULL;
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), "sqlite",
                                                     HPF_KIND_STORAGE, "storage", keys, dir, &e);
    if (!pi || !plugin_instance_start(pi, &e)) {
        fprintf(stderr, "fuzz_import: storage_sqlite: %s\n", e ? e->message : "failed");
        abort();
    }
    adm.storage = pi;
    g_hash_table_unref(keys);
    g_free(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *e = NULL;
    if (admin_import(&adm, (const char *)data, size, &e)) {
        FUZZ_CHECK(e == NULL, "import succeeded with an error set");
        check_imported();
    } else {
        FUZZ_CHECK(e && e->message && *e->message, "import failed without a reason");
    }
    g_clear_error(&e);
    return 0;
}
