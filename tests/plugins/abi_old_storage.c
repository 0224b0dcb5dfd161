/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A storage plugin as built for ABI 1.0, before console passwords: it
 * declares minor 0, knows users only, and refuses mutations it does not
 * know.  The broker must still load and use it (the ABI promise), and
 * refuse only setting a password through it, with a clear message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hpfriends/plugin.h>
#include <hpfriends/storage.h>

#define MAX_USERS 16

struct old_store {
    char users[MAX_USERS][65];
    int n_users;
    uint64_t version;
};

static const char *const config_keys[] = {NULL};

static int old_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                      void **instance, char *err, size_t err_len)
{
    (void)host;
    (void)ctx;
    (void)err;
    (void)err_len;
    *instance = calloc(1, sizeof(struct old_store));
    return *instance ? HPF_OK : HPF_ERR_NOMEM;
}

static void old_destroy(void *instance) { free(instance); }

static int old_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *ud)
{
    (void)instance;
    (void)ident;
    (void)cb;
    (void)ud;
    return HPF_ERR_NOTFOUND;
}

static int old_version(void *instance, uint64_t *version)
{
    *version = ((struct old_store *)instance)->version;
    return HPF_OK;
}

static int old_snapshot(void *instance, const struct hpf_snapshot_visitor *v, void *ud)
{
    struct old_store *s = instance;
    for (int i = 0; v->user && i < s->n_users; i++)
        v->user(ud, s->users[i], false);
    return HPF_OK;
}

static int old_apply(void *instance, const struct hpf_mutation *m, size_t n, char *err,
                     size_t err_len)
{
    struct old_store *s = instance;
    /* The 1.0 table of operations: anything newer is unknown. */
    for (size_t i = 0; i < n; i++) {
        if (m[i].op != HPF_MUT_USER_ADD || !m[i].user || strlen(m[i].user) > 64 ||
            s->n_users + (int)i >= MAX_USERS) {
            if (err && err_len)
                snprintf(err, err_len, "apply: unknown mutation %d", m[i].op);
            return HPF_ERR_INVALID;
        }
    }
    for (size_t i = 0; i < n; i++)
        strcpy(s->users[s->n_users++], m[i].user);
    s->version++;
    return HPF_OK;
}

static const struct hpf_storage_ops storage_ops = {
    .authkey_get = old_authkey_get,
    .version = old_version,
    .snapshot = old_snapshot,
    .apply = old_apply,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = 0,
    .name = "abi_old_storage",
    .version = "0",
    .description = "test storage plugin built for ABI 1.0",
    .kinds = HPF_KIND_STORAGE,
    .config_keys = config_keys,
    .create = old_create,
    .destroy = old_destroy,
    .storage = &storage_ops,
};

HPF_PLUGIN_DEFINE(plugin)
