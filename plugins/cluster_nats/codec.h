/* SPDX-License-Identifier: BSD-3-Clause */
/* cluster_nats's encoding of messages between nodes (codec.c): pure, no libnats. */
#ifndef HPF_CLUSTER_NATS_CODEC_H
#define HPF_CLUSTER_NATS_CODEC_H

#include <stdbool.h>

#define CNATS_HDR_IDENT "Hpf-Ident"
#define CNATS_HDR_OWNER "Hpf-Owner"

/* "<prefix>.x<hex(chan)>" (g_free it). */
char *cnats_subject_for(const char *prefix, const char *chan);
/* The channel of a subject of ours, or NULL when it is not one. */
char *cnats_channel_of(const char *prefix, const char *subject);
/* Every byte outside '!'..'~', and '%', as %XX. */
char *cnats_pct_encode(const char *s);
/* NULL when s is not a well-formed encoding of a NUL-free, non-empty string. */
char *cnats_pct_decode(const char *s);
/* A subject prefix: '.'-separated non-empty tokens of [A-Za-z0-9_-]. */
bool cnats_valid_prefix(const char *p);

/* What a received message carries, decoded (each NULL until decoded). */
struct cnats_in {
    char *channel, *ident, *owner;
};

/*
 * Decode a received message's subject and its Hpf-Ident and Hpf-Owner
 * header values (NULL: the header is absent).  Returns NULL when all of it
 * decoded, else why the message is to be dropped; either way *out holds
 * what decoded, for cnats_in_clear().
 */
const char *cnats_decode(const char *prefix, const char *subject, const char *ident_h,
                         const char *owner_h, struct cnats_in *out);
void cnats_in_clear(struct cnats_in *in);

#endif
