/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql reads: the model, authkey lookups, the version,
 * snapshots and counters.
 *
 * auth_keys rows come from outside (hpfeeds3's operators write them by
 * hand), so none of their values is trusted: a row without an identifier
 * is skipped, a list that is not a JSON array of strings grants what can be
 * read of it, each logged once.  A key without a secret is kept in the
 * model (it exists for apply()) but never granted.  Our own tables are
 * typed and constrained by the schema, so their rows are taken as they are.
 */
#include "pg_store.h"
#include "../common/sql_channels.h"

#include <stdlib.h>
#include <string.h>

#define KEY_SELECT                                                                \
    "SELECT k.identifier, o.owner, k.secret, k.publish::text, k.subscribe::text " \
    "FROM auth_keys k LEFT JOIN hpf_key_owners o ON o.identifier = k.identifier "

/* A column's text, or NULL for SQL NULL. */
static const char *col(const PGresult *r, int row, int c)
{
    return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static GPtrArray *channels(struct pstore *s, const char *ident, const char *column,
                           const char *json)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    const char *why = sql_channels_parse(json, out);
    if (why) {
        char *what = g_strdup_printf("authkey '%s': %s: %s", ident, column, why);
        pg_warn_row(s, "auth_keys", what);
        g_free(what);
    }
    return out;
}

/* One row of KEY_SELECT; NULL when it has no identifier. */
static struct gm_key *parse_key(struct pstore *s, const PGresult *r, int row)
{
    const char *ident = col(r, row, 0);
    if (!ident || !*ident) {
        pg_warn_row(s, "auth_keys", "a row has no identifier");
        return NULL;
    }
    const char *owner = col(r, row, 1), *secret = col(r, row, 2);
    struct gm_key *k = g_new0(struct gm_key, 1);
    k->ident = g_strdup(ident);
    k->owner = g_strdup(owner && *owner ? owner : ident);
    if (secret) {
        k->secret = g_strdup(secret);
        k->usable = true;
        k->publish = channels(s, ident, "publish", col(r, row, 3));
        k->subscribe = channels(s, ident, "subscribe", col(r, row, 4));
    } else {
        char *what = g_strdup_printf("authkey '%s': secret is NULL", ident);
        pg_warn_row(s, "auth_keys", what);
        g_free(what);
        k->publish = g_ptr_array_new_with_free_func(g_free);
        k->subscribe = g_ptr_array_new_with_free_func(g_free);
    }
    return k;
}

static void free_key(struct gm_key *k)
{
    struct gm_model none = {0};
    gm_key_free(&none, k);
}

/* ---- the model ---- */

typedef void (*row_fn)(struct pstore *s, const PGresult *r, int row, struct gm_model *m);

static void load_user(struct pstore *s, const PGresult *r, int row, struct gm_model *m)
{
    (void)s;
    const char *name = col(r, row, 0), *password = col(r, row, 2);
    gm_add_user(m, name, !strcmp(PQgetvalue(r, row, 1), "t"));
    if (password)
        gm_set_password(m, name, password);
}

static void load_group(struct pstore *s, const PGresult *r, int row, struct gm_model *m)
{
    (void)s;
    gm_add_group(m, col(r, row, 0), col(r, row, 1));
}

static void load_member(struct pstore *s, const PGresult *r, int row, struct gm_model *m)
{
    (void)s;
    gm_add_member(m, col(r, row, 0), col(r, row, 1));
}

static void load_share(struct pstore *s, const PGresult *r, int row, struct gm_model *m)
{
    int type = hpf_share_type_from_name(col(r, row, 4));
    if (type < 0) {
        pg_warn_row(s, "hpf_shares", "a share's type is neither shares nor shares_all");
        return;
    }
    gm_add_share(m, col(r, row, 0), col(r, row, 1), !strcmp(PQgetvalue(r, row, 2), "t"),
                 col(r, row, 3), type);
}

static void load_accept(struct pstore *s, const PGresult *r, int row, struct gm_model *m)
{
    (void)s;
    gm_add_accept(m, col(r, row, 0), col(r, row, 1), col(r, row, 2));
}

static void load_decline(struct pstore *s, const PGresult *r, int row, struct gm_model *m)
{
    (void)s;
    gm_add_decline(m, col(r, row, 0), col(r, row, 1), col(r, row, 2));
}

static void load_key(struct pstore *s, const PGresult *r, int row, struct gm_model *m)
{
    struct gm_key *k = parse_key(s, r, row);
    if (k)
        gm_add_key(m, k); /* the first row of a repeated identifier wins */
}

static const struct {
    const char *sql;
    row_fn fn;
} parts[] = {
    {"SELECT name, admin, password FROM hpf_users ORDER BY name COLLATE \"C\"", load_user},
    {"SELECT name, owner FROM hpf_groups ORDER BY name COLLATE \"C\"", load_group},
    {"SELECT group_name, user_name FROM hpf_members "
     "ORDER BY group_name COLLATE \"C\", user_name COLLATE \"C\"",
     load_member},
    {"SELECT from_user, to_name, to_is_group, channel, type FROM hpf_shares "
     "ORDER BY from_user COLLATE \"C\", to_name COLLATE \"C\", to_is_group, channel COLLATE \"C\"",
     load_share},
    {"SELECT user_name, from_user, channel FROM hpf_accepts "
     "ORDER BY user_name COLLATE \"C\", from_user COLLATE \"C\", channel COLLATE \"C\"",
     load_accept},
    {"SELECT user_name, from_user, channel FROM hpf_declines "
     "ORDER BY user_name COLLATE \"C\", from_user COLLATE \"C\", channel COLLATE \"C\"",
     load_decline},
    {KEY_SELECT "ORDER BY k.id", load_key},
};

struct gm_model *pg_load_model(struct pstore *s, struct pg_fail *f)
{
    struct gm_model *m = gm_model_new(NULL, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
        PGresult *r = pg_query(s, parts[i].sql, 0, NULL, f);
        if (!r) {
            gm_model_free(m);
            return NULL;
        }
        int n = PQntuples(r);
        for (int row = 0; row < n; row++)
            parts[i].fn(s, r, row, m);
        PQclear(r);
    }
    return m;
}

/* ---- the version ---- */

/*
 * data_version, and a fingerprint of auth_keys, in one round trip.  Every
 * INSERT or UPDATE writes a row version stamped with its transaction's id
 * (xmin), and a DELETE lowers the count, so (count, sum of xmin) moves
 * whenever someone changed the table; it reads no column data (about 2 ms
 * for 10,000 rows, where a digest of the rows' text took 80 ms).  A vacuum
 * that rewrites the table may move it without a change: one reload more.
 */
static const char version_sql[] =
    "SELECT (SELECT value FROM hpf_meta WHERE key = 'data_version')::text || '/' || "
    "(SELECT count(*)::text || ':' || coalesce(sum(xmin::text::bigint), 0)::text "
    "FROM auth_keys)";

int pg_version(void *instance, uint64_t *version)
{
    struct pstore *s = instance;
    if (!version)
        return HPF_ERR_INVALID;
    struct pg_fail f;
    PGresult *r = pg_query(s, version_sql, 0, NULL, &f);
    if (!r)
        return pg_trouble(s, "reading the data version", &f);
    const char *state = PQntuples(r) == 1 ? col(r, 0, 0) : NULL;
    if (!state) {
        PQclear(r);
        f.status = HPF_ERR_IO;
        g_strlcpy(f.msg, "hpf_meta has no data_version", sizeof f.msg);
        return pg_trouble(s, "reading the data version", &f);
    }
    if (!s->have_seen || strcmp(state, s->seen_state) != 0) {
        s->version++;
        s->have_seen = true;
        g_free(s->seen_state);
        s->seen_state = g_strdup(state);
    }
    PQclear(r);
    pg_healthy(s);
    *version = s->version;
    return HPF_OK;
}

/* ---- lookups ---- */

int pg_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data)
{
    struct pstore *s = instance;
    if (!ident || !cb)
        return HPF_ERR_INVALID;
    struct pg_fail f;
    const char *params[] = {ident};
    PGresult *r =
        pg_query(s, KEY_SELECT "WHERE k.identifier = $1 ORDER BY k.id LIMIT 1", 1, params, &f);
    if (!r)
        return f.status == HPF_ERR_INVALID ? HPF_ERR_NOTFOUND /* not text the server takes */
                                           : pg_trouble(s, "authkey lookup", &f);
    pg_healthy(s);
    struct gm_key *k = PQntuples(r) > 0 ? parse_key(s, r, 0) : NULL;
    PQclear(r);
    int status = HPF_ERR_NOTFOUND;
    if (k && k->usable) {
        gm_emit_key(k, cb, user_data);
        status = HPF_OK;
    }
    if (k)
        free_key(k);
    return status;
}

/* Every table read in one REPEATABLE READ transaction: one point in time. */
int pg_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data)
{
    struct pstore *s = instance;
    if (!visitor)
        return HPF_ERR_INVALID;
    struct pg_fail f;
    if (!pg_begin(s, "ISOLATION LEVEL REPEATABLE READ READ ONLY", &f)) {
        pg_rollback(s);
        return pg_trouble(s, "snapshot", &f);
    }
    struct gm_model *m = pg_load_model(s, &f);
    if (!m) {
        pg_rollback(s);
        return pg_trouble(s, "snapshot", &f);
    }
    if (!pg_commit(s, &f)) {
        gm_model_free(m);
        return pg_trouble(s, "snapshot", &f);
    }
    pg_healthy(s);
    gm_visit(m, visitor, user_data);
    gm_model_free(m);
    return HPF_OK;
}

static uint64_t count_of(const PGresult *r, int c)
{
    const char *v = col(r, 0, c);
    long long n = v ? strtoll(v, NULL, 10) : 0;
    return n > 0 ? (uint64_t)n : 0;
}

int pg_counters_get(void *instance, const char *ident, struct hpf_counters *out)
{
    struct pstore *s = instance;
    if (!ident || !out)
        return HPF_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->ident = ident;
    struct pg_fail f;
    const char *params[] = {ident};
    PGresult *r = pg_query(s,
                           "SELECT published_msgs, published_bytes, received_msgs, "
                           "received_bytes FROM hpf_counters WHERE ident = $1",
                           1, params, &f);
    if (!r)
        return pg_trouble(s, "reading counters", &f);
    if (PQntuples(r) == 1) {
        out->published_msgs = count_of(r, 0);
        out->published_bytes = count_of(r, 1);
        out->received_msgs = count_of(r, 2);
        out->received_bytes = count_of(r, 3);
    }
    PQclear(r);
    pg_healthy(s);
    return HPF_OK;
}
