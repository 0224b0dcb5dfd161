/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the storage tests share: a store opened through the real plugin
 * loader, mutations applied with the plugin's error text kept, authkeys
 * copied out of their callback, and a snapshot rendered as sorted text
 * lines, so that a whole store compares as one string.
 *
 * Used by tests/storage/test_backends.c (the contract, every backend) and
 * tests/plugins/test_storage_sqlite.c (what is SQLite's own).
 */
#ifndef HPF_TESTS_STORE_CHECK_H
#define HPF_TESTS_STORE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "loader.h"

/* The error text of the last apply(). */
extern char errbuf[256];
/* Named in CHECK_SNAPSHOT's report when set (the suite under test). */
extern const char *store_suite;
/* One line per user, group, member, share, acceptance, decline and authkey: the
 * callbacks of `visitor`, for visitors that take only some of them. */
extern const struct hpf_snapshot_visitor visitor;
void v_user(void *ud, const char *name, bool admin);
void v_group(void *ud, const char *name, const char *owner);
void v_member(void *ud, const char *group, const char *user);
void v_share(void *ud, const char *from, const char *to, bool to_group, const char *channel,
             int type);
void v_accept(void *ud, const char *user, const char *from, const char *channel);
void v_decline(void *ud, const char *user, const char *from, const char *channel);
void v_authkey(void *ud, const struct hpf_authkey *k);

extern const char *const chans_ab[2];
extern const char *const chans_c[1];

/* Removes dir and everything below it. */
void rm_tree(const char *dir);

/* Loads and starts storage plugin `module` with cfg; relative paths in cfg
 * resolve against dir. */
struct plugin_instance *load_cfg(const char *module, GHashTable *cfg, const char *dir,
                                 GError **error);

static inline const struct hpf_storage_ops *S(struct plugin_instance *pi)
{
    return pi->desc->storage;
}

int apply(struct plugin_instance *pi, const struct hpf_mutation *m, size_t n);
#define APPLY1(pi, ...) apply((pi), &(struct hpf_mutation){__VA_ARGS__}, 1)

/* The store's version; a failing call is a failed assertion. */
uint64_t version_of(struct plugin_instance *pi);

/* An authkey, copied out of the callback. */
struct got {
    int calls;
    char *ident, *owner, *secret, *pub, *sub;
};

char *join(const char *const *items, size_t n);
/* An authkey_get callback filling the struct got that ud points at. */
void got_cb(void *ud, const struct hpf_authkey *k);
void got_clear(struct got *g);
int get_key(struct plugin_instance *pi, const char *ident, struct got *g);

/* Orders an array of strings (g_ptr_array_sort, qsort). */
gint cmp_str(gconstpointer a, gconstpointer b);

/* The snapshot seen through v (whose user data is a GPtrArray of lines),
 * sorted and joined with newlines. */
char *snapshot_with(struct plugin_instance *pi, const struct hpf_snapshot_visitor *v);

#define CHECK_SNAPSHOT(pi, expected)                                                               \
    do {                                                                                           \
        char *snap_ = snapshot_with((pi), &visitor);                                               \
        if (strcmp(snap_, (expected)) != 0)                                                        \
            fprintf(stderr, "\n%s snapshot:\n%s\nexpected:\n%s\n", store_suite ? store_suite : "", \
                    snap_, (expected));                                                            \
        CU_ASSERT_STRING_EQUAL(snap_, (expected));                                                 \
        g_free(snap_);                                                                             \
    } while (0)

#endif
