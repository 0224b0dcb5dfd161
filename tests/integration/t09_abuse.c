/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Abuse resistance, with many offenders at once: the per-address
 * connection cap, the AUTH-failure back-off, a crowd trickling frames a
 * byte at a time, a crowd of half-open connections (connected, then
 * neither reading nor writing, before and after AUTH).  In each, the
 * well-behaved clients keep getting their messages promptly, and the
 * broker's descriptors go back to where they were.
 *
 * Offenders connect from addresses of their own on the loopback network
 * (127.0.0.x), so the per-address rules apply to them and not to the
 * well-behaved clients on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define CROWD 100

/* A TCP connection to 127.0.0.1:port from the address src (blocking). */
static int connect_from(const char *src, int port, int rcvbuf)
{
    struct sockaddr_in a = {.sin_family = AF_INET}, d = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    inet_pton(AF_INET, src, &a.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
    d.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        connect(fd, (struct sockaddr *)&d, sizeof d) < 0) {
        fprintf(stderr, "  connect from %s: %s\n", src, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The next frame is an ERROR with text (an INFO first is tolerated), then EOF. */
static bool refused_with(int fd, const char *text)
{
    struct h_frame f = {0};
    int r = h_read_frame(fd, H_WAIT_MS, &f);
    if (r == H_FRAME && f.op == H_OP_INFO)
        r = h_read_frame(fd, H_WAIT_MS, &f);
    bool ok = r == H_FRAME && f.op == H_OP_ERROR && f.len - 5 == strlen(text) &&
              memcmp(f.raw + 5, text, f.len - 5) == 0;
    if (!ok)
        fprintf(stderr, "  expected ERROR \"%s\", got %s%s%.*s\n", text, h_read_str(r),
                r == H_FRAME ? ": " : "", r == H_FRAME ? (int)(f.len - 5) : 0,
                r == H_FRAME ? (const char *)f.raw + 5 : "");
    h_frame_clear(&f);
    return ok && h_expect_eof(fd, H_WAIT_MS);
}

/* sub (subscribed to chan.a) gets pub1's message promptly; the ms it took. */
static int64_t round_trip(int pub, int sub, const char *text)
{
    int64_t t0 = h_now_ms();
    if (!h_pub_str(pub, "pub1", "chan.a", text) || !h_expect_pub_str(sub, "pub1", "chan.a", text))
        return -1;
    return h_now_ms() - t0;
}

static void test_per_ip_cap(void)
{
    struct h_broker *b = h_std_broker("max_connections_per_ip = 3\n");
    int sub, pub, sync, fds0, capped[3], other, fd;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    fds0 = h_broker_fds(b);

    /* three from 127.0.0.5 are fine, authenticated or not */
    capped[0] = connect_from("127.0.0.5", b->port, 0);
    capped[1] = connect_from("127.0.0.5", b->port, 0);
    capped[2] = connect_from("127.0.0.5", b->port, 0);
    CU_ASSERT_FATAL(h_auth(capped[0], "sub2", "sub2-secret"));
    CU_ASSERT_FATAL(h_read_info(capped[1], false, NULL, NULL));
    CU_ASSERT_FATAL(h_read_info(capped[2], false, NULL, NULL));
    /* the fourth and fifth are refused */
    for (int i = 0; i < 2; i++) {
        fd = connect_from("127.0.0.5", b->port, 0);
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT(refused_with(fd, "Too many connections from your address"));
        close(fd);
    }
    /* another address is not affected, nor are the clients on 127.0.0.1 */
    other = connect_from("127.0.0.6", b->port, 0);
    CU_ASSERT_FATAL(h_auth(other, "sub3", "sub3-secret"));
    CU_ASSERT_FATAL(h_sub(other, "sub3", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, other, "sub3", sync, "sync"));
    CU_ASSERT(round_trip(pub, sub, "cap 1") >= 0);
    CU_ASSERT(h_expect_pub_str(other, "pub1", "chan.a", "cap 1"));

    /* one of the three leaves: 127.0.0.5 may connect again (the close is
     * seen asynchronously: retried for a while) */
    close(capped[1]);
    capped[1] = -1;
    int64_t deadline = h_now_ms() + 5000;
    bool back = false;
    while (!back && h_now_ms() < deadline) {
        fd = connect_from("127.0.0.5", b->port, 0);
        struct h_frame f = {0};
        back = fd >= 0 && h_read_frame(fd, H_WAIT_MS, &f) == H_FRAME && f.op == H_OP_INFO &&
               h_expect_silence(fd, 100);
        h_frame_clear(&f);
        if (!back) {
            if (fd >= 0)
                close(fd);
            h_sleep_ms(100);
        } else {
            capped[1] = fd;
        }
    }
    CU_ASSERT(back);

    /* everyone from the capped address leaves: every descriptor comes back */
    for (int i = 0; i < 3; i++)
        if (capped[i] >= 0)
            close(capped[i]);
    close(other);
    int n = h_broker_wait_fds(b, fds0, 5000);
    fprintf(stderr, "  broker descriptors: %d before, %d after\n", fds0, n);
    CU_ASSERT(n >= 0 && n <= fds0);
    CU_ASSERT(round_trip(pub, sub, "cap 2") >= 0);
    H_FINISH(b);
}

static void test_auth_backoff(void)
{
    struct h_broker *b = h_std_broker("auth_failures_before_backoff = 3\nauth_backoff = 2\n");
    int sub, pub, sync, fd;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);

    /* three failed AUTHs from 127.0.0.7 */
    for (int i = 0; i < 3; i++) {
        fd = connect_from("127.0.0.7", b->port, 0);
        CU_ASSERT_FATAL(h_auth(fd, "sub2", "wrong"));
        CU_ASSERT(h_expect_error(fd, "Authentication failed for sub2"));
        CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
        close(fd);
    }
    /* now 127.0.0.7 is refused at once, even with the right secret */
    int64_t t_refused = h_now_ms();
    fd = connect_from("127.0.0.7", b->port, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(
        refused_with(fd, "Too many authentication failures from your address; try again later"));
    close(fd);
    /* another address, and the clients already in, are not affected */
    fd = connect_from("127.0.0.8", b->port, 0);
    CU_ASSERT_FATAL(h_auth(fd, "sub2", "sub2-secret"));
    CU_ASSERT_FATAL(h_sub(fd, "sub2", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, fd, "sub2", sync, "sync"));
    CU_ASSERT(round_trip(pub, sub, "backoff 1") >= 0);
    CU_ASSERT(h_expect_pub_str(fd, "pub1", "chan.a", "backoff 1"));
    close(fd);

    /* after auth_backoff seconds 127.0.0.7 gets in again */
    while (h_now_ms() - t_refused < 2500)
        h_sleep_ms(50);
    int64_t deadline = h_now_ms() + 3000;
    bool in = false;
    while (!in && h_now_ms() < deadline) {
        fd = connect_from("127.0.0.7", b->port, 0);
        in = h_auth(fd, "sub3", "sub3-secret") && h_sub(fd, "sub3", "chan.a") &&
             h_barrier1(b, fd, "sub3", sync, "sync");
        if (!in) {
            if (fd >= 0)
                close(fd);
            h_sleep_ms(200);
        }
    }
    CU_ASSERT_FATAL(in);
    CU_ASSERT(round_trip(pub, sub, "backoff 2") >= 0);
    CU_ASSERT(h_expect_pub_str(fd, "pub1", "chan.a", "backoff 2"));
    close(fd);
    H_FINISH(b);
}

/*
 * CROWD connections trickle at once: half send their AUTH a byte at a
 * time, half authenticate and then a PUBLISH whose header claims 1 MiB, a
 * byte at a time.  Meanwhile pub1 -> sub1 round trips stay quick, and once
 * the crowd leaves the broker's descriptors and memory are back.
 */
static void test_trickle_crowd(void)
{
    struct h_broker *b = h_std_broker("auth_timeout = 30\n");
    int sub, pub, sync, fds0, crowd[CROWD];
    GByteArray *frames[CROWD];
    size_t pos[CROWD];
    long rss0, rss_busy, rss_end;
    int64_t worst = 0;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    fds0 = h_broker_fds(b);
    rss0 = h_broker_rss_kb(b);

    for (int i = 0; i < CROWD; i++) {
        char src[32];
        uint8_t nonce[4], hash[20];
        snprintf(src, sizeof src, "127.0.0.%d", 20 + i % 50);
        crowd[i] = connect_from(src, b->port, 0);
        CU_ASSERT_FATAL(crowd[i] >= 0);
        CU_ASSERT_FATAL(h_read_info(crowd[i], false, NULL, nonce));
        frames[i] = g_byte_array_new();
        pos[i] = 0;
        h_auth_hash(nonce, "pub2-secret", hash);
        if (i % 2) {
            /* authenticated now; then 1 MiB announced, a byte at a time */
            GByteArray *auth = g_byte_array_new();
            h_enc_auth(auth, "pub2", hash);
            CU_ASSERT_FATAL(h_send(crowd[i], auth->data, auth->len));
            g_byte_array_free(auth, TRUE);
            static const uint8_t hdr[] = {0x00, 0x10, 0x00, 0x00, H_OP_PUBLISH,
                                          4,    'p',  'u',  'b',  '2'};
            g_byte_array_append(frames[i], hdr, sizeof hdr);
            for (int k = 0; k < 400; k++)
                g_byte_array_append(frames[i], (const uint8_t *)"x", 1);
        } else {
            h_enc_auth(frames[i], "pub2", hash);
        }
    }
    /* ~3 s: one byte from every crowd member per round, a round trip
     * between rounds */
    int64_t t_end = h_now_ms() + 3000;
    int rounds = 0;
    while (h_now_ms() < t_end) {
        for (int i = 0; i < CROWD; i++)
            if (pos[i] < frames[i]->len &&
                send(crowd[i], frames[i]->data + pos[i]++, 1, MSG_NOSIGNAL) != 1)
                CU_FAIL("a trickling client was cut off early");
        char text[32];
        snprintf(text, sizeof text, "round %d", rounds++);
        int64_t ms = round_trip(pub, sub, text);
        CU_ASSERT_FATAL(ms >= 0);
        if (ms > worst)
            worst = ms;
        h_sleep_ms(20);
    }
    rss_busy = h_broker_rss_kb(b);
    fprintf(stderr, "  %d trickle rounds, slowest round trip %lld ms; broker RSS %ld -> %ld KiB\n",
            rounds, (long long)worst, rss0, rss_busy);
    CU_ASSERT(worst < 1000);
    /* 100 connections and their partial frames: a few MiB at most, not
     * 100 x the 1 MiB they announced */
    CU_ASSERT(rss_busy - rss0 < 16 * 1024);
    for (int i = 0; i < CROWD; i++) {
        close(crowd[i]);
        g_byte_array_free(frames[i], TRUE);
    }
    int n = h_broker_wait_fds(b, fds0, 5000);
    rss_end = h_broker_rss_kb(b);
    fprintf(stderr, "  broker descriptors: %d before, %d after; RSS at the end %ld KiB\n", fds0, n,
            rss_end);
    CU_ASSERT(n >= 0 && n <= fds0);
    CU_ASSERT(round_trip(pub, sub, "after the crowd") >= 0);
    H_FINISH(b);
}

/*
 * CROWD half-open connections: half never send anything after connecting
 * (closed by auth_timeout), half authenticate, subscribe and never read
 * again (closed by slow_deadline once their queue is full).  The broker
 * closes all of them on its own, while our ends stay open, and the
 * subscriber that reads gets every message in the meantime.
 */
static void test_half_open_crowd(void)
{
    struct h_broker *b = h_std_broker("auth_timeout = 2\nmax_queued_bytes = 64K\n"
                                      "slow_deadline = 1\n");
    int sub, pub, sync, fds0, crowd[CROWD];
    char payload[8192];
    int64_t worst = 0;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    fds0 = h_broker_fds(b);

    for (int i = 0; i < CROWD; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 100 + i % 50);
        crowd[i] = connect_from(src, b->port, 4096);
        CU_ASSERT_FATAL(crowd[i] >= 0);
        if (i % 2) {
            CU_ASSERT_FATAL(h_auth(crowd[i], "sub2", "sub2-secret"));
            CU_ASSERT_FATAL(h_sub(crowd[i], "sub2", "chan.a"));
        }
    }
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    int with_crowd = h_broker_fds(b);

    /* 8 KiB messages, each read by sub1 before the next: the stalled ones
     * fill up and are dropped, sub1 gets every one, in order */
    memset(payload, 'h', sizeof payload);
    int64_t t0 = h_now_ms();
    int sent = 0;
    bool all = true;
    while (all && h_now_ms() - t0 < 3000) {
        snprintf(payload, 16, "%08d", sent);
        int64_t t = h_now_ms();
        all = h_pub(pub, "pub1", "chan.a", payload, sizeof payload) &&
              h_expect_pub(sub, "pub1", "chan.a", payload, sizeof payload);
        if (h_now_ms() - t > worst)
            worst = h_now_ms() - t;
        sent++;
        h_sleep_ms(2);
    }
    CU_ASSERT_FATAL(all);
    int n = h_broker_wait_fds(b, fds0, 10000);
    fprintf(stderr,
            "  %d messages, slowest %lld ms; broker descriptors %d before, %d with the "
            "crowd, %d after (our ends still open)\n",
            sent, (long long)worst, fds0, with_crowd, n);
    CU_ASSERT(with_crowd >= fds0 + CROWD);
    CU_ASSERT(worst < 1000);
    CU_ASSERT(n >= 0 && n <= fds0);
    for (int i = 0; i < CROWD; i++)
        close(crowd[i]);
    CU_ASSERT(round_trip(pub, sub, "after the half-open crowd") >= 0);
    H_FINISH(b);
}

static const struct h_test tests[] = {
    {"per-address connection cap", test_per_ip_cap},
    {"AUTH-failure back-off per address", test_auth_backoff},
    {"100 clients trickling a byte at a time", test_trickle_crowd},
    {"100 half-open connections, before and after AUTH", test_half_open_crowd},
    {NULL, NULL},
};

int main(void)
{
    h_init(150);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t09_abuse", tests))
        return 1;
    return h_run();
}
