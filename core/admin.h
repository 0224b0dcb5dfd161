/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Administrative operations on storage, validated the same way for every
 * front end (hpfriendsctl and the web console): names are checked,
 * references must exist, and each operation is one atomic storage apply.
 * Storage is the final word on uniqueness (it answers "already exists").
 */
#ifndef HPF_ADMIN_H
#define HPF_ADMIN_H

#include <glib.h>

#include "loader.h"
#include "snapshot.h"

#define ADMIN_ERROR (admin_error_quark())
GQuark admin_error_quark(void);

/** Error codes: the hpf_status that caused them (HPF_ERR_NOTFOUND, ...). */

struct admin {
    struct plugin_instance *storage;
    /**
     * Who acts, for the audit trail: "alice", "admin root acting as alice",
     * "hpfriendsctl (unix user root)" (admin_ctl_actor()).  NULL: "unknown".
     */
    const char *actor;
    /** The newest audit records storage keeps ([broker] audit_keep); 0: its default. */
    guint audit_keep;
};

/**
 * User and group names: 1-64 of [A-Za-z0-9._@-].  A new one (user add,
 * group add) may not start with '@' (hpf_principal_name_check()).
 */
gboolean admin_valid_name(const char *name);
/*
 * Every name and secret also passes hpf_name_check() (<hpfriends/names.h>):
 * valid UTF-8, no control characters, bounded length.
 */
/** Channels: 1-255 bytes, no spaces or commas. */
gboolean admin_valid_channel(const char *chan);
/** The one rule of a channel list, as the console shows it next to its fields. */
#define ADMIN_CHANNEL_LIST_RULE                                                           \
    "channel names separated by commas; spaces around a name are ignored, a name has no " \
    "spaces or commas"
/**
 * A channel list as hpfriendsctl and the console take it (ADMIN_CHANNEL_LIST_RULE):
 * "a, b,c" is a, b and c; empty or blank text is the empty list; an empty
 * name ("a,,b") or one with a space inside is refused, never split further.
 * NULL-terminated (g_strfreev), or NULL and error set.
 */
char **admin_channel_list(const char *text, GError **error);
/** Authkey idents: 1-255 bytes, no spaces. */
gboolean admin_valid_ident(const char *ident);
/** Secrets: 1-HPF_SECRET_MAX bytes. */
gboolean admin_valid_secret(const char *secret);

/** Read a fresh snapshot (for validation and listings). */
struct snapshot *admin_snapshot(struct admin *a, GError **error);

gboolean admin_user_add(struct admin *a, const char *name, gboolean admin, GError **error);
gboolean admin_user_del(struct admin *a, const char *name, GError **error);
gboolean admin_user_set_admin(struct admin *a, const char *name, gboolean admin, GError **error);
/**
 * Set a user's console password to the hash made by password_hash() (NULL
 * removes it: no console login).  Needs a storage plugin of ABI 1.2 or newer.
 */
gboolean admin_user_set_password(struct admin *a, const char *name, const char *hash,
                                 GError **error);
gboolean admin_group_add(struct admin *a, const char *name, const char *owner, GError **error);
gboolean admin_group_del(struct admin *a, const char *name, GError **error);
gboolean admin_member_add(struct admin *a, const char *group, const char *user, GError **error);
gboolean admin_member_del(struct admin *a, const char *group, const char *user, GError **error);
/** to may be "@group" for a group. */
gboolean admin_share_add(struct admin *a, const char *from, const char *to, const char *chan,
                         int type, GError **error);
/** What admin_share_set() changed. */
struct admin_share_change {
    int old_type; /**< the type the share had, or -1 when it is new */
    guint voided; /**< acceptances dropped because the share widened */
};
/** The type of the share from -> to ("@group" allowed) on chan in s, or -1 when none. */
int admin_share_type(const struct snapshot *s, const char *from, const char *to, const char *chan);
/** TRUE when a share of old_type (-1: none) that takes new_type reaches further. */
gboolean admin_share_widens(int old_type, int new_type);
/**
 * admin_share_add(), telling what changed.  A share that widens (shares to
 * shares_all) needs new consent: in the same storage transaction the
 * acceptances of its recipients for from on chan are dropped, so with
 * require_accept they must accept again.  A narrowing keeps them.
 */
gboolean admin_share_set(struct admin *a, const char *from, const char *to, const char *chan,
                         int type, struct admin_share_change *change, GError **error);
gboolean admin_share_del(struct admin *a, const char *from, const char *to, const char *chan,
                         GError **error);
/** Accept (an acceptance replaces a decline) or withdraw an acceptance. */
gboolean admin_accept(struct admin *a, const char *user, const char *from, const char *chan,
                      gboolean accept, GError **error);
/**
 * Decline the offer of from on chan (replacing an acceptance), or with
 * decline FALSE withdraw a decline: the offer is pending again.  Needs a
 * storage plugin of ABI 1.5 or newer.
 */
gboolean admin_decline(struct admin *a, const char *user, const char *from, const char *chan,
                       gboolean decline, GError **error);
/**
 * Take user's answer to the offer of from on chan from `now` (what a fresh
 * snapshot says) to `want`: accept, decline, or with OFFER_PENDING
 * withdraw whichever answer there is.  Nothing to do when they are equal.
 */
gboolean admin_offer_answer(struct admin *a, const char *user, const char *from, const char *chan,
                            enum offer_state now, enum offer_state want, GError **error);
/**
 * Add an authkey.  secret may be NULL: one is generated (OpenSSL RAND,
 * 32 hex digits... 128 bits) and returned in *secret_out (caller frees).
 */
gboolean admin_authkey_add(struct admin *a, const char *owner, const char *ident,
                           const char *secret, char **publish, char **subscribe, char **secret_out,
                           GError **error);
gboolean admin_authkey_del(struct admin *a, const char *ident, GError **error);
/**
 * Change an authkey in one step (no moment without it, so live sessions
 * stay up): each non-NULL argument replaces that field; the rest is kept.
 * A new secret ends the sessions opened with the old one when the broker
 * reloads (reload.c); a session whose secret is unchanged stays.
 */
gboolean admin_authkey_set(struct admin *a, const char *ident, const char *owner,
                           const char *secret, char **publish, char **subscribe, GError **error);
/**
 * Give an authkey a new generated secret (as admin_authkey_add makes one),
 * returned in *secret_out (caller frees); the rest of the key is kept.
 */
gboolean admin_authkey_regenerate(struct admin *a, const char *ident, char **secret_out,
                                  GError **error);

/** Export everything as JSON text (deterministic order). */
char *admin_export(struct admin *a, GError **error);
/** Replace everything with the JSON document (atomic). */
gboolean admin_import(struct admin *a, const char *json, gsize len, GError **error);

/* ---- the audit trail (admin_audit.c) ---- */

/** TRUE when the storage keeps an audit trail (ABI 1.5 with audit_list). */
gboolean admin_audit_supported(const struct admin *a);
/** "hpfriendsctl (unix user NAME)" for the user running it (g_free). */
char *admin_ctl_actor(void);
/**
 * Apply n mutations atomically with one audit record about them (when the
 * storage keeps a trail): described from the first mutation, with action
 * replacing its action and detail added to its detail when not NULL.
 * Never pass a secret or a password hash in detail.
 */
gboolean admin_apply_noted(struct admin *a, const struct hpf_mutation *m, size_t n,
                           const char *action, const char *detail, GError **error);
/** One record of the trail, owned. */
struct admin_audit_entry {
    gint64 id, time;
    char *actor, *user, *action, *object, *detail;
};
void admin_audit_entry_free(gpointer p);
/**
 * The records q asks for, newest first (struct admin_audit_entry *), or
 * NULL with error: HPF_ERR_UNSUPPORTED when the storage keeps no trail.
 */
GPtrArray *admin_audit_list(struct admin *a, const struct hpf_audit_query *q, GError **error);

/** One reader of a publisher's messages, with the chain of edges behind it. */
struct admin_reader {
    char *user;
    char *path;        /* "jojo -shares-> mark -shares_all-> @partners" */
    gboolean declined; /* admin_pending_readers(): answered no, not just silent */
};
/** Readers of user's messages on chan per the sharing rule, publisher first. */
GPtrArray *admin_readers(const struct snapshot *s, const char *user, const char *chan,
                         gboolean require_accept);
void admin_reader_free(gpointer p);
/**
 * With require_accept: the users a share from one of readers (the result of
 * admin_readers()) reaches who have not accepted it, so do not read yet;
 * each with the path that would let them.
 */
GPtrArray *admin_pending_readers(const struct snapshot *s, const char *user, const char *chan,
                                 const GPtrArray *readers);

/** Graphviz of users, groups, membership and shares. */
char *admin_graph_dot(const struct snapshot *s);

#endif
