/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql: users, graph and hpfeeds3's auth_keys in MariaDB or MySQL
 * (libmariadb).  Tables, the version scheme and the connection's life are
 * described in mysql_store.h; the URI in uri.c; the schema in schema.c;
 * reads in read.c, apply() and counters in write.c.  This file holds the
 * plugin descriptor and the life cycle.
 *
 * libmariadb's global state: mysql_library_init() runs once per process,
 * from the first create(), and is never ended (the module stays mapped,
 * -z nodelete, and a second instance in the same process needs it).
 */
#include "mysql_store.h"

#include <string.h>

#define DEFAULT_TIMEOUT_MS 2000

static const char *const config_keys[] = {"uri", "timeout_ms", NULL};

static gpointer init_library(gpointer unused)
{
    (void)unused;
    return GINT_TO_POINTER(mysql_library_init(0, NULL, NULL) == 0);
}

static void close_stmt(gpointer st) { mysql_stmt_close(st); }

static char *describe(const struct my_target *t)
{
    if (!t->host)
        return g_strdup_printf("%s/%s", t->unix_socket ? t->unix_socket : "localhost", t->db);
    if (strchr(t->host, ':'))
        return g_strdup_printf("[%s]:%u/%s", t->host, t->port, t->db);
    return g_strdup_printf("%s:%u/%s", t->host, t->port, t->db);
}

static int read_timeout(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                        guint64 *timeout, char *err, size_t err_len)
{
    *timeout = DEFAULT_TIMEOUT_MS;
    const char *value = host->config_get(ctx, "timeout_ms");
    if (!value)
        return HPF_OK;
    GError *error = NULL;
    if (g_ascii_string_to_unsigned(value, 10, 1, 600000, timeout, &error))
        return HPF_OK;
    int status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                               "timeout_ms: '%s' is not a number of milliseconds (1 to 600000): %s",
                               value, error->message);
    g_error_free(error);
    return status;
}

static int mysql_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                        void **instance, char *err, size_t err_len)
{
    static GOnce once = G_ONCE_INIT;
    if (!GPOINTER_TO_INT(g_once(&once, init_library, NULL)))
        return hpf_set_error(err, err_len, HPF_ERR_IO, "libmariadb failed to initialise");
    guint64 timeout;
    int status = read_timeout(host, ctx, &timeout, err, err_len);
    if (status != HPF_OK)
        return status;
    struct my_target t;
    status = my_target_parse(host->config_get(ctx, "uri"), &t, err, err_len);
    if (status != HPF_OK)
        return status;
    struct mystore *s = g_new0(struct mystore, 1);
    s->host = host;
    s->ctx = ctx;
    s->t = t;
    s->where = describe(&t);
    /* libmariadb counts its timeouts in whole seconds. */
    s->timeout_s = (unsigned)((timeout + 999) / 1000);
    s->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, close_stmt);
    s->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    *instance = s;
    return HPF_OK;
}

static int mysql_start(void *instance, char *err, size_t err_len)
{
    struct mystore *s = instance;
    if (!my_connect(s))
        return hpf_set_error(err, err_len, HPF_ERR_UNAVAILABLE, "cannot reach mysql at %s: %s",
                             s->where, s->last_error);
    int status = my_schema_migrate(s, err, err_len);
    if (status != HPF_OK)
        return status;
    uint64_t v;
    if (my_version(s, &v) != HPF_OK)
        return hpf_set_error(err, err_len, my_status(s),
                             "mysql at %s: cannot read the data version: %s", s->where,
                             s->last_error);
    return HPF_OK;
}

static void mysql_destroy(void *instance)
{
    struct mystore *s = instance;
    if (!s)
        return;
    my_disconnect(s);
    g_hash_table_destroy(s->stmts);
    g_hash_table_destroy(s->warned);
    my_target_clear(&s->t);
    g_free(s->where);
    g_free(s);
}

static const struct hpf_storage_ops storage_ops = {
    .authkey_get = my_authkey_get,
    .version = my_version,
    .snapshot = my_snapshot,
    .apply = my_apply,
    .counters_add = my_counters_add,
    .counters_get = my_counters_get,
    .audit_list = my_audit_list,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "storage_mysql",
    .version = PLUGIN_VERSION,
    .description = "users, graph and hpfeeds3's auth_keys table in MariaDB or MySQL",
    .kinds = HPF_KIND_STORAGE,
    .config_keys = config_keys,
    .create = mysql_create,
    .start = mysql_start,
    .destroy = mysql_destroy,
    .storage = &storage_ops,
};

HPF_PLUGIN_DEFINE(plugin)
