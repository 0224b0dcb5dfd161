/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_sqlite apply(): a batch of mutations in one IMMEDIATE transaction.
 *
 * The first failing mutation rolls the whole batch back and names what was
 * wrong.  References are checked against rows, not against what the broker
 * infers: a group owner, member, share end, acceptance party or authkey
 * owner must have an hpf_users row, even though authkey owners without one
 * count as users elsewhere.  What needs no row (required fields, share
 * type, an authkey's secret and channels) is mut_check()'s, shared with the
 * other storage backends, and runs just before each mutation's own checks.
 */
#include "sqlite_store.h"
#include "../common/crash_point.h"
#include "../common/mutation_check.h"

#include <stdarg.h>
#include <stdio.h>

struct batch {
    struct store *s;
    char *err;
    size_t err_len;
    const char *op; /* name of the mutation being applied, for SQL errors */
};

static int fail(struct batch *b, int status, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int fail(struct batch *b, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hpf_set_errorv(b->err, b->err_len, status, fmt, ap);
    va_end(ap);
    return status;
}

/* Not logged here: the caller (hpfriendsctl, the web console) reports err. */
static int sql_fail(struct batch *b)
{
    return fail(b, HPF_ERR_IO, "%s: %s", b->op, sqlite3_errmsg(b->s->db));
}

/*
 * Prepares sql and binds the variadic arguments described by types, one
 * letter each: 't' a const char *, 'i' an int.
 */
static sqlite3_stmt *prepare(struct batch *b, const char *sql, const char *types, va_list ap)
{
    sqlite3_stmt *st = sq_stmt(b->s, sql);
    if (!st)
        return NULL;
    for (int i = 0; types[i]; i++) {
        int rc;
        if (types[i] == 't')
            rc = sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int));
        if (rc != SQLITE_OK)
            return NULL;
    }
    return st;
}

/* Runs a write; HPF_OK, or HPF_ERR_IO with err set.  *changes gets the rows it touched. */
static int run(struct batch *b, int *changes, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = prepare(b, sql, types, ap);
    va_end(ap);
    if (!st)
        return sql_fail(b);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sql_fail(b);
    if (changes)
        *changes = sqlite3_changes(b->s->db);
    return HPF_OK;
}

/* 1 when the query yields a row, 0 when not, -1 on error (err set). */
static int exists(struct batch *b, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = prepare(b, sql, types, ap);
    va_end(ap);
    if (!st) {
        sql_fail(b);
        return -1;
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    sql_fail(b);
    return -1;
}

/* HPF_OK when user has a row; HPF_ERR_NOTFOUND naming it; HPF_ERR_IO. */
static int require_user(struct batch *b, const char *user)
{
    switch (exists(b, "SELECT 1 FROM hpf_users WHERE name = ?1", "t", user)) {
    case 1:
        return HPF_OK;
    case 0:
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' not found", user);
    default:
        return HPF_ERR_IO;
    }
}

static int require_group(struct batch *b, const char *group)
{
    switch (exists(b, "SELECT 1 FROM hpf_groups WHERE name = ?1", "t", group)) {
    case 1:
        return HPF_OK;
    case 0:
        return fail(b, HPF_ERR_NOTFOUND, "group '%s' not found", group);
    default:
        return HPF_ERR_IO;
    }
}

#define CHECK(expr)                  \
    do {                             \
        int check_status_ = (expr);  \
        if (check_status_ != HPF_OK) \
            return check_status_;    \
    } while (0)

static int user_add(struct batch *b, const struct hpf_mutation *m)
{
    switch (exists(b, "SELECT 1 FROM hpf_users WHERE name = ?1", "t", m->user)) {
    case 0:
        break;
    case 1:
        return fail(b, HPF_ERR_EXISTS, "user '%s' already exists", m->user);
    default:
        return HPF_ERR_IO;
    }
    return run(b, NULL, "INSERT INTO hpf_users (name) VALUES (?1)", "t", m->user);
}

static int user_del(struct batch *b, const struct hpf_mutation *m)
{
    CHECK(require_user(b, m->user));
    /* The groups it owns go, and with them what only made sense for them. */
    CHECK(run(b, NULL,
              "DELETE FROM hpf_members WHERE group_name IN "
              "(SELECT name FROM hpf_groups WHERE owner = ?1)",
              "t", m->user));
    CHECK(run(b, NULL,
              "DELETE FROM hpf_shares WHERE to_is_group = 1 AND to_name IN "
              "(SELECT name FROM hpf_groups WHERE owner = ?1)",
              "t", m->user));
    CHECK(run(b, NULL, "DELETE FROM hpf_groups WHERE owner = ?1", "t", m->user));
    CHECK(run(b, NULL, "DELETE FROM hpf_members WHERE user_name = ?1", "t", m->user));
    CHECK(run(b, NULL,
              "DELETE FROM hpf_shares WHERE from_user = ?1 OR "
              "(to_is_group = 0 AND to_name = ?1)",
              "t", m->user));
    CHECK(run(b, NULL, "DELETE FROM hpf_accepts WHERE user_name = ?1 OR from_user = ?1", "t",
              m->user));
    CHECK(run(b, NULL, "DELETE FROM hpf_declines WHERE user_name = ?1 OR from_user = ?1", "t",
              m->user));
    /* Same owner rule as the readers: no owner means the ident is the owner. */
    CHECK(run(b, NULL,
              "DELETE FROM authkeys WHERE owner = ?1 OR "
              "((owner IS NULL OR owner = '') AND ident = ?1)",
              "t", m->user));
    return run(b, NULL, "DELETE FROM hpf_users WHERE name = ?1", "t", m->user);
}

static int user_set_admin(struct batch *b, const struct hpf_mutation *m)
{
    int changes = 0;
    CHECK(run(b, &changes, "UPDATE hpf_users SET admin = ?2 WHERE name = ?1", "ti", m->user,
              m->flag ? 1 : 0));
    if (changes == 0)
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' not found", m->user);
    return HPF_OK;
}

static int user_set_password(struct batch *b, const struct hpf_mutation *m)
{
    int changes = 0;
    if (m->password)
        CHECK(run(b, &changes, "UPDATE hpf_users SET password = ?2 WHERE name = ?1", "tt", m->user,
                  m->password));
    else
        CHECK(
            run(b, &changes, "UPDATE hpf_users SET password = NULL WHERE name = ?1", "t", m->user));
    if (changes == 0)
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' not found", m->user);
    return HPF_OK;
}

static int group_add(struct batch *b, const struct hpf_mutation *m)
{
    switch (exists(b, "SELECT 1 FROM hpf_groups WHERE name = ?1", "t", m->group)) {
    case 0:
        break;
    case 1:
        return fail(b, HPF_ERR_EXISTS, "group '%s' already exists", m->group);
    default:
        return HPF_ERR_IO;
    }
    CHECK(require_user(b, m->user));
    return run(b, NULL, "INSERT INTO hpf_groups (name, owner) VALUES (?1, ?2)", "tt", m->group,
               m->user);
}

static int group_del(struct batch *b, const struct hpf_mutation *m)
{
    CHECK(require_group(b, m->group));
    CHECK(run(b, NULL, "DELETE FROM hpf_members WHERE group_name = ?1", "t", m->group));
    CHECK(run(b, NULL, "DELETE FROM hpf_shares WHERE to_is_group = 1 AND to_name = ?1", "t",
              m->group));
    return run(b, NULL, "DELETE FROM hpf_groups WHERE name = ?1", "t", m->group);
}

static int member_add(struct batch *b, const struct hpf_mutation *m)
{
    CHECK(require_group(b, m->group));
    CHECK(require_user(b, m->user));
    switch (exists(b, "SELECT 1 FROM hpf_members WHERE group_name = ?1 AND user_name = ?2", "tt",
                   m->group, m->user)) {
    case 0:
        break;
    case 1:
        return fail(b, HPF_ERR_EXISTS, "user '%s' is already a member of group '%s'", m->user,
                    m->group);
    default:
        return HPF_ERR_IO;
    }
    return run(b, NULL, "INSERT INTO hpf_members (group_name, user_name) VALUES (?1, ?2)", "tt",
               m->group, m->user);
}

static int member_del(struct batch *b, const struct hpf_mutation *m)
{
    int changes = 0;
    CHECK(run(b, &changes, "DELETE FROM hpf_members WHERE group_name = ?1 AND user_name = ?2", "tt",
              m->group, m->user));
    if (changes == 0)
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' is not a member of group '%s'", m->user,
                    m->group);
    return HPF_OK;
}

static const char *target_kind(const struct hpf_mutation *m)
{
    return m->target_is_group ? "group" : "user";
}

static int share_add(struct batch *b, const struct hpf_mutation *m)
{
    CHECK(require_user(b, m->user));
    CHECK(m->target_is_group ? require_group(b, m->target) : require_user(b, m->target));
    /* An existing edge keeps its row and takes the new type. */
    return run(b, NULL,
               "INSERT INTO hpf_shares (from_user, to_name, to_is_group, channel, type) "
               "VALUES (?1, ?2, ?3, ?4, ?5) "
               "ON CONFLICT (from_user, to_name, to_is_group, channel) "
               "DO UPDATE SET type = excluded.type WHERE type <> excluded.type",
               "ttitt", m->user, m->target, m->target_is_group ? 1 : 0, m->channel,
               hpf_share_type_name(m->share_type));
}

static int share_del(struct batch *b, const struct hpf_mutation *m)
{
    int changes = 0;
    CHECK(run(b, &changes,
              "DELETE FROM hpf_shares WHERE from_user = ?1 AND to_name = ?2 "
              "AND to_is_group = ?3 AND channel = ?4",
              "ttit", m->user, m->target, m->target_is_group ? 1 : 0, m->channel));
    if (changes == 0)
        return fail(b, HPF_ERR_NOTFOUND, "no share from '%s' to %s '%s' on '%s'", m->user,
                    target_kind(m), m->target, m->channel);
    return HPF_OK;
}

static int accept_add(struct batch *b, const struct hpf_mutation *m)
{
    CHECK(require_user(b, m->user));
    CHECK(require_user(b, m->target));
    switch (exists(b,
                   "SELECT 1 FROM hpf_accepts WHERE user_name = ?1 AND from_user = ?2 "
                   "AND channel = ?3",
                   "ttt", m->user, m->target, m->channel)) {
    case 0:
        break;
    case 1:
        return fail(b, HPF_ERR_EXISTS, "user '%s' already accepted '%s' on '%s'", m->user,
                    m->target, m->channel);
    default:
        return HPF_ERR_IO;
    }
    /* An acceptance replaces a decline of the same offer. */
    CHECK(run(b, NULL,
              "DELETE FROM hpf_declines WHERE user_name = ?1 AND from_user = ?2 AND channel = ?3",
              "ttt", m->user, m->target, m->channel));
    return run(b, NULL,
               "INSERT INTO hpf_accepts (user_name, from_user, channel) VALUES (?1, ?2, ?3)", "ttt",
               m->user, m->target, m->channel);
}

static int accept_del(struct batch *b, const struct hpf_mutation *m)
{
    int changes = 0;
    CHECK(run(b, &changes,
              "DELETE FROM hpf_accepts WHERE user_name = ?1 AND from_user = ?2 "
              "AND channel = ?3",
              "ttt", m->user, m->target, m->channel));
    if (changes == 0)
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' has not accepted '%s' on '%s'", m->user,
                    m->target, m->channel);
    return HPF_OK;
}

static int decline_add(struct batch *b, const struct hpf_mutation *m)
{
    CHECK(require_user(b, m->user));
    CHECK(require_user(b, m->target));
    switch (exists(b,
                   "SELECT 1 FROM hpf_declines WHERE user_name = ?1 AND from_user = ?2 "
                   "AND channel = ?3",
                   "ttt", m->user, m->target, m->channel)) {
    case 0:
        break;
    case 1:
        return fail(b, HPF_ERR_EXISTS, "user '%s' already declined '%s' on '%s'", m->user,
                    m->target, m->channel);
    default:
        return HPF_ERR_IO;
    }
    /* A decline replaces an acceptance of the same offer. */
    CHECK(run(b, NULL,
              "DELETE FROM hpf_accepts WHERE user_name = ?1 AND from_user = ?2 AND channel = ?3",
              "ttt", m->user, m->target, m->channel));
    return run(b, NULL,
               "INSERT INTO hpf_declines (user_name, from_user, channel) VALUES (?1, ?2, ?3)",
               "ttt", m->user, m->target, m->channel);
}

static int decline_del(struct batch *b, const struct hpf_mutation *m)
{
    int changes = 0;
    CHECK(run(b, &changes,
              "DELETE FROM hpf_declines WHERE user_name = ?1 AND from_user = ?2 "
              "AND channel = ?3",
              "ttt", m->user, m->target, m->channel));
    if (changes == 0)
        return fail(b, HPF_ERR_NOTFOUND, "user '%s' has not declined '%s' on '%s'", m->user,
                    m->target, m->channel);
    return HPF_OK;
}

/*
 * A key of hpfeeds3's auth_keys table (schema.c) is read, never written: a
 * key added or set with its ident goes to authkeys (and comes first), but
 * one only in auth_keys cannot be deleted here.
 */
static int not_auth_keys(struct batch *b, const char *ident)
{
    if (!b->s->auth_keys)
        return HPF_OK;
    switch (exists(b, "SELECT 1 FROM auth_keys WHERE identifier = ?1", "t", ident)) {
    case 0:
        return HPF_OK;
    case 1:
        return fail(b, HPF_ERR_UNSUPPORTED,
                    "authkey '%s' is in hpfeeds3's auth_keys table, which is read-only here "
                    "(change it with SQL)",
                    ident);
    default:
        return HPF_ERR_IO;
    }
}

static int authkey_add(struct batch *b, const struct hpf_mutation *m)
{
    const struct hpf_authkey *k = m->authkey;
    const char *owner = mut_key_owner(k->owner, k->ident);
    CHECK(require_user(b, owner));

    switch (exists(b, "SELECT 1 FROM authkeys WHERE ident = ?1", "t", k->ident)) {
    case 0:
        break;
    case 1:
        if (!m->replace)
            return fail(b, HPF_ERR_EXISTS, "authkey '%s' already exists", k->ident);
        /* Also drops the repeats an hpfeeds3-era file may hold. */
        CHECK(run(b, NULL, "DELETE FROM authkeys WHERE ident = ?1", "t", k->ident));
        break;
    default:
        return HPF_ERR_IO;
    }

    char *pub = sq_format_channels(k->publish, k->n_publish);
    char *sub = sq_format_channels(k->subscribe, k->n_subscribe);
    int status = run(b, NULL,
                     "INSERT INTO authkeys (owner, ident, secret, pubchans, subchans) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)",
                     "ttttt", owner, k->ident, k->secret, pub, sub);
    g_free(pub);
    g_free(sub);
    return status;
}

static int authkey_del(struct batch *b, const struct hpf_mutation *m)
{
    const char *ident = m->authkey->ident;
    int changes = 0;
    CHECK(run(b, &changes, "DELETE FROM authkeys WHERE ident = ?1", "t", ident));
    if (changes == 0)
        CHECK(not_auth_keys(b, ident));
    if (changes == 0)
        return fail(b, HPF_ERR_NOTFOUND, "authkey '%s' not found", ident);
    return HPF_OK;
}

/* Graph and authkeys; counters and hpfeeds3's logs/stats are not data to import. */
static int clear_all(struct batch *b, const struct hpf_mutation *m)
{
    (void)m;
    static const char *const sql[] = {
        "DELETE FROM hpf_accepts", "DELETE FROM hpf_declines", "DELETE FROM hpf_shares",
        "DELETE FROM hpf_members", "DELETE FROM hpf_groups",   "DELETE FROM hpf_users",
        "DELETE FROM authkeys",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(sql); i++)
        CHECK(run(b, NULL, sql[i], ""));
    return HPF_OK;
}

static int audit_add(struct batch *b, const struct hpf_mutation *m)
{
    return sq_audit_insert(b->s, m) == HPF_OK ? HPF_OK : sql_fail(b);
}

/* By op; mut_check() has vouched for the op before one is called. */
static int (*const op_fn[MUT_OP_COUNT])(struct batch *, const struct hpf_mutation *) = {
    [HPF_MUT_USER_ADD] = user_add,
    [HPF_MUT_USER_DEL] = user_del,
    [HPF_MUT_GROUP_ADD] = group_add,
    [HPF_MUT_GROUP_DEL] = group_del,
    [HPF_MUT_MEMBER_ADD] = member_add,
    [HPF_MUT_MEMBER_DEL] = member_del,
    [HPF_MUT_SHARE_ADD] = share_add,
    [HPF_MUT_SHARE_DEL] = share_del,
    [HPF_MUT_ACCEPT_ADD] = accept_add,
    [HPF_MUT_ACCEPT_DEL] = accept_del,
    [HPF_MUT_AUTHKEY_ADD] = authkey_add,
    [HPF_MUT_AUTHKEY_DEL] = authkey_del,
    [HPF_MUT_CLEAR] = clear_all,
    [HPF_MUT_USER_SET_ADMIN] = user_set_admin,
    [HPF_MUT_USER_SET_PASSWORD] = user_set_password,
    [HPF_MUT_DECLINE_ADD] = decline_add,
    [HPF_MUT_DECLINE_DEL] = decline_del,
    [HPF_MUT_AUDIT] = audit_add,
};

int sq_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len)
{
    struct store *s = instance;
    struct batch b = {.s = s, .err = err, .err_len = err_len, .op = "apply"};
    int status = mut_check_batch(mutations, n, err, err_len);
    if (status != HPF_OK)
        return status;

    /* IMMEDIATE: take the write lock up front (waiting up to busy_timeout)
     * rather than fail half-way when another process writes. */
    if (sq_exec(s, "BEGIN IMMEDIATE") != SQLITE_OK)
        return sql_fail(&b);

    for (size_t i = 0; i < n && status == HPF_OK; i++) {
        const struct hpf_mutation *m = &mutations[i];
        status = mut_check(m, err, err_len);
        if (status == HPF_OK) {
            b.op = mut_op_name(m->op);
            status = op_fn[m->op](&b, m);
        }
        /* Every known op passes the crash point, valid or not; an unknown one never did. */
        if (i == n / 2 && mut_op_name(m->op))
            hpf_crash_point("sqlite-apply-half");
    }
    /* Every successful apply moves the version, even one that changed no row. */
    if (status == HPF_OK) {
        b.op = "apply";
        status =
            run(&b, NULL, "UPDATE hpf_meta SET value = value + 1 WHERE key = 'data_version'", "");
    }
    if (status == HPF_OK)
        hpf_crash_point("sqlite-before-commit");
    if (status == HPF_OK && sq_exec(s, "COMMIT") != SQLITE_OK)
        status = sql_fail(&b);
    if (status != HPF_OK)
        sq_rollback(s);
    return status;
}
