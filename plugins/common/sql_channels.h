/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Channel lists as SQL servers hold them for hpfeeds3: a JSON array of
 * strings in a text or json column (auth_keys.publish and .subscribe).
 *
 * Compiled into the SQL storage plugins (storage_postgresql; usable by any
 * other that stores hpfeeds3's auth_keys).  No I/O, no logging: the caller
 * decides how to report a list it cannot read.
 */
#ifndef HPF_PLUGINS_SQL_CHANNELS_H
#define HPF_PLUGINS_SQL_CHANNELS_H

#include <stddef.h>

#include <glib.h>

/*
 * Append the strings of the JSON array `json` to `out` (char *, owned).
 * NULL, blank text and JSON null are an empty list.  Returns NULL when all
 * was read, else a static reason ("not a JSON array", ...): what could not
 * be read grants nothing and is left out.
 */
const char *sql_channels_parse(const char *json, GPtrArray *out);

/* The JSON text of a channel list; g_free() it. */
char *sql_channels_format(const char *const *chans, size_t n);

#endif
