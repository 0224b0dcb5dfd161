/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The hpfeeds codec: decoding checks every length against the frame and
 * the configured bound before it reads, and fills a message whose strings
 * point into the caller's buffer (no copies); encoding writes into a
 * caller-sized buffer and reports the size it needed.  No I/O, no
 * allocation: the broker, the client library and the fuzzers share it.
 */
#include "wire.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

uint32_t wire_peek_length(const uint8_t *buf)
{
    return ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) |
           (uint32_t)buf[3];
}

const char *wire_op_name(int op)
{
    switch (op) {
    case WIRE_OP_ERROR:
        return "ERROR";
    case WIRE_OP_INFO:
        return "INFO";
    case WIRE_OP_AUTH:
        return "AUTH";
    case WIRE_OP_PUBLISH:
        return "PUBLISH";
    case WIRE_OP_SUBSCRIBE:
        return "SUBSCRIBE";
    case WIRE_OP_UNSUBSCRIBE:
        return "UNSUBSCRIBE";
    default:
        return "unknown";
    }
}

/* Reads an s8 string at *pos, bounded by end. */
static int take_s8(const uint8_t *buf, size_t *pos, size_t end, struct wire_str *out)
{
    if (*pos >= end)
        return -1;
    size_t n = buf[*pos];
    if (n > end - *pos - 1)
        return -1;
    out->ptr = buf + *pos + 1;
    out->len = n;
    *pos += 1 + n;
    return 0;
}

static void take_rest(const uint8_t *buf, size_t pos, size_t end, struct wire_str *out)
{
    out->ptr = buf + pos;
    out->len = end - pos;
}

static int invalid(const char **err, const char *why)
{
    if (err)
        *err = why;
    return WIRE_INVALID;
}

int wire_decode(const uint8_t *buf, size_t len, uint32_t max_frame, struct wire_msg *msg,
                char *reason_buf, size_t reason_len, const char **err)
{
    if (len < 4)
        return WIRE_NEED_MORE;

    uint32_t flen = wire_peek_length(buf);
    if (flen < WIRE_HEADER_LEN || flen > max_frame) {
        if (reason_buf && reason_len > 0) {
            snprintf(reason_buf, reason_len, "frame length %u %s %u", flen,
                     flen < WIRE_HEADER_LEN ? "below minimum" : "exceeds limit",
                     flen < WIRE_HEADER_LEN ? WIRE_HEADER_LEN : max_frame);
            return invalid(err, reason_buf);
        }
        return invalid(err, "bad frame length");
    }
    if (len < WIRE_HEADER_LEN)
        return WIRE_NEED_MORE;
    uint8_t op = buf[4];
    if (op > WIRE_OP_UNSUBSCRIBE) {
        if (reason_buf && reason_len > 0) {
            snprintf(reason_buf, reason_len, "unknown opcode %u", op);
            return invalid(err, reason_buf);
        }
        return invalid(err, "unknown opcode");
    }
    /* A SUBSCRIBE or UNSUBSCRIBE names an ident and a channel, each at most
     * 255 bytes (a longer channel could never match a PUBLISH): refused at
     * the header, before anything waits for the rest of a long frame. */
    if ((op == WIRE_OP_SUBSCRIBE || op == WIRE_OP_UNSUBSCRIBE) && flen > WIRE_MAX_SUB_FRAME) {
        if (reason_buf && reason_len > 0) {
            snprintf(reason_buf, reason_len, "%s frame length %u exceeds %u",
                     op == WIRE_OP_SUBSCRIBE ? "SUBSCRIBE" : "UNSUBSCRIBE", flen,
                     (unsigned)WIRE_MAX_SUB_FRAME);
            return invalid(err, reason_buf);
        }
        return invalid(err, "SUBSCRIBE frame too long");
    }
    if (len < flen)
        return WIRE_NEED_MORE;

    memset(msg, 0, sizeof *msg);
    msg->op = op;
    msg->frame_len = flen;
    size_t pos = WIRE_HEADER_LEN;
    size_t end = flen;

    switch (op) {
    case WIRE_OP_ERROR:
        take_rest(buf, pos, end, &msg->data);
        break;
    case WIRE_OP_INFO:
        if (take_s8(buf, &pos, end, &msg->name) < 0)
            return invalid(err, "INFO: broker name runs past the frame end");
        take_rest(buf, pos, end, &msg->data);
        break;
    case WIRE_OP_AUTH:
        if (take_s8(buf, &pos, end, &msg->name) < 0)
            return invalid(err, "AUTH: ident runs past the frame end");
        take_rest(buf, pos, end, &msg->data);
        break;
    case WIRE_OP_PUBLISH:
        if (take_s8(buf, &pos, end, &msg->name) < 0)
            return invalid(err, "PUBLISH: ident runs past the frame end");
        if (take_s8(buf, &pos, end, &msg->channel) < 0)
            return invalid(err, "PUBLISH: channel runs past the frame end");
        take_rest(buf, pos, end, &msg->data);
        break;
    case WIRE_OP_SUBSCRIBE:
    case WIRE_OP_UNSUBSCRIBE:
        if (take_s8(buf, &pos, end, &msg->name) < 0)
            return invalid(err, op == WIRE_OP_SUBSCRIBE
                                    ? "SUBSCRIBE: ident runs past the frame end"
                                    : "UNSUBSCRIBE: ident runs past the frame end");
        take_rest(buf, pos, end, &msg->channel);
        break;
    }
    return WIRE_FRAME;
}

/* ---- encoding ---- */

struct writer {
    uint8_t *out;
    size_t cap;
    size_t pos;
};

static void put(struct writer *w, const void *p, size_t n)
{
    if (w->out && w->pos + n <= w->cap && n > 0)
        memcpy(w->out + w->pos, p, n);
    w->pos += n;
}

static void put_u8(struct writer *w, uint8_t v) { put(w, &v, 1); }

static void put_header(struct writer *w, size_t total, uint8_t op)
{
    uint8_t h[5] = {(uint8_t)(total >> 24), (uint8_t)(total >> 16), (uint8_t)(total >> 8),
                    (uint8_t)total, op};
    put(w, h, sizeof h);
}

/* Writes only when the whole frame fits; returns its length. */
#define FRAME_BEGIN(total_expr, op)                                 \
    size_t total = (total_expr);                                    \
    if (total > UINT32_MAX)                                         \
        return 0;                                                   \
    struct writer w = {(out && cap >= total) ? out : NULL, cap, 0}; \
    put_header(&w, total, (op))

size_t wire_encode_error(uint8_t *out, size_t cap, const char *msg, size_t msg_len)
{
    FRAME_BEGIN((uint64_t)WIRE_HEADER_LEN + msg_len, WIRE_OP_ERROR);
    put(&w, msg, msg_len);
    return total;
}

size_t wire_encode_info(uint8_t *out, size_t cap, const char *name, size_t name_len,
                        const uint8_t *nonce, size_t nonce_len)
{
    if (name_len > WIRE_MAX_NAME)
        return 0;
    FRAME_BEGIN((uint64_t)WIRE_HEADER_LEN + 1 + name_len + nonce_len, WIRE_OP_INFO);
    put_u8(&w, (uint8_t)name_len);
    put(&w, name, name_len);
    put(&w, nonce, nonce_len);
    return total;
}

size_t wire_encode_auth(uint8_t *out, size_t cap, const char *ident, size_t ident_len,
                        const uint8_t hash[WIRE_HASH_LEN])
{
    if (ident_len > WIRE_MAX_NAME)
        return 0;
    FRAME_BEGIN((uint64_t)WIRE_HEADER_LEN + 1 + ident_len + WIRE_HASH_LEN, WIRE_OP_AUTH);
    put_u8(&w, (uint8_t)ident_len);
    put(&w, ident, ident_len);
    put(&w, hash, WIRE_HASH_LEN);
    return total;
}

size_t wire_encode_publish(uint8_t *out, size_t cap, const char *ident, size_t ident_len,
                           const char *chan, size_t chan_len, const uint8_t *payload,
                           size_t payload_len)
{
    if (ident_len > WIRE_MAX_NAME || chan_len > WIRE_MAX_NAME)
        return 0;
    FRAME_BEGIN((uint64_t)WIRE_HEADER_LEN + 2 + ident_len + chan_len + payload_len,
                WIRE_OP_PUBLISH);
    put_u8(&w, (uint8_t)ident_len);
    put(&w, ident, ident_len);
    put_u8(&w, (uint8_t)chan_len);
    put(&w, chan, chan_len);
    put(&w, payload, payload_len);
    return total;
}

size_t wire_encode_sub(uint8_t *out, size_t cap, uint8_t op, const char *ident, size_t ident_len,
                       const char *chan, size_t chan_len)
{
    /* The decoder refuses a longer frame (WIRE_MAX_SUB_FRAME): never make one. */
    if (ident_len > WIRE_MAX_NAME ||
        chan_len > WIRE_MAX_SUB_FRAME - WIRE_HEADER_LEN - 1 - ident_len)
        return 0;
    if (op != WIRE_OP_SUBSCRIBE && op != WIRE_OP_UNSUBSCRIBE)
        return 0;
    FRAME_BEGIN((uint64_t)WIRE_HEADER_LEN + 1 + ident_len + chan_len, op);
    put_u8(&w, (uint8_t)ident_len);
    put(&w, ident, ident_len);
    put(&w, chan, chan_len);
    return total;
}

int wire_auth_hash(const uint8_t *nonce, size_t nonce_len, const char *secret, size_t secret_len,
                   uint8_t hash[WIRE_HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, nonce, nonce_len) && EVP_DigestUpdate(ctx, secret, secret_len) &&
             EVP_DigestFinal_ex(ctx, hash, &n) && n == WIRE_HASH_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}
