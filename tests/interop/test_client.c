/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CUnit tests for the hpfeeds client library (sdk/client) against a tiny
 * scripted broker living in the same event loop, on real sockets at
 * 127.0.0.1 with a kernel-chosen port.
 *
 * The fake broker checks AUTH hashes with its own SHA-1 (OpenSSL EVP), not
 * with the codec's wire_auth_hash(), so a wrong hash cannot agree with
 * itself.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>

#include "hpfeeds-client.h"
#include "wire.h"

#define IDENT     "tester"
#define SECRET    "s3cret"
#define MAX_CONNS 16
#define MAX_RECS  512
#define REC_DATA  300

/* ---- the fake broker ---- */

struct fake;

struct fconn {
    struct fake *f;
    struct bufferevent *bev; /* NULL once closed */
    uint8_t nonce[WIRE_NONCE_LEN];
    bool authed;
};

/* One frame the fake broker received. */
struct rec {
    int conn;
    uint8_t op;
    char name[WIRE_MAX_NAME + 1];
    char chan[WIRE_MAX_NAME + 1];
    uint8_t data[REC_DATA];
    size_t len;      /* full payload length, even if longer than data */
    bool auth_ok;    /* AUTH: the hash matched SHA-1(nonce || SECRET) */
    bool pattern_ok; /* PUBLISH: payload follows big_payload()'s pattern */
};

struct fake {
    struct event_base *base;
    struct evconnlistener *lis;
    uint16_t port;
    struct fconn conns[MAX_CONNS];
    int n_conns;
    struct rec recs[MAX_RECS];
    int n_recs;
    int stall_conn; /* stop reading this connection after AUTH; -1 for none */
    bool no_info;   /* accept, then say nothing */
};

static struct event_base *base;

static void sha1(const uint8_t *a, size_t alen, const char *b, uint8_t out[20])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    CU_ASSERT_FATAL(ctx != NULL);
    CU_ASSERT_FATAL(EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1);
    EVP_DigestUpdate(ctx, a, alen);
    EVP_DigestUpdate(ctx, b, strlen(b));
    EVP_DigestFinal_ex(ctx, out, &n);
    EVP_MD_CTX_free(ctx);
    CU_ASSERT(n == 20);
}

/* Payload of the n-th big publish: seq in the first 4 bytes, then a pattern. */
static void big_payload(uint8_t *p, size_t len, uint32_t seq)
{
    p[0] = (uint8_t)(seq >> 24);
    p[1] = (uint8_t)(seq >> 16);
    p[2] = (uint8_t)(seq >> 8);
    p[3] = (uint8_t)seq;
    for (size_t i = 4; i < len; i++)
        p[i] = (uint8_t)(seq + i);
}

static bool pattern_ok(const uint8_t *p, size_t len)
{
    if (len < 4)
        return true;
    uint32_t seq = wire_peek_length(p);
    for (size_t i = 4; i < len; i++)
        if (p[i] != (uint8_t)(seq + i))
            return false;
    return true;
}

static void fake_record(struct fconn *fc, const struct wire_msg *m)
{
    struct fake *f = fc->f;
    if (f->n_recs >= MAX_RECS)
        return;
    struct rec *r = &f->recs[f->n_recs++];
    memset(r, 0, sizeof *r);
    r->conn = (int)(fc - f->conns);
    r->op = m->op;
    if (m->name.len)
        memcpy(r->name, m->name.ptr, m->name.len);
    if (m->channel.len)
        memcpy(r->chan, m->channel.ptr, m->channel.len);
    r->len = m->data.len;
    if (m->data.len)
        memcpy(r->data, m->data.ptr, m->data.len < REC_DATA ? m->data.len : REC_DATA);
    if (m->op == WIRE_OP_AUTH) {
        uint8_t want[20];
        sha1(fc->nonce, sizeof fc->nonce, SECRET, want);
        r->auth_ok = m->data.len == 20 && memcmp(want, m->data.ptr, 20) == 0;
    }
    if (m->op == WIRE_OP_PUBLISH)
        r->pattern_ok = pattern_ok(m->data.ptr, m->data.len);
}

static void fake_read(struct bufferevent *bev, void *arg)
{
    struct fconn *fc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail < WIRE_HEADER_LEN)
            return;
        uint8_t hdr[4];
        evbuffer_copyout(in, hdr, 4);
        uint32_t flen = wire_peek_length(hdr);
        if (avail < flen)
            return;
        const uint8_t *p = evbuffer_pullup(in, flen);
        struct wire_msg m;
        int r = wire_decode(p, flen, 1024 * 1024, &m, NULL, 0, NULL);
        CU_ASSERT_FATAL(r == WIRE_FRAME);
        fake_record(fc, &m);
        evbuffer_drain(in, flen);
        if (m.op == WIRE_OP_AUTH) {
            fc->authed = true;
            if (fc->f->stall_conn == (int)(fc - fc->f->conns)) {
                bufferevent_disable(bev, EV_READ);
                return;
            }
        }
    }
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
    struct fconn *fc = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        bufferevent_free(fc->bev);
        fc->bev = NULL;
    }
}

static void fake_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
    struct fake *f = arg;
    CU_ASSERT_FATAL(f->n_conns < MAX_CONNS);
    struct fconn *fc = &f->conns[f->n_conns++];
    fc->f = f;
    fc->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
    CU_ASSERT_FATAL(fc->bev != NULL);
    bufferevent_setcb(fc->bev, fake_read, NULL, fake_event, fc);
    bufferevent_enable(fc->bev, EV_READ | EV_WRITE);
    evutil_secure_rng_get_bytes(fc->nonce, sizeof fc->nonce);
    if (f->no_info)
        return;
    uint8_t info[64];
    size_t n = wire_encode_info(info, sizeof info, "fake", 4, fc->nonce, sizeof fc->nonce);
    CU_ASSERT_FATAL(n > 0);
    bufferevent_write(fc->bev, info, n);
}

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof *f);
    CU_ASSERT_FATAL(f != NULL);
    f->base = base;
    f->stall_conn = -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    f->lis =
        evconnlistener_new_bind(base, fake_accept, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof sin);
    CU_ASSERT_FATAL(f->lis != NULL);
    evutil_socket_t fd = evconnlistener_get_fd(f->lis);
    /* A small receive buffer (inherited by accepted sockets) makes a stalled
     * reader back data up into the client's output buffer quickly. */
    int rcvbuf = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in got;
    socklen_t len = sizeof got;
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&got, &len) == 0);
    f->port = ntohs(got.sin_port);
    return f;
}

static void fake_close(struct fake *f, int i)
{
    if (f->conns[i].bev) {
        bufferevent_free(f->conns[i].bev);
        f->conns[i].bev = NULL;
    }
}

static void fake_send(struct fake *f, int i, const uint8_t *frame, size_t n)
{
    CU_ASSERT_FATAL(f->conns[i].bev != NULL);
    bufferevent_write(f->conns[i].bev, frame, n);
}

static void fake_free(struct fake *f)
{
    for (int i = 0; i < f->n_conns; i++)
        fake_close(f, i);
    evconnlistener_free(f->lis);
    free(f);
}

/* Index of the n-th (0-based) record of connection conn, or -1. */
static int rec_of(const struct fake *f, int conn, int n)
{
    for (int i = 0; i < f->n_recs; i++)
        if (f->recs[i].conn == conn && n-- == 0)
            return i;
    return -1;
}

static int recs_of(const struct fake *f, int conn)
{
    int n = 0;
    for (int i = 0; i < f->n_recs; i++)
        n += f->recs[i].conn == conn;
    return n;
}

/* ---- what the client reported ---- */

struct obs {
    struct hpfc_client *c;
    int n_msgs;
    char ident[WIRE_MAX_NAME + 1];
    char chan[WIRE_MAX_NAME + 1];
    uint8_t payload[512];
    size_t len;
    int n_errors;
    char error[256];
    int n_connected, n_authed, n_disconnected;
    char reason[512];
    int n_drained;
    bool free_on_message;
};

static void obs_message(void *ud, const char *ident, const char *channel, const uint8_t *payload,
                        size_t len)
{
    struct obs *o = ud;
    o->n_msgs++;
    snprintf(o->ident, sizeof o->ident, "%s", ident);
    snprintf(o->chan, sizeof o->chan, "%s", channel);
    o->len = len;
    memcpy(o->payload, payload, len < sizeof o->payload ? len : sizeof o->payload);
    if (o->free_on_message) {
        hpfc_free(o->c);
        o->c = NULL;
    }
}

static void obs_error(void *ud, const char *message)
{
    struct obs *o = ud;
    o->n_errors++;
    snprintf(o->error, sizeof o->error, "%s", message);
}

static void obs_state(void *ud, enum hpfc_state st, const char *reason)
{
    struct obs *o = ud;
    switch (st) {
    case HPFC_STATE_CONNECTED:
        o->n_connected++;
        break;
    case HPFC_STATE_AUTHENTICATED:
        o->n_authed++;
        break;
    case HPFC_STATE_DISCONNECTED:
        o->n_disconnected++;
        CU_ASSERT(reason != NULL);
        snprintf(o->reason, sizeof o->reason, "%s", reason ? reason : "");
        break;
    default:
        CU_FAIL("unexpected state in callback");
        break;
    }
}

static void obs_drained(void *ud)
{
    struct obs *o = ud;
    o->n_drained++;
}

static struct hpfc_client *client_new(struct obs *o, uint16_t port)
{
    struct hpfc_callbacks cbs = {
        .on_message = obs_message,
        .on_error = obs_error,
        .on_state = obs_state,
        .on_drained = obs_drained,
    };
    memset(o, 0, sizeof *o);
    o->c = hpfc_client_new(base, "127.0.0.1", port, IDENT, SECRET, &cbs, o);
    CU_ASSERT_FATAL(o->c != NULL);
    return o->c;
}

/* ---- running the loop ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg) { *(bool *)arg = true; }

/* Runs the loop until *counter >= target or ms passed. */
static bool run_until(const int *counter, int target, int ms)
{
    bool expired = false;
    struct event *t = evtimer_new(base, on_deadline, &expired);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (*counter < target && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *counter >= target;
}

static void run_for(int ms)
{
    int never = 0;
    run_until(&never, 1, ms);
}

static void assert_rec(const struct fake *f, int conn, int n, uint8_t op, const char *chan)
{
    int i = rec_of(f, conn, n);
    CU_ASSERT_FATAL(i >= 0);
    const struct rec *r = &f->recs[i];
    CU_ASSERT_EQUAL(r->op, op);
    CU_ASSERT_STRING_EQUAL(r->name, IDENT);
    if (op == WIRE_OP_AUTH)
        CU_ASSERT(r->auth_ok);
    if (chan)
        CU_ASSERT_STRING_EQUAL(r->chan, chan);
}

/* ---- tests ---- */

static void test_invalid_args(void)
{
    char long_name[300];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';

    CU_ASSERT_PTR_NULL(hpfc_client_new(NULL, "127.0.0.1", 1, "a", "b", NULL, NULL));
    CU_ASSERT_PTR_NULL(hpfc_client_new(base, "127.0.0.1", 0, "a", "b", NULL, NULL));
    CU_ASSERT_PTR_NULL(hpfc_client_new(base, "", 1, "a", "b", NULL, NULL));
    CU_ASSERT_PTR_NULL(hpfc_client_new(base, "127.0.0.1", 1, "", "b", NULL, NULL));
    CU_ASSERT_PTR_NULL(hpfc_client_new(base, "127.0.0.1", 1, long_name, "b", NULL, NULL));
    CU_ASSERT_PTR_NULL(hpfc_client_new(base, "127.0.0.1", 1, "a", NULL, NULL, NULL));

    struct hpfc_client *c = hpfc_client_new(base, "127.0.0.1", 1, "a", "", NULL, NULL);
    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, ""), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, NULL), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, long_name), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_unsubscribe(c, long_name), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_unsubscribe(c, "never"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_publish(c, long_name, "x", 1), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_publish(c, "ch", NULL, 1), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_publish(c, "ch", NULL, 0), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_state(c), HPFC_STATE_DISCONNECTED);
    CU_ASSERT_PTR_NULL(hpfc_broker_name(c));
    CU_ASSERT(hpfc_pending_bytes(c) > 0);
    CU_ASSERT_STRING_EQUAL(hpfc_strerror(HPFC_ERR_QUEUE_FULL), "publish queue full");
    hpfc_free(c);
    hpfc_free(NULL);
}

/* AUTH with the right hash, then subscriptions, then what was queued. */
static void test_auth_then_subscriptions_then_queue(void)
{
    struct fake *f = fake_new();
    struct obs o;
    struct hpfc_client *c = client_new(&o, f->port);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "chan.a"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "chan.b"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "chan.a"), HPFC_OK); /* twice: sent once */
    CU_ASSERT_EQUAL(hpfc_publish(c, "chan.a", "early", 5), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);

    CU_ASSERT(run_until(&f->n_recs, 4, 3000));
    CU_ASSERT(run_until(&o.n_drained, 1, 3000));
    CU_ASSERT_EQUAL(f->n_recs, 4);
    assert_rec(f, 0, 0, WIRE_OP_AUTH, NULL);
    assert_rec(f, 0, 1, WIRE_OP_SUBSCRIBE, "chan.a");
    assert_rec(f, 0, 2, WIRE_OP_SUBSCRIBE, "chan.b");
    assert_rec(f, 0, 3, WIRE_OP_PUBLISH, "chan.a");
    CU_ASSERT(f->recs[3].len == 5 && memcmp(f->recs[3].data, "early", 5) == 0);
    CU_ASSERT_EQUAL(o.n_connected, 1);
    CU_ASSERT_EQUAL(o.n_authed, 1);
    CU_ASSERT_EQUAL(hpfc_state(c), HPFC_STATE_AUTHENTICATED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hpfc_broker_name(c));
    CU_ASSERT_STRING_EQUAL(hpfc_broker_name(c), "fake");
    CU_ASSERT_EQUAL(hpfc_pending_bytes(c), 0);

    /* Live: unsubscribe and publish go out at once. */
    CU_ASSERT_EQUAL(hpfc_unsubscribe(c, "chan.b"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_publish(c, "chan.b", "", 0), HPFC_OK);
    CU_ASSERT(run_until(&f->n_recs, 6, 3000));
    assert_rec(f, 0, 4, WIRE_OP_UNSUBSCRIBE, "chan.b");
    assert_rec(f, 0, 5, WIRE_OP_PUBLISH, "chan.b");
    CU_ASSERT_EQUAL(f->recs[5].len, 0);

    hpfc_free(c);
    fake_free(f);
}

/* After the broker drops us: AUTH (new nonce) + current subscriptions again,
 * and what was published meanwhile. */
static void test_reconnect_resends(void)
{
    struct fake *f = fake_new();
    struct obs o;
    struct hpfc_client *c = client_new(&o, f->port);
    hpfc_set_reconnect(c, true, 20, 200);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "chan.a"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "chan.b"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    CU_ASSERT_FATAL(run_until(&f->n_recs, 3, 3000));

    fake_close(f, 0);
    CU_ASSERT_FATAL(run_until(&o.n_disconnected, 1, 3000));
    CU_ASSERT_PTR_NOT_NULL(strstr(o.reason, "closed by broker"));
    CU_ASSERT_EQUAL(hpfc_unsubscribe(c, "chan.b"), HPFC_OK); /* while down: not re-sent */
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "chan.c"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_publish(c, "chan.a", "while-down", 10), HPFC_OK);
    CU_ASSERT(hpfc_pending_bytes(c) > 0);

    CU_ASSERT_FATAL(run_until(&f->n_recs, 3 + 4, 3000));
    CU_ASSERT_EQUAL(f->n_conns, 2);
    CU_ASSERT_EQUAL(recs_of(f, 1), 4);
    assert_rec(f, 1, 0, WIRE_OP_AUTH, NULL);
    assert_rec(f, 1, 1, WIRE_OP_SUBSCRIBE, "chan.a");
    assert_rec(f, 1, 2, WIRE_OP_SUBSCRIBE, "chan.c");
    assert_rec(f, 1, 3, WIRE_OP_PUBLISH, "chan.a");
    CU_ASSERT_EQUAL(o.n_authed, 2);
    run_for(50);
    CU_ASSERT_EQUAL(hpfc_pending_bytes(c), 0);

    hpfc_free(c);
    fake_free(f);
}

/* Broker PUBLISH reaches on_message bytes-exact; ERROR reaches on_error;
 * with reconnect off, the client stays down. */
static void test_message_error_no_reconnect(void)
{
    struct fake *f = fake_new();
    struct obs o;
    struct hpfc_client *c = client_new(&o, f->port);
    hpfc_set_reconnect(c, false, 0, 0);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "bin"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    CU_ASSERT_FATAL(run_until(&f->n_recs, 2, 3000));

    uint8_t payload[256];
    for (int i = 0; i < 256; i++)
        payload[i] = (uint8_t)i;
    uint8_t frame[400];
    size_t n = wire_encode_publish(frame, sizeof frame, "other", 5, "bin", 3, payload, 256);
    fake_send(f, 0, frame, n);
    CU_ASSERT_FATAL(run_until(&o.n_msgs, 1, 3000));
    CU_ASSERT_STRING_EQUAL(o.ident, "other");
    CU_ASSERT_STRING_EQUAL(o.chan, "bin");
    CU_ASSERT_EQUAL(o.len, 256);
    CU_ASSERT(memcmp(o.payload, payload, 256) == 0);

    const char *text = "Authentication failed for " IDENT;
    n = wire_encode_error(frame, sizeof frame, text, strlen(text));
    fake_send(f, 0, frame, n);
    CU_ASSERT_FATAL(run_until(&o.n_errors, 1, 3000));
    CU_ASSERT_STRING_EQUAL(o.error, text);
    fake_close(f, 0);
    CU_ASSERT_FATAL(run_until(&o.n_disconnected, 1, 3000));
    run_for(200);
    CU_ASSERT_EQUAL(f->n_conns, 1);
    CU_ASSERT_EQUAL(hpfc_state(c), HPFC_STATE_DISCONNECTED);

    hpfc_free(c);
    fake_free(f);
}

/* A frame from the broker split across reads, then one that is invalid. */
static void test_split_and_invalid_frames(void)
{
    struct fake *f = fake_new();
    struct obs o;
    struct hpfc_client *c = client_new(&o, f->port);
    hpfc_set_reconnect(c, false, 0, 0);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    CU_ASSERT_FATAL(run_until(&f->n_recs, 1, 3000));

    uint8_t frame[64];
    size_t n =
        wire_encode_publish(frame, sizeof frame, "x", 1, "y", 1, (const uint8_t *)"hello", 5);
    for (size_t i = 0; i < n; i++) {
        fake_send(f, 0, frame + i, 1);
        run_for(2);
    }
    CU_ASSERT_FATAL(run_until(&o.n_msgs, 1, 3000));
    CU_ASSERT(o.len == 5 && memcmp(o.payload, "hello", 5) == 0);

    const uint8_t bad[] = {0, 0, 0, 5, 9}; /* opcode 9 */
    fake_send(f, 0, bad, sizeof bad);
    CU_ASSERT_FATAL(run_until(&o.n_disconnected, 1, 3000));
    CU_ASSERT_PTR_NOT_NULL(strstr(o.reason, "protocol error"));
    CU_ASSERT_EQUAL(o.n_msgs, 1);

    hpfc_free(c);
    fake_free(f);
}

/* The queue refuses past its bound and keeps everything it accepted. */
static void test_queue_bound(void)
{
    struct fake *f = fake_new();
    struct obs o;
    struct hpfc_client *c = client_new(&o, f->port);
    hpfc_set_queue_limit(c, 1000);
    uint8_t payload[100] = {0};
    int accepted = 0, rc;
    while ((rc = hpfc_publish(c, "q", payload, sizeof payload)) == HPFC_OK)
        accepted++;
    CU_ASSERT_EQUAL(rc, HPFC_ERR_QUEUE_FULL);
    CU_ASSERT(hpfc_pending_bytes(c) <= 1000);
    CU_ASSERT(accepted == 1000 / (5 + 2 + 6 + 1 + 100));
    CU_ASSERT_EQUAL(hpfc_publish(c, "q", payload, 2000), HPFC_ERR_QUEUE_FULL);

    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    CU_ASSERT_FATAL(run_until(&f->n_recs, 1 + accepted, 3000));
    CU_ASSERT(run_until(&o.n_drained, 1, 3000));
    CU_ASSERT_EQUAL(hpfc_pending_bytes(c), 0);
    for (int i = 0; i < accepted; i++)
        assert_rec(f, 0, 1 + i, WIRE_OP_PUBLISH, "q");
    /* Room again once written. */
    CU_ASSERT_EQUAL(hpfc_publish(c, "q", payload, sizeof payload), HPFC_OK);

    hpfc_free(c);
    fake_free(f);
}

/*
 * Publishes stuck in the output buffer when the connection breaks are sent
 * again, whole, after reconnecting: the broker stops reading, the client
 * publishes 12.5 MiB, the broker resets the connection.  The second connection
 * must carry a gap-free tail of the sequence, every payload intact.
 */
static void test_unsent_publishes_survive_reconnect(void)
{
    enum { N = 200, SIZE = 64 * 1024 };
    struct fake *f = fake_new();
    f->stall_conn = 0;
    struct obs o;
    struct hpfc_client *c = client_new(&o, f->port);
    hpfc_set_reconnect(c, true, 20, 100);
    /* Far more than the kernel buffers hold, so some must be left over. */
    hpfc_set_queue_limit(c, 32u * 1024u * 1024u);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    CU_ASSERT_FATAL(run_until(&o.n_authed, 1, 3000));
    CU_ASSERT_FATAL(run_until(&f->n_recs, 1, 3000));

    uint8_t *p = malloc(SIZE);
    CU_ASSERT_FATAL(p != NULL);
    for (uint32_t i = 0; i < N; i++) {
        big_payload(p, SIZE, i);
        CU_ASSERT_EQUAL_FATAL(hpfc_publish(c, "big", p, SIZE), HPFC_OK);
    }
    free(p);
    run_for(100); /* fill the kernel buffers */
    size_t stuck = hpfc_pending_bytes(c);
    CU_ASSERT(stuck > 0);

    fake_close(f, 0);
    CU_ASSERT_FATAL(run_until(&o.n_disconnected, 1, 3000));
    CU_ASSERT(hpfc_pending_bytes(c) >= stuck);

    /* The second connection reads everything. */
    int last = -1;
    bool done = false;
    for (int spins = 0; spins < 500 && !done; spins++) {
        run_for(10);
        int k = recs_of(f, 1);
        if (k > 0) {
            const struct rec *r = &f->recs[rec_of(f, 1, k - 1)];
            done = r->op == WIRE_OP_PUBLISH && r->len == SIZE && wire_peek_length(r->data) == N - 1;
        }
    }
    CU_ASSERT_FATAL(done);
    assert_rec(f, 1, 0, WIRE_OP_AUTH, NULL);
    int k = recs_of(f, 1);
    CU_ASSERT(k >= 2);
    for (int j = 1; j < k; j++) {
        const struct rec *r = &f->recs[rec_of(f, 1, j)];
        CU_ASSERT_EQUAL(r->op, WIRE_OP_PUBLISH);
        CU_ASSERT_EQUAL(r->len, SIZE);
        CU_ASSERT(r->pattern_ok);
        int seq = (int)wire_peek_length(r->data);
        if (last >= 0)
            CU_ASSERT_EQUAL(seq, last + 1);
        last = seq;
    }
    CU_ASSERT_EQUAL(last, N - 1);
    run_for(20);
    CU_ASSERT_EQUAL(hpfc_pending_bytes(c), 0);

    hpfc_free(c);
    fake_free(f);
}

/* hpfc_free() from inside a callback: no further callback, no crash. */
static void test_free_inside_callback(void)
{
    struct fake *f = fake_new();
    struct obs o;
    struct hpfc_client *c = client_new(&o, f->port);
    o.free_on_message = true;
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "y"), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    CU_ASSERT_FATAL(run_until(&f->n_recs, 2, 3000));

    uint8_t frames[128];
    size_t n = wire_encode_publish(frames, 64, "x", 1, "y", 1, (const uint8_t *)"one", 3);
    size_t m = wire_encode_publish(frames + n, 64, "x", 1, "y", 1, (const uint8_t *)"two", 3);
    fake_send(f, 0, frames, n + m);
    CU_ASSERT(run_until(&o.n_msgs, 1, 3000));
    run_for(50);
    CU_ASSERT_EQUAL(o.n_msgs, 1);
    CU_ASSERT_PTR_NULL(o.c);
    fake_free(f);
}

/* A broker that accepts but never sends INFO is given up on in time. */
static void test_info_timeout(void)
{
    struct fake *f = fake_new();
    f->no_info = true;
    struct obs o;
    struct hpfc_client *c = client_new(&o, f->port);
    hpfc_set_reconnect(c, false, 0, 0);
    hpfc_set_connect_timeout(c, 100);
    CU_ASSERT_EQUAL(hpfc_publish(c, "q", "kept", 4), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    CU_ASSERT_FATAL(run_until(&o.n_disconnected, 1, 3000));
    CU_ASSERT_EQUAL(o.n_connected, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(o.reason, "waiting for INFO"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o.reason, "timed out"));
    CU_ASSERT(hpfc_pending_bytes(c) > 0); /* still queued for next time */
    hpfc_free(c);
    fake_free(f);
}

/*
 * A port where connections are refused: a socket bound to it and never
 * listening, held until the test ends.  Binding, noting and closing would
 * free the port inside the ephemeral range, where another test's listener
 * may take it, or the client's own source port may match it (a TCP
 * self-connect that succeeds); a bound port is used by neither.
 */
static int dead_port_new(uint16_t *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void test_connection_refused(void)
{
    uint16_t port;
    int dead = dead_port_new(&port);

    struct obs o;
    struct hpfc_client *c = client_new(&o, port);
    hpfc_set_reconnect(c, false, 0, 0);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    CU_ASSERT_FATAL(run_until(&o.n_disconnected, 1, 3000));
    CU_ASSERT_PTR_NOT_NULL(strstr(o.reason, "refused"));
    CU_ASSERT_EQUAL(o.n_connected, 0);
    CU_ASSERT_EQUAL(hpfc_state(c), HPFC_STATE_DISCONNECTED);
    hpfc_free(c);
    close(dead);
}

/* With reconnect on, a refused connection is retried with growing delays. */
static void test_backoff_retries(void)
{
    uint16_t port;
    int dead = dead_port_new(&port);

    struct obs o;
    struct hpfc_client *c = client_new(&o, port);
    hpfc_set_reconnect(c, true, 10, 40);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);
    /* Delays: [5,10], [10,20], [20,40], [20,40]...: 4 failures well within 1 s. */
    CU_ASSERT(run_until(&o.n_disconnected, 4, 1000));
    hpfc_disconnect(c);
    int seen = o.n_disconnected;
    run_for(150);
    CU_ASSERT_EQUAL(o.n_disconnected, seen); /* stopped */
    hpfc_free(c);
    close(dead);
}

/* hpfc_add_broker(): a refused broker is skipped, a lost one is left for
 * the next of the list, and each new broker gets AUTH and the
 * subscriptions. */
static void test_failover(void)
{
    uint16_t dead_port;
    int dead = dead_port_new(&dead_port);
    struct fake *f1 = fake_new();
    struct fake *f2 = fake_new();

    struct obs o;
    struct hpfc_client *c = client_new(&o, dead_port);
    hpfc_set_reconnect(c, true, 10, 40);
    CU_ASSERT_EQUAL(hpfc_add_broker(c, NULL, 1), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_add_broker(c, "", 1), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_add_broker(c, "127.0.0.1", 0), HPFC_ERR_INVALID);
    CU_ASSERT_EQUAL(hpfc_add_broker(c, "127.0.0.1", f1->port), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_add_broker(c, "127.0.0.1", f2->port), HPFC_OK);
    CU_ASSERT_EQUAL(hpfc_subscribe(c, "chan.a"), HPFC_OK);
    uint16_t port = 0;
    CU_ASSERT_STRING_EQUAL(hpfc_current_host(c, &port), "127.0.0.1");
    CU_ASSERT_EQUAL(port, dead_port);
    CU_ASSERT_EQUAL(hpfc_connect(c), HPFC_OK);

    /* Refused by the first, on to the second: AUTH + SUBSCRIBE there. */
    CU_ASSERT_FATAL(run_until(&f1->n_recs, 2, 3000));
    assert_rec(f1, 0, 0, WIRE_OP_AUTH, NULL);
    assert_rec(f1, 0, 1, WIRE_OP_SUBSCRIBE, "chan.a");
    hpfc_current_host(c, &port);
    CU_ASSERT_EQUAL(port, f1->port);

    /* That one goes away: the third of the list gets the session. */
    fake_close(f1, 0);
    CU_ASSERT_FATAL(run_until(&f2->n_recs, 2, 3000));
    assert_rec(f2, 0, 0, WIRE_OP_AUTH, NULL);
    assert_rec(f2, 0, 1, WIRE_OP_SUBSCRIBE, "chan.a");
    CU_ASSERT_TRUE(f2->recs[0].auth_ok);
    hpfc_current_host(c, &port);
    CU_ASSERT_EQUAL(port, f2->port);
    CU_ASSERT_EQUAL(f1->n_conns, 1);

    hpfc_free(c);
    fake_free(f1);
    fake_free(f2);
    close(dead);
}

int main(void)
{
    /* The fake broker's resets must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("hpfeeds client library", NULL, NULL);
    if (!s || !CU_add_test(s, "invalid arguments", test_invalid_args) ||
        !CU_add_test(s, "AUTH, then subscriptions, then the queue",
                     test_auth_then_subscriptions_then_queue) ||
        !CU_add_test(s, "reconnect re-sends AUTH and subscriptions", test_reconnect_resends) ||
        !CU_add_test(s, "message, ERROR, no reconnect", test_message_error_no_reconnect) ||
        !CU_add_test(s, "split and invalid frames", test_split_and_invalid_frames) ||
        !CU_add_test(s, "queue bound", test_queue_bound) ||
        !CU_add_test(s, "unsent publishes survive a reconnect",
                     test_unsent_publishes_survive_reconnect) ||
        !CU_add_test(s, "hpfc_free inside a callback", test_free_inside_callback) ||
        !CU_add_test(s, "no INFO: connect timeout", test_info_timeout) ||
        !CU_add_test(s, "connection refused", test_connection_refused) ||
        !CU_add_test(s, "back-off retries, disconnect stops them", test_backoff_retries) ||
        !CU_add_test(s, "failover over a list of brokers", test_failover)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = (int)CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    event_base_free(base);
    libevent_global_shutdown();
    return failed != 0;
}
