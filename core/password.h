/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Console passwords: PBKDF2-HMAC-SHA256 with a per-user random salt,
 * stored as "pbkdf2-sha256$ITERATIONS$SALT_B64$HASH_B64".  Hashing is slow
 * on purpose: call it off the event loop.
 */
#ifndef HPF_PASSWORD_H
#define HPF_PASSWORD_H

#include <glib.h>

/** Iterations for new hashes (OWASP's 2023 figure for PBKDF2-SHA256). */
#define PASSWORD_ITERATIONS 600000
/** Shortest password accepted for a new hash. */
#define PASSWORD_MIN_LEN    8

/**
 * Iterations for new hashes: PASSWORD_ITERATIONS, unless the environment
 * variable HPFRIENDS_PASSWORD_ITERATIONS says otherwise (1000 at least).
 * That is for test suites, where sanitizer builds make 600,000 rounds take
 * seconds; lowering it weakens the hashes it makes.  Verifying always uses
 * the count stored in the hash.
 */
guint password_iterations(void);

/** A new hash of password, or NULL when OpenSSL fails. */
char *password_hash(const char *password, guint iterations);
/**
 * Does password match stored?  FALSE for a malformed stored value too.
 * The final comparison is constant-time.
 */
gboolean password_verify(const char *password, const char *stored);

#endif
