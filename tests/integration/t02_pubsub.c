/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Routing with access = channels: byte-exact delivery, self-delivery,
 * duplicate subscriptions, unsubscribe, fanout and channel isolation.
 */
#include <string.h>

#include "harness.h"

/* Subscribers get the publisher's frame byte for byte: binary payloads,
 * an empty payload, and a large one. */
static void test_byte_identical(void)
{
    struct h_broker *b = h_std_broker(NULL);
    uint8_t all[256];
    GByteArray *big = g_byte_array_new();
    int sub, pub, sync;

    h_std_pubsub(b, "chan.bin", &sub, &pub, &sync);

    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(255 - i);
    for (guint i = 0; i < 200000; i++) {
        uint8_t c = (uint8_t)(i * 7 + (i >> 8));
        g_byte_array_append(big, &c, 1);
    }
    CU_ASSERT_FATAL(h_pub(pub, "pub1", "chan.bin", all, sizeof all));
    CU_ASSERT_FATAL(h_pub(pub, "pub1", "chan.bin", NULL, 0));
    CU_ASSERT_FATAL(h_pub(pub, "pub1", "chan.bin", big->data, big->len));
    CU_ASSERT(h_expect_pub(sub, "pub1", "chan.bin", all, sizeof all));
    CU_ASSERT(h_expect_pub(sub, "pub1", "chan.bin", NULL, 0));
    CU_ASSERT(h_expect_pub(sub, "pub1", "chan.bin", big->data, big->len));
    /* not subscribed: the publisher does not get its own message */
    CU_ASSERT(h_expect_silence(pub, 200));
    g_byte_array_free(big, TRUE);
    H_FINISH(b);
}

static void test_self_delivery(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int self, sync;

    CU_ASSERT_FATAL(b != NULL);
    self = h_std_client(b, "self");
    sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(self >= 0 && sync >= 0);
    CU_ASSERT_FATAL(h_sub(self, "self", "chan.self"));
    CU_ASSERT_FATAL(h_barrier1(b, self, "self", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(self, "self", "chan.self", "echo"));
    CU_ASSERT(h_expect_pub_str(self, "self", "chan.self", "echo"));
    CU_ASSERT(h_expect_silence(self, 200));
    H_FINISH(b);
}

static void test_subscribe_twice_delivers_once(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, pub, sync;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "once"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "next"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "once"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "next"));
    CU_ASSERT(h_expect_silence(sub, 200));

    /* one UNSUBSCRIBE undoes both */
    CU_ASSERT_FATAL(h_unsub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "gone"));
    CU_ASSERT(h_expect_silence(sub, 300));
    H_FINISH(b);
}

static void test_unsubscribe_stops_delivery(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, pub, sync;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.b"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "a1"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "a1"));

    CU_ASSERT_FATAL(h_unsub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    /* a2 must be skipped; b1 (other channel, same publisher, sent after)
     * must be the next thing the subscriber sees */
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "a2"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.b", "b1"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.b", "b1"));
    CU_ASSERT(h_expect_silence(sub, 200));

    /* subscribing again works again */
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "a3"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "a3"));
    H_FINISH(b);
}

static void test_unsubscribe_unknown_is_noop(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, pub, sync;

    h_std_trio(b, &sub, &pub, &sync);
    CU_ASSERT_FATAL(h_unsub(sub, "sub1", "chan.b"));
    CU_ASSERT_FATAL(h_unsub(sub, "sub1", "never.heard.of"));
    CU_ASSERT(h_expect_silence(sub, 300));
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "still fine"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "still fine"));
    H_FINISH(b);
}

static void test_fanout(void)
{
    struct h_broker *b = h_std_broker(NULL);
    const char *idents[3] = {"sub1", "sub2", "sub3"};
    int subs[3], pub, sync;

    CU_ASSERT_FATAL(b != NULL);
    for (int i = 0; i < 3; i++) {
        subs[i] = h_std_client(b, idents[i]);
        CU_ASSERT_FATAL(subs[i] >= 0);
        CU_ASSERT_FATAL(h_sub(subs[i], idents[i], "chan.a"));
    }
    pub = h_std_client(b, "pub1");
    sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(pub >= 0 && sync >= 0);
    CU_ASSERT_FATAL(h_barrier(b, subs, idents, 3, sync, "sync"));
    for (int m = 0; m < 20; m++) {
        char payload[32];
        snprintf(payload, sizeof payload, "msg-%d", m);
        CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", payload));
    }
    for (int i = 0; i < 3; i++) {
        for (int m = 0; m < 20; m++) {
            char payload[32];
            snprintf(payload, sizeof payload, "msg-%d", m);
            CU_ASSERT(h_expect_pub_str(subs[i], "pub1", "chan.a", payload));
        }
        CU_ASSERT(h_expect_silence(subs[i], 100));
    }
    H_FINISH(b);
}

/* A message on chan.a never reaches a subscriber of chan.b only. */
static void test_channel_isolation(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sa, sb, pub, sync;

    h_std_pubsub2(b, "chan.a", "chan.b", &sa, &sb, &pub, &sync);
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "for-a"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.b", "for-b"));
    CU_ASSERT(h_expect_pub_str(sa, "pub1", "chan.a", "for-a"));
    CU_ASSERT(h_expect_pub_str(sb, "pub1", "chan.b", "for-b"));
    CU_ASSERT(h_expect_silence(sa, 200));
    CU_ASSERT(h_expect_silence(sb, 10));
    H_FINISH(b);
}

/* Each delivered frame carries its own publisher's ident. */
static void test_publisher_idents(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, p1, p2, self, sync;

    h_std_pubsub(b, "chan.a", &sub, &p1, &sync);
    p2 = h_std_client(b, "pub2");
    self = h_std_client(b, "self");
    CU_ASSERT_FATAL(p2 >= 0 && self >= 0);
    CU_ASSERT_FATAL(h_pub_str(p1, "pub1", "chan.a", "from-1"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "from-1"));
    CU_ASSERT_FATAL(h_pub_str(p2, "pub2", "chan.a", "from-2"));
    CU_ASSERT(h_expect_pub_str(sub, "pub2", "chan.a", "from-2"));
    CU_ASSERT_FATAL(h_pub_str(self, "self", "chan.a", "from-self"));
    CU_ASSERT(h_expect_pub_str(sub, "self", "chan.a", "from-self"));
    H_FINISH(b);
}

/* 2000 messages written in one go arrive complete and in order. */
static void test_order_preserved(void)
{
    struct h_broker *b = h_std_broker(NULL);
    GByteArray *burst = g_byte_array_new();
    int sub, pub, sync, n = 2000;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    for (int m = 0; m < n; m++) {
        char payload[32];
        snprintf(payload, sizeof payload, "seq %06d", m);
        h_enc_publish(burst, "pub1", "chan.a", payload, strlen(payload));
    }
    CU_ASSERT_FATAL(h_send(pub, burst->data, burst->len));
    g_byte_array_free(burst, TRUE);
    for (int m = 0; m < n; m++) {
        char payload[32];
        snprintf(payload, sizeof payload, "seq %06d", m);
        if (!h_expect_pub_str(sub, "pub1", "chan.a", payload)) {
            CU_FAIL("message missing or out of order");
            break;
        }
    }
    CU_ASSERT(h_expect_silence(sub, 100));
    H_FINISH(b);
}

/* A subscriber that goes away does not disturb the others. */
static void test_subscriber_leaves(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int s1, s2, pub, sync;

    h_std_pubsub2(b, "chan.a", "chan.a", &s1, &s2, &pub, &sync);
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "both"));
    CU_ASSERT(h_expect_pub_str(s1, "pub1", "chan.a", "both"));
    CU_ASSERT(h_expect_pub_str(s2, "pub1", "chan.a", "both"));
    h_close(s2);
    for (int m = 0; m < 50; m++)
        CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "after"));
    for (int m = 0; m < 50; m++)
        CU_ASSERT(h_expect_pub_str(s1, "pub1", "chan.a", "after"));
    /* the same ident may be connected twice; both get their copy */
    s2 = h_std_subscriber(b, "sub1", "chan.a", sync);
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "twice"));
    CU_ASSERT(h_expect_pub_str(s1, "pub1", "chan.a", "twice"));
    CU_ASSERT(h_expect_pub_str(s2, "pub1", "chan.a", "twice"));
    H_FINISH(b);
}

static const struct h_test tests[] = {
    {"delivered frames are byte-identical", test_byte_identical},
    {"publisher receives its own messages", test_self_delivery},
    {"subscribe twice, delivered once", test_subscribe_twice_delivers_once},
    {"unsubscribe stops delivery", test_unsubscribe_stops_delivery},
    {"unsubscribe of an unknown channel is a no-op", test_unsubscribe_unknown_is_noop},
    {"fanout to several subscribers", test_fanout},
    {"channels are isolated", test_channel_isolation},
    {"frames carry the publisher's ident", test_publisher_idents},
    {"order preserved over a 2000-message burst", test_order_preserved},
    {"a leaving subscriber does not disturb others", test_subscriber_leaves},
    {NULL, NULL},
};

int main(void)
{
    h_init(120);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t02_pubsub", tests))
        return 1;
    return h_run();
}
