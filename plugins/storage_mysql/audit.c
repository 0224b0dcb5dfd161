/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql's audit trail: the hpf_audit table (schema step 2).
 * apply() inserts each HPF_MUT_AUDIT record in its own transaction, after
 * the change's writes and before the commit, and drops the oldest records
 * beyond the record's bound there too: a record exists exactly when its
 * change was committed.  audit_list() is one SELECT.
 */
#include "mysql_store.h"
#include "../common/mutation_check.h"

static const char *or_empty(const char *s) { return s ? s : ""; }

gboolean my_audit_insert(struct mystore *s, const struct hpf_mutation *m)
{
    const struct hpf_audit_record *r = m->audit;
    struct my_param p[] = {MY_N(r->time),
                           MY_S(r->actor),
                           MY_S(or_empty(r->user)),
                           MY_S(r->action),
                           MY_S(or_empty(r->object)),
                           MY_S(or_empty(r->detail))};
    if (!my_exec(s,
                 "INSERT INTO hpf_audit (time, actor, subject, action, object, detail) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 p, G_N_ELEMENTS(p), NULL, NULL, NULL))
        return FALSE;
    /* The newest `keep` ids stay: a range of the primary key after the id
     * just given, not a count of the table.  (InnoDB may skip values after a
     * rollback: the trail then holds a few records fewer than keep.) */
    struct my_param keep = MY_N(mut_audit_keep(m));
    return my_exec(s, "DELETE FROM hpf_audit WHERE id <= CAST(LAST_INSERT_ID() AS SIGNED) - ?",
                   &keep, 1, NULL, NULL, NULL);
}

struct listing {
    hpf_audit_cb cb;
    void *ud;
};

static void row(struct mystore *s, const char *const *vals, unsigned n, void *arg)
{
    (void)s;
    struct listing *l = arg;
    if (n < 7)
        return;
    for (unsigned i = 0; i < 7; i++)
        if (!vals[i])
            return;
    struct hpf_audit_record r = {
        .id = g_ascii_strtoll(vals[0], NULL, 10),
        .time = g_ascii_strtoll(vals[1], NULL, 10),
        .actor = vals[2],
        .user = vals[3],
        .action = vals[4],
        .object = vals[5],
        .detail = vals[6],
    };
    l->cb(l->ud, &r);
}

int my_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb, void *ud)
{
    struct mystore *s = instance;
    if (!mut_audit_query_ok(q) || !cb)
        return HPF_ERR_INVALID;
    struct my_param p[] = {MY_N(q->before), MY_N(q->before), MY_S(q->actor), MY_S(q->actor),
                           MY_S(q->user),   MY_S(q->user),   MY_N(q->limit)};
    struct listing l = {cb, ud};
    if (!my_exec(s,
                 "SELECT id, time, actor, subject, action, object, detail FROM hpf_audit "
                 "WHERE (? <= 0 OR id < ?) AND (? IS NULL OR actor = ?) "
                 "AND (? IS NULL OR subject = ?) ORDER BY id DESC LIMIT ?",
                 p, G_N_ELEMENTS(p), row, &l, NULL))
        return my_trouble(s, "reading the audit trail");
    my_healthy(s);
    return HPF_OK;
}
