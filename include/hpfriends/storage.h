/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file hpfriends/storage.h
 * @brief Storage plugins: where users, groups, shares, acceptances and
 *        authkeys live.
 *
 * A storage plugin sets HPF_KIND_STORAGE and points `storage` at a constant
 * struct hpf_storage_ops.  Exactly one storage instance is configured.
 *
 * Threading: the broker never calls storage on its event loop thread.  All
 * calls into one storage instance come from one worker thread at a time
 * (they are serialised), so a plugin needs no locking of its own.
 * hpfriendsctl calls it from its only thread.
 *
 * The data model:
 *  - user: a name.  Every authkey owner counts as a user even when no user
 *    row exists (hpfeeds databases have authkeys only).
 *  - group: a name, an owning user, and member users.
 *  - share: (from user, to user-or-group, channel, type) where type is
 *    HPF_SHARE_SHARES (from's own messages) or HPF_SHARE_ALL (also what
 *    from can read on channel).
 *  - accept: user accepted the offer of `from` on `channel`.
 *  - decline: user declined the offer of `from` on `channel` (ABI 1.5).
 *    An offer is in at most one of three states: pending (neither row),
 *    accepted or declined.  Only an accepted offer delivers (when the
 *    broker runs with require_accept); a declined one delivers nothing,
 *    like a pending one, but says the recipient answered no.
 *  - authkey: struct hpf_authkey.
 *  - version: a counter that every successful apply() increases.
 */
#ifndef HPFRIENDS_STORAGE_H
#define HPFRIENDS_STORAGE_H

#include <string.h>

#include <hpfriends/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

enum hpf_share_type {
    HPF_SHARE_SHARES = 0, /**< "shares": from's own messages */
    HPF_SHARE_ALL = 1,    /**< "shares_all": also what from receives */
};

/** The name a share type has in every store and tool: "shares" or "shares_all". */
static inline const char *hpf_share_type_name(int type)
{
    return type == HPF_SHARE_ALL ? "shares_all" : "shares";
}

/** The share type a name spells (see hpf_share_type_name()), or -1. */
static inline int hpf_share_type_from_name(const char *name)
{
    if (!name)
        return -1;
    if (!strcmp(name, hpf_share_type_name(HPF_SHARE_ALL)))
        return HPF_SHARE_ALL;
    if (!strcmp(name, hpf_share_type_name(HPF_SHARE_SHARES)))
        return HPF_SHARE_SHARES;
    return -1;
}

/**
 * Callbacks a snapshot() fills in.  Any member may be NULL (then that kind
 * is skipped).  Strings are copied by the receiver.
 */
struct hpf_snapshot_visitor {
    void (*user)(void *ud, const char *name, bool admin);
    void (*group)(void *ud, const char *name, const char *owner);
    void (*member)(void *ud, const char *group, const char *user);
    void (*share)(void *ud, const char *from, const char *to, bool to_group, const char *channel,
                  int type);
    void (*accept)(void *ud, const char *user, const char *from, const char *channel);
    void (*authkey)(void *ud, const struct hpf_authkey *key);
    /**
     * A user's console password hash (ABI 1.2; only for users that have
     * one).  Called after user() for that name.  The text is opaque to
     * storage (the broker writes "pbkdf2-sha256$ITER$SALT$HASH").
     */
    void (*user_password)(void *ud, const char *name, const char *hash);
    /**
     * `user` declined the offer of `from` on `channel` (ABI 1.5; a plugin
     * built for an older minor never calls it, and its offers are pending
     * or accepted only).  Never reported beside an accept() of the same
     * three names.
     */
    void (*decline)(void *ud, const char *user, const char *from, const char *channel);
    const void *reserved[6];
};

/** Mutations applied by hpfriendsctl (and the web console). */
enum hpf_mutation_op {
    HPF_MUT_USER_ADD = 1,      /**< user */
    HPF_MUT_USER_DEL,          /**< user; also drops its memberships, shares
                                (both ends), acceptances, declines, authkeys and the
                                groups it owns */
    HPF_MUT_GROUP_ADD,         /**< group, user = owner */
    HPF_MUT_GROUP_DEL,         /**< group; also drops members and shares to it */
    HPF_MUT_MEMBER_ADD,        /**< group, user */
    HPF_MUT_MEMBER_DEL,        /**< group, user */
    HPF_MUT_SHARE_ADD,         /**< user = from, target(+target_is_group),
                                channel, share_type; an existing edge with
                                the same ends and channel gets the new type */
    HPF_MUT_SHARE_DEL,         /**< user = from, target, channel */
    HPF_MUT_ACCEPT_ADD,        /**< user, target = from, channel; replaces a
                                decline of the same offer (ABI 1.5) */
    HPF_MUT_ACCEPT_DEL,        /**< user, target = from, channel: back to
                                pending */
    HPF_MUT_AUTHKEY_ADD,       /**< authkey (replaces one with the same ident
                                only when `replace` is set) */
    HPF_MUT_AUTHKEY_DEL,       /**< authkey->ident */
    HPF_MUT_CLEAR,             /**< remove everything (used by import) */
    HPF_MUT_USER_SET_ADMIN,    /**< user, flag */
    HPF_MUT_USER_SET_PASSWORD, /**< user, password (NULL clears it); ABI 1.2 */
    /* 16-23: offer consent (ABI 1.5).  A plugin built for an older minor
     * refuses them as unknown (HPF_ERR_INVALID); the broker does not send
     * them to it. */
    HPF_MUT_DECLINE_ADD = 16, /**< user, target = from, channel; replaces an
                               acceptance of the same offer; HPF_ERR_EXISTS
                               when already declined (ABI 1.5) */
    HPF_MUT_DECLINE_DEL = 17, /**< user, target = from, channel: back to
                               pending; HPF_ERR_NOTFOUND when not declined
                               (ABI 1.5) */
    HPF_MUT_AUDIT = 24,       /**< audit: append the record (ABI 1.5); see hpf_audit_record */
};

/** The newest records a storage keeps when a record asks for no other bound. */
#define HPF_AUDIT_KEEP_DEFAULT 100000
/** Longest actor, object or detail of an audit record, in bytes. */
#define HPF_AUDIT_TEXT_MAX     2048
/** The most records one audit_list() call reports. */
#define HPF_AUDIT_LIST_MAX     1000

/**
 * One entry of the audit trail (ABI 1.5): who changed what, and when.
 * Every text follows hpf_name_check() (<hpfriends/names.h>): actor, object
 * and detail up to HPF_AUDIT_TEXT_MAX bytes, user and action up to
 * HPF_NAME_MAX; user, object and detail may be empty.
 *
 * The core adds an HPF_MUT_AUDIT mutation to the same apply() batch as the
 * change it describes, so the record is stored exactly when the change is:
 * a failed batch stores neither.  Storage treats the texts as opaque (the
 * core never puts a secret or a password hash in them).
 */
struct hpf_audit_record {
    int64_t id;         /**< audit_list(): increasing with each record; ignored in a mutation */
    int64_t time;       /**< seconds since the epoch, UTC */
    const char *actor;  /**< who: "alice", "admin root acting as alice",
                             "hpfriendsctl (unix user root)"; required */
    const char *user;   /**< whose object it is (the user filter matches it); "" for none */
    const char *action; /**< what kind of change: "share add", "user del", ...; required */
    const char *object; /**< what it changed: "alice -> @team on chan"; may be "" */
    const char *detail; /**< more about it: "type shares_all (was shares)"; may be "" */
    /**
     * In a mutation: after adding this record, keep only the newest `keep`
     * records (0: HPF_AUDIT_KEEP_DEFAULT), so the trail stays bounded.  A
     * store whose ids count up by one may drop the ids at or below this
     * record's id - keep (a range, not a count; gaps in the ids then leave
     * a few records fewer, never more).  Ignored by audit_list().
     */
    uint32_t keep;
    const void *reserved[4];
};

/** audit_list()'s question: newest first, at most limit records. */
struct hpf_audit_query {
    uint32_t limit;    /**< 1..HPF_AUDIT_LIST_MAX */
    int64_t before;    /**< only records with id < before; 0: from the newest */
    const char *actor; /**< only records whose actor is exactly this; NULL: any */
    const char *user;  /**< only records whose user is exactly this; NULL: any */
    const void *reserved[4];
};

/** Called once per record by audit_list(); the strings live until it returns. */
typedef void (*hpf_audit_cb)(void *user_data, const struct hpf_audit_record *record);

struct hpf_mutation {
    int op; /**< enum hpf_mutation_op */
    const char *user;
    const char *group;
    const char *target;
    bool target_is_group;
    const char *channel;
    int share_type; /**< enum hpf_share_type */
    const struct hpf_authkey *authkey;
    bool replace;
    bool flag;
    const char *password;                 /**< HPF_MUT_USER_SET_PASSWORD: the hash (ABI 1.2) */
    const struct hpf_audit_record *audit; /**< HPF_MUT_AUDIT: the record (ABI 1.5) */
    const void *reserved[4];
};

/**
 * Per-authkey traffic counters (totals, or deltas when adding).  Frozen for
 * ABI major 1 (plugin.h says why).
 */
struct hpf_counters {
    const char *ident;
    uint64_t published_msgs;
    uint64_t published_bytes;
    uint64_t received_msgs;
    uint64_t received_bytes;
};

struct hpf_storage_ops {
    /**
     * Look up one authkey.  HPF_OK after calling cb exactly once,
     * HPF_ERR_NOTFOUND when there is none, another status on failure.
     */
    int (*authkey_get)(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data);

    /** Current data version; changes whenever anything changed. */
    int (*version)(void *instance, uint64_t *version);

    /** Report everything, consistently (one read transaction). */
    int (*snapshot)(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data);

    /**
     * Apply n mutations atomically: all or none.  On failure, write a one
     * line reason into err (e.g. "user 'bob' not found") and return
     * HPF_ERR_NOTFOUND, HPF_ERR_EXISTS, HPF_ERR_INVALID or HPF_ERR_IO.
     * Deleting something absent is HPF_ERR_NOTFOUND.
     */
    int (*apply)(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
                 size_t err_len);

    /** Add deltas to the stored per-authkey counters.  May be NULL. */
    int (*counters_add)(void *instance, const struct hpf_counters *deltas, size_t n);

    /** Read the stored counters of one authkey (zeros if none).  May be NULL. */
    int (*counters_get)(void *instance, const char *ident, struct hpf_counters *out);

    /**
     * The audit trail (ABI 1.5; may be NULL: then the storage keeps none,
     * and the core sends it no HPF_MUT_AUDIT).  Calls cb for each record
     * that matches q, newest (highest id) first, at most q->limit of them,
     * from one consistent read.  HPF_OK (also when none matched),
     * HPF_ERR_INVALID for a bad query, another status on failure.
     */
    int (*audit_list)(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb,
                      void *user_data);

    const void *reserved[15];
};

#ifdef __cplusplus
}
#endif

#endif
