/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql internals shared by its source files.
 *
 * Tables, in the database (and search_path) the URI names:
 *  - auth_keys: hpfeeds3's authkeys (its `database+postgresql://` store):
 *    (id, identifier, secret, publish, subscribe), the lists JSON text.
 *    Read and written in that shape, never altered: no column, trigger or
 *    index is added to a table that was there before us.  On a database
 *    without one we create it with hpfeeds3's columns (text instead of its
 *    varchar(36), so that every name hpfriends allows fits) and an index on
 *    identifier.  hpfeeds3 has no owner: a key's owner is its identifier
 *    unless hpf_key_owners names another.
 *  - hpf_meta (schema_version, data_version), hpf_users, hpf_groups,
 *    hpf_members, hpf_shares, hpf_accepts, hpf_declines (schema step 3),
 *    hpf_key_owners, hpf_counters:
 *    ours (schema.c).
 *
 * version(): an in-memory counter that moves whenever data_version (bumped
 * by every apply(), in its transaction) or a fingerprint of the auth_keys
 * rows (their count and transaction stamps, read.c) changed since the last
 * call, so that keys an hpfeeds3-era script inserts are seen by every node.
 *
 * One connection (the broker serialises storage calls, so more would sit
 * idle), opened by start() and re-opened on demand after a failure, at most
 * once a second.  Every query runs through pg_query() (conn.c): libpq's
 * asynchronous calls with a deadline of timeout_ms, so a server that is
 * down or hung fails a call within about that time with
 * HPF_ERR_UNAVAILABLE (logged at most once a minute): authentication
 * fails closed and mutations fail, until the server answers again.
 */
#ifndef HPF_STORAGE_PG_STORE_H
#define HPF_STORAGE_PG_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <libpq-fe.h>

#include <hpfriends/plugin.h>
#include <hpfriends/storage.h>

#include "../common/model.h"

/* Highest schema version this build knows; see schema.c. */
#define PG_SCHEMA_VERSION 3

struct pstore {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;
    char *uri;   /* as configured: never logged (it may hold a password) */
    char *where; /* "host:port/db" for messages */
    int timeout_ms;

    PGconn *conn;
    int64_t next_connect_us; /* no new connection attempt before this */
    bool in_txn;             /* a transaction is open on conn */

    uint64_t version;
    bool have_seen;
    char *seen_state; /* data_version and the auth_keys digest last seen */

    bool down;           /* the last call failed */
    int64_t last_log_us; /* when that was last logged */
    uint64_t unlogged;   /* failures since */
    GHashTable *warned;  /* row problems already logged */
};

#define PG_LOG(s, level, ...) (s)->host->log((s)->ctx, (level), __VA_ARGS__)

/* A failed query: the hpf status and a one-line reason. */
struct pg_fail {
    int status;
    bool closed; /* the server closed the connection (not a timeout) */
    char msg[512];
};

/* storage_postgresql.c */
/* A call failed: log (rate-limited) and return f->status. */
int pg_trouble(struct pstore *s, const char *what, const struct pg_fail *f);
/* A call worked: log recovery once after trouble. */
void pg_healthy(struct pstore *s);
/* Log a row problem once per (table, what). */
void pg_warn_row(struct pstore *s, const char *table, const char *what);

/* conn.c */
/* Open the connection now if there is none (start()); false with f set. */
bool pg_connect(struct pstore *s, struct pg_fail *f);
void pg_disconnect(struct pstore *s);
/*
 * Run one statement with n text parameters (NULL entries are SQL NULL).
 * A result that is PGRES_TUPLES_OK or PGRES_COMMAND_OK (PQclear() it), or
 * NULL with f set.  Outside a transaction, a connection found dead is
 * re-opened and the statement sent once more.
 */
PGresult *pg_query(struct pstore *s, const char *sql, int n, const char *const *params,
                   struct pg_fail *f);
/* pg_query() for a statement whose rows are not wanted. */
bool pg_run(struct pstore *s, const char *sql, int n, const char *const *params, struct pg_fail *f);
/* BEGIN (with `mode`, e.g. "ISOLATION LEVEL REPEATABLE READ"), COMMIT, ROLLBACK. */
bool pg_begin(struct pstore *s, const char *mode, struct pg_fail *f);
bool pg_commit(struct pstore *s, struct pg_fail *f);
void pg_rollback(struct pstore *s);

/* schema.c: create or migrate the schema; one line into err on failure. */
int pg_schema_migrate(struct pstore *s, char *err, size_t err_len);

/* read.c */
struct gm_model *pg_load_model(struct pstore *s, struct pg_fail *f);
int pg_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data);
int pg_version(void *instance, uint64_t *version);
int pg_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data);
int pg_counters_get(void *instance, const char *ident, struct hpf_counters *out);

/* audit.c: the audit trail; pg_audit_insert() runs inside apply()'s transaction. */
bool pg_audit_insert(struct pstore *s, const struct hpf_mutation *m, struct pg_fail *f);
int pg_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb, void *ud);

/* batch.c: apply()'s inserts, a few hundred rows a statement */
enum pg_btable {
    PB_USERS,
    PB_GROUPS,
    PB_MEMBERS,
    PB_SHARES,
    PB_ACCEPTS,
    PB_KEYS,
    PB_OWNERS,
    PB_DECLINES,
    PB_N
};
struct pg_batch {
    GPtrArray *rows[PB_N]; /* JsonObject *, one a row, fields named as the columns */
    GArray *bytes[PB_N];   /* size_t: about how much JSON each row makes */
};
void pg_batch_init(struct pg_batch *b);
void pg_batch_clear(struct pg_batch *b);
/* A new row of table t (about `bytes` of text) to fill in; owned by the batch. */
JsonObject *pg_batch_row(struct pg_batch *b, enum pg_btable t, size_t bytes);
/* Insert every row, tables in enum order; false with f set and the rows named in what. */
bool pg_batch_flush(struct pstore *s, struct pg_batch *b, struct pg_fail *f, char *what,
                    size_t what_len);

/* write.c */
int pg_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len);
int pg_counters_add(void *instance, const struct hpf_counters *deltas, size_t n);

#endif
