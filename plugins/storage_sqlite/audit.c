/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_sqlite's audit trail: the hpf_audit table (schema step 3).  A
 * record is inserted by apply() inside the batch's own transaction, and the
 * oldest records beyond the bound it carries are dropped in that same
 * transaction, so the table never holds a change that did not happen and
 * never grows past the bound.  audit_list() reads newest first, one
 * statement (one consistent read).
 */
#include "sqlite_store.h"
#include "../common/mutation_check.h"

#include <string.h>

static const char *or_empty(const char *s) { return s ? s : ""; }

int sq_audit_insert(struct store *s, const struct hpf_mutation *m)
{
    const struct hpf_audit_record *r = m->audit;
    sqlite3_stmt *st = sq_stmt(s, "INSERT INTO hpf_audit (time, actor, subject, action, object, "
                                  "detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st)
        return HPF_ERR_IO;
    sqlite3_bind_int64(st, 1, r->time);
    sqlite3_bind_text(st, 2, r->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, or_empty(r->user), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, or_empty(r->object), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, or_empty(r->detail), -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return HPF_ERR_IO;
    /* Ids count up by one (AUTOINCREMENT, rolled back with a failed batch):
     * the newest `keep` are those above this one's id - keep.  A range of
     * the primary key, not a count of the table. */
    sqlite3_int64 oldest_gone = sqlite3_last_insert_rowid(s->db) - mut_audit_keep(m);
    if (oldest_gone <= 0)
        return HPF_OK;
    st = sq_stmt(s, "DELETE FROM hpf_audit WHERE id <= ?1");
    if (!st)
        return HPF_ERR_IO;
    sqlite3_bind_int64(st, 1, oldest_gone);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? HPF_OK : HPF_ERR_IO;
}

static const char *text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

int sq_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb, void *ud)
{
    struct store *s = instance;
    if (!mut_audit_query_ok(q) || !cb)
        return HPF_ERR_INVALID;
    sqlite3_stmt *st = sq_stmt(s, "SELECT id, time, actor, subject, action, object, detail "
                                  "FROM hpf_audit WHERE (?1 <= 0 OR id < ?1) "
                                  "AND (?2 IS NULL OR actor = ?2) AND (?3 IS NULL OR subject = ?3) "
                                  "ORDER BY id DESC LIMIT ?4");
    if (!st) {
        SQ_LOG(s, HPF_LOG_WARNING, "reading the audit trail: %s", sqlite3_errmsg(s->db));
        return HPF_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, q->before);
    if (q->actor)
        sqlite3_bind_text(st, 2, q->actor, -1, SQLITE_STATIC);
    if (q->user)
        sqlite3_bind_text(st, 3, q->user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, q->limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct hpf_audit_record r = {
            .id = sqlite3_column_int64(st, 0),
            .time = sqlite3_column_int64(st, 1),
            .actor = text(st, 2),
            .user = text(st, 3),
            .action = text(st, 4),
            .object = text(st, 5),
            .detail = text(st, 6),
        };
        cb(ud, &r);
    }
    int status = rc == SQLITE_DONE ? HPF_OK : sq_status(rc);
    if (status != HPF_OK)
        SQ_LOG(s, HPF_LOG_WARNING, "reading the audit trail: %s", sqlite3_errmsg(s->db));
    sqlite3_reset(st);
    return status;
}
