/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Administrative operations on storage for hpfriendsctl and the console:
 * each checks names with the one rule (hpf_name_check) and the front ends'
 * narrower ones, refuses with the value shown escaped, and applies one
 * atomic storage mutation.
 */
#include "admin.h"

#include <hpfriends/names.h>
#include <openssl/rand.h>
#include <string.h>

#include "log.h"

G_DEFINE_QUARK(hpf - admin - error - quark, admin_error)

gboolean admin_valid_name(const char *name)
{
    if (hpf_name_check(name, 64))
        return FALSE;
    for (const char *p = name; *p; p++)
        if (!g_ascii_isalnum(*p) && !strchr("._@-", *p))
            return FALSE;
    return TRUE;
}

gboolean admin_valid_channel(const char *chan)
{
    return !hpf_name_check(chan, HPF_NAME_MAX) && !strpbrk(chan, " ,");
}

gboolean admin_valid_ident(const char *ident)
{
    return !hpf_name_check(ident, HPF_NAME_MAX) && !strchr(ident, ' ');
}

gboolean admin_valid_secret(const char *secret) { return !hpf_name_check(secret, HPF_SECRET_MAX); }

/*
 * A value for an error message: what cannot be shown safely (control
 * characters, invalid UTF-8) is escaped, and it is cut short, so a refused
 * name cannot write to the admin's terminal or log.
 */
static char *shown(const char *v)
{
    if (!v)
        return g_strdup("");
    /* Cut at a character boundary when the text is UTF-8, so the cut
       itself never shows as a broken byte. */
    const char *end = strlen(v) > 80 ? v + 80 : NULL;
    if (end && g_utf8_validate(v, -1, NULL))
        end = g_utf8_find_prev_char(v, end + 1);
    char *cut = end ? g_strndup(v, (gsize)(end - v)) : g_strdup(v);
    char *out = log_escape(cut);
    g_free(cut);
    return out;
}

/* Every change goes through here, so each gets its audit record (admin_audit.c). */
static gboolean apply(struct admin *a, const struct hpf_mutation *m, size_t n, GError **error)
{
    return admin_apply_noted(a, m, n, NULL, NULL, error);
}

static gboolean bad(GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static gboolean bad(GError **error, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, ADMIN_ERROR, code, msg);
    g_free(msg);
    return FALSE;
}

/* A refusal naming the value, escaped. */
static gboolean bad_value(GError **error, const char *what, const char *v, const char *rule)
{
    char *s = shown(v);
    g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID, "bad %s '%s': %s", what, s, rule);
    g_free(s);
    return FALSE;
}

#define CHECK_NAME(what, v)                                                                 \
    do {                                                                                    \
        if (!admin_valid_name(v))                                                           \
            return bad_value(error, !strcmp(what, "group") ? "group name" : "user name", v, \
                             "use 1-64 letters, digits, '.', '_', '@' or '-'");             \
    } while (0)

#define CHECK_CHANNEL(v)                                                               \
    do {                                                                               \
        if (!admin_valid_channel(v))                                                   \
            return bad_value(error, "channel name", v,                                 \
                             "1-255 bytes of UTF-8 text, no control, invisible or "    \
                             "bidirectional formatting characters, spaces or commas"); \
    } while (0)

#define CHECK_IDENT(v)                                                              \
    do {                                                                            \
        if (!admin_valid_ident(v))                                                  \
            return bad_value(error, "ident", v,                                     \
                             "1-255 bytes of UTF-8 text, no control, invisible or " \
                             "bidirectional formatting characters or spaces");      \
    } while (0)

#define CHECK_SECRET(v)                                            \
    do {                                                           \
        if (!admin_valid_secret(v))                                \
            return bad(error, HPF_ERR_INVALID,                     \
                       "bad secret: 1-%d bytes of UTF-8 text, no " \
                       "control, invisible or bidirectional "      \
                       "formatting characters",                    \
                       HPF_SECRET_MAX);                            \
    } while (0)

char **admin_channel_list(const char *text, GError **error)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    gchar *trimmed = g_strstrip(g_strdup(text ? text : ""));
    gchar **parts = *trimmed ? g_strsplit(trimmed, ",", -1) : NULL;
    g_free(trimmed);
    gboolean ok = TRUE;
    for (gchar **p = parts; ok && p && *p; p++) {
        g_strstrip(*p);
        if (out->len >= HPF_KEY_CHANNELS_MAX)
            ok = bad(error, HPF_ERR_INVALID, "more than %d channels in the list",
                     HPF_KEY_CHANNELS_MAX);
        else if (!**p)
            ok = bad(error, HPF_ERR_INVALID,
                     "empty channel name in the list (a comma too many?): %s",
                     ADMIN_CHANNEL_LIST_RULE);
        else if (!admin_valid_channel(*p))
            ok = bad_value(error, "channel name", *p, ADMIN_CHANNEL_LIST_RULE);
        else
            g_ptr_array_add(out, g_strdup(*p));
    }
    g_strfreev(parts);
    if (!ok) {
        g_ptr_array_free(out, TRUE);
        return NULL;
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

struct snapshot *admin_snapshot(struct admin *a, GError **error)
{
    return snapshot_read(a->storage, error);
}

/* Checks that need the current data; one snapshot per call. */
static gboolean need_explicit_user(struct admin *a, const char *name, GError **error)
{
    struct snapshot *s = admin_snapshot(a, error);
    if (!s)
        return FALSE;
    gboolean found = FALSE;
    for (guint i = 0; i < s->users->len && !found; i++)
        found = !strcmp(s->users->pdata[i], name);
    snapshot_free(s);
    if (!found)
        return bad(error, HPF_ERR_NOTFOUND, "unknown user '%s' (add it with: user add %s)", name,
                   name);
    return TRUE;
}

/* A name being created: the rule of every name plus hpf_principal_name_check(). */
#define CHECK_NEW_NAME(what, v)                                                                    \
    do {                                                                                           \
        CHECK_NAME(what, v);                                                                       \
        const char *why_ = hpf_principal_name_check(v, HPF_NAME_MAX);                              \
        if (why_)                                                                                  \
            return bad_value(error, !strcmp(what, "group") ? "group name" : "user name", v, why_); \
    } while (0)

gboolean admin_user_add(struct admin *a, const char *name, gboolean admin, GError **error)
{
    CHECK_NEW_NAME("user", name);
    struct hpf_mutation m[2] = {{.op = HPF_MUT_USER_ADD, .user = name},
                                {.op = HPF_MUT_USER_SET_ADMIN, .user = name, .flag = true}};
    return apply(a, m, admin ? 2 : 1, error);
}

gboolean admin_user_del(struct admin *a, const char *name, GError **error)
{
    CHECK_NAME("user", name);
    struct hpf_mutation m = {.op = HPF_MUT_USER_DEL, .user = name};
    return apply(a, &m, 1, error);
}

gboolean admin_user_set_admin(struct admin *a, const char *name, gboolean admin, GError **error)
{
    CHECK_NAME("user", name);
    struct hpf_mutation m = {.op = HPF_MUT_USER_SET_ADMIN, .user = name, .flag = admin};
    return apply(a, &m, 1, error);
}

gboolean admin_user_set_password(struct admin *a, const char *name, const char *hash,
                                 GError **error)
{
    CHECK_NAME("user", name);
    const struct hpf_plugin *d = a->storage->desc;
    if (d->abi_minor < 2)
        return bad(error, HPF_ERR_UNSUPPORTED,
                   "storage plugin '%s' (ABI %d.%d) cannot store passwords: it needs ABI 1.2",
                   d->name, d->abi_major, d->abi_minor);
    struct hpf_mutation m = {.op = HPF_MUT_USER_SET_PASSWORD, .user = name, .password = hash};
    return apply(a, &m, 1, error);
}

gboolean admin_group_add(struct admin *a, const char *name, const char *owner, GError **error)
{
    CHECK_NEW_NAME("group", name);
    CHECK_NAME("user", owner);
    if (!need_explicit_user(a, owner, error))
        return FALSE;
    struct hpf_mutation m = {.op = HPF_MUT_GROUP_ADD, .group = name, .user = owner};
    return apply(a, &m, 1, error);
}

gboolean admin_group_del(struct admin *a, const char *name, GError **error)
{
    CHECK_NAME("group", name);
    struct hpf_mutation m = {.op = HPF_MUT_GROUP_DEL, .group = name};
    return apply(a, &m, 1, error);
}

gboolean admin_member_add(struct admin *a, const char *group, const char *user, GError **error)
{
    CHECK_NAME("group", group);
    CHECK_NAME("user", user);
    struct hpf_mutation m = {.op = HPF_MUT_MEMBER_ADD, .group = group, .user = user};
    return apply(a, &m, 1, error);
}

gboolean admin_member_del(struct admin *a, const char *group, const char *user, GError **error)
{
    CHECK_NAME("group", group);
    CHECK_NAME("user", user);
    struct hpf_mutation m = {.op = HPF_MUT_MEMBER_DEL, .group = group, .user = user};
    return apply(a, &m, 1, error);
}

static const char *split_target(const char *to, gboolean *is_group)
{
    *is_group = to && to[0] == '@';
    return *is_group ? to + 1 : to;
}

/* The type of the share from -> target on chan, or -1 when there is none. */
static int stored_share_type(const struct snapshot *s, const char *from, const char *target,
                             gboolean to_group, const char *chan)
{
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        if (!strcmp(sh->from, from) && !strcmp(sh->to, target) && sh->to_group == to_group &&
            !strcmp(sh->channel, chan))
            return sh->type;
    }
    return -1;
}

/*
 * The acceptances a widening of from -> target on chan voids: those of its
 * recipients for from on chan.  An acceptance names no share, so one that
 * also covers another share of from on chan goes too: asking again is the
 * safe side.  The mutations point into s.
 */
static void void_accepts(const struct snapshot *s, const char *from, const char *target,
                         gboolean to_group, const char *chan, GArray *muts)
{
    for (guint i = 0; i < s->accepts->len; i++) {
        const struct snap_accept *ac = s->accepts->pdata[i];
        if (strcmp(ac->from, from) || strcmp(ac->channel, chan))
            continue;
        if (to_group ? !snapshot_is_member(s, target, ac->user) : strcmp(ac->user, target))
            continue;
        struct hpf_mutation m = {
            .op = HPF_MUT_ACCEPT_DEL, .user = ac->user, .target = ac->from, .channel = ac->channel};
        g_array_append_val(muts, m);
    }
}

int admin_share_type(const struct snapshot *s, const char *from, const char *to, const char *chan)
{
    gboolean to_group;
    const char *target = split_target(to, &to_group);
    return stored_share_type(s, from, target, to_group, chan);
}

gboolean admin_share_widens(int old_type, int new_type)
{
    return old_type == HPF_SHARE_SHARES && new_type == HPF_SHARE_ALL;
}

gboolean admin_share_set(struct admin *a, const char *from, const char *to, const char *chan,
                         int type, struct admin_share_change *change, GError **error)
{
    gboolean to_group;
    const char *target = split_target(to, &to_group);
    CHECK_NAME("user", from);
    CHECK_NAME(to_group ? "group" : "user", target);
    CHECK_CHANNEL(chan);
    if (type != HPF_SHARE_SHARES && type != HPF_SHARE_ALL)
        return bad(error, HPF_ERR_INVALID, "bad share type: use shares or shares_all");
    if (!to_group && !strcmp(from, target))
        return bad(error, HPF_ERR_INVALID,
                   "'%s' cannot share with itself: everyone reads "
                   "their own messages",
                   from);
    struct snapshot *s = admin_snapshot(a, error);
    if (!s)
        return FALSE;
    int old = stored_share_type(s, from, target, to_group, chan);
    GArray *muts = g_array_new(FALSE, TRUE, sizeof(struct hpf_mutation));
    struct hpf_mutation m = {.op = HPF_MUT_SHARE_ADD,
                             .user = from,
                             .target = target,
                             .target_is_group = to_group,
                             .channel = chan,
                             .share_type = type};
    g_array_append_val(muts, m);
    if (admin_share_widens(old, type))
        void_accepts(s, from, target, to_group, chan, muts);
    char *was = old < 0 ? g_strdup("new")
                        : g_strdup_printf("was %s; %u acceptance(s) withdrawn",
                                          share_type_name(old), muts->len - 1);
    gboolean ok =
        admin_apply_noted(a, (struct hpf_mutation *)muts->data, muts->len, NULL, was, error);
    g_free(was);
    if (ok && change) {
        change->old_type = old;
        change->voided = muts->len - 1;
    }
    g_array_free(muts, TRUE);
    snapshot_free(s);
    return ok;
}

gboolean admin_share_add(struct admin *a, const char *from, const char *to, const char *chan,
                         int type, GError **error)
{
    return admin_share_set(a, from, to, chan, type, NULL, error);
}

gboolean admin_share_del(struct admin *a, const char *from, const char *to, const char *chan,
                         GError **error)
{
    gboolean to_group;
    const char *target = split_target(to, &to_group);
    CHECK_NAME("user", from);
    CHECK_NAME(to_group ? "group" : "user", target);
    /* Any stored channel can be removed, even one from before the name rule. */
    if (!chan || !*chan)
        return bad(error, HPF_ERR_INVALID, "empty channel name");
    struct hpf_mutation m = {.op = HPF_MUT_SHARE_DEL,
                             .user = from,
                             .target = target,
                             .target_is_group = to_group,
                             .channel = chan};
    return apply(a, &m, 1, error);
}

gboolean admin_accept(struct admin *a, const char *user, const char *from, const char *chan,
                      gboolean accept, GError **error)
{
    CHECK_NAME("user", user);
    CHECK_NAME("user", from);
    if (accept)
        CHECK_CHANNEL(chan);
    else if (!chan || !*chan)
        return bad(error, HPF_ERR_INVALID, "empty channel name");
    struct hpf_mutation m = {.op = accept ? HPF_MUT_ACCEPT_ADD : HPF_MUT_ACCEPT_DEL,
                             .user = user,
                             .target = from,
                             .channel = chan};
    return apply(a, &m, 1, error);
}

gboolean admin_decline(struct admin *a, const char *user, const char *from, const char *chan,
                       gboolean decline, GError **error)
{
    CHECK_NAME("user", user);
    CHECK_NAME("user", from);
    if (decline)
        CHECK_CHANNEL(chan);
    else if (!chan || !*chan)
        return bad(error, HPF_ERR_INVALID, "empty channel name");
    const struct hpf_plugin *d = a->storage->desc;
    if (d->abi_minor < 5)
        return bad(error, HPF_ERR_UNSUPPORTED,
                   "storage plugin '%s' (ABI %d.%d) cannot store declined offers: it needs "
                   "ABI 1.5",
                   d->name, d->abi_major, d->abi_minor);
    struct hpf_mutation m = {.op = decline ? HPF_MUT_DECLINE_ADD : HPF_MUT_DECLINE_DEL,
                             .user = user,
                             .target = from,
                             .channel = chan};
    return apply(a, &m, 1, error);
}

gboolean admin_offer_answer(struct admin *a, const char *user, const char *from, const char *chan,
                            enum offer_state now, enum offer_state want, GError **error)
{
    if (want == now)
        return TRUE;
    if (want == OFFER_ACCEPTED)
        return admin_accept(a, user, from, chan, TRUE, error);
    if (want == OFFER_DECLINED)
        return admin_decline(a, user, from, chan, TRUE, error);
    if (now == OFFER_ACCEPTED)
        return admin_accept(a, user, from, chan, FALSE, error);
    return admin_decline(a, user, from, chan, FALSE, error);
}

static char *new_secret(void)
{
    guint8 raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return NULL;
    GString *hex = g_string_sized_new(2 * sizeof raw);
    for (gsize i = 0; i < sizeof raw; i++)
        g_string_append_printf(hex, "%02x", raw[i]);
    return g_string_free(hex, FALSE);
}

gboolean admin_authkey_add(struct admin *a, const char *owner, const char *ident,
                           const char *secret, char **publish, char **subscribe, char **secret_out,
                           GError **error)
{
    CHECK_NAME("user", owner);
    CHECK_IDENT(ident);
    for (char **c = publish; c && *c; c++)
        CHECK_CHANNEL(*c);
    for (char **c = subscribe; c && *c; c++)
        CHECK_CHANNEL(*c);
    if (secret)
        CHECK_SECRET(secret);
    if (!need_explicit_user(a, owner, error))
        return FALSE;
    char *generated = secret ? NULL : new_secret();
    if (!secret && !generated)
        return bad(error, HPF_ERR_IO, "cannot generate a secret: RAND_bytes failed");
    struct hpf_authkey key = {
        .ident = ident,
        .owner = owner,
        .secret = secret ? secret : generated,
        .publish = (const char *const *)publish,
        .n_publish = publish ? g_strv_length(publish) : 0,
        .subscribe = (const char *const *)subscribe,
        .n_subscribe = subscribe ? g_strv_length(subscribe) : 0,
    };
    struct hpf_mutation m = {.op = HPF_MUT_AUTHKEY_ADD, .authkey = &key};
    gboolean ok = apply(a, &m, 1, error);
    if (ok && secret_out)
        *secret_out = g_strdup(key.secret);
    g_free(generated);
    return ok;
}

gboolean admin_authkey_set(struct admin *a, const char *ident, const char *owner,
                           const char *secret, char **publish, char **subscribe, GError **error)
{
    CHECK_IDENT(ident);
    if (owner)
        CHECK_NAME("user", owner);
    for (char **c = publish; c && *c; c++)
        CHECK_CHANNEL(*c);
    for (char **c = subscribe; c && *c; c++)
        CHECK_CHANNEL(*c);
    if (secret)
        CHECK_SECRET(secret);
    struct snapshot *s = admin_snapshot(a, error);
    if (!s)
        return FALSE;
    const struct snap_authkey *k = g_hash_table_lookup(s->authkey_by_ident, ident);
    if (!k) {
        snapshot_free(s);
        return bad(error, HPF_ERR_NOTFOUND, "authkey '%s' not found", ident);
    }
    g_ptr_array_add(k->publish, NULL);
    g_ptr_array_add(k->subscribe, NULL);
    char **pub = publish ? publish : (char **)k->publish->pdata;
    char **sub = subscribe ? subscribe : (char **)k->subscribe->pdata;
    struct hpf_authkey key = {
        .ident = ident,
        .owner = owner ? owner : k->owner,
        .secret = secret ? secret : k->secret,
        .publish = (const char *const *)pub,
        .n_publish = g_strv_length(pub),
        .subscribe = (const char *const *)sub,
        .n_subscribe = g_strv_length(sub),
    };
    struct hpf_mutation m = {.op = HPF_MUT_AUTHKEY_ADD, .authkey = &key, .replace = true};
    /* That the secret changed is recorded; the secret is not. */
    GString *changed = g_string_new("");
    if (owner && strcmp(owner, k->owner))
        g_string_append_printf(changed, "owner was %s", k->owner);
    if (secret && strcmp(secret, k->secret))
        g_string_append_printf(changed, "%ssecret changed", changed->len ? "; " : "");
    gboolean ok = admin_apply_noted(a, &m, 1, NULL, changed->len ? changed->str : NULL, error);
    g_string_free(changed, TRUE);
    snapshot_free(s);
    return ok;
}

gboolean admin_authkey_regenerate(struct admin *a, const char *ident, char **secret_out,
                                  GError **error)
{
    char *secret = new_secret();
    if (!secret)
        return bad(error, HPF_ERR_IO, "cannot generate a secret: RAND_bytes failed");
    gboolean ok = admin_authkey_set(a, ident, NULL, secret, NULL, NULL, error);
    if (ok && secret_out)
        *secret_out = g_steal_pointer(&secret);
    g_free(secret);
    return ok;
}

gboolean admin_authkey_del(struct admin *a, const char *ident, GError **error)
{
    struct hpf_authkey key = {.ident = ident};
    struct hpf_mutation m = {.op = HPF_MUT_AUTHKEY_DEL, .authkey = &key};
    return apply(a, &m, 1, error);
}

/* ---- readers, explained ---- */

void admin_reader_free(gpointer p)
{
    struct admin_reader *r = p;
    g_free(r->user);
    g_free(r->path);
    g_free(r);
}

/*
 * Breadth-first from the publisher, remembering how each reader was first
 * reached.  A second implementation of the rule, kept deliberately simple
 * (it walks the snapshot); the broker uses the flattened table.
 */
GPtrArray *admin_readers(const struct snapshot *s, const char *user, const char *chan,
                         gboolean require_accept)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(admin_reader_free);
    GHashTable *path = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GQueue queue = G_QUEUE_INIT;

    g_hash_table_insert(path, g_strdup(user), g_strdup("(publisher)"));
    struct admin_reader *self = g_new0(struct admin_reader, 1);
    self->user = g_strdup(user);
    self->path = g_strdup("(publisher)");
    g_ptr_array_add(out, self);
    g_queue_push_tail(&queue, g_strdup(user));

    while (!g_queue_is_empty(&queue)) {
        char *w = g_queue_pop_head(&queue);
        gboolean is_pub = !strcmp(w, user);
        const char *prefix = is_pub ? w : g_hash_table_lookup(path, w);
        for (guint i = 0; i < s->shares->len; i++) {
            const struct snap_share *sh = s->shares->pdata[i];
            if (strcmp(sh->from, w) || strcmp(sh->channel, chan))
                continue;
            if (!is_pub && sh->type != HPF_SHARE_ALL)
                continue;
            for (guint j = 0; j < (sh->to_group ? s->members->len : 1); j++) {
                const char *t;
                if (sh->to_group) {
                    const struct snap_member *m = s->members->pdata[j];
                    if (strcmp(m->group, sh->to))
                        continue;
                    t = m->user;
                } else {
                    t = sh->to;
                }
                if (g_hash_table_contains(path, t))
                    continue;
                if (require_accept && !snapshot_has_accept(s, t, sh->from, chan))
                    continue;
                char *p = g_strdup_printf("%s -%s-> %s%s", prefix, share_type_name(sh->type),
                                          sh->to_group ? "@" : "", sh->to);
                g_hash_table_insert(path, g_strdup(t), p);
                struct admin_reader *r = g_new0(struct admin_reader, 1);
                r->user = g_strdup(t);
                r->path = g_strdup(p);
                g_ptr_array_add(out, r);
                g_queue_push_tail(&queue, g_strdup(t));
            }
        }
        g_free(w);
    }
    g_hash_table_unref(path);
    return out;
}

/* Recipients of sh (its user, or its group's members), each once per call of fn. */
static void each_recipient(const struct snapshot *s, const struct snap_share *sh,
                           void (*fn)(const char *user, gpointer data), gpointer data)
{
    if (!sh->to_group) {
        fn(sh->to, data);
        return;
    }
    for (guint j = 0; j < s->members->len; j++) {
        const struct snap_member *m = s->members->pdata[j];
        if (!strcmp(m->group, sh->to))
            fn(m->user, data);
    }
}

struct pending_walk {
    const struct snapshot *s;
    const struct snap_share *sh;
    const char *prefix;  /* the path that reaches sh->from */
    GHashTable *readers; /* users who read already */
    GHashTable *seen;    /* pending users found so far */
    GPtrArray *out;
};

static void pending_one(const char *t, gpointer data)
{
    struct pending_walk *w = data;
    if (g_hash_table_contains(w->readers, t) || g_hash_table_contains(w->seen, t) ||
        snapshot_has_accept(w->s, t, w->sh->from, w->sh->channel))
        return;
    g_hash_table_add(w->seen, g_strdup(t));
    struct admin_reader *r = g_new0(struct admin_reader, 1);
    r->user = g_strdup(t);
    r->path = g_strdup_printf("%s -%s-> %s%s", w->prefix, share_type_name(w->sh->type),
                              w->sh->to_group ? "@" : "", w->sh->to);
    r->declined = snapshot_offer_state(w->s, t, w->sh->from, w->sh->channel) == OFFER_DECLINED;
    g_ptr_array_add(w->out, r);
}

GPtrArray *admin_pending_readers(const struct snapshot *s, const char *user, const char *chan,
                                 const GPtrArray *readers)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(admin_reader_free);
    GHashTable *is_reader = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < readers->len; i++)
        g_hash_table_add(is_reader, ((struct admin_reader *)readers->pdata[i])->user);
    for (guint i = 0; i < readers->len; i++) {
        const struct admin_reader *rd = readers->pdata[i];
        gboolean is_pub = !strcmp(rd->user, user);
        for (guint k = 0; k < s->shares->len; k++) {
            const struct snap_share *sh = s->shares->pdata[k];
            if (strcmp(sh->from, rd->user) || strcmp(sh->channel, chan) ||
                (!is_pub && sh->type != HPF_SHARE_ALL))
                continue;
            struct pending_walk w = {s, sh, is_pub ? user : rd->path, is_reader, seen, out};
            each_recipient(s, sh, pending_one, &w);
        }
    }
    g_hash_table_unref(seen);
    g_hash_table_unref(is_reader);
    return out;
}

/* ---- Graphviz ---- */

static void dot_id(GString *out, const char *prefix, const char *name)
{
    g_string_append_printf(out, "\"%s", prefix);
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
}

char *admin_graph_dot(const struct snapshot *s)
{
    GString *out = g_string_new("digraph hpfriends {\n"
                                "  rankdir=LR;\n"
                                "  node [fontname=\"Helvetica\"];\n"
                                "  edge [fontname=\"Helvetica\", fontsize=10];\n");
    GHashTable *users = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < s->users->len; i++)
        g_hash_table_add(users, s->users->pdata[i]);
    for (guint i = 0; i < s->authkeys->len; i++)
        g_hash_table_add(users, ((struct snap_authkey *)s->authkeys->pdata[i])->owner);
    GList *names = g_list_sort(g_hash_table_get_keys(users), (GCompareFunc)strcmp);
    for (GList *l = names; l; l = l->next) {
        g_string_append(out, "  ");
        dot_id(out, "u:", l->data);
        g_string_append(out, " [label=");
        dot_id(out, "", l->data);
        g_string_append(out, ", shape=ellipse];\n");
    }
    g_list_free(names);
    g_hash_table_unref(users);
    for (guint i = 0; i < s->groups->len; i++) {
        const struct snap_group *g = s->groups->pdata[i];
        g_string_append(out, "  ");
        dot_id(out, "g:", g->name);
        g_string_append(out, " [label=");
        dot_id(out, "@", g->name);
        g_string_append(out, ", shape=box, style=rounded];\n");
    }
    for (guint i = 0; i < s->members->len; i++) {
        const struct snap_member *m = s->members->pdata[i];
        g_string_append(out, "  ");
        dot_id(out, "g:", m->group);
        g_string_append(out, " -> ");
        dot_id(out, "u:", m->user);
        g_string_append(out, " [style=dashed, arrowhead=none, label=\"member\"];\n");
    }
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        g_string_append(out, "  ");
        dot_id(out, "u:", sh->from);
        g_string_append(out, " -> ");
        dot_id(out, sh->to_group ? "g:" : "u:", sh->to);
        /* The label is "CHANNEL\nTYPE": escape the channel, keep the \n. */
        g_string_append(out, " [label=");
        dot_id(out, "", sh->channel);
        g_string_truncate(out, out->len - 1);
        g_string_append_printf(out, "\\n%s\"", share_type_name(sh->type));
        g_string_append_printf(out, "%s];\n", sh->type == HPF_SHARE_ALL ? ", style=bold" : "");
    }
    g_string_append(out, "}\n");
    return g_string_free(out, FALSE);
}
