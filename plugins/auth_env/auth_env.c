/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * auth_env: read-only authkeys from the environment, hpfeeds-broker's
 * `--auth env`.  An ident IDENT is known when HPFEEDS_<IDENT>_SECRET is set
 * and not empty, IDENT upper-cased in the variable's name (so `james` and
 * `JAMES` are one key); HPFEEDS_<IDENT>_OWNER names its owner (default: the
 * ident), HPFEEDS_<IDENT>_PUBCHANS and _SUBCHANS its channels, ','-separated
 * (empty items are dropped: no one publishes on the empty channel).
 *
 *   unknown ident        DEFER (a later source may know it)
 *   known, hash matches  ALLOW with the key's owner and channel lists
 *   known, hash differs  DENY
 *
 * The variables are read once, when the plugin is created: a process's
 * environment does not change from outside, and AUTH runs on a worker
 * thread where getenv() would race with anything that sets one.  Nothing
 * can write these keys; hpfriendsctl and the console do not see them.
 */
#include <string.h>

#include <glib.h>

#include <hpfriends/auth.h>
#include <hpfriends/names.h>
#include <hpfriends/plugin.h>

#define PREFIX "HPFEEDS_"

static const char *const config_keys[] = {NULL};

struct auth_env {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;
    GHashTable *vars; /* HPFEEDS_* name -> value, a copy of the environment at create() */
};

static const char *var(const struct auth_env *a, const char *upper, const char *what)
{
    char *name = g_strconcat(PREFIX, upper, "_", what, NULL);
    const char *v = g_hash_table_lookup(a->vars, name);
    g_free(name);
    return v;
}

/* "a,b,,c" -> {"a", "b", "c"}, each a valid channel name, at most HPF_KEY_CHANNELS_MAX. */
static GPtrArray *channel_list(const char *text)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    char **parts = g_strsplit(text ? text : "", ",", -1);
    for (char **p = parts; *p && out->len < HPF_KEY_CHANNELS_MAX; p++)
        if (**p && !hpf_name_check(*p, HPF_NAME_MAX))
            g_ptr_array_add(out, g_strdup(*p));
    g_strfreev(parts);
    return out;
}

static int grant(struct auth_env *a, struct hpf_auth_request *req, const char *upper,
                 const char *secret)
{
    if (!a->host->auth_hash_matches(req, secret))
        return HPF_AUTH_DENY;
    const char *owner = var(a, upper, "OWNER");
    GPtrArray *pub = channel_list(var(a, upper, "PUBCHANS"));
    GPtrArray *sub = channel_list(var(a, upper, "SUBCHANS"));
    struct hpf_authkey key = {
        .ident = req->ident,
        .owner = owner && !hpf_name_check(owner, HPF_NAME_MAX) ? owner : req->ident,
        .secret = secret,
        .publish = (const char *const *)pub->pdata,
        .n_publish = pub->len,
        .subscribe = (const char *const *)sub->pdata,
        .n_subscribe = sub->len,
    };
    a->host->auth_grant(req, &key);
    g_ptr_array_unref(pub);
    g_ptr_array_unref(sub);
    return HPF_AUTH_ALLOW;
}

static int auth_env_authenticate(void *instance, struct hpf_auth_request *req)
{
    struct auth_env *a = instance;
    if (!req || !req->ident)
        return HPF_AUTH_DENY;
    if (hpf_name_check(req->ident, HPF_NAME_MAX))
        return HPF_AUTH_DEFER;
    char *upper = g_utf8_strup(req->ident, -1);
    const char *secret = var(a, upper, "SECRET");
    int verdict = secret && *secret ? grant(a, req, upper, secret) : HPF_AUTH_DEFER;
    g_free(upper);
    return verdict;
}

/* Copies the HPFEEDS_* variables; returns how many keys (…_SECRET) there are. */
static guint snapshot_environment(GHashTable *vars)
{
    guint keys = 0;
    char **env = g_get_environ();
    for (char **e = env; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || !g_str_has_prefix(*e, PREFIX))
            continue;
        char *name = g_strndup(*e, (gsize)(eq - *e));
        if (g_str_has_suffix(name, "_SECRET") && eq[1])
            keys++;
        g_hash_table_replace(vars, name, g_strdup(eq + 1));
    }
    g_strfreev(env);
    return keys;
}

static int auth_env_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                           void **instance, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    struct auth_env *a = g_new0(struct auth_env, 1);
    a->host = host;
    a->ctx = ctx;
    a->vars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    guint keys = snapshot_environment(a->vars);
    host->log(ctx, HPF_LOG_INFO,
              "%u read-only key%s from HPFEEDS_<IDENT>_SECRET environment variables", keys,
              keys == 1 ? "" : "s");
    *instance = a;
    return HPF_OK;
}

static void auth_env_destroy(void *instance)
{
    struct auth_env *a = instance;
    if (!a)
        return;
    g_hash_table_destroy(a->vars);
    g_free(a);
}

static const struct hpf_auth_ops auth_ops = {
    .authenticate = auth_env_authenticate,
    .flags = 0, /* not storage's keys: a grant holds for the session */
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "auth_env",
    .version = PLUGIN_VERSION,
    .description = "read-only authkeys from HPFEEDS_<IDENT>_* environment variables",
    .kinds = HPF_KIND_AUTH,
    .config_keys = config_keys,
    .create = auth_env_create,
    .start = NULL,
    .destroy = auth_env_destroy,
    .auth = &auth_ops,
};

HPF_PLUGIN_DEFINE(plugin)
