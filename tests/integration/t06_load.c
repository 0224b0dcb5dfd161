/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Many clients at once: 100 subscribers and 100 publishers authenticated
 * together, every message counted at every subscriber; connection churn
 * that must not leak descriptors; a publisher's burst read in large
 * batches, not 4 KiB per read; and what an idle subscribed session costs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "harness.h"

#define NSUB    100
#define NPUB    100
#define PER_PUB 5

/* Reads INFO without complaining when something else comes. */
static bool quiet_info(int fd, uint8_t nonce[4])
{
    struct h_frame f = {0};
    bool ok = h_read_frame_raw(fd, H_WAIT_MS, &f) == H_FRAME && f.op == H_OP_INFO &&
              f.len == 6u + f.raw[5] + 4u;

    if (ok && nonce)
        memcpy(nonce, f.raw + 6 + f.raw[5], 4);
    h_frame_clear(&f);
    return ok;
}

static bool quiet_auth(int fd, const char *ident, const char *secret)
{
    uint8_t nonce[4];

    return quiet_info(fd, nonce) && h_send_auth(fd, nonce, ident, secret);
}

static void test_200_clients(void)
{
    struct h_broker *b = h_broker_new();
    char *sub_ident[NSUB], *pub_ident[NPUB];
    int subs[NSUB], pubs[NPUB], sync;
    uint8_t nonce[NSUB + NPUB][4];
    /* got[s][p]: messages from publisher p seen by subscriber s, in order */
    static int got[NSUB][NPUB];
    int done = 0, total_frames = 0, bad = 0;
    int64_t deadline;

    CU_ASSERT_FATAL(b != NULL);
    memset(got, 0, sizeof got);
    for (int i = 0; i < NSUB; i++) {
        sub_ident[i] = g_strdup_printf("s%03d", i);
        CU_ASSERT_FATAL(h_broker_add_key(b, sub_ident[i], "load-secret", "", "load"));
    }
    for (int i = 0; i < NPUB; i++) {
        pub_ident[i] = g_strdup_printf("p%03d", i);
        CU_ASSERT_FATAL(h_broker_add_key(b, pub_ident[i], "load-secret", "load", ""));
    }
    CU_ASSERT_FATAL(h_broker_add_key(b, "sync", "sync-secret", "", ""));
    CU_ASSERT_FATAL(h_broker_start(b, "max_connections = 1000\n"));

    /* all 200 connected before anyone authenticates */
    for (int i = 0; i < NSUB + NPUB; i++) {
        int fd = h_connect(b->port);
        CU_ASSERT_FATAL(fd >= 0);
        if (i < NSUB)
            subs[i] = fd;
        else
            pubs[i - NSUB] = fd;
    }
    for (int i = 0; i < NSUB + NPUB; i++)
        CU_ASSERT_FATAL(h_read_info(i < NSUB ? subs[i] : pubs[i - NSUB], false, NULL, nonce[i]));
    /* then every AUTH (subscribers with their SUBSCRIBE) back to back */
    for (int i = 0; i < NSUB + NPUB; i++) {
        GByteArray *out = g_byte_array_new();
        uint8_t hash[20];
        const char *ident = i < NSUB ? sub_ident[i] : pub_ident[i - NSUB];
        h_auth_hash(nonce[i], "load-secret", hash);
        h_enc_auth(out, ident, hash);
        if (i < NSUB)
            h_enc_subscribe(out, ident, "load");
        CU_ASSERT_FATAL(h_send(i < NSUB ? subs[i] : pubs[i - NSUB], out->data, out->len));
        g_byte_array_free(out, TRUE);
    }
    sync = h_client(b->port, "sync", "sync-secret");
    CU_ASSERT_FATAL(sync >= 0);
    CU_ASSERT_FATAL(h_barrier(b, subs, (const char *const *)sub_ident, NSUB, sync, "sync"));

    /* publishers take turns, PER_PUB rounds */
    for (int m = 0; m < PER_PUB; m++) {
        for (int p = 0; p < NPUB; p++) {
            char payload[32];
            snprintf(payload, sizeof payload, "%03d:%d", p, m);
            CU_ASSERT_FATAL(h_pub_str(pubs[p], pub_ident[p], "load", payload));
        }
    }

    /* every subscriber gets every message exactly once, each publisher's
     * in its order */
    deadline = h_now_ms() + 15000;
    while (done < NSUB && h_now_ms() < deadline) {
        struct pollfd pfds[NSUB];
        for (int s = 0; s < NSUB; s++) {
            int n = 0;
            for (int p = 0; p < NPUB; p++)
                n += got[s][p];
            pfds[s].fd = n < NPUB * PER_PUB ? subs[s] : -1;
            pfds[s].events = POLLIN;
            pfds[s].revents = 0;
        }
        int left = (int)(deadline - h_now_ms());
        if (poll(pfds, NSUB, left > 0 ? left : 0) <= 0)
            break;
        for (int s = 0; s < NSUB; s++) {
            struct h_frame f = {0};
            const uint8_t *id, *ch, *pl;
            size_t il, cl, pll;
            int p, m;
            char text[32];

            if (!pfds[s].revents)
                continue;
            int r = h_read_frame(subs[s], 5000, &f);
            if (r == H_TIMEOUT) {
                /* only a sync straggler was there */
                continue;
            }
            if (r != H_FRAME || !h_parse_publish(&f, &id, &il, &ch, &cl, &pl, &pll) ||
                pll >= sizeof text) {
                fprintf(stderr, "  subscriber %d: %s\n", s, h_read_str(r));
                bad++;
                subs[s] = -1;
                h_frame_clear(&f);
                continue;
            }
            memcpy(text, pl, pll);
            text[pll] = '\0';
            total_frames++;
            if (sscanf(text, "%d:%d", &p, &m) != 2 || p < 0 || p >= NPUB || m != got[s][p] ||
                il != 4 || memcmp(id, pub_ident[p], 4) != 0 || cl != 4 ||
                memcmp(ch, "load", 4) != 0) {
                if (bad++ < 5)
                    fprintf(stderr, "  subscriber %d: unexpected message \"%s\"\n", s, text);
            } else if (++got[s][p] == PER_PUB) {
                bool all = true;
                for (int q = 0; q < NPUB && all; q++)
                    all = got[s][q] == PER_PUB;
                if (all)
                    done++;
            }
            h_frame_clear(&f);
        }
    }
    fprintf(stderr, "  %d of %d subscribers got all %d messages; %d frames, %d bad\n", done, NSUB,
            NPUB * PER_PUB, total_frames, bad);
    CU_ASSERT(done == NSUB);
    CU_ASSERT(bad == 0);
    CU_ASSERT(total_frames == NSUB * NPUB * PER_PUB);
    /* and nothing more arrives */
    for (int s = 0; s < NSUB; s++)
        if (subs[s] >= 0 && !h_expect_silence(subs[s], s == 0 ? 200 : 0))
            CU_FAIL("a subscriber got more than it should");
    for (int i = 0; i < NSUB; i++)
        g_free(sub_ident[i]);
    for (int i = 0; i < NPUB; i++)
        g_free(pub_ident[i]);
    H_FINISH(b);
}

/* 300 connections that end in every way (mid-INFO, mid-AUTH, failed AUTH,
 * bad frame, after subscribing): the broker keeps serving and its
 * descriptor count returns to where it was. */
static void test_churn_no_leak(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, pub, sync, fds0, fds1;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    fds0 = h_broker_fds(b);
    CU_ASSERT_FATAL(fds0 > 0);

    for (int i = 0; i < 300; i++) {
        int fd = h_connect(b->port);
        CU_ASSERT_FATAL(fd >= 0);
        switch (i % 6) {
        case 0: /* gone at once */
            break;
        case 1: /* half an AUTH */
            if (quiet_info(fd, NULL))
                h_send(fd, "\x00\x00\x00\x1e\x02\x04su", 8);
            break;
        case 2:
            /* a failed AUTH, not waiting for the answer; only a few, so
             * the per-address back-off does not turn the rest of the churn
             * into refusals at accept */
            if (i < 6 * 5)
                quiet_auth(fd, "sub1", "nope");
            else if (quiet_info(fd, NULL))
                h_sub(fd, "sub1", "chan.a"); /* first frame not AUTH */
            break;
        case 3: /* a bad frame */
            if (quiet_info(fd, NULL))
                h_send(fd, "\x00\x00\x00\x02\x02", 5);
            break;
        case 4: /* subscribed, then gone */
            if (quiet_auth(fd, "sub2", "sub2-secret"))
                h_sub(fd, "sub2", "chan.a");
            break;
        case 5: /* published, then gone */
            if (quiet_auth(fd, "pub1", "pub1-secret"))
                h_pub_str(fd, "pub1", "chan.a", "churn");
            break;
        }
        h_close(fd);
    }

    /* the survivors still work; "churn" messages may be interleaved */
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "after churn"));
    {
        struct h_frame f = {0};
        GByteArray *want = g_byte_array_new();
        bool found = false;
        h_enc_publish(want, "pub1", "chan.a", "after churn", 11);
        while (!found && h_read_frame(sub, H_WAIT_MS, &f) == H_FRAME)
            found = f.len == want->len && memcmp(f.raw, want->data, want->len) == 0;
        CU_ASSERT(found);
        h_frame_clear(&f);
        g_byte_array_free(want, TRUE);
    }

    /* every closed connection is released within a few seconds */
    fds1 = h_broker_wait_fds(b, fds0, 5000);
    fprintf(stderr, "  broker descriptors: %d before churn, %d after\n", fds0, fds1);
    CU_ASSERT(fds1 >= 0 && fds1 <= fds0);
    H_FINISH(b);
}

/* The daemon's read syscalls so far (all threads), -1 on error. */
static long long daemon_reads(pid_t pid)
{
    char path[64], *text = NULL;
    long long n = -1;
    g_snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
    if (g_file_get_contents(path, &text, NULL, NULL)) {
        const char *p = strstr(text, "syscr:");
        if (p)
            n = strtoll(p + 6, NULL, 10);
    }
    g_free(text);
    return n;
}

/* The daemon's process state letter ('T' when stopped), 0 on error. */
static char daemon_state(pid_t pid)
{
    char path[64], *text = NULL, st = 0;
    g_snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (g_file_get_contents(path, &text, NULL, NULL)) {
        const char *p = strrchr(text, ')');
        if (p && p[1] == ' ')
            st = p[2];
    }
    g_free(text);
    return st;
}

#define BURST_FRAMES  4096
#define BURST_PAYLOAD 1000

/*
 * What a publisher's socket holds is taken in large reads: with the daemon
 * stopped, queue a burst in its socket, let it go on, and count its read
 * syscalls until the subscriber has every message.  Reading 4 KiB per read
 * event would take at least one read per 4 KiB.
 */
static void test_burst_read_in_batches(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, pub, sync;
    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    GByteArray *burst = g_byte_array_new();
    uint8_t payload[BURST_PAYLOAD];
    for (int i = 0; i < BURST_FRAMES; i++) {
        memset(payload, 'a' + i % 26, sizeof payload);
        memcpy(payload, &i, sizeof i);
        h_enc_publish(burst, "pub1", "chan.a", payload, sizeof payload);
    }
    size_t flen = burst->len / BURST_FRAMES;

    CU_ASSERT_FATAL(kill(b->pid, SIGSTOP) == 0);
    int64_t deadline = h_now_ms() + H_WAIT_MS;
    while (daemon_state(b->pid) != 'T' && h_now_ms() < deadline)
        h_sleep_ms(1);
    CU_ASSERT_FATAL(daemon_state(b->pid) == 'T');
    /* As much as the sockets take while nobody reads them. */
    int fl = fcntl(pub, F_GETFL);
    fcntl(pub, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    for (;;) {
        ssize_t n = send(pub, burst->data + sent, burst->len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    fcntl(pub, F_SETFL, fl);
    long long reads0 = daemon_reads(b->pid);
    kill(b->pid, SIGCONT);
    size_t frames = (sent + flen - 1) / flen;
    if (sent % flen)
        CU_ASSERT_FATAL(h_send(pub, burst->data + sent, flen - sent % flen));
    bool in_order = true;
    for (size_t i = 0; i < frames && in_order; i++) {
        struct h_frame f = {0};
        const uint8_t *id, *ch, *pl;
        size_t il, cl, pll;
        int seq = -1;
        if (h_read_frame(sub, H_WAIT_MS, &f) == H_FRAME &&
            h_parse_publish(&f, &id, &il, &ch, &cl, &pl, &pll) && pll == BURST_PAYLOAD)
            memcpy(&seq, pl, sizeof seq);
        in_order = seq == (int)i;
        h_frame_clear(&f);
    }
    long long reads = daemon_reads(b->pid) - reads0;
    fprintf(stderr, "  burst of %zu bytes (%zu frames) queued while stopped: %lld daemon reads\n",
            sent, frames, reads);
    CU_ASSERT(in_order);
    CU_ASSERT(reads0 >= 0);
    /* Meaningful only with a burst well over one old read (4 KiB). */
    CU_ASSERT(sent >= 64 * 1024);
    CU_ASSERT(reads >= 1 && reads * 8192 < (long long)sent);
    g_byte_array_free(burst, TRUE);
    H_FINISH(b);
}

#define IDLE_SESSIONS 2000
/* Broker RSS per idle subscribed session: 3.3 KiB when every session had
 * its own permission tables and timer, 2.5 KiB while each kept its
 * bufferevent, 1.1 KiB since idle sessions are parked (conn.c). */
#define IDLE_MAX_KIB  1.5

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define POKE_MS 500

/* Longer than two idle sweeps: a session quiet this long is parked however
 * busy it was before (conn.c, "Parking"). */
#define PARK_QUIET_MS 2500

/* For up to ms: one frame from each session not poked yet that has one;
 * returns how many were pokes. */
static int read_pokes(const int *fds, bool *poked, int n, int ms)
{
    static struct pollfd p[IDLE_SESSIONS];
    static int which[IDLE_SESSIONS];
    int got = 0;
    int64_t end = h_now_ms() + ms;
    while (h_now_ms() < end) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!poked[i]) {
                p[k] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                which[k++] = i;
            }
        if (k == 0 || poll(p, (nfds_t)k, (int)MAX(1, end - h_now_ms())) <= 0)
            break;
        for (int j = 0; j < k; j++) {
            struct h_frame f = {0};
            if ((p[j].revents & POLLIN) && h_read_frame(fds[which[j]], 1000, &f) == H_FRAME &&
                f.op == H_OP_PUBLISH) {
                poked[which[j]] = true;
                got++;
            }
            h_frame_clear(&f);
        }
    }
    return got;
}

/*
 * Many idle sessions of one authkey, each subscribed: the broker's RSS
 * grows by less than IDLE_MAX_KIB a session.  One message on their channel
 * proves that every AUTH and SUBSCRIBE went through.  (Under ASan every
 * allocation carries redzones and freed memory is quarantined: the bound
 * is not checked there, the sessions still are.)
 */
static void test_idle_session_memory(void)
{
    struct rlimit rl;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < IDLE_SESSIONS + 200) {
        rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)IDLE_SESSIONS + 200);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    CU_ASSERT_FATAL(rl.rlim_cur >= IDLE_SESSIONS + 200);
    struct h_broker *b = h_broker_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_add_key(b, "idler", "idle-secret", "", "idle.chan"));
    CU_ASSERT_FATAL(h_broker_add_key(b, "poker", "poke-secret", "idle.chan", ""));
    CU_ASSERT_FATAL(h_broker_start(b, "max_connections = 5000\nmax_connections_per_ip = 5000\n"));
    int pub = h_client(b->port, "poker", "poke-secret");
    CU_ASSERT_FATAL(pub >= 0);
    /* The first session's sets and the allocator's first pages are not what is measured. */
    int first = h_client(b->port, "idler", "idle-secret");
    CU_ASSERT_FATAL(h_sub(first, "idler", "idle.chan"));
    CU_ASSERT_FATAL(h_barrier1(b, first, "idler", pub, "poker"));
    CU_ASSERT_FATAL(h_pub_str(pub, "poker", "idle.chan", "warm"));
    CU_ASSERT_FATAL(h_expect_pub_str(first, "poker", "idle.chan", "warm"));
    long rss0 = h_broker_rss_kb(b);
    static int fds[IDLE_SESSIONS];
    int made = 0;
    for (; made < IDLE_SESSIONS; made++) {
        fds[made] = h_client(b->port, "idler", "idle-secret");
        if (fds[made] < 0 || !h_sub(fds[made], "idler", "idle.chan"))
            break;
    }
    CU_ASSERT_FATAL(made == IDLE_SESSIONS);
    /* An AUTH or SUBSCRIBE may still be on its way (the worker checks AUTHs
     * one by one) when a poke goes out: poke again, every POKE_MS, until
     * every session has had one, reading whichever sessions have a frame. */
    static bool poked[IDLE_SESSIONS];
    int got = 0, round = 0;
    for (; round < 100 && got < made; round++) {
        CU_ASSERT_FATAL(h_pub_str(pub, "poker", "idle.chan", "poke"));
        got += read_pokes(fds, poked, made, POKE_MS);
    }
    CU_ASSERT(got == made);
    /* Idle: every session parked, even one the pokes woke often on a busy
     * machine (CI measured 1.6-1.8 KiB 200 ms after the pokes, 1.2 here). */
    h_sleep_ms(PARK_QUIET_MS);
    long rss1 = h_broker_rss_kb(b);
    double per = (double)(rss1 - rss0) / made;
    fprintf(stderr,
            "  %d idle subscribed sessions (%d pokes): broker RSS %ld -> %ld KiB, "
            "%.2f KiB each\n",
            made, round, rss0, rss1, per);
#ifndef UNDER_ASAN
    CU_ASSERT(rss0 > 0 && per < IDLE_MAX_KIB);
#endif
    for (int i = 0; i < made; i++)
        h_close(fds[i]);
    H_FINISH(b);
}

/*
 * A parked session (no bufferevent) still does everything: a burst far
 * past its socket buffers arrives whole and in order, input after a quiet
 * spell is read, and its close is seen.
 */
static void test_parked_session(void)
{
    struct h_broker *b = h_std_broker(NULL);
    CU_ASSERT_FATAL(b != NULL);
    int sub, pub, sync;
    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    int fds0 = h_broker_fds(b);
    h_sleep_ms(PARK_QUIET_MS);
    enum { BURST = 300, SIZE = 16 * 1024 };
    static uint8_t msg[SIZE];
    for (int i = 0; i < BURST; i++) {
        memset(msg, 'a' + i % 26, sizeof msg);
        memcpy(msg, &i, sizeof i);
        CU_ASSERT_FATAL(h_pub(pub, "pub1", "chan.a", msg, sizeof msg));
    }
    bool in_order = true;
    for (int i = 0; i < BURST && in_order; i++) {
        memset(msg, 'a' + i % 26, sizeof msg);
        memcpy(msg, &i, sizeof i);
        in_order = h_expect_pub(sub, "pub1", "chan.a", msg, sizeof msg);
    }
    CU_ASSERT(in_order);
    h_sleep_ms(PARK_QUIET_MS);
    CU_ASSERT(h_unsub(sub, "sub1", "chan.a"));
    CU_ASSERT(h_sub(sub, "sub1", "chan.b"));
    CU_ASSERT(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT(h_pub_str(pub, "pub1", "chan.a", "not for sub1"));
    CU_ASSERT(h_pub_str(pub, "pub1", "chan.b", "for sub1"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.b", "for sub1"));
    h_sleep_ms(PARK_QUIET_MS);
    h_close(sub);
    CU_ASSERT(h_broker_wait_fds(b, fds0 - 1, 5000) <= fds0 - 1);
    H_FINISH(b);
}

static const struct h_test tests[] = {
    {"200 concurrent clients, every message counted", test_200_clients},
    {"300 connections of churn: no descriptor leak", test_churn_no_leak},
    {"a burst is read in large batches, not 4 KiB per read", test_burst_read_in_batches},
    {"idle subscribed sessions cost under 1.5 KiB of RSS each", test_idle_session_memory},
    {"a parked session: bursts, input after quiet, close", test_parked_session},
    {NULL, NULL},
};

int main(void)
{
    h_init(120);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t06_load", tests))
        return 1;
    return h_run();
}
