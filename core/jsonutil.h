/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small json-glib helpers shared by the console's API (core/web/api.c) and
 * hpfriendsctl's export/import (core/ctl/export.c): typed members out of a
 * JsonObject, the few builder calls both repeat, and the strict parse of
 * untrusted text (no nesting too deep for json-glib's recursive parser, one
 * value, each key once).
 */
#ifndef HPF_JSONUTIL_H
#define HPF_JSONUTIL_H

#include <glib.h>
#include <json-glib/json-glib.h>

/** "key": v, or "key": null when v is NULL. */
void jsonutil_add_str(JsonBuilder *b, const char *key, const char *v);
/** "key": [the strings of a, in order]. */
void jsonutil_add_strv(JsonBuilder *b, const char *key, const GPtrArray *a);
void jsonutil_add_bool(JsonBuilder *b, const char *key, gboolean v);

/** The string member key of o, or NULL when absent or not a string. */
const char *jsonutil_get_str(JsonObject *o, const char *key);
/** The integer member key of o, or -1 when absent or not an integer. */
gint64 jsonutil_get_int(JsonObject *o, const char *key);
/** TRUE or FALSE; FALSE when absent; -1 when present but not a boolean. */
int jsonutil_get_bool(JsonObject *o, const char *key);

/**
 * Before json-glib parses untrusted text: NULL when it may, else why not
 * (syntax outside strict JSON, nesting deeper than max, or a second value
 * after the first).
 */
const char *jsonutil_prescan(const char *text, size_t len, guint max);

/**
 * Untrusted text to a document (caller unrefs): jsonutil_prescan() first,
 * then json-glib, and an object with a key twice is refused too.  NULL with
 * *why set (caller frees, "bad JSON: ...") when the text is not exactly one
 * strict JSON value.
 */
JsonNode *jsonutil_parse(const char *text, size_t len, guint max, char **why);

/** The document as text (caller frees); pretty: two-space indent and a final newline. */
char *jsonutil_to_text(JsonNode *root, gboolean pretty);

#endif
