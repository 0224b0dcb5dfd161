/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile peers, before and after AUTH, and on the broker's HTTP ports: an
 * anonymous client announcing a huge AUTH, SUBSCRIBE names no PUBLISH can
 * match, idents that would forge log lines or break the Prometheus scrape,
 * the exporter and the console fed half-sent, oversized or endless
 * requests, and a broker out of descriptors.  Each is refused early and
 * clearly, and the broker keeps serving the well-behaved.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define T11_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T11_ASAN 1
#endif
#endif

/*
 * Under ASan, brokers started from now on keep at most mb MiB of freed
 * blocks in quarantine (256 by default), so that their RSS says something
 * about reuse, as in t08_soak.  A no-op otherwise.
 */
static void asan_quarantine(int mb)
{
#ifdef T11_ASAN
    static char *given; /* the options the test was started with */
    if (!given)
        given = g_strdup(g_getenv("ASAN_OPTIONS") ? g_getenv("ASAN_OPTIONS") : "");
    char *opts = g_strdup_printf("%s%squarantine_size_mb=%d", given, *given ? ":" : "", mb);
    g_setenv("ASAN_OPTIONS", opts, TRUE);
    g_free(opts);
#else
    (void)mb;
#endif
}

/* The port of the ready file's "http <what>" line, 0 if none. */
static int http_port(struct h_broker *b, const char *what)
{
    for (int i = 0; i < b->n_listeners; i++)
        if (!strcmp(b->listeners[i].kind, "http") && !strcmp(b->listeners[i].host, what))
            return b->listeners[i].port;
    return 0;
}

/* Reads until the peer closes or timeout_ms passes; *closed says which. */
static GString *read_until_close(int fd, int timeout_ms, bool *closed)
{
    GString *got = g_string_new(NULL);
    int64_t end = h_now_ms() + timeout_ms;
    *closed = false;
    while (h_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)MAX(1, end - h_now_ms())) <= 0)
            continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            *closed = true;
            break;
        }
        g_string_append_len(got, buf, n);
    }
    return got;
}

/* Sends req and returns the whole reply (the request asks for a close). */
static GString *http_call(int port, const char *req)
{
    int fd = h_connect(port);
    bool closed;
    if (fd < 0 || !h_send(fd, req, strlen(req)))
        return g_string_new(NULL);
    GString *got = read_until_close(fd, H_WAIT_MS, &closed);
    h_close(fd);
    return got;
}

static bool starts_with(const GString *s, const char *prefix)
{
    bool ok = g_str_has_prefix(s->str, prefix);
    if (!ok)
        fprintf(stderr, "  expected a reply starting \"%s\", got \"%.80s\"\n", prefix, s->str);
    return ok;
}

/* ---- finding: pre-AUTH memory ---- */

static void test_preauth_frame_limit(void)
{
    struct h_broker *b = h_std_broker("auth_timeout = 120\n");
    CU_ASSERT_FATAL(b != NULL);
    int fd = h_connect(b->port);
    CU_ASSERT_FATAL(h_read_info(fd, false, NULL, NULL));
    /* An AUTH announcing the whole max_frame, and the start of its body. */
    uint32_t flen = 1024 * 1024 + 5;
    uint8_t hdr[5] = {(uint8_t)(flen >> 24), (uint8_t)(flen >> 16), (uint8_t)(flen >> 8),
                      (uint8_t)flen, H_OP_AUTH};
    CU_ASSERT(h_send(fd, hdr, sizeof hdr));
    uint8_t body[4096];
    memset(body, 'a', sizeof body);
    CU_ASSERT(h_send(fd, body, sizeof body));
    /* Refused at the header: not after auth_timeout, not after the body. */
    CU_ASSERT(h_expect_error_prefix(fd, "Bad frame: frame length 1048581 exceeds limit"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    /* The largest real AUTH (a 255-byte ident) still passes the header check. */
    int ok = h_connect(b->port);
    uint8_t nonce[4], hash[20];
    CU_ASSERT_FATAL(h_read_info(ok, false, NULL, nonce));
    char ident[256];
    memset(ident, 'i', 255);
    ident[255] = '\0';
    h_auth_hash(nonce, "x", hash);
    GByteArray *a = g_byte_array_new();
    h_enc_auth(a, ident, hash);
    CU_ASSERT(h_send(ok, a->data, a->len));
    g_byte_array_unref(a);
    CU_ASSERT(h_expect_error_prefix(ok, "Authentication failed"));
    H_FINISH(b);
}

/* ---- finding: SUBSCRIBE names past 255 bytes ---- */

static void test_long_subscribe_name(void)
{
    struct h_broker *b = h_std_broker(NULL);
    CU_ASSERT_FATAL(b != NULL);
    static const uint8_t op[] = {H_OP_SUBSCRIBE, H_OP_UNSUBSCRIBE};
    static const char *const text[] = {
        "Bad frame: SUBSCRIBE channel name of 256 bytes exceeds 255",
        "Bad frame: UNSUBSCRIBE channel name of 256 bytes exceeds 255"};
    char chan[257];
    memset(chan, 'c', 256);
    chan[256] = '\0';
    for (int i = 0; i < 2; i++) {
        int fd = h_std_client(b, "sub1");
        CU_ASSERT_FATAL(fd >= 0);
        GByteArray *f = g_byte_array_new();
        (op[i] == H_OP_SUBSCRIBE ? h_enc_subscribe : h_enc_unsubscribe)(f, "sub1", chan);
        CU_ASSERT(h_send(fd, f->data, f->len));
        g_byte_array_unref(f);
        CU_ASSERT(h_expect_error(fd, text[i]));
        CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    }
    /* A frame that could only carry a longer name is refused at its header:
     * a client cannot make the broker buffer a megabyte to refuse it. */
    for (int i = 0; i < 2; i++) {
        int fd = h_std_client(b, "sub1");
        CU_ASSERT_FATAL(fd >= 0);
        uint32_t flen = 1024 * 1024 + 5;
        uint8_t hdr[5] = {(uint8_t)(flen >> 24), (uint8_t)(flen >> 16), (uint8_t)(flen >> 8),
                          (uint8_t)flen, op[i]};
        CU_ASSERT(h_send(fd, hdr, sizeof hdr));
        CU_ASSERT(
            h_expect_error(fd, i == 0 ? "Bad frame: SUBSCRIBE frame length 1048581 exceeds 516"
                                      : "Bad frame: UNSUBSCRIBE frame length 1048581 exceeds 516"));
        CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    }
    /* 255 bytes is a name like any other (here: not allowed). */
    int fd = h_std_client(b, "sub1");
    chan[255] = '\0';
    CU_ASSERT(h_sub(fd, "sub1", chan));
    CU_ASSERT(h_expect_error_prefix(fd, "Authkey not allowed to sub here"));
    H_FINISH(b);
}

/* ---- finding: log and metric injection ---- */

/* Waits until the daemon log contains needle; the log then. */
static char *wait_log(struct h_broker *b, const char *needle)
{
    int64_t end = h_now_ms() + H_WAIT_MS;
    char *text = NULL;
    do {
        g_free(text);
        text = NULL;
        g_file_get_contents(b->log_path, &text, NULL, NULL);
        if (text && strstr(text, needle))
            return text;
        h_sleep_ms(20);
    } while (h_now_ms() < end);
    fprintf(stderr, "  the daemon log never showed \"%s\"\n", needle);
    return text ? text : g_strdup("");
}

static void fail_auth(struct h_broker *b, const char *ident)
{
    int fd = h_connect(b->port);
    CU_ASSERT(h_auth(fd, ident, "wrong"));
    CU_ASSERT(h_expect_error_prefix(fd, "Authentication failed"));
    h_close(fd);
}

static void test_log_and_label_escaping(void)
{
    struct h_broker *b = h_std_broker("exporter = 127.0.0.1:0\n");
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_wait_listeners(b, 2));
    fail_auth(b, "evil\nerror forged: \x1b[31mline");
    fail_auth(b, "bad\xff\xfe\"utf8\\");
    char *log = wait_log(b, "evil\\x0aerror forged: \\x1b[31mline");
    CU_ASSERT(strstr(log, "\nerror forged") == NULL);
    CU_ASSERT(strchr(log, '\x1b') == NULL);
    g_free(log);
    log = wait_log(b, "bad\\xff\\xfe\"utf8\\");
    g_free(log);

    GString *m = http_call(http_port(b, "exporter"),
                           "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CU_ASSERT(starts_with(m, "HTTP/1.1 200"));
    CU_ASSERT(g_utf8_validate(m->str, (gssize)m->len, NULL));
    /* Idents that never authenticated own no series (any client may name
     * any ident, and each used to add nine): they count under ident="". */
    CU_ASSERT(strstr(m->str, "evil") == NULL);
    CU_ASSERT(strstr(m->str, "utf8") == NULL);
    CU_ASSERT(strstr(m->str,
                     "hpfeeds_broker_connection_error{ident=\"\",category=\"auth-failed\"} 2\n") !=
              NULL);
    g_string_free(m, TRUE);
    H_FINISH(b);
}

/*
 * What a client sent comes back in ERROR texts escaped the one way the log
 * escapes it: bytes that are not UTF-8, controls and U+202E (which would
 * turn the rest of the line around) as \xNN, byte by byte.
 */
static void test_deny_texts_escaped(void)
{
    struct h_broker *b = h_std_broker(NULL);
    CU_ASSERT_FATAL(b != NULL);
    int fd = h_connect(b->port);
    CU_ASSERT(h_auth(fd, "e\xe2\x80\xaev\xc2\x85il", "wrong"));
    CU_ASSERT(h_expect_error(fd, "Authentication failed for e\\xe2\\x80\\xaev\\xc2\\x85il"));
    h_close(fd);
    fd = h_std_client(b, "sub1");
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(h_sub(fd, "sub1", "x\xff\xe2\x80\xae\x1b[0m\\y"));
    CU_ASSERT(h_expect_error(fd, "Authkey not allowed to sub here. ident=sub1, "
                                 "chan=x\\xff\\xe2\\x80\\xae\\x1b[0m\\\\y"));
    h_close(fd);
    H_FINISH(b);
}

/* ---- finding: the exporter's limits ---- */

static void test_exporter_limits(void)
{
    struct h_broker *b = h_std_broker("exporter = 127.0.0.1:0\n");
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_wait_listeners(b, 2));
    int port = http_port(b, "exporter");
    CU_ASSERT_FATAL(port > 0);
    long rss0 = h_broker_rss_kb(b);

    GString *r = http_call(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                 "Content-Length: 0\r\n\r\n");
    CU_ASSERT(starts_with(r, "HTTP/1.1 405"));
    g_string_free(r, TRUE);
    /* A header that means one thing, twice: refused, not the first one taken. */
    r = http_call(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n");
    CU_ASSERT(starts_with(r, "HTTP/1.1 400"));
    g_string_free(r, TRUE);

    /* Endless headers: cut off at the limit, not read to the end. */
    int fd = h_connect(port);
    const char *start = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    CU_ASSERT(h_send(fd, start, strlen(start)));
    char junk[1024];
    memset(junk, 'j', sizeof junk);
    memcpy(junk, "X-J: ", 5);
    junk[sizeof junk - 2] = '\r';
    junk[sizeof junk - 1] = '\n';
    bool closed = false;
    for (int i = 0; i < 4096 && !closed; i++) {
        if (send(fd, junk, sizeof junk, MSG_NOSIGNAL) < 0)
            closed = true;
    }
    if (!closed)
        g_string_free(read_until_close(fd, H_WAIT_MS, &closed), TRUE);
    CU_ASSERT(closed);
    h_close(fd);

    /* A body: refused from its announced length on. */
    fd = h_connect(port);
    const char *big = "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n";
    CU_ASSERT(h_send(fd, big, strlen(big)));
    r = read_until_close(fd, H_WAIT_MS, &closed);
    CU_ASSERT(closed);
    CU_ASSERT(!g_str_has_prefix(r->str, "HTTP/1.1 200"));
    g_string_free(r, TRUE);
    h_close(fd);

    /* Connections: 16 at once, counted from accept. */
    int idle[20];
    for (int i = 0; i < 20; i++)
        idle[i] = h_connect(port);
    r = read_until_close(idle[19], H_WAIT_MS, &closed);
    CU_ASSERT(closed && starts_with(r, "HTTP/1.1 503"));
    g_string_free(r, TRUE);
    /* A request trickled a byte a second is cut off 5 s after accept. */
    const char *slow = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    int64_t t0 = h_now_ms();
    closed = false;
    for (size_t i = 0; i < strlen(slow) && !closed; i++) {
        if (send(idle[0], slow + i, 1, MSG_NOSIGNAL) < 0)
            break;
        g_string_free(read_until_close(idle[0], 1000, &closed), TRUE);
    }
    CU_ASSERT(closed);
    CU_ASSERT(h_now_ms() - t0 < 9000);
    for (int i = 0; i < 20; i++)
        h_close(idle[i]);
    /* Kept alive after a reply, the next request gets the same 5 s: a
     * trickle after one good request used to hold the place forever. */
    fd = h_connect(port);
    const char *one = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT(h_send(fd, one, strlen(one)));
    r = read_until_close(fd, 1000, &closed);
    CU_ASSERT(!closed && starts_with(r, "HTTP/1.1 200"));
    g_string_free(r, TRUE);
    t0 = h_now_ms();
    for (int i = 0; i < 15 && !closed; i++) {
        if (send(fd, slow + (i % strlen(slow)), 1, MSG_NOSIGNAL) < 0)
            break;
        g_string_free(read_until_close(fd, 1000, &closed), TRUE);
    }
    CU_ASSERT(closed);
    CU_ASSERT(h_now_ms() - t0 < 9000);
    h_close(fd);
    long rss1 = h_broker_rss_kb(b);
    fprintf(stderr, "  exporter: RSS %ld KiB before, %ld KiB after\n", rss0, rss1);
    CU_ASSERT(rss1 - rss0 < 20 * 1024);
    r = http_call(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CU_ASSERT(starts_with(r, "HTTP/1.1 200"));
    g_string_free(r, TRUE);
    H_FINISH(b);
}

/* ---- finding: descriptors ---- */

/* Starts the standard broker with RLIMIT_NOFILE lowered to nofile. */
static struct h_broker *broker_with_nofile(rlim_t nofile, const char *extra)
{
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = nofile;
    setrlimit(RLIMIT_NOFILE, &low);
    struct h_broker *b = h_std_broker(extra);
    setrlimit(RLIMIT_NOFILE, &old);
    return b;
}

/* CPU time (user + system) the daemon used, in clock ticks. */
static long cpu_ticks(struct h_broker *b)
{
    char path[64], *text = NULL;
    g_snprintf(path, sizeof path, "/proc/%d/stat", (int)b->pid);
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    const char *p = strrchr(text, ')');
    long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2)
        ut = st = -1;
    g_free(text);
    return ut + st;
}

static void test_out_of_descriptors(void)
{
    struct h_broker *b = broker_with_nofile(64, NULL);
    CU_ASSERT_FATAL(b != NULL);
    int fds0 = h_broker_fds(b);
    fprintf(stderr, "  the broker holds %d descriptors of 64\n", fds0);
    CU_ASSERT_FATAL(fds0 > 0 && fds0 < 50);
    enum { N = 80 };
    int fd[N], refused = 0, served = 0;
    for (int i = 0; i < N; i++)
        fd[i] = h_connect(b->port);
    /* With the surplus waiting, the broker rests instead of retrying
     * accept() (it used to spin at full CPU until descriptors came free). */
    int64_t end = h_now_ms() + H_WAIT_MS;
    while (h_broker_fds(b) < 62 && h_now_ms() < end)
        h_sleep_ms(10);
    long t0 = cpu_ticks(b);
    h_sleep_ms(1000);
    long used = cpu_ticks(b) - t0;
    fprintf(stderr, "  %d descriptors open, %ld ticks of CPU in the next second\n", h_broker_fds(b),
            used);
    CU_ASSERT(used >= 0 && used < sysconf(_SC_CLK_TCK) / 4);
    for (int i = 0; i < N; i++) {
        struct h_frame f = {0};
        int r = h_read_frame(fd[i], H_WAIT_MS, &f);
        if (r == H_FRAME && f.op == H_OP_INFO)
            served++;
        else if (r == H_FRAME && f.op == H_OP_ERROR && f.len - 5 == 20 &&
                 !memcmp(f.raw + 5, "Too many connections", 20))
            refused++;
        h_frame_clear(&f);
    }
    fprintf(stderr, "  %d served, %d refused of %d\n", served, refused, N);
    CU_ASSERT(served > 0 && refused > 0 && served + refused == N);
    for (int i = 0; i < N; i++)
        h_close(fd[i]);
    CU_ASSERT(h_broker_wait_fds(b, fds0, H_WAIT_MS) <= fds0);
    int ok = h_std_client(b, "sub1");
    CU_ASSERT(ok >= 0);
    CU_ASSERT(h_sub(ok, "sub1", "chan.a"));
    H_FINISH(b);
}

/* ---- finding: authkey channel lists ---- */

static char *channel_csv(const char *prefix, int n)
{
    GString *s = g_string_new(NULL);
    for (int i = 0; i < n; i++)
        g_string_append_printf(s, "%s%s.%05d", i ? "," : "", prefix, i);
    return g_string_free(s, FALSE);
}

static void test_shared_channel_sets(void)
{
    struct h_broker *b = h_broker_new();
    CU_ASSERT_FATAL(b != NULL);
    char *pub = channel_csv("sensor.publish.channel", 4000);
    char *sub = channel_csv("sensor.subscribe.channel", 4000);
    char *over = channel_csv("c", 4097);
    CU_ASSERT_FATAL(h_broker_add_key(b, "fleet", "fleet-secret", pub, sub));
    CU_ASSERT_FATAL(h_broker_add_key(b, "huge", "huge-secret", over, ""));
    g_free(pub);
    g_free(sub);
    g_free(over);
    /* Each AUTH reads the key's 8,000 channels and frees them again. */
    asan_quarantine(0);
    CU_ASSERT_FATAL(h_broker_start(b, "on_denied = continue\n"));
    /* One session first, so what is measured is the sessions after it. */
    enum { N = 100 };
    int fd[N];
    fd[0] = h_client(b->port, "fleet", "fleet-secret");
    CU_ASSERT_FATAL(fd[0] >= 0);
    CU_ASSERT(h_sub(fd[0], "fleet", "sensor.subscribe.channel.03999"));
    CU_ASSERT(h_expect_silence(fd[0], 200));
    long rss0 = h_broker_rss_kb(b);
    for (int i = 1; i < N; i++) {
        fd[i] = h_client(b->port, "fleet", "fleet-secret");
        CU_ASSERT(fd[i] >= 0);
    }
    /* Each session is in force once it answers a SUBSCRIBE it may not make. */
    for (int i = 1; i < N; i++) {
        CU_ASSERT(h_sub(fd[i], "fleet", "sensor.publish.channel.00000"));
        CU_ASSERT(h_expect_error_prefix(fd[i], "Authkey not allowed to sub here"));
    }
    /* What the AUTHs' work freed may still be with the allocator (on a busy
     * machine the worker runs ahead of the loop and many keys' lists are
     * alive at once): the broker gives it back within a release period
     * (broker.c, release_free_memory, every fifth 1 s tick). */
    long rss1 = h_broker_rss_kb(b), first = rss1;
    int64_t settle = h_now_ms() + 7000;
    while (rss1 - rss0 >= 8 * 1024 && h_now_ms() < settle) {
        h_sleep_ms(250);
        rss1 = h_broker_rss_kb(b);
    }
    fprintf(stderr,
            "  %d more sessions of a key with 4000 + 4000 channels: +%ld KiB (+%ld at once)\n",
            N - 1, rss1 - rss0, first - rss0);
    CU_ASSERT(rss1 - rss0 < 8 * 1024);
    /* A key over the bound is refused. */
    int h = h_connect(b->port);
    CU_ASSERT(h_auth(h, "huge", "huge-secret"));
    CU_ASSERT(h_expect_error_prefix(h, "Authentication failed"));
    H_FINISH(b);
}

/* ---- after a flood, memory goes back ---- */

static bool make_cert(struct h_broker *b, char **cert, char **key)
{
    *cert = g_build_filename(b->dir, "cert.pem", NULL);
    *key = g_build_filename(b->dir, "key.pem", NULL);
    const char *argv[] = {"openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:P-256",
                          "-nodes",
                          "-days",
                          "1",
                          "-subj",
                          "/CN=127.0.0.1",
                          "-keyout",
                          *key,
                          "-out",
                          *cert,
                          NULL};
    int status = -1;
    GError *e = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, NULL, NULL, &status, &e)) {
        fprintf(stderr, "  openssl: %s\n", e->message);
        g_error_free(e);
        return false;
    }
    return g_spawn_check_wait_status(status, NULL);
}

/* n connections that each complete a handshake, wait for the broker's session ticket
 * (or anything) and vanish without a word. */
static int tls_hello_burst(SSL_CTX *ctx, int port, int n)
{
    int *fd = g_new(int, n), answered = 0;
    SSL **ssl = g_new0(SSL *, n);
    for (int i = 0; i < n; i++) {
        fd[i] = h_connect(port);
        if (fd[i] < 0)
            continue;
        ssl[i] = SSL_new(ctx);
        SSL_set_fd(ssl[i], fd[i]);
        SSL_connect(ssl[i]); /* a whole handshake, then the peer vanishes */
    }
    for (int i = 0; i < n; i++) {
        struct pollfd p = {.fd = fd[i], .events = POLLIN};
        if (fd[i] >= 0 && poll(&p, 1, H_WAIT_MS) == 1)
            answered++;
    }
    for (int i = 0; i < n; i++) {
        if (ssl[i])
            SSL_free(ssl[i]);
        h_close(fd[i]);
    }
    g_free(ssl);
    g_free(fd);
    return answered;
}

/* Two floods of 3 x 1000; RSS once the broker has settled after each. */
static void tls_floods(struct h_broker *b, int tls_port, long rss_after[2], long *peak)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    int fds0 = h_broker_fds(b);
    long rss0 = h_broker_rss_kb(b);
    for (int flood = 0; flood < 2; flood++) {
        for (int round = 0; round < 3; round++) {
            CU_ASSERT(tls_hello_burst(ctx, tls_port, 1000) == 1000);
            *peak = MAX(*peak, h_broker_rss_kb(b));
        }
        CU_ASSERT(h_broker_wait_fds(b, fds0, 10000) <= fds0);
        /* Freed memory goes back to the system once the closing is over. */
        long rss = h_broker_rss_kb(b);
        for (int64_t end = h_now_ms() + 15000; rss - rss0 > 10 * 1024 && h_now_ms() < end;) {
            h_sleep_ms(100);
            rss = h_broker_rss_kb(b);
        }
        rss_after[flood] = rss;
    }
    SSL_CTX_free(ctx);
}

static void test_tls_flood_memory(void)
{
    asan_quarantine(16);
    struct h_broker *b = h_broker_new();
    char *cert = NULL, *key = NULL;
    CU_ASSERT_FATAL(b != NULL && make_cert(b, &cert, &key));
    char *extra = g_strdup_printf("listen = tcp:127.0.0.1:0; tls:127.0.0.1:0\n"
                                  "max_connections_per_ip = 5000\n"
                                  "tls_cert = %s\ntls_key = %s\n",
                                  cert, key);
    CU_ASSERT_FATAL(h_broker_start(b, extra));
    g_free(extra);
    g_free(cert);
    g_free(key);
    CU_ASSERT_FATAL(h_broker_wait_listeners(b, 2));
    int tls_port = 0;
    for (int i = 0; i < b->n_listeners; i++)
        if (!strcmp(b->listeners[i].kind, "tls"))
            tls_port = b->listeners[i].port;
    CU_ASSERT_FATAL(tls_port > 0);
    long rss0 = h_broker_rss_kb(b), peak = rss0, after[2] = {0, 0};
    tls_floods(b, tls_port, after, &peak);
    fprintf(stderr,
            "  2 x 3000 abandoned TLS handshakes: RSS %ld KiB at start, %ld at peak, "
            "%ld and %ld after\n",
            rss0, peak, after[0], after[1]);
#ifdef T11_ASAN
    /* ASan's allocator keeps what a flood used: the second must reuse it. */
    CU_ASSERT(after[1] - after[0] <= 16 * 1024);
#else
    CU_ASSERT(after[0] - rss0 <= 10 * 1024);
    CU_ASSERT(after[1] - rss0 <= 10 * 1024);
#endif
    CU_ASSERT(h_read_info(h_connect(b->port), false, NULL, NULL));
    H_FINISH(b);
}

/* ---- the console: counted at accept, a deadline for the first request ---- */

static char *web_extra(void)
{
    const char *src = g_getenv("HPF_SRCDIR");
    return g_strdup_printf("access = graph\n[web]\nlisten = tcp:127.0.0.1:0\nroot = %s/web\n",
                           src ? src : ".");
}

static void test_console_admission(void)
{
    char *extra = web_extra();
    struct h_broker *b = h_std_broker(extra);
    g_free(extra);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_wait_listeners(b, 2));
    int port = http_port(b, "web");
    CU_ASSERT_FATAL(port > 0);
    /* 64 half-sent requests from one address fill its share at once. */
    enum { PER_IP = 64 };
    int half[PER_IP];
    const char *part = "GET / HTTP/1.1\r\nHo";
    for (int i = 0; i < PER_IP; i++) {
        half[i] = h_connect(port);
        CU_ASSERT(h_send(half[i], part, strlen(part)));
    }
    GString *r = http_call(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CU_ASSERT(starts_with(r, "HTTP/1.1 503"));
    g_string_free(r, TRUE);
    /* They are closed 10 s after accept, though they keep sending. */
    int64_t t0 = h_now_ms();
    bool closed = false;
    for (int s = 0; s < 14 && !closed; s++) {
        if (send(half[0], "s", 1, MSG_NOSIGNAL) < 0)
            break;
        g_string_free(read_until_close(half[0], 1000, &closed), TRUE);
    }
    CU_ASSERT(closed);
    CU_ASSERT(h_now_ms() - t0 < 13000);
    for (int i = 0; i < PER_IP; i++)
        h_close(half[i]);
    /* The console answers only to its own names ([web] hostnames). */
    r = http_call(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    CU_ASSERT(starts_with(r, "HTTP/1.1 200"));
    g_string_free(r, TRUE);
    H_FINISH(b);
}

/* ---- incomplete frames: the input budget and frame_timeout ---- */

#define PARTIAL_CONNS     100
#define PARTIAL_MAX_FRAME (1024 * 1024 + 5) /* the default max_frame */

/* A PUBLISH of pub1 on chan of exactly flen bytes. */
static GByteArray *publish_of_length(const char *chan, size_t flen)
{
    size_t payload = flen - (5 + 1 + strlen("pub1") + 1 + strlen(chan));
    uint8_t *body = g_malloc(payload);
    memset(body, 'p', payload);
    GByteArray *f = g_byte_array_new();
    h_enc_publish(f, "pub1", chan, body, payload);
    g_free(body);
    return f;
}

/*
 * Sends frame on every fd up to len bytes, from off[i] on (moved along),
 * round robin without blocking, until all are sent or nothing moved for
 * stall_ms (the broker stopped reading).  Returns the bytes sent.
 */
static size_t send_all_partial(const int *fds, size_t *off, int n, const GByteArray *frame,
                               size_t len, int stall_ms)
{
    size_t total = 0;
    int64_t moved = h_now_ms();
    while (h_now_ms() - moved < stall_ms) {
        bool left = false;
        for (int i = 0; i < n; i++) {
            if (off[i] >= len)
                continue;
            left = true;
            ssize_t w = send(fds[i], frame->data + off[i], MIN(len - off[i], 65536),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                off[i] += (size_t)w;
                total += (size_t)w;
                moved = h_now_ms();
            }
        }
        if (!left)
            break;
        h_sleep_ms(5);
    }
    return total;
}

/*
 * 100 sessions each send all but the last byte of a max_frame PUBLISH: the
 * broker holds no more than input_budget of them (the rest waits in the
 * sockets), and a publisher of ordinary messages from the same address
 * still gets through meanwhile.
 */
static void partial_frames_within(const char *extra, const char *bound)
{
    asan_quarantine(16);
    struct h_broker *b = h_std_broker(extra);
    CU_ASSERT_FATAL(b != NULL);
    static int fds[PARTIAL_CONNS];
    static size_t off[PARTIAL_CONNS];
    memset(off, 0, sizeof off);
    for (int i = 0; i < PARTIAL_CONNS; i++) {
        fds[i] = h_std_client(b, "pub1");
        CU_ASSERT_FATAL(fds[i] >= 0);
    }
    long rss0 = h_broker_rss_kb(b);
    GByteArray *frame = publish_of_length("chan.a", PARTIAL_MAX_FRAME);
    size_t sent = send_all_partial(fds, off, PARTIAL_CONNS, frame, frame->len - 1, 3000);
    long rss1 = h_broker_rss_kb(b);
    fprintf(stderr,
            "  %d incomplete %u-byte frames: %zu bytes sent, broker RSS %ld -> %ld KiB "
            "(%s 8 MiB)\n",
            PARTIAL_CONNS, PARTIAL_MAX_FRAME, sent, rss0, rss1, bound);
    /* Meaningful only when far more than the bound was offered. */
    CU_ASSERT(sent >= 4 * 8 * 1024 * 1024);
    /* The bound, and what libevent's reads and the allocator add to it (and
     * under ASan its redzones and 16 MiB quarantine of freed blocks). */
#ifdef T11_ASAN
    CU_ASSERT(rss1 - rss0 <= 32 * 1024);
#else
    CU_ASSERT(rss1 - rss0 <= 16 * 1024);
#endif
    /* Small messages flow meanwhile, from the same address. */
    int sub, pub, sync;
    h_std_pubsub(b, "chan.b", &sub, &pub, &sync);
    char msg[1024];
    memset(msg, 'm', sizeof msg);
    for (int i = 0; i < 20; i++)
        CU_ASSERT(h_pub(pub, "pub1", "chan.b", msg, sizeof msg));
    for (int i = 0; i < 20; i++)
        CU_ASSERT(h_expect_pub(sub, "pub1", "chan.b", msg, sizeof msg));
    for (int i = 0; i < PARTIAL_CONNS; i++)
        h_close(fds[i]);
    g_byte_array_unref(frame);
    H_FINISH(b);
}

static void test_partial_frames_budget(void)
{
    partial_frames_within("input_budget = 8M\ninput_budget_per_ip = 64M\nframe_timeout = 600\n",
                          "input_budget");
}

/* The same bound from one address's share of a larger budget. */
static void test_partial_frames_per_ip(void)
{
    partial_frames_within("input_budget = 64M\ninput_budget_per_ip = 8M\nframe_timeout = 600\n",
                          "input_budget_per_ip");
}

/*
 * Held, not lost: a large frame that arrives while stalled frames have
 * spent the budget waits (its sender is not read, and its clock stops:
 * its bytes wait in the socket) and completes.  The stalled ones look like
 * it until the broker has read what they sent: each may take a turn as the
 * finisher (one that sends nothing in a turn it had to finish is cut)
 * before their clocks run and they are cut.
 */
static void test_partial_frame_held_then_done(void)
{
    struct h_broker *b = h_std_broker("input_budget = 2M\nframe_timeout = 3\n");
    CU_ASSERT_FATAL(b != NULL);
    int sub, pub, sync;
    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    enum { STALLED = 6 };
    int fds[STALLED];
    size_t off[STALLED] = {0}, pub_off = 0;
    for (int i = 0; i < STALLED; i++)
        CU_ASSERT_FATAL((fds[i] = h_std_client(b, "pub1")) >= 0);
    GByteArray *frame = publish_of_length("chan.a", PARTIAL_MAX_FRAME);
    int64_t t0 = h_now_ms();
    send_all_partial(fds, off, STALLED, frame, frame->len - 1, 1000);
    h_sleep_ms((int)MAX(0, 3000 - (h_now_ms() - t0)));
    /* Sent whole, 3 s after the stalled ones began: held for the budget. */
    send_all_partial(&pub, &pub_off, 1, frame, frame->len, 20000);
    CU_ASSERT(pub_off == frame->len);
    struct h_frame f = {0};
    CU_ASSERT(h_read_frame(sub, 30000, &f) == H_FRAME && f.len == frame->len);
    h_frame_clear(&f);
    fprintf(stderr, "  a %u-byte frame behind %d stalled ones: delivered after %lld ms\n",
            PARTIAL_MAX_FRAME, STALLED, (long long)(h_now_ms() - t0));
    for (int i = 0; i < STALLED; i++) {
        /* At frame_timeout, or sooner: nothing sent in a finisher's turn. */
        CU_ASSERT(h_expect_error_prefix(fds[i], "Frame not completed"));
        h_close(fds[i]);
    }
    g_byte_array_unref(frame);
    H_FINISH(b);
}

/*
 * A frame must arrive whole within frame_timeout of its first byte: one
 * stalled after its first bytes, and one trickled a byte at a time, are
 * both cut; one sent in two halves in time is delivered.
 */
static void test_partial_frame_timeout(void)
{
    struct h_broker *b = h_std_broker("frame_timeout = 2\n");
    CU_ASSERT_FATAL(b != NULL);
    int sub, pub, sync;
    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    GByteArray *frame = publish_of_length("chan.a", 4096);
    int stalled = h_std_client(b, "pub1"), trickle = h_std_client(b, "pub1");
    CU_ASSERT_FATAL(stalled >= 0 && trickle >= 0);
    int64_t t0 = h_now_ms();
    CU_ASSERT(h_send(stalled, frame->data, 100));
    /* A byte every 200 ms: activity does not restart the clock. */
    for (int i = 0; i < 15; i++) {
        CU_ASSERT(h_send(trickle, frame->data + i, 1));
        h_sleep_ms(200);
    }
    CU_ASSERT(h_expect_error_prefix(stalled, "Frame not completed within 2 seconds"));
    CU_ASSERT(h_expect_eof(stalled, H_WAIT_MS));
    CU_ASSERT(h_expect_error_prefix(trickle, "Frame not completed within 2 seconds"));
    CU_ASSERT(h_now_ms() - t0 >= 2000);
    /* In two halves, 500 ms apart: in time. */
    CU_ASSERT(h_send(pub, frame->data, frame->len / 2));
    h_sleep_ms(500);
    CU_ASSERT(h_send(pub, frame->data + frame->len / 2, frame->len - frame->len / 2));
    struct h_frame f = {0};
    CU_ASSERT(h_read_frame(sub, H_WAIT_MS, &f) == H_FRAME && f.len == frame->len);
    h_frame_clear(&f);
    h_close(stalled);
    h_close(trickle);
    g_byte_array_unref(frame);
    H_FINISH(b);
}

/* The value of metric name in the exporter's text (-1: not there). */
static double scrape(struct h_broker *b, const char *name)
{
    GString *m = http_call(http_port(b, "exporter"),
                           "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    double v = -1;
    char *key = g_strdup_printf("\n%s ", name);
    const char *at = strstr(m->str, key);
    if (at)
        v = g_ascii_strtod(at + strlen(key), NULL);
    g_free(key);
    g_string_free(m, TRUE);
    return v;
}

/*
 * Honest publishers of large frames, more of them at once than the budget
 * holds: the budget holds some of them back, none is cut at frame_timeout
 * for it (their bytes wait in their sockets: the broker, not they, is what
 * stalls), and every frame is delivered.  (Holding them all with the clock
 * running cut them all after frame_timeout.)
 */
struct sub_reader {
    int fd, want, got;
    size_t len;
};

/* Reads want frames of len bytes from fd (a subscriber that keeps up). */
static gpointer sub_reader(gpointer arg)
{
    struct sub_reader *r = arg;
    struct h_frame f = {0};
    while (r->got < r->want && h_read_frame(r->fd, 15000, &f) == H_FRAME) {
        if (f.op == 3 && f.len == r->len)
            r->got++;
        h_frame_clear(&f);
    }
    h_frame_clear(&f);
    return NULL;
}

/*
 * pubs honest publishers send frame at once while sub reads: every one is
 * delivered, and every publisher can publish after it (none was cut).
 * what says what they were up against, for the log line.
 */
static void honest_large_frames(struct h_broker *b, int sub, const GByteArray *frame, int pubs,
                                const char *what)
{
    int fds[16];
    size_t off[16] = {0};
    CU_ASSERT_FATAL(pubs <= (int)G_N_ELEMENTS(fds));
    for (int i = 0; i < pubs; i++)
        CU_ASSERT_FATAL((fds[i] = h_std_client(b, "pub1")) >= 0);
    int64_t t0 = h_now_ms();
    struct sub_reader r = {.fd = sub, .want = pubs, .len = frame->len};
    GThread *reader = g_thread_new("sub", sub_reader, &r);
    size_t sent = send_all_partial(fds, off, pubs, frame, frame->len, 20000);
    CU_ASSERT(sent == (size_t)pubs * frame->len);
    g_thread_join(reader);
    fprintf(stderr, "  %d frames of %u bytes %s: %d delivered in %lld ms\n", pubs, frame->len, what,
            r.got, (long long)(h_now_ms() - t0));
    CU_ASSERT(r.got == pubs);
    /* Nobody was cut: each publisher still publishes. */
    char msg[64] = "after";
    for (int i = 0; i < pubs; i++) {
        CU_ASSERT(h_pub(fds[i], "pub1", "chan.a", msg, sizeof msg));
        CU_ASSERT(h_expect_pub(sub, "pub1", "chan.a", msg, sizeof msg));
    }
    for (int i = 0; i < pubs; i++)
        h_close(fds[i]);
}

static void test_held_large_frames_complete(void)
{
    struct h_broker *b = h_std_broker("input_budget = 1M\ninput_budget_per_ip = 64M\n"
                                      "frame_timeout = 3\nmax_queued_bytes = 64M\n");
    CU_ASSERT_FATAL(b != NULL);
    int sub, pub, sync;
    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    GByteArray *frame = publish_of_length("chan.a", PARTIAL_MAX_FRAME);
    honest_large_frames(b, sub, frame, 8, "at once, input_budget 1M");
    g_byte_array_unref(frame);
    H_FINISH(b);
}

/*
 * The same honest publishers behind 600 sessions that announced large
 * frames, sent 20 or 12 KiB of them and stalled, far more than the budget
 * holds (past the bound at which sessions under 16 KiB are held too, with
 * the rest of what they sent waiting in their sockets): the honest ones
 * get their turns first (their sockets fill up, a staller's holds at most
 * what it sent), are not cut, and deliver every frame.
 */
static void test_held_large_frames_behind_stallers(void)
{
    enum { STALLERS = 600, MID = 100 };
    /* A held frame's clock stops for 10 x frame_timeout at most: 10 s. */
    struct h_broker *b = h_std_broker("input_budget = 1M\ninput_budget_per_ip = 64M\n"
                                      "frame_timeout = 1\nmax_queued_bytes = 64M\n");
    CU_ASSERT_FATAL(b != NULL);
    int sub, pub, sync;
    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    static int st[STALLERS];
    static size_t st_off[STALLERS];
    memset(st_off, 0, sizeof st_off);
    GByteArray *frame = publish_of_length("chan.a", PARTIAL_MAX_FRAME);
    for (int i = 0; i < STALLERS; i++)
        CU_ASSERT_FATAL((st[i] = h_std_client(b, "pub1")) >= 0);
    send_all_partial(st, st_off, MID, frame, 20 * 1024, 2000);
    send_all_partial(st + MID, st_off + MID, STALLERS - MID, frame, 12 * 1024, 2000);
    honest_large_frames(b, sub, frame, 4, "behind 600 stallers");
    /* (The stallers are cut by frame_timeout, at the latest by the 10 s
     * cap: when is load-dependent, so it is not asserted here; the other
     * frame_timeout tests assert the cut.) */
    for (int i = 0; i < STALLERS; i++)
        h_close(st[i]);
    g_byte_array_unref(frame);
    H_FINISH(b);
}

/*
 * Many sessions each holding less than 16 KiB of an incomplete frame (each
 * under the floor that keeps small frames flowing) cannot carry what the
 * broker holds past the budget and a quarter, plus two max_frame (what
 * finishers may add) and one 4 KiB read each; the gauges say so, small
 * frames still flow, and closing frees it all.  (Not holding sessions
 * under the floor held 400 x 12 KiB here.)
 */
static void test_small_partials_bounded(void)
{
    enum { CONNS = 400, PART = 12 * 1024 };
    struct h_broker *b =
        h_std_broker("input_budget = 1M\ninput_budget_per_ip = 64M\nframe_timeout = 600\n"
                     "max_frame = 65536\nexporter = 127.0.0.1:0\n");
    CU_ASSERT_FATAL(b != NULL);
    static int fds[CONNS];
    static size_t off[CONNS];
    memset(off, 0, sizeof off);
    for (int i = 0; i < CONNS; i++)
        CU_ASSERT_FATAL((fds[i] = h_std_client(b, "pub1")) >= 0);
    GByteArray *frame = publish_of_length("chan.a", 64 * 1024);
    size_t sent = send_all_partial(fds, off, CONNS, frame, PART, 2000);
    CU_ASSERT(sent == (size_t)CONNS * PART);
    h_sleep_ms(1500);
    double held = scrape(b, "hpfriends_input_partial_bytes");
    double paused = scrape(b, "hpfriends_input_held_sessions");
    /* (+4 reads: a finisher's 4 KiB read may run past the frame it completes.) */
    const double bound = 1024 * 1024 + 1024 * 1024 / 4 + 2 * 65536 + (CONNS + 4) * 4096;
    fprintf(stderr,
            "  %d sessions x %d bytes of a frame (%zu sent): %.0f bytes held, "
            "%.0f sessions not read (bound %.0f)\n",
            CONNS, PART, sent, held, paused, bound);
    CU_ASSERT(held > 0);
    CU_ASSERT(held <= bound);
    CU_ASSERT(paused > 0);
    /* Small messages from other sessions still flow. */
    int sub, pub, sync;
    h_std_pubsub(b, "chan.b", &sub, &pub, &sync);
    CU_ASSERT(h_pub(pub, "pub1", "chan.b", "m", 1));
    CU_ASSERT(h_expect_pub(sub, "pub1", "chan.b", "m", 1));
    /* Their closes are seen, and what they held freed. */
    for (int i = 0; i < CONNS; i++)
        h_close(fds[i]);
    double left = -1;
    for (int64_t t0 = h_now_ms(); h_now_ms() - t0 < 10000 && left != 0; h_sleep_ms(200))
        left = scrape(b, "hpfriends_input_partial_bytes");
    CU_ASSERT(left == 0);
    g_byte_array_unref(frame);
    H_FINISH(b);
}

/* AUTH on an authenticated session is refused at its header, not after
 * the broker took the whole (up to max_frame) frame. */
static void test_auth_after_auth_at_header(void)
{
    struct h_broker *b = h_std_broker(NULL);
    CU_ASSERT_FATAL(b != NULL);
    int fd = h_std_client(b, "pub1");
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t hdr[5] = {0x00, 0x10, 0x00, 0x00, 0x02}; /* AUTH, 1 MiB announced */
    CU_ASSERT(h_send(fd, hdr, sizeof hdr));
    CU_ASSERT(h_expect_error_prefix(fd, "Bad frame: AUTH on an authenticated connection"));
    CU_ASSERT(h_expect_eof(fd, H_WAIT_MS));
    h_close(fd);
    H_FINISH(b);
}

int main(void)
{
    static const struct h_test tests[] = {
        {"a max_frame AUTH is refused at its header", test_preauth_frame_limit},
        {"SUBSCRIBE names over 255 bytes are refused", test_long_subscribe_name},
        {"log lines and label values are escaped", test_log_and_label_escaping},
        {"ERROR texts escape what the client sent", test_deny_texts_escaped},
        {"the exporter bounds headers, bodies, connections", test_exporter_limits},
        {"out of descriptors: refuse politely, no spinning", test_out_of_descriptors},
        {"the console counts connections from accept", test_console_admission},
        {"sessions of a key share its channel sets", test_shared_channel_sets},
        {"memory goes back after a TLS flood", test_tls_flood_memory},
        {"incomplete frames are held within the input budget", test_partial_frames_budget},
        {"incomplete frames are held within an address's share", test_partial_frames_per_ip},
        {"an incomplete frame is cut after frame_timeout", test_partial_frame_timeout},
        {"an incomplete frame held for the budget completes", test_partial_frame_held_then_done},
        {"large frames held for the budget are not cut", test_held_large_frames_complete},
        {"large frames held behind stallers are not cut", test_held_large_frames_behind_stallers},
        {"partial frames under the floor stay within the budget", test_small_partials_bounded},
        {"AUTH after AUTH is refused at its header", test_auth_after_auth_at_header},
        {NULL, NULL},
    };
    h_init(300);
    /* T11_ONLY=word: run the tests whose name contains it (when iterating on one). */
    const char *only = getenv("T11_ONLY");
    static struct h_test chosen[G_N_ELEMENTS(tests)];
    if (only) {
        size_t n = 0;
        for (size_t i = 0; tests[i].name; i++)
            if (strstr(tests[i].name, only))
                chosen[n++] = tests[i];
    }
    if (CU_initialize_registry() != CUE_SUCCESS ||
        !h_add_suite("t11_hostile", only ? chosen : tests))
        return 1;
    return h_run();
}
