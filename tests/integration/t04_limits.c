/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connection limits: the idle-before-AUTH timeout and max_connections.
 */
#include <string.h>

#include "harness.h"

/* auth_timeout = 1: a silent client gets the ERROR and is closed within
 * about 3 s; an authenticated one is left alone. */
static void test_auth_timeout(void)
{
    struct h_broker *b = h_std_broker("auth_timeout = 1\n");
    int idle, sub, pub, sync;
    int64_t t0, t_err, t_eof;

    CU_ASSERT_FATAL(b != NULL);
    sub = h_std_client(b, "sub1");
    pub = h_std_client(b, "pub1");
    sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(sub >= 0 && pub >= 0 && sync >= 0);

    t0 = h_now_ms();
    idle = h_connect(b->port);
    CU_ASSERT_FATAL(idle >= 0);
    CU_ASSERT_FATAL(h_read_info(idle, false, NULL, NULL));
    CU_ASSERT(h_expect_error(idle, "Timed out waiting for AUTH"));
    t_err = h_now_ms() - t0;
    CU_ASSERT(h_expect_eof(idle, 3000));
    t_eof = h_now_ms() - t0;
    fprintf(stderr, "  auth timeout: ERROR after %lld ms, EOF after %lld ms\n", (long long)t_err,
            (long long)t_eof);
    CU_ASSERT(t_err >= 800);
    CU_ASSERT(t_eof <= 3000);

    /* the clients that authenticated before are still served, well after
     * auth_timeout */
    while (h_now_ms() - t0 < 2500)
        h_sleep_ms(50);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "still here"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "still here"));
    CU_ASSERT(h_expect_silence(pub, 10));
    H_FINISH(b);
}

/* Half an AUTH frame and then nothing is still waiting for AUTH: the
 * timeout closes it too (no slowloris hole). */
static void test_auth_timeout_partial_frame(void)
{
    struct h_broker *b = h_std_broker("auth_timeout = 1\n");
    struct h_frame f = {0};
    int64_t t0;
    int fd, r;

    CU_ASSERT_FATAL(b != NULL);
    t0 = h_now_ms();
    fd = h_connect(b->port);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(h_read_info(fd, false, NULL, NULL));
    CU_ASSERT_FATAL(h_send(fd, "\x00\x00\x00\x1e\x02\x04pub", 9));
    r = h_read_frame(fd, 3000, &f);
    if (r == H_FRAME) {
        CU_ASSERT(f.op == H_OP_ERROR);
        CU_ASSERT(f.len - 5 == strlen("Timed out waiting for AUTH") &&
                  memcmp(f.raw + 5, "Timed out waiting for AUTH", f.len - 5) == 0);
        r = h_read_frame(fd, 1000, &f);
    }
    CU_ASSERT(r == H_EOF || r == H_RESET);
    if (r != H_EOF && r != H_RESET)
        fprintf(stderr, "  partial AUTH: got %s instead of a close\n", h_read_str(r));
    CU_ASSERT(h_now_ms() - t0 <= 3500);
    h_frame_clear(&f);
    H_FINISH(b);
}

/* Reads the refusal of a connection over the limit: an INFO before the
 * ERROR is tolerated, the ERROR text and the close are not optional. */
static bool refused_too_many(int fd)
{
    struct h_frame f = {0};
    int r = h_read_frame(fd, H_WAIT_MS, &f);
    bool ok;

    if (r == H_FRAME && f.op == H_OP_INFO)
        r = h_read_frame(fd, H_WAIT_MS, &f);
    ok = r == H_FRAME && f.op == H_OP_ERROR && f.len - 5 == strlen("Too many connections") &&
         memcmp(f.raw + 5, "Too many connections", f.len - 5) == 0;
    if (!ok)
        fprintf(stderr, "  6th connection: expected ERROR \"Too many connections\", got %s%s%.*s\n",
                h_read_str(r), r == H_FRAME && f.op == H_OP_ERROR ? ": " : "",
                r == H_FRAME && f.op == H_OP_ERROR ? (int)(f.len - 5) : 0,
                r == H_FRAME ? (const char *)f.raw + 5 : "");
    h_frame_clear(&f);
    return ok && h_expect_eof(fd, H_WAIT_MS);
}

/* Connects and authenticates when the broker lets the connection in;
 * -1 (quietly) when it is refused. */
static int try_session(struct h_broker *b, const char *ident)
{
    struct h_frame f = {0};
    char *secret = g_strconcat(ident, "-secret", NULL);
    int fd = h_connect(b->port);
    bool ok = false;

    if (fd >= 0 && h_read_frame(fd, H_WAIT_MS, &f) == H_FRAME && f.op == H_OP_INFO &&
        f.len == 6u + f.raw[5] + 4u) {
        uint8_t hash[20];
        GByteArray *out = g_byte_array_new();
        h_auth_hash(f.raw + 6 + f.raw[5], secret, hash);
        h_enc_auth(out, ident, hash);
        ok = h_send(fd, out->data, out->len) && h_expect_silence(fd, 100);
        g_byte_array_free(out, TRUE);
    }
    h_frame_clear(&f);
    g_free(secret);
    if (!ok && fd >= 0) {
        h_close(fd);
        fd = -1;
    }
    return fd;
}

static void test_max_connections(void)
{
    struct h_broker *b = h_std_broker("max_connections = 5\n");
    int sub, pub, idle1, idle2, extra, fd;
    int64_t deadline;

    CU_ASSERT_FATAL(b != NULL);
    /* five: three authenticated, two that only read INFO */
    sub = h_std_client(b, "sub1");
    pub = h_std_client(b, "pub1");
    extra = h_std_client(b, "sub2");
    idle1 = h_connect(b->port);
    idle2 = h_connect(b->port);
    CU_ASSERT_FATAL(sub >= 0 && pub >= 0 && extra >= 0 && idle1 >= 0 && idle2 >= 0);
    CU_ASSERT_FATAL(h_read_info(idle1, false, NULL, NULL));
    CU_ASSERT_FATAL(h_read_info(idle2, false, NULL, NULL));

    /* the sixth is refused, twice in a row */
    for (int i = 0; i < 2; i++) {
        fd = h_connect(b->port);
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT(refused_too_many(fd));
        h_close(fd);
    }

    /* the five are unaffected */
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", pub, "pub1"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "five is fine"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "five is fine"));
    CU_ASSERT(h_expect_silence(idle1, 10));

    /* one leaves: a new one is accepted once the broker has seen the
     * close (retried briefly, the close is asynchronous) */
    h_close(idle1);
    deadline = h_now_ms() + 5000;
    fd = -1;
    while (fd < 0 && h_now_ms() < deadline) {
        fd = try_session(b, "sub3");
        if (fd < 0)
            h_sleep_ms(100);
    }
    CU_ASSERT_FATAL(fd >= 0);
    /* the new one is a full session */
    CU_ASSERT_FATAL(h_sub(fd, "sub3", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, fd, "sub3", pub, "pub1"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "welcome"));
    CU_ASSERT(h_expect_pub_str(fd, "pub1", "chan.a", "welcome"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "welcome"));

    /* and the limit holds again */
    idle1 = h_connect(b->port);
    CU_ASSERT_FATAL(idle1 >= 0);
    CU_ASSERT(refused_too_many(idle1));
    H_FINISH(b);
}

/* Refused connections do not count: after many refusals, closing all five
 * lets five new ones in, and they work. */
static void test_max_connections_recovers(void)
{
    struct h_broker *b = h_std_broker("max_connections = 5\n");
    int fds[5], fd;
    int64_t deadline;
    int ok = 0;

    CU_ASSERT_FATAL(b != NULL);
    for (int i = 0; i < 5; i++) {
        fds[i] = h_connect(b->port);
        CU_ASSERT_FATAL(fds[i] >= 0);
        CU_ASSERT_FATAL(h_read_info(fds[i], false, NULL, NULL));
    }
    for (int i = 0; i < 20; i++) {
        fd = h_connect(b->port);
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT_FATAL(refused_too_many(fd));
        h_close(fd);
    }
    for (int i = 0; i < 5; i++)
        h_close(fds[i]);

    /* five fresh sessions, accepted within a bounded time */
    deadline = h_now_ms() + 5000;
    while (ok < 5 && h_now_ms() < deadline) {
        const char *ident = ok == 0 ? "sub1" : ok == 1 ? "pub1" : "sync";
        fd = try_session(b, ident);
        if (fd >= 0)
            fds[ok++] = fd;
        else
            h_sleep_ms(100);
    }
    CU_ASSERT_FATAL(ok == 5);
    CU_ASSERT_FATAL(h_sub(fds[0], "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, fds[0], "sub1", fds[2], "sync"));
    CU_ASSERT_FATAL(h_pub_str(fds[1], "pub1", "chan.a", "back to normal"));
    CU_ASSERT(h_expect_pub_str(fds[0], "pub1", "chan.a", "back to normal"));
    H_FINISH(b);
}

static const struct h_test tests[] = {
    {"auth_timeout closes a silent client", test_auth_timeout},
    {"auth_timeout closes a half-sent AUTH", test_auth_timeout_partial_frame},
    {"max_connections refuses the sixth", test_max_connections},
    {"max_connections: refusals do not count", test_max_connections_recovers},
    {NULL, NULL},
};

int main(void)
{
    h_init(120);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t04_limits", tests))
        return 1;
    return h_run();
}
