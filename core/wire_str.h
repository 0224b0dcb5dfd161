/* SPDX-License-Identifier: BSD-3-Clause */
/* Turning wire strings into C strings safely. */
#ifndef HPF_WIRE_STR_H
#define HPF_WIRE_STR_H

#include <glib.h>
#include <string.h>

#include "wire.h"

/**
 * A NUL-terminated copy of s, or NULL when s contains a NUL byte (which a
 * C string would silently cut short: "alice\0x" must never pass as
 * "alice").
 */
static inline char *wire_str_dup(struct wire_str s)
{
    if (s.len && memchr(s.ptr, 0, s.len))
        return NULL;
    return g_strndup((const char *)s.ptr, s.len);
}

static inline gboolean wire_str_equal(struct wire_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

#endif
