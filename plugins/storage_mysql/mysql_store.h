/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql internals shared by its source files.
 *
 * Data, in the database named by the URI:
 *  - auth_keys: hpfeeds3's table (its `--auth database+mysql://...`):
 *    columns identifier, secret, publish, subscribe (the channel lists as
 *    JSON text arrays), read by name; other columns are left alone and the
 *    table is never altered.  When it does not exist we create it in the
 *    shape hpfeeds3 reads (`SELECT *` and positions 1-4: id first).  The
 *    authkeys hpfriends writes go here too, so hpfeeds3 can still read them.
 *  - hpf_key_owners (identifier, owner): the owner hpfeeds3's table has no
 *    column for; absent means the identifier owns the key.
 *  - hpf_users, hpf_groups, hpf_members, hpf_shares, hpf_accepts,
 *    hpf_declines (schema step 3), hpf_counters: ours, utf8mb4 with a
 *    byte-exact collation that does not pad ("a" and "a " are two names,
 *    as in every other backend).
 *  - hpf_meta (name, value): schema_version and data_version.
 *
 * version(): an in-memory counter that moves whenever data_version (every
 * apply() adds one, in its transaction) or a SHA-256 over the auth_keys
 * rows changed since the last call: the digest catches keys written behind
 * our back by hpfeeds3-era tools.
 *
 * One connection, used by one thread at a time (the broker serialises
 * storage calls and runs them off its event loop).  It is opened lazily and
 * dropped on any connection-level error; the next call opens a new one
 * within timeout_ms, so a server that is away fails each call fast with
 * HPF_ERR_UNAVAILABLE (fail closed: no AUTH is granted from stale data),
 * and the plugin recovers by itself once the server is back.  Prepared
 * statements are cached per connection.
 */
#ifndef HPF_STORAGE_MYSQL_STORE_H
#define HPF_STORAGE_MYSQL_STORE_H

#include <stdint.h>

#include <glib.h>
#include <mysql.h>

#include <hpfriends/plugin.h>
#include <hpfriends/storage.h>

#include "../common/model.h"

#define MY_SCHEMA_VERSION 3

/* The longest column value read (a channel list as JSON text): longer is unreadable. */
#define MY_MAX_VALUE  (4u << 20)
/* Parameters of one statement, at most. */
#define MY_MAX_PARAMS 8

enum my_tls { MY_TLS_DISABLED, MY_TLS_REQUIRED, MY_TLS_VERIFY };

/* What the [storage] keys and the URI say; see uri.c. */
struct my_target {
    char *host; /* NULL: localhost through the socket */
    unsigned port;
    char *user;
    char *password;
    char *db;
    char *unix_socket;
    enum my_tls tls;
    char *ssl_ca, *ssl_capath, *ssl_cert, *ssl_key, *ssl_cipher;
};

struct mystore {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;
    struct my_target t;
    char *where; /* "host:port/db" for messages: never the password */
    unsigned timeout_s;

    MYSQL *conn;
    GHashTable *stmts;    /* SQL text -> MYSQL_STMT *, on conn */
    gboolean auth_has_id; /* auth_keys has an `id` column to order by */

    uint64_t version;
    gboolean have_seen;
    int64_t seen_data_version;
    guint8 seen_digest[32];

    gboolean down;       /* the last call failed */
    int64_t last_log_us; /* when that was last logged */
    uint64_t unlogged;   /* failures since */
    GHashTable *warned;  /* row problems already logged */

    /* the last failure: errno of the server or client library, and its text */
    unsigned last_errno;
    char last_error[512];
};

#define MY_LOG(s, level, ...) (s)->host->log((s)->ctx, (level), __VA_ARGS__)

/* A statement parameter: a string (NULL for SQL NULL) or an integer. */
struct my_param {
    const char *str;
    long long num;
    gboolean is_num;
};
#define MY_S(v) ((struct my_param){.str = (v)})
#define MY_N(v) ((struct my_param){.num = (v), .is_num = TRUE})

/* One result row: values as text (NULL for SQL NULL), n columns. */
typedef void (*my_row_fn)(struct mystore *s, const char *const *vals, unsigned n, void *arg);

/* uri.c */
/* Parse `uri` into t (zeroed first); HPF_OK, or HPF_ERR_INVALID with err set. */
int my_target_parse(const char *uri, struct my_target *t, char *err, size_t err_len);
void my_target_clear(struct my_target *t);

/* conn.c */
/* The open connection, connecting first if need be; FALSE with last_error set. */
gboolean my_connect(struct mystore *s);
void my_disconnect(struct mystore *s);
/*
 * Run one prepared statement with params; rows go to fn (may be NULL).
 * *affected (may be NULL) gets the affected row count.  FALSE with
 * last_errno/last_error set on failure; a connection-level failure also
 * drops the connection.
 */
gboolean my_exec(struct mystore *s, const char *sql, const struct my_param *params, unsigned n,
                 my_row_fn fn, void *arg, uint64_t *affected);
/* Roll back whatever is open (ignores failure: a dropped connection has nothing open). */
void my_rollback(struct mystore *s);
/* HPF_ERR_UNAVAILABLE for connection trouble, HPF_ERR_IO otherwise. */
int my_status(const struct mystore *s);
/* A deadlock or lock wait timeout: the transaction may be tried again. */
gboolean my_retryable(const struct mystore *s);
/** The last statement failed because a value cannot exist in the column's character set
 *  (an ident a latin1 table of hpfeeds3's cannot hold): it matches no row. */
gboolean my_unmatchable(const struct mystore *s);
/* A call failed: log (rate-limited) and return its status. */
int my_trouble(struct mystore *s, const char *what);
/* A call worked: log recovery once after trouble. */
void my_healthy(struct mystore *s);
/* Log a row problem once per (table, what). */
void my_warn_row(struct mystore *s, const char *table, const char *what);

/* audit.c: the audit trail; my_audit_insert() runs inside apply()'s transaction. */
gboolean my_audit_insert(struct mystore *s, const struct hpf_mutation *m);
int my_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb, void *ud);

/* schema.c: create or migrate; one line into err on failure. */
int my_schema_migrate(struct mystore *s, char *err, size_t err_len);

/* read.c */
/* Everything into a model (in the open transaction, if any); NULL on failure. */
struct gm_model *my_load_model(struct mystore *s);
/* JSON text of a channel list, as hpfeeds3 stores it; g_free() it. */
char *my_format_channels(const GPtrArray *chans);
int my_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data);
int my_version(void *instance, uint64_t *version);
int my_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data);
int my_counters_get(void *instance, const char *ident, struct hpf_counters *out);

/* write.c */
int my_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len);
int my_counters_add(void *instance, const struct hpf_counters *deltas, size_t n);

#endif
