/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mongodb internals shared by its source files.
 *
 * Data, in the database named by the URI (as hpfeeds3 and MHN do):
 *  - auth_key: MHN's authkeys, read and written in MHN's shape
 *    {identifier, secret, publish: [..], subscribe: [..]} plus `owner`
 *    (absent: the identifier owns the key).  Other fields are left alone.
 *  - hpf_users {name, admin, password (optional), created}, hpf_groups {name, owner, created},
 *    hpf_members {group, user}, hpf_shares {from, to, to_group, channel,
 *    type: "shares"|"shares_all"}, hpf_accepts {user, from, channel},
 *    hpf_declines {user, from, channel} (new in ABI 1.5: a collection an
 *    older plugin never reads, so no schema step; there declines read as
 *    pending),
 *    hpf_counters {ident, published_msgs, published_bytes, received_msgs,
 *    received_bytes}: ours.  _id is always the server's/driver's ObjectId
 *    (CongoDB takes no other kind); the natural keys carry unique indexes,
 *    which real MongoDB enforces and CongoDB does not, so apply() checks
 *    existence itself before every insert anyway.
 *  - hpf_meta: {key: "schema_version", value} and {key: "data_version",
 *    value, busy}.  Every apply() adds to data_version; `busy` is true while
 *    a non-transactional apply is writing (see write.c).
 *
 * version(): an in-memory counter that moves whenever data_version or a
 * SHA-256 over the auth_key documents (the fields we read, in _id order)
 * changed since the last call.  The digest catches authkeys inserted,
 * changed or deleted behind our back (an MHN web UI, a mongo shell), which
 * data_version cannot see; CongoDB has no change streams or tailable
 * cursors, and polling a digest needs neither.  Its cost is one read of
 * auth_key per poll (every reload_interval, 2 s by default).
 *
 * One mongoc_client_t, single-threaded (the broker serialises storage
 * calls), with a short serverSelectionTimeoutMS so that a server that is
 * down fails a call within about timeout_ms: HPF_ERR_UNAVAILABLE, logged at
 * most once a minute.  libmongoc reconnects by itself once it is back
 * (a single-threaded client waits up to 5 s between attempts at a server
 * that failed).
 */
#ifndef HPF_STORAGE_MONGO_STORE_H
#define HPF_STORAGE_MONGO_STORE_H

#include <stdint.h>

#include <glib.h>
#include <mongoc/mongoc.h>

#include <hpfriends/plugin.h>
#include <hpfriends/storage.h>

#include "../common/model.h"

#define MS_SCHEMA_VERSION 1

enum ms_coll {
    MS_AUTH_KEY,
    MS_USERS,
    MS_GROUPS,
    MS_MEMBERS,
    MS_SHARES,
    MS_ACCEPTS,
    MS_COUNTERS,
    MS_META,
    MS_DECLINES,
    MS_AUDIT,
    MS_N_COLL
};

extern const char *const ms_coll_names[MS_N_COLL];

enum ms_transactions { MS_TXN_AUTO, MS_TXN_ALWAYS, MS_TXN_NEVER };

struct mstore {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;
    mongoc_uri_t *uri;
    char *where; /* "host:port/db" for messages: never the password */
    char *db;
    int timeout_ms;
    enum ms_transactions txn;

    mongoc_client_t *client;
    mongoc_collection_t *coll[MS_N_COLL];

    uint64_t version;
    gboolean have_seen;
    int64_t seen_data_version;
    guint8 seen_digest[32];

    gboolean down;       /* the last call failed */
    int64_t last_log_us; /* when that was last logged */
    uint64_t unlogged;   /* failures since */
    GHashTable *warned;  /* document problems already logged */
};

#define MS_LOG(s, level, ...) (s)->host->log((s)->ctx, (level), __VA_ARGS__)

/* storage_mongodb.c */
/* hpf status for a libmongoc error: UNAVAILABLE for network/selection trouble. */
int ms_status(const bson_error_t *e);
/* A call failed: log (rate-limited) and return its status. */
int ms_trouble(struct mstore *s, const char *what, const bson_error_t *e);
/* A call worked: log recovery once after trouble. */
void ms_healthy(struct mstore *s);
/* Log a document problem once per (collection, what). */
void ms_warn_doc(struct mstore *s, enum ms_coll c, const char *what);

/* read.c */
struct ms_meta {
    int64_t data_version;
    gboolean busy;
};
gboolean ms_read_meta(struct mstore *s, mongoc_client_session_t *cs, struct ms_meta *out,
                      bson_error_t *e);
/* Everything into a model; NULL with e set on failure. */
struct gm_model *ms_load_model(struct mstore *s, mongoc_client_session_t *cs, bson_error_t *e);
gboolean ms_authkey_digest(struct mstore *s, guint8 out[32], bson_error_t *e);
int ms_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data);
int ms_version(void *instance, uint64_t *version);
int ms_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data);
int ms_counters_get(void *instance, const char *ident, struct hpf_counters *out);

/* write.c */
int ms_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len);
int ms_counters_add(void *instance, const struct hpf_counters *deltas, size_t n);
/* Indexes and the meta documents; one line into err on failure. */
/* audit.c: the audit trail; ms_audit_insert() writes a batch's records (cs may be NULL). */
gboolean ms_audit_insert(struct mstore *s, mongoc_client_session_t *cs,
                         const struct hpf_mutation *mutations, size_t n, bson_error_t *e);
int ms_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb, void *ud);

int ms_prepare(struct mstore *s, char *err, size_t err_len);

#endif
