/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small json-glib helpers shared by the console's API and hpfriendsctl's
 * export/import, so both write string lists and read typed members the
 * same way; see jsonutil.h.
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
 * not nest.  Refuse, before it sees the text, anything outside strict
 * JSON's bytes and any nesting deeper than max, so no input can run the
 * stack out.  NULL when the text may be parsed.
 */
const char *jsonutil_prescan(const char *text, size_t len, guint max)
{
    guint depth = 0;
    gboolean in_string = FALSE;
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
            } else if (c == '"')
                in_string = FALSE;
        } else if (c == '"') {
            in_string = TRUE;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return "bad JSON: nested too deeply";
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        } else if (!strchr(" \t\r\n]},:-+.0123456789eEtrufalsn", c) || c == 0) {
            return "bad JSON: only strict JSON is accepted (no comments, no '...' strings)";
        }
    }
    return NULL;
}
