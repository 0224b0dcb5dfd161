/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mongodb's audit trail: the hpf_audit collection, one document a
 * record, {seq: id, time, actor, user, action, object, detail}, ids counted
 * up from the newest one stored (in "seq", indexed unique: _id stays the
 * server's ObjectId, which every MongoDB-wire server supports).  apply() adds its HPF_MUT_AUDIT records
 * after the change's writes: inside the transaction when there is one (so
 * record and change commit together), else in the same ordered sequence
 * (as apply() says, a batch can then be cut short by an outage).  The
 * oldest records beyond the record's bound are dropped by the same writer.
 */
#include "mongo_store.h"
#include "../common/mutation_check.h"

#include <string.h>

static const char *or_empty(const char *s) { return s ? s : ""; }

/* Other writers (and servers written in JavaScript) may hand integers back as doubles. */
static gboolean is_number(const bson_iter_t *it)
{
    return BSON_ITER_HOLDS_INT64(it) || BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_DOUBLE(it);
}

/* find() options: newest first, limit, and the session if any. */
static gboolean newest_first(bson_t *opts, int64_t limit, mongoc_client_session_t *cs,
                             bson_error_t *e)
{
    bson_t sort;
    BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "seq", -1);
    bson_append_document_end(opts, &sort);
    BSON_APPEND_INT64(opts, "limit", limit);
    return !cs || mongoc_client_session_append(cs, opts, e);
}

/* The seq of the newest record; 0 when there is none. */
static gboolean newest_seq(struct mstore *s, mongoc_client_session_t *cs, int64_t *id,
                           bson_error_t *e)
{
    bson_t opts = BSON_INITIALIZER, filter = BSON_INITIALIZER;
    *id = 0;
    gboolean ok = newest_first(&opts, 1, cs, e);
    if (ok) {
        mongoc_cursor_t *cur =
            mongoc_collection_find_with_opts(s->coll[MS_AUDIT], &filter, &opts, NULL);
        const bson_t *doc;
        bson_iter_t it;
        if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "seq") && is_number(&it))
            *id = bson_iter_as_int64(&it);
        ok = !mongoc_cursor_error(cur, e);
        mongoc_cursor_destroy(cur);
    }
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

static gboolean insert_one(struct mstore *s, mongoc_client_session_t *cs,
                           const struct hpf_audit_record *r, int64_t id, bson_error_t *e)
{
    bson_t *doc =
        BCON_NEW("seq", BCON_INT64(id), "time", BCON_INT64(r->time), "actor", BCON_UTF8(r->actor),
                 "user", BCON_UTF8(or_empty(r->user)), "action", BCON_UTF8(r->action), "object",
                 BCON_UTF8(or_empty(r->object)), "detail", BCON_UTF8(or_empty(r->detail)));
    bson_t opts = BSON_INITIALIZER;
    gboolean ok = (!cs || mongoc_client_session_append(cs, &opts, e)) &&
                  mongoc_collection_insert_one(s->coll[MS_AUDIT], doc, &opts, NULL, e);
    bson_destroy(&opts);
    bson_destroy(doc);
    return ok;
}

/* The newest `keep` stay: seqs count up by one from the newest stored. */
static gboolean trim(struct mstore *s, mongoc_client_session_t *cs, int64_t newest, uint32_t keep,
                     bson_error_t *e)
{
    int64_t oldest_gone = newest - keep;
    if (oldest_gone <= 0)
        return TRUE;
    bson_t *filter = BCON_NEW("seq", "{", "$lte", BCON_INT64(oldest_gone), "}");
    bson_t opts = BSON_INITIALIZER;
    gboolean ok = (!cs || mongoc_client_session_append(cs, &opts, e)) &&
                  mongoc_collection_delete_many(s->coll[MS_AUDIT], filter, &opts, NULL, e);
    bson_destroy(&opts);
    bson_destroy(filter);
    return ok;
}

gboolean ms_audit_insert(struct mstore *s, mongoc_client_session_t *cs,
                         const struct hpf_mutation *mutations, size_t n, bson_error_t *e)
{
    for (size_t i = 0; i < n; i++) {
        const struct hpf_mutation *m = &mutations[i];
        if (m->op != HPF_MUT_AUDIT)
            continue;
        int64_t newest;
        if (!newest_seq(s, cs, &newest, e) || !insert_one(s, cs, m->audit, newest + 1, e) ||
            !trim(s, cs, newest + 1, mut_audit_keep(m), e))
            return FALSE;
    }
    return TRUE;
}

static const char *text_of(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it))
        return NULL;
    uint32_t len = 0;
    const char *v = bson_iter_utf8(&it, &len);
    return strlen(v) == len ? v : NULL;
}

static int64_t int_of(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !is_number(&it))
        return 0;
    return bson_iter_as_int64(&it);
}

/* A document another tool wrote wrongly is skipped, not reported half-filled. */
static void report(const bson_t *doc, hpf_audit_cb cb, void *ud)
{
    struct hpf_audit_record r = {
        .id = int_of(doc, "seq"),
        .time = int_of(doc, "time"),
        .actor = text_of(doc, "actor"),
        .user = text_of(doc, "user"),
        .action = text_of(doc, "action"),
        .object = text_of(doc, "object"),
        .detail = text_of(doc, "detail"),
    };
    if (r.id > 0 && r.actor && r.user && r.action && r.object && r.detail)
        cb(ud, &r);
}

int ms_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb, void *ud)
{
    struct mstore *s = instance;
    if (!mut_audit_query_ok(q) || !cb)
        return HPF_ERR_INVALID;
    if (!s->client)
        return HPF_ERR_UNAVAILABLE;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    if (q->before > 0) {
        bson_t lt;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &lt);
        BSON_APPEND_INT64(&lt, "$lt", q->before);
        bson_append_document_end(&filter, &lt);
    }
    if (q->actor)
        BSON_APPEND_UTF8(&filter, "actor", q->actor);
    if (q->user)
        BSON_APPEND_UTF8(&filter, "user", q->user);
    bson_error_t e;
    newest_first(&opts, q->limit, NULL, &e);
    mongoc_cursor_t *cur =
        mongoc_collection_find_with_opts(s->coll[MS_AUDIT], &filter, &opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc))
        report(doc, cb, ud);
    gboolean ok = !mongoc_cursor_error(cur, &e);
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    bson_destroy(&filter);
    if (!ok)
        return ms_trouble(s, "reading the audit trail", &e);
    ms_healthy(s);
    return HPF_OK;
}
