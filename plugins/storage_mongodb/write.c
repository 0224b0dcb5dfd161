/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mongodb writes: apply(), counters, indexes.
 *
 * apply() reads everything afresh, runs the whole batch against that copy
 * in memory (model.c: storage_sqlite's rules and messages), and only when
 * every mutation passed writes the difference between before and after.
 * A batch that fails validation writes nothing at all, on any server.
 *
 * What MongoDB makes atomic: one document.  Multi-document transactions
 * need a replica set or a mongos.  transactions = auto (the default) uses
 * one when the server is a replica-set primary or a mongos: then the fresh
 * read, the writes and the data_version bump commit together or not at all
 * (write conflicts are retried a few times).  On a standalone
 * server (and with transactions = never) the writes are ordered deletes
 * then inserts, bracketed by two bumps of data_version: the first also sets
 * busy = true, the second clears it.  Readers (snapshot) retry while busy
 * or while the version moves under them, so they never take a half-written
 * batch for a finished one; but a crash or an outage in the middle leaves
 * the batch half applied (apply() then says how many writes were made),
 * and two concurrent writers can both pass validation.  transactions =
 * always forces a transaction (CongoDB accepts them without isolation,
 * which the tests use to exercise this path).
 */
#include "mongo_store.h"
#include "../common/mutation_check.h"

#include <string.h>

#define PARTIAL_NOTE "(no transaction: the batch is partly applied)"

enum wop_kind { W_INSERT, W_DELETE, W_UPDATE };

struct wop {
    enum wop_kind kind;
    enum ms_coll coll;
    bson_t *filter; /* delete, update */
    bson_t *doc;    /* insert: the document; update: the update */
};

static void wop_free(gpointer p)
{
    struct wop *w = p;
    if (w->filter)
        bson_destroy(w->filter);
    if (w->doc)
        bson_destroy(w->doc);
    g_free(w);
}

static void push(GPtrArray *ops, enum wop_kind kind, enum ms_coll c, bson_t *filter, bson_t *doc)
{
    struct wop *w = g_new0(struct wop, 1);
    w->kind = kind;
    w->coll = c;
    w->filter = filter;
    w->doc = doc;
    g_ptr_array_add(ops, w);
}

static bson_t *string_array_doc(const char *key, const GPtrArray *a, bson_t *parent)
{
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(parent, key, &arr);
    for (guint i = 0; i < a->len; i++) {
        char idx[16];
        const char *k;
        bson_uint32_to_string(i, &k, idx, sizeof idx);
        bson_append_utf8(&arr, k, -1, a->pdata[i], -1);
    }
    bson_append_array_end(parent, &arr);
    return parent;
}

/* Filters naming one record by its natural key (delete_many also clears repeats). */
static bson_t *record_filter(enum gm_kind kind, const void *r)
{
    switch (kind) {
    case GM_USER:
        return BCON_NEW("name", BCON_UTF8(((const struct gm_user *)r)->name));
    case GM_GROUP:
        return BCON_NEW("name", BCON_UTF8(((const struct gm_group *)r)->name));
    case GM_MEMBER: {
        const struct gm_member *m = r;
        return BCON_NEW("group", BCON_UTF8(m->group), "user", BCON_UTF8(m->user));
    }
    case GM_SHARE: {
        const struct gm_share *s = r;
        return BCON_NEW("from", BCON_UTF8(s->from), "to", BCON_UTF8(s->to), "to_group",
                        BCON_BOOL(s->to_group), "channel", BCON_UTF8(s->channel));
    }
    case GM_ACCEPT:
    case GM_DECLINE: {
        const struct gm_accept *a = r;
        return BCON_NEW("user", BCON_UTF8(a->user), "from", BCON_UTF8(a->from), "channel",
                        BCON_UTF8(a->channel));
    }
    case GM_KEY:
        return BCON_NEW("identifier", BCON_UTF8(((const struct gm_key *)r)->ident));
    }
    return NULL;
}

static const enum ms_coll coll_of[] = {
    [GM_USER] = MS_USERS,       [GM_GROUP] = MS_GROUPS,   [GM_MEMBER] = MS_MEMBERS,
    [GM_SHARE] = MS_SHARES,     [GM_ACCEPT] = MS_ACCEPTS, [GM_KEY] = MS_AUTH_KEY,
    [GM_DECLINE] = MS_DECLINES,
};

static bool on_del(void *ud, enum gm_kind kind, const void *record, const void *replacement)
{
    GPtrArray *ops = ud;
    /* Values that change in place keep the document (and its _id, and its fields we do not know). */
    if (replacement && kind == GM_USER) {
        const struct gm_user *n = replacement;
        bson_t *update = n->password ? BCON_NEW("$set", "{", "admin", BCON_BOOL(n->admin),
                                                "password", BCON_UTF8(n->password), "}")
                                     : BCON_NEW("$set", "{", "admin", BCON_BOOL(n->admin), "}",
                                                "$unset", "{", "password", BCON_UTF8(""), "}");
        push(ops, W_UPDATE, MS_USERS, record_filter(kind, record), update);
        return true;
    }
    if (replacement && kind == GM_SHARE) {
        push(ops, W_UPDATE, MS_SHARES, record_filter(kind, record),
             BCON_NEW("$set", "{", "type",
                      BCON_UTF8(hpf_share_type_name(((const struct gm_share *)replacement)->type)),
                      "}"));
        return true;
    }
    push(ops, W_DELETE, coll_of[kind], record_filter(kind, record), NULL);
    return false;
}

static void on_add(void *ud, enum gm_kind kind, const void *r)
{
    GPtrArray *ops = ud;
    bson_t *doc = NULL;
    int64_t now = g_get_real_time() / 1000;
    switch (kind) {
    case GM_USER: {
        const struct gm_user *u = r;
        doc = BCON_NEW("name", BCON_UTF8(u->name), "admin", BCON_BOOL(u->admin), "created",
                       BCON_DATE_TIME(now));
        if (u->password)
            BSON_APPEND_UTF8(doc, "password", u->password);
        break;
    }
    case GM_GROUP: {
        const struct gm_group *g = r;
        doc = BCON_NEW("name", BCON_UTF8(g->name), "owner", BCON_UTF8(g->owner), "created",
                       BCON_DATE_TIME(now));
        break;
    }
    case GM_MEMBER:
    case GM_ACCEPT:
    case GM_DECLINE:
        doc = record_filter(kind, r);
        break;
    case GM_SHARE:
        doc = record_filter(kind, r);
        BSON_APPEND_UTF8(doc, "type", hpf_share_type_name(((const struct gm_share *)r)->type));
        break;
    case GM_KEY: {
        /* MHN's shape, plus the owner. */
        const struct gm_key *k = r;
        doc = bson_new();
        BSON_APPEND_UTF8(doc, "identifier", k->ident);
        BSON_APPEND_UTF8(doc, "secret", k->secret ? k->secret : "");
        string_array_doc("publish", k->publish, doc);
        string_array_doc("subscribe", k->subscribe, doc);
        BSON_APPEND_UTF8(doc, "owner", k->owner);
        break;
    }
    }
    push(ops, W_INSERT, coll_of[kind], NULL, doc);
}

static const struct gm_diff_ops diff_ops = {.del = on_del, .add = on_add};

/* Runs one write; FALSE with e set on failure. */
static gboolean run_wop(struct mstore *s, mongoc_client_session_t *cs, const struct wop *w,
                        bson_error_t *e)
{
    bson_t opts = BSON_INITIALIZER;
    gboolean ok = !cs || mongoc_client_session_append(cs, &opts, e);
    if (ok) {
        mongoc_collection_t *c = s->coll[w->coll];
        switch (w->kind) {
        case W_INSERT:
            ok = mongoc_collection_insert_one(c, w->doc, &opts, NULL, e);
            break;
        case W_DELETE:
            ok = mongoc_collection_delete_many(c, w->filter, &opts, NULL, e);
            break;
        case W_UPDATE:
            ok = mongoc_collection_update_many(c, w->filter, w->doc, &opts, NULL, e);
            break;
        }
    }
    bson_destroy(&opts);
    return ok;
}

/* Inserts sent in one ordered bulk at most (a round trip each, not one per
 * document: an import of 20,000 authkeys is 20 round trips). */
#define INSERT_BATCH 1000

/*
 * Runs ops[*done...] in order: consecutive inserts into one collection go
 * as an ordered bulk, the rest one by one.  *done counts the writes made,
 * also when one fails (FALSE with e set): an ordered bulk stops at its
 * first failure and reports how many it inserted before.
 */
static gboolean run_wops(struct mstore *s, mongoc_client_session_t *cs, GPtrArray *ops, guint *done,
                         bson_error_t *e)
{
    while (*done < ops->len) {
        const struct wop *w = ops->pdata[*done];
        guint end = *done + 1;
        if (w->kind == W_INSERT)
            while (end < ops->len && end - *done < INSERT_BATCH &&
                   ((const struct wop *)ops->pdata[end])->kind == W_INSERT &&
                   ((const struct wop *)ops->pdata[end])->coll == w->coll)
                end++;
        if (end - *done == 1) {
            if (!run_wop(s, cs, w, e))
                return FALSE;
            (*done)++;
            continue;
        }
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "ordered", true);
        gboolean ok = !cs || mongoc_client_session_append(cs, &opts, e);
        mongoc_bulk_operation_t *bulk =
            ok ? mongoc_collection_create_bulk_operation_with_opts(s->coll[w->coll], &opts) : NULL;
        bson_destroy(&opts);
        for (guint i = *done; ok && i < end; i++)
            ok = mongoc_bulk_operation_insert_with_opts(
                bulk, ((const struct wop *)ops->pdata[i])->doc, NULL, e);
        bson_t reply;
        if (ok) {
            ok = mongoc_bulk_operation_execute(bulk, &reply, e) != 0;
            bson_iter_t it;
            if (ok)
                *done = end;
            else if (bson_iter_init_find(&it, &reply, "nInserted") && BSON_ITER_HOLDS_INT32(&it))
                *done += (guint)MAX(0, bson_iter_int32(&it));
            bson_destroy(&reply);
        }
        if (bulk)
            mongoc_bulk_operation_destroy(bulk);
        if (!ok)
            return FALSE;
    }
    return TRUE;
}

/* data_version += 1 and busy as given, creating the document if needed. */
static gboolean bump(struct mstore *s, mongoc_client_session_t *cs, gboolean busy, bson_error_t *e)
{
    bson_t *filter = BCON_NEW("key", "data_version");
    bson_t *update = BCON_NEW("$inc", "{", "value", BCON_INT64(1), "}", "$set", "{", "busy",
                              BCON_BOOL(busy), "}");
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "upsert", true);
    gboolean ok = !cs || mongoc_client_session_append(cs, &opts, e);
    if (ok)
        ok = mongoc_collection_update_one(s->coll[MS_META], filter, update, &opts, NULL, e);
    bson_destroy(&opts);
    bson_destroy(filter);
    bson_destroy(update);
    return ok;
}

struct apply_ctx {
    struct mstore *s;
    const struct hpf_mutation *mutations;
    size_t n;
    char *err;
    size_t err_len;
    int status; /* HPF_OK, or why validation refused the batch */
    guint done, total;
};

/* Fresh read, validation, and the list of writes; NULL when refused or failed. */
static GPtrArray *plan(struct apply_ctx *a, mongoc_client_session_t *cs, bson_error_t *e)
{
    struct gm_model *before = ms_load_model(a->s, cs, e);
    if (!before)
        return NULL;
    struct gm_model *after = gm_model_copy(before);
    GPtrArray *ops = NULL;
    a->status = gm_apply(after, a->mutations, a->n, a->err, a->err_len);
    if (a->status == HPF_OK) {
        ops = g_ptr_array_new_with_free_func(wop_free);
        gm_diff(before, after, &diff_ops, ops);
    }
    gm_model_free(before);
    gm_model_free(after);
    return ops;
}

/* The whole batch inside the session's open transaction. */
static gboolean in_transaction(struct apply_ctx *a, mongoc_client_session_t *cs, bson_error_t *e)
{
    a->status = HPF_OK;
    GPtrArray *ops = plan(a, cs, e);
    if (!ops)
        return FALSE;
    guint done = 0;
    gboolean ok = run_wops(a->s, cs, ops, &done, e);
    g_ptr_array_unref(ops);
    ok = ok && ms_audit_insert(a->s, cs, a->mutations, a->n, e);
    return ok && bump(a->s, cs, FALSE, e);
}

#define WRITE_CONFLICT      112
#define NO_SUCH_TRANSACTION 251
#define TXN_TRIES           3

static gboolean server_has_transactions(struct mstore *s, bson_error_t *e, gboolean *reachable)
{
    mongoc_server_description_t *sd = mongoc_client_select_server(s->client, true, NULL, e);
    *reachable = sd != NULL;
    if (!sd)
        return FALSE;
    const char *type = mongoc_server_description_type(sd);
    gboolean yes = !strcmp(type, "RSPrimary") || !strcmp(type, "Mongos");
    mongoc_server_description_destroy(sd);
    return yes;
}

/*
 * Not mongoc_client_session_with_transaction(): it retries transient errors
 * for up to 120 s, and an unreachable server is one, which would hold the
 * caller far longer than timeout_ms.  Here a conflict with another writer
 * is retried a few times; an outage fails at once.
 */
static int apply_transaction(struct apply_ctx *a)
{
    struct mstore *s = a->s;
    bson_error_t e;
    mongoc_client_session_t *cs = mongoc_client_start_session(s->client, NULL, &e);
    if (!cs) {
        int status = ms_trouble(s, "apply", &e);
        return hpf_set_error(a->err, a->err_len, status, "apply: mongodb at %s: %s", s->where,
                             e.message);
    }
    gboolean ok = FALSE;
    for (int attempt = 0; attempt < TXN_TRIES; attempt++) {
        if (!mongoc_client_session_start_transaction(cs, NULL, &e))
            break;
        if (!in_transaction(a, cs, &e)) {
            mongoc_client_session_abort_transaction(cs, NULL);
            if (a->status != HPF_OK) {
                mongoc_client_session_destroy(cs);
                return a->status; /* refused: err says why, nothing was written */
            }
            if (ms_status(&e) != HPF_ERR_UNAVAILABLE &&
                (e.code == WRITE_CONFLICT || e.code == NO_SUCH_TRANSACTION))
                continue; /* another writer got there first: read again */
            break;
        }
        gboolean again = FALSE;
        for (int c = 0; c < TXN_TRIES; c++) {
            bson_t reply;
            ok = mongoc_client_session_commit_transaction(cs, &reply, &e);
            gboolean down = !ok && ms_status(&e) == HPF_ERR_UNAVAILABLE;
            gboolean unknown =
                !ok && !down && mongoc_error_has_label(&reply, "UnknownTransactionCommitResult");
            again = !ok && !down && mongoc_error_has_label(&reply, "TransientTransactionError");
            bson_destroy(&reply);
            if (!unknown)
                break;
        }
        if (ok || !again)
            break;
    }
    mongoc_client_session_destroy(cs);
    if (!ok) {
        int status = ms_trouble(s, "apply", &e);
        return hpf_set_error(a->err, a->err_len, status,
                             "apply: mongodb at %s: %s (nothing written)", s->where, e.message);
    }
    ms_healthy(s);
    return HPF_OK;
}

static int apply_ordered(struct apply_ctx *a)
{
    struct mstore *s = a->s;
    bson_error_t e;
    GPtrArray *ops = plan(a, NULL, &e);
    if (!ops) {
        if (a->status != HPF_OK)
            return a->status;
        int status = ms_trouble(s, "apply", &e);
        return hpf_set_error(a->err, a->err_len, status, "apply: mongodb at %s: %s", s->where,
                             e.message);
    }
    if (!bump(s, NULL, TRUE, &e)) {
        g_ptr_array_unref(ops);
        int status = ms_trouble(s, "apply", &e);
        return hpf_set_error(a->err, a->err_len, status,
                             "apply: mongodb at %s: %s (nothing written)", s->where, e.message);
    }
    guint done = 0;
    bson_error_t we;
    gboolean ok = run_wops(s, NULL, ops, &done, &we);
    ok = ok && ms_audit_insert(s, NULL, a->mutations, a->n, &we);
    guint total = ops->len;
    g_ptr_array_unref(ops);
    /* Also after a failure: what was written is data, and readers must stop waiting. */
    gboolean bumped = bump(s, NULL, FALSE, &e);
    if (!ok) {
        int status = ms_trouble(s, "apply", &we);
        return hpf_set_error(a->err, a->err_len, status,
                             "apply: mongodb at %s: %s; %u of %u writes were made " PARTIAL_NOTE,
                             s->where, we.message, done, total);
    }
    if (!bumped) {
        int status = ms_trouble(s, "apply", &e);
        return hpf_set_error(a->err, a->err_len, status,
                             "apply: mongodb at %s: all %u writes made, but data_version could not "
                             "be updated: %s",
                             s->where, total, e.message);
    }
    ms_healthy(s);
    return HPF_OK;
}

int ms_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len)
{
    struct mstore *s = instance;
    int status = mut_check_batch(mutations, n, err, err_len);
    if (status != HPF_OK)
        return status;
    if (!s->client)
        return hpf_set_error(err, err_len, HPF_ERR_UNAVAILABLE, "apply: not started");
    struct apply_ctx a = {.s = s, .mutations = mutations, .n = n, .err = err, .err_len = err_len};
    gboolean txn = s->txn == MS_TXN_ALWAYS;
    if (s->txn == MS_TXN_AUTO) {
        bson_error_t e;
        gboolean reachable;
        txn = server_has_transactions(s, &e, &reachable);
        if (!reachable) {
            status = ms_trouble(s, "apply", &e);
            return hpf_set_error(err, err_len, status, "apply: mongodb at %s: %s", s->where,
                                 e.message);
        }
    }
    return txn ? apply_transaction(&a) : apply_ordered(&a);
}

static int64_t clamp64(uint64_t v) { return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v; }

/* One ordered bulk of $inc upserts: a server error can leave it part-way (logged). */
int ms_counters_add(void *instance, const struct hpf_counters *deltas, size_t n)
{
    struct mstore *s = instance;
    if (n == 0)
        return HPF_OK;
    if (!mut_counters_ok(deltas, n))
        return HPF_ERR_INVALID;
    if (!s->client)
        return HPF_ERR_UNAVAILABLE;
    bson_t bulk_opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&bulk_opts, "ordered", true);
    mongoc_bulk_operation_t *bulk =
        mongoc_collection_create_bulk_operation_with_opts(s->coll[MS_COUNTERS], &bulk_opts);
    bson_destroy(&bulk_opts);
    bson_error_t e;
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "upsert", true);
    gboolean ok = TRUE;
    for (size_t i = 0; ok && i < n; i++) {
        const struct hpf_counters *d = &deltas[i];
        bson_t *filter = BCON_NEW("ident", BCON_UTF8(d->ident));
        bson_t *update =
            BCON_NEW("$inc", "{", "published_msgs", BCON_INT64(clamp64(d->published_msgs)),
                     "published_bytes", BCON_INT64(clamp64(d->published_bytes)), "received_msgs",
                     BCON_INT64(clamp64(d->received_msgs)), "received_bytes",
                     BCON_INT64(clamp64(d->received_bytes)), "}");
        ok = mongoc_bulk_operation_update_one_with_opts(bulk, filter, update, &opts, &e);
        bson_destroy(filter);
        bson_destroy(update);
    }
    bson_destroy(&opts);
    if (ok)
        ok = mongoc_bulk_operation_execute(bulk, NULL, &e) != 0;
    mongoc_bulk_operation_destroy(bulk);
    if (!ok)
        return ms_trouble(s, "saving counters", &e);
    ms_healthy(s);
    return HPF_OK;
}

/* ---- start-up: indexes and meta documents ---- */

struct index_spec {
    enum ms_coll coll;
    const char *name;
    const char *fields[4];
    gboolean unique;
};

static const struct index_spec indexes[] = {
    {MS_USERS, "hpf_users_name", {"name"}, TRUE},
    {MS_GROUPS, "hpf_groups_name", {"name"}, TRUE},
    {MS_GROUPS, "hpf_groups_owner", {"owner"}, FALSE},
    {MS_MEMBERS, "hpf_members_group_user", {"group", "user"}, TRUE},
    {MS_MEMBERS, "hpf_members_user", {"user"}, FALSE},
    {MS_SHARES, "hpf_shares_edge", {"from", "to", "to_group", "channel"}, TRUE},
    {MS_SHARES, "hpf_shares_to", {"to", "to_group"}, FALSE},
    {MS_ACCEPTS, "hpf_accepts_offer", {"user", "from", "channel"}, TRUE},
    {MS_ACCEPTS, "hpf_accepts_from", {"from"}, FALSE},
    {MS_DECLINES, "hpf_declines_offer", {"user", "from", "channel"}, TRUE},
    {MS_DECLINES, "hpf_declines_from", {"from"}, FALSE},
    {MS_COUNTERS, "hpf_counters_ident", {"ident"}, TRUE},
    {MS_META, "hpf_meta_key", {"key"}, TRUE},
    {MS_AUTH_KEY, "hpf_auth_key_identifier", {"identifier"}, TRUE},
    {MS_AUDIT, "hpf_audit_seq", {"seq"}, TRUE},
    {MS_AUDIT, "hpf_audit_user", {"user"}, FALSE},
    {MS_AUDIT, "hpf_audit_actor", {"actor"}, FALSE},
};

/* libmongoc 1.23 has no create_indexes_with_opts: the createIndexes command. */
static gboolean create_index(struct mstore *s, const struct index_spec *spec, gboolean unique,
                             const char *name, bson_error_t *e)
{
    bson_t cmd = BSON_INITIALIZER, list, idx, key;
    BSON_APPEND_UTF8(&cmd, "createIndexes", ms_coll_names[spec->coll]);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &list);
    BSON_APPEND_DOCUMENT_BEGIN(&list, "0", &idx);
    BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
    for (int i = 0; i < 4 && spec->fields[i]; i++)
        BSON_APPEND_INT32(&key, spec->fields[i], 1);
    bson_append_document_end(&idx, &key);
    BSON_APPEND_UTF8(&idx, "name", name);
    if (unique)
        BSON_APPEND_BOOL(&idx, "unique", true);
    bson_append_document_end(&list, &idx);
    bson_append_array_end(&cmd, &list);
    gboolean ok = mongoc_client_write_command_with_opts(s->client, s->db, &cmd, NULL, NULL, e);
    bson_destroy(&cmd);
    return ok;
}

#define DUPLICATE_KEY 11000

static int ensure_indexes(struct mstore *s, char *err, size_t err_len)
{
    for (size_t i = 0; i < G_N_ELEMENTS(indexes); i++) {
        const struct index_spec *spec = &indexes[i];
        bson_error_t e;
        if (create_index(s, spec, spec->unique, spec->name, &e))
            continue;
        if (spec->unique && e.code == DUPLICATE_KEY) {
            /* Existing repeats (MHN never enforced unique identifiers): index without. */
            MS_LOG(s, HPF_LOG_WARNING,
                   "mongodb at %s: %s holds repeated keys; not enforcing unique %s until they "
                   "are removed (the first document of each wins)",
                   s->where, ms_coll_names[spec->coll], spec->name);
            char *plain = g_strdup_printf("%s_lookup", spec->name);
            gboolean ok = create_index(s, spec, FALSE, plain, &e);
            g_free(plain);
            if (ok)
                continue;
        }
        if (spec->coll == MS_AUTH_KEY) {
            /* Not our collection: an index of its own may be in the way; reads work without. */
            MS_LOG(s, HPF_LOG_WARNING, "mongodb at %s: auth_key: cannot create index %s: %s",
                   s->where, spec->name, e.message);
            continue;
        }
        return hpf_set_error(err, err_len, ms_status(&e),
                             "mongodb at %s: %s: creating index %s: %s", s->where,
                             ms_coll_names[spec->coll], spec->name, e.message);
    }
    return HPF_OK;
}

struct schema_read {
    gboolean found;
    gboolean numeric;
    int64_t version;
};

static void take_schema(struct mstore *s, const bson_t *doc, void *arg)
{
    (void)s;
    struct schema_read *r = arg;
    bson_iter_t it;
    r->found = TRUE;
    if (bson_iter_init_find(&it, doc, "value") &&
        (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_DOUBLE(&it))) {
        r->numeric = TRUE;
        r->version = bson_iter_as_int64(&it);
    }
}

static gboolean find_one(struct mstore *s, enum ms_coll c, const bson_t *filter,
                         void (*fn)(struct mstore *, const bson_t *, void *), void *arg,
                         bson_error_t *e)
{
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_INT64(&opts, "limit", 1);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->coll[c], filter, &opts, NULL);
    const bson_t *doc;
    if (mongoc_cursor_next(cur, &doc))
        fn(s, doc, arg);
    gboolean ok = !mongoc_cursor_error(cur, e);
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    return ok;
}

static gboolean upsert_meta(struct mstore *s, const char *key, bson_t *on_insert, bson_error_t *e)
{
    bson_t *filter = BCON_NEW("key", BCON_UTF8(key));
    bson_t update = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT(&update, "$setOnInsert", on_insert);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "upsert", true);
    gboolean ok = mongoc_collection_update_one(s->coll[MS_META], filter, &update, &opts, NULL, e);
    bson_destroy(&opts);
    bson_destroy(&update);
    bson_destroy(filter);
    bson_destroy(on_insert);
    return ok;
}

int ms_prepare(struct mstore *s, char *err, size_t err_len)
{
    bson_error_t e;
    struct schema_read r = {0};
    bson_t *filter = BCON_NEW("key", "schema_version");
    gboolean ok = find_one(s, MS_META, filter, take_schema, &r, &e);
    bson_destroy(filter);
    if (!ok)
        return hpf_set_error(err, err_len, ms_status(&e), "mongodb at %s: reading hpf_meta: %s",
                             s->where, e.message);
    if (r.found && !r.numeric)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "mongodb at %s: hpf_meta: schema_version is not a number", s->where);
    if (r.found && r.version > MS_SCHEMA_VERSION)
        return hpf_set_error(err, err_len, HPF_ERR_UNSUPPORTED,
                             "mongodb at %s: schema version %" G_GINT64_FORMAT " is newer than "
                             "this storage_mongodb supports (%d); upgrade hpfriends",
                             s->where, r.version, MS_SCHEMA_VERSION);
    int status = ensure_indexes(s, err, err_len);
    if (status != HPF_OK)
        return status;
    if (!upsert_meta(s, "schema_version", BCON_NEW("value", BCON_INT32(MS_SCHEMA_VERSION)), &e) ||
        !upsert_meta(s, "data_version", BCON_NEW("value", BCON_INT64(1), "busy", BCON_BOOL(false)),
                     &e))
        return hpf_set_error(err, err_len, ms_status(&e), "mongodb at %s: writing hpf_meta: %s",
                             s->where, e.message);
    if (!r.found)
        MS_LOG(s, HPF_LOG_NOTICE, "mongodb at %s: created schema version %d", s->where,
               MS_SCHEMA_VERSION);
    return HPF_OK;
}
