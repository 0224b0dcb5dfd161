/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Accepting under pressure: listeners that back off when descriptors run
 * out, a reserve descriptor to refuse politely meanwhile, and a gate that
 * counts HTTP connections from the moment they are accepted.
 */
#ifndef HPF_ACCEPT_H
#define HPF_ACCEPT_H

#include <glib.h>

#include <event2/http.h>
#include <event2/listener.h>

/* How long a listener rests after accept() failed (EMFILE and the like). */
#define ACCEPT_BACKOFF_MS   100
/* Connections refused with the reserve descriptor per failed accept(). */
#define ACCEPT_REFUSE_BATCH 32

/**
 * Watch l's accept errors: on any, the listener pauses ACCEPT_BACKOFF_MS
 * (instead of the loop retrying accept() at full speed); when descriptors
 * ran out, the connections waiting are accepted with the reserve
 * descriptor, sent refusal (may be NULL: just closed) and closed.  who
 * names the listener in the log.  Detach before l is freed.
 */
void accept_guard_attach(struct evconnlistener *l, const char *who, const void *refusal,
                         size_t refusal_len);
void accept_guard_detach(struct evconnlistener *l);

/* An HTTP server's connections, counted from accept. */
struct http_gate;
struct http_gate_ops {
    /* Optional: makes each connection's bufferevent (TLS); else a socket one. */
    struct bufferevent *(*make_bev)(struct event_base *base, void *arg);
    /* Optional: may the connection from peer stay?  NULL yes, else why not. */
    const char *(*admit)(void *arg, struct evhttp_connection *evcon, const char *peer);
    /* Optional: an admitted connection closed. */
    void (*closed)(void *arg, struct evhttp_connection *evcon);
};

/**
 * Gate every connection of http (bound on bs): at most max_conns at once,
 * counted as soon as they are accepted (refused with a 503 over plain HTTP,
 * the socket kept up to 2 s while the client finishes sending, so that the
 * reply is read rather than reset; closed over TLS); a connection whose
 * first request is not complete first_request_s seconds after accept, or
 * whose next request is not complete first_request_s seconds after the
 * last reply, is closed.
 * Installs http's bevcb.
 * Free it right after evhttp_free(http).
 */
struct http_gate *http_gate_new(struct evhttp *http, struct evhttp_bound_socket *bs,
                                const char *who, guint max_conns, guint first_request_s,
                                const struct http_gate_ops *ops, void *arg);
/** A complete request arrived: no deadline while it is answered; the next
 * request has first_request_s from the reply on. */
void http_gate_request(struct http_gate *g, struct evhttp_request *req);
/**
 * The name of a header that req carries twice although its meaning allows
 * one (Host, Origin, Cookie, Content-Length, X-CSRF-Token, ...; a reader
 * would take the first, a proxy in front perhaps the last), or a phrase
 * for Content-Length beside Transfer-Encoding; NULL when there is none.
 * Such a request is answered 400.
 */
const char *http_repeated_header(struct evhttp_request *req);
/** Connections open now. */
guint http_gate_count(const struct http_gate *g);
void http_gate_free(struct http_gate *g);

#endif
