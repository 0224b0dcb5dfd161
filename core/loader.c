/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The plugin loader: finds a module by its config value, checks its
 * descriptor against a table of rules (ABI version, identity, kinds and
 * their ops), validates the keys configured for it and runs its create()
 * and start() phases; it also implements the host table every plugin is
 * handed (logging, config readers with config.c's grammar, authkey lookup,
 * auth grants, cluster injection), so plugins link nothing of the core.
 */
#include "loader.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "wire.h"

#ifndef HPF_PLUGINDIR
#define HPF_PLUGINDIR "/usr/local/lib/hpfriends/plugins"
#endif

G_DEFINE_QUARK(hpf - plugin - error - quark, hpf_plugin_error)

struct hpf_plugin_ctx {
    char *name;
    GHashTable *config; /* owned copy: key -> value */
    char *config_dir;
};

static struct plugin_instance *the_storage;

void plugin_set_storage(struct plugin_instance *storage) { the_storage = storage; }

/*
 * Set on the loop thread before the cluster plugin starts, cleared before
 * it is stopped, while its threads may still call in: the function pointer
 * is the switch, stored last when set (release) and first when cleared, and
 * loaded first (acquire) by host_cluster_inject().  What `data` points to
 * outlives the plugin's threads (cluster_free frees it after destroy()).
 */
static plugin_inject_fn the_inject;
static void *the_inject_data;
static const struct hpf_plugin_ctx *the_inject_ctx;

void plugin_set_cluster_inject(plugin_inject_fn fn, void *data, const struct hpf_plugin_ctx *from)
{
    if (!fn) {
        __atomic_store_n(&the_inject, NULL, __ATOMIC_SEQ_CST);
        return;
    }
    __atomic_store_n(&the_inject_data, data, __ATOMIC_RELAXED);
    __atomic_store_n(&the_inject_ctx, from, __ATOMIC_RELAXED);
    __atomic_store_n(&the_inject, fn, __ATOMIC_RELEASE);
}

const char *plugin_dir_resolve(const char *configured)
{
    const char *env = g_getenv("HPFRIENDS_PLUGIN_DIR");
    if (env && *env)
        return env;
    if (configured && *configured)
        return configured;
    return HPF_PLUGINDIR;
}

/* ---- the host table ---- */

static void host_log(const struct hpf_plugin_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_msgv(level, ctx ? ctx->name : "plugin", fmt, ap);
    va_end(ap);
}

static const char *host_config_get(const struct hpf_plugin_ctx *ctx, const char *key)
{
    return ctx->config ? g_hash_table_lookup(ctx->config, key) : NULL;
}

static char *host_config_path(const struct hpf_plugin_ctx *ctx, const char *key)
{
    const char *v = host_config_get(ctx, key);
    if (!v)
        return NULL;
    char *p = (g_path_is_absolute(v) || strstr(v, "://"))
                  ? g_strdup(v)
                  : g_build_filename(ctx->config_dir, v, NULL);
    /* Plugins free with free(): hand them malloc'd memory. */
    char *out = strdup(p);
    g_free(p);
    return out;
}

/* A value refused by config.c's grammar, as create() hands it back: "KEY: why". */
static int config_refused(const char *key, GError *e, char *err, size_t err_len)
{
    hpf_set_error(err, err_len, HPF_ERR_INVALID, "%s: %s", key, e->message);
    g_error_free(e);
    return HPF_ERR_INVALID;
}

static int host_config_bool(const struct hpf_plugin_ctx *ctx, const char *key, bool *out, char *err,
                            size_t err_len)
{
    if (!ctx || !key || !out)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "config_bool: bad arguments");
    const char *v = host_config_get(ctx, key);
    gboolean b;
    GError *e = NULL;
    if (!v)
        return HPF_OK;
    if (!config_value_bool(v, &b, &e))
        return config_refused(key, e, err, err_len);
    *out = b;
    return HPF_OK;
}

/* config_size and config_uint: the same frame around two parsers. */
static int host_config_number(const struct hpf_plugin_ctx *ctx, const char *key, bool size,
                              uint64_t min, uint64_t max, uint64_t *out, char *err, size_t err_len)
{
    if (!ctx || !key || !out || min > max)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "%s: bad arguments",
                             size ? "config_size" : "config_uint");
    const char *v = host_config_get(ctx, key);
    guint64 n;
    GError *e = NULL;
    if (!v)
        return HPF_OK;
    if (!(size ? config_value_size(v, min, max, &n, &e) : config_value_uint(v, min, max, &n, &e)))
        return config_refused(key, e, err, err_len);
    *out = n;
    return HPF_OK;
}

static int host_config_size(const struct hpf_plugin_ctx *ctx, const char *key, uint64_t min,
                            uint64_t max, uint64_t *out, char *err, size_t err_len)
{
    return host_config_number(ctx, key, true, min, max, out, err, err_len);
}

static int host_config_uint(const struct hpf_plugin_ctx *ctx, const char *key, uint64_t min,
                            uint64_t max, uint64_t *out, char *err, size_t err_len)
{
    return host_config_number(ctx, key, false, min, max, out, err, err_len);
}

static const char *host_instance_name(const struct hpf_plugin_ctx *ctx) { return ctx->name; }

static int host_authkey_lookup(const struct hpf_plugin_ctx *ctx, const char *ident,
                               hpf_authkey_cb cb, void *user_data)
{
    if (!the_storage || !the_storage->desc->storage->authkey_get)
        return HPF_ERR_UNSUPPORTED;
    return the_storage->desc->storage->authkey_get(the_storage->inst, ident, cb, user_data);
}

static bool host_auth_hash_matches(const struct hpf_auth_request *req, const char *secret)
{
    uint8_t want[WIRE_HASH_LEN];
    if (!secret || !req->hash)
        return false;
    if (wire_auth_hash(req->nonce, req->nonce_len, secret, strlen(secret), want) < 0)
        return false;
    return CRYPTO_memcmp(want, req->hash, WIRE_HASH_LEN) == 0;
}

static GPtrArray *copy_list(const char *const *items, size_t n)
{
    GPtrArray *a = g_ptr_array_new_full((guint)n, g_free);
    for (size_t i = 0; i < n; i++)
        if (items[i])
            g_ptr_array_add(a, g_strdup(items[i]));
    return a;
}

static void host_auth_grant(struct hpf_auth_request *pub, const struct hpf_authkey *key)
{
    struct auth_request *req = (struct auth_request *)pub;
    g_free(req->owner);
    req->owner = g_strdup(key->owner && *key->owner ? key->owner : pub->ident);
    if (req->publish)
        g_ptr_array_unref(req->publish);
    if (req->subscribe)
        g_ptr_array_unref(req->subscribe);
    req->publish = copy_list(key->publish, key->n_publish);
    req->subscribe = copy_list(key->subscribe, key->n_subscribe);
    req->granted = TRUE;
}

static int host_cluster_inject(const struct hpf_plugin_ctx *ctx, const struct hpf_message *msg)
{
    /* Only the cluster plugin speaks for other nodes. */
    plugin_inject_fn fn = __atomic_load_n(&the_inject, __ATOMIC_ACQUIRE);
    if (!fn || ctx != __atomic_load_n(&the_inject_ctx, __ATOMIC_RELAXED))
        return HPF_ERR_UNSUPPORTED;
    return fn(__atomic_load_n(&the_inject_data, __ATOMIC_RELAXED), msg);
}

static const struct hpf_host host_table = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .log = host_log,
    .config_get = host_config_get,
    .config_path = host_config_path,
    .instance_name = host_instance_name,
    .authkey_lookup = host_authkey_lookup,
    .auth_hash_matches = host_auth_hash_matches,
    .auth_grant = host_auth_grant,
    .cluster_inject = host_cluster_inject,
    .config_bool = host_config_bool,
    .config_size = host_config_size,
    .config_uint = host_config_uint,
};

const struct hpf_host *plugin_host(void) { return &host_table; }

void auth_request_init(struct auth_request *req) { memset(req, 0, sizeof *req); }

void auth_request_clear(struct auth_request *req)
{
    g_free(req->owner);
    if (req->publish)
        g_ptr_array_unref(req->publish);
    if (req->subscribe)
        g_ptr_array_unref(req->subscribe);
    memset(req, 0, sizeof *req);
}

gboolean plugin_auth_from_storage(const struct plugin_instance *pi)
{
    /* Before 1.4 the flags word was a reserved slot: ignore whatever is there. */
    return pi->desc->abi_minor >= 4 && pi->desc->auth &&
           (pi->desc->auth->flags & HPF_AUTH_FROM_STORAGE);
}

/* ---- the loader: a table of checks ---- */

static const char *kind_prefix(enum hpf_kind kind)
{
    switch (kind) {
    case HPF_KIND_STORAGE:
        return "storage";
    case HPF_KIND_AUTH:
        return "auth";
    case HPF_KIND_SINK:
        return "sink";
    case HPF_KIND_CLUSTER:
        return "cluster";
    }
    return "plugin";
}

struct load_check {
    const char *what;
    /* Returns NULL when fine, else a newly allocated reason. */
    char *(*check)(const struct hpf_plugin *p, enum hpf_kind kind);
};

static char *check_abi(const struct hpf_plugin *p, enum hpf_kind kind)
{
    if (p->abi_major != HPF_ABI_MAJOR || p->abi_minor > HPF_ABI_MINOR)
        return g_strdup_printf("built for plugin ABI %u.%u, this broker speaks %u.%u "
                               "(same major and a minor up to %u required)",
                               p->abi_major, p->abi_minor, HPF_ABI_MAJOR, HPF_ABI_MINOR,
                               HPF_ABI_MINOR);
    return NULL;
}

static char *check_identity(const struct hpf_plugin *p, enum hpf_kind kind)
{
    if (!p->name || !*p->name)
        return g_strdup("has no name");
    if (!p->create || !p->destroy)
        return g_strdup("lacks create() or destroy()");
    return NULL;
}

static char *check_kinds(const struct hpf_plugin *p, enum hpf_kind kind)
{
    if (!(p->kinds & kind))
        return g_strdup_printf("is not a %s plugin", kind_prefix(kind));
    if ((p->kinds & HPF_KIND_STORAGE) && !p->storage)
        return g_strdup("declares kind storage without storage ops");
    if ((p->kinds & HPF_KIND_AUTH) && (!p->auth || !p->auth->authenticate))
        return g_strdup("declares kind auth without auth ops");
    if ((p->kinds & HPF_KIND_SINK) && !p->sink)
        return g_strdup("declares kind sink without sink ops");
    /* p->cluster exists from ABI 1.3 on: older plugins' struct ends before it
     * in meaning (that slot was reserved, and zero). */
    if ((p->kinds & HPF_KIND_CLUSTER) &&
        (p->abi_minor < 3 || !p->cluster || !p->cluster->publish || !p->cluster->interest))
        return g_strdup("declares kind cluster without cluster ops (publish, interest)");
    if (p->storage && (p->kinds & HPF_KIND_STORAGE) &&
        (!p->storage->authkey_get || !p->storage->version || !p->storage->snapshot ||
         !p->storage->apply))
        return g_strdup("storage ops lack authkey_get, version, snapshot or apply");
    return NULL;
}

static const struct load_check load_checks[] = {
    {"ABI version", check_abi},
    {"identity", check_identity},
    {"kinds", check_kinds},
};

static char *find_module(const char *dir, const char *module, enum hpf_kind kind)
{
    if (strchr(module, '/'))
        return g_strdup(module);
    char *candidates[2];
    candidates[0] = g_strdup_printf("%s/%s_%s.so", dir, kind_prefix(kind), module);
    candidates[1] = g_strdup_printf("%s/%s.so", dir, module);
    char *found = NULL;
    for (int i = 0; i < 2; i++) {
        if (!found && g_file_test(candidates[i], G_FILE_TEST_EXISTS))
            found = candidates[i];
        else
            g_free(candidates[i]);
    }
    return found;
}

/* Every configured key must be one the plugin accepts; the refusal lists those. */
static gboolean check_config_keys(const struct hpf_plugin *p, GHashTable *config, GError **error)
{
    GHashTableIter it;
    gpointer k;
    if (!config)
        return TRUE;
    g_hash_table_iter_init(&it, config);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        gboolean known = FALSE;
        for (const char *const *ck = p->config_keys; ck && *ck; ck++)
            known |= !strcmp(*ck, k);
        if (known)
            continue;
        GString *acc = g_string_new(NULL);
        for (const char *const *ck = p->config_keys; ck && *ck; ck++)
            g_string_append_printf(acc, "%s%s", acc->len ? ", " : "", *ck);
        g_set_error(error, HPF_PLUGIN_ERROR, 0, "%s: unknown key for plugin '%s' (accepted: %s)",
                    (char *)k, p->name, acc->len ? acc->str : "none");
        g_string_free(acc, TRUE);
        return FALSE;
    }
    return TRUE;
}

void plugin_process_init(void) { g_setenv("MONGOC_DISABLE_SHM", "1", FALSE); }

struct plugin_instance *plugin_instance_new(const char *dir, const char *module, enum hpf_kind kind,
                                            const char *instance_name, GHashTable *config,
                                            const char *config_dir, GError **error)
{
    struct plugin_instance *pi = g_new0(struct plugin_instance, 1);
    char *path = find_module(dir, module, kind);
    char err[512] = "";

    pi->name = g_strdup(instance_name ? instance_name : module);
    if (!path) {
        g_set_error(error, HPF_PLUGIN_ERROR, 0,
                    "%s plugin '%s': not found (looked for %s/%s_%s.so and %s/%s.so)",
                    kind_prefix(kind), module, dir, kind_prefix(kind), module, dir, module);
        goto fail;
    }
    pi->module = g_module_open(path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
    if (!pi->module) {
        g_set_error(error, HPF_PLUGIN_ERROR, 0, "plugin '%s': cannot load %s: %s", module, path,
                    g_module_error());
        goto fail;
    }
    /*
     * Never unload: plugins may register GObject types (json-glib does),
     * which cannot be unregistered, so a reload would crash.
     */
    g_module_make_resident(pi->module);
    gpointer sym = NULL;
    if (!g_module_symbol(pi->module, HPF_PLUGIN_ENTRY_SYMBOL, &sym) || !sym) {
        g_set_error(error, HPF_PLUGIN_ERROR, 0, "plugin '%s': %s has no %s() entry point", module,
                    path, HPF_PLUGIN_ENTRY_SYMBOL);
        goto fail;
    }
    pi->desc = ((hpf_plugin_entry_fn)sym)();
    if (!pi->desc) {
        g_set_error(error, HPF_PLUGIN_ERROR, 0, "plugin '%s': %s() returned NULL", module,
                    HPF_PLUGIN_ENTRY_SYMBOL);
        goto fail;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(load_checks); i++) {
        char *why = load_checks[i].check(pi->desc, kind);
        if (why) {
            g_set_error(error, HPF_PLUGIN_ERROR, 0, "plugin '%s' (%s): %s",
                        pi->desc->name && *pi->desc->name ? pi->desc->name : module, path, why);
            g_free(why);
            goto fail;
        }
    }

    if (!check_config_keys(pi->desc, config, error))
        goto fail;

    pi->ctx = g_new0(struct hpf_plugin_ctx, 1);
    pi->ctx->name = g_strdup(pi->name);
    pi->ctx->config = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (config) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, config);
        while (g_hash_table_iter_next(&it, &k, &v))
            g_hash_table_insert(pi->ctx->config, g_strdup(k), g_strdup(v));
    }
    pi->ctx->config_dir = g_strdup(config_dir ? config_dir : ".");

    int rc = pi->desc->create(&host_table, pi->ctx, &pi->inst, err, sizeof err);
    if (rc != HPF_OK) {
        g_set_error(error, HPF_PLUGIN_ERROR, 0, "%s", *err ? err : hpf_strerror(rc));
        pi->inst = NULL;
        goto fail;
    }
    g_free(path);
    return pi;

fail:
    /* Every refusal names the config section it came from, like config.c. */
    g_prefix_error(error, "[%s] ", pi->name);
    g_free(path);
    pi->desc = NULL;
    plugin_instance_free(pi);
    return NULL;
}

gboolean plugin_instance_start(struct plugin_instance *pi, GError **error)
{
    char err[512] = "";
    if (pi->desc->start) {
        int rc = pi->desc->start(pi->inst, err, sizeof err);
        if (rc != HPF_OK) {
            g_set_error(error, HPF_PLUGIN_ERROR, 0, "[%s] %s", pi->name,
                        *err ? err : hpf_strerror(rc));
            return FALSE;
        }
    }
    pi->started = TRUE;
    return TRUE;
}

void plugin_instance_free(struct plugin_instance *pi)
{
    if (!pi)
        return;
    if (pi->desc && pi->inst)
        pi->desc->destroy(pi->inst);
    if (the_storage == pi)
        the_storage = NULL;
    if (pi->ctx) {
        g_free(pi->ctx->name);
        g_hash_table_unref(pi->ctx->config);
        g_free(pi->ctx->config_dir);
        g_free(pi->ctx);
    }
    if (pi->module)
        g_module_close(pi->module);
    g_free(pi->name);
    g_free(pi);
}
