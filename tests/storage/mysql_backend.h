/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql in the storage tests: a private MariaDB server started by
 * tests/mysql/mysql-server.sh, one database per store label, the
 * out-of-band writer (an INSERT into hpfeeds3's auth_keys) and the cases
 * that are MariaDB's own.
 */
#ifndef HPF_TESTS_MYSQL_BACKEND_H
#define HPF_TESTS_MYSQL_BACKEND_H

#include <glib.h>

/* Start the server once; 0, or -1 with the reason printed (the suite then fails). */
int mysql_backend_start(void);
/* Stop it (at exit). */
void mysql_backend_stop(void);
/* [storage] keys for the store `label` (its database is created if need be). */
GHashTable *mysql_backend_config(const char *label);
/* INSERT INTO auth_keys as hpfeeds3-era tools do; owner (may be NULL) into hpf_key_owners. */
void mysql_raw_key(const char *label, const char *ident, const char *owner, const char *secret,
                   const char *pub_json_list);

struct mysql_case {
    const char *name;
    void (*fn)(void);
};
extern const struct mysql_case mysql_cases[];
extern const size_t mysql_n_cases;

#endif
