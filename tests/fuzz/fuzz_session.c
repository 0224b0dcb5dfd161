/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_session: the broker's session state machine (core/conn.c and the
 * handle_*.c verbs) with a real broker: storage_sqlite, auth_storage, the
 * worker thread, the router, the flattened graph.
 *
 * One broker per process (LLVMFuzzerInitialize), on a scratch SQLite file
 * in hpfeeds3's layout with two authkeys, and one share:
 *   ident "fz"  (owner alice, secret "fzsecret"): publish a,b  subscribe a,b
 *   ident "sub" (owner bob, secret "subsecret"):  subscribe a,b
 *   alice shares channel "a" with bob
 * and one long-lived subscriber connection, bob's "sub", subscribed to a
 * and b, so publishes fan out.
 *
 * Input, per run: a fresh connection over a bufferevent pair
 * (conn_attach(), as conn_new() does for sockets).
 *   byte 0, flags: bit 0  first authenticate as "fz" (a valid AUTH)
 *                  bit 1  on_denied = continue (else close)
 *                  bit 2  error_style = legacy
 *                  bit 3  access = channels (else graph)
 *   then chunks: a size byte N and N bytes written to the connection (the
 *   event loop runs after each); N = 0 lets the loop run until a pending
 *   AUTH is decided.
 * Afterwards our end is closed, and the broker must drop the connection.
 *
 * Checked: the broker's output to both peers is whole frames (INFO first,
 * then only ERROR and PUBLISH); the subscriber gets nothing it may not
 * read (with access = graph, alice's messages on "a" only); the long-lived
 * subscriber stays; every connection is gone once its peer closed.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "admin.h"
#include "broker.h"
#include "fuzz_common.h"
#include "ipguard.h"
#include "worker.h"

#define PUB_IDENT  "fz"
#define PUB_SECRET "fzsecret"
#define SUB_IDENT  "sub"
#define SUB_SECRET "subsecret"

/* Bounds on waiting for the broker (microseconds). */
#define AUTH_WAIT_US  (500 * 1000)
#define CLOSE_WAIT_US (7 * G_USEC_PER_SEC) /* beyond conn.c's 5 s flush deadline */

static struct broker *B;
static struct sockaddr_in peer_addr;
static guint64 sub_id;
static struct bufferevent *sub_peer;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz_session: %s: %s\n", what, why ? why : "failed");
    abort();
}

/* ---- the event loop ---- */

static struct conn *conn_by_id(guint64 id) { return g_hash_table_lookup(B->conns, &id); }

static gboolean is_gone(guint64 id) { return conn_by_id(id) == NULL; }

static gboolean auth_decided(guint64 id)
{
    struct conn *c = conn_by_id(id);
    return !c || (c->state != CONN_AWAIT_AUTH && c->state != CONN_AUTHING);
}

static gboolean not_authing(guint64 id)
{
    struct conn *c = conn_by_id(id);
    return !c || c->state != CONN_AUTHING;
}

static gboolean worker_idle(guint64 id) { return worker_pending(B->worker) == 0; }

/* Run the loop until done(id) or the time is up; returns done(id). */
static gboolean loop_until(gboolean (*done)(guint64), guint64 id, gint64 usec)
{
    gint64 end = g_get_monotonic_time() + usec;
    for (;;) {
        event_base_loop(B->base, EVLOOP_NONBLOCK);
        if (done(id))
            return TRUE;
        if (g_get_monotonic_time() >= end)
            return FALSE;
        g_usleep(20);
    }
}

/* ---- a client's side of a connection ---- */

/* A connection as the listener would make it; *peer is our end. */
static struct conn *connect_one(struct bufferevent **peer)
{
    /* on_accept() admits the address before conn_new(); conn_close() releases it. */
    char key[48];
    ipguard_key((struct sockaddr *)&peer_addr, key, sizeof key);
    if (ipguard_admit(B->ipguard, key))
        return NULL;
    struct bufferevent *pair[2];
    /* Deferred callbacks: the broker runs from the loop, as with sockets. */
    if (bufferevent_pair_new(B->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair))
        die("bufferevent_pair_new", NULL);
    struct conn *c = conn_attach(B, pair[0], (struct sockaddr *)&peer_addr, FALSE);
    if (!c) {
        bufferevent_free(pair[1]);
        return NULL;
    }
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    *peer = pair[1];
    return c;
}

static void send_frame(struct bufferevent *peer, const uint8_t *frame, size_t len)
{
    bufferevent_write(peer, frame, len);
}

static void send_auth(struct bufferevent *peer, const char *ident, const char *secret,
                      const uint8_t nonce[WIRE_NONCE_LEN])
{
    /* SHA-1(nonce || secret), computed here with OpenSSL, not with the codec under test. */
    uint8_t in[WIRE_NONCE_LEN + 64], hash[WIRE_HASH_LEN];
    size_t sl = strlen(secret);
    memcpy(in, nonce, WIRE_NONCE_LEN);
    memcpy(in + WIRE_NONCE_LEN, secret, sl);
    unsigned int hl = 0;
    if (!EVP_Digest(in, WIRE_NONCE_LEN + sl, hash, &hl, EVP_sha1(), NULL) || hl != sizeof hash)
        die("SHA-1", NULL);
    uint8_t frame[WIRE_HEADER_LEN + 1 + 255 + WIRE_HASH_LEN];
    size_t n = wire_encode_auth(frame, sizeof frame, ident, strlen(ident), hash);
    send_frame(peer, frame, n);
}

static void send_subscribe(struct bufferevent *peer, const char *ident, const char *chan)
{
    uint8_t frame[WIRE_HEADER_LEN + 1 + 255 + 255];
    size_t n = wire_encode_sub(frame, sizeof frame, WIRE_OP_SUBSCRIBE, ident, strlen(ident), chan,
                               strlen(chan));
    send_frame(peer, frame, n);
}

/*
 * What the broker sent to one peer, frame by frame.  The first frame must
 * be INFO with our nonce (once: *info_seen), and after it ERROR and PUBLISH
 * only; each PUBLISH goes to check_pub(chan) to say if this peer may see it.
 */
struct peer_view {
    const char *who;
    gboolean info_seen;
    const uint8_t *nonce; /* NULL: not known */
    uint8_t nonce_out[WIRE_NONCE_LEN];
    gboolean graph; /* bob's view: graph rules apply */
    gboolean is_bob;
    guint publishes;
};

static gboolean str_is(struct wire_str s, const char *z)
{
    return s.len == strlen(z) && memcmp(s.ptr, z, s.len) == 0;
}

static void read_output(struct bufferevent *peer, struct peer_view *v, gboolean final)
{
    struct evbuffer *in = bufferevent_get_input(peer);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len < WIRE_HEADER_LEN)
            break;
        uint8_t hdr[4];
        evbuffer_copyout(in, hdr, sizeof hdr);
        uint32_t flen = wire_peek_length(hdr);
        if (flen >= WIRE_HEADER_LEN && len < flen)
            break;
        size_t n = flen >= WIRE_HEADER_LEN ? flen : len;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
        struct wire_msg m;
        const char *err = NULL;
        char reason[128];
        int rc = wire_decode(p, n, UINT32_MAX, &m, reason, sizeof reason, &err);
        FUZZ_CHECK(rc == WIRE_FRAME, "%s: broker sent a bad frame: %s", v->who,
                   err ? err : "truncated");
        if (rc != WIRE_FRAME) {
            evbuffer_drain(in, len);
            return;
        }
        if (!v->info_seen) {
            FUZZ_CHECK(m.op == WIRE_OP_INFO, "%s: first frame is %s, not INFO", v->who,
                       wire_op_name(m.op));
            FUZZ_CHECK(m.data.len == WIRE_NONCE_LEN, "%s: INFO nonce of %zu bytes", v->who,
                       m.data.len);
            FUZZ_CHECK(str_is(m.name, B->cfg->name), "%s: INFO names another broker", v->who);
            if (m.data.len == WIRE_NONCE_LEN) {
                memcpy(v->nonce_out, m.data.ptr, WIRE_NONCE_LEN);
                if (v->nonce)
                    FUZZ_CHECK(!memcmp(v->nonce, m.data.ptr, WIRE_NONCE_LEN),
                               "%s: INFO nonce is not the connection's", v->who);
            }
            v->info_seen = TRUE;
        } else {
            FUZZ_CHECK(m.op == WIRE_OP_ERROR || m.op == WIRE_OP_PUBLISH,
                       "%s: broker sent %s after INFO", v->who, wire_op_name(m.op));
        }
        if (m.op == WIRE_OP_PUBLISH) {
            v->publishes++;
            /* Only alice's "fz" can publish, on a or b. */
            FUZZ_CHECK(str_is(m.name, PUB_IDENT), "%s: PUBLISH from ident '%.*s'", v->who,
                       (int)m.name.len, (const char *)m.name.ptr);
            FUZZ_CHECK(str_is(m.channel, "a") || str_is(m.channel, "b"),
                       "%s: PUBLISH on channel '%.*s'", v->who, (int)m.channel.len,
                       (const char *)m.channel.ptr);
            if (v->is_bob && v->graph)
                FUZZ_CHECK(str_is(m.channel, "a"),
                           "%s: bob got alice's message on '%.*s', which she never shared", v->who,
                           (int)m.channel.len, (const char *)m.channel.ptr);
        }
        evbuffer_drain(in, m.frame_len);
    }
    if (final)
        FUZZ_CHECK(evbuffer_get_length(in) == 0, "%s: %zu bytes of a partial frame at the end",
                   v->who, evbuffer_get_length(in));
}

/* ---- set-up ---- */

static void make_db(const char *path)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(path, sqlite3_errmsg(db));
    /* hpfeeds3's table and JSON channel lists, as an existing deployment has them. */
    const char *sql =
        "CREATE TABLE authkeys (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT, ident TEXT,"
        " secret TEXT, pubchans TEXT, subchans TEXT);"
        "INSERT INTO authkeys (owner, ident, secret, pubchans, subchans) VALUES"
        " ('alice', '" PUB_IDENT "', '" PUB_SECRET "', '[\"a\", \"b\"]', '[\"a\", \"b\"]'),"
        " ('bob', '" SUB_IDENT "', '" SUB_SECRET "', '[]', '[\"a\", \"b\"]');";
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        die(path, err);
    sqlite3_close(db);
}

/* alice shares "a" with bob, through the admin API hpfriendsctl uses. */
static void add_share(const char *dir, const char *path)
{
    GHashTable *keys = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(keys, "path", (gpointer)path);
    GError *e = NULL;
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), "sqlite",
                                                     HPF_KIND_STORAGE, "storage", keys, dir, &e);
    if (!pi || !plugin_instance_start(pi, &e))
        die("storage_sqlite", e ? e->message : NULL);
    struct admin a = {.storage = pi};
    /* storage_sqlite wants user rows for share ends (authkey owners alone are not enough). */
    if (!admin_user_add(&a, "alice", FALSE, &e) || !admin_user_add(&a, "bob", FALSE, &e) ||
        !admin_share_add(&a, "alice", "bob", "a", HPF_SHARE_SHARES, &e))
        die("users and share", e->message);
    plugin_instance_free(pi);
    g_hash_table_unref(keys);
}

/* bob's subscriber: connected, authenticated, subscribed to a and b. */
static void start_subscriber(void)
{
    struct conn *c = connect_one(&sub_peer);
    if (!c)
        die("subscriber", "cannot connect");
    sub_id = c->id;
    struct peer_view v = {.who = "subscriber (start)", .nonce = c->nonce};
    event_base_loop(B->base, EVLOOP_NONBLOCK);
    read_output(sub_peer, &v, FALSE);
    if (!v.info_seen)
        die("subscriber", "no INFO");
    send_auth(sub_peer, SUB_IDENT, SUB_SECRET, v.nonce_out);
    if (!loop_until(auth_decided, sub_id, 10 * G_USEC_PER_SEC) || is_gone(sub_id) ||
        conn_by_id(sub_id)->state != CONN_READY)
        die("subscriber", "AUTH was not accepted");
    send_subscribe(sub_peer, SUB_IDENT, "a");
    send_subscribe(sub_peer, SUB_IDENT, "b");
    loop_until(worker_idle, 0, G_USEC_PER_SEC);
    event_base_loop(B->base, EVLOOP_NONBLOCK);
    c = conn_by_id(sub_id);
    if (!c || c->state != CONN_READY || g_hash_table_size(c->subscribed) != 2)
        die("subscriber", "SUBSCRIBE failed");
    read_output(sub_peer, &v, FALSE);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_setup();
    char *dir = fuzz_tmpdir("session");
    char *db = g_build_filename(dir, "session.db", NULL);
    make_db(db);
    add_share(dir, db);

    char *conf = g_build_filename(dir, "hpfriendsd.conf", NULL);
    char *text = g_strdup("[broker]\n"
                          "name = fuzz-broker\n"
                          "listen = tcp:127.0.0.1:0\n"
                          "access = graph\n"
                          "max_connections_per_ip = 0\n"
                          "auth_failures_before_backoff = 0\n"
                          "[storage]\n"
                          "plugin = sqlite\n"
                          "path = session.db\n");
    fuzz_write_file(conf, (const uint8_t *)text, strlen(text));
    GError *e = NULL;
    struct config *cfg = config_load_file(conf, &e);
    if (!cfg)
        die(conf, e->message);
    config_finish(cfg);

    evthread_use_pthreads();
    B = broker_new(cfg, &e);
    if (!B || !broker_start(B, NULL, &e))
        die("broker", e ? e->message : NULL);
    /* libFuzzer keeps SIGINT/SIGTERM; a broker shutting down mid-run helps nobody. */
    evsignal_del(B->sig_term);
    evsignal_del(B->sig_int);
    evsignal_del(B->sig_hup);

    peer_addr.sin_family = AF_INET;
    peer_addr.sin_port = htons(40000);
    peer_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    start_subscriber();

    g_free(text);
    g_free(conf);
    g_free(db);
    g_free(dir);
    return 0;
}

/* ---- one input ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    B->cfg->on_denied = (flags & 2) ? ON_DENIED_CONTINUE : ON_DENIED_CLOSE;
    B->cfg->error_style = (flags & 4) ? ERROR_STYLE_LEGACY : ERROR_STYLE_HPFEEDS;
    B->cfg->access = (flags & 8) ? ACCESS_CHANNELS : ACCESS_GRAPH;

    /* The long-lived subscriber must still be there; if not, say so and bring it back. */
    struct conn *sc = conn_by_id(sub_id);
    FUZZ_CHECK(sc && sc->state == CONN_READY, "the long-lived subscriber was dropped");
    if (!sc || sc->state != CONN_READY) {
        if (sc)
            conn_close(sc, "fuzz: replaced");
        bufferevent_free(sub_peer);
        start_subscriber();
    }

    struct bufferevent *peer = NULL;
    struct conn *c = connect_one(&peer);
    if (!c)
        return 0;
    guint64 id = c->id;
    struct peer_view v = {.who = "client", .nonce = c->nonce};
    struct peer_view bob = {.who = "subscriber",
                            .info_seen = TRUE,
                            .is_bob = TRUE,
                            .graph = B->cfg->access == ACCESS_GRAPH};
    event_base_loop(B->base, EVLOOP_NONBLOCK);
    read_output(peer, &v, FALSE);
    FUZZ_CHECK(v.info_seen, "no INFO on connect");

    if ((flags & 1) && v.info_seen) {
        send_auth(peer, PUB_IDENT, PUB_SECRET, v.nonce_out);
        loop_until(auth_decided, id, AUTH_WAIT_US);
        struct conn *now = conn_by_id(id);
        FUZZ_CHECK(now && (now->state == CONN_READY || now->state == CONN_AUTHING),
                   "a valid AUTH was refused");
    }

    size_t i = 1;
    while (i < size && !is_gone(id)) {
        size_t n = data[i++];
        if (n == 0) {
            loop_until(not_authing, id, AUTH_WAIT_US);
            continue;
        }
        if (n > size - i)
            n = size - i;
        bufferevent_write(peer, data + i, n);
        i += n;
        event_base_loop(B->base, EVLOOP_NONBLOCK);
        /* AUTH is decided on the worker thread: give it its moment. */
        loop_until(not_authing, id, AUTH_WAIT_US);
        read_output(peer, &v, FALSE);
        read_output(sub_peer, &bob, FALSE);
    }
    event_base_loop(B->base, EVLOOP_NONBLOCK);
    read_output(peer, &v, FALSE);

    /* Hang up; the broker must notice and let the connection go. */
    bufferevent_flush(peer, EV_WRITE, BEV_FINISHED);
    bufferevent_free(peer);
    FUZZ_CHECK(loop_until(is_gone, id, CLOSE_WAIT_US),
               "connection %" G_GUINT64_FORMAT " outlived its peer", id);
    /* Nothing of this input may be left running into the next one. */
    FUZZ_CHECK(loop_until(worker_idle, 0, CLOSE_WAIT_US), "worker jobs left over");
    event_base_loop(B->base, EVLOOP_NONBLOCK);
    read_output(sub_peer, &bob, TRUE);
    FUZZ_CHECK(g_hash_table_size(B->conns) == 1, "%u connections left, expected the subscriber",
               g_hash_table_size(B->conns));
    return 0;
}
