/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Slow consumers: a subscriber that never reads must neither hold back the
 * others nor grow the broker's memory, and is disconnected after
 * slow_deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define MSG_PAYLOAD     (64 * 1024)
#define BURST_BYTES     (100u * 1000u * 1000u)
#define MAX_QUEUED      1048576
#define SLOW_DEADLINE_S 2
#define RSS_SLACK_KB    (20 * 1024)
/* messages in flight to the reading subscriber: 8 x 64 KiB < MAX_QUEUED */
#define WINDOW          8

struct reader {
    int fd;
    gint total;      /* number of messages to expect; 0 while unknown */
    gint count;      /* messages received, in order */
    int failure;     /* h_read result that stopped the reader, or 0 */
    guint64 bad_seq; /* first out-of-order sequence number + 1, or 0 */
};

/* Counts PUBLISH frames on "big" with their 8-byte sequence numbers. */
static gpointer reader_main(gpointer data)
{
    struct reader *rd = data;
    struct h_frame f = {0};

    int64_t last = h_now_ms();

    for (;;) {
        gint total = g_atomic_int_get(&rd->total);
        if (total > 0 && g_atomic_int_get(&rd->count) >= total)
            break;
        /* short polls so the end (total set late) is noticed; 10 s with
         * nothing at all is a failure */
        struct pollfd pfd = {.fd = rd->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) == 0) {
            if (h_now_ms() - last > 10000) {
                rd->failure = H_TIMEOUT;
                break;
            }
            continue;
        }
        last = h_now_ms();
        int r = h_read_frame(rd->fd, 10000, &f);
        if (r != H_FRAME) {
            rd->failure = r;
            break;
        }
        const uint8_t *id, *ch, *pl;
        size_t il, cl, pll;
        if (!h_parse_publish(&f, &id, &il, &ch, &cl, &pl, &pll) || pll != MSG_PAYLOAD) {
            rd->failure = -10;
            break;
        }
        guint64 seq = 0;
        memcpy(&seq, pl, sizeof seq);
        if (seq != (guint64)g_atomic_int_get(&rd->count) && !rd->bad_seq)
            rd->bad_seq = seq + 1;
        g_atomic_int_inc(&rd->count);
    }
    h_frame_clear(&f);
    return NULL;
}

/* The disconnect events of ident in the file sink's event log (JSON lines). */
static GPtrArray *disconnects_of(const char *path, const char *ident)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return out;
    char *want = g_strdup_printf("\"ident\":\"%s\"", ident);
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++)
        if (strstr(*l, "\"event\":\"disconnect\"") && strstr(*l, want))
            g_ptr_array_add(out, g_strdup(*l));
    g_strfreev(lines);
    g_free(want);
    g_free(text);
    return out;
}

/* Waits until ident's disconnect is in the event log (events are written in order). */
static bool await_disconnect(const char *path, const char *ident, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        GPtrArray *got = disconnects_of(path, ident);
        guint n = got->len;
        g_ptr_array_unref(got);
        if (n)
            return true;
        if (h_now_ms() >= deadline)
            return false;
        h_sleep_ms(20);
    }
}

/* Starts b (1 MiB queue bound, 2 s slow_deadline) with a file sink of its
 * events; returns that file's path. */
static char *start_with_event_log(struct h_broker *b)
{
    CU_ASSERT_FATAL(h_broker_start(b, "max_queued_bytes = 1048576\n"
                                      "slow_deadline = 2\n"
                                      "[sink:ev]\nplugin = file\npath = ev.jsonl\n"
                                      "messages = false\nevents = true\n"));
    return g_build_filename(b->dir, "ev.jsonl", NULL);
}

/*
 * Once sync's disconnect is in the event log (written after the slow one,
 * so any second event for "slow" would be there by now): exactly one
 * disconnect event for "slow", saying the broker ended it for being slow,
 * with its drops; and the broker's log says log_says.
 */
static void check_slow_disconnect(struct h_broker *b, const char *events, int sync,
                                  const char *log_says)
{
    close(sync);
    CU_ASSERT(await_disconnect(events, "sync", 10000));
    GPtrArray *gone = disconnects_of(events, "slow");
    for (guint i = 0; i < gone->len; i++)
        fprintf(stderr, "  slow subscriber's disconnect event: %s\n", (char *)gone->pdata[i]);
    CU_ASSERT(gone->len == 1);
    if (gone->len) {
        const char *ev = gone->pdata[0];
        CU_ASSERT(strstr(ev, "\"reason\":\"closed by broker: slow consumer\"") != NULL);
        CU_ASSERT(strstr(ev, "\"count\":") != NULL && !strstr(ev, "\"count\":0"));
    }
    g_ptr_array_unref(gone);
    char *log = NULL;
    CU_ASSERT(g_file_get_contents(b->log_path, &log, NULL, NULL) && strstr(log, log_says) != NULL);
    g_free(log);
}

/* Reads and discards until EOF/reset; true when that happens in time. */
static bool drain_to_eof(int fd, int timeout_ms, size_t *bytes)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    static uint8_t buf[1 << 16];

    *bytes = 0;
    while (h_now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - h_now_ms());
        if (poll(&pfd, 1, left > 0 ? left : 0) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return true; /* reset: closed by the broker as well */
        }
        *bytes += (size_t)n;
    }
    return false;
}

static void test_slow_consumer(void)
{
    struct h_broker *b = h_broker_new();
    struct reader rd = {0};
    GThread *thread;
    GByteArray *frame = g_byte_array_new();
    uint8_t *payload = g_malloc0(MSG_PAYLOAD);
    size_t seq_off, slow_bytes = 0;
    long rss0, rss_max, rss;
    guint64 sent = 0;
    int pub, fast, slow, sync;
    int64_t t0, t_burst;

    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_add_key(b, "pub1", "pub1-secret", "big", ""));
    CU_ASSERT_FATAL(h_broker_add_key(b, "fast", "fast-secret", "", "big"));
    CU_ASSERT_FATAL(h_broker_add_key(b, "slow", "slow-secret", "", "big"));
    CU_ASSERT_FATAL(h_broker_add_key(b, "sync", "sync-secret", "", ""));
    char *events = start_with_event_log(b);

    slow = h_connect_opt(b->port, 4096);
    CU_ASSERT_FATAL(slow >= 0);
    CU_ASSERT_FATAL(h_auth(slow, "slow", "slow-secret"));
    fast = h_client(b->port, "fast", "fast-secret");
    pub = h_client(b->port, "pub1", "pub1-secret");
    sync = h_client(b->port, "sync", "sync-secret");
    CU_ASSERT_FATAL(fast >= 0 && pub >= 0 && sync >= 0);
    CU_ASSERT_FATAL(h_sub(slow, "slow", "big"));
    CU_ASSERT_FATAL(h_sub(fast, "fast", "big"));
    CU_ASSERT_FATAL(
        h_barrier(b, (int[]){slow, fast}, (const char *[]){"slow", "fast"}, 2, sync, "sync"));

    rss0 = h_broker_rss_kb(b);
    CU_ASSERT_FATAL(rss0 > 0);
    rss_max = rss0;

    rd.fd = fast;
    thread = g_thread_new("fast-reader", reader_main, &rd);

    /* one frame, re-sent with a new sequence number each time */
    for (size_t i = 0; i < MSG_PAYLOAD; i++)
        payload[i] = (uint8_t)(i * 31);
    h_enc_publish(frame, "pub1", "big", payload, MSG_PAYLOAD);
    seq_off = frame->len - MSG_PAYLOAD;

    /* the burst as fast as the broker takes it, then a trickle that keeps
     * the slow subscriber over its bound for well past slow_deadline */
    t0 = h_now_ms();
    t_burst = 0;
    for (;;) {
        int64_t elapsed = h_now_ms() - t0;
        if (sent * MSG_PAYLOAD >= BURST_BYTES) {
            if (!t_burst) {
                t_burst = elapsed;
                fprintf(stderr, "  burst of %llu messages took %lld ms\n", (unsigned long long)sent,
                        (long long)t_burst);
            }
            if (elapsed >= (SLOW_DEADLINE_S + 3) * 1000)
                break;
            h_sleep_ms(20);
        }
        /* Never more than WINDOW messages ahead of the reading subscriber:
         * it keeps up by construction, however loaded the test machine, so
         * any loss it sees is the broker's doing.  A broker that let the
         * stuck subscriber hold up the others stalls this loop. */
        int64_t stall = h_now_ms() + 10000;
        while (sent - (guint64)g_atomic_int_get(&rd.count) >= WINDOW && h_now_ms() < stall)
            g_usleep(100);
        if (sent - (guint64)g_atomic_int_get(&rd.count) >= WINDOW) {
            CU_FAIL("reading subscriber got nothing for 10 s");
            break;
        }
        memcpy(frame->data + seq_off, &sent, sizeof sent);
        if (!h_send(pub, frame->data, frame->len)) {
            CU_FAIL("publisher could not send (broker stopped reading?)");
            break;
        }
        sent++;
        if (sent % 16 == 0) {
            rss = h_broker_rss_kb(b);
            if (rss > rss_max)
                rss_max = rss;
        }
    }
    g_atomic_int_set(&rd.total, (gint)sent);
    g_thread_join(thread);
    rss = h_broker_rss_kb(b);
    if (rss > rss_max)
        rss_max = rss;

    fprintf(
        stderr,
        "  sent %llu in %lld ms, reading subscriber got %d (stop: %s), RSS %ld -> max %ld KiB\n",
        (unsigned long long)sent, (long long)(h_now_ms() - t0), g_atomic_int_get(&rd.count),
        rd.failure ? h_read_str(rd.failure) : "none", rss0, rss_max);
    CU_ASSERT(sent * MSG_PAYLOAD >= BURST_BYTES);
    CU_ASSERT(g_atomic_int_get(&rd.count) == (gint)sent);
    CU_ASSERT(rd.failure == 0);
    CU_ASSERT(rd.bad_seq == 0);
    CU_ASSERT(rss_max - rss0 < MAX_QUEUED / 1024 + RSS_SLACK_KB);

    /* the stuck subscriber was over its bound for longer than slow_deadline:
     * once it reads what its socket holds, it finds the broker gone */
    CU_ASSERT(drain_to_eof(slow, 10000, &slow_bytes));
    fprintf(stderr, "  slow subscriber drained %zu bytes before the close\n", slow_bytes);
    CU_ASSERT(slow_bytes < sent * frame->len);

    /* the broker is healthy afterwards */
    CU_ASSERT_FATAL(h_pub(pub, "pub1", "big", payload, MSG_PAYLOAD));
    {
        struct h_frame f = {0};
        CU_ASSERT(h_read_frame(fast, H_WAIT_MS, &f) == H_FRAME && f.len == frame->len);
        h_frame_clear(&f);
    }

    /* One disconnect event for the slow subscriber, saying why, with its
     * drops; logged and counted as a slow consumer whichever ended it: the
     * deadline sweep or, often first, the kernel's TCP_USER_TIMEOUT. */
    check_slow_disconnect(b, events, sync, "disconnecting slow consumer");
    g_free(events);
    g_byte_array_free(frame, TRUE);
    g_free(payload);
    H_FINISH(b);
}

/*
 * A subscriber that reads, but far less than is published to it, stays over
 * its bound with its socket alive (so the kernel's TCP_USER_TIMEOUT does not
 * end it first): the slow-consumer deadline disconnects it, and the event
 * log gets one disconnect event for it, with the reason and its drops.
 */
static void test_slow_consumer_trickle(void)
{
    struct h_broker *b = h_broker_new();
    uint8_t *payload = g_malloc0(MSG_PAYLOAD);
    static uint8_t sip[4096];
    size_t got = 0;

    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_add_key(b, "pub1", "pub1-secret", "big", ""));
    CU_ASSERT_FATAL(h_broker_add_key(b, "slow", "slow-secret", "", "big"));
    CU_ASSERT_FATAL(h_broker_add_key(b, "sync", "sync-secret", "", ""));
    char *events = start_with_event_log(b);
    int slow = h_connect_opt(b->port, 4096);
    CU_ASSERT_FATAL(slow >= 0);
    CU_ASSERT_FATAL(h_auth(slow, "slow", "slow-secret"));
    int pub = h_client(b->port, "pub1", "pub1-secret");
    int sync = h_client(b->port, "sync", "sync-secret");
    CU_ASSERT_FATAL(pub >= 0 && sync >= 0);
    CU_ASSERT_FATAL(h_sub(slow, "slow", "big"));
    CU_ASSERT_FATAL(h_barrier(b, (int[]){slow}, (const char *[]){"slow"}, 1, sync, "sync"));

    /* Up to 3.2 MB/s published, 4 KiB every 20 ms read, until the broker
     * ends it (what its socket holds may take longer to read than that). */
    int64_t deadline = h_now_ms() + (SLOW_DEADLINE_S + 18) * 1000;
    bool ended = false;
    for (int i = 0; !ended && h_now_ms() < deadline; i++) {
        CU_ASSERT_FATAL(h_pub(pub, "pub1", "big", payload, MSG_PAYLOAD));
        ssize_t n = recv(slow, sip, sizeof sip, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        h_sleep_ms(20);
        if (i % 10 == 0)
            ended = await_disconnect(events, "slow", 0);
    }
    fprintf(stderr, "  trickling subscriber read %zu bytes, %s\n", got,
            ended ? "then the broker ended it" : "and is still connected");
    CU_ASSERT(ended);
    close(slow);

    /* The deadline, not the kernel, ended it: what this test is about. */
    check_slow_disconnect(b, events, sync, "bytes queued for over");
    g_free(events);
    g_free(payload);
    H_FINISH(b);
}

/* The bound is per connection: a subscriber that reads slowly but keeps up
 * over time loses nothing as long as it stays under the bound. */
static void test_bounded_but_lossless_when_under(void)
{
    struct h_broker *b = h_broker_new();
    int pub, sub, sync;
    char payload[1024];

    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_add_key(b, "pub1", "pub1-secret", "big", ""));
    CU_ASSERT_FATAL(h_broker_add_key(b, "sub1", "sub1-secret", "", "big"));
    CU_ASSERT_FATAL(h_broker_add_key(b, "sync", "sync-secret", "", ""));
    CU_ASSERT_FATAL(h_broker_start(b, "max_queued_bytes = 1048576\n"
                                      "slow_deadline = 2\n"));
    sub = h_connect_opt(b->port, 4096);
    CU_ASSERT_FATAL(sub >= 0);
    CU_ASSERT_FATAL(h_auth(sub, "sub1", "sub1-secret"));
    pub = h_client(b->port, "pub1", "pub1-secret");
    sync = h_client(b->port, "sync", "sync-secret");
    CU_ASSERT_FATAL(pub >= 0 && sync >= 0);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "big"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", sync, "sync"));

    /* about 400 KB queued while the subscriber does not read: under the
     * 1 MiB bound, so nothing may be dropped and nobody disconnected */
    for (int m = 0; m < 400; m++) {
        memset(payload, 'a' + m % 26, sizeof payload);
        snprintf(payload, sizeof payload, "%06d", m);
        CU_ASSERT_FATAL(h_pub(pub, "pub1", "big", payload, sizeof payload));
    }
    h_sleep_ms(500);
    for (int m = 0; m < 400; m++) {
        memset(payload, 'a' + m % 26, sizeof payload);
        snprintf(payload, sizeof payload, "%06d", m);
        if (!h_expect_pub(sub, "pub1", "big", payload, sizeof payload)) {
            CU_FAIL("message lost or out of order while under max_queued_bytes");
            break;
        }
    }
    CU_ASSERT(h_expect_silence(sub, 100));
    H_FINISH(b);
}

struct flood {
    int fd;
    int count;
    bool ok;
};

/* Publishes count 4 KiB messages, sequence numbered, as fast as TCP takes them. */
static gpointer flood_main(gpointer data)
{
    struct flood *fl = data;
    uint8_t payload[4096];
    memset(payload, 'f', sizeof payload);
    fl->ok = true;
    for (int m = 0; m < fl->count && fl->ok; m++) {
        memcpy(payload, &m, sizeof m);
        fl->ok = h_pub(fl->fd, "pub1", "big", payload, sizeof payload);
    }
    return NULL;
}

/*
 * One reader slower than a flooding publisher: 16 MB through a 1 MiB bound,
 * read at 12.8 MB/s at most (64 KiB per 5 ms), so about 1.3 s: under the
 * default backpressure_hold of 2 s.  With it the publisher is held back
 * while the reader's queue is over its mark, and nothing is lost or
 * reordered; with backpressure_hold = 0 the publisher is never held back,
 * so the same reader must see drops, the rest in order.  Returns how many
 * of BEHIND_COUNT messages arrived.
 */
enum { BEHIND_COUNT = 4000 };

/* A broker where pub1 publishes and sub1 subscribes on "big", started with conf. */
static struct h_broker *big_broker(const char *conf)
{
    struct h_broker *b = h_broker_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_add_key(b, "pub1", "pub1-secret", "big", ""));
    CU_ASSERT_FATAL(h_broker_add_key(b, "sub1", "sub1-secret", "", "big"));
    CU_ASSERT_FATAL(h_broker_start(b, conf));
    return b;
}

static int reader_behind(const char *extra, int sleep_ms, gboolean *in_order)
{
    char *conf = g_strdup_printf("max_queued_bytes = 1048576\nslow_deadline = 30\n%s", extra);
    struct h_broker *b = big_broker(conf);
    g_free(conf);
    int sub = h_connect_opt(b->port, 65536);
    CU_ASSERT_FATAL(sub >= 0);
    CU_ASSERT_FATAL(h_auth(sub, "sub1", "sub1-secret"));
    int pub = h_client(b->port, "pub1", "pub1-secret");
    CU_ASSERT_FATAL(pub >= 0);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "big"));
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", pub, "pub1"));

    struct flood fl = {.fd = pub, .count = BEHIND_COUNT};
    GThread *t = g_thread_new("flood", flood_main, &fl);
    struct h_frame f = {0};
    int got = 0, last = -1;
    *in_order = TRUE;
    for (;;) {
        /* Past the last message, or once drops made it never come: 3 s of quiet. */
        if (h_read_frame(sub, last == BEHIND_COUNT - 1 ? 100 : 3000, &f) != H_FRAME)
            break;
        const uint8_t *id, *ch, *pl;
        size_t il, cl, pll;
        int seq = -1;
        if (h_parse_publish(&f, &id, &il, &ch, &cl, &pl, &pll) && pll == 4096)
            memcpy(&seq, pl, sizeof seq);
        if (seq <= last)
            *in_order = FALSE;
        last = seq;
        got++;
        if (got % 16 == 15)
            h_sleep_ms(sleep_ms);
    }
    h_frame_clear(&f);
    g_thread_join(t);
    CU_ASSERT(fl.ok);
    H_FINISH(b);
    return got;
}

static void test_reader_behind_loses_nothing(void)
{
    gboolean in_order;
    int got = reader_behind("", 5, &in_order);
    CU_ASSERT(in_order);
    CU_ASSERT_EQUAL(got, BEHIND_COUNT);
}

/*
 * Many publishers flooding one reader that keeps up.  A loop turn reads
 * every publisher that is ready, up to 256 KiB each: fifty of them would put
 * 12.8 MB in the reader's queue in one turn, far past its 1 MiB bound, if
 * the queue were judged only once the turn's write is done (it was: 18-24 %
 * of the messages were dropped for a reader at full speed).  Every message
 * must arrive, each publisher's in order.
 */
enum { MANY_PUBS = 50, MANY_EACH = 1000, MANY_SIZE = 512 };

struct many_pub {
    int fd, index;
    bool ok;
};

static gpointer many_pub_main(gpointer data)
{
    struct many_pub *p = data;
    uint8_t payload[MANY_SIZE];
    memset(payload, 'm', sizeof payload);
    p->ok = true;
    for (int m = 0; m < MANY_EACH && p->ok; m++) {
        memcpy(payload, &p->index, sizeof p->index);
        memcpy(payload + sizeof p->index, &m, sizeof m);
        p->ok = h_pub(p->fd, "pub1", "big", payload, sizeof payload);
    }
    return NULL;
}

static void test_many_publishers_one_reader(void)
{
    struct h_broker *b = big_broker("max_queued_bytes = 1048576\n");
    int sub = h_client(b->port, "sub1", "sub1-secret");
    CU_ASSERT_FATAL(sub >= 0);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "big"));
    struct many_pub pubs[MANY_PUBS];
    for (int i = 0; i < MANY_PUBS; i++) {
        pubs[i] = (struct many_pub){.fd = h_client(b->port, "pub1", "pub1-secret"), .index = i};
        CU_ASSERT_FATAL(pubs[i].fd >= 0);
    }
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", pubs[0].fd, "pub1"));
    GThread *t[MANY_PUBS];
    for (int i = 0; i < MANY_PUBS; i++)
        t[i] = g_thread_new("many-pub", many_pub_main, &pubs[i]);
    int next[MANY_PUBS] = {0}, got = 0, disorder = 0;
    struct h_frame f = {0};
    while (got < MANY_PUBS * MANY_EACH && h_read_frame(sub, 5000, &f) == H_FRAME) {
        const uint8_t *id, *ch, *pl;
        size_t il, cl, pll;
        int who = -1, seq = -1;
        if (h_parse_publish(&f, &id, &il, &ch, &cl, &pl, &pll) && pll == MANY_SIZE) {
            memcpy(&who, pl, sizeof who);
            memcpy(&seq, pl + sizeof who, sizeof seq);
        }
        if (who < 0 || who >= MANY_PUBS || seq != next[who])
            disorder++;
        else
            next[who]++;
        got++;
    }
    h_frame_clear(&f);
    for (int i = 0; i < MANY_PUBS; i++) {
        g_thread_join(t[i]);
        CU_ASSERT(pubs[i].ok);
    }
    fprintf(stderr, "  %d publishers x %d messages to one reader: %d received, %d out of order\n",
            MANY_PUBS, MANY_EACH, got, disorder);
    CU_ASSERT_EQUAL(got, MANY_PUBS * MANY_EACH);
    CU_ASSERT_EQUAL(disorder, 0);
    CU_ASSERT(h_expect_silence(sub, 100));
    H_FINISH(b);
}

/*
 * Publishers flooding one reader slower than all of them take turns: while
 * the reader's backlog holds them back, each is read in its turn, about as
 * much as the others.  The publishers are written from one thread (poll,
 * non-blocking sockets), so each has data waiting whenever the broker
 * looks; how much of each the reader gets is the broker's doing.  When all
 * the paused were enabled at once, epoll's ready list kept the same ones
 * first: one publisher got up to 15 times the median.
 */
enum { TURN_PUBS = 20, TURN_SIZE = 512, TURN_TOTAL = 20000 };

struct turn_flood {
    int fd[TURN_PUBS];
    gint stop;
    bool ok;
};

static gpointer turn_flood_main(gpointer data)
{
    struct turn_flood *t = data;
    GByteArray *frame[TURN_PUBS];
    size_t off[TURN_PUBS];
    guint32 seq[TURN_PUBS] = {0};
    uint8_t payload[TURN_SIZE];
    memset(payload, 't', sizeof payload);
    for (int i = 0; i < TURN_PUBS; i++) {
        frame[i] = g_byte_array_new();
        off[i] = 0;
        fcntl(t->fd[i], F_SETFL, fcntl(t->fd[i], F_GETFL) | O_NONBLOCK);
    }
    t->ok = true;
    while (t->ok && !g_atomic_int_get(&t->stop)) {
        struct pollfd pfd[TURN_PUBS];
        for (int i = 0; i < TURN_PUBS; i++)
            pfd[i] = (struct pollfd){.fd = t->fd[i], .events = POLLOUT};
        if (poll(pfd, TURN_PUBS, 100) < 0 && errno != EINTR)
            t->ok = false;
        for (int i = 0; i < TURN_PUBS && t->ok; i++) {
            if (!(pfd[i].revents & POLLOUT))
                continue;
            /* 32 frames at a time, each numbered by its publisher. */
            if (off[i] == frame[i]->len) {
                g_byte_array_set_size(frame[i], 0);
                off[i] = 0;
                for (int k = 0; k < 32; k++, seq[i]++) {
                    memcpy(payload, &i, sizeof i);
                    memcpy(payload + sizeof i, &seq[i], sizeof seq[i]);
                    h_enc_publish(frame[i], "pub1", "big", payload, sizeof payload);
                }
            }
            ssize_t n =
                send(t->fd[i], frame[i]->data + off[i], frame[i]->len - off[i], MSG_NOSIGNAL);
            if (n > 0)
                off[i] += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                t->ok = false;
        }
    }
    for (int i = 0; i < TURN_PUBS; i++)
        g_byte_array_free(frame[i], TRUE);
    return NULL;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void test_flooding_publishers_take_turns(void)
{
    struct h_broker *b = big_broker("max_queued_bytes = 1048576\n");
    int sub = h_client(b->port, "sub1", "sub1-secret");
    CU_ASSERT_FATAL(sub >= 0);
    CU_ASSERT_FATAL(h_sub(sub, "sub1", "big"));
    struct turn_flood fl = {.stop = 0};
    for (int i = 0; i < TURN_PUBS; i++) {
        fl.fd[i] = h_client(b->port, "pub1", "pub1-secret");
        CU_ASSERT_FATAL(fl.fd[i] >= 0);
    }
    CU_ASSERT_FATAL(h_barrier1(b, sub, "sub1", fl.fd[0], "pub1"));
    GThread *t = g_thread_new("turn-flood", turn_flood_main, &fl);
    int count[TURN_PUBS] = {0}, got = 0, bad = 0;
    guint32 next[TURN_PUBS] = {0};
    struct h_frame f = {0};
    /* About 16 MB/s: 32 messages, then 1 ms. */
    while (got < TURN_TOTAL && h_read_frame(sub, 5000, &f) == H_FRAME) {
        const uint8_t *id, *ch, *pl;
        size_t il, cl, pll;
        int who = -1;
        guint32 seq = 0;
        if (h_parse_publish(&f, &id, &il, &ch, &cl, &pl, &pll) && pll == TURN_SIZE) {
            memcpy(&who, pl, sizeof who);
            memcpy(&seq, pl + sizeof who, sizeof seq);
        }
        if (who < 0 || who >= TURN_PUBS || seq != next[who]) {
            bad++;
        } else {
            next[who]++;
            count[who]++;
        }
        if (++got % 32 == 0)
            h_sleep_ms(1);
    }
    h_frame_clear(&f);
    g_atomic_int_set(&fl.stop, 1);
    g_thread_join(t);
    CU_ASSERT(fl.ok);
    int sorted[TURN_PUBS];
    memcpy(sorted, count, sizeof sorted);
    qsort(sorted, TURN_PUBS, sizeof *sorted, cmp_int);
    int least = sorted[0], median = sorted[TURN_PUBS / 2], most = sorted[TURN_PUBS - 1];
    fprintf(stderr,
            "  %d publishers flooding one reader: %d read, %d out of order; per publisher "
            "least %d, median %d, most %d\n",
            TURN_PUBS, got, bad, least, median, most);
    CU_ASSERT_EQUAL(got, TURN_TOTAL);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(least * 4 >= median);
    CU_ASSERT(most <= median * 4);
    H_FINISH(b);
}

static void test_reader_behind_without_backpressure(void)
{
    gboolean in_order;
    int got = reader_behind("backpressure_hold = 0\n", 5, &in_order);
    CU_ASSERT(in_order);
    CU_ASSERT(got > 0 && got < BEHIND_COUNT);
}

static const struct h_test tests[] = {
    {"a reader slower than the publisher loses nothing", test_reader_behind_loses_nothing},
    {"many publishers flooding one reader: nothing lost", test_many_publishers_one_reader},
    {"publishers flooding a slower reader take turns", test_flooding_publishers_take_turns},
    {"backpressure_hold = 0: that reader gets drops instead",
     test_reader_behind_without_backpressure},
    {"slow consumer: bounded memory, others served, disconnected", test_slow_consumer},
    {"a trickling slow consumer: the deadline ends it, one event", test_slow_consumer_trickle},
    {"under the bound nothing is dropped", test_bounded_but_lossless_when_under},
    {NULL, NULL},
};

int main(void)
{
    /* A sanitized daemon keeps freed memory in ASan's quarantine (256 MB by
     * default), which would show as RSS growth the broker is not to blame
     * for.  The daemon inherits our environment; this process has read its
     * own options already. */
    const char *asan = g_getenv("ASAN_OPTIONS");
    if (!asan || !strstr(asan, "quarantine_size_mb")) {
        char *v =
            g_strdup_printf("%s%squarantine_size_mb=1", asan ? asan : "", asan && *asan ? ":" : "");
        g_setenv("ASAN_OPTIONS", v, TRUE);
        g_free(v);
    }
    h_init(120);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t05_slow", tests))
        return 1;
    return h_run();
}
