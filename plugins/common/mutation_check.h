/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a storage plugin checks in a mutation before it looks at stored
 * data: the operation is known, its required fields are there, a share
 * type is one of the two, an authkey has a secret and no empty channel.
 *
 * Compiled into each storage plugin that needs it (plugins link no part of
 * the core).  Each backend runs mut_check() on a mutation just before its
 * own checks against stored data (exists, not found), so a mutation with
 * several problems fails on the same one in every backend, with the same
 * text.
 */
#ifndef HPF_PLUGINS_MUTATION_CHECK_H
#define HPF_PLUGINS_MUTATION_CHECK_H

#include <hpfriends/storage.h>

/* One past the highest enum hpf_mutation_op: the size of a table by op. */
#define MUT_OP_COUNT (HPF_MUT_AUDIT + 1)

/*
 * Start of an apply(): empties err, then HPF_OK, or HPF_ERR_INVALID with
 * err set when n > 0 and there is no array.
 */
int mut_check_batch(const struct hpf_mutation *mutations, size_t n, char *err, size_t err_len);

/*
 * HPF_OK when m passes every check that needs no stored data; otherwise
 * HPF_ERR_INVALID with the reason in err.  After HPF_OK, m->op indexes a
 * table of MUT_OP_COUNT and mut_op_name(m->op) is not NULL.
 */
int mut_check(const struct hpf_mutation *m, char *err, size_t err_len);

/* "user_add" and so on, as errors name them; NULL for an unknown op (also
 * for a number in a gap of the enum). */
const char *mut_op_name(int op);

/*
 * The newest records an audit mutation asks a backend to keep
 * (HPF_AUDIT_KEEP_DEFAULT for 0); after mut_check() passed.
 */
uint32_t mut_audit_keep(const struct hpf_mutation *m);

/* audit_list()'s query: present, with a limit of 1..HPF_AUDIT_LIST_MAX. */
bool mut_audit_query_ok(const struct hpf_audit_query *q);

/* An authkey without an owner belongs to its ident. */
const char *mut_key_owner(const char *owner, const char *ident);

/* counters_add()'s arguments: n deltas, each naming its authkey. */
bool mut_counters_ok(const struct hpf_counters *deltas, size_t n);

#endif
