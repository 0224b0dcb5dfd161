/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Graceful stop: on SIGTERM (and SIGINT) the broker stops reading, gives
 * subscribers up to 2 s to take what is already queued for them, then
 * closes and exits 0.  Here a subscriber that has not read anything yet
 * holds a backlog of about 1 MiB when the signal comes: it must still get
 * every message, in order, then EOF.  (Sinks and storage counters on
 * SIGTERM: tests/sinks/test_sink_file.py "burst + SIGTERM" and
 * tests/system/test_counters.py.)
 */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define N_MSGS  256
#define MSG_LEN 4096

static void backlog_then_signal(int sig)
{
    struct h_broker *b = h_std_broker(NULL);
    int lazy, other, pub;
    uint8_t payload[MSG_LEN];
    struct h_frame f = {0};

    CU_ASSERT_FATAL(b != NULL);
    lazy = h_connect_opt(b->port, 4096);
    CU_ASSERT_FATAL(lazy >= 0 && h_auth(lazy, "sub1", "sub1-secret"));
    CU_ASSERT_FATAL(h_sub(lazy, "sub1", "chan.a"));
    other = h_std_client(b, "sub2");
    pub = h_std_client(b, "pub1");
    CU_ASSERT_FATAL(other >= 0 && pub >= 0);
    CU_ASSERT_FATAL(h_barrier1(b, lazy, "sub1", pub, "pub1"));
    CU_ASSERT_FATAL(h_sub(other, "sub2", "chan.b"));
    CU_ASSERT_FATAL(h_barrier1(b, other, "sub2", pub, "pub1"));

    for (int i = 0; i < N_MSGS; i++) {
        memset(payload, 'a' + i % 26, sizeof payload);
        memcpy(payload, &i, sizeof i);
        CU_ASSERT_FATAL(h_pub(pub, "pub1", "chan.a", payload, sizeof payload));
    }
    /* the broker has processed all of them once this arrives (same
     * connection, in order) */
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.b", "all sent"));
    CU_ASSERT_FATAL(h_expect_pub_str(other, "pub1", "chan.b", "all sent"));

    kill(b->pid, sig);
    int64_t t0 = h_now_ms();
    int got = 0, r;
    bool in_order = true;
    while ((r = h_read_frame(lazy, 3000, &f)) == H_FRAME) {
        const uint8_t *id, *ch, *pl;
        size_t il, cl, pll;
        int seq = -1;
        if (!h_parse_publish(&f, &id, &il, &ch, &cl, &pl, &pll) || pll != MSG_LEN)
            break;
        memcpy(&seq, pl, sizeof seq);
        in_order = in_order && seq == got;
        got++;
    }
    h_frame_clear(&f);
    fprintf(stderr, "  after %s: %d of %d queued messages, then %s after %lld ms\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", got, N_MSGS, h_read_str(r),
            (long long)(h_now_ms() - t0));
    CU_ASSERT(got == N_MSGS);
    CU_ASSERT(in_order);
    CU_ASSERT(r == H_EOF);
    CU_ASSERT(h_expect_eof(other, 3000));
    /* it exits by itself: no second signal (one that arrives after the
     * handlers are gone would kill it) */
    CU_ASSERT(h_broker_wait_exit(b, 10000));
}

static void test_sigterm_backlog(void) { backlog_then_signal(SIGTERM); }
static void test_sigint_backlog(void) { backlog_then_signal(SIGINT); }

static const struct h_test tests[] = {
    {"SIGTERM: a subscriber's backlog is delivered, then EOF, exit 0", test_sigterm_backlog},
    {"SIGINT: the same", test_sigint_backlog},
    {NULL, NULL},
};

int main(void)
{
    h_init(60);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t10_shutdown", tests))
        return 1;
    return h_run();
}
