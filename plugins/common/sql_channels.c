/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * JSON channel lists of SQL-stored authkeys, read and written with
 * json-glib; see sql_channels.h.
 */
#include "sql_channels.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "json_nul.h"

static gboolean blank(const char *s)
{
    for (; *s; s++)
        if (!g_ascii_isspace(*s))
            return FALSE;
    return TRUE;
}

const char *sql_channels_parse(const char *json, GPtrArray *out)
{
    if (!json || blank(json))
        return NULL;
    /* json-glib would cut the name at the NUL: refuse the list (grants nothing). */
    if (json_text_has_nul(json, -1))
        return "a channel name holds a NUL (\\u0000)";
    JsonParser *parser = json_parser_new_immutable();
    const char *why = NULL;
    if (!json_parser_load_from_data(parser, json, -1, NULL)) {
        why = "not valid JSON";
        goto out;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || JSON_NODE_HOLDS_NULL(root))
        goto out;
    if (!JSON_NODE_HOLDS_ARRAY(root)) {
        why = "not a JSON array";
        goto out;
    }
    JsonArray *array = json_node_get_array(root);
    guint n = json_array_get_length(array);
    for (guint i = 0; i < n; i++) {
        JsonNode *item = json_array_get_element(array, i);
        if (JSON_NODE_HOLDS_VALUE(item) && json_node_get_value_type(item) == G_TYPE_STRING)
            g_ptr_array_add(out, g_strdup(json_node_get_string(item)));
        else
            why = "an item is not a string";
    }
out:
    g_object_unref(parser);
    return why;
}

char *sql_channels_format(const char *const *chans, size_t n)
{
    JsonArray *array = json_array_sized_new((guint)n);
    for (size_t i = 0; i < n; i++)
        json_array_add_string_element(array, chans[i] ? chans[i] : "");
    JsonNode *root = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(root, array);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_root(gen, root);
    char *text = json_generator_to_data(gen, NULL);
    g_object_unref(gen);
    json_node_unref(root);
    return text;
}
