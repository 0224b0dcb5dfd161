/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql's connection: opening it, re-opening it after a
 * failure, and running statements with a deadline.
 *
 * libpq's blocking PQexec() waits as long as the server keeps the socket
 * open, which a hung server or a dropped network can make minutes.  So
 * statements go out with PQsendQueryParams() and the answer is awaited with
 * poll() until timeout_ms; a connection that misses the deadline is closed
 * (its state is unknown) and the call fails as UNAVAILABLE.  The
 * connection is non-blocking, so sending a large statement waits on the
 * same deadline instead of in write().  Connecting is
 * bounded by libpq's connect_timeout, which create() defaults from
 * timeout_ms unless the URI sets one.
 */
#include "pg_store.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#define RECONNECT_INTERVAL_US (1 * G_USEC_PER_SEC)

static void set_fail(struct pg_fail *f, int status, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void set_fail(struct pg_fail *f, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    /* libpq's messages end in a newline (and may span lines): one line for the log */
    for (char *c = f->msg; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = c[1] ? ' ' : '\0';
    f->status = status;
    f->closed = false;
}

void pg_disconnect(struct pstore *s)
{
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
    /* in_txn stays until COMMIT or ROLLBACK: nothing may run outside the lost transaction */
}

bool pg_connect(struct pstore *s, struct pg_fail *f)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return true;
    pg_disconnect(s);
    int64_t now = g_get_monotonic_time();
    if (now < s->next_connect_us) {
        set_fail(f, HPF_ERR_UNAVAILABLE, "not connected (the last attempt failed %d ms ago)",
                 (int)((now - (s->next_connect_us - RECONNECT_INTERVAL_US)) / 1000));
        return false;
    }
    char timeout[16];
    g_snprintf(timeout, sizeof timeout, "%d", MAX(2, (s->timeout_ms + 999) / 1000));
    /* Defaults first: values in the URI (expanded from dbname) override them. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const values[] = {timeout, "hpfriends", s->uri, NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    if (!c) {
        set_fail(f, HPF_ERR_NOMEM, "libpq could not allocate a connection");
        s->next_connect_us = now + RECONNECT_INTERVAL_US;
        return false;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        set_fail(f, HPF_ERR_UNAVAILABLE, "%s", PQerrorMessage(c));
        PQfinish(c);
        s->next_connect_us = g_get_monotonic_time() + RECONNECT_INTERVAL_US;
        return false;
    }
    /* Sending must not block either: a large batch to a hung server would wait forever. */
    if (PQsetnonblocking(c, 1) != 0) {
        set_fail(f, HPF_ERR_IO, "%s", PQerrorMessage(c));
        PQfinish(c);
        return false;
    }
    s->conn = c;
    return true;
}

/* hpf status for an error the server reported, by its SQLSTATE class. */
static int sqlstate_status(const char *state)
{
    if (!state || strlen(state) != 5)
        return HPF_ERR_IO;
    if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2) || !strncmp(state, "57P", 3))
        return HPF_ERR_UNAVAILABLE; /* connection, resources, shutting down */
    if (!strcmp(state, "23505"))
        return HPF_ERR_EXISTS;
    if (!strncmp(state, "22", 2))
        return HPF_ERR_INVALID; /* data exception: a value too long for a column, ... */
    return HPF_ERR_IO;
}

/* Wait until the socket is ready for `events` or the deadline passes. */
static bool wait_socket(PGconn *c, short events, int64_t deadline)
{
    for (;;) {
        int64_t left_ms = (deadline - g_get_monotonic_time()) / 1000;
        if (left_ms <= 0)
            return false;
        struct pollfd p = {.fd = PQsocket(c), .events = events};
        int rc = poll(&p, 1, (int)MIN(left_ms, 60000));
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
    }
}

/* Everything the server sends for one statement: its last result, or NULL with f set. */
static PGresult *collect(struct pstore *s, int64_t deadline, struct pg_fail *f)
{
    PGconn *c = s->conn;
    int flushed;
    while ((flushed = PQflush(c)) == 1) {
        if (!wait_socket(c, POLLIN | POLLOUT, deadline)) {
            set_fail(f, HPF_ERR_UNAVAILABLE, "could not send within %d ms", s->timeout_ms);
            pg_disconnect(s);
            return NULL;
        }
        if (!PQconsumeInput(c))
            break;
    }
    PGresult *keep = NULL;
    bool failed = flushed != 0;
    while (!failed) {
        while (PQisBusy(c)) {
            if (!wait_socket(c, POLLIN, deadline)) {
                set_fail(f, HPF_ERR_UNAVAILABLE, "no answer within %d ms", s->timeout_ms);
                PQclear(keep);
                pg_disconnect(s);
                return NULL;
            }
            if (!PQconsumeInput(c)) {
                failed = true;
                break;
            }
        }
        if (failed)
            break;
        PGresult *r = PQgetResult(c);
        if (!r)
            break;
        /* The first error stands; later results of the statement are dropped. */
        if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR)
            PQclear(r);
        else {
            PQclear(keep);
            keep = r;
        }
    }
    if (failed || !keep) {
        PQclear(keep);
        set_fail(f, HPF_ERR_UNAVAILABLE, "%s", PQerrorMessage(c));
        f->closed = true;
        pg_disconnect(s);
        return NULL;
    }
    ExecStatusType st = PQresultStatus(keep);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return keep;
    const char *state = PQresultErrorField(keep, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(keep, PG_DIAG_MESSAGE_PRIMARY);
    set_fail(f, PQstatus(c) == CONNECTION_BAD ? HPF_ERR_UNAVAILABLE : sqlstate_status(state), "%s",
             primary ? primary : PQresultErrorMessage(keep));
    PQclear(keep);
    if (PQstatus(c) == CONNECTION_BAD) {
        f->closed = true;
        pg_disconnect(s);
    }
    return NULL;
}

static PGresult *send_once(struct pstore *s, const char *sql, int n, const char *const *params,
                           struct pg_fail *f)
{
    int64_t deadline = g_get_monotonic_time() + (int64_t)s->timeout_ms * 1000;
    if (!PQsendQueryParams(s->conn, sql, n, NULL, params, NULL, NULL, 0)) {
        set_fail(f, HPF_ERR_UNAVAILABLE, "%s", PQerrorMessage(s->conn));
        f->closed = true;
        pg_disconnect(s);
        return NULL;
    }
    return collect(s, deadline, f);
}

PGresult *pg_query(struct pstore *s, const char *sql, int n, const char *const *params,
                   struct pg_fail *f)
{
    if (!s->conn && s->in_txn) {
        set_fail(f, HPF_ERR_UNAVAILABLE, "the connection was lost in a transaction");
        return NULL;
    }
    bool had = s->conn != NULL;
    if (!pg_connect(s, f))
        return NULL;
    PGresult *r = send_once(s, sql, n, params, f);
    /*
     * An idle connection the server closed since (a restart): one fresh try.
     * Not after a timeout: the caller is owed an answer within timeout_ms.
     */
    if (!r && had && f->closed && !s->conn && !s->in_txn) {
        s->next_connect_us = 0;
        if (pg_connect(s, f))
            r = send_once(s, sql, n, params, f);
    }
    return r;
}

bool pg_run(struct pstore *s, const char *sql, int n, const char *const *params, struct pg_fail *f)
{
    PGresult *r = pg_query(s, sql, n, params, f);
    PQclear(r);
    return r != NULL;
}

bool pg_begin(struct pstore *s, const char *mode, struct pg_fail *f)
{
    char *sql = g_strdup_printf("BEGIN%s%s", mode ? " " : "", mode ? mode : "");
    bool ok = pg_run(s, sql, 0, NULL, f);
    g_free(sql);
    s->in_txn = ok;
    return ok;
}

bool pg_commit(struct pstore *s, struct pg_fail *f)
{
    bool ok = pg_run(s, "COMMIT", 0, NULL, f);
    s->in_txn = false;
    return ok;
}

void pg_rollback(struct pstore *s)
{
    if (s->in_txn && s->conn) {
        struct pg_fail ignored;
        s->in_txn = false;
        pg_run(s, "ROLLBACK", 0, NULL, &ignored);
    }
    s->in_txn = false;
}
