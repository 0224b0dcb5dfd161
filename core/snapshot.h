/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A consistent copy of everything storage holds, read through the
 * snapshot visitor.  Read on the worker thread (or by hpfriendsctl), then
 * immutable: the graph flattener, session re-checks, listings and exports
 * all read it.
 */
#ifndef HPF_SNAPSHOT_H
#define HPF_SNAPSHOT_H

#include <glib.h>

#include "loader.h"

struct snap_group {
    char *name;
    char *owner;
};

struct snap_member {
    char *group;
    char *user;
};

struct snap_share {
    char *from;
    char *to;
    gboolean to_group;
    char *channel;
    int type; /* enum hpf_share_type */
};

struct snap_accept {
    char *user;
    char *from;
    char *channel;
};

struct snap_authkey {
    char *ident;
    char *owner;
    char *secret;
    GPtrArray *publish;   /* char * */
    GPtrArray *subscribe; /* char * */
};

struct snapshot {
    guint64 version;
    GPtrArray *users;             /* char *, explicit users only, in storage order */
    GHashTable *admins;           /* user names with the admin flag */
    GHashTable *passwords;        /* user name -> console password hash */
    GPtrArray *groups;            /* struct snap_group * */
    GPtrArray *members;           /* struct snap_member * */
    GPtrArray *shares;            /* struct snap_share * */
    GPtrArray *accepts;           /* struct snap_accept * */
    GPtrArray *declines;          /* struct snap_accept *: offers answered no */
    GPtrArray *authkeys;          /* struct snap_authkey * */
    GHashTable *authkey_by_ident; /* ident -> struct snap_authkey * (first wins) */
};

struct snapshot *snapshot_new(void);
/** Read storage's version and a snapshot.  NULL with error on failure. */
struct snapshot *snapshot_read(struct plugin_instance *storage, GError **error);
void snapshot_free(struct snapshot *s);

/** Add rows by hand (tests, import). */
void snapshot_add_user(struct snapshot *s, const char *name, gboolean admin);
void snapshot_set_password(struct snapshot *s, const char *name, const char *hash);
void snapshot_add_group(struct snapshot *s, const char *name, const char *owner);
void snapshot_add_member(struct snapshot *s, const char *group, const char *user);
void snapshot_add_share(struct snapshot *s, const char *from, const char *to, gboolean to_group,
                        const char *channel, int type);
void snapshot_add_accept(struct snapshot *s, const char *user, const char *from,
                         const char *channel);
void snapshot_add_decline(struct snapshot *s, const char *user, const char *from,
                          const char *channel);
void snapshot_add_authkey(struct snapshot *s, const struct hpf_authkey *key);

/** Is `name` a user: an explicit one, or the owner of an authkey. */
gboolean snapshot_has_user(const struct snapshot *s, const char *name);
const struct snap_group *snapshot_find_group(const struct snapshot *s, const char *name);
/** Is `user` a member of `group`. */
gboolean snapshot_is_member(const struct snapshot *s, const char *group, const char *user);
/** Has `user` accepted what `from` shares on `channel`. */
gboolean snapshot_has_accept(const struct snapshot *s, const char *user, const char *from,
                             const char *channel);

/* Where `user` stands on the offer of `from` on `channel`. */
enum offer_state { OFFER_PENDING, OFFER_ACCEPTED, OFFER_DECLINED };
/** An acceptance wins over a decline (a store never holds both; a hand-made
 * snapshot might). */
enum offer_state snapshot_offer_state(const struct snapshot *s, const char *user, const char *from,
                                      const char *channel);
/** "pending", "accepted" or "declined", as the console and hpfriendsctl say. */
const char *offer_state_name(enum offer_state st);

const char *share_type_name(int type);
/** "shares" or "shares_all" -> type; -1 otherwise. */
int share_type_parse(const char *name);

#endif
