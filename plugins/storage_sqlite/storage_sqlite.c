/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_sqlite: the default storage, one SQLite file.
 *
 * Reads hpfeeds3's `authkeys` table as-is and keeps the sharing graph in
 * tables of its own (prefixed hpf_) in the same file; see schema.c.  This
 * file holds the plugin descriptor, the life cycle and small helpers.
 */
#include "sqlite_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "../common/sql_channels.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000

static const char *const config_keys[] = {"path", "busy_timeout", NULL};

sqlite3_stmt *sq_stmt(struct store *s, const char *sql)
{
    sqlite3_stmt *st = g_hash_table_lookup(s->stmts, sql);
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    /* Failures are the callers' to report: sqlite3_errmsg() still says why. */
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    /* Keys are the callers' static SQL strings: not copied. */
    g_hash_table_insert(s->stmts, (gpointer)sql, st);
    return st;
}

int sq_exec(struct store *s, const char *sql)
{
    sqlite3_stmt *st = sq_stmt(s, sql);
    if (!st)
        return sqlite3_errcode(s->db);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int sq_status(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return HPF_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return HPF_ERR_UNAVAILABLE;
    case SQLITE_NOMEM:
        return HPF_ERR_NOMEM;
    default:
        return HPF_ERR_IO;
    }
}

void sq_rollback(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sq_exec(s, "ROLLBACK");
}

static void warn_once(struct store *s, const char *ident, const char *column, const char *why)
{
    const char *key = ident ? ident : "";
    if (g_hash_table_contains(s->warned, key))
        return;
    g_hash_table_add(s->warned, g_strdup(key));
    SQ_LOG(s, HPF_LOG_WARNING, "authkey '%s': %s: %s; ignoring what cannot be read", key, column,
           why);
}

void sq_parse_channels(struct store *s, const char *ident, const char *column, const char *json,
                       GPtrArray *out)
{
    /* The one reader the SQL stores share (sql_channels.c). */
    const char *why = sql_channels_parse(json, out);
    if (why)
        warn_once(s, ident, column, why);
}

char *sq_format_channels(const char *const *chans, size_t n)
{
    JsonArray *array = json_array_sized_new((guint)n);
    for (size_t i = 0; i < n; i++)
        json_array_add_string_element(array, chans[i] ? chans[i] : "");
    JsonNode *root = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(root, array);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_root(gen, root);
    char *text = json_generator_to_data(gen, NULL);
    g_object_unref(gen);
    json_node_unref(root);
    return text;
}

static void finalize_stmt(gpointer st) { sqlite3_finalize(st); }

static int sqlite_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                         void **instance, char *err, size_t err_len)
{
    /* ":memory:" (the stand-in store of an env-only --auth) is not a file name. */
    const char *raw = host->config_get(ctx, "path");
    char *path = raw && !strcmp(raw, ":memory:") ? strdup(raw) : host->config_path(ctx, "path");
    if (!path || !*path) {
        free(path);
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "missing required key 'path'");
    }

    guint64 timeout = DEFAULT_BUSY_TIMEOUT_MS;
    const char *value = host->config_get(ctx, "busy_timeout");
    if (value) {
        GError *error = NULL;
        if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXINT, &timeout, &error)) {
            int status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                                       "busy_timeout: '%s' is not a number of milliseconds "
                                       "(0 to %d): %s",
                                       value, G_MAXINT, error->message);
            g_error_free(error);
            free(path);
            return status;
        }
    }

    struct store *s = g_new0(struct store, 1);
    s->host = host;
    s->ctx = ctx;
    s->path = g_strdup(path);
    free(path);
    s->busy_timeout_ms = (int)timeout;
    s->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, finalize_stmt);
    s->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    *instance = s;
    return HPF_OK;
}

/* WAL lets the broker read while hpfriendsctl writes. */
static void enable_wal(struct store *s)
{
    sqlite3_stmt *st = NULL;
    const char *mode = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || g_ascii_strcasecmp(mode, "wal") != 0)
        SQ_LOG(s, HPF_LOG_WARNING,
               "%s: cannot switch to WAL journal (%s): readers will wait for writers", s->path,
               mode ? mode : sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
}

static int sqlite_start(void *instance, char *err, size_t err_len)
{
    struct store *s = instance;
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK)
        return hpf_set_error(err, err_len, sq_status(rc), "cannot open database '%s': %s", s->path,
                             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    sqlite3_busy_timeout(s->db, s->busy_timeout_ms);
    /* Opening is lazy: the first read finds out whether this is a database. */
    rc = sq_exec(s, "SELECT count(*) FROM sqlite_master");
    if (rc != SQLITE_OK)
        return hpf_set_error(err, err_len, sq_status(rc), "cannot read database '%s': %s", s->path,
                             sqlite3_errmsg(s->db));
    if (strcmp(s->path, ":memory:"))
        enable_wal(s);

    char why[512] = "";
    int status = sq_schema_migrate(s, why, sizeof(why));
    if (status != HPF_OK)
        return hpf_set_error(err, err_len, status, "%s: %s", s->path, why);
    return HPF_OK;
}

static void sqlite_destroy(void *instance)
{
    struct store *s = instance;
    if (!s)
        return;
    /* Statements first: a connection with live statements does not close. */
    g_hash_table_destroy(s->stmts);
    g_hash_table_destroy(s->warned);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        SQ_LOG(s, HPF_LOG_WARNING, "%s: close: %s", s->path, sqlite3_errmsg(s->db));
    g_free(s->path);
    g_free(s);
}

static const struct hpf_storage_ops storage_ops = {
    .authkey_get = sq_authkey_get,
    .version = sq_version,
    .snapshot = sq_snapshot,
    .apply = sq_apply,
    .counters_add = sq_counters_add,
    .counters_get = sq_counters_get,
    .audit_list = sq_audit_list,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "storage_sqlite",
    .version = PLUGIN_VERSION,
    .description = "users, graph and hpfeeds3-compatible authkeys in one SQLite file",
    .kinds = HPF_KIND_STORAGE,
    .config_keys = config_keys,
    .create = sqlite_create,
    .start = sqlite_start,
    .destroy = sqlite_destroy,
    .storage = &storage_ops,
};

HPF_PLUGIN_DEFINE(plugin)
