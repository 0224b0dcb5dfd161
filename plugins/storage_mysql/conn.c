/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql's connection: opening it (TLS, timeouts, utf8mb4), running
 * prepared statements with their results read as text, and telling an
 * outage (fail closed, reconnect on the next call) from a query error.
 *
 * libmariadb's own automatic reconnect stays off: it would silently drop
 * an open transaction's state and the session settings.  Instead any
 * connection-level error closes the connection here, and the next call
 * connects afresh (each attempt bounded by timeout_ms).
 */
#include "mysql_store.h"

#include <errmsg.h>
#include <mysqld_error.h>
#include <string.h>

#define OUTAGE_LOG_INTERVAL_US (60 * G_USEC_PER_SEC)
/* The first buffer of a result column; longer values are fetched again. */
#define COLUMN_BUF             256
/* Columns of one result row, at most (our SELECTs name at most 6). */
#define MAX_COLUMNS            16
/* Distinct row problems logged, at most. */
#define WARNED_MAX             1000

/* Session settings every connection starts with: strict, and the isolation snapshots rely on. */
static const char init_mode[] =
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'";
static const char init_isolation[] = "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ";

static void set_error(struct mystore *s, unsigned code, const char *text)
{
    s->last_errno = code;
    g_strlcpy(s->last_error, text && *text ? text : "unknown error", sizeof s->last_error);
}

static gboolean connection_errno(unsigned code)
{
    switch (code) {
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT (MariaDB 10.5.3+) */
        return TRUE;
    default:
        /* Every client library error is about the connection or its state. */
        return code >= CR_MIN_ERROR && code <= CR_MAX_ERROR;
    }
}

int my_status(const struct mystore *s)
{
    return connection_errno(s->last_errno) ? HPF_ERR_UNAVAILABLE : HPF_ERR_IO;
}

gboolean my_retryable(const struct mystore *s)
{
    return s->last_errno == ER_LOCK_DEADLOCK || s->last_errno == ER_LOCK_WAIT_TIMEOUT;
}

gboolean my_unmatchable(const struct mystore *s)
{
    switch (s->last_errno) {
    case ER_CANT_AGGREGATE_2COLLATIONS:
    case ER_CANT_AGGREGATE_3COLLATIONS:
    case ER_CANT_AGGREGATE_NCOLLATIONS:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
        return TRUE;
    default:
        return FALSE;
    }
}

void my_disconnect(struct mystore *s)
{
    if (s->stmts)
        g_hash_table_remove_all(s->stmts);
    if (s->conn)
        mysql_close(s->conn);
    s->conn = NULL;
}

static void set_tls(struct mystore *s, MYSQL *m)
{
    const struct my_target *t = &s->t;
    if (t->tls == MY_TLS_DISABLED)
        return;
    my_bool yes = 1, verify = t->tls == MY_TLS_VERIFY;
    mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &yes);
    mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    if (t->ssl_ca)
        mysql_optionsv(m, MYSQL_OPT_SSL_CA, t->ssl_ca);
    if (t->ssl_capath)
        mysql_optionsv(m, MYSQL_OPT_SSL_CAPATH, t->ssl_capath);
    if (t->ssl_cert)
        mysql_optionsv(m, MYSQL_OPT_SSL_CERT, t->ssl_cert);
    if (t->ssl_key)
        mysql_optionsv(m, MYSQL_OPT_SSL_KEY, t->ssl_key);
    if (t->ssl_cipher)
        mysql_optionsv(m, MYSQL_OPT_SSL_CIPHER, t->ssl_cipher);
}

gboolean my_connect(struct mystore *s)
{
    if (s->conn)
        return TRUE;
    MYSQL *m = mysql_init(NULL);
    if (!m) {
        set_error(s, CR_OUT_OF_MEMORY, "out of memory");
        return FALSE;
    }
    unsigned connect_s = s->timeout_s, io_s = MAX(10u, 5 * s->timeout_s);
    my_bool no = 0;
    unsigned zero = 0;
    mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &io_s);
    mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &io_s);
    mysql_optionsv(m, MYSQL_OPT_RECONNECT, &no);
    mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &zero);
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(m, MYSQL_INIT_COMMAND, init_mode);
    mysql_optionsv(m, MYSQL_INIT_COMMAND, init_isolation);
    set_tls(s, m);
    const struct my_target *t = &s->t;
    if (!mysql_real_connect(m, t->host, t->user, t->password, t->db, t->port, t->unix_socket,
                            CLIENT_REMEMBER_OPTIONS)) {
        /* Whatever the reason, no usable server: an outage for the callers. */
        set_error(s, CR_CONNECTION_ERROR, mysql_error(m));
        mysql_close(m);
        return FALSE;
    }
    s->conn = m;
    return TRUE;
}

void my_rollback(struct mystore *s)
{
    if (s->conn && mysql_rollback(s->conn) != 0 && connection_errno(mysql_errno(s->conn)))
        my_disconnect(s);
}

static gboolean stmt_failed(struct mystore *s, MYSQL_STMT *st)
{
    /* A failure the statement has no words for may be the connection's. */
    if (mysql_stmt_errno(st) || !s->conn)
        set_error(s, mysql_stmt_errno(st), mysql_stmt_error(st));
    else
        set_error(s, mysql_errno(s->conn), mysql_error(s->conn));
    if (connection_errno(s->last_errno))
        my_disconnect(s);
    else
        mysql_stmt_reset(st);
    return FALSE;
}

static MYSQL_STMT *prepared(struct mystore *s, const char *sql)
{
    MYSQL_STMT *st = g_hash_table_lookup(s->stmts, sql);
    if (st)
        return st;
    st = mysql_stmt_init(s->conn);
    if (!st) {
        set_error(s, mysql_errno(s->conn), mysql_error(s->conn));
        if (connection_errno(s->last_errno))
            my_disconnect(s);
        return NULL;
    }
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0) {
        set_error(s, mysql_stmt_errno(st), mysql_stmt_error(st));
        mysql_stmt_close(st);
        if (connection_errno(s->last_errno))
            my_disconnect(s);
        return NULL;
    }
    /* Keys are the callers' static SQL strings: not copied. */
    g_hash_table_insert(s->stmts, (gpointer)sql, st);
    return st;
}

static void bind_params(MYSQL_BIND *b, const struct my_param *params, unsigned n,
                        unsigned long *lens, my_bool *nulls)
{
    memset(b, 0, sizeof *b * n);
    for (unsigned i = 0; i < n; i++) {
        if (params[i].is_num) {
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = (void *)&params[i].num;
            continue;
        }
        nulls[i] = params[i].str == NULL;
        lens[i] = params[i].str ? (unsigned long)strlen(params[i].str) : 0;
        b[i].buffer_type = MYSQL_TYPE_STRING;
        b[i].buffer = (void *)params[i].str;
        b[i].buffer_length = lens[i];
        b[i].length = &lens[i];
        b[i].is_null = &nulls[i];
    }
}

struct result {
    MYSQL_BIND bind[MAX_COLUMNS];
    char buf[MAX_COLUMNS][COLUMN_BUF];
    unsigned long len[MAX_COLUMNS];
    my_bool null[MAX_COLUMNS];
    my_bool error[MAX_COLUMNS];
    char *big[MAX_COLUMNS]; /* refetched long values */
    const char *vals[MAX_COLUMNS];
};

/* The values of the fetched row; long ones fetched again whole, too long ones NULL. */
static gboolean row_values(struct mystore *s, MYSQL_STMT *st, struct result *r, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        g_clear_pointer(&r->big[i], g_free);
        r->vals[i] = NULL;
        if (r->null[i])
            continue;
        if (r->len[i] < COLUMN_BUF) {
            r->buf[i][r->len[i]] = '\0';
            r->vals[i] = r->buf[i];
            continue;
        }
        if (r->len[i] > MY_MAX_VALUE) {
            my_warn_row(s, "result", "a value longer than 4 MiB is read as missing");
            continue;
        }
        r->big[i] = g_malloc(r->len[i] + 1);
        MYSQL_BIND b = {
            .buffer_type = MYSQL_TYPE_STRING, .buffer = r->big[i], .buffer_length = r->len[i] + 1};
        unsigned long got = 0;
        b.length = &got;
        if (mysql_stmt_fetch_column(st, &b, i, 0) != 0)
            return FALSE;
        r->big[i][MIN(got, r->len[i])] = '\0';
        r->vals[i] = r->big[i];
    }
    return TRUE;
}

static gboolean fetch_rows(struct mystore *s, MYSQL_STMT *st, my_row_fn fn, void *arg)
{
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    if (!meta)
        return TRUE; /* no result set */
    unsigned n = mysql_num_fields(meta);
    mysql_free_result(meta);
    if (n > MAX_COLUMNS) {
        set_error(s, 0, "too many result columns");
        return FALSE;
    }
    struct result *r = g_new0(struct result, 1);
    for (unsigned i = 0; i < n; i++) {
        r->bind[i].buffer_type = MYSQL_TYPE_STRING;
        r->bind[i].buffer = r->buf[i];
        r->bind[i].buffer_length = COLUMN_BUF;
        r->bind[i].length = &r->len[i];
        r->bind[i].is_null = &r->null[i];
        r->bind[i].error = &r->error[i];
    }
    gboolean ok = mysql_stmt_bind_result(st, r->bind) == 0;
    while (ok) {
        int rc = mysql_stmt_fetch(st);
        if (rc == MYSQL_NO_DATA)
            break;
        ok = (rc == 0 || rc == MYSQL_DATA_TRUNCATED) && row_values(s, st, r, n);
        if (ok && fn)
            fn(s, r->vals, n, arg);
    }
    for (unsigned i = 0; i < n; i++)
        g_free(r->big[i]);
    g_free(r);
    return ok;
}

gboolean my_exec(struct mystore *s, const char *sql, const struct my_param *params, unsigned n,
                 my_row_fn fn, void *arg, uint64_t *affected)
{
    if (!my_connect(s))
        return FALSE;
    MYSQL_STMT *st = prepared(s, sql);
    if (!st)
        return FALSE;
    if (n > MY_MAX_PARAMS || mysql_stmt_param_count(st) != n) {
        set_error(s, 0, "wrong number of statement parameters");
        return FALSE;
    }
    MYSQL_BIND b[MY_MAX_PARAMS];
    unsigned long lens[MY_MAX_PARAMS];
    my_bool nulls[MY_MAX_PARAMS];
    if (n > 0) {
        bind_params(b, params, n, lens, nulls);
        if (mysql_stmt_bind_param(st, b) != 0)
            return stmt_failed(s, st);
    }
    if (mysql_stmt_execute(st) != 0)
        return stmt_failed(s, st);
    if (!fetch_rows(s, st, fn, arg))
        return stmt_failed(s, st);
    if (affected)
        *affected = mysql_stmt_affected_rows(st);
    mysql_stmt_free_result(st);
    return TRUE;
}

int my_trouble(struct mystore *s, const char *what)
{
    int64_t now = g_get_monotonic_time();
    int status = my_status(s);
    if (!s->down || now - s->last_log_us >= OUTAGE_LOG_INTERVAL_US) {
        if (s->unlogged > 0)
            MY_LOG(s, HPF_LOG_ERR,
                   "mysql at %s: %s failed: %s (%" G_GUINT64_FORMAT " more failures since "
                   "the last report)",
                   s->where, what, s->last_error, s->unlogged);
        else
            MY_LOG(s, HPF_LOG_ERR, "mysql at %s: %s failed: %s (repeats logged once a minute)",
                   s->where, what, s->last_error);
        s->last_log_us = now;
        s->unlogged = 0;
    } else {
        s->unlogged++;
    }
    s->down = TRUE;
    return status;
}

void my_healthy(struct mystore *s)
{
    if (!s->down)
        return;
    MY_LOG(s, HPF_LOG_NOTICE, "mysql at %s: working again", s->where);
    s->down = FALSE;
    s->unlogged = 0;
}

void my_warn_row(struct mystore *s, const char *table, const char *what)
{
    char *key = g_strdup_printf("%s\x1f%s", table, what);
    /* Bounded: past WARNED_MAX distinct problems, the rest go unlogged. */
    if (g_hash_table_contains(s->warned, key) || g_hash_table_size(s->warned) >= WARNED_MAX) {
        g_free(key);
        return;
    }
    g_hash_table_add(s->warned, key);
    MY_LOG(s, HPF_LOG_WARNING, "mysql at %s: %s: %s; skipping what cannot be read", s->where, table,
           what);
}
