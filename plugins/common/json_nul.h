/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Does a JSON text spell a NUL character (the escape \u0000)?  json-glib
 * keeps strings as C strings and so cuts such a string at the NUL: a stored
 * channel "sensor\u0000.private" would be read as "sensor", a wider grant
 * than the text says.  The storage plugins that read JSON written by other
 * tools (hpfeeds3's channel lists, its users.json) refuse such text first.
 */
#ifndef HPF_PLUGINS_COMMON_JSON_NUL_H
#define HPF_PLUGINS_COMMON_JSON_NUL_H

#include <glib.h>
#include <string.h>

/* TRUE when text (len bytes, or up to its NUL when len < 0) holds \u0000
 * outside an escaped backslash ("\\u0000" is a backslash and "u0000"). */
static inline gboolean json_text_has_nul(const char *text, gssize len)
{
    gsize n = len < 0 ? strlen(text) : (gsize)len;
    for (gsize i = 0; i + 1 < n; i++) {
        if (text[i] != '\\')
            continue;
        if (text[i + 1] == 'u' && i + 5 < n && text[i + 2] == '0' && text[i + 3] == '0' &&
            text[i + 4] == '0' && text[i + 5] == '0')
            return TRUE;
        i++; /* the escaped character, whatever it is */
    }
    return FALSE;
}

#endif
