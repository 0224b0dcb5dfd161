/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file hpfriends/names.h
 * @brief The one rule for every name (user, group, authkey ident,
 *        channel) and secret that may be stored.
 *
 * Stored names travel far: into JSON files that must stay valid UTF-8, into
 * the console's pages, into an administrator's terminal, into exports that
 * must import again.  So every front end (hpfriendsctl, the web console,
 * import) and every storage plugin's mutation check applies the same rule:
 *
 *  - at least 1 and at most `max` bytes (HPF_NAME_MAX for names,
 *    HPF_SECRET_MAX for secrets);
 *  - valid UTF-8: no truncated or overlong sequences, no surrogates
 *    (U+D800-U+DFFF), nothing past U+10FFFF;
 *  - no control characters: C0 (U+0000-U+001F), DEL (U+007F) and C1
 *    (U+0080-U+009F);
 *  - no invisible or direction-changing format characters, which make one
 *    name look like another or reorder what is shown around it (in the
 *    console, a terminal, a log): the bidirectional marks, embeddings,
 *    overrides and isolates (U+061C, U+200E, U+200F, U+202A-U+202E,
 *    U+2066-U+2069), the zero-width characters (U+200B-U+200D, U+2060-U+2064,
 *    U+FEFF) and the line and paragraph separators (U+2028, U+2029), which
 *    end a line in JavaScript and some terminals;
 *  - no Unicode non-characters (U+FDD0-U+FDEF, and U+FFFE and U+FFFF of
 *    every plane).
 *
 * The broker escapes the same code points (and invalid UTF-8) wherever it
 * echoes what a client sent (logs, ERROR texts, the console).
 *
 * A new user or group name also passes hpf_principal_name_check(): it may
 * not start with '@', which marks a group wherever a share target is written.
 *
 * Front ends may add rules of their own on top (hpfriendsctl and the
 * console allow only [A-Za-z0-9._@-] in user and group names, no spaces or
 * commas in channels), never fewer.
 *
 * Header only (a static inline function), so a plugin needs nothing more
 * than this header to apply it.
 */
#ifndef HPFRIENDS_NAMES_H
#define HPFRIENDS_NAMES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest name in bytes: the hpfeeds wire gives an ident or channel a one-byte length. */
#define HPF_NAME_MAX         255
/** Longest secret in bytes. */
#define HPF_SECRET_MAX       1024
/** Most channels in an authkey's publish list, and in its subscribe list:
 * storage refuses a longer list, the broker refuses a session of a key that
 * has one (written by another tool). */
#define HPF_KEY_CHANNELS_MAX 4096

/**
 * Nonzero when a name may not hold code point cp (valid UTF-8 assumed):
 * 1 for a control character, 2 for an invisible or direction-changing
 * format character or a non-character.
 */
static inline int hpf_codepoint_refused(unsigned long cp)
{
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
        return 1;
    if (cp == 0x61c || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
        (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff)
        return 2;
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
        return 2;
    return 0;
}

/**
 * NULL when s is an acceptable name or secret of at most max bytes;
 * otherwise why not, as a phrase to follow the value's description
 * ("is empty", "is not valid UTF-8", ...).  s may be NULL (then "is empty").
 */
static inline const char *hpf_name_check(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    if (!p || !*p)
        return "is empty";
    while (p[i]) {
        if (i >= max)
            return "is too long";
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return "contains a control character";
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        if (!len)
            return "is not valid UTF-8";
        unsigned long cp = c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) /* also stops at the terminating NUL */
                return "is not valid UTF-8";
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return "is not valid UTF-8";
        if (hpf_codepoint_refused(cp) == 1)
            return "contains a control character";
        if (hpf_codepoint_refused(cp))
            return "contains an invisible or bidirectional formatting character, or a "
                   "non-character";
        i += len;
    }
    return i > max ? "is too long" : NULL;
}

/**
 * NULL when s may name a new user or group of at most max bytes; otherwise
 * why not, like hpf_name_check().  On top of that rule, s may not start with
 * '@': "@partners" means the group partners wherever a share target is
 * written, so a user "@partners" or a group "@x" (shown as "@@x") would be
 * taken for something else.  Only names being created are held to it: names
 * stored before the rule can still be used, renamed and deleted.
 */
static inline const char *hpf_principal_name_check(const char *s, size_t max)
{
    const char *why = hpf_name_check(s, max);
    if (!why && s[0] == '@')
        why = "starts with '@', which marks a group";
    return why;
}

#ifdef __cplusplus
}
#endif

#endif
