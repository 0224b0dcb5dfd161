/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_wire: the hpfeeds frame codec (core/wire.c).
 *
 * Input: byte 0 picks max_frame; bytes 1.. are a stream of frames, decoded
 * frame after frame the way conn.c does it (the 5 header bytes first, so a
 * bad length or opcode is refused before the body arrives, then the whole
 * frame).  Every frame decoded must lie inside the input, re-encode to the
 * very same bytes, and decode the same way from any buffer holding it.
 * The same input bytes then drive every encoder (lengths and contents
 * taken from them) and decode(encode(x)) must give x back.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "wire.h"

static const uint32_t max_frames[] = {
    WIRE_DEFAULT_MAX_FRAME,
    WIRE_HEADER_LEN,
    64,
    4096,
    10u * 1024 * 1024 + WIRE_HEADER_LEN,
    UINT32_MAX,
};

/* A field is unset (NULL, 0) or lies within the frame's payload. */
static gboolean field_ok(const uint8_t *frame, uint32_t flen, struct wire_str s)
{
    if (!s.ptr)
        return s.len == 0;
    return s.ptr >= frame + WIRE_HEADER_LEN && s.ptr <= frame + flen &&
           s.len <= (size_t)(frame + flen - s.ptr);
}

static gboolean str_eq(struct wire_str s, const void *p, size_t n)
{
    return s.len == n && (n == 0 || memcmp(s.ptr, p, n) == 0);
}

/* Encode m with the encoder of its opcode into out (NULL: measure). */
static size_t encode_msg(const struct wire_msg *m, uint8_t *out, size_t cap)
{
    switch (m->op) {
    case WIRE_OP_ERROR:
        return wire_encode_error(out, cap, (const char *)m->data.ptr, m->data.len);
    case WIRE_OP_INFO:
        return wire_encode_info(out, cap, (const char *)m->name.ptr, m->name.len, m->data.ptr,
                                m->data.len);
    case WIRE_OP_AUTH:
        /* The encoder takes exactly 20 hash bytes; other lengths have no encoding. */
        if (m->data.len != WIRE_HASH_LEN)
            return 0;
        return wire_encode_auth(out, cap, (const char *)m->name.ptr, m->name.len, m->data.ptr);
    case WIRE_OP_PUBLISH:
        return wire_encode_publish(out, cap, (const char *)m->name.ptr, m->name.len,
                                   (const char *)m->channel.ptr, m->channel.len, m->data.ptr,
                                   m->data.len);
    case WIRE_OP_SUBSCRIBE:
    case WIRE_OP_UNSUBSCRIBE:
        return wire_encode_sub(out, cap, m->op, (const char *)m->name.ptr, m->name.len,
                               (const char *)m->channel.ptr, m->channel.len);
    default:
        return 0;
    }
}

/* A decoded frame encodes back to the same bytes; a short buffer is left alone. */
static void check_reencode(const uint8_t *frame, const struct wire_msg *m)
{
    size_t measured = encode_msg(m, NULL, 0);
    if (m->op == WIRE_OP_AUTH && m->data.len != WIRE_HASH_LEN) {
        FUZZ_CHECK(measured == 0, "AUTH with a %zu-byte hash encoded", m->data.len);
        return;
    }
    FUZZ_CHECK(measured == m->frame_len, "%s: measured %zu, decoded frame is %u bytes",
               wire_op_name(m->op), measured, m->frame_len);
    uint8_t *out = g_malloc(m->frame_len);
    memset(out, 0xa5, m->frame_len);
    size_t n = encode_msg(m, out, m->frame_len - 1);
    FUZZ_CHECK(n == m->frame_len, "%s: short buffer: returned %zu", wire_op_name(m->op), n);
    for (uint32_t i = 0; i < m->frame_len; i++)
        if (out[i] != 0xa5) {
            FUZZ_CHECK(out[i] == 0xa5, "%s: encoder wrote byte %u into a buffer too short",
                       wire_op_name(m->op), i);
            break;
        }
    n = encode_msg(m, out, m->frame_len);
    FUZZ_CHECK(n == m->frame_len && memcmp(out, frame, m->frame_len) == 0,
               "%s: re-encoding gives other bytes (%zu bytes)", wire_op_name(m->op), n);
    g_free(out);
}

/* Same verdict, same fields (relative to the frame start). */
static void check_same(const struct wire_msg *a, const uint8_t *fa, const struct wire_msg *b,
                       const uint8_t *fb)
{
#define SAME_STR(f)                                                      \
    ((a->f.ptr == NULL) == (b->f.ptr == NULL) && a->f.len == b->f.len && \
     (!a->f.ptr || a->f.ptr - fa == b->f.ptr - fb))
    FUZZ_CHECK(a->op == b->op && a->frame_len == b->frame_len && SAME_STR(name) &&
                   SAME_STR(channel) && SAME_STR(data),
               "one frame decoded two ways");
#undef SAME_STR
}

/* One frame at p (avail bytes): returns its length, or 0 to stop. */
static size_t decode_one(const uint8_t *p, size_t avail, uint32_t max_frame)
{
    char hreason[128], reason[128];
    const char *herr = NULL, *err = NULL;
    struct wire_msg hm, m;

    /* conn.c: look at the header alone first. */
    size_t hl = avail < WIRE_HEADER_LEN ? avail : WIRE_HEADER_LEN;
    int hrc = wire_decode(p, hl, max_frame, &hm, hreason, sizeof hreason, &herr);
    int rc = wire_decode(p, avail, max_frame, &m, reason, sizeof reason, &err);
    FUZZ_CHECK(rc == WIRE_INVALID || rc == WIRE_NEED_MORE || rc == WIRE_FRAME, "rc %d", rc);
    FUZZ_CHECK(hrc == WIRE_INVALID || hrc == WIRE_NEED_MORE || hrc == WIRE_FRAME, "rc %d", hrc);

    if (hrc == WIRE_INVALID) {
        /* Refused on the header: the whole frame is refused, for the same reason. */
        FUZZ_CHECK(rc == WIRE_INVALID, "header refused (%s) but the frame gave %d",
                   herr ? herr : "?", rc);
        FUZZ_CHECK(herr && err && !strcmp(herr, err), "header: '%s', frame: '%s'",
                   herr ? herr : "(null)", err ? err : "(null)");
    }
    if (rc == WIRE_INVALID) {
        FUZZ_CHECK(err && *err, "WIRE_INVALID without a reason");
        if (err && err >= reason && err < reason + sizeof reason)
            FUZZ_CHECK(memchr(reason, 0, sizeof reason) != NULL, "reason not terminated");
        /* Without a reason buffer, or a tiny one, it still refuses. */
        FUZZ_CHECK(wire_decode(p, avail, max_frame, &m, NULL, 0, NULL) == WIRE_INVALID,
                   "verdict depends on the reason buffer");
        char tiny[8];
        const char *terr = NULL;
        size_t tl = 1 + (avail ? p[avail - 1] % sizeof tiny : 0);
        FUZZ_CHECK(wire_decode(p, avail, max_frame, &m, tiny, tl, &terr) == WIRE_INVALID,
                   "verdict depends on the reason buffer size");
        if (terr >= tiny && terr < tiny + sizeof tiny)
            FUZZ_CHECK(memchr(tiny, 0, tl) != NULL, "short reason not terminated");
        return 0;
    }
    if (rc == WIRE_NEED_MORE) {
        FUZZ_CHECK(avail < WIRE_HEADER_LEN || avail < wire_peek_length(p),
                   "NEED_MORE with %zu bytes for a %u-byte frame", avail,
                   avail >= 4 ? wire_peek_length(p) : 0);
        return 0;
    }

    /* A frame. */
    uint32_t flen = m.frame_len;
    FUZZ_CHECK(hrc != WIRE_INVALID, "frame decoded after its header was refused");
    FUZZ_CHECK(flen >= WIRE_HEADER_LEN && flen <= max_frame && flen <= avail,
               "frame_len %u (max %u, have %zu)", flen, max_frame, avail);
    if (flen < WIRE_HEADER_LEN || flen > avail)
        return 0;
    FUZZ_CHECK(flen == wire_peek_length(p), "frame_len %u, header says %u", flen,
               wire_peek_length(p));
    FUZZ_CHECK(m.op == p[4] && m.op <= WIRE_OP_UNSUBSCRIBE, "op %u from byte %u", m.op, p[4]);
    FUZZ_CHECK(field_ok(p, flen, m.name) && field_ok(p, flen, m.channel) &&
                   field_ok(p, flen, m.data),
               "a field of a %s frame points outside it", wire_op_name(m.op));
    FUZZ_CHECK(strcmp(wire_op_name(m.op), "unknown") != 0, "op %u has no name", m.op);

    /* The frame alone, in a buffer of its own size, decodes the same way. */
    uint8_t *copy = g_memdup2(p, flen);
    struct wire_msg m2;
    FUZZ_CHECK(wire_decode(copy, flen, max_frame, &m2, reason, sizeof reason, &err) == WIRE_FRAME,
               "frame does not decode alone");
    check_same(&m, p, &m2, copy);
    /* Any shorter prefix is not a frame yet (the length is already valid). */
    FUZZ_CHECK(wire_decode(copy, flen - 1, max_frame, &m2, reason, sizeof reason, &err) ==
                   WIRE_NEED_MORE,
               "prefix of %u bytes is not NEED_MORE", flen - 1);
    FUZZ_CHECK(wire_decode(copy, 4, max_frame, &m2, reason, sizeof reason, &err) == WIRE_NEED_MORE,
               "4-byte prefix is not NEED_MORE");
    g_free(copy);

    check_reencode(p, &m);
    return flen;
}

/* ---- encoders, driven by the input ---- */

struct taker {
    const uint8_t *p;
    size_t n, pos;
};

static uint8_t take_u8(struct taker *t)
{
    if (t->n == 0)
        return 0;
    uint8_t v = t->p[t->pos % t->n];
    t->pos++;
    return v;
}

/* A length from 0 to max, small ones likelier. */
static size_t take_len(struct taker *t, size_t max)
{
    size_t v = take_u8(t);
    if (v & 0x80)
        v = ((v & 0x7f) << 8) | take_u8(t);
    return v % (max + 1);
}

/* n bytes of content, cycling through the input. */
static uint8_t *take_bytes(struct taker *t, size_t n)
{
    uint8_t *b = g_malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        b[i] = take_u8(t);
    return b;
}

/* Encode (measure, then write), decode, and check what came back. */
static gboolean roundtrip(size_t measured, size_t written, const uint8_t *buf, uint8_t op,
                          struct wire_msg *m)
{
    FUZZ_CHECK(written == measured, "%s: measured %zu, wrote %zu", wire_op_name(op), measured,
               written);
    if (written != measured || measured == 0)
        return FALSE;
    const char *err = NULL;
    char reason[128];
    int rc = wire_decode(buf, written, UINT32_MAX, m, reason, sizeof reason, &err);
    FUZZ_CHECK(rc == WIRE_FRAME, "%s of %zu bytes does not decode: %s", wire_op_name(op), written,
               err ? err : "need more");
    if (rc != WIRE_FRAME)
        return FALSE;
    FUZZ_CHECK(m->op == op && m->frame_len == written, "%s decoded as %s of %u bytes",
               wire_op_name(op), wire_op_name(m->op), m->frame_len);
    return m->op == op;
}

static void check_encoders(const uint8_t *data, size_t size)
{
    struct taker t = {data, size, 0};
    struct wire_msg m;

    /* ERROR */
    size_t n1 = take_len(&t, 600);
    uint8_t *a = take_bytes(&t, n1);
    size_t len = wire_encode_error(NULL, 0, (const char *)a, n1);
    FUZZ_CHECK(len == WIRE_HEADER_LEN + n1, "ERROR length %zu for %zu bytes", len, n1);
    uint8_t *buf = g_malloc(len);
    if (roundtrip(len, wire_encode_error(buf, len, (const char *)a, n1), buf, WIRE_OP_ERROR, &m))
        FUZZ_CHECK(str_eq(m.data, a, n1), "ERROR text changed");
    g_free(buf);
    g_free(a);

    /* INFO */
    n1 = take_len(&t, 300);
    size_t n2 = take_len(&t, 40);
    a = take_bytes(&t, n1);
    uint8_t *b = take_bytes(&t, n2);
    len = wire_encode_info(NULL, 0, (const char *)a, n1, b, n2);
    if (n1 > WIRE_MAX_NAME) {
        FUZZ_CHECK(len == 0, "INFO with a %zu-byte name encoded", n1);
    } else {
        FUZZ_CHECK(len == WIRE_HEADER_LEN + 1 + n1 + n2, "INFO length %zu", len);
        buf = g_malloc(len);
        if (roundtrip(len, wire_encode_info(buf, len, (const char *)a, n1, b, n2), buf,
                      WIRE_OP_INFO, &m))
            FUZZ_CHECK(str_eq(m.name, a, n1) && str_eq(m.data, b, n2), "INFO fields changed");
        g_free(buf);
    }
    g_free(a);
    g_free(b);

    /* AUTH */
    n1 = take_len(&t, 300);
    a = take_bytes(&t, n1);
    b = take_bytes(&t, WIRE_HASH_LEN);
    len = wire_encode_auth(NULL, 0, (const char *)a, n1, b);
    if (n1 > WIRE_MAX_NAME) {
        FUZZ_CHECK(len == 0, "AUTH with a %zu-byte ident encoded", n1);
    } else {
        FUZZ_CHECK(len == WIRE_HEADER_LEN + 1 + n1 + WIRE_HASH_LEN, "AUTH length %zu", len);
        buf = g_malloc(len);
        if (roundtrip(len, wire_encode_auth(buf, len, (const char *)a, n1, b), buf, WIRE_OP_AUTH,
                      &m))
            FUZZ_CHECK(str_eq(m.name, a, n1) && str_eq(m.data, b, WIRE_HASH_LEN),
                       "AUTH fields changed");
        g_free(buf);
    }
    g_free(a);
    g_free(b);

    /* PUBLISH */
    n1 = take_len(&t, 300);
    n2 = take_len(&t, 300);
    size_t n3 = take_len(&t, 3000);
    a = take_bytes(&t, n1);
    b = take_bytes(&t, n2);
    uint8_t *c = take_bytes(&t, n3);
    len = wire_encode_publish(NULL, 0, (const char *)a, n1, (const char *)b, n2, c, n3);
    if (n1 > WIRE_MAX_NAME || n2 > WIRE_MAX_NAME) {
        FUZZ_CHECK(len == 0, "PUBLISH with %zu/%zu-byte names encoded", n1, n2);
    } else {
        FUZZ_CHECK(len == WIRE_HEADER_LEN + 2 + n1 + n2 + n3, "PUBLISH length %zu", len);
        buf = g_malloc(len);
        if (roundtrip(
                len, wire_encode_publish(buf, len, (const char *)a, n1, (const char *)b, n2, c, n3),
                buf, WIRE_OP_PUBLISH, &m))
            FUZZ_CHECK(str_eq(m.name, a, n1) && str_eq(m.channel, b, n2) && str_eq(m.data, c, n3),
                       "PUBLISH fields changed");
        g_free(buf);
    }
    g_free(a);
    g_free(b);
    g_free(c);

    /* SUBSCRIBE / UNSUBSCRIBE (and opcodes the encoder must refuse) */
    uint8_t op = take_u8(&t) % 8;
    n1 = take_len(&t, 300);
    n2 = take_len(&t, 600);
    a = take_bytes(&t, n1);
    b = take_bytes(&t, n2);
    len = wire_encode_sub(NULL, 0, op, (const char *)a, n1, (const char *)b, n2);
    if (n1 > WIRE_MAX_NAME || WIRE_HEADER_LEN + 1 + n1 + n2 > WIRE_MAX_SUB_FRAME ||
        (op != WIRE_OP_SUBSCRIBE && op != WIRE_OP_UNSUBSCRIBE)) {
        FUZZ_CHECK(len == 0, "op %u with a %zu-byte ident and a %zu-byte channel encoded", op, n1,
                   n2);
    } else {
        FUZZ_CHECK(len == WIRE_HEADER_LEN + 1 + n1 + n2, "%s length %zu", wire_op_name(op), len);
        buf = g_malloc(len);
        if (roundtrip(len, wire_encode_sub(buf, len, op, (const char *)a, n1, (const char *)b, n2),
                      buf, op, &m))
            FUZZ_CHECK(str_eq(m.name, a, n1) && str_eq(m.channel, b, n2), "%s fields changed",
                       wire_op_name(op));
        g_free(buf);
    }
    g_free(a);
    g_free(b);

    /* The AUTH hash against GLib's SHA-1 of the same bytes. */
    n1 = take_len(&t, 16);
    n2 = take_len(&t, 80);
    a = take_bytes(&t, n1);
    b = take_bytes(&t, n2);
    uint8_t hash[WIRE_HASH_LEN], want[WIRE_HASH_LEN];
    FUZZ_CHECK(wire_auth_hash(a, n1, (const char *)b, n2, hash) == 0, "wire_auth_hash failed");
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA1);
    g_checksum_update(sum, a, (gssize)n1);
    g_checksum_update(sum, b, (gssize)n2);
    gsize wl = sizeof want;
    g_checksum_get_digest(sum, want, &wl);
    g_checksum_free(sum);
    FUZZ_CHECK(memcmp(hash, want, sizeof hash) == 0, "SHA-1(nonce || secret) differs");
    g_free(a);
    g_free(b);

    FUZZ_CHECK(wire_op_name(take_u8(&t)) != NULL, "wire_op_name returned NULL");
}

void fuzz_wire_init(void) { fuzz_setup(); }

int fuzz_wire_one(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint32_t max_frame = max_frames[data[0] % G_N_ELEMENTS(max_frames)];
    const uint8_t *stream = data + 1;
    size_t len = size - 1;

    /* Frame after frame, as long as whole frames come. */
    size_t off = 0;
    while (off < len) {
        size_t n = decode_one(stream + off, len - off, max_frame);
        if (n == 0)
            break;
        off += n;
    }
    check_encoders(data, size);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_wire_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_wire_one(data, size); }
#endif
