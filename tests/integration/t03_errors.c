/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Refusals and malformed input: wrong ident, channels outside the authkey's
 * lists (close and continue), legacy error texts, bad frames before and
 * after AUTH, and the exact max_frame boundary.
 */
#include <string.h>

#include "harness.h"

/* The next frame sub sees is the marker from pub on chan: proves that
 * whatever was refused before the marker was not delivered. */
static bool marker_next(int pub, const char *pub_ident, int sub, const char *chan)
{
    return h_pub_str(pub, pub_ident, chan, "marker") &&
           h_expect_pub_str(sub, pub_ident, chan, "marker");
}

static void test_pub_wrong_ident(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, pub, pub2, sync;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    pub2 = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(pub2 >= 0);

    CU_ASSERT_FATAL(h_pub_str(pub, "pub2", "chan.a", "spoofed"));
    CU_ASSERT(h_expect_error(pub, "Invalid authkey in message, ident=pub2"));
    CU_ASSERT(h_expect_eof(pub, H_WAIT_MS));
    CU_ASSERT(marker_next(pub2, "pub2", sub, "chan.a"));
    H_FINISH(b);
}

static void test_pub_denied_channel(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, pub1, pub2, sync;

    h_std_pubsub(b, "chan.b", &sub, &pub1, &sync);
    pub2 = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(pub2 >= 0);

    /* pub2 may publish on chan.a only */
    CU_ASSERT_FATAL(h_pub_str(pub2, "pub2", "chan.b", "not yours"));
    CU_ASSERT(h_expect_error(pub2, "Authkey not allowed to pub here. ident=pub2, chan=chan.b"));
    CU_ASSERT(h_expect_eof(pub2, H_WAIT_MS));
    CU_ASSERT(marker_next(pub1, "pub1", sub, "chan.b"));
    H_FINISH(b);
}

static void test_sub_denied_channel(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int fd;

    CU_ASSERT_FATAL(b != NULL);
    /* pub1 has an empty subscribe list (apart from the sync channels) */
    fd = h_std_client(b, "pub1");
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(h_sub(fd, "pub1", "chan.a"));
    CU_ASSERT(h_expect_error(fd, "Authkey not allowed to sub here. ident=pub1, chan=chan.a"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));

    /* a channel nobody has heard of */
    fd = h_std_client(b, "sub1");
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(h_sub(fd, "sub1", "chan.zzz"));
    CU_ASSERT(h_expect_error(fd, "Authkey not allowed to sub here. ident=sub1, chan=chan.zzz"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    H_FINISH(b);
}

static void test_legacy_texts(void)
{
    struct h_broker *b = h_std_broker("error_style = legacy\n");
    int fd, sub, pub1, sync;

    h_std_pubsub(b, "chan.b", &sub, &pub1, &sync);

    fd = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(h_pub_str(fd, "pub1", "chan.a", "spoofed"));
    CU_ASSERT(h_expect_error(fd, "identfail."));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));

    fd = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(h_pub_str(fd, "pub2", "chan.b", "not yours"));
    CU_ASSERT(h_expect_error(fd, "accessfail."));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));

    fd = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(h_sub(fd, "pub2", "chan.a"));
    CU_ASSERT(h_expect_error(fd, "accessfail."));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));

    CU_ASSERT(marker_next(pub1, "pub1", sub, "chan.b"));
    H_FINISH(b);
}

/* on_denied = continue: the ERROR is sent, the connection stays usable, and
 * the refused message reaches nobody. */
static void test_continue_pub_denied(void)
{
    struct h_broker *b = h_std_broker("on_denied = continue\n");
    int sa, sb, pub1, pub2, sync;

    h_std_pubsub2(b, "chan.a", "chan.b", &sa, &sb, &pub1, &sync);
    pub2 = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(pub2 >= 0);

    CU_ASSERT_FATAL(h_pub_str(pub2, "pub2", "chan.b", "refused"));
    CU_ASSERT(h_expect_error(pub2, "Authkey not allowed to pub here. ident=pub2, chan=chan.b"));
    /* still open: an allowed publish right after is delivered */
    CU_ASSERT_FATAL(h_pub_str(pub2, "pub2", "chan.a", "allowed"));
    CU_ASSERT(h_expect_pub_str(sa, "pub2", "chan.a", "allowed"));
    CU_ASSERT(h_expect_silence(pub2, 200));
    /* the refused one went nowhere */
    CU_ASSERT(marker_next(pub1, "pub1", sb, "chan.b"));

    /* and it can be refused again, still without closing */
    CU_ASSERT_FATAL(h_pub_str(pub2, "pub2", "chan.bin", "refused again"));
    CU_ASSERT(h_expect_error(pub2, "Authkey not allowed to pub here. ident=pub2, chan=chan.bin"));
    CU_ASSERT_FATAL(h_pub_str(pub2, "pub2", "chan.a", "allowed again"));
    CU_ASSERT(h_expect_pub_str(sa, "pub2", "chan.a", "allowed again"));
    H_FINISH(b);
}

static void test_continue_sub_denied(void)
{
    struct h_broker *b = h_std_broker("on_denied = continue\n");
    int pub1, pub2, sub, sync;

    h_std_trio(b, &sub, &pub1, &sync);
    pub2 = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(pub2 >= 0);

    /* pub1 may not subscribe to chan.a */
    CU_ASSERT_FATAL(h_sub(pub1, "pub1", "chan.a"));
    CU_ASSERT(h_expect_error(pub1, "Authkey not allowed to sub here. ident=pub1, chan=chan.a"));
    /* no subscription was made: a message on chan.a followed (on the same
     * connection, so in order) by the barrier's sync must show only sync */
    CU_ASSERT_FATAL(h_pub_str(pub2, "pub2", "chan.a", "must not reach pub1"));
    CU_ASSERT(h_barrier1(b, pub1, "pub1", pub2, "pub2"));
    CU_ASSERT(h_expect_silence(pub1, 200));

    /* the connection still works for what it is allowed */
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub1, "pub1", "chan.a", "pub1 still here"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "pub1 still here"));
    H_FINISH(b);
}

/* A spoofed ident is refused and not delivered, whatever on_denied says. */
static void test_continue_wrong_ident(void)
{
    struct h_broker *b = h_std_broker("on_denied = continue\n");
    int sub, pub1, pub2, sync;

    h_std_pubsub(b, "chan.a", &sub, &pub1, &sync);
    pub2 = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(pub2 >= 0);
    CU_ASSERT_FATAL(h_pub_str(pub1, "pub2", "chan.a", "spoofed"));
    CU_ASSERT(h_expect_error(pub1, "Invalid authkey in message, ident=pub2"));
    CU_ASSERT(marker_next(pub2, "pub2", sub, "chan.a"));
    H_FINISH(b);
}

/* ---- malformed frames ---- */

static void put_len(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Sends raw bytes on a fresh connection (authenticated as sub1 when authed)
 * and expects "Bad frame: ..." then close. */
static bool bad_frame(struct h_broker *b, bool authed, const uint8_t *bytes, size_t len)
{
    int fd;
    bool ok;

    if (authed) {
        fd = h_std_client(b, "sub1");
        /* a working session first, so the failure is not about AUTH */
        if (fd < 0 || !h_expect_silence(fd, 50))
            return false;
    } else {
        fd = h_connect(b->port);
        if (fd < 0 || !h_read_info(fd, false, NULL, NULL))
            return false;
    }
    ok = h_send(fd, bytes, len) && h_expect_error_prefix(fd, "Bad frame: ") &&
         h_expect_eof(fd, H_WAIT_MS);
    h_close(fd);
    return ok;
}

/* Fatal assertions here: one broken case would otherwise cost a timeout
 * per case after it. */
static void check_malformed(struct h_broker *b, bool authed)
{
    uint8_t f[64];

    /* longer than max_frame (default 1 MiB + 5): refused from the header */
    put_len(f, 1048582);
    f[4] = H_OP_PUBLISH;
    memset(f + 5, 'x', 27);
    CU_ASSERT_FATAL(bad_frame(b, authed, f, 32));
    put_len(f, 0xffffffffu);
    f[4] = H_OP_AUTH;
    CU_ASSERT_FATAL(bad_frame(b, authed, f, 32));

    /* shorter than its own header */
    for (uint32_t len = 0; len < 5; len++) {
        put_len(f, len);
        f[4] = authed ? H_OP_PUBLISH : H_OP_AUTH;
        /* only the header: nothing left unread that could turn the
         * broker's close into a reset racing its ERROR */
        if (!bad_frame(b, authed, f, 5)) {
            fprintf(stderr, "  (frame length %u, %s)\n", len,
                    authed ? "after AUTH" : "before AUTH");
            CU_FAIL_FATAL("frame length below 5 not refused as a bad frame");
        }
    }

    /* unknown opcodes */
    const uint8_t ops[] = {6, 9, 200, 255};
    for (size_t i = 0; i < sizeof ops; i++) {
        put_len(f, 10);
        f[4] = ops[i];
        memcpy(f + 5,
               "\x03"
               "abcd",
               5);
        if (!bad_frame(b, authed, f, 10)) {
            fprintf(stderr, "  (opcode %u)\n", ops[i]);
            CU_FAIL_FATAL("unknown opcode not refused as a bad frame");
        }
    }
}

static void test_malformed_before_auth(void)
{
    struct h_broker *b = h_std_broker(NULL);
    uint8_t f[64];

    CU_ASSERT_FATAL(b != NULL);
    check_malformed(b, false);

    /* AUTH whose ident length runs past the frame end */
    put_len(f, 5 + 1 + 4 + 20);
    f[4] = H_OP_AUTH;
    f[5] = 200;
    memset(f + 6, 'i', 24);
    CU_ASSERT_FATAL(bad_frame(b, false, f, 30));
    /* AUTH with no payload at all */
    put_len(f, 5);
    f[4] = H_OP_AUTH;
    CU_ASSERT_FATAL(bad_frame(b, false, f, 5));
    H_FINISH(b);
}

static void test_malformed_after_auth(void)
{
    struct h_broker *b = h_std_broker(NULL);
    GByteArray *fr;
    uint8_t f[64];

    CU_ASSERT_FATAL(b != NULL);
    check_malformed(b, true);

    /* PUBLISH whose channel length byte exceeds the frame */
    fr = g_byte_array_new();
    h_enc_publish(fr, "sub1", "chan.a", "payload", 7);
    fr->data[5 + 1 + 4] = 250; /* the channel's s8 length */
    CU_ASSERT_FATAL(bad_frame(b, true, fr->data, fr->len));
    g_byte_array_free(fr, TRUE);

    /* PUBLISH whose ident length byte exceeds the frame */
    put_len(f, 5 + 1 + 3);
    f[4] = H_OP_PUBLISH;
    f[5] = 100;
    memcpy(f + 6, "abc", 3);
    CU_ASSERT_FATAL(bad_frame(b, true, f, 9));

    /* PUBLISH that ends right after the ident: no channel length byte */
    put_len(f, 5 + 1 + 4);
    f[4] = H_OP_PUBLISH;
    f[5] = 4;
    memcpy(f + 6, "sub1", 4);
    CU_ASSERT_FATAL(bad_frame(b, true, f, 10));

    /* SUBSCRIBE and UNSUBSCRIBE whose ident runs past the end */
    put_len(f, 5 + 1 + 2);
    f[4] = H_OP_SUBSCRIBE;
    f[5] = 9;
    memcpy(f + 6, "su", 2);
    CU_ASSERT_FATAL(bad_frame(b, true, f, 8));
    f[4] = H_OP_UNSUBSCRIBE;
    CU_ASSERT_FATAL(bad_frame(b, true, f, 8));

    /* an empty SUBSCRIBE */
    put_len(f, 5);
    f[4] = H_OP_SUBSCRIBE;
    CU_ASSERT_FATAL(bad_frame(b, true, f, 5));
    H_FINISH(b);
}

/* A bad frame pipelined behind good ones: the good ones are processed
 * first, then the error. */
static void test_bad_frame_after_good_ones(void)
{
    struct h_broker *b = h_std_broker(NULL);
    GByteArray *out = g_byte_array_new();
    int sub, pub, sync;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    h_enc_publish(out, "pub1", "chan.a", "good 1", 6);
    h_enc_publish(out, "pub1", "chan.a", "good 2", 6);
    g_byte_array_append(out, (const uint8_t *)"\x00\x00\x00\x07\x09xx", 7);
    h_enc_publish(out, "pub1", "chan.a", "after the bad one", 17);
    CU_ASSERT_FATAL(h_send(pub, out->data, out->len));
    g_byte_array_free(out, TRUE);
    CU_ASSERT(h_expect_error_prefix(pub, "Bad frame: "));
    CU_ASSERT(h_expect_eof(pub, H_WAIT_MS));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "good 1"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "good 2"));
    CU_ASSERT(h_expect_silence(sub, 300));
    H_FINISH(b);
}

/* Publishes one frame of exactly frame_len bytes from pub1 on chan.bin. */
static bool publish_sized(int fd, size_t frame_len, GByteArray **sent)
{
    size_t overhead = 5 + 1 + 4 + 1 + 8; /* "pub1", "chan.bin" */
    GByteArray *payload = g_byte_array_sized_new((guint)(frame_len - overhead));
    bool ok;

    for (size_t i = 0; i < frame_len - overhead; i++) {
        uint8_t c = (uint8_t)(i % 251);
        g_byte_array_append(payload, &c, 1);
    }
    *sent = g_byte_array_new();
    h_enc_publish(*sent, "pub1", "chan.bin", payload->data, payload->len);
    g_byte_array_free(payload, TRUE);
    if ((*sent)->len != frame_len)
        return false;
    ok = h_send(fd, (*sent)->data, (*sent)->len);
    return ok;
}

static void check_max_frame(struct h_broker *b, uint32_t max_frame)
{
    GByteArray *sent = NULL;
    uint8_t f[32];
    int sub, pub, sync;

    h_std_pubsub(b, "chan.bin", &sub, &pub, &sync);

    /* exactly max_frame: accepted and delivered intact */
    CU_ASSERT_FATAL(publish_sized(pub, max_frame, &sent));
    CU_ASSERT(h_expect_raw(sub, sent->data, sent->len));
    CU_ASSERT(h_expect_silence(pub, 100));
    g_byte_array_free(sent, TRUE);

    /* one more byte: refused from the header alone */
    put_len(f, max_frame + 1);
    f[4] = H_OP_PUBLISH;
    memcpy(f + 5,
           "\x04pub1\x08"
           "chan.bin",
           14);
    CU_ASSERT_FATAL(h_send(pub, f, 19));
    CU_ASSERT(h_expect_error_prefix(pub, "Bad frame: "));
    CU_ASSERT(h_expect_eof(pub, H_WAIT_MS));
    CU_ASSERT(h_expect_silence(sub, 200));
}

static void test_max_frame_default(void)
{
    /* default max_frame; a queue bound above it so that delivery of one
     * maximal message does not depend on how the bound treats it */
    struct h_broker *b = h_std_broker("max_queued_bytes = 4194304\n");

    CU_ASSERT_FATAL(b != NULL);
    check_max_frame(b, 1048581);
    H_FINISH(b);
}

static void test_max_frame_configured(void)
{
    struct h_broker *b = h_std_broker("max_frame = 4096\n");

    CU_ASSERT_FATAL(b != NULL);
    check_max_frame(b, 4096);
    H_FINISH(b);
}

static void test_max_frame_large(void)
{
    /* MHN-era senders use up to 10 MiB */
    struct h_broker *b = h_std_broker("max_frame = 10485765\n"
                                      "max_queued_bytes = 33554432\n");

    CU_ASSERT_FATAL(b != NULL);
    check_max_frame(b, 10485765);
    H_FINISH(b);
}

static const struct h_test tests[] = {
    {"PUBLISH with another ident", test_pub_wrong_ident},
    {"PUBLISH outside pubchans", test_pub_denied_channel},
    {"SUBSCRIBE outside subchans", test_sub_denied_channel},
    {"legacy error texts", test_legacy_texts},
    {"on_denied=continue: denied PUBLISH", test_continue_pub_denied},
    {"on_denied=continue: denied SUBSCRIBE", test_continue_sub_denied},
    {"on_denied=continue: spoofed ident not delivered", test_continue_wrong_ident},
    {"malformed frames before AUTH", test_malformed_before_auth},
    {"malformed frames after AUTH", test_malformed_after_auth},
    {"bad frame behind good ones", test_bad_frame_after_good_ones},
    {"max_frame boundary, default", test_max_frame_default},
    {"max_frame boundary, 4096", test_max_frame_configured},
    {"max_frame boundary, 10 MiB", test_max_frame_large},
    {NULL, NULL},
};

int main(void)
{
    h_init(120);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t03_errors", tests))
        return 1;
    return h_run();
}
