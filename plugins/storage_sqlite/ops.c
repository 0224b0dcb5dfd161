/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_sqlite read operations and counters.
 *
 * Every statement is reset as soon as its rows are read: in autocommit mode
 * a statement left mid-result keeps the connection's read transaction open,
 * and the connection would keep seeing the data of that moment.
 */
#include "sqlite_store.h"
#include "../common/mutation_check.h"

#include <string.h>

/*
 * The broker calls these on a timer and per AUTH: an outage would log the
 * same line every time.  Complain when it starts, and once when it ends.
 */
static void trouble(struct store *s, enum sq_health which, const char *what)
{
    if (s->failing[which])
        return;
    s->failing[which] = true;
    SQ_LOG(s, HPF_LOG_ERR, "%s: %s failed: %s (not repeated until it works again)", s->path, what,
           sqlite3_errmsg(s->db));
}

static void healthy(struct store *s, enum sq_health which)
{
    if (!s->failing[which])
        return;
    s->failing[which] = false;
    SQ_LOG(s, HPF_LOG_NOTICE, "%s: %s work again", s->path,
           which == SQ_COUNTERS ? "counter updates" : "reads");
}

#define AUTHKEY_COLUMNS "owner, ident, secret, pubchans, subchans"

/* authkeys, then hpfeeds3's auth_keys (schema.c), under authkeys' column names. */
#define BOTH_TABLES                                                              \
    "(SELECT 0 AS src, rowid AS r, " AUTHKEY_COLUMNS " FROM authkeys UNION ALL " \
    "SELECT 1, rowid, identifier, identifier, secret, publish, subscribe FROM auth_keys)"

/*
 * Hands the authkey in the current row of st (AUTHKEY_COLUMNS) to cb.  The
 * view points into the row and into local lists: valid during cb only.
 */
static void emit_authkey(struct store *s, sqlite3_stmt *st, hpf_authkey_cb cb, void *ud)
{
    const char *owner = (const char *)sqlite3_column_text(st, 0);
    const char *ident = (const char *)sqlite3_column_text(st, 1);
    const char *secret = (const char *)sqlite3_column_text(st, 2);
    GPtrArray *pub = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *sub = g_ptr_array_new_with_free_func(g_free);
    sq_parse_channels(s, ident, "pubchans", (const char *)sqlite3_column_text(st, 3), pub);
    sq_parse_channels(s, ident, "subchans", (const char *)sqlite3_column_text(st, 4), sub);

    struct hpf_authkey key = {
        .ident = ident,
        .owner = mut_key_owner(owner, ident),
        .secret = secret,
        .publish = (const char *const *)pub->pdata,
        .n_publish = pub->len,
        .subscribe = (const char *const *)sub->pdata,
        .n_subscribe = sub->len,
    };
    cb(ud, &key);
    g_ptr_array_unref(pub);
    g_ptr_array_unref(sub);
}

int sq_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data)
{
    struct store *s = instance;
    if (!ident || !cb)
        return HPF_ERR_INVALID;
    /* The first row wins when an hpfeeds3-era file repeats an ident. */
    sqlite3_stmt *st = sq_stmt(s, s->auth_keys ? "SELECT " AUTHKEY_COLUMNS " FROM " BOTH_TABLES
                                                 " WHERE ident = ?1 ORDER BY src, r LIMIT 1"
                                               : "SELECT " AUTHKEY_COLUMNS " FROM authkeys "
                                                 "WHERE ident = ?1 ORDER BY rowid LIMIT 1");
    if (!st) {
        trouble(s, SQ_READS, "authkey lookup");
        return HPF_ERR_IO;
    }
    sqlite3_bind_text(st, 1, ident, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int status;
    if (rc == SQLITE_ROW) {
        emit_authkey(s, st, cb, user_data);
        status = HPF_OK;
    } else if (rc == SQLITE_DONE) {
        status = HPF_ERR_NOTFOUND;
    } else {
        trouble(s, SQ_READS, "authkey lookup");
        status = sq_status(rc);
    }
    sqlite3_reset(st);
    if (status == HPF_OK || status == HPF_ERR_NOTFOUND)
        healthy(s, SQ_READS);
    return status;
}

int sq_version(void *instance, uint64_t *version)
{
    struct store *s = instance;
    sqlite3_stmt *st = sq_stmt(s, "SELECT value FROM hpf_meta WHERE key = 'data_version'");
    if (!st) {
        trouble(s, SQ_READS, "reading data_version");
        return HPF_ERR_IO;
    }
    int rc = sqlite3_step(st);
    int status = HPF_OK;
    if (rc == SQLITE_ROW) {
        *version = (uint64_t)sqlite3_column_int64(st, 0);
    } else if (rc == SQLITE_DONE) {
        /* Someone deleted it; not SQLite's error, so say it here. */
        if (!s->failing[SQ_READS])
            SQ_LOG(s, HPF_LOG_ERR, "%s: hpf_meta has no data_version", s->path);
        s->failing[SQ_READS] = true;
        status = HPF_ERR_IO;
    } else {
        trouble(s, SQ_READS, "reading data_version");
        status = sq_status(rc);
    }
    sqlite3_reset(st);
    if (status == HPF_OK)
        healthy(s, SQ_READS);
    return status;
}

/* Steps st to its end; SQLITE_DONE on success. */
#define EACH_ROW(st, rc) while (((rc) = sqlite3_step(st)) == SQLITE_ROW)

#define TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))

static int visit_users(struct store *s, const struct hpf_snapshot_visitor *v, void *ud)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT name, admin, password FROM hpf_users ORDER BY name");
    if (!st)
        return sqlite3_errcode(s->db);
    int rc;
    EACH_ROW(st, rc)
    {
        v->user(ud, TEXT(st, 0), sqlite3_column_int(st, 1) != 0);
        if (v->user_password && sqlite3_column_type(st, 2) == SQLITE_TEXT)
            v->user_password(ud, TEXT(st, 0), TEXT(st, 2));
    }
    sqlite3_reset(st);
    return rc;
}

static int visit_groups(struct store *s, const struct hpf_snapshot_visitor *v, void *ud)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT name, owner FROM hpf_groups ORDER BY name");
    if (!st)
        return sqlite3_errcode(s->db);
    int rc;
    EACH_ROW(st, rc)
    v->group(ud, TEXT(st, 0), TEXT(st, 1));
    sqlite3_reset(st);
    return rc;
}

static int visit_members(struct store *s, const struct hpf_snapshot_visitor *v, void *ud)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT group_name, user_name FROM hpf_members "
                                  "ORDER BY group_name, user_name");
    if (!st)
        return sqlite3_errcode(s->db);
    int rc;
    EACH_ROW(st, rc)
    v->member(ud, TEXT(st, 0), TEXT(st, 1));
    sqlite3_reset(st);
    return rc;
}

static int visit_shares(struct store *s, const struct hpf_snapshot_visitor *v, void *ud)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT from_user, to_name, to_is_group, channel, type "
                                  "FROM hpf_shares ORDER BY id");
    if (!st)
        return sqlite3_errcode(s->db);
    int rc;
    EACH_ROW(st, rc)
    {
        int type = hpf_share_type_from_name(TEXT(st, 4));
        if (type < 0) /* the schema's CHECK admits only the two names */
            type = HPF_SHARE_SHARES;
        v->share(ud, TEXT(st, 0), TEXT(st, 1), sqlite3_column_int(st, 2) != 0, TEXT(st, 3), type);
    }
    sqlite3_reset(st);
    return rc;
}

static int visit_accepts(struct store *s, const struct hpf_snapshot_visitor *v, void *ud)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT user_name, from_user, channel FROM hpf_accepts "
                                  "ORDER BY id");
    if (!st)
        return sqlite3_errcode(s->db);
    int rc;
    EACH_ROW(st, rc)
    v->accept(ud, TEXT(st, 0), TEXT(st, 1), TEXT(st, 2));
    sqlite3_reset(st);
    return rc;
}

static int visit_declines(struct store *s, const struct hpf_snapshot_visitor *v, void *ud)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT user_name, from_user, channel FROM hpf_declines "
                                  "ORDER BY id");
    if (!st)
        return sqlite3_errcode(s->db);
    int rc;
    EACH_ROW(st, rc)
    v->decline(ud, TEXT(st, 0), TEXT(st, 1), TEXT(st, 2));
    sqlite3_reset(st);
    return rc;
}

static int visit_authkeys(struct store *s, const struct hpf_snapshot_visitor *v, void *ud)
{
    sqlite3_stmt *st = sq_stmt(s, s->auth_keys ? "SELECT " AUTHKEY_COLUMNS " FROM " BOTH_TABLES
                                                 " WHERE ident IS NOT NULL ORDER BY src, r"
                                               : "SELECT " AUTHKEY_COLUMNS " FROM authkeys "
                                                 "WHERE ident IS NOT NULL ORDER BY rowid");
    if (!st)
        return sqlite3_errcode(s->db);
    /* Same rule as authkey_get: the first row of a repeated ident. */
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int rc;
    EACH_ROW(st, rc)
    {
        const char *ident = TEXT(st, 1);
        if (!g_hash_table_add(seen, g_strdup(ident)))
            continue;
        emit_authkey(s, st, v->authkey, ud);
    }
    sqlite3_reset(st);
    g_hash_table_destroy(seen);
    return rc;
}

int sq_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data)
{
    struct store *s = instance;
    if (!visitor)
        return HPF_ERR_INVALID;

    /* A deferred transaction: its first SELECT pins one WAL snapshot. */
    int rc = sq_exec(s, "BEGIN");
    if (rc != SQLITE_OK) {
        trouble(s, SQ_READS, "snapshot");
        return sq_status(rc);
    }
    static int (*const visits[])(struct store *, const struct hpf_snapshot_visitor *, void *) = {
        visit_users,   visit_groups,   visit_members, visit_shares,
        visit_accepts, visit_authkeys, visit_declines};
    const bool wanted[] = {visitor->user,   visitor->group,   visitor->member, visitor->share,
                           visitor->accept, visitor->authkey, visitor->decline};
    G_STATIC_ASSERT(G_N_ELEMENTS(visits) == G_N_ELEMENTS(wanted));
    for (size_t i = 0; i < G_N_ELEMENTS(visits); i++) {
        if (!wanted[i])
            continue;
        rc = visits[i](s, visitor, user_data);
        if (rc != SQLITE_DONE) {
            trouble(s, SQ_READS, "snapshot");
            sq_rollback(s);
            return sq_status(rc);
        }
    }
    /* Nothing was written: ending the read transaction cannot lose data. */
    rc = sq_exec(s, "COMMIT");
    if (rc != SQLITE_OK) {
        trouble(s, SQ_READS, "snapshot");
        sq_rollback(s);
        return sq_status(rc);
    }
    healthy(s, SQ_READS);
    return HPF_OK;
}

static sqlite3_int64 as_sql_int(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

int sq_counters_add(void *instance, const struct hpf_counters *deltas, size_t n)
{
    struct store *s = instance;
    if (n == 0)
        return HPF_OK;
    if (!deltas)
        return HPF_ERR_INVALID;
    int rc = sq_exec(s, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        trouble(s, SQ_COUNTERS, "counter update");
        return sq_status(rc);
    }
    int status = HPF_OK;
    for (size_t i = 0; i < n; i++) {
        if (!deltas[i].ident) {
            status = HPF_ERR_INVALID;
            break;
        }
        sqlite3_stmt *st =
            sq_stmt(s, "INSERT INTO hpf_counters (ident, published_msgs, published_bytes, "
                       "received_msgs, received_bytes) VALUES (?1, ?2, ?3, ?4, ?5) "
                       "ON CONFLICT (ident) DO UPDATE SET "
                       "published_msgs = published_msgs + excluded.published_msgs, "
                       "published_bytes = published_bytes + excluded.published_bytes, "
                       "received_msgs = received_msgs + excluded.received_msgs, "
                       "received_bytes = received_bytes + excluded.received_bytes");
        if (!st) {
            trouble(s, SQ_COUNTERS, "counter update");
            status = HPF_ERR_IO;
            break;
        }
        sqlite3_bind_text(st, 1, deltas[i].ident, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, as_sql_int(deltas[i].published_msgs));
        sqlite3_bind_int64(st, 3, as_sql_int(deltas[i].published_bytes));
        sqlite3_bind_int64(st, 4, as_sql_int(deltas[i].received_msgs));
        sqlite3_bind_int64(st, 5, as_sql_int(deltas[i].received_bytes));
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            trouble(s, SQ_COUNTERS, "counter update");
            status = sq_status(rc);
            break;
        }
    }
    if (status == HPF_OK && (rc = sq_exec(s, "COMMIT")) != SQLITE_OK) {
        trouble(s, SQ_COUNTERS, "counter update");
        status = sq_status(rc);
    }
    if (status != HPF_OK)
        sq_rollback(s);
    else
        healthy(s, SQ_COUNTERS);
    return status;
}

int sq_counters_get(void *instance, const char *ident, struct hpf_counters *out)
{
    struct store *s = instance;
    if (!ident || !out)
        return HPF_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    out->ident = ident;
    sqlite3_stmt *st = sq_stmt(s, "SELECT published_msgs, published_bytes, received_msgs, "
                                  "received_bytes FROM hpf_counters WHERE ident = ?1");
    if (!st) {
        trouble(s, SQ_READS, "reading counters");
        return HPF_ERR_IO;
    }
    sqlite3_bind_text(st, 1, ident, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int status = HPF_OK;
    if (rc == SQLITE_ROW) {
        out->published_msgs = (uint64_t)sqlite3_column_int64(st, 0);
        out->published_bytes = (uint64_t)sqlite3_column_int64(st, 1);
        out->received_msgs = (uint64_t)sqlite3_column_int64(st, 2);
        out->received_bytes = (uint64_t)sqlite3_column_int64(st, 3);
    } else if (rc != SQLITE_DONE) {
        trouble(s, SQ_READS, "reading counters");
        status = sq_status(rc);
    }
    sqlite3_reset(st);
    if (status == HPF_OK)
        healthy(s, SQ_READS);
    return status;
}
