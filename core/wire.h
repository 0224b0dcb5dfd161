/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfeeds wire codec: frames in, frames out, no I/O.
 *
 * Frame: u32 length (big-endian, counts the whole frame with its 5 header
 * bytes), u8 opcode, payload.  Shared by the broker and the client library.
 */
#ifndef HPF_WIRE_H
#define HPF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_HEADER_LEN        5u
#define WIRE_NONCE_LEN         4u
#define WIRE_HASH_LEN          20u
#define WIRE_MAX_NAME          255u
#define WIRE_DEFAULT_MAX_FRAME (1024u * 1024u + WIRE_HEADER_LEN)
/* The largest frame a peer may send before it is authenticated: an AUTH
 * with the longest ident (5 + 1 + 255 + 20 bytes), with room to spare for
 * a client that pads it.  Anything larger is refused at its header, so an
 * anonymous peer cannot make the broker buffer a max_frame body. */
#define WIRE_MAX_PREAUTH_FRAME (WIRE_HEADER_LEN + 1 + WIRE_MAX_NAME + WIRE_HASH_LEN + 64u)
/* The largest SUBSCRIBE or UNSUBSCRIBE: a 255-byte ident and a 255-byte
 * channel.  wire_decode() refuses a longer one at its header. */
#define WIRE_MAX_SUB_FRAME     (WIRE_HEADER_LEN + 1 + WIRE_MAX_NAME + WIRE_MAX_NAME)

enum wire_op {
    WIRE_OP_ERROR = 0,
    WIRE_OP_INFO = 1,
    WIRE_OP_AUTH = 2,
    WIRE_OP_PUBLISH = 3,
    WIRE_OP_SUBSCRIBE = 4,
    WIRE_OP_UNSUBSCRIBE = 5,
};

/** A byte string pointing into the decoded buffer; not NUL-terminated. */
struct wire_str {
    const uint8_t *ptr;
    size_t len;
};

/**
 * One decoded frame.  Which fields are set depends on op:
 *   ERROR        data = message
 *   INFO         name = broker name, data = nonce
 *   AUTH         name = ident, data = hash
 *   PUBLISH      name = ident, channel, data = payload
 *   SUBSCRIBE    name = ident, channel
 *   UNSUBSCRIBE  name = ident, channel
 */
struct wire_msg {
    uint8_t op;
    uint32_t frame_len; /**< bytes this frame occupies in the input */
    struct wire_str name;
    struct wire_str channel;
    struct wire_str data;
};

enum wire_result {
    WIRE_INVALID = -1,  /**< malformed: *err says why; the stream is unusable */
    WIRE_NEED_MORE = 0, /**< not a whole frame yet */
    WIRE_FRAME = 1,     /**< msg holds one frame of msg->frame_len bytes */
};

/**
 * Decode the frame at the start of buf[0..len).  Never reads past len nor
 * past the frame's own end; rejects a length below 5 or above max_frame as
 * soon as the 4 length bytes are there, and an unknown opcode as soon as
 * the 5th byte is.  On WIRE_INVALID, err (if not NULL) points to a static
 * reason, or into reason_buf (>= 96 bytes) when it names numbers.
 */
int wire_decode(const uint8_t *buf, size_t len, uint32_t max_frame, struct wire_msg *msg,
                char *reason_buf, size_t reason_len, const char **err);

/** Frame length announced by the 4 header bytes at buf (len >= 4). */
uint32_t wire_peek_length(const uint8_t *buf);

/*
 * Encoders.  Each returns the frame length and writes the frame to out when
 * out != NULL and cap is large enough; with out == NULL it only measures.
 * They return 0 when a field cannot be encoded (a name over 255 bytes, or a
 * frame over 4 GiB).
 */
size_t wire_encode_error(uint8_t *out, size_t cap, const char *msg, size_t msg_len);
size_t wire_encode_info(uint8_t *out, size_t cap, const char *name, size_t name_len,
                        const uint8_t *nonce, size_t nonce_len);
size_t wire_encode_auth(uint8_t *out, size_t cap, const char *ident, size_t ident_len,
                        const uint8_t hash[WIRE_HASH_LEN]);
size_t wire_encode_publish(uint8_t *out, size_t cap, const char *ident, size_t ident_len,
                           const char *chan, size_t chan_len, const uint8_t *payload,
                           size_t payload_len);
/** op is WIRE_OP_SUBSCRIBE or WIRE_OP_UNSUBSCRIBE. */
size_t wire_encode_sub(uint8_t *out, size_t cap, uint8_t op, const char *ident, size_t ident_len,
                       const char *chan, size_t chan_len);

/** hash = SHA-1(nonce || secret).  0 on success, -1 if OpenSSL failed. */
int wire_auth_hash(const uint8_t *nonce, size_t nonce_len, const char *secret, size_t secret_len,
                   uint8_t hash[WIRE_HASH_LEN]);

/** Name of an opcode, "unknown" otherwise. */
const char *wire_op_name(int op);

#endif
