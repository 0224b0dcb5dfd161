/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfeeds-broker's command line on top of a struct config: --bind, the
 * -e/--endpoint strings, and the --auth sources (every kind hpfeeds-broker
 * documents, stacked in order).  Each --auth value maps to either the one
 * writable storage (a SQLite, JSON, MongoDB or SQL server store) or the
 * read-only `env` auth plugin; the list as given becomes the auth chain, so
 * the first source that knows an ident decides, as in hpfeeds-broker.
 * Pure like config.c: parsing and checks (a named file must exist), no
 * files created.  Errors never repeat a URI's credentials.
 */
#include "config.h"

#include <string.h>

#include "wire.h"

#define AUTH_KINDS                                                 \
    "a .json file, env, sqlite, a SQLite file, mongodb://..., or " \
    "database+postgresql|mysql|sqlite://..."

/* How an --auth value is shown in errors: a URI without what follows "://". */
static char *auth_shown(const char *a)
{
    const char *sep = strstr(a, "://");
    if (sep && (strchr(sep, '@') || strchr(sep, '?')))
        return g_strdup_printf("%.*s://...", (int)(sep - a), a);
    return g_strdup(a);
}

static gboolean auth_fail(GError **error, const char *a, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean auth_fail(GError **error, const char *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *shown = auth_shown(a);
    g_set_error(error, CONFIG_ERROR, 0, "--auth %s: %s", shown, why);
    g_free(shown);
    g_free(why);
    return FALSE;
}

static struct plugin_conf *storage_conf(const char *plugin, const char *key, const char *value)
{
    struct plugin_conf *pc = plugin_conf_new("storage", "storage", plugin);
    g_hash_table_insert(pc->keys, g_strdup(key), g_strdup(value));
    return pc;
}

/* A file named on the command line must be there: never create one by a typo. */
static gboolean must_exist(const struct config *cfg, const char *a, const char *path,
                           GError **error)
{
    char *full = config_resolve_path(cfg, path);
    gboolean ok = g_file_test(full, G_FILE_TEST_IS_REGULAR);
    if (!ok)
        auth_fail(error, a, "cannot find '%s'", full);
    g_free(full);
    return ok;
}

/* database+sqlite:///relative or ////absolute: SQLAlchemy's file URL. */
static struct plugin_conf *database_sqlite(const struct config *cfg, const char *a,
                                           const char *rest, GError **error)
{
    if (rest[0] != '/' || !rest[1] || strchr(rest, '?') || !strcmp(rest + 1, ":memory:")) {
        auth_fail(error, a, "expected database+sqlite:///FILE (relative) or ////FILE (absolute)");
        return NULL;
    }
    const char *path = rest + 1;
    if (!must_exist(cfg, a, path, error))
        return NULL;
    return storage_conf("sqlite", "path", path);
}

/*
 * database+DIALECT[+DRIVER]://...: the SQLAlchemy URL hpfeeds-broker hands
 * to the `databases` package; the driver means nothing here.
 */
static struct plugin_conf *database_source(const struct config *cfg, const char *a, GError **error)
{
    const char *url = a + strlen("database+");
    const char *sep = strstr(url, "://");
    if (!sep) {
        auth_fail(error, a, "expected database+DIALECT://..., e.g. database+sqlite:///auth.db");
        return NULL;
    }
    char *scheme = g_strndup(url, (gsize)(sep - url));
    char *plus = strchr(scheme, '+');
    if (plus)
        *plus = '\0';
    const char *rest = sep + 3;
    struct plugin_conf *pc = NULL;
    if (!strcmp(scheme, "sqlite")) {
        pc = database_sqlite(cfg, a, rest, error);
    } else if (!strcmp(scheme, "postgresql") || !strcmp(scheme, "postgres")) {
        char *uri = g_strconcat("postgresql://", rest, NULL);
        pc = storage_conf("postgresql", "uri", uri);
        g_free(uri);
    } else if (!strcmp(scheme, "mysql") || !strcmp(scheme, "mariadb")) {
        char *uri = g_strconcat("mysql://", rest, NULL);
        pc = storage_conf("mysql", "uri", uri);
        g_free(uri);
    } else {
        auth_fail(error, a, "unsupported database '%s' (postgresql, mysql or sqlite)", scheme);
    }
    g_free(scheme);
    return pc;
}

/*
 * One --auth value: the storage it names (*store), or nothing for `env`
 * (*is_env).  hpfeeds-broker's order of tests, with one difference: a path
 * that is none of its kinds is a SQLite file (it would quietly use
 * ./sqlite.db instead), made when absent if the name ends in .db, and
 * otherwise one that must exist: `--auth envv` is a typo, not a file name.
 */
static gboolean auth_source(const struct config *cfg, const char *a, struct plugin_conf **store,
                            gboolean *is_env, GError **error)
{
    *store = NULL;
    *is_env = FALSE;
    if (!*a)
        return auth_fail(error, a, "empty value; expected " AUTH_KINDS);
    if (g_str_has_suffix(a, ".json")) {
        if (!must_exist(cfg, a, a, error))
            return FALSE;
        *store = storage_conf("file", "path", a);
    } else if (!strcmp(a, "env")) {
        *is_env = TRUE;
    } else if (g_str_has_prefix(a, "mongodb://") || g_str_has_prefix(a, "mongodb+srv://")) {
        *store = storage_conf("mongodb", "uri", a);
    } else if (g_str_has_prefix(a, "database+")) {
        *store = database_source(cfg, a, error);
        return *store != NULL;
    } else if (!strcmp(a, "sqlite")) {
        /* hpfeeds-broker's own default, created when absent as it does. */
        *store = storage_conf("sqlite", "path", HPFEEDS3_SQLITE);
    } else if (g_str_has_suffix(a, ".db")) {
        /* Named as a database: made when absent (with hpfeeds3's tables). */
        *store = storage_conf("sqlite", "path", a);
    } else if (strstr(a, "://")) {
        return auth_fail(error, a, "not a kind of source hpfriendsd knows; expected " AUTH_KINDS);
    } else {
        char *full = config_resolve_path(cfg, a);
        gboolean there = g_file_test(full, G_FILE_TEST_IS_REGULAR);
        g_free(full);
        if (!there)
            return auth_fail(error, a,
                             "no such file, and not a kind of source hpfriendsd knows; "
                             "expected " AUTH_KINDS);
        *store = storage_conf("sqlite", "path", a);
    }
    return TRUE;
}

/* env alone: the graph, counters and console data need a store; keep it in memory. */
static struct plugin_conf *placeholder_store(void)
{
    return storage_conf("sqlite", "path", ":memory:");
}

gboolean config_storage_is_placeholder(const struct config *cfg)
{
    if (!cfg->storage || strcmp(cfg->storage->plugin, "sqlite"))
        return FALSE;
    const char *path = g_hash_table_lookup(cfg->storage->keys, "path");
    return path && !strcmp(path, ":memory:");
}

gboolean config_auth_has_env(const struct config *cfg)
{
    for (guint i = 0; i < cfg->auth->len; i++)
        if (!strcmp(((struct plugin_conf *)cfg->auth->pdata[i])->plugin, "env"))
            return TRUE;
    return FALSE;
}

/* The --auth list: at most one writable store, `env` at most once; the chain in order. */
static gboolean apply_auth(struct config *cfg, char **auths, GError **error)
{
    struct plugin_conf *store = NULL;
    const char *store_arg = NULL, *env_arg = NULL;
    GPtrArray *chain = g_ptr_array_new_with_free_func((GDestroyNotify)plugin_conf_free);
    gboolean ok = TRUE;
    for (char **a = auths; *a && ok; a++) {
        struct plugin_conf *pc;
        gboolean is_env;
        ok = auth_source(cfg, *a, &pc, &is_env, error);
        if (!ok)
            break;
        if (is_env && env_arg) {
            ok = auth_fail(error, *a, "given twice");
        } else if (is_env) {
            env_arg = *a;
            g_ptr_array_add(chain, plugin_conf_new("auth:env", "env", "env"));
        } else if (store) {
            char *first = auth_shown(store_arg);
            ok = auth_fail(error, *a,
                           "a second writable source after --auth %s; hpfriendsd keeps its "
                           "data in one (a SQLite file, a .json file or a database): give one of "
                           "those, and env as often as wanted",
                           first);
            g_free(first);
            plugin_conf_free(pc);
        } else {
            store = pc;
            store_arg = *a;
            g_ptr_array_add(chain, plugin_conf_new("auth:storage", "storage", "storage"));
        }
    }
    if (!ok) {
        plugin_conf_free(store);
        g_ptr_array_unref(chain);
        return FALSE;
    }
    if (store || !cfg->storage) {
        plugin_conf_free(cfg->storage);
        cfg->storage = store ? store : placeholder_store();
    }
    g_ptr_array_unref(cfg->auth);
    cfg->auth = chain;
    return TRUE;
}

static gboolean apply_binds(struct config *cfg, char **binds, const char *tlscert, GError **error)
{
    g_ptr_array_set_size(cfg->listen, 0);
    for (char **b = binds; *b; b++) {
        char *spec = (tlscert && !g_str_has_prefix(*b, "tcp:") && !g_str_has_prefix(*b, "tls:"))
                         ? g_strdup_printf("tls:%s", *b)
                         : g_strdup(*b);
        struct listen_addr *la = config_parse_listen(spec, error);
        g_free(spec);
        if (!la) {
            g_prefix_error(error, "--bind: ");
            return FALSE;
        }
        g_ptr_array_add(cfg->listen, la);
    }
    return TRUE;
}

static void replace_string(char **field, const char *value)
{
    g_free(*field);
    *field = g_strdup(value);
}

gboolean config_apply_flags(struct config *cfg, char **binds, char **auths, const char *name,
                            const char *tlscert, const char *tlskey, const char *exporter,
                            GError **error)
{
    /* hpfeeds-broker: "Must specify --tlskey AND --tlscert". */
    if ((tlscert && *tlscert) != (tlskey && *tlskey)) {
        g_set_error(error, CONFIG_ERROR, 0, "--tlscert and --tlskey go together: give both");
        return FALSE;
    }
    if (binds && binds[0] && !apply_binds(cfg, binds, tlscert, error))
        return FALSE;
    if (auths && auths[0] && !apply_auth(cfg, auths, error))
        return FALSE;
    if (name && *name) {
        if (strlen(name) > WIRE_MAX_NAME) {
            g_set_error(error, CONFIG_ERROR, 0, "--name: longer than 255 bytes");
            return FALSE;
        }
        replace_string(&cfg->name, name);
    }
    if (tlscert && *tlscert) {
        replace_string(&cfg->tls_cert, tlscert);
        replace_string(&cfg->tls_key, tlskey);
    }
    if (exporter && *exporter)
        replace_string(&cfg->exporter, exporter);
    return TRUE;
}

/* ---- -e/--endpoint: twisted-style strings ---- */

/* Split on ':' not preceded by '\', dropping the escapes ("\:" is a colon). */
static GPtrArray *endpoint_tokens(const char *spec)
{
    GPtrArray *tokens = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);
    for (const char *p = spec; *p; p++) {
        if (*p == '\\' && p[1]) {
            g_string_append_c(cur, *++p);
        } else if (*p == ':') {
            g_ptr_array_add(tokens, g_string_free(cur, FALSE));
            cur = g_string_new(NULL);
        } else {
            g_string_append_c(cur, *p);
        }
    }
    g_ptr_array_add(tokens, g_string_free(cur, FALSE));
    return tokens;
}

static gboolean endpoint_fail(GError **error, const char *spec, const char *why)
{
    g_set_error(error, CONFIG_ERROR, 0, "--endpoint %s: %s", spec, why);
    return FALSE;
}

/* One KEY=VALUE of an endpoint string into la, *cert or *key. */
static gboolean endpoint_key(struct listen_addr *la, const char *spec, const char *token,
                             char **cert, char **key, GError **error)
{
    const char *eq = strchr(token, '=');
    if (!eq)
        return endpoint_fail(error, spec, "expected KEY=VALUE after the first ':'");
    char *k = g_strndup(token, (gsize)(eq - token));
    const char *v = eq + 1;
    char **field = !strcmp(k, "port")              ? &la->port
                   : !strcmp(k, "interface")       ? &la->host
                   : !strcmp(k, "device")          ? &la->device
                   : la->tls && !strcmp(k, "cert") ? cert
                   : la->tls && !strcmp(k, "key")  ? key
                                                   : NULL;
    gboolean ok = field != NULL;
    if (!ok) {
        char *why = g_strdup_printf("unknown key '%s' (expected port, interface, device%s)", k,
                                    la->tls ? ", cert, key" : "");
        endpoint_fail(error, spec, why);
        g_free(why);
    } else {
        replace_string(field, v);
    }
    g_free(k);
    return ok;
}

struct listen_addr *config_parse_endpoint(const char *spec, char **cert, char **key, GError **error)
{
    GPtrArray *tokens = endpoint_tokens(spec);
    const char *kind = tokens->pdata[0];
    struct listen_addr *la = g_new0(struct listen_addr, 1);
    gboolean ok = TRUE;
    if (!strcmp(kind, "tls"))
        la->tls = TRUE;
    else if (strcmp(kind, "tcp"))
        ok = endpoint_fail(error, spec, "expected tcp:... or tls:...");
    for (guint i = 1; i < tokens->len && ok; i++)
        ok = endpoint_key(la, spec, tokens->pdata[i], cert, key, error);
    g_ptr_array_unref(tokens);
    guint64 port;
    if (ok && !la->port)
        ok = endpoint_fail(error, spec, "port= is required");
    else if (ok && !g_ascii_string_to_unsigned(la->port, 10, 0, 65535, &port, NULL))
        ok = endpoint_fail(error, spec, "port must be a number from 0 to 65535");
    if (ok && la->device && (!*la->device || strlen(la->device) > 15))
        ok = endpoint_fail(error, spec, "device= must name a network interface (1-15 bytes)");
    if (!ok) {
        listen_addr_free(la);
        return NULL;
    }
    if (!la->host)
        la->host = g_strdup("0.0.0.0"); /* hpfeeds-broker's default interface */
    return la;
}

/* Flag paths are the caller's: anchor them at the working directory, not the config's. */
static char *from_cwd(const char *path)
{
    if (g_path_is_absolute(path))
        return g_strdup(path);
    char *cwd = g_get_current_dir();
    char *full = g_build_filename(cwd, path, NULL);
    g_free(cwd);
    return full;
}

/* The broker serves one certificate: every TLS listener must name the same files. */
static gboolean endpoint_tls(struct config *cfg, const char *spec, const char *cert,
                             const char *key, GError **error)
{
    char *c = from_cwd(cert ? cert : "cert.pem"), *k = from_cwd(key ? key : "key.pem");
    gboolean ok = TRUE;
    if (cfg->tls_cert && (strcmp(cfg->tls_cert, c) || g_strcmp0(cfg->tls_key, k)))
        ok = endpoint_fail(error, spec,
                           "hpfriendsd serves one certificate and key on every TLS listener, "
                           "and another endpoint or --tlscert names other files");
    if (ok && !cfg->tls_cert) {
        cfg->tls_cert = c;
        cfg->tls_key = k;
        c = k = NULL;
    }
    g_free(c);
    g_free(k);
    return ok;
}

gboolean config_apply_endpoints(struct config *cfg, char **endpoints, gboolean after_binds,
                                GError **error)
{
    if (!endpoints || !endpoints[0])
        return TRUE;
    if (cfg->tls_cert) { /* made absolute the way the broker will read them */
        char *abs = config_resolve_path(cfg, cfg->tls_cert);
        replace_string(&cfg->tls_cert, abs);
        g_free(abs);
        abs = config_resolve_path(cfg, cfg->tls_key);
        replace_string(&cfg->tls_key, abs);
        g_free(abs);
    }
    if (!after_binds)
        g_ptr_array_set_size(cfg->listen, 0);
    for (char **e = endpoints; *e; e++) {
        char *cert = NULL, *key = NULL;
        struct listen_addr *la = config_parse_endpoint(*e, &cert, &key, error);
        gboolean ok = la && (!la->tls || endpoint_tls(cfg, *e, cert, key, error));
        g_free(cert);
        g_free(key);
        if (!ok) {
            listen_addr_free(la);
            return FALSE;
        }
        g_ptr_array_add(cfg->listen, la);
    }
    return TRUE;
}

/*
 * --auth database+postgresql:// and database+mysql:// need a storage plugin
 * that may not be installed: say which, before the loader's generic error.
 */
gboolean config_check_sql_plugin(const struct config *cfg, const char *dir, GError **error)
{
    const char *p = cfg->storage->plugin;
    if (strcmp(p, "postgresql") && strcmp(p, "mysql"))
        return TRUE;
    char *file = g_strdup_printf("storage_%s.so", p);
    char *path = g_build_filename(dir, file, NULL);
    char *bare = g_strdup_printf("%s/%s.so", dir, p); /* the loader's other name */
    gboolean ok = g_file_test(path, G_FILE_TEST_EXISTS) || g_file_test(bare, G_FILE_TEST_EXISTS);
    g_free(bare);
    if (!ok)
        g_set_error(error, CONFIG_ERROR, 0,
                    "%s storage needs the plugin storage_%s, which is not installed (no %s)",
                    !strcmp(p, "mysql") ? "MySQL/MariaDB" : "PostgreSQL", p, path);
    g_free(file);
    g_free(path);
    return ok;
}
