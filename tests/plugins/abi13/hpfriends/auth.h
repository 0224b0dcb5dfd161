/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file hpfriends/auth.h
 * @brief Auth plugins: who may connect.
 *
 * The broker keeps an ordered chain of auth plugins.  For every AUTH frame
 * it asks each in turn; the first HPF_AUTH_ALLOW, HPF_AUTH_DENY or
 * HPF_AUTH_ERROR wins, and
 * when every plugin answers HPF_AUTH_DEFER the client is denied (fail
 * closed: an error is a deny).  The default plugin, `auth_storage`, answers
 * from the configured storage's authkeys.
 *
 * An ALLOW must call host->auth_grant() first, saying which user owns the
 * session and which channels it may publish and subscribe on; the broker
 * enforces those lists for the life of the session (and re-checks them when
 * the data reloads).
 *
 * Threading: authenticate() runs on a worker thread, never on the event
 * loop, so it may block (a database round trip).  Calls are serialised.
 */
#ifndef HPFRIENDS_AUTH_H
#define HPFRIENDS_AUTH_H

#include <hpfriends/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hpf_auth_verdict {
    HPF_AUTH_DEFER = 0, /**< no opinion: ask the next plugin */
    HPF_AUTH_ALLOW = 1,
    HPF_AUTH_DENY = 2,
    /**
     * Could not decide (the backend is unavailable): the client is denied
     * like with DENY, but it is not held against the client's address
     * (no auth-failure back-off), since a retry may well succeed.
     */
    HPF_AUTH_ERROR = 3,
};

/** One AUTH attempt.  Opaque parts are reached through the host table. */
struct hpf_auth_request {
    const char *ident;
    const uint8_t *nonce; /**< the nonce the broker sent in INFO */
    size_t nonce_len;
    const uint8_t *hash; /**< 20 bytes: SHA-1(nonce || secret) */
    const char *peer;    /**< "address:port" of the client */
};

struct hpf_auth_ops {
    /** Decide one AUTH; return enum hpf_auth_verdict. */
    int (*authenticate)(void *instance, struct hpf_auth_request *req);
    const void *reserved[8];
};

#ifdef __cplusplus
}
#endif

#endif
