/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * auth_storage: the default auth plugin.  Answers AUTH from the authkeys of
 * the configured storage, through the host's authkey_lookup.
 *
 *   unknown ident        DEFER (a later plugin may know it; all-DEFER denies)
 *   known, hash matches  ALLOW, granting the key's owner and channel lists
 *   known, hash differs  DENY
 *   lookup failed        DENY (fail closed), logged
 */
#include <stdlib.h>

#include <hpfriends/auth.h>
#include <hpfriends/plugin.h>

static const char *const config_keys[] = {NULL};

struct auth_storage {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;
};

struct check {
    const struct hpf_host *host;
    struct hpf_auth_request *req;
    bool seen;
    bool matched;
};

/* Decides inside the callback: the key view is only valid until it returns. */
static void on_authkey(void *user_data, const struct hpf_authkey *key)
{
    struct check *c = user_data;
    c->seen = true;
    /* A row without a secret never authenticates anyone. */
    if (!key->secret)
        return;
    if (c->host->auth_hash_matches(c->req, key->secret)) {
        c->host->auth_grant(c->req, key);
        c->matched = true;
    }
}

static int auth_storage_authenticate(void *instance, struct hpf_auth_request *req)
{
    struct auth_storage *a = instance;
    if (!req || !req->ident)
        return HPF_AUTH_DENY;

    struct check c = {.host = a->host, .req = req};
    int status = a->host->authkey_lookup(a->ctx, req->ident, on_authkey, &c);
    switch (status) {
    case HPF_OK:
        return c.seen && c.matched ? HPF_AUTH_ALLOW : HPF_AUTH_DENY;
    case HPF_ERR_NOTFOUND:
        return HPF_AUTH_DEFER;
    default:
        a->host->log(a->ctx, HPF_LOG_ERR, "authkey lookup of '%s' from %s failed: %s; denying",
                     req->ident, req->peer ? req->peer : "?", hpf_strerror(status));
        return HPF_AUTH_ERROR;
    }
}

static int auth_storage_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                               void **instance, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    struct auth_storage *a = calloc(1, sizeof(*a));
    if (!a)
        return HPF_ERR_NOMEM;
    a->host = host;
    a->ctx = ctx;
    *instance = a;
    return HPF_OK;
}

static void auth_storage_destroy(void *instance) { free(instance); }

static const struct hpf_auth_ops auth_ops = {
    .authenticate = auth_storage_authenticate,
    /* Grants come from storage's authkeys: the broker re-checks them on reload. */
    .flags = HPF_AUTH_FROM_STORAGE,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "auth_storage",
    .version = PLUGIN_VERSION,
    .description = "authenticates against the authkeys of the configured storage",
    .kinds = HPF_KIND_AUTH,
    .config_keys = config_keys,
    .create = auth_storage_create,
    .start = NULL,
    .destroy = auth_storage_destroy,
    .auth = &auth_ops,
};

HPF_PLUGIN_DEFINE(plugin)
