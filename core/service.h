/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Running as a system service: the unprivileged user to switch to, the pid
 * file, and readiness/watchdog notifications to systemd.
 */
#ifndef HPF_SERVICE_H
#define HPF_SERVICE_H

#include <event2/event.h>
#include <glib.h>
#include <sys/types.h>

#include "config.h"

/** The account the daemon runs as once its sockets are bound. */
struct service_identity {
    char *user; /* NULL: no switch asked for */
    uid_t uid;
    gid_t gid;
};

/**
 * Look up [broker] user / group: an unknown name, root (uid 0 or gid 0),
 * or a group without a user is an error naming the key.  With no user set,
 * id->user stays NULL.  No side effects (--test calls it).
 */
gboolean service_identity_resolve(const struct config *cfg, struct service_identity *id,
                                  GError **error);
void service_identity_clear(struct service_identity *id);

/**
 * Become [broker] user for good: supplementary groups, group, user, in that
 * order, each checked, then check that neither uid nor gid can go back to
 * 0.  When the process already is that user and group, nothing changes.
 * Any failure is an error: the caller must not go on.
 */
gboolean service_drop_privileges(const struct config *cfg, GError **error);

/* ---- the pid file ---- */

struct pidfile;

/**
 * Before daemonizing: FALSE with an error naming the holder's pid when a
 * live process holds path (so the error reaches the terminal).
 */
gboolean service_pidfile_check(const char *path, GError **error);

/**
 * Create path (and, as root, its missing parent directory, owned by id's
 * user), lock it for the life of the process and write our pid.  A file
 * held by another live process is an error; a stale one is taken over.
 */
struct pidfile *service_pidfile_acquire(const char *path, const struct service_identity *id,
                                        GError **error);

/** Remove the pid file (or, when its directory no longer lets us, empty it) and unlock. */
void service_pidfile_release(struct pidfile *pf);

/* ---- detaching ---- */

/**
 * daemon(3), except that the command that started the broker learns how the
 * start went: the parent stays until the detached child reports, then exits
 * 0 when it is serving, or prints the child's error to its standard error
 * and exits 1 (also when the child dies first).  In the child, returns TRUE;
 * FALSE with errno set when the fork or pipe failed (nothing detached).
 */
gboolean service_daemonize(void);
/** The detached child is serving: the waiting parent exits 0.  No-op when not detached. */
void service_daemon_ready(void);
/** The detached child gives up: the waiting parent prints why and exits 1.  No-op when not detached. */
void service_daemon_failed(const char *why);

/* ---- systemd notifications (no-ops without NOTIFY_SOCKET or libsystemd) ---- */

/** Listening and serving: READY=1 and a STATUS= line; starts the watchdog timer on base. */
void service_notify_ready(struct event_base *base, const char *status);
/** SIGHUP received: RELOADING=1 with MONOTONIC_USEC=. */
void service_notify_reloading(void);
/** The SIGHUP reload is done (or failed: status says so): READY=1. */
void service_notify_reloaded(const char *status);
/** Shutting down: STOPPING=1; stops the watchdog timer. */
void service_notify_stopping(const char *status);
/** A free-form STATUS= line. */
void service_notify_status(const char *status);
/** Free the watchdog timer (before its event base goes). */
void service_notify_close(void);

#endif
