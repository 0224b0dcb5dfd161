/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mongodb: users, graph and MHN's authkeys in MongoDB.  Collections,
 * the version scheme and the client's set-up are described in
 * mongo_store.h; reads in read.c, apply() and counters in write.c.  This
 * file holds the plugin descriptor, the life cycle and the error helpers.
 *
 * libmongoc's global state: mongoc_init() runs once per process, from the
 * first create().  mongoc_cleanup() is never called: the loader keeps
 * plugin modules resident (and this one links with -z nodelete), a second
 * instance in the same process (hpfriendsctl, tests) needs libmongoc still
 * initialised, and libmongoc cannot be initialised again after a cleanup.
 * What it keeps is process-global and stays reachable, so leak checkers do
 * not report it.
 */
#include "mongo_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS     2000
#define OUTAGE_LOG_INTERVAL_US (60 * G_USEC_PER_SEC)

static const char *const config_keys[] = {"uri", "timeout_ms", "transactions", NULL};

const char *const ms_coll_names[MS_N_COLL] = {
    [MS_AUTH_KEY] = "auth_key",     [MS_USERS] = "hpf_users",   [MS_GROUPS] = "hpf_groups",
    [MS_MEMBERS] = "hpf_members",   [MS_SHARES] = "hpf_shares", [MS_ACCEPTS] = "hpf_accepts",
    [MS_COUNTERS] = "hpf_counters", [MS_META] = "hpf_meta",     [MS_AUDIT] = "hpf_audit",
    [MS_DECLINES] = "hpf_declines",
};

int ms_status(const bson_error_t *e)
{
    switch (e->domain) {
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_STREAM:
        return HPF_ERR_UNAVAILABLE;
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_WRITE_CONCERN:
        switch (e->code) {
        case 6:     /* HostUnreachable */
        case 7:     /* HostNotFound */
        case 89:    /* NetworkTimeout */
        case 91:    /* ShutdownInProgress */
        case 189:   /* PrimarySteppedDown */
        case 9001:  /* SocketException */
        case 10107: /* NotWritablePrimary */
        case 11600: /* InterruptedAtShutdown */
        case 11602: /* InterruptedDueToReplStateChange */
        case 13435: /* NotPrimaryNoSecondaryOk */
        case 13436: /* NotPrimaryOrSecondary */
            return HPF_ERR_UNAVAILABLE;
        default:
            return HPF_ERR_IO;
        }
    default:
        return HPF_ERR_IO;
    }
}

int ms_trouble(struct mstore *s, const char *what, const bson_error_t *e)
{
    int64_t now = g_get_monotonic_time();
    int status = ms_status(e);
    if (!s->down || now - s->last_log_us >= OUTAGE_LOG_INTERVAL_US) {
        if (s->unlogged > 0)
            MS_LOG(s, HPF_LOG_ERR,
                   "mongodb at %s: %s failed: %s (%" G_GUINT64_FORMAT " more failures since "
                   "the last report)",
                   s->where, what, e->message, s->unlogged);
        else
            MS_LOG(s, HPF_LOG_ERR, "mongodb at %s: %s failed: %s (repeats logged once a minute)",
                   s->where, what, e->message);
        s->last_log_us = now;
        s->unlogged = 0;
    } else {
        s->unlogged++;
    }
    s->down = TRUE;
    return status;
}

void ms_healthy(struct mstore *s)
{
    if (!s->down)
        return;
    MS_LOG(s, HPF_LOG_NOTICE, "mongodb at %s: working again", s->where);
    s->down = FALSE;
    s->unlogged = 0;
}

void ms_warn_doc(struct mstore *s, enum ms_coll c, const char *what)
{
    char *key = g_strdup_printf("%s\x1f%s", ms_coll_names[c], what);
    if (g_hash_table_contains(s->warned, key)) {
        g_free(key);
        return;
    }
    g_hash_table_add(s->warned, key);
    MS_LOG(s, HPF_LOG_WARNING, "mongodb at %s: %s: %s; skipping what cannot be read", s->where,
           ms_coll_names[c], what);
}

static gpointer init_mongoc(gpointer unused)
{
    (void)unused;
    /*
     * Debian's libmongoc also initialises itself from a constructor when
     * this module is loaded, counters in /dev/shm included unless
     * MONGOC_DISABLE_SHM is set: the programs set it before loading any
     * plugin (plugin_process_init()).
     */
    mongoc_init();
    return NULL;
}

static char *describe(const mongoc_uri_t *uri, const char *db)
{
    GString *w = g_string_new(NULL);
    for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri); h; h = h->next)
        g_string_append_printf(w, "%s%s", w->len ? "," : "", h->host_and_port);
    g_string_append_printf(w, "/%s", db);
    return g_string_free(w, FALSE);
}

static int mongo_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                        void **instance, char *err, size_t err_len)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, init_mongoc, NULL);

    const char *text = host->config_get(ctx, "uri");
    if (!text || !*text)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "missing required key 'uri' (mongodb://host:port/dbname)");
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
    enum ms_transactions txn = MS_TXN_AUTO;
    value = host->config_get(ctx, "transactions");
    if (value) {
        if (!strcmp(value, "auto"))
            txn = MS_TXN_AUTO;
        else if (!strcmp(value, "always"))
            txn = MS_TXN_ALWAYS;
        else if (!strcmp(value, "never"))
            txn = MS_TXN_NEVER;
        else
            return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                                 "transactions: '%s' is not auto, always or never", value);
    }

    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(text, &e);
    if (!uri)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: %s", e.message);
    const char *db = mongoc_uri_get_database(uri);
    if (!db || !*db) {
        mongoc_uri_destroy(uri);
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: no database name: use mongodb://host:port/dbname");
    }
    /* Fail fast when the server is away, unless the URI says otherwise. */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, (int32_t)timeout);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, (int32_t)timeout);
    /* A hung (not closed) connection: give up well before the default 5 minutes. */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                       (int32_t)MAX(10000, 5 * timeout));

    struct mstore *s = g_new0(struct mstore, 1);
    s->host = host;
    s->ctx = ctx;
    s->uri = uri;
    s->db = g_strdup(db);
    s->where = describe(uri, db);
    s->timeout_ms = (int)timeout;
    s->txn = txn;
    s->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    *instance = s;
    return HPF_OK;
}

static int mongo_start(void *instance, char *err, size_t err_len)
{
    struct mstore *s = instance;
    bson_error_t e;
    s->client = mongoc_client_new_from_uri_with_error(s->uri, &e);
    if (!s->client)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "mongodb at %s: %s", s->where,
                             e.message);
    mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(s->client, "hpfriends");
    for (int i = 0; i < MS_N_COLL; i++)
        s->coll[i] = mongoc_client_get_collection(s->client, s->db, ms_coll_names[i]);

    bson_t ping = BSON_INITIALIZER;
    BSON_APPEND_INT32(&ping, "ping", 1);
    bool ok = mongoc_client_command_simple(s->client, "admin", &ping, NULL, NULL, &e);
    bson_destroy(&ping);
    if (!ok)
        return hpf_set_error(err, err_len, ms_status(&e), "cannot reach mongodb at %s: %s",
                             s->where, e.message);
    int status = ms_prepare(s, err, err_len);
    if (status != HPF_OK)
        return status;
    uint64_t v;
    return ms_version(s, &v) == HPF_OK
               ? HPF_OK
               : hpf_set_error(err, err_len, HPF_ERR_IO,
                               "mongodb at %s: cannot read the data version", s->where);
}

static void mongo_destroy(void *instance)
{
    struct mstore *s = instance;
    if (!s)
        return;
    for (int i = 0; i < MS_N_COLL; i++)
        if (s->coll[i])
            mongoc_collection_destroy(s->coll[i]);
    if (s->client)
        mongoc_client_destroy(s->client);
    mongoc_uri_destroy(s->uri);
    g_hash_table_destroy(s->warned);
    g_free(s->where);
    g_free(s->db);
    g_free(s);
}

static const struct hpf_storage_ops storage_ops = {
    .authkey_get = ms_authkey_get,
    .version = ms_version,
    .snapshot = ms_snapshot,
    .apply = ms_apply,
    .counters_add = ms_counters_add,
    .counters_get = ms_counters_get,
    .audit_list = ms_audit_list,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "storage_mongodb",
    .version = PLUGIN_VERSION,
    .description = "users, graph and MHN/hpfeeds3 authkeys (auth_key) in MongoDB",
    .kinds = HPF_KIND_STORAGE,
    .config_keys = config_keys,
    .create = mongo_create,
    .start = mongo_start,
    .destroy = mongo_destroy,
    .storage = &storage_ops,
};

HPF_PLUGIN_DEFINE(plugin)
