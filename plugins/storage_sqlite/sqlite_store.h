/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_sqlite internals shared by its source files.
 *
 * One instance owns one SQLite connection.  The broker serialises calls into
 * an instance, so nothing here locks; concurrency with other processes
 * (hpfriendsctl, an hpfeeds3-era script) is SQLite's job: WAL mode plus a
 * busy timeout.
 */
#ifndef HPF_STORAGE_SQLITE_STORE_H
#define HPF_STORAGE_SQLITE_STORE_H

#include <glib.h>
#include <sqlite3.h>

#include <hpfriends/plugin.h>
#include <hpfriends/storage.h>

/* Highest schema version this build knows; see schema.c. */
#define SQ_SCHEMA_VERSION 4

/* What the run-time error logging tracks, to complain once per outage. */
enum sq_health { SQ_READS, SQ_COUNTERS, SQ_N_HEALTH };

struct store {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;
    char *path;
    int busy_timeout_ms;
    sqlite3 *db;
    GHashTable *stmts;  /* SQL text -> prepared sqlite3_stmt *, see sq_stmt() */
    GHashTable *warned; /* idents whose bad channel lists were already logged */
    bool failing[SQ_N_HEALTH];
    bool auth_keys; /* the file has hpfeeds3's auth_keys table too; see schema.c */
};

#define SQ_LOG(s, level, ...) (s)->host->log((s)->ctx, (level), __VA_ARGS__)

/*
 * The cached prepared statement for `sql`, reset and with its bindings
 * cleared, or NULL when it does not prepare (sqlite3_errmsg() says why).  Cached statements
 * stay valid across schema changes: SQLite re-prepares them itself.
 */
sqlite3_stmt *sq_stmt(struct store *s, const char *sql);

/* Run one parameterless statement (BEGIN, COMMIT, ...); SQLite's code. */
int sq_exec(struct store *s, const char *sql);

/* hpf_status for a failed SQLite call. */
int sq_status(int rc);

/* Roll back the open transaction, if any. */
void sq_rollback(struct store *s);

/*
 * Parse a channel list column (a JSON array of strings, as hpfeeds stores
 * it) into `out` (char *, owned).  NULL or empty text is an empty list.
 * Bad JSON or non-string items are logged once per ident and dropped: an
 * unreadable list grants nothing.
 */
void sq_parse_channels(struct store *s, const char *ident, const char *column, const char *json,
                       GPtrArray *out);

/* JSON text of a channel list, as hpfeeds stores it; g_free() it. */
char *sq_format_channels(const char *const *chans, size_t n);

/* schema.c: create or migrate the schema; one line into err on failure. */
int sq_schema_migrate(struct store *s, char *err, size_t err_len);

/* ops.c */
int sq_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data);
int sq_version(void *instance, uint64_t *version);
int sq_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data);
int sq_counters_add(void *instance, const struct hpf_counters *deltas, size_t n);
int sq_counters_get(void *instance, const char *ident, struct hpf_counters *out);

/* apply.c */
/* Audit trail (audit.c): add m's record and trim to its bound, in the open transaction. */
int sq_audit_insert(struct store *s, const struct hpf_mutation *m);
int sq_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb, void *ud);

int sq_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len);

#endif
