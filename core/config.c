/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Broker configuration: reads hpfriendsd.conf (a GLib key file) into struct
 * config, or applies hpfeeds3-style flags, and holds the one grammar for
 * config values (booleans, sizes, numbers) that the [broker] table, the
 * console and, through the loader's host table, every plugin use.  Pure:
 * parsing and validation, no side effects; every error names the file,
 * section and key.
 */
#include "config.h"

#include <hpfriends/storage.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

G_DEFINE_QUARK(hpf - config - error - quark, config_error)

#define DEFAULT_LISTEN      "tcp:127.0.0.1:10000"
#define HPFEEDS3_LISTEN     "tcp:0.0.0.0:20000"
#define HPFEEDS3_LISTEN_TLS "tls:0.0.0.0:20000"

void plugin_conf_free(struct plugin_conf *pc)
{
    if (!pc)
        return;
    g_free(pc->section);
    g_free(pc->name);
    g_free(pc->plugin);
    if (pc->keys)
        g_hash_table_unref(pc->keys);
    g_free(pc);
}

struct config *config_new_default(void)
{
    struct config *cfg = g_new0(struct config, 1);
    cfg->dir = g_get_current_dir();
    cfg->name = g_strdup("hpfeeds"); /* hpfeeds-broker's; a config file says hpfriends */
    cfg->listen = g_ptr_array_new_with_free_func((GDestroyNotify)listen_addr_free);
    cfg->access = ACCESS_CHANNELS;
    cfg->reload_interval = 2;
    cfg->require_accept = FALSE;
    cfg->audit_keep = HPF_AUDIT_KEEP_DEFAULT;
    cfg->error_style = ERROR_STYLE_HPFEEDS;
    cfg->on_denied = ON_DENIED_CLOSE;
    cfg->max_frame = WIRE_DEFAULT_MAX_FRAME;
    cfg->max_queued_bytes = 8u * 1024 * 1024;
    cfg->slow_deadline = 30;
    cfg->backpressure_hold = 2000;
    cfg->max_connections = 10000;
    cfg->max_connections_per_ip = 1000;
    cfg->auth_failures_before_backoff = 10;
    cfg->auth_backoff = 10;
    cfg->auth_timeout = 30;
    cfg->frame_timeout = 30;
    cfg->input_budget = 64u * 1024 * 1024;
    cfg->input_budget_per_ip = 16u * 1024 * 1024;
    cfg->auth = g_ptr_array_new_with_free_func((GDestroyNotify)plugin_conf_free);
    cfg->sinks = g_ptr_array_new_with_free_func((GDestroyNotify)plugin_conf_free);
    return cfg;
}

struct plugin_conf *plugin_conf_new(const char *section, const char *name, const char *plugin)
{
    struct plugin_conf *pc = g_new0(struct plugin_conf, 1);
    pc->section = g_strdup(section);
    pc->name = g_strdup(name);
    pc->plugin = g_strdup(plugin);
    pc->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return pc;
}

void config_prefix_error(const struct config *cfg, GError **error)
{
    if (cfg && cfg->path && error && *error) {
        char *base = g_path_get_basename(cfg->path);
        g_prefix_error(error, "%s: ", base);
        g_free(base);
    }
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    g_free(cfg->path);
    g_free(cfg->dir);
    g_free(cfg->name);
    g_ptr_array_unref(cfg->listen);
    g_free(cfg->plugin_dir);
    g_free(cfg->tls_cert);
    g_free(cfg->tls_key);
    g_free(cfg->exporter);
    g_free(cfg->log_level);
    g_free(cfg->user);
    g_free(cfg->group);
    g_free(cfg->pid_file);
    web_conf_free(cfg->web);
    plugin_conf_free(cfg->storage);
    plugin_conf_free(cfg->cluster);
    g_ptr_array_unref(cfg->auth);
    g_ptr_array_unref(cfg->sinks);
    g_free(cfg);
}

void listen_addr_free(struct listen_addr *la)
{
    if (!la)
        return;
    g_free(la->host);
    g_free(la->port);
    g_free(la->device);
    g_free(la);
}

char *listen_addr_to_string(const struct listen_addr *la)
{
    gboolean v6 = strchr(la->host, ':') != NULL;
    return g_strdup_printf("%s:%s%s%s:%s", la->tls ? "tls" : "tcp", v6 ? "[" : "", la->host,
                           v6 ? "]" : "", la->port);
}

struct listen_addr *config_parse_listen(const char *spec, GError **error)
{
    const char *s = spec;
    gboolean tls = FALSE;
    while (g_ascii_isspace(*s))
        s++;
    if (g_str_has_prefix(s, "tcp:"))
        s += 4;
    else if (g_str_has_prefix(s, "tls:")) {
        s += 4;
        tls = TRUE;
    }
    char *host = NULL;
    const char *port;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            g_set_error(error, CONFIG_ERROR, 0, "'%s': expected [IPV6]:PORT", spec);
            return NULL;
        }
        host = g_strndup(s + 1, (gsize)(close - s - 1));
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            g_set_error(error, CONFIG_ERROR, 0, "'%s': expected HOST:PORT", spec);
            return NULL;
        }
        if (memchr(s, ':', (gsize)(colon - s))) {
            g_set_error(error, CONFIG_ERROR, 0,
                        "'%s': put an IPv6 address in brackets, e.g. tcp:[::1]:10000", spec);
            return NULL;
        }
        host = g_strndup(s, (gsize)(colon - s));
        port = colon + 1;
    }
    char *port_s = g_strstrip(g_strdup(port));
    guint64 pnum;
    if (!g_ascii_string_to_unsigned(port_s, 10, 0, 65535, &pnum, NULL)) {
        g_set_error(error, CONFIG_ERROR, 0, "'%s': port must be a number from 0 to 65535", spec);
        g_free(host);
        g_free(port_s);
        return NULL;
    }
    struct listen_addr *la = g_new0(struct listen_addr, 1);
    la->tls = tls;
    la->host = host;
    la->port = port_s;
    return la;
}

/*
 * The value grammar, one implementation for the [broker] and [web] keys and
 * for plugins (the loader's host->config_bool/size/uint call these).
 */
gboolean config_parse_bool(const char *s, gboolean *out)
{
    static const char *const yes[] = {"true", "yes", "1"};
    static const char *const no[] = {"false", "no", "0"};
    for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (!g_ascii_strcasecmp(s, yes[i]) || !g_ascii_strcasecmp(s, no[i])) {
            *out = !g_ascii_strcasecmp(s, yes[i]);
            return TRUE;
        }
    }
    return FALSE;
}

gboolean config_parse_size(const char *s, guint64 *out)
{
    char *end = NULL;
    while (g_ascii_isspace(*s))
        s++;
    if (!g_ascii_isdigit(*s))
        return FALSE;
    errno = 0;
    guint64 v = g_ascii_strtoull(s, &end, 10);
    if (errno)
        return FALSE;
    guint64 mul = 1;
    while (g_ascii_isspace(*end))
        end++;
    switch (g_ascii_toupper(*end)) {
    case 'K':
        mul = 1024;
        end++;
        break;
    case 'M':
        mul = 1024 * 1024;
        end++;
        break;
    case 'G':
        mul = 1024 * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (mul > 1 && (*end == 'i' || *end == 'I'))
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    while (g_ascii_isspace(*end))
        end++;
    if (*end != '\0' || (v != 0 && mul > G_MAXUINT64 / v))
        return FALSE;
    *out = v * mul;
    return TRUE;
}

gboolean config_value_bool(const char *v, gboolean *out, GError **error)
{
    if (config_parse_bool(v, out))
        return TRUE;
    g_set_error(error, CONFIG_ERROR, 0, "expected true or false (or yes, no, 1, 0), got '%s'", v);
    return FALSE;
}

gboolean config_value_uint(const char *v, guint64 min, guint64 max, guint64 *out, GError **error)
{
    if (g_ascii_string_to_unsigned(v, 10, min, max, out, NULL))
        return TRUE;
    g_set_error(error, CONFIG_ERROR, 0,
                "expected a whole number from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
                ", got '%s'",
                min, max, v);
    return FALSE;
}

/* A bound as an operator would write it: 65536 -> "64K". */
static char *size_text(guint64 n)
{
    static const char suffix[] = "KMG";
    int i = -1;
    while (i < 2 && n >= 1024 && n % 1024 == 0) {
        n /= 1024;
        i++;
    }
    return i < 0 ? g_strdup_printf("%" G_GUINT64_FORMAT, n)
                 : g_strdup_printf("%" G_GUINT64_FORMAT "%c", n, suffix[i]);
}

gboolean config_value_size(const char *v, guint64 min, guint64 max, guint64 *out, GError **error)
{
    guint64 n;
    if (config_parse_size(v, &n) && n >= min && n <= max) {
        *out = n;
        return TRUE;
    }
    char *lo = size_text(min), *hi = size_text(max);
    if (max >= G_MAXUINT64 / 2)
        g_set_error(error, CONFIG_ERROR, 0,
                    "expected a size in bytes (K, M, G suffixes allowed) of at least %s, got '%s'",
                    lo, v);
    else
        g_set_error(error, CONFIG_ERROR, 0,
                    "expected a size in bytes (K, M, G suffixes allowed) from %s to %s, got '%s'",
                    lo, hi, v);
    g_free(lo);
    g_free(hi);
    return FALSE;
}

char *config_resolve_path(const struct config *cfg, const char *path)
{
    if (!path)
        return NULL;
    if (g_path_is_absolute(path) || strstr(path, "://"))
        return g_strdup(path);
    return g_build_filename(cfg->dir, path, NULL);
}

/* ---- the [broker] section, as a table ---- */

enum key_type { K_STRING, K_UINT, K_SIZE, K_BOOL, K_LISTEN, K_ENUM };

struct key_def {
    const char *key;
    enum key_type type;
    gsize offset;
    guint64 min, max;
    const char *const *choices; /* K_ENUM: names, index = value */
};

static const char *const access_names[] = {"channels", "graph", NULL};
static const char *const style_names[] = {"hpfeeds", "legacy", NULL};
static const char *const denied_names[] = {"close", "continue", NULL};

#define OFF(f) G_STRUCT_OFFSET(struct config, f)
static const struct key_def broker_keys[] = {
    {"name", K_STRING, OFF(name), 0, 0, NULL},
    {"listen", K_LISTEN, OFF(listen), 0, 0, NULL},
    {"access", K_ENUM, OFF(access), 0, 0, access_names},
    {"reload_interval", K_UINT, OFF(reload_interval), 1, 86400, NULL},
    {"require_accept", K_BOOL, OFF(require_accept), 0, 0, NULL},
    {"audit_keep", K_UINT, OFF(audit_keep), 1, 100000000, NULL},
    {"error_style", K_ENUM, OFF(error_style), 0, 0, style_names},
    {"on_denied", K_ENUM, OFF(on_denied), 0, 0, denied_names},
    {"max_frame", K_SIZE, OFF(max_frame), 64, G_MAXUINT32, NULL},
    {"max_queued_bytes", K_SIZE, OFF(max_queued_bytes), 4096, G_MAXSIZE, NULL},
    {"slow_deadline", K_UINT, OFF(slow_deadline), 1, 86400, NULL},
    {"backpressure_hold", K_UINT, OFF(backpressure_hold), 0, 60000, NULL},
    {"max_connections", K_UINT, OFF(max_connections), 1, 1000000, NULL},
    {"max_connections_per_ip", K_UINT, OFF(max_connections_per_ip), 0, 1000000, NULL},
    {"auth_failures_before_backoff", K_UINT, OFF(auth_failures_before_backoff), 0, 1000000, NULL},
    {"auth_backoff", K_UINT, OFF(auth_backoff), 1, 3600, NULL},
    {"auth_timeout", K_UINT, OFF(auth_timeout), 1, 3600, NULL},
    {"plugin_dir", K_STRING, OFF(plugin_dir), 0, 0, NULL},
    {"tls_cert", K_STRING, OFF(tls_cert), 0, 0, NULL},
    {"tls_key", K_STRING, OFF(tls_key), 0, 0, NULL},
    {"exporter", K_STRING, OFF(exporter), 0, 0, NULL},
    {"log_level", K_STRING, OFF(log_level), 0, 0, NULL},
    {"user", K_STRING, OFF(user), 0, 0, NULL},
    {"group", K_STRING, OFF(group), 0, 0, NULL},
    {"pid_file", K_STRING, OFF(pid_file), 0, 0, NULL},
    /* The input budget (conn.c). */
    {"frame_timeout", K_UINT, OFF(frame_timeout), 1, 3600, NULL},
    {"input_budget", K_SIZE, OFF(input_budget), 64 * 1024, G_MAXSIZE, NULL},
    {"input_budget_per_ip", K_SIZE, OFF(input_budget_per_ip), 64 * 1024, G_MAXSIZE, NULL},
};
#undef OFF

static gboolean fail(GError **error, const char *file, const char *section, const char *key,
                     const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static gboolean fail(GError **error, const char *file, const char *section, const char *key,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *base = g_path_get_basename(file);
    if (key)
        g_set_error(error, CONFIG_ERROR, 0, "%s: [%s] %s: %s", base, section, key, why);
    else
        g_set_error(error, CONFIG_ERROR, 0, "%s: [%s]: %s", base, section, why);
    g_free(base);
    g_free(why);
    return FALSE;
}

static gboolean set_broker_key(struct config *cfg, const struct key_def *d, const char *value,
                               const char *file, GError **error)
{
    void *field = G_STRUCT_MEMBER_P(cfg, d->offset);
    char *v = g_strstrip(g_strdup(value));
    gboolean ok = TRUE;
    guint64 n;
    GError *e = NULL;

    switch (d->type) {
    case K_STRING:
        if (!*v) {
            ok = fail(error, file, "broker", d->key, "must not be empty");
            break;
        }
        g_free(*(char **)field);
        *(char **)field = g_strdup(v);
        break;
    case K_UINT:
        ok = config_value_uint(v, d->min, d->max, &n, &e);
        if (ok)
            *(guint *)field = (guint)n;
        break;
    case K_SIZE:
        ok = config_value_size(v, d->min, d->max, &n, &e);
        if (ok && d->max == G_MAXUINT32)
            *(guint32 *)field = (guint32)n;
        else if (ok)
            *(gsize *)field = (gsize)n;
        break;
    case K_BOOL:
        ok = config_value_bool(v, (gboolean *)field, &e);
        break;
    case K_ENUM: {
        int idx = -1;
        for (int i = 0; d->choices[i]; i++)
            if (!strcmp(v, d->choices[i]))
                idx = i;
        if (idx < 0) {
            char *all = g_strjoinv(" or ", (char **)d->choices);
            ok = fail(error, file, "broker", d->key, "expected %s, got '%s'", all, v);
            g_free(all);
            break;
        }
        *(int *)field = idx;
        break;
    }
    case K_LISTEN: {
        g_ptr_array_set_size(cfg->listen, 0);
        char **parts = g_strsplit(v, ";", -1);
        for (char **p = parts; *p && ok; p++) {
            if (!*g_strstrip(*p))
                continue;
            struct listen_addr *la = config_parse_listen(*p, &e);
            if (!la) {
                ok = FALSE; /* e is reported below */
                break;
            }
            g_ptr_array_add(cfg->listen, la);
        }
        g_strfreev(parts);
        if (ok && cfg->listen->len == 0)
            ok = fail(error, file, "broker", d->key, "needs at least one address");
        break;
    }
    }
    if (e) {
        fail(error, file, "broker", d->key, "%s", e->message);
        g_error_free(e);
    }
    g_free(v);
    return ok;
}

/* [auth] takes only the chain; the plugins' own keys go in [auth:NAME]. */
static const char *const auth_keys[] = {"chain", NULL};

/* The keys core/sinks.c takes out of every [sink:NAME] before the plugin sees the rest. */
static const char *const sink_core_keys[] = {"channels", "queue_size", NULL};

/* The sections that name a plugin with `plugin =` (config_list_keys). */
static const char *const plugin_sections[] = {"storage", "cluster", "auth:NAME", "sink:NAME", NULL};

void config_list_keys(config_key_cb cb, void *ud)
{
    for (gsize k = 0; k < G_N_ELEMENTS(broker_keys); k++)
        cb("broker", broker_keys[k].key, ud);
    for (const char *const *k = config_web_keys; *k; k++)
        cb("web", *k, ud);
    for (const char *const *k = auth_keys; *k; k++)
        cb("auth", *k, ud);
    for (const char *const *s = plugin_sections; *s; s++)
        cb(*s, "plugin", ud);
    for (const char *const *k = sink_core_keys; *k; k++)
        cb("sink:NAME", *k, ud);
}

static gboolean load_broker(struct config *cfg, GKeyFile *kf, const char *file, GError **error)
{
    gsize n = 0;
    char **keys = g_key_file_get_keys(kf, "broker", &n, NULL);
    gboolean ok = TRUE;
    for (gsize i = 0; i < n && ok; i++) {
        const struct key_def *d = NULL;
        for (gsize k = 0; k < G_N_ELEMENTS(broker_keys); k++)
            if (!strcmp(keys[i], broker_keys[k].key))
                d = &broker_keys[k];
        if (!d) {
            ok = fail(error, file, "broker", keys[i], "unknown key");
            break;
        }
        char *value = g_key_file_get_value(kf, "broker", keys[i], NULL);
        ok = set_broker_key(cfg, d, value, file, error);
        g_free(value);
    }
    g_strfreev(keys);
    return ok;
}

static struct plugin_conf *load_plugin_section(GKeyFile *kf, const char *section, const char *name,
                                               const char *default_plugin, const char *file,
                                               GError **error)
{
    char *plugin = g_key_file_get_value(kf, section, "plugin", NULL);
    if (plugin)
        g_strstrip(plugin);
    if (!plugin || !*plugin) {
        g_free(plugin);
        if (!default_plugin) {
            fail(error, file, section, "plugin", "missing: name the plugin to load");
            return NULL;
        }
        plugin = g_strdup(default_plugin);
    }
    struct plugin_conf *pc = plugin_conf_new(section, name, plugin);
    g_free(plugin);
    gsize n = 0;
    char **keys = g_key_file_get_keys(kf, section, &n, NULL);
    for (gsize i = 0; i < n; i++) {
        if (!strcmp(keys[i], "plugin"))
            continue;
        char *v = g_key_file_get_value(kf, section, keys[i], NULL);
        g_hash_table_insert(pc->keys, g_strdup(keys[i]), g_strstrip(v));
    }
    g_strfreev(keys);
    return pc;
}

static gboolean valid_instance_name(const char *s)
{
    if (!*s)
        return FALSE;
    for (; *s; s++)
        if (!g_ascii_isalnum(*s) && *s != '_' && *s != '-' && *s != '.')
            return FALSE;
    return TRUE;
}

/* A config from a file: graph access, relative paths anchored at its directory. */
static struct config *config_new_for_file(const char *path)
{
    struct config *cfg = config_new_default();
    cfg->access = ACCESS_GRAPH; /* a config file means hpfriends, not hpfeeds3 */
    g_free(cfg->name);
    cfg->name = g_strdup("hpfriends");
    cfg->path = g_strdup(path);
    g_free(cfg->dir);
    char *d = g_path_get_dirname(path);
    if (g_path_is_absolute(d)) {
        cfg->dir = d;
    } else {
        char *cwd = g_get_current_dir();
        cfg->dir = g_build_filename(cwd, d, NULL);
        g_free(cwd);
        g_free(d);
    }
    return cfg;
}

/* One pass over the sections: the single ones are read, the rest checked by name. */
static gboolean load_section(struct config *cfg, GKeyFile *kf, const char *group, const char *path,
                             GError **error)
{
    gboolean ok = TRUE;
    if (!strcmp(group, "broker")) {
        ok = load_broker(cfg, kf, path, error);
    } else if (!strcmp(group, "web")) {
        ok = config_load_web(cfg, kf, path, error);
    } else if (!strcmp(group, "storage")) {
        cfg->storage = load_plugin_section(kf, group, "storage", NULL, path, error);
        ok = cfg->storage != NULL;
    } else if (!strcmp(group, "cluster")) {
        cfg->cluster = load_plugin_section(kf, group, "cluster", NULL, path, error);
        ok = cfg->cluster != NULL;
    } else if (!strcmp(group, "auth")) {
        gsize n = 0;
        char **keys = g_key_file_get_keys(kf, group, &n, NULL);
        for (gsize i = 0; i < n && ok; i++)
            if (!g_strv_contains(auth_keys, keys[i]))
                ok = fail(error, path, group, keys[i], "unknown key");
        g_strfreev(keys);
    } else if (g_str_has_prefix(group, "auth:") || g_str_has_prefix(group, "sink:")) {
        /* read later, in chain order / file order */
        if (!valid_instance_name(strchr(group, ':') + 1))
            ok = fail(error, path, group, NULL,
                      "instance name must be letters, digits, '_', '-' or '.'");
    } else {
        ok = fail(error, path, group, NULL,
                  "unknown section (expected broker, storage, web, auth, auth:NAME, "
                  "sink:NAME, cluster)");
    }
    return ok;
}

/* The auth chain: [auth] chain = a;b, each optionally with [auth:a]. */
static gboolean load_auth_chain(struct config *cfg, GKeyFile *kf, char **groups, const char *path,
                                GError **error)
{
    gboolean ok = TRUE;
    char **chain = NULL;
    if (g_key_file_has_key(kf, "auth", "chain", NULL))
        chain = g_key_file_get_string_list(kf, "auth", "chain", NULL, NULL);
    if (!chain || !chain[0]) {
        g_strfreev(chain);
        chain = g_new0(char *, 2);
        chain[0] = g_strdup("storage");
    }
    for (char **c = chain; *c && ok; c++) {
        g_strstrip(*c);
        if (!valid_instance_name(*c)) {
            ok = fail(error, path, "auth", "chain", "bad entry '%s'", *c);
            break;
        }
        char *section = g_strdup_printf("auth:%s", *c);
        struct plugin_conf *pc;
        if (g_key_file_has_group(kf, section))
            pc = load_plugin_section(kf, section, *c, *c, path, error);
        else
            pc = plugin_conf_new(section, *c, *c);
        if (pc)
            g_ptr_array_add(cfg->auth, pc);
        else
            ok = FALSE;
        g_free(section);
    }
    g_strfreev(chain);
    for (char **g = groups; *g && ok; g++) {
        if (!g_str_has_prefix(*g, "auth:"))
            continue;
        gboolean used = FALSE;
        for (guint i = 0; i < cfg->auth->len; i++)
            used |= !strcmp(((struct plugin_conf *)cfg->auth->pdata[i])->section, *g);
        if (!used)
            ok = fail(error, path, *g, NULL, "not named in [auth] chain");
    }
    return ok;
}

static gboolean load_sinks(struct config *cfg, GKeyFile *kf, char **groups, const char *path,
                           GError **error)
{
    for (char **g = groups; *g; g++) {
        if (!g_str_has_prefix(*g, "sink:"))
            continue;
        struct plugin_conf *pc = load_plugin_section(kf, *g, *g + 5, NULL, path, error);
        if (!pc)
            return FALSE;
        g_ptr_array_add(cfg->sinks, pc);
    }
    return TRUE;
}

/* What only the whole file can tell. */
static gboolean check_complete(const struct config *cfg, const char *path, GError **error)
{
    if (!cfg->storage) {
        char *base = g_path_get_basename(path);
        g_set_error(error, CONFIG_ERROR, 0,
                    "%s: [storage]: missing section (e.g. plugin = sqlite, path = hpfriends.db)",
                    base);
        g_free(base);
        return FALSE;
    }
    if (strlen(cfg->name) > WIRE_MAX_NAME)
        return fail(error, path, "broker", "name", "longer than 255 bytes");
    return TRUE;
}

struct config *config_load_file(const char *path, GError **error)
{
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;

    g_key_file_set_list_separator(kf, ';');
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e)) {
        g_set_error(error, CONFIG_ERROR, 0, "%s: %s", path, e->message);
        g_error_free(e);
        g_key_file_free(kf);
        return NULL;
    }

    struct config *cfg = config_new_for_file(path);
    char **groups = g_key_file_get_groups(kf, NULL);
    gboolean ok = TRUE;
    for (char **g = groups; *g && ok; g++)
        ok = load_section(cfg, kf, *g, path, error);
    ok = ok && load_auth_chain(cfg, kf, groups, path, error) &&
         load_sinks(cfg, kf, groups, path, error) && check_complete(cfg, path, error);
    g_strfreev(groups);
    g_key_file_free(kf);
    if (!ok) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

void config_finish(struct config *cfg)
{
    /* Without a config file the broker stands in for hpfeeds-broker: its defaults. */
    gboolean hp3 = cfg->path == NULL;
    if (cfg->listen->len == 0)
        g_ptr_array_add(cfg->listen, config_parse_listen(!hp3            ? DEFAULT_LISTEN
                                                         : cfg->tls_cert ? HPFEEDS3_LISTEN_TLS
                                                                         : HPFEEDS3_LISTEN,
                                                         NULL));
    if (!cfg->storage) {
        cfg->storage = plugin_conf_new("storage", "storage", "sqlite");
        g_hash_table_insert(cfg->storage->keys, g_strdup("path"),
                            g_strdup(hp3 ? HPFEEDS3_SQLITE : "hpfriends.db"));
    }
    if (cfg->auth->len == 0)
        g_ptr_array_add(cfg->auth, plugin_conf_new("auth:storage", "storage", "storage"));
}
