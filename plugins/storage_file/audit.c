/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_file's audit trail: an "audit" list in hpfriends' section of the
 * file, oldest first, each entry {"id", "time", "actor", "user", "action",
 * "object", "detail"}.  A record is appended by the same locked
 * read-apply-rename as the change it describes, so both reach the disk in
 * one rename or neither does; the oldest entries beyond the record's bound
 * are dropped in that same write.  The list is checked once when the file
 * is read, so a listing can trust it.
 */
#include "file_store.h"

#include "../common/mutation_check.h"

#include <string.h>

static gboolean is_int(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

static gboolean is_text(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING;
}

/* NULL when entry i is a record audit_list() can report; else why not. */
static const char *entry_problem(JsonArray *a, guint i, gint64 *last_id)
{
    JsonNode *e = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(e))
        return "is not an object";
    JsonObject *o = json_node_get_object(e);
    JsonNode *id = json_object_get_member(o, "id");
    if (!is_int(id) || json_node_get_int(id) <= *last_id)
        return "has no \"id\" above the one before it";
    *last_id = json_node_get_int(id);
    if (!is_int(json_object_get_member(o, "time")))
        return "has no \"time\"";
    static const char *const texts[] = {"actor", "user", "action", "object", "detail"};
    for (gsize k = 0; k < G_N_ELEMENTS(texts); k++)
        if (!is_text(json_object_get_member(o, texts[k])))
            return "lacks a text member (actor, user, action, object, detail)";
    return NULL;
}

gboolean fs_audit_load(struct fs_state *st, JsonNode *node, char *why, size_t why_len)
{
    if (!node || JSON_NODE_HOLDS_NULL(node))
        return TRUE;
    if (!JSON_NODE_HOLDS_ARRAY(node)) {
        g_snprintf(why, why_len, "\"audit\" is not a list");
        return FALSE;
    }
    JsonArray *a = json_node_get_array(node);
    gint64 last = 0;
    for (guint i = 0; i < json_array_get_length(a); i++) {
        const char *problem = entry_problem(a, i, &last);
        if (problem) {
            g_snprintf(why, why_len, "audit[%u] %s", i, problem);
            return FALSE;
        }
    }
    st->audit = json_array_ref(a);
    return TRUE;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

void fs_audit_append(struct fs_state *st, const struct hpf_mutation *m)
{
    if (!st->audit)
        st->audit = json_array_new();
    guint n = json_array_get_length(st->audit);
    gint64 id = 1;
    if (n > 0)
        id = json_object_get_int_member(json_array_get_object_element(st->audit, n - 1), "id") + 1;
    const struct hpf_audit_record *r = m->audit;
    JsonObject *o = json_object_new();
    json_object_set_int_member(o, "id", id);
    json_object_set_int_member(o, "time", r->time);
    json_object_set_string_member(o, "actor", r->actor);
    json_object_set_string_member(o, "user", or_empty(r->user));
    json_object_set_string_member(o, "action", r->action);
    json_object_set_string_member(o, "object", or_empty(r->object));
    json_object_set_string_member(o, "detail", or_empty(r->detail));
    json_array_add_object_element(st->audit, o);
    guint keep = mut_audit_keep(m);
    while (json_array_get_length(st->audit) > keep)
        json_array_remove_element(st->audit, 0);
}

void fs_audit_serialize(JsonBuilder *b, const struct fs_state *st)
{
    if (!st->audit)
        return;
    json_builder_set_member_name(b, "audit");
    json_builder_add_value(b, json_node_init_array(json_node_alloc(), st->audit));
}

static gboolean matches(JsonObject *o, const struct hpf_audit_query *q)
{
    if (q->before > 0 && json_object_get_int_member(o, "id") >= q->before)
        return FALSE;
    if (q->actor && strcmp(json_object_get_string_member(o, "actor"), q->actor))
        return FALSE;
    return !q->user || !strcmp(json_object_get_string_member(o, "user"), q->user);
}

void fs_audit_list(const struct fs_state *st, const struct hpf_audit_query *q, hpf_audit_cb cb,
                   void *ud)
{
    uint32_t sent = 0;
    for (guint i = st->audit ? json_array_get_length(st->audit) : 0; i > 0 && sent < q->limit;
         i--) {
        JsonObject *o = json_array_get_object_element(st->audit, i - 1);
        if (!matches(o, q))
            continue;
        struct hpf_audit_record r = {
            .id = json_object_get_int_member(o, "id"),
            .time = json_object_get_int_member(o, "time"),
            .actor = json_object_get_string_member(o, "actor"),
            .user = json_object_get_string_member(o, "user"),
            .action = json_object_get_string_member(o, "action"),
            .object = json_object_get_string_member(o, "object"),
            .detail = json_object_get_string_member(o, "detail"),
        };
        cb(ud, &r);
        sent++;
    }
}
