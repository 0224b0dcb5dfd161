/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-address limits: how many connections one address may hold, and a
 * back-off for addresses that keep failing AUTH (after `threshold`
 * failures within a minute, new connections from there are refused for
 * `backoff` seconds, doubling while it goes on, up to 15 minutes).
 */
#ifndef HPF_IPGUARD_H
#define HPF_IPGUARD_H

#include <glib.h>
#include <sys/socket.h>

struct ipguard;

struct ipguard *ipguard_new(guint max_per_ip, guint threshold, guint backoff_seconds);
void ipguard_free(struct ipguard *g);

/** The address part of a socket address, as a key ("192.0.2.1", "2001:db8::1"). */
void ipguard_key(const struct sockaddr *sa, char *out, gsize len);

/**
 * May a new connection from key be accepted?  NULL when yes (and it is
 * counted), else the reason to send in an ERROR.
 */
const char *ipguard_admit(struct ipguard *g, const char *key);
/** A connection from key ended. */
void ipguard_release(struct ipguard *g, const char *key);
/**
 * May one more password check for key start?  Refused while key is backed
 * off (`threshold` failures, counted only when checks end with
 * ipguard_auth_failed), or while `max_per_ip` of its checks are in
 * progress: concurrency is bounded on its own, so correct checks running
 * side by side never count as failures.  NULL when yes (and it is counted
 * until ipguard_release), else a lower-case phrase saying which limit
 * ("too many wrong passwords", "too many password checks at once").
 */
const char *ipguard_login_begin(struct ipguard *g, const char *key);
/**
 * How long key stays backed off: whole seconds, rounded up, so a refusal
 * can say when to try again; 0 when it is not.
 */
guint ipguard_blocked_seconds(struct ipguard *g, const char *key);
/** An AUTH from key failed. */
void ipguard_auth_failed(struct ipguard *g, const char *key);
/** Forget addresses with nothing left to remember. */
void ipguard_expire(struct ipguard *g);
guint ipguard_tracked(const struct ipguard *g);

/* Refusals, summarised: one report per address per window, not one per connection. */
#define IPGUARD_SUMMARY_WINDOW_S 60
/** Count the connections ipguard_admit refuses, per address, for ipguard_summaries. */
void ipguard_count_refusals(struct ipguard *g);
/** One address's refusals since first_us (monotonic); why is a lower-case phrase. */
typedef void (*ipguard_summary_fn)(void *ud, const char *key, guint count, gint64 first_us,
                                   const char *why);
/**
 * Report (and forget) the refusals of each address whose window is over:
 * IPGUARD_SUMMARY_WINDOW_S after its first refusal, or sooner when its
 * back-off has ended.  At most max addresses a call (the rest wait for the
 * next); all of them when flush.  Returns how many were reported.
 */
guint ipguard_summaries(struct ipguard *g, guint max, gboolean flush, ipguard_summary_fn fn,
                        void *ud);

#endif
