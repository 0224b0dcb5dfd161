/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The storage data model in memory, and apply()'s rules on it.
 *
 * storage_file and storage_mongodb both load everything (users, groups,
 * members, shares, accepts, declines, authkeys) into a struct gm_model, run a batch of
 * mutations against it with gm_apply(), and then persist the result: the
 * file plugin writes the whole model back, the MongoDB plugin writes the
 * difference (gm_diff()).  So the three backends share one set of
 * semantics: the checks that need no stored data are one code for all three
 * (plugins/common/mutation_check.c), the rest of gm_apply() mirrors
 * storage_sqlite's apply.c check by check and message by message, and the
 * conformance suite in tests/storage holds them to it.
 *
 * This file is compiled into both plugins (it lives here, not in core/, as
 * plugins see only the SDK headers).  Nothing in it does I/O or logs.
 */
#ifndef HPF_STORAGE_MODEL_H
#define HPF_STORAGE_MODEL_H

#include <stdbool.h>

#include <glib.h>

#include <hpfriends/plugin.h>
#include <hpfriends/storage.h>

struct gm_user {
    char *name;
    bool admin;
    char *password; /* console password hash, or NULL */
};

struct gm_group {
    char *name;
    char *owner;
};

struct gm_member {
    char *group;
    char *user;
};

struct gm_share {
    char *from;
    char *to;
    bool to_group;
    char *channel;
    int type; /* enum hpf_share_type */
};

struct gm_accept {
    char *user;
    char *from;
    char *channel;
};

/*
 * An authkey as stored.  An entry the backend could not make sense of (no
 * secret, say) is still held, with usable = false, so that mutations see it
 * (it exists, it can be replaced or deleted) and a rewrite keeps it; it is
 * never reported or granted.
 */
struct gm_key {
    char *ident;
    char *owner;          /* effective owner: the stored one, else the ident */
    char *secret;         /* NULL when !usable */
    GPtrArray *publish;   /* char * */
    GPtrArray *subscribe; /* char * */
    bool usable;
    gpointer raw; /* the backend's original form of the entry, or NULL */
};

struct gm_model {
    GPtrArray *keys; /* struct gm_key *, in storage order */
    GPtrArray *users;
    GPtrArray *groups;
    GPtrArray *members;
    GPtrArray *shares;
    GPtrArray *accepts;
    GPtrArray *declines; /* struct gm_accept *: offers answered no */
    /* lookups into the arrays above (values not owned) */
    GHashTable *key_by_ident;
    GHashTable *user_by_name;
    GHashTable *group_by_name;
    /*
     * Sets of the records themselves, compared by their fields (member:
     * group and user; share: from, to, to_group and channel; accept: user,
     * from and channel), so that a check for an existing edge does not scan
     * the array: an import of N shares would otherwise cost N^2/2 compares.
     */
    GHashTable *member_set;
    GHashTable *share_set;
    GHashTable *accept_set;
    GHashTable *decline_set;
    /* how gm_key.raw is copied and freed; may be NULL when raw is unused */
    gpointer (*raw_ref)(gpointer raw);
    GDestroyNotify raw_unref;
};

struct gm_model *gm_model_new(gpointer (*raw_ref)(gpointer), GDestroyNotify raw_unref);
void gm_model_free(struct gm_model *m);
/* Deep copy (raw entries are shared through raw_ref). */
struct gm_model *gm_model_copy(const struct gm_model *m);

/*
 * Loaders' adders.  A repeated user, group, member, share, accept or ident
 * is dropped (the first one wins, as in storage_sqlite) and false returned;
 * references are not checked (hand-edited data may dangle; the core copes).
 */
bool gm_add_user(struct gm_model *m, const char *name, bool admin);
/** Set (or with NULL clear) a user's password hash; false if no such user. */
bool gm_set_password(struct gm_model *m, const char *name, const char *hash);
bool gm_add_group(struct gm_model *m, const char *name, const char *owner);
bool gm_add_member(struct gm_model *m, const char *group, const char *user);
bool gm_add_share(struct gm_model *m, const char *from, const char *to, bool to_group,
                  const char *channel, int type);
bool gm_add_accept(struct gm_model *m, const char *user, const char *from, const char *channel);
/* A decline beside an acceptance of the same offer is dropped (false): the
 * acceptance wins, as the stores never hold both. */
bool gm_add_decline(struct gm_model *m, const char *user, const char *from, const char *channel);
/* Takes k (also when it returns false: then k is freed). */
bool gm_add_key(struct gm_model *m, struct gm_key *k);

/* A new usable key; owner NULL or "" means the ident. */
struct gm_key *gm_key_new(const char *ident, const char *owner, const char *secret,
                          const char *const *publish, size_t n_publish,
                          const char *const *subscribe, size_t n_subscribe);
void gm_key_free(struct gm_model *m, struct gm_key *k);

const struct gm_key *gm_find_key(const struct gm_model *m, const char *ident);
bool gm_is_member(const struct gm_model *m, const char *group, const char *user);

/*
 * Run a batch of mutations against m, with storage_sqlite's checks and
 * messages.  On failure m is left part-way through the batch: callers run
 * it on a copy (or a fresh load) and throw that away.
 */
int gm_apply(struct gm_model *m, const struct hpf_mutation *mutations, size_t n, char *err,
             size_t err_len);

/* Report the model to a snapshot visitor (usable authkeys only). */
void gm_visit(const struct gm_model *m, const struct hpf_snapshot_visitor *v, void *ud);

/* Hand one key to an authkey callback. */
void gm_emit_key(const struct gm_key *k, hpf_authkey_cb cb, void *ud);

/* Feed everything the broker sees (not raw forms) into a checksum. */
void gm_digest(const struct gm_model *m, GChecksum *sum);

/* What gm_diff() reports, per record kind. */
enum gm_kind { GM_USER, GM_GROUP, GM_MEMBER, GM_SHARE, GM_ACCEPT, GM_KEY, GM_DECLINE };

/*
 * Differences from `before` to `after`: del for records gone (or changed),
 * then add for records new (or changed), in an order that keeps references
 * sane if a reader looks in between: every del (dependents first), then
 * every add (referenced records first).  `changed` is true for a record
 * present on both sides with other values (a user's admin flag, a share's
 * type, an authkey's fields); such a record gets a del then an add unless
 * the callback handles it in place on the del call and returns true.
 */
struct gm_diff_ops {
    /* record points at the before-side struct */
    bool (*del)(void *ud, enum gm_kind kind, const void *record, const void *replacement);
    /* record points at the after-side struct */
    void (*add)(void *ud, enum gm_kind kind, const void *record);
};
void gm_diff(const struct gm_model *before, const struct gm_model *after,
             const struct gm_diff_ops *ops, void *ud);

#endif
