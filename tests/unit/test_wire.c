/* SPDX-License-Identifier: BSD-3-Clause */
/* The hpfeeds codec: every opcode, boundary lengths, truncation, split reads. */
#include <stdlib.h>
#include <string.h>

#include "../common/cunit_run.h"
#include "wire.h"

#define MAXF WIRE_DEFAULT_MAX_FRAME

static size_t frame(uint8_t *out, uint32_t len, uint8_t op, const void *body, size_t blen)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    out[4] = op;
    memcpy(out + 5, body, blen);
    return 5 + blen;
}

static int decode(const uint8_t *buf, size_t len, struct wire_msg *m, const char **err)
{
    static char reason[128];
    return wire_decode(buf, len, MAXF, m, reason, sizeof reason, err);
}

static void test_publish_roundtrip(void)
{
    uint8_t buf[256];
    const uint8_t payload[] = {0, 1, 2, 255};
    size_t n = wire_encode_publish(buf, sizeof buf, "ident1", 6, "chan", 4, payload, 4);
    CU_ASSERT_EQUAL(n, 5 + 1 + 6 + 1 + 4 + 4);
    struct wire_msg m;
    CU_ASSERT_EQUAL(decode(buf, n, &m, NULL), WIRE_FRAME);
    CU_ASSERT_EQUAL(m.op, WIRE_OP_PUBLISH);
    CU_ASSERT_EQUAL(m.frame_len, n);
    CU_ASSERT_EQUAL(m.name.len, 6);
    CU_ASSERT_NSTRING_EQUAL(m.name.ptr, "ident1", 6);
    CU_ASSERT_EQUAL(m.channel.len, 4);
    CU_ASSERT_NSTRING_EQUAL(m.channel.ptr, "chan", 4);
    CU_ASSERT_EQUAL(m.data.len, 4);
    CU_ASSERT_EQUAL(memcmp(m.data.ptr, payload, 4), 0);
}

static void test_every_opcode(void)
{
    uint8_t buf[256];
    struct wire_msg m;
    uint8_t nonce[4] = {1, 2, 3, 4}, hash[20];
    memset(hash, 0xab, sizeof hash);

    size_t n = wire_encode_error(buf, sizeof buf, "oops", 4);
    CU_ASSERT_EQUAL(decode(buf, n, &m, NULL), WIRE_FRAME);
    CU_ASSERT_EQUAL(m.op, WIRE_OP_ERROR);
    CU_ASSERT_EQUAL(m.data.len, 4);

    n = wire_encode_info(buf, sizeof buf, "brk", 3, nonce, 4);
    CU_ASSERT_EQUAL(n, 13);
    CU_ASSERT_EQUAL(decode(buf, n, &m, NULL), WIRE_FRAME);
    CU_ASSERT_EQUAL(m.op, WIRE_OP_INFO);
    CU_ASSERT_EQUAL(m.name.len, 3);
    CU_ASSERT_EQUAL(m.data.len, 4);
    CU_ASSERT_EQUAL(memcmp(m.data.ptr, nonce, 4), 0);

    n = wire_encode_auth(buf, sizeof buf, "id", 2, hash);
    CU_ASSERT_EQUAL(n, 5 + 1 + 2 + 20);
    CU_ASSERT_EQUAL(decode(buf, n, &m, NULL), WIRE_FRAME);
    CU_ASSERT_EQUAL(m.op, WIRE_OP_AUTH);
    CU_ASSERT_EQUAL(m.data.len, 20);

    for (uint8_t op = WIRE_OP_SUBSCRIBE; op <= WIRE_OP_UNSUBSCRIBE; op++) {
        n = wire_encode_sub(buf, sizeof buf, op, "id", 2, "some.chan", 9);
        CU_ASSERT_EQUAL(n, 5 + 1 + 2 + 9);
        CU_ASSERT_EQUAL(decode(buf, n, &m, NULL), WIRE_FRAME);
        CU_ASSERT_EQUAL(m.op, op);
        CU_ASSERT_EQUAL(m.channel.len, 9);
        CU_ASSERT_NSTRING_EQUAL(m.channel.ptr, "some.chan", 9);
    }
    CU_ASSERT_EQUAL(wire_encode_sub(buf, sizeof buf, WIRE_OP_PUBLISH, "a", 1, "b", 1), 0);
}

static void test_wire_bytes_exact(void)
{
    /* AUTH for ident "a": 00 00 00 1a 02 01 'a' + 20 hash bytes. */
    uint8_t hash[20] = {0};
    uint8_t buf[64];
    size_t n = wire_encode_auth(buf, sizeof buf, "a", 1, hash);
    const uint8_t head[] = {0, 0, 0, 0x1b, 2, 1, 'a'};
    CU_ASSERT_EQUAL(n, 0x1b);
    CU_ASSERT_EQUAL(memcmp(buf, head, sizeof head), 0);
}

static void test_length_boundaries(void)
{
    uint8_t buf[16] = {0};
    struct wire_msg m;
    const char *err = NULL;
    /* Lengths 0..4 are below the header size. */
    for (uint32_t len = 0; len < 5; len++) {
        frame(buf, len, WIRE_OP_ERROR, "", 0);
        err = NULL;
        CU_ASSERT_EQUAL(decode(buf, 5, &m, &err), WIRE_INVALID);
        CU_ASSERT_PTR_NOT_NULL(err);
        /* Rejected from the 4 length bytes alone. */
        CU_ASSERT_EQUAL(decode(buf, 4, &m, &err), WIRE_INVALID);
    }
    /* Exactly 5: an ERROR with an empty message is a whole frame. */
    frame(buf, 5, WIRE_OP_ERROR, "", 0);
    CU_ASSERT_EQUAL(decode(buf, 5, &m, NULL), WIRE_FRAME);
    CU_ASSERT_EQUAL(m.data.len, 0);
}

static void test_max_frame(void)
{
    size_t total = MAXF;
    uint8_t *buf = calloc(1, total + 1);
    struct wire_msg m;
    const char *err = NULL;
    /* PUBLISH of exactly max_frame bytes. */
    size_t plen = total - 5 - 2 - 1 - 1;
    uint8_t *payload = calloc(1, plen);
    size_t n = wire_encode_publish(buf, total, "i", 1, "c", 1, payload, plen);
    CU_ASSERT_EQUAL(n, total);
    CU_ASSERT_EQUAL(decode(buf, n, &m, &err), WIRE_FRAME);
    CU_ASSERT_EQUAL(m.data.len, plen);
    /* One more byte is refused as soon as the length is read. */
    n = wire_encode_publish(NULL, 0, "i", 1, "c", 1, payload, plen + 1);
    CU_ASSERT_EQUAL(n, total + 1);
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    err = NULL;
    CU_ASSERT_EQUAL(decode(buf, 4, &m, &err), WIRE_INVALID);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "exceeds limit"));
    /* A huge announced length never needs the bytes to be there. */
    const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(decode(huge, 4, &m, &err), WIRE_INVALID);
    free(payload);
    free(buf);
}

static void test_unknown_opcode(void)
{
    uint8_t buf[16];
    struct wire_msg m;
    const char *err = NULL;
    for (int op = 6; op < 256; op += 7) {
        frame(buf, 10, (uint8_t)op, "xxxxx", 5);
        /* Refused from the header alone, before the body arrives. */
        CU_ASSERT_EQUAL(decode(buf, 5, &m, &err), WIRE_INVALID);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown opcode"));
    }
}

/* A SUBSCRIBE or UNSUBSCRIBE longer than a 255-byte ident and a 255-byte
 * channel is refused from its header; the longest real one decodes. */
static void test_subscribe_bound(void)
{
    uint8_t buf[WIRE_MAX_SUB_FRAME + 1];
    struct wire_msg m;
    const char *err = NULL;
    for (uint8_t op = WIRE_OP_SUBSCRIBE; op <= WIRE_OP_UNSUBSCRIBE; op++) {
        frame(buf, WIRE_MAX_SUB_FRAME + 1, op, "", 0);
        CU_ASSERT_EQUAL(decode(buf, 5, &m, &err), WIRE_INVALID);
        CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "exceeds 516"));
        uint8_t body[1 + 255 + 255];
        body[0] = 255;
        memset(body + 1, 'i', 255);
        memset(body + 256, 'c', 255);
        frame(buf, WIRE_MAX_SUB_FRAME, op, body, sizeof body);
        CU_ASSERT_EQUAL(decode(buf, 5, &m, &err), WIRE_NEED_MORE);
        CU_ASSERT_EQUAL(decode(buf, WIRE_MAX_SUB_FRAME, &m, &err), WIRE_FRAME);
        CU_ASSERT_EQUAL(m.channel.len, 255);
    }
}

static void test_truncated_strings(void)
{
    uint8_t buf[64];
    struct wire_msg m;
    const char *err;
    /* PUBLISH: ident length 10 but only 3 bytes in the frame. */
    size_t n = frame(buf, 5 + 4, WIRE_OP_PUBLISH,
                     "\x0a"
                     "abc",
                     4);
    err = NULL;
    CU_ASSERT_EQUAL(decode(buf, n, &m, &err), WIRE_INVALID);
    CU_ASSERT_PTR_NOT_NULL(err);
    /* PUBLISH: channel length runs past the end. */
    n = frame(buf, 5 + 5, WIRE_OP_PUBLISH,
              "\x01"
              "a"
              "\x09"
              "bc",
              5);
    CU_ASSERT_EQUAL(decode(buf, n, &m, &err), WIRE_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "channel"));
    /* PUBLISH with no channel length byte at all. */
    n = frame(buf, 5 + 2, WIRE_OP_PUBLISH,
              "\x01"
              "a",
              2);
    CU_ASSERT_EQUAL(decode(buf, n, &m, &err), WIRE_INVALID);
    /* Empty AUTH, SUBSCRIBE, UNSUBSCRIBE, INFO bodies. */
    for (uint8_t op = WIRE_OP_INFO; op <= WIRE_OP_UNSUBSCRIBE; op++) {
        n = frame(buf, 5, op, "", 0);
        CU_ASSERT_EQUAL(decode(buf, n, &m, &err), WIRE_INVALID);
    }
    /* The frame length cuts a string that the buffer would have held. */
    n = frame(buf, 5 + 3, WIRE_OP_SUBSCRIBE,
              "\x05"
              "abcdefgh",
              9);
    CU_ASSERT_EQUAL(decode(buf, n, &m, &err), WIRE_INVALID);
    /* Zero-length strings are fine. */
    n = frame(buf, 5 + 2, WIRE_OP_PUBLISH, "\x00\x00", 2);
    CU_ASSERT_EQUAL(decode(buf, n, &m, &err), WIRE_FRAME);
    CU_ASSERT_EQUAL(m.name.len, 0);
    CU_ASSERT_EQUAL(m.channel.len, 0);
    CU_ASSERT_EQUAL(m.data.len, 0);
}

static void test_split_byte_by_byte(void)
{
    uint8_t stream[512];
    size_t n1 = wire_encode_publish(stream, sizeof stream, "sensor", 6, "dionaea.captures", 16,
                                    (const uint8_t *)"hello", 5);
    size_t n2 = wire_encode_sub(stream + n1, sizeof stream - n1, WIRE_OP_SUBSCRIBE, "x", 1, "y", 1);
    size_t total = n1 + n2;
    /* Feed a growing prefix, as a reader would accumulate it. */
    size_t consumed = 0, frames = 0;
    for (size_t have = 1; have <= total; have++) {
        struct wire_msg m;
        int rc = decode(stream + consumed, have - consumed, &m, NULL);
        CU_ASSERT_NOT_EQUAL(rc, WIRE_INVALID);
        if (rc == WIRE_FRAME) {
            frames++;
            CU_ASSERT_EQUAL(m.op, frames == 1 ? WIRE_OP_PUBLISH : WIRE_OP_SUBSCRIBE);
            consumed += m.frame_len;
        }
    }
    CU_ASSERT_EQUAL(frames, 2);
    CU_ASSERT_EQUAL(consumed, total);
}

static void test_encoder_limits(void)
{
    char big[300];
    memset(big, 'x', sizeof big);
    uint8_t buf[1024];
    CU_ASSERT_EQUAL(wire_encode_publish(buf, sizeof buf, big, 256, "c", 1, NULL, 0), 0);
    CU_ASSERT_EQUAL(wire_encode_publish(buf, sizeof buf, "i", 1, big, 256, NULL, 0), 0);
    CU_ASSERT_EQUAL(wire_encode_info(buf, sizeof buf, big, 256, NULL, 0), 0);
    CU_ASSERT_EQUAL(wire_encode_auth(buf, sizeof buf, big, 256, (const uint8_t *)big), 0);
    CU_ASSERT_EQUAL(wire_encode_publish(buf, sizeof buf, big, 255, "c", 1, NULL, 0),
                    5 + 1 + 255 + 2);
    /* Too small a buffer: measured, nothing written. */
    memset(buf, 0x5a, 8);
    CU_ASSERT_EQUAL(wire_encode_error(buf, 4, "abc", 3), 8);
    CU_ASSERT_EQUAL(buf[0], 0x5a);
}

static void test_auth_hash(void)
{
    /* SHA-1("abcd" || "secret"), from sha1sum. */
    const uint8_t nonce[4] = {'a', 'b', 'c', 'd'};
    const uint8_t want[20] = {0xee, 0x89, 0x5c, 0x4f, 0xcd, 0x00, 0xf0, 0x25, 0x07, 0x83,
                              0x5e, 0x0e, 0x95, 0x54, 0x44, 0x1b, 0xd8, 0x88, 0x83, 0x88};
    uint8_t h[20];
    CU_ASSERT_EQUAL(wire_auth_hash(nonce, 4, "secret", 6, h), 0);
    CU_ASSERT_EQUAL(memcmp(h, want, 20), 0);
    CU_ASSERT_EQUAL(wire_auth_hash(nonce, 4, "secreT", 6, h), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(h, want, 20), 0);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"publish round trip", test_publish_roundtrip},
        {"every opcode", test_every_opcode},
        {"bytes exact", test_wire_bytes_exact},
        {"lengths 0..5", test_length_boundaries},
        {"max_frame and max_frame+1", test_max_frame},
        {"unknown opcode", test_unknown_opcode},
        {"SUBSCRIBE bounded at its header", test_subscribe_bound},
        {"truncated strings", test_truncated_strings},
        {"split byte by byte", test_split_byte_by_byte},
        {"encoder limits", test_encoder_limits},
        {"auth hash", test_auth_hash},
        {NULL, NULL},
    };
    return cunit_run("wire", cases);
}
