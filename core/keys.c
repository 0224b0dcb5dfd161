/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfriendsd --list-config-keys: every config key this build accepts, read
 * from the tables the parsers use (config_list_keys) and from the
 * config_keys list of each plugin in the plugin directory, which the loader
 * holds a section's keys against.  So the list cannot drift from what the
 * parsers take; tests/system/test_manpages.py holds hpfriendsd.conf(5) and
 * the sample config against it, and an operator can see what an installed
 * third-party plugin accepts.  Output, one item a line:
 *   key SECTION KEY      (SECTION: broker, web, ..., auth:NAME, sink:NAME)
 *   plugin NAME KINDS    (NAME: the descriptor's, e.g. storage_sqlite)
 *   key NAME KEY         (one per key of that plugin)
 */
#include "keys.h"

#include <gmodule.h>
#include <stdio.h>
#include <string.h>

#include <hpfriends/plugin.h>

#include "config.h"

static void print_core_key(const char *section, const char *key, void *ud)
{
    printf("key %s %s\n", section, key);
}

static void print_kinds(uint32_t kinds)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {HPF_KIND_STORAGE, "storage"},
        {HPF_KIND_AUTH, "auth"},
        {HPF_KIND_SINK, "sink"},
        {HPF_KIND_CLUSTER, "cluster"},
    };
    const char *sep = "";
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        if (kinds & names[i].bit) {
            printf("%s%s", sep, names[i].name);
            sep = ",";
        }
    }
    printf("\n");
}

/* One module: its name, kinds and keys, or FALSE with the reason on stderr. */
static gboolean print_plugin(const char *path)
{
    GModule *m = g_module_open(path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
    if (!m) {
        fprintf(stderr, "hpfriendsd: %s: cannot load: %s\n", path, g_module_error());
        return FALSE;
    }
    /* Never unloaded: a plugin may have registered GObject types. */
    g_module_make_resident(m);
    gpointer sym = NULL;
    const struct hpf_plugin *p = NULL;
    if (g_module_symbol(m, HPF_PLUGIN_ENTRY_SYMBOL, &sym) && sym)
        p = ((hpf_plugin_entry_fn)sym)();
    if (!p || !p->name || !*p->name || p->abi_major != HPF_ABI_MAJOR) {
        fprintf(stderr, "hpfriendsd: %s: not an hpfriends plugin of ABI major %d\n", path,
                HPF_ABI_MAJOR);
        return FALSE;
    }
    printf("plugin %s ", p->name);
    print_kinds(p->kinds);
    for (const char *const *k = p->config_keys; k && *k; k++)
        printf("key %s %s\n", p->name, *k);
    return TRUE;
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int keys_print(const char *plugin_dir)
{
    config_list_keys(print_core_key, NULL);
    GError *e = NULL;
    GDir *d = g_dir_open(plugin_dir, 0, &e);
    if (!d) {
        fprintf(stderr, "hpfriendsd: plugin directory: %s\n", e->message);
        g_error_free(e);
        return 1;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(d)))
        if (g_str_has_suffix(n, ".so"))
            g_ptr_array_add(names, g_strdup(n));
    g_dir_close(d);
    g_ptr_array_sort(names, compare_names);
    int rc = 0;
    for (guint i = 0; i < names->len; i++) {
        char *path = g_build_filename(plugin_dir, names->pdata[i], NULL);
        if (!print_plugin(path))
            rc = 1;
        g_free(path);
    }
    g_ptr_array_unref(names);
    return fflush(stdout) == 0 && rc == 0 ? 0 : 1;
}
