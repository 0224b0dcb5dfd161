/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live-broker test harness: starts hpfriendsd on 127.0.0.1 with a random
 * port, and speaks hpfeeds to it as raw bytes over real TCP.
 *
 * The frame encoder here is written independently of core/wire.c so the
 * daemon's codec is checked against a second implementation, not itself.
 *
 * Every wait is bounded.  Helpers return false (or a negative status) and
 * print why on stderr; tests wrap them in CU_ASSERT so the failing line is
 * shown by CUnit and the detail is in the log.  h_setup/h_teardown are the
 * per-test fixture: teardown kills every daemon and closes every socket the
 * test opened, also when a fatal assertion cut the test short.
 */
#ifndef HPF_IT_HARNESS_H
#define HPF_IT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <CUnit/Basic.h>
#include <glib.h>

#define H_OP_ERROR       0
#define H_OP_INFO        1
#define H_OP_AUTH        2
#define H_OP_PUBLISH     3
#define H_OP_SUBSCRIBE   4
#define H_OP_UNSUBSCRIBE 5

/* Default bound for a single expected event. */
#define H_WAIT_MS 5000

/* Channels every authkey made by h_broker_add_key may use on both sides; the
 * barrier helper needs them.  Frames on them are skipped by h_read_frame. */
#define H_SYNC_PREFIX   "hpf.sync."
#define H_SYNC_CHANNELS 32

#define H_MAX_LISTENERS 8

struct h_broker {
    char *dir;     /* temp dir, removed at teardown */
    char *db_path; /* hpfeeds3-style sqlite auth db */
    char *conf_path;
    char *ready_path;
    char *log_path; /* daemon stdout + stderr */
    pid_t pid;      /* 0 when not running */
    int port;       /* first tcp listener */
    struct h_listener {
        char kind[8];  /* "tcp" or "tls" */
        char host[64]; /* as the daemon printed it: 127.0.0.1, ::1 */
        int port;
    } listeners[H_MAX_LISTENERS];
    int n_listeners;
    int exit_status; /* raw wait status after h_broker_stop */
    unsigned sync_next;
    bool log_dumped; /* shown once already: do not repeat at teardown */
};

/* One frame as received: raw holds the whole frame, header included. */
struct h_frame {
    uint8_t op;
    uint8_t *raw;
    size_t len;
};

enum h_read {
    H_FRAME = 1,
    H_EOF = 0, /* orderly close between frames */
    H_TIMEOUT = -1,
    H_RESET = -2, /* ECONNRESET or another socket error */
    H_TRUNC = -3, /* close in the middle of a frame */
};

/* ---- fixture ---- */
void h_setup(void);
void h_teardown(void);
/* Ignore SIGPIPE, install a last-resort alarm; call first in main. */
void h_init(unsigned alarm_seconds);
/* Run every registered suite; returns main's exit status. */
int h_run(void);

/* ---- daemon ---- */
struct h_broker *h_broker_new(void);
/* pub_csv/sub_csv: comma-separated channel lists ("" for none). */
bool h_broker_add_key(struct h_broker *b, const char *ident, const char *secret,
                      const char *pub_csv, const char *sub_csv);
/* Writes the config ([broker] name=testbroker, random port, access=channels,
 * sqlite storage) plus broker_extra lines ("key = value\n..." or NULL) into
 * [broker], starts the daemon and waits for its ready file. */
bool h_broker_start(struct h_broker *b, const char *broker_extra);
/* Starts the daemon with the given arguments (NULL-terminated) instead of a
 * config; --ready-file and -f are added by the harness. */
bool h_broker_start_argv(struct h_broker *b, const char *const *args);
/* Writes the config file only (as h_broker_start would). */
bool h_broker_write_config(struct h_broker *b, const char *broker_extra);
/* Runs the daemon with exactly these arguments and waits up to timeout_ms
 * for it to exit.  Returns its exit status, or -1 when it was killed by a
 * signal or had to be killed.  *output (if not NULL) gets stdout+stderr. */
int h_broker_run_sync(struct h_broker *b, const char *const *args, int timeout_ms, char **output);
/* Waits until the ready file lists n listeners. */
bool h_broker_wait_listeners(struct h_broker *b, int n);
bool h_broker_alive(struct h_broker *b);
/* SIGTERM, wait up to timeout_ms; true when it exited with status 0. */
bool h_broker_stop(struct h_broker *b, int timeout_ms);
/* Waits (no signal) up to timeout_ms for the daemon to exit by itself, then
 * as h_broker_stop: true when it exited with status 0. */
bool h_broker_wait_exit(struct h_broker *b, int timeout_ms);
/* Resident set size in KiB from /proc/PID/status, -1 on error. */
long h_broker_rss_kb(struct h_broker *b);
/* Descriptors the daemon holds open (/proc/PID/fd), -1 on error. */
int h_broker_fds(struct h_broker *b);
/* Waits up to timeout_ms until the daemon holds at most want descriptors
 * (a closed connection is released asynchronously); the last count. */
int h_broker_wait_fds(struct h_broker *b, int want, int timeout_ms);
/* Dump the daemon log to stderr (done automatically when a start fails). */
void h_broker_dump_log(struct h_broker *b);

/* ---- sockets ---- */
/* All connect to 127.0.0.1 except h_connect_host (numeric IPv4 or IPv6). */
int h_connect(int port);
int h_connect_host(const char *host, int port);
/* rcvbuf > 0: SO_RCVBUF set before connect (a small window). */
int h_connect_opt(int port, int rcvbuf);
void h_close(int fd);
bool h_send(int fd, const void *buf, size_t len);
/* Each byte in its own send with delay_us between, TCP_NODELAY on. */
bool h_send_trickle(int fd, const void *buf, size_t len, unsigned delay_us);

/* ---- encoders (append to out) ---- */
void h_enc_frame(GByteArray *out, uint8_t op, const void *payload, size_t len);
void h_enc_auth(GByteArray *out, const char *ident, const uint8_t hash[20]);
void h_enc_publish(GByteArray *out, const char *ident, const char *chan, const void *payload,
                   size_t len);
void h_enc_subscribe(GByteArray *out, const char *ident, const char *chan);
void h_enc_unsubscribe(GByteArray *out, const char *ident, const char *chan);
void h_auth_hash(const uint8_t nonce[4], const char *secret, uint8_t out[20]);

/* ---- reading ---- */
/* Reads one frame, skipping PUBLISH frames on H_SYNC_PREFIX channels. */
int h_read_frame(int fd, int timeout_ms, struct h_frame *f);
/* Same without skipping anything. */
int h_read_frame_raw(int fd, int timeout_ms, struct h_frame *f);
void h_frame_clear(struct h_frame *f);
const char *h_read_str(int r);
/* Splits a PUBLISH frame; pointers into f->raw.  False when malformed. */
bool h_parse_publish(const struct h_frame *f, const uint8_t **ident, size_t *ident_len,
                     const uint8_t **chan, size_t *chan_len, const uint8_t **payload,
                     size_t *payload_len);

/* Reads INFO.  one_read: also require the whole frame to be available in
 * the first recv().  name_out (256 bytes) and nonce_out may be NULL. */
bool h_read_info(int fd, bool one_read, char *name_out, uint8_t nonce_out[4]);
/* Sends AUTH answering the INFO that carried nonce. */
bool h_send_auth(int fd, const uint8_t nonce[4], const char *ident, const char *secret);
/* Reads INFO and sends AUTH; the broker's answer to a good AUTH is silence.
 * False also for fd < 0, so it may take h_connect's result unchecked. */
bool h_auth(int fd, const char *ident, const char *secret);
/* h_connect + h_auth; returns fd or -1. */
int h_client(int port, const char *ident, const char *secret);

bool h_sub(int fd, const char *ident, const char *chan);
bool h_unsub(int fd, const char *ident, const char *chan);
bool h_pub(int fd, const char *ident, const char *chan, const void *payload, size_t len);
bool h_pub_str(int fd, const char *ident, const char *chan, const char *payload);

/* Next frame is ERROR with exactly this text. */
bool h_expect_error(int fd, const char *text);
/* Next frame is ERROR whose text starts with prefix. */
bool h_expect_error_prefix(int fd, const char *prefix);
/* Connection reaches EOF (or reset) within timeout_ms with no frame first. */
bool h_expect_eof(int fd, int timeout_ms);
/* No frame and no close for ms milliseconds. */
bool h_expect_silence(int fd, int ms);
/* Next frame is PUBLISH ident/chan/payload. */
bool h_expect_pub(int fd, const char *ident, const char *chan, const void *payload, size_t len);
bool h_expect_pub_str(int fd, const char *ident, const char *chan, const char *payload);
/* Next frame equals these bytes exactly. */
bool h_expect_raw(int fd, const void *raw, size_t len);

/* Barrier: makes sure the broker has processed everything sub_fd sent so
 * far.  sub_fd subscribes to a fresh sync channel and pub_fd publishes on it
 * until sub_fd sees the message.  Works for several subscribers at once. */
bool h_barrier(struct h_broker *b, const int *sub_fds, const char *const *sub_idents, size_t n,
               int pub_fd, const char *pub_ident);
bool h_barrier1(struct h_broker *b, int sub_fd, const char *sub_ident, int pub_fd,
                const char *pub_ident);

/* ---- conveniences for the numbered tests ---- */
/* A broker with the standard authkeys (secret = "<ident>-secret"):
 *   pub1   publishes chan.a chan.b chan.bin
 *   pub2   publishes chan.a
 *   sub1, sub2, sub3  subscribe chan.a chan.b chan.bin
 *   self   publishes and subscribes chan.self chan.a
 *   sync   only the sync channels: the usual barrier publisher
 * started with broker_extra in [broker]; NULL when anything failed. */
struct h_broker *h_std_broker(const char *broker_extra);
/* h_client with the standard secret. */
int h_std_client(struct h_broker *b, const char *ident);

/* ---- fixtures that assert ----
 * Unlike the helpers above, these make their CUnit assertions themselves,
 * fatal ones, the same ones every test used to write out: a failure names
 * the test, the condition and a line of harness.c; the detail is in the
 * log.  b is what h_std_broker returned (NULL fails the test). */

/* *sub, *pub, *sync: sessions of sub1, pub1 and sync. */
void h_std_trio(struct h_broker *b, int *sub, int *pub, int *sync);
/* h_std_trio, then sub1 subscribes to chan, with a barrier so that the
 * subscription is in force before anything is published. */
void h_std_pubsub(struct h_broker *b, const char *chan, int *sub, int *pub, int *sync);
/* The same with two subscribers: sub1 on chan1 and sub2 on chan2 (one
 * barrier for both), pub1 and sync. */
void h_std_pubsub2(struct h_broker *b, const char *chan1, const char *chan2, int *sub1, int *sub2,
                   int *pub, int *sync);
/* One more session of ident subscribed to chan, past a barrier published by
 * the sync session. */
int h_std_subscriber(struct h_broker *b, const char *ident, const char *chan, int sync);

struct h_test {
    const char *name;
    void (*fn)(void);
};
/* Registers a suite using the h_setup/h_teardown fixture. */
bool h_add_suite(const char *name, const struct h_test *tests);

/* The daemon is still alive and stops cleanly on SIGTERM. */
#define H_FINISH(b)                          \
    do {                                     \
        CU_ASSERT(h_broker_alive(b));        \
        CU_ASSERT(h_broker_stop((b), 5000)); \
    } while (0)

/* Milliseconds from a monotonic clock. */
int64_t h_now_ms(void);
void h_sleep_ms(int ms);

#endif
