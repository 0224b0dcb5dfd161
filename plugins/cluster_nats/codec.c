/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cluster_nats's encoding of messages between nodes, apart from libnats:
 * channel names to NATS subjects and back, the percent-encoding of header
 * values, and the decoding of a received message's subject and headers.
 * Pure functions (no I/O, no libnats), shared by the plugin and by the
 * fuzz target tests/fuzz/fuzz_nats_codec.c.  cluster_nats.c's opening
 * comment describes the formats.
 */
#include "codec.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

char *cnats_subject_for(const char *prefix, const char *chan)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(chan), pl = strlen(prefix);
    char *s = g_malloc(pl + 2 + 2 * n + 1);
    memcpy(s, prefix, pl);
    s[pl] = '.';
    s[pl + 1] = 'x';
    char *p = s + pl + 2;
    for (size_t i = 0; i < n; i++) {
        *p++ = hex[(uint8_t)chan[i] >> 4];
        *p++ = hex[(uint8_t)chan[i] & 15];
    }
    *p = '\0';
    return s;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *cnats_channel_of(const char *prefix, const char *subject)
{
    size_t pl = strlen(prefix);
    if (strncmp(subject, prefix, pl) || subject[pl] != '.' || subject[pl + 1] != 'x')
        return NULL;
    const char *h = subject + pl + 2;
    size_t n = strlen(h);
    if (n % 2)
        return NULL;
    char *chan = g_malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        /* A NUL byte cannot come from a channel name the broker accepted. */
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            g_free(chan);
            return NULL;
        }
        chan[i] = (char)(hi << 4 | lo);
    }
    chan[n / 2] = '\0';
    return chan;
}

char *cnats_pct_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    GString *out = g_string_sized_new(strlen(s) + 8);
    for (const uint8_t *p = (const uint8_t *)s; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '%')
            g_string_append_printf(out, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
        else
            g_string_append_c(out, (char)*p);
    }
    return g_string_free(out, FALSE);
}

static int hexval_any(char c)
{
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return hexval(c);
}

char *cnats_pct_decode(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return NULL;
    char *out = g_malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval_any(s[i + 1]) : -1;
        int lo = hi >= 0 ? hexval_any(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            g_free(out);
            return NULL;
        }
        *o++ = (char)(hi << 4 | lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

bool cnats_valid_prefix(const char *p)
{
    if (!*p || *p == '.' || p[strlen(p) - 1] == '.' || strstr(p, ".."))
        return false;
    for (; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
            return false;
    return true;
}

const char *cnats_decode(const char *prefix, const char *subject, const char *ident_h,
                         const char *owner_h, struct cnats_in *out)
{
    memset(out, 0, sizeof *out);
    out->channel = cnats_channel_of(prefix, subject);
    if (!out->channel)
        return "subject is not a channel subject";
    if (!ident_h || !owner_h)
        return "no " CNATS_HDR_IDENT " or " CNATS_HDR_OWNER " header";
    if (!(out->ident = cnats_pct_decode(ident_h)) || !(out->owner = cnats_pct_decode(owner_h)))
        return "bad " CNATS_HDR_IDENT " or " CNATS_HDR_OWNER " header";
    return NULL;
}

void cnats_in_clear(struct cnats_in *in)
{
    g_free(in->channel);
    g_free(in->ident);
    g_free(in->owner);
    memset(in, 0, sizeof *in);
}
