/* SPDX-License-Identifier: BSD-3-Clause */
/* hpfriendsd --list-config-keys (keys.c). */
#ifndef HPF_KEYS_H
#define HPF_KEYS_H

/**
 * Print every config key the parsers accept and those of each plugin in
 * plugin_dir; returns the exit status (1 when a module there is no plugin).
 */
int keys_print(const char *plugin_dir);

#endif
