/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers of the storage tests: see store_check.h. */
#include <string.h>

#include <glib/gstdio.h>

#include <CUnit/Basic.h>

#include "store_check.h"

char errbuf[256];
const char *store_suite;
const char *const chans_ab[2] = {"a", "b"};
const char *const chans_c[1] = {"c"};

void rm_tree(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return;
    const char *name;
    while ((name = g_dir_read_name(d))) {
        char *p = g_build_filename(dir, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
            rm_tree(p);
        else
            g_remove(p);
        g_free(p);
    }
    g_dir_close(d);
    g_rmdir(dir);
}

struct plugin_instance *load_cfg(const char *module, GHashTable *cfg, const char *dir,
                                 GError **error)
{
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), module,
                                                     HPF_KIND_STORAGE, "storage", cfg, dir, error);
    if (pi && !plugin_instance_start(pi, error)) {
        plugin_instance_free(pi);
        pi = NULL;
    }
    return pi;
}

int apply(struct plugin_instance *pi, const struct hpf_mutation *m, size_t n)
{
    errbuf[0] = '\0';
    return S(pi)->apply(pi->inst, m, n, errbuf, sizeof errbuf);
}

uint64_t version_of(struct plugin_instance *pi)
{
    uint64_t v = 0;
    CU_ASSERT_EQUAL(S(pi)->version(pi->inst, &v), HPF_OK);
    return v;
}

/* ---- an authkey, copied out of the callback ---- */

char *join(const char *const *items, size_t n)
{
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(s, "%s%s", i ? "," : "", items[i]);
    return g_string_free(s, FALSE);
}

void got_cb(void *ud, const struct hpf_authkey *k)
{
    struct got *g = ud;
    g->calls++;
    g->ident = g_strdup(k->ident);
    g->owner = g_strdup(k->owner);
    g->secret = g_strdup(k->secret);
    g->pub = join(k->publish, k->n_publish);
    g->sub = join(k->subscribe, k->n_subscribe);
}

void got_clear(struct got *g)
{
    g_free(g->ident);
    g_free(g->owner);
    g_free(g->secret);
    g_free(g->pub);
    g_free(g->sub);
    memset(g, 0, sizeof(*g));
}

int get_key(struct plugin_instance *pi, const char *ident, struct got *g)
{
    got_clear(g);
    return S(pi)->authkey_get(pi->inst, ident, got_cb, g);
}

/* ---- a snapshot as sorted text lines ---- */

void v_user(void *ud, const char *name, bool admin)
{
    g_ptr_array_add(ud, g_strdup_printf("user %s%s", name, admin ? " admin" : ""));
}

void v_group(void *ud, const char *name, const char *owner)
{
    g_ptr_array_add(ud, g_strdup_printf("group %s owner=%s", name, owner));
}

void v_member(void *ud, const char *group, const char *user)
{
    g_ptr_array_add(ud, g_strdup_printf("member %s %s", group, user));
}

void v_share(void *ud, const char *from, const char *to, bool to_group, const char *channel,
             int type)
{
    g_ptr_array_add(ud,
                    g_strdup_printf("share %s %s:%s %s %s", from, to_group ? "group" : "user", to,
                                    channel, type == HPF_SHARE_ALL ? "shares_all" : "shares"));
}

void v_accept(void *ud, const char *user, const char *from, const char *channel)
{
    g_ptr_array_add(ud, g_strdup_printf("accept %s %s %s", user, from, channel));
}

void v_decline(void *ud, const char *user, const char *from, const char *channel)
{
    g_ptr_array_add(ud, g_strdup_printf("decline %s %s %s", user, from, channel));
}

void v_authkey(void *ud, const struct hpf_authkey *k)
{
    char *pub = join(k->publish, k->n_publish);
    char *sub = join(k->subscribe, k->n_subscribe);
    g_ptr_array_add(ud, g_strdup_printf("authkey %s owner=%s secret=%s pub=%s sub=%s", k->ident,
                                        k->owner, k->secret ? k->secret : "(null)", pub, sub));
    g_free(pub);
    g_free(sub);
}

const struct hpf_snapshot_visitor visitor = {
    .user = v_user,
    .group = v_group,
    .member = v_member,
    .share = v_share,
    .accept = v_accept,
    .authkey = v_authkey,
    .decline = v_decline,
};

gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *snapshot_with(struct plugin_instance *pi, const struct hpf_snapshot_visitor *v)
{
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    CU_ASSERT_EQUAL(S(pi)->snapshot(pi->inst, v, lines), HPF_OK);
    g_ptr_array_sort(lines, cmp_str);
    g_ptr_array_add(lines, NULL);
    char *text = g_strjoinv("\n", (char **)lines->pdata);
    g_ptr_array_unref(lines);
    return text;
}
