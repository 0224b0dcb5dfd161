/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The broker: listeners, connections, and the state they share.
 * Everything here runs on the event loop thread unless said otherwise.
 */
#ifndef HPF_BROKER_H
#define HPF_BROKER_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <glib.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "config.h"
#include "loader.h"
#include "wire.h"

struct counters;
struct ipguard;
struct metrics;
struct output;
struct pub_stat;
struct reload;
struct router;
struct sinks;
struct cluster;
struct worker;
struct graph;
struct web;

enum conn_state {
    CONN_AWAIT_AUTH, /* INFO sent; the first frame must be AUTH */
    CONN_AUTHING,    /* AUTH handed to the worker; reading paused */
    CONN_READY,
    CONN_CLOSING, /* flushing a last ERROR, then gone */
};

/*
 * Frames read from one publisher in one go, copied once.  Subscriber queues
 * reference runs of adjacent frames in it, so a 16 KiB read fanned out to
 * 50 subscribers costs 50 evbuffer chains, not 50 per frame.
 */
struct frame_block {
    gint refs;
    size_t len;
    uint8_t data[];
};

struct conn {
    struct broker *b;
    guint64 id;
    struct bufferevent *bev; /* NULL while parked */
    /* Plain sockets: the socket is ours, not the bufferevent's (it comes and
     * goes: an idle session is parked, watched by park_ev alone). */
    evutil_socket_t fd;
    gboolean own_fd, parked;
    gboolean busy;      /* read or queued since the last idle sweep */
    guint wakes;        /* unparked since the last quiet idle sweep */
    gint64 direct_turn; /* loop turn of the last write made while parked */
    struct event park_ev;
    char peer[64];
    char addr[48]; /* peer address without port: the ipguard key */
    gboolean tls;
    enum conn_state state;
    char *close_why; /* why the broker closes it (conn_fail), for the disconnect event */
    uint8_t nonce[WIRE_NONCE_LEN];

    /* Set once authenticated. */
    char *ident;
    char *owner;
    GHashTable *may_publish;   /* channel set */
    GHashTable *may_subscribe; /* channel set */
    GHashTable *subscribed;    /* channel set: what the router holds us under */

    struct event *timer;       /* auth timeout, then close-flush deadline */
    guint32 uid;               /* owner's id in the current graph */
    gboolean key_from_storage; /* granted from storage: re-checked on reload */
    /* The AUTH's proof, SHA-1(nonce || secret): a reload that finds another
     * secret for the key ends the session (reload.c). */
    uint8_t auth_hash[WIRE_HASH_LEN];

    /* Slow consumer: when the output queue first went over the bound. */
    gint64 over_since_us;
    guint64 dropped;

    guint64 sent_fill; /* bytes ever queued to this connection's output */

    /* Deliveries counted but not queued yet: a run of adjacent frames of one
     * block, queued when the publisher's input is done (handle_publish.c). */
    struct frame_block *run_block;
    size_t run_off, run_len;
    guint run_msgs;
    gboolean run_listed; /* in output.c's list of runs */
    /* Plain sockets: output is written by output.c at the end of the loop
     * turn (in its pending list); the bufferevent writes only a backlog the
     * socket did not take then (EV_WRITE enabled while there is one). */
    gboolean direct_out;
    gboolean out_listed; /* in output.c's pending list */
    /* Backlog (output.c): queue over the mark, in its backlogged list; exempt once
     * it stalls or stays behind too long (a slow consumer: drops, not backpressure). */
    gboolean backlogged, backlog_exempt;
    gint64 backlog_since_us, backlog_moved_us; /* over the mark since; last progress */
    size_t backlog_left;                       /* queue at the last progress */
    gboolean input_paused;     /* in output.c's paused queue: reading stopped for a backlog */
    gboolean read_listed;      /* read since a backlog last formed: in output.c's readers */
    GList turn_link;           /* its link in one of those two (data: this connection) */
    struct pub_stat *pub_stat; /* metrics of the channel last published on */
    char *pub_stat_chan;
    struct flow_series *flow_pub; /* flow series of that channel, valid while its gen */
    guint flow_pub_gen;           /* is still flow_pub_gen (flow.c recycles series) */

    /* Traffic not yet added to the per-authkey counters. */
    guint64 pub_msgs, pub_bytes, recv_msgs, recv_bytes;

    /* Input budget (conn.c): bytes of an incomplete frame in the input, since
     * when that frame is incomplete, and whether reading stopped for it. */
    size_t partial;
    gint64 partial_since_us; /* frame_timeout runs from here */
    gint64 partial_born_us;  /* the frame's first byte */
    gboolean input_held;
};

struct budget;

struct broker_stats {
    guint64 connections_made;
    guint64 connections_ready;
    guint64 connections_lost;
    guint64 auth_failures;
    guint64 publishes;
    guint64 publish_bytes;
    guint64 deliveries;
    guint64 drops;
    guint64 slow_disconnects;
    guint64 graph_reloads;
    guint64 graph_reload_failures;
    double graph_build_ms; /* last one */
};

struct broker {
    struct config *cfg;
    struct event_base *base;
    GPtrArray *listeners;  /* struct listener * */
    SSL_CTX *tls;          /* for tls: listeners; replaced on SIGHUP */
    GHashTable *conns;     /* guint64 id -> struct conn * */
    struct output *out;    /* output.c: runs, per-turn writes, backpressure */
    struct budget *budget; /* conn.c: bytes held in incomplete frames (made on first use) */
    guint64 next_conn_id;
    struct router *router;
    struct worker *worker;
    struct plugin_instance *storage;
    GPtrArray *auth_chain; /* struct plugin_instance * */
    struct sinks *sinks;
    struct cluster *cluster; /* [cluster]: NULL on a single node */
    struct metrics *metrics;
    struct ipguard *ipguard;
    int exporter_port;
    struct web *web; /* the admin console, when [web] is configured */
    struct event *sig_term, *sig_int, *sig_hup, *tick;
    struct broker_stats stats;

    /* The graph in force, read by every publish; reload.c replaces it. */
    struct graph *graph;
    struct reload *reload;     /* reload.c: data version, poll timer, jobs */
    struct counters *counters; /* counters.c: traffic not yet saved to storage */
    struct flow *flow;         /* flow.c: recent traffic per authkey, for the console */
    gboolean stopping;
    gint64 stop_deadline_us;
};

/* broker.c */
/** Malloc thresholds for the fanout's short-lived buffers; call once, early. */
void broker_tune_malloc(void);
struct broker *broker_new(struct config *cfg, GError **error);
/** Load and start the plugins, bind the listeners. */
gboolean broker_start(struct broker *b, const char *ready_file, GError **error);
/** Load the configured plugins; with start, also start them (main.c loads
 * them without starting for --test). */
gboolean broker_load_plugins(struct broker *b, gboolean start, GError **error);
/** Run until SIGTERM/SIGINT and the drain that follows: 0 then, 1 when the
 * event loop itself failed. */
int broker_run(struct broker *b);
void broker_free(struct broker *b);
/** Wall-clock seconds (flow health's clock); cheap enough to call per message. */
gint64 broker_now_s(struct broker *b);
/**
 * c, a subscriber over its queue bound, is being closed for it (the
 * slow_deadline sweep, or the kernel's TCP_USER_TIMEOUT after as long):
 * log it, count it, and make the disconnect event say so.  how: "queued
 * for over", "queued, the kernel timing the connection out
 * (TCP_USER_TIMEOUT) after" (it does so for a peer that takes nothing, or
 * almost nothing).  The caller closes c.
 */
void broker_slow_close(struct broker *b, struct conn *c, const char *how);
/**
 * The first hpfeeds listener's bound address (host as configured: "" or
 * "*" for any, or the address it resolved to) and port; FALSE when none.
 */
gboolean broker_listen_endpoint(struct broker *b, char **host, int *port, gboolean *tls);

/* reload.c */
/** Set up / free reload.c's state (free after the worker is gone). */
struct reload *reload_new(void);
void reload_free(struct reload *r);
/** Read storage and build the graph synchronously (start-up). */
gboolean reload_initial(struct broker *b, GError **error);
/** Start polling the data version every reload_interval. */
void reload_start(struct broker *b);
/** Reload now, even if the version did not change (SIGHUP). */
void reload_request(struct broker *b);
/** The same for SIGHUP: once done, READY=1 to the service manager (service.c). */
void reload_request_notify(struct broker *b);
void reload_stop(struct broker *b);
/** The storage data version in force, and whether any data was read yet. */
guint64 reload_data_version(const struct broker *b);
gboolean reload_have_data(const struct broker *b);

/* conn.c */
/** A connection on fd; with tls, a TLS server session on b->tls. */
struct conn *conn_new(struct broker *b, evutil_socket_t fd, const struct sockaddr *sa,
                      gboolean tls);
/**
 * A connection over an existing bufferevent (which it then owns); the
 * address is the peer's, already admitted by the ipguard.  conn_new() uses
 * it, and so do the fuzzers, over bufferevent pairs.
 */
struct conn *conn_attach(struct broker *b, struct bufferevent *bev, const struct sockaddr *sa,
                         gboolean tls);
/** Send ERROR text, then close once it is flushed (bounded wait). */
void conn_fail(struct conn *c, const char *category, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/** Send ERROR text and keep the connection. */
void conn_send_error(struct conn *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/** Close now; frees c. */
void conn_close(struct conn *c, const char *reason);
/** Process whatever complete frames are buffered. */
void conn_process_input(struct conn *c);
/** Bytes waiting in the output queue. */
size_t conn_queued(const struct conn *c);
/** c's output queue went empty (output.c tells): a closing connection lingers
 *  (a TLS one is freed at once: c may be gone after this), any other may park. */
void conn_output_drained(struct conn *c);
/**
 * c's output queue, for adding to it: a parked connection gets its
 * bufferevent back first.  NULL when that failed (out of memory).
 */
struct evbuffer *conn_output(struct conn *c);
/** A parked connection takes len bytes straight to its socket, once a loop
 * turn: returns how many it took (0 when not parked). */
size_t conn_write_parked(struct conn *c, const void *data, size_t len);
/** Give an idle plain session's bufferevent back (when nothing is buffered,
 * queued or held; before AUTH too); TRUE when it is parked now. */
gboolean conn_park(struct conn *c);
/** c may have gone idle (input handled, output written): park it now unless
 * it woke up often lately (then the idle sweep parks it once it is quiet). */
void conn_idle(struct conn *c);
/** Stop reading from c (the broker is stopping). */
void conn_stop_reading(struct conn *c);
/** Read from c again (its AUTH was accepted). */
void conn_resume_reading(struct conn *c);
/** Free the input budget's state (after every connection is closed). */
void conn_budget_free(struct broker *b);
/** Bytes held in incomplete frames, and sessions not read for the input budget. */
void conn_budget_stats(const struct broker *b, guint64 *bytes, guint *held);
/** Sessions held for the input budget are looked at again (backpressure ended). */
void conn_budget_kick(struct broker *b);

/* Live connections, summed per ident, for the exporter and the console. */
struct conn_ident_totals {
    guint connections;
    guint64 send_size; /* bytes queued for output */
    guint64 recv_size; /* bytes read, not parsed yet */
    guint64 fill;      /* bytes ever queued to the output */
    guint64 drain;     /* of those, bytes sent */
    /* Traffic not yet moved into the per-authkey counters (counters.c). */
    guint64 pub_msgs, pub_bytes, recv_msgs, recv_bytes;
};
/** Authenticated connections: ident (owned) -> struct conn_ident_totals (owned). */
GHashTable *conn_totals_by_ident(struct broker *b);
/** Their subscriptions: "ident\nchannel" (owned) -> count (GSIZE_TO_POINTER). */
GHashTable *conn_subscription_counts(struct broker *b);

/* output.c: what conn.c and handle_publish.c queue, written at the end of a turn. */
struct output *output_new(struct broker *b);
void output_free(struct output *o);
/** A new connection: write watermark, and who writes its output. */
void output_attach(struct conn *c);
/** Something was added to c's output: have it written at the end of this loop turn. */
void conn_output_kick(struct conn *c);
/** The bufferevent wrote some of c's output; TRUE when the queue is empty. */
gboolean output_written(struct conn *c);
/** TRUE when c's input must wait for a subscriber's backlog (reading stopped). */
gboolean output_hold_input(struct conn *c);
/** c's turn after a backlog (output.c): what it had read is handled, and a
 * plain socket is read now, in the queue's order, not epoll's. */
void conn_read_turn(struct conn *c);
/** TRUE while sessions wait for their turn to be read again. */
gboolean output_waiting(const struct broker *b);
/** c has read and handled its input: when a backlog forms, it pauses too. */
void output_read_done(struct conn *c);
/** c has a publish run to queue at the end of the input (output_runs_flush). */
void output_run_listed(struct conn *c);
void output_runs_flush(struct broker *b);
/** c is closing: off every list. */
void output_forget(struct conn *c);

enum deny_kind { DENY_AUTH, DENY_IDENT, DENY_PUB, DENY_SUB };

/* handle_*.c: one per verb; return FALSE when the connection is gone or closing. */
gboolean handle_auth(struct conn *c, const struct wire_msg *m);
/* m points into blk at offset off. */
gboolean handle_publish(struct conn *c, const struct wire_msg *m, struct frame_block *blk,
                        size_t off);
void frame_block_unref(struct frame_block *blk);
/**
 * Deliver the PUBLISH frame at off in blk (frame_len bytes, payload_len of
 * them payload) to chan's subscribers that may read what owner publishes.
 */
void handle_publish_fanout(struct broker *b, const char *owner, const char *chan,
                           struct frame_block *blk, size_t off, size_t frame_len,
                           size_t payload_len);
/** Queue every pending run; called once a publisher's input is processed. */
void handle_publish_flush(struct broker *b);
/** Queue c's pending run now, or with discard release it unqueued. */
void handle_publish_flush_one(struct conn *c, gboolean discard);
gboolean handle_subscribe(struct conn *c, const struct wire_msg *m);
gboolean handle_unsubscribe(struct conn *c, const struct wire_msg *m);

/** A session's channel permission set from a list: shared by every session
 * with the same list (a reference; g_hash_table_unref when done, never
 * changed). */
GHashTable *conn_channel_set(GPtrArray *list);

/* Helpers the handlers share (handle_publish.c). */
/** FALSE (and the connection failed) when the frame's ident is not ours. */
gboolean handle_check_ident(struct conn *c, const struct wire_msg *m);
/** The frame's channel into buf as a C string; FALSE (and the connection
 * failed) for a name over 255 bytes or with a NUL byte. */
gboolean handle_channel(struct conn *c, const struct wire_msg *m, char buf[WIRE_MAX_NAME + 1]);
/** A denied pub/sub: ERROR, then close or go on per on_denied; returns go-on. */
gboolean handle_denied(struct conn *c, enum deny_kind kind, const char *chan);

/** Error texts in the configured style. */
char *broker_deny_text(const struct broker *b, enum deny_kind kind, const char *ident,
                       const char *chan);

#endif
