/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inserts of apply() sent in batches: rows collected as JSON objects per
 * table and inserted with json_populate_recordset(), a few hundred rows a
 * statement, instead of one round trip each (an import of 10,000 users and
 * keys is about 60,000 rows).  Still one parameter per statement, so no
 * value is ever spliced into SQL text; and the server converts each JSON
 * value to the column's own type, so an auth_keys made by hand with text
 * or jsonb lists takes the same rows as hpfeeds3's json ones.
 */
#include "pg_store.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* A statement carries at most this many rows, or about this much JSON. */
#define CHUNK_ROWS  500
#define CHUNK_BYTES (4 * 1024 * 1024)

static const struct {
    const char *sql;
    const char *kind;     /* for messages: "user 'bob'" */
    const char *name_col; /* the field that names a row in messages */
} tables[PB_N] = {
    [PB_USERS] = {"INSERT INTO hpf_users (name, admin, password) SELECT name, admin, password "
                  "FROM json_populate_recordset(NULL::hpf_users, $1)",
                  "user", "name"},
    [PB_GROUPS] = {"INSERT INTO hpf_groups (name, owner) SELECT name, owner "
                   "FROM json_populate_recordset(NULL::hpf_groups, $1)",
                   "group", "name"},
    [PB_MEMBERS] = {"INSERT INTO hpf_members (group_name, user_name) SELECT group_name, user_name "
                    "FROM json_populate_recordset(NULL::hpf_members, $1)",
                    "member of group", "group_name"},
    [PB_SHARES] = {"INSERT INTO hpf_shares (from_user, to_name, to_is_group, channel, type) "
                   "SELECT from_user, to_name, to_is_group, channel, type "
                   "FROM json_populate_recordset(NULL::hpf_shares, $1)",
                   "share on channel", "channel"},
    [PB_ACCEPTS] = {"INSERT INTO hpf_accepts (user_name, from_user, channel) "
                    "SELECT user_name, from_user, channel "
                    "FROM json_populate_recordset(NULL::hpf_accepts, $1)",
                    "acceptance on channel", "channel"},
    [PB_DECLINES] = {"INSERT INTO hpf_declines (user_name, from_user, channel) "
                     "SELECT user_name, from_user, channel "
                     "FROM json_populate_recordset(NULL::hpf_declines, $1)",
                     "decline on channel", "channel"},
    /* in the batch's order, so that ids follow the order of the keys */
    [PB_KEYS] = {"INSERT INTO auth_keys (identifier, secret, publish, subscribe) "
                 "SELECT r.identifier, r.secret, r.publish, r.subscribe "
                 "FROM json_populate_recordset(NULL::auth_keys, $1) WITH ORDINALITY AS r "
                 "ORDER BY r.ordinality",
                 "authkey", "identifier"},
    /* an owner row left by a hand-deleted key of the same identifier is replaced */
    [PB_OWNERS] = {"INSERT INTO hpf_key_owners (identifier, owner) SELECT identifier, owner "
                   "FROM json_populate_recordset(NULL::hpf_key_owners, $1) "
                   "ON CONFLICT (identifier) DO UPDATE SET owner = excluded.owner",
                   "owner of authkey", "identifier"},
};

void pg_batch_init(struct pg_batch *b)
{
    for (int t = 0; t < PB_N; t++) {
        b->rows[t] = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
        b->bytes[t] = g_array_new(FALSE, FALSE, sizeof(size_t));
    }
}

void pg_batch_clear(struct pg_batch *b)
{
    for (int t = 0; t < PB_N; t++) {
        g_ptr_array_unref(b->rows[t]);
        g_array_unref(b->bytes[t]);
    }
}

JsonObject *pg_batch_row(struct pg_batch *b, enum pg_btable t, size_t bytes)
{
    JsonObject *o = json_object_new();
    g_ptr_array_add(b->rows[t], o);
    g_array_append_val(b->bytes[t], bytes);
    return o;
}

/* Rows [from, to) of table t as one JSON array text; g_free() it. */
static char *chunk_text(struct pg_batch *b, enum pg_btable t, guint from, guint to)
{
    JsonArray *a = json_array_sized_new(to - from);
    for (guint i = from; i < to; i++)
        json_array_add_object_element(a, json_object_ref(b->rows[t]->pdata[i]));
    JsonNode *root = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(root, a);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_root(gen, root);
    char *text = json_generator_to_data(gen, NULL);
    g_object_unref(gen);
    json_node_unref(root);
    return text;
}

static void name_chunk(struct pg_batch *b, enum pg_btable t, guint from, guint to, char *what,
                       size_t what_len)
{
    const char *name =
        json_object_get_string_member_with_default(b->rows[t]->pdata[from], tables[t].name_col, "");
    if (to - from == 1)
        g_snprintf(what, what_len, "%s '%.200s'", tables[t].kind, name);
    else
        g_snprintf(what, what_len, "%u rows (%s '%.200s' and on)", to - from, tables[t].kind, name);
}

bool pg_batch_flush(struct pstore *s, struct pg_batch *b, struct pg_fail *f, char *what,
                    size_t what_len)
{
    for (int t = 0; t < PB_N; t++) {
        guint n = b->rows[t]->len;
        for (guint from = 0; from < n;) {
            guint to = from;
            size_t bytes = 0;
            while (to < n && to - from < CHUNK_ROWS && (to == from || bytes < CHUNK_BYTES))
                bytes += g_array_index(b->bytes[t], size_t, to++);
            char *text = chunk_text(b, t, from, to);
            const char *params[] = {text};
            bool ok = pg_run(s, tables[t].sql, 1, params, f);
            g_free(text);
            if (!ok) {
                name_chunk(b, t, from, to, what, what_len);
                return false;
            }
            from = to;
        }
    }
    return true;
}
