/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_postgresql in the storage tests: a private PostgreSQL server
 * (tests/pg/pg-server.sh, TLS on), a database per store label, the
 * out-of-band writer of the conformance suite, and the plugin's own cases
 * (hpfeeds3's auth_keys, TLS, two nodes, an outage).
 */
#ifndef HPF_TESTS_PG_BACKEND_H
#define HPF_TESTS_PG_BACKEND_H

#include <stddef.h>

/* Start the server once; 0, or -1 (with a message on stderr) when it cannot. */
int pg_backend_start(void);
/* Remove it; harmless when it never started. */
void pg_backend_stop(void);
/* A libpq URI of the database for `label` (created on first use); g_free() it. */
char *pg_backend_uri(const char *label);
/* INSERT INTO auth_keys, as an hpfeeds3 operator does (and the owner row when given). */
void pg_raw_key(const char *label, const char *ident, const char *owner, const char *secret,
                const char *pub_json_list);

struct pg_case {
    const char *name;
    void (*fn)(void);
};
extern const struct pg_case pg_cases[];
extern const size_t pg_n_cases;

#endif
