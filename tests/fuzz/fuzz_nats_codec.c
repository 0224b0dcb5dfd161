/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_nats_codec: how cluster_nats decodes the messages other nodes send
 * (plugins/cluster_nats/codec.c, the code on_message() runs on every
 * received message: the subject back to a channel, the percent-encoded
 * Hpf-Ident and Hpf-Owner header values back to strings), without a NATS
 * server.  libnats's own parsing of the wire (the header block) is not
 * ours and not fuzzed here.
 *
 * Input: NUL-separated fields: subject, Hpf-Ident value, Hpf-Owner value
 * (a missing field is an absent header), the rest ignored (the payload is
 * handed on as it is).  Checked, against the prefix "hpfriends":
 *  - a message that decodes re-encodes to the very subject, and its ident
 *    and owner are non-empty and encode to values that decode to them;
 *  - every field, taken as a channel, an ident or a prefix, goes through
 *    encode then decode unchanged (channel names without NUL bytes: the
 *    broker never accepts one).
 */
#include <string.h>

#include "../../plugins/cluster_nats/codec.h"
#include "fuzz_common.h"

#define PREFIX "hpfriends"

static void check_roundtrip(const char *field)
{
    char *subject = cnats_subject_for(PREFIX, field);
    char *back = cnats_channel_of(PREFIX, subject);
    FUZZ_CHECK(back && !strcmp(back, field), "channel '%s' did not come back", field);
    g_free(back);
    g_free(subject);
    if (*field) {
        char *enc = cnats_pct_encode(field);
        for (const char *p = enc; *p; p++)
            FUZZ_CHECK(*p >= '!' && *p <= '~', "encoded byte %#x", (unsigned)(guint8)*p);
        char *dec = cnats_pct_decode(enc);
        FUZZ_CHECK(dec && !strcmp(dec, field), "header value '%s' did not come back", field);
        g_free(dec);
        g_free(enc);
    }
    if (cnats_valid_prefix(field)) {
        char *s = cnats_subject_for(field, "c");
        char *c = cnats_channel_of(field, s);
        FUZZ_CHECK(c && !strcmp(c, "c"), "prefix '%s' does not work", field);
        g_free(c);
        g_free(s);
    }
}

static void check_decoded(const char *subject, const struct cnats_in *in)
{
    FUZZ_CHECK(in->channel && in->ident && in->owner, "decoded, but a part is missing");
    if (!in->channel || !in->ident || !in->owner)
        return;
    char *again = cnats_subject_for(PREFIX, in->channel);
    FUZZ_CHECK(!strcmp(again, subject), "subject %s decoded to a channel that encodes to %s",
               subject, again);
    g_free(again);
    FUZZ_CHECK(*in->ident && *in->owner, "empty ident or owner decoded");
    const char *parts[] = {in->ident, in->owner};
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
        char *enc = cnats_pct_encode(parts[i]);
        char *dec = cnats_pct_decode(enc);
        FUZZ_CHECK(dec && !strcmp(dec, parts[i]), "'%s' does not survive re-encoding", parts[i]);
        g_free(dec);
        g_free(enc);
    }
}

int fuzz_nats_codec_one(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    const char *fields[3] = {NULL, NULL, NULL};
    const char *p = text, *end = text + size;
    for (int i = 0; i < 3 && p <= end; i++) {
        fields[i] = p;
        p += strlen(p) + 1;
    }
    if (fields[0]) {
        struct cnats_in in;
        const char *why = cnats_decode(PREFIX, fields[0], fields[1], fields[2], &in);
        if (!why)
            check_decoded(fields[0], &in);
        else
            FUZZ_CHECK(!in.ident || !in.owner, "refused (%s) though everything decoded", why);
        cnats_in_clear(&in);
    }
    for (int i = 0; i < 3; i++)
        if (fields[i])
            check_roundtrip(fields[i]);
    g_free(text);
    return 0;
}

void fuzz_nats_codec_init(void) { fuzz_setup(); }

#ifndef FUZZ_REPLAY
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_nats_codec_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_nats_codec_one(data, size);
}
#endif
