/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql's audit trail: the hpf_audit table (schema step 2).
 * apply() inserts each HPF_MUT_AUDIT record inside its own transaction
 * (after the change's writes, before data_version moves) and drops the
 * oldest records beyond the record's bound there too, so a record exists
 * exactly when its change was committed.  audit_list() is one SELECT.
 */
#include "pg_store.h"
#include "../common/mutation_check.h"

#include <stdlib.h>

static const char *or_empty(const char *s) { return s ? s : ""; }

bool pg_audit_insert(struct pstore *s, const struct hpf_mutation *m, struct pg_fail *f)
{
    const struct hpf_audit_record *r = m->audit;
    char time[32], keep[16];
    g_snprintf(time, sizeof time, "%" G_GINT64_FORMAT, (gint64)r->time);
    g_snprintf(keep, sizeof keep, "%u", mut_audit_keep(m));
    const char *params[] = {
        time, r->actor, or_empty(r->user), r->action, or_empty(r->object), or_empty(r->detail),
        keep};
    /* The newest `keep` ids stay: a range of the primary key, not a count of
     * the table.  (A sequence value used up by a failed commit leaves a gap,
     * so the trail then holds a few records fewer than keep, never more.) */
    PGresult *res =
        pg_query(s,
                 "WITH added AS (INSERT INTO hpf_audit (time, actor, subject, action, "
                 "object, detail) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id) "
                 "DELETE FROM hpf_audit WHERE id <= (SELECT id FROM added) - $7::bigint",
                 7, params, f);
    if (res)
        PQclear(res);
    return res != NULL;
}

int pg_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb, void *ud)
{
    struct pstore *s = instance;
    if (!mut_audit_query_ok(q) || !cb)
        return HPF_ERR_INVALID;
    char before[32], limit[16];
    g_snprintf(before, sizeof before, "%" G_GINT64_FORMAT, (gint64)q->before);
    g_snprintf(limit, sizeof limit, "%u", q->limit);
    const char *params[] = {before, q->actor, q->user, limit};
    struct pg_fail f;
    PGresult *r = pg_query(s,
                           "SELECT id, time, actor, subject, action, object, detail "
                           "FROM hpf_audit WHERE ($1::bigint <= 0 OR id < $1::bigint) "
                           "AND ($2::text IS NULL OR actor = $2) "
                           "AND ($3::text IS NULL OR subject = $3) "
                           "ORDER BY id DESC LIMIT $4::bigint",
                           4, params, &f);
    if (!r)
        return pg_trouble(s, "reading the audit trail", &f);
    for (int i = 0; i < PQntuples(r); i++) {
        struct hpf_audit_record rec = {
            .id = g_ascii_strtoll(PQgetvalue(r, i, 0), NULL, 10),
            .time = g_ascii_strtoll(PQgetvalue(r, i, 1), NULL, 10),
            .actor = PQgetvalue(r, i, 2),
            .user = PQgetvalue(r, i, 3),
            .action = PQgetvalue(r, i, 4),
            .object = PQgetvalue(r, i, 5),
            .detail = PQgetvalue(r, i, 6),
        };
        cb(ud, &rec);
    }
    PQclear(r);
    pg_healthy(s);
    return HPF_OK;
}
