/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connection start: INFO, AUTH, pipelining behind AUTH, trickled bytes,
 * the hpfeeds3-style command line, and a clean SIGTERM.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* INFO comes first, whole in the first recv(), with the configured name and
 * a 4-byte nonce that differs between connections. */
static void test_info_first(void)
{
    struct h_broker *b = h_std_broker(NULL);
    uint8_t nonce[3][4];

    CU_ASSERT_FATAL(b != NULL);
    for (int i = 0; i < 3; i++) {
        char name[256];
        int fd = h_connect(b->port);
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT_FATAL(h_read_info(fd, true, name, nonce[i]));
        CU_ASSERT_STRING_EQUAL(name, "testbroker");
        /* nothing else until the client speaks */
        CU_ASSERT(h_expect_silence(fd, 200));
    }
    CU_ASSERT(memcmp(nonce[0], nonce[1], 4) != 0);
    CU_ASSERT(memcmp(nonce[0], nonce[2], 4) != 0);
    CU_ASSERT(memcmp(nonce[1], nonce[2], 4) != 0);
    H_FINISH(b);
}

/* A good AUTH gets no answer, and the session then works. */
static void test_auth_ok_is_silent(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int pub, sub, sync;

    CU_ASSERT_FATAL(b != NULL);
    pub = h_std_client(b, "pub1");
    sub = h_std_client(b, "sub1");
    sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(pub >= 0 && sub >= 0 && sync >= 0);
    CU_ASSERT(h_expect_silence(pub, 500));
    CU_ASSERT(h_expect_silence(sub, 10));

    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "hello"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "hello"));
    CU_ASSERT(h_expect_silence(pub, 200));
    H_FINISH(b);
}

static void test_auth_unknown_ident(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int fd;

    CU_ASSERT_FATAL(b != NULL);
    fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_auth(fd, "nobody", "whatever"));
    CU_ASSERT(h_expect_error(fd, "Authentication failed for nobody"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    H_FINISH(b);
}

static void test_auth_wrong_secret(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int fd;

    CU_ASSERT_FATAL(b != NULL);
    fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_auth(fd, "pub1", "pub1-secreT"));
    CU_ASSERT(h_expect_error(fd, "Authentication failed for pub1"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));

    /* a hash over the right secret but another nonce is wrong too */
    fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_read_info(fd, false, NULL, NULL));
    {
        uint8_t hash[20], other[4] = {0, 0, 0, 0};
        GByteArray *out = g_byte_array_new();
        h_auth_hash(other, "pub1-secret", hash);
        h_enc_auth(out, "pub1", hash);
        CU_ASSERT_FATAL(h_send(fd, out->data, out->len));
        g_byte_array_free(out, TRUE);
    }
    CU_ASSERT(h_expect_error(fd, "Authentication failed for pub1"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    H_FINISH(b);
}

static void test_auth_fail_legacy(void)
{
    struct h_broker *b = h_std_broker("error_style = legacy\n");
    int fd;

    CU_ASSERT_FATAL(b != NULL);
    fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_auth(fd, "nobody", "whatever"));
    CU_ASSERT(h_expect_error(fd, "authfail."));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));

    fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_auth(fd, "pub1", "wrong"));
    CU_ASSERT(h_expect_error(fd, "authfail."));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    H_FINISH(b);
}

static void test_first_not_auth(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int fd;

    CU_ASSERT_FATAL(b != NULL);

    fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_read_info(fd, false, NULL, NULL));
    CU_ASSERT_FATAL(h_sub(fd, "sub1", "chan.a"));
    CU_ASSERT(h_expect_error(fd, "First message was not AUTH"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));

    fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_read_info(fd, false, NULL, NULL));
    CU_ASSERT_FATAL(h_pub_str(fd, "pub1", "chan.a", "x"));
    CU_ASSERT(h_expect_error(fd, "First message was not AUTH"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));

    /* sent before even reading INFO */
    fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_unsub(fd, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_read_info(fd, false, NULL, NULL));
    CU_ASSERT(h_expect_error(fd, "First message was not AUTH"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    H_FINISH(b);
}

/* Writes AUTH for ident plus the frames in tail, in one send(). */
static bool auth_pipelined(int fd, const char *ident, const char *secret, GByteArray *tail)
{
    uint8_t nonce[4], hash[20];
    GByteArray *out = g_byte_array_new();
    bool ok;

    if (!h_read_info(fd, false, NULL, nonce)) {
        g_byte_array_free(out, TRUE);
        return false;
    }
    h_auth_hash(nonce, secret, hash);
    h_enc_auth(out, ident, hash);
    g_byte_array_append(out, tail->data, tail->len);
    ok = h_send(fd, out->data, out->len);
    g_byte_array_free(out, TRUE);
    return ok;
}

/* SUBSCRIBE and PUBLISH written in the same send() as AUTH are processed
 * after the AUTH succeeds, in order. */
static void test_pipelined_behind_auth(void)
{
    struct h_broker *b = h_std_broker(NULL);
    GByteArray *tail;
    int sub, pub, self, sync;

    CU_ASSERT_FATAL(b != NULL);
    sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(sync >= 0);

    /* a subscriber whose SUBSCRIBE rides with its AUTH */
    sub = h_connect(b->port);
    tail = g_byte_array_new();
    h_enc_subscribe(tail, "sub1", "chan.a");
    CU_ASSERT_FATAL(auth_pipelined(sub, "sub1", "sub1-secret", tail));
    g_byte_array_free(tail, TRUE);
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));

    /* a publisher whose three messages ride with its AUTH */
    pub = h_connect(b->port);
    tail = g_byte_array_new();
    h_enc_publish(tail, "pub1", "chan.a", "one", 3);
    h_enc_publish(tail, "pub1", "chan.a", "two", 3);
    h_enc_publish(tail, "pub1", "chan.a", "three", 5);
    CU_ASSERT_FATAL(auth_pipelined(pub, "pub1", "pub1-secret", tail));
    g_byte_array_free(tail, TRUE);
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "one"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "two"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "three"));
    CU_ASSERT(h_expect_silence(pub, 100));

    /* AUTH + SUBSCRIBE + PUBLISH to itself in one write: the subscription
     * is in place before the publish is routed */
    self = h_connect(b->port);
    tail = g_byte_array_new();
    h_enc_subscribe(tail, "self", "chan.self");
    h_enc_publish(tail, "self", "chan.self", "me", 2);
    CU_ASSERT_FATAL(auth_pipelined(self, "self", "self-secret", tail));
    g_byte_array_free(tail, TRUE);
    CU_ASSERT(h_expect_pub_str(self, "self", "chan.self", "me"));
    H_FINISH(b);
}

/* Frames pipelined behind a failing AUTH are never processed. */
static void test_pipelined_behind_bad_auth(void)
{
    struct h_broker *b = h_std_broker(NULL);
    GByteArray *tail;
    int sub, pub, pub2, sync;

    CU_ASSERT_FATAL(b != NULL);
    sync = h_std_client(b, "sync");
    sub = h_std_client(b, "sub1");
    pub2 = h_std_client(b, "pub2");
    CU_ASSERT_FATAL(sync >= 0 && sub >= 0 && pub2 >= 0);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));

    pub = h_connect(b->port);
    tail = g_byte_array_new();
    h_enc_publish(tail, "pub1", "chan.a", "must-not-arrive", 15);
    CU_ASSERT_FATAL(auth_pipelined(pub, "pub1", "not-the-secret", tail));
    g_byte_array_free(tail, TRUE);
    CU_ASSERT(h_expect_error(pub, "Authentication failed for pub1"));
    CU_ASSERT(h_expect_eof(pub, H_WAIT_MS));

    CU_ASSERT_FATAL(h_pub_str(pub2, "pub2", "chan.a", "marker"));
    CU_ASSERT(h_expect_pub_str(sub, "pub2", "chan.a", "marker"));
    H_FINISH(b);
}

/* Every frame sent one byte per send() still works. */
static void test_trickle(void)
{
    struct h_broker *b = h_std_broker(NULL);
    uint8_t nonce[4], hash[20];
    GByteArray *out;
    int sub, pub, sync;

    CU_ASSERT_FATAL(b != NULL);
    sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(sync >= 0);

    sub = h_connect(b->port);
    CU_ASSERT_FATAL(h_read_info(sub, false, NULL, nonce));
    h_auth_hash(nonce, "sub1-secret", hash);
    out = g_byte_array_new();
    h_enc_auth(out, "sub1", hash);
    h_enc_subscribe(out, "sub1", "chan.a");
    CU_ASSERT_FATAL(h_send_trickle(sub, out->data, out->len, 2000));
    g_byte_array_free(out, TRUE);
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));

    pub = h_connect(b->port);
    CU_ASSERT_FATAL(h_read_info(pub, false, NULL, nonce));
    h_auth_hash(nonce, "pub1-secret", hash);
    out = g_byte_array_new();
    h_enc_auth(out, "pub1", hash);
    h_enc_publish(out, "pub1", "chan.a", "drip drip", 9);
    CU_ASSERT_FATAL(h_send_trickle(pub, out->data, out->len, 2000));
    g_byte_array_free(out, TRUE);
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "drip drip"));
    CU_ASSERT(h_expect_silence(pub, 100));
    H_FINISH(b);
}

/* hpfeeds3-style flags, no config file at all. */
static void test_hpfeeds3_flags(void)
{
    struct h_broker *b = h_broker_new();
    char name[256];
    int sub, pub, sync;

    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_add_key(b, "pub1", "pub1-secret", "chan.a", ""));
    CU_ASSERT_FATAL(h_broker_add_key(b, "sub1", "sub1-secret", "", "chan.a"));
    CU_ASSERT_FATAL(h_broker_add_key(b, "sync", "sync-secret", "", ""));
    {
        const char *args[] = {"--bind", "127.0.0.1:0", "--auth", b->db_path,
                              "--name", "flagbroker",  NULL};
        CU_ASSERT_FATAL(h_broker_start_argv(b, args));
    }
    sub = h_connect(b->port);
    CU_ASSERT_FATAL(sub >= 0);
    CU_ASSERT_FATAL(h_read_info(sub, true, name, NULL));
    CU_ASSERT_STRING_EQUAL(name, "flagbroker");
    h_close(sub);

    sub = h_std_client(b, "sub1");
    pub = h_std_client(b, "pub1");
    sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(sub >= 0 && pub >= 0 && sync >= 0);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "via flags"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "via flags"));

    /* the authkey lists apply as with a config (access = channels) */
    CU_ASSERT_FATAL(h_pub_str(sub, "sub1", "chan.a", "denied"));
    CU_ASSERT(h_expect_error(sub, "Authkey not allowed to pub here. ident=sub1, chan=chan.a"));
    CU_ASSERT(h_expect_eof(sub, H_WAIT_MS));

    H_FINISH(b);
}

/* SIGTERM with clients in every state: exit status 0, clients see EOF. */
static void test_sigterm_clean(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int idle, sub, pub;
    int64_t t0;

    CU_ASSERT_FATAL(b != NULL);
    idle = h_connect(b->port);
    CU_ASSERT_FATAL(h_read_info(idle, false, NULL, NULL));
    sub = h_std_client(b, "sub1");
    pub = h_std_client(b, "pub1");
    CU_ASSERT_FATAL(sub >= 0 && pub >= 0);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "x"));

    t0 = h_now_ms();
    CU_ASSERT(h_broker_stop(b, 5000));
    CU_ASSERT(h_now_ms() - t0 < 5000);
    CU_ASSERT(h_expect_eof(idle, 2000));
    CU_ASSERT(h_expect_eof(pub, 2000));
    /* the subscriber may or may not have got "x" before the close */
    {
        struct h_frame f = {0};
        int r = h_read_frame(sub, 2000, &f);
        if (r == H_FRAME)
            r = h_read_frame(sub, 2000, &f);
        CU_ASSERT(r == H_EOF || r == H_RESET);
        h_frame_clear(&f);
    }
}

/* Finds the broker's end of the connection client_fd in /proc/net/tcp and
 * returns its timer kind (2 = keepalive) and seconds left, or false. */
static bool broker_side_timer(int broker_port, int client_fd, int *kind, double *secs)
{
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    char *text = NULL;
    bool found = false;

    if (getsockname(client_fd, (struct sockaddr *)&me, &len) < 0 ||
        !g_file_get_contents("/proc/net/tcp", &text, NULL, NULL))
        return false;
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines + 1; *l && !found; l++) {
        unsigned lport, rport, tr;
        unsigned long when;
        if (sscanf(*l, " %*d: %*8x:%x %*8x:%x %*x %*x:%*x %x:%lx", &lport, &rport, &tr, &when) != 4)
            continue;
        if ((int)lport == broker_port && rport == ntohs(me.sin_port)) {
            *kind = (int)tr;
            *secs = (double)when / (double)sysconf(_SC_CLK_TCK);
            found = true;
        }
    }
    g_strfreev(lines);
    g_free(text);
    return found;
}

/* Accepted sockets have TCP keepalive on with a 10 s idle time (interval
 * and probe count cannot be seen from outside). */
static void test_keepalive(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int kind = -1;
    double secs = -1;
    int fd;

    CU_ASSERT_FATAL(b != NULL);
    fd = h_std_client(b, "sub1");
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(h_expect_silence(fd, 100));
    CU_ASSERT_FATAL(broker_side_timer(b->port, fd, &kind, &secs));
    fprintf(stderr, "  broker-side timer: kind %d, %.2f s left\n", kind, secs);
    CU_ASSERT(kind == 2);
    CU_ASSERT(secs > 0 && secs <= 10.05);
    H_FINISH(b);
}

static const struct h_test tests[] = {
    {"INFO first, one read, fresh nonce", test_info_first},
    {"good AUTH is answered with silence", test_auth_ok_is_silent},
    {"AUTH with unknown ident", test_auth_unknown_ident},
    {"AUTH with wrong hash", test_auth_wrong_secret},
    {"AUTH failure, legacy error style", test_auth_fail_legacy},
    {"first frame not AUTH", test_first_not_auth},
    {"frames pipelined behind AUTH", test_pipelined_behind_auth},
    {"frames pipelined behind a failing AUTH", test_pipelined_behind_bad_auth},
    {"frames trickled one byte at a time", test_trickle},
    {"hpfeeds3-style flags without config", test_hpfeeds3_flags},
    {"SIGTERM exits 0 and closes clients", test_sigterm_clean},
    {"TCP keepalive on accepted sockets", test_keepalive},
    {NULL, NULL},
};

int main(void)
{
    h_init(120);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t01_handshake", tests))
        return 1;
    return h_run();
}
