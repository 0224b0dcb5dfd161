/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small json-glib helpers shared by the console's API and hpfriendsctl's
 * export/import, so both write string lists, read typed members and parse
 * untrusted text (strictly) the same way; see jsonutil.h.
 */
#include "jsonutil.h"

#include <string.h>

void jsonutil_add_str(JsonBuilder *b, const char *key, const char *v)
{
    json_builder_set_member_name(b, key);
    if (v)
        json_builder_add_string_value(b, v);
    else
        json_builder_add_null_value(b);
}

void jsonutil_add_strv(JsonBuilder *b, const char *key, const GPtrArray *a)
{
    json_builder_set_member_name(b, key);
    json_builder_begin_array(b);
    for (guint i = 0; a && i < a->len; i++)
        json_builder_add_string_value(b, a->pdata[i]);
    json_builder_end_array(b);
}

void jsonutil_add_bool(JsonBuilder *b, const char *key, gboolean v)
{
    json_builder_set_member_name(b, key);
    json_builder_add_boolean_value(b, v);
}

/* The member key of o when it is a plain value of type t, else NULL. */
static JsonNode *value_of(JsonObject *o, const char *key, GType t)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != t)
        return NULL;
    return n;
}

const char *jsonutil_get_str(JsonObject *o, const char *key)
{
    JsonNode *n = value_of(o, key, G_TYPE_STRING);
    return n ? json_node_get_string(n) : NULL;
}

gint64 jsonutil_get_int(JsonObject *o, const char *key)
{
    JsonNode *n = value_of(o, key, G_TYPE_INT64);
    return n ? json_node_get_int(n) : -1;
}

int jsonutil_get_bool(JsonObject *o, const char *key)
{
    if (!json_object_has_member(o, key))
        return FALSE;
    JsonNode *n = value_of(o, key, G_TYPE_BOOLEAN);
    return n ? json_node_get_boolean(n) : -1;
}

char *jsonutil_to_text(JsonNode *root, gboolean pretty)
{
    JsonGenerator *gen = json_generator_new();
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, pretty);
    json_generator_set_indent(gen, 2);
    char *text = json_generator_to_data(gen, NULL);
    g_object_unref(gen);
    if (!pretty)
        return text;
    char *out = g_strconcat(text, "\n", NULL);
    g_free(text);
    return out;
}

/*
 * json-glib parses recursively, without a depth limit, and also takes a
 * syntax wider than JSON ('...' strings, comments) in which brackets do
 * not nest; it also stops at the end of the first value and ignores what
 * follows ("{..}{..}" reads as the first object).  Refuse, before it sees
 * the text, anything outside strict JSON's bytes, any nesting deeper than
 * max and a second value after the first, so no input can run the stack
 * out or mean two things.  NULL when the text may be parsed.
 */
const char *jsonutil_prescan(const char *text, size_t len, guint max)
{
    guint depth = 0;
    gboolean in_string = FALSE;
    gboolean done = FALSE;    /* a whole top-level value has been read */
    gboolean literal = FALSE; /* inside a top-level number or literal */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (in_string) {
            if (c < 0x20)
                return "bad JSON: control character in a string";
            if (c == '\\') {
                /* json-glib would keep a \u0000 as a NUL that cuts the
                 * string short: "jojo\u0000x" must not pass as "jojo". */
                if (len - i > 5 && !memcmp(text + i + 1, "u0000", 5))
                    return "bad JSON: NUL character (\\u0000) in a string";
                i++;
            } else if (c == '"') {
                in_string = FALSE;
                done = depth == 0;
            }
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            done = done || literal;
            literal = FALSE;
            continue;
        }
        if (!strchr("\"[]{},:-+.0123456789eEtrufalsn", c) || c == 0)
            return "bad JSON: only strict JSON is accepted (no comments, no '...' strings)";
        if (done || (literal && strchr("\"[{", c)))
            return "bad JSON: more than one value (send one JSON object)";
        if (c == '"') {
            in_string = TRUE;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return "bad JSON: nested too deeply";
        } else if ((c == ']' || c == '}') && depth) {
            done = --depth == 0;
        } else {
            literal = depth == 0;
        }
    }
    return NULL;
}

/* Members seen per object, against what the object kept: fewer kept means a key came twice. */
struct dup_watch {
    GHashTable *seen; /* JsonObject * -> members read */
    gboolean dup;
};

static void on_member(JsonParser *p, JsonObject *o, const char *name, gpointer ud)
{
    struct dup_watch *w = ud;
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(w->seen, o)) + 1;
    g_hash_table_insert(w->seen, o, GUINT_TO_POINTER(n));
}

static void on_object_end(JsonParser *p, JsonObject *o, gpointer ud)
{
    struct dup_watch *w = ud;
    if (GPOINTER_TO_UINT(g_hash_table_lookup(w->seen, o)) > json_object_get_size(o))
        w->dup = TRUE;
    g_hash_table_remove(w->seen, o);
}

JsonNode *jsonutil_parse(const char *text, size_t len, guint max, char **why)
{
    const char *bad = jsonutil_prescan(text, len, max);
    if (bad) {
        *why = g_strdup(bad);
        return NULL;
    }
    JsonParser *p = json_parser_new();
    struct dup_watch w = {g_hash_table_new(g_direct_hash, g_direct_equal), FALSE};
    g_signal_connect(p, "object-member", G_CALLBACK(on_member), &w);
    g_signal_connect(p, "object-end", G_CALLBACK(on_object_end), &w);
    GError *e = NULL;
    JsonNode *out = NULL;
    if (!json_parser_load_from_data(p, text, (gssize)len, &e)) {
        *why = g_strdup_printf("bad JSON: %s", e->message);
        g_error_free(e);
    } else if (w.dup) {
        /* json-glib keeps the last of two: which one the sender meant is a guess. */
        *why = g_strdup("bad JSON: a key appears twice in one object");
    } else if (!json_parser_get_root(p)) {
        *why = g_strdup("bad JSON: empty document");
    } else {
        out = json_node_copy(json_parser_get_root(p));
    }
    g_hash_table_unref(w.seen);
    g_object_unref(p);
    return out;
}
