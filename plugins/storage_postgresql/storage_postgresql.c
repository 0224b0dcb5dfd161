/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql: users, graph and hpfeeds3's auth_keys in PostgreSQL,
 * a store several broker nodes can share.  Tables, the version scheme and
 * the connection's life are described in pg_store.h; the connection in
 * conn.c, the schema in schema.c, reads in read.c, apply() and counters in
 * write.c.  This file holds the plugin descriptor, the configuration, the
 * life cycle and the error reporting.
 */
#include "pg_store.h"

#include <string.h>

#define DEFAULT_TIMEOUT_MS     2000
#define OUTAGE_LOG_INTERVAL_US (60 * G_USEC_PER_SEC)

static const char *const config_keys[] = {"uri", "timeout_ms", NULL};

int pg_trouble(struct pstore *s, const char *what, const struct pg_fail *f)
{
    int64_t now = g_get_monotonic_time();
    if (!s->down || now - s->last_log_us >= OUTAGE_LOG_INTERVAL_US) {
        if (s->unlogged > 0)
            PG_LOG(s, HPF_LOG_ERR,
                   "postgresql at %s: %s failed: %s (%" G_GUINT64_FORMAT " more failures since "
                   "the last report)",
                   s->where, what, f->msg, s->unlogged);
        else
            PG_LOG(s, HPF_LOG_ERR, "postgresql at %s: %s failed: %s (repeats logged once a minute)",
                   s->where, what, f->msg);
        s->last_log_us = now;
        s->unlogged = 0;
    } else {
        s->unlogged++;
    }
    s->down = true;
    return f->status;
}

void pg_healthy(struct pstore *s)
{
    if (!s->down)
        return;
    PG_LOG(s, HPF_LOG_NOTICE, "postgresql at %s: working again", s->where);
    s->down = false;
    s->unlogged = 0;
}

void pg_warn_row(struct pstore *s, const char *table, const char *what)
{
    char *key = g_strdup_printf("%s\x1f%s", table, what);
    if (g_hash_table_contains(s->warned, key)) {
        g_free(key);
        return;
    }
    g_hash_table_add(s->warned, key);
    PG_LOG(s, HPF_LOG_WARNING, "postgresql at %s: %s: %s; skipping what cannot be read", s->where,
           table, what);
}

/* "host:port/db" from the URI, for messages; NULL with err set when it does not parse. */
static char *describe(const char *uri, char *err, size_t err_len)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(uri, &why);
    if (!opts) {
        /* libpq quotes the part of the URI it stumbled on, which may be the
         * password: keep its reason, never the quoted text. */
        char *reason = why ? g_strstrip(why) : NULL;
        char *quote = reason ? g_strrstr(reason, ": \"") : NULL;
        if (quote)
            *quote = '\0';
        hpf_set_error(err, err_len, HPF_ERR_INVALID,
                      "uri: %s (the URI is not repeated here: it may hold a password)",
                      reason ? g_strchomp(reason) : "out of memory");
        PQfreemem(why);
        return NULL;
    }
    const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!strcmp(o->keyword, "host") || (!host && !strcmp(o->keyword, "hostaddr")))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            db = o->val;
        else if (!strcmp(o->keyword, "user"))
            user = o->val;
    }
    char *where = g_strdup_printf("%s:%s/%s", host ? host : "localhost", port ? port : "5432",
                                  db ? db : (user ? user : "(default)"));
    PQconninfoFree(opts);
    return where;
}

static int read_timeout(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx, int *out,
                        char *err, size_t err_len)
{
    guint64 timeout = DEFAULT_TIMEOUT_MS;
    const char *value = host->config_get(ctx, "timeout_ms");
    if (value) {
        GError *error = NULL;
        if (!g_ascii_string_to_unsigned(value, 10, 1, 600000, &timeout, &error)) {
            int status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                                       "timeout_ms: '%s' is not a number of milliseconds "
                                       "(1 to 600000): %s",
                                       value, error->message);
            g_error_free(error);
            return status;
        }
    }
    *out = (int)timeout;
    return HPF_OK;
}

static int pg_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx, void **instance,
                     char *err, size_t err_len)
{
    const char *uri = host->config_get(ctx, "uri");
    if (!uri || !*uri)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "missing required key 'uri' (postgresql://user@host:port/dbname)");
    if (!g_str_has_prefix(uri, "postgresql://") && !g_str_has_prefix(uri, "postgres://"))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: not a postgresql:// URI (postgresql://user@host:port/dbname)");
    if (strlen(uri) > 4096)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: longer than 4096 bytes");
    int timeout = DEFAULT_TIMEOUT_MS;
    int status = read_timeout(host, ctx, &timeout, err, err_len);
    if (status != HPF_OK)
        return status;
    char *where = describe(uri, err, err_len);
    if (!where)
        return HPF_ERR_INVALID;

    struct pstore *s = g_new0(struct pstore, 1);
    s->host = host;
    s->ctx = ctx;
    s->uri = g_strdup(uri);
    s->where = where;
    s->timeout_ms = timeout;
    s->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    *instance = s;
    return HPF_OK;
}

static int pg_start(void *instance, char *err, size_t err_len)
{
    struct pstore *s = instance;
    struct pg_fail f;
    if (!pg_connect(s, &f))
        return hpf_set_error(err, err_len, f.status, "cannot reach postgresql at %s: %s", s->where,
                             f.msg);
    int status = pg_schema_migrate(s, err, err_len);
    if (status != HPF_OK)
        return status;
    uint64_t v;
    return pg_version(s, &v) == HPF_OK
               ? HPF_OK
               : hpf_set_error(err, err_len, HPF_ERR_IO,
                               "postgresql at %s: cannot read the data version", s->where);
}

static void pg_destroy(void *instance)
{
    struct pstore *s = instance;
    if (!s)
        return;
    pg_disconnect(s);
    g_hash_table_destroy(s->warned);
    g_free(s->seen_state);
    g_free(s->where);
    g_free(s->uri);
    g_free(s);
}

static const struct hpf_storage_ops storage_ops = {
    .authkey_get = pg_authkey_get,
    .version = pg_version,
    .snapshot = pg_snapshot,
    .apply = pg_apply,
    .counters_add = pg_counters_add,
    .counters_get = pg_counters_get,
    .audit_list = pg_audit_list,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "storage_postgresql",
    .version = PLUGIN_VERSION,
    .description = "users, graph and hpfeeds3 authkeys (auth_keys) in PostgreSQL",
    .kinds = HPF_KIND_STORAGE,
    .config_keys = config_keys,
    .create = pg_create,
    .start = pg_start,
    .destroy = pg_destroy,
    .storage = &storage_ops,
};

HPF_PLUGIN_DEFINE(plugin)
