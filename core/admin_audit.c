/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The audit trail, seen from the front ends: every batch admin.c (and
 * import) hands to storage gets one HPF_MUT_AUDIT record appended, in the
 * same apply(), saying who did it, to whose object, what and when.  So
 * the record is stored exactly when the change is, for hpfriendsctl and
 * the console alike.  The record is built from the mutations themselves
 * (plus a note the caller may add), never from secrets or password
 * hashes, and every text is escaped and cut to the storage bounds, so a
 * change is never refused because of its record.  A storage plugin older
 * than ABI 1.5 (or one without audit_list) keeps no trail: changes go
 * through unrecorded and listings say so.
 */
#include "admin.h"

#include <hpfriends/names.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

gboolean admin_audit_supported(const struct admin *a)
{
    const struct hpf_plugin *d = a->storage->desc;
    return d->abi_minor >= 5 && d->storage->audit_list;
}

char *admin_ctl_actor(void)
{
    const struct passwd *pw = getpwuid(geteuid());
    if (pw && pw->pw_name)
        return g_strdup_printf("hpfriendsctl (unix user %s)", pw->pw_name);
    return g_strdup_printf("hpfriendsctl (unix uid %u)", (unsigned)geteuid());
}

/* A text for the record: escaped like a log line, cut at a character to max bytes. */
static char *clean(const char *v, size_t max)
{
    size_t len = v ? strlen(v) : 0;
    char *out = g_malloc(max + 1);
    log_escape_into(v ? v : "", len, out, max + 1);
    return out;
}

/* What the record says, before clean(). */
struct note {
    const char *action;
    char *user;   /* whose object */
    char *object; /* what */
    GString *detail;
};

static const char *group_owner(const struct snapshot *s, const char *group)
{
    for (guint i = 0; s && i < s->groups->len; i++) {
        const struct snap_group *g = s->groups->pdata[i];
        if (!strcmp(g->name, group))
            return g->owner;
    }
    return NULL;
}

static const char *key_owner(const struct snapshot *s, const char *ident)
{
    const struct snap_authkey *k = s ? g_hash_table_lookup(s->authkey_by_ident, ident) : NULL;
    return k ? k->owner : NULL;
}

static void channels(GString *d, const char *what, const char *const *c, size_t n)
{
    g_string_append_printf(d, "%s%s: ", d->len ? "; " : "", what);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(d, "%s%s", i ? ", " : "", c[i]);
    if (n == 0)
        g_string_append(d, "(none)");
}

static void note_user(struct note *n, const struct hpf_mutation *m)
{
    n->user = g_strdup(m->user);
    n->object = g_strdup(m->user);
    switch (m->op) {
    case HPF_MUT_USER_ADD:
        n->action = "user add";
        break;
    case HPF_MUT_USER_DEL:
        n->action = "user del";
        g_string_append(n->detail, "with its memberships, shares, acceptances, authkeys and "
                                   "groups");
        break;
    case HPF_MUT_USER_SET_ADMIN:
        n->action = "user admin";
        g_string_append(n->detail, m->flag ? "made an admin" : "no longer an admin");
        break;
    default: /* HPF_MUT_USER_SET_PASSWORD: only whether there is one */
        n->action = "user password";
        g_string_append(n->detail, m->password ? "console password set"
                                               : "console password "
                                                 "removed");
        break;
    }
}

static void note_edge(struct note *n, const struct hpf_mutation *m, const struct snapshot *s)
{
    switch (m->op) {
    case HPF_MUT_GROUP_ADD:
    case HPF_MUT_GROUP_DEL: {
        gboolean add = m->op == HPF_MUT_GROUP_ADD;
        n->action = add ? "group add" : "group del";
        n->user = g_strdup(add ? m->user : group_owner(s, m->group));
        n->object = g_strdup_printf("@%s", m->group);
        if (!add)
            g_string_append(n->detail, "with its members and the shares to it");
        break;
    }
    case HPF_MUT_MEMBER_ADD:
    case HPF_MUT_MEMBER_DEL:
        n->action = m->op == HPF_MUT_MEMBER_ADD ? "member add" : "member del";
        n->user = g_strdup(group_owner(s, m->group));
        n->object = g_strdup_printf("%s in @%s", m->user, m->group);
        break;
    case HPF_MUT_SHARE_ADD:
    case HPF_MUT_SHARE_DEL:
        n->action = m->op == HPF_MUT_SHARE_ADD ? "share set" : "share del";
        n->user = g_strdup(m->user);
        n->object = g_strdup_printf("%s -> %s%s on %s", m->user, m->target_is_group ? "@" : "",
                                    m->target, m->channel);
        if (m->op == HPF_MUT_SHARE_ADD)
            g_string_append_printf(n->detail, "type %s", hpf_share_type_name(m->share_type));
        break;
    default: /* HPF_MUT_ACCEPT_*, HPF_MUT_DECLINE_*: the recipient's answer */
        n->action = m->op == HPF_MUT_ACCEPT_ADD    ? "offer accept"
                    : m->op == HPF_MUT_DECLINE_ADD ? "offer decline"
                    : m->op == HPF_MUT_DECLINE_DEL ? "offer decline withdrawn"
                                                   : "offer reject";
        n->user = g_strdup(m->user);
        n->object = g_strdup_printf("%s -> %s on %s", m->target, m->user, m->channel);
        break;
    }
}

static void note_key(struct note *n, const struct hpf_mutation *m, const struct snapshot *s)
{
    const struct hpf_authkey *k = m->authkey;
    n->object = g_strdup(k->ident);
    if (m->op == HPF_MUT_AUTHKEY_DEL) {
        n->action = "authkey del";
        n->user = g_strdup(key_owner(s, k->ident));
        return;
    }
    n->action = m->replace ? "authkey set" : "authkey add";
    n->user = g_strdup(k->owner && *k->owner ? k->owner : k->ident);
    /* Channels are no secret; the secret itself never enters the record. */
    channels(n->detail, "publish", k->publish, k->n_publish);
    channels(n->detail, "subscribe", k->subscribe, k->n_subscribe);
}

static gboolean needs_snapshot(int op)
{
    return op == HPF_MUT_GROUP_DEL || op == HPF_MUT_MEMBER_ADD || op == HPF_MUT_MEMBER_DEL ||
           op == HPF_MUT_AUTHKEY_DEL;
}

/* The record of a batch: its first mutation is the change; the rest follow from it. */
static void describe(struct admin *a, const struct hpf_mutation *m, size_t n, struct note *out)
{
    struct snapshot *s = NULL;
    if (needs_snapshot(m->op))
        s = admin_snapshot(a, NULL); /* only for the owner's name: none is no failure */
    switch (m->op) {
    case HPF_MUT_USER_ADD:
    case HPF_MUT_USER_DEL:
    case HPF_MUT_USER_SET_ADMIN:
    case HPF_MUT_USER_SET_PASSWORD:
        note_user(out, m);
        if (m->op == HPF_MUT_USER_ADD && n > 1 && m[1].op == HPF_MUT_USER_SET_ADMIN)
            g_string_append(out->detail, "an admin");
        break;
    case HPF_MUT_AUTHKEY_ADD:
    case HPF_MUT_AUTHKEY_DEL:
        note_key(out, m, s);
        break;
    case HPF_MUT_GROUP_ADD:
    case HPF_MUT_GROUP_DEL:
    case HPF_MUT_MEMBER_ADD:
    case HPF_MUT_MEMBER_DEL:
    case HPF_MUT_SHARE_ADD:
    case HPF_MUT_SHARE_DEL:
    case HPF_MUT_ACCEPT_ADD:
    case HPF_MUT_ACCEPT_DEL:
    case HPF_MUT_DECLINE_ADD:
    case HPF_MUT_DECLINE_DEL:
        note_edge(out, m, s);
        break;
    case HPF_MUT_CLEAR:
        out->action = "clear";
        out->object = g_strdup("everything");
        break;
    default:
        out->action = "change";
        g_string_append_printf(out->detail, "storage operation %d", m->op);
        break;
    }
    if (s)
        snapshot_free(s);
}

gboolean admin_apply_noted(struct admin *a, const struct hpf_mutation *m, size_t n,
                           const char *action, const char *detail, GError **error)
{
    const struct hpf_storage_ops *ops = a->storage->desc->storage;
    char err[512] = "";
    if (!admin_audit_supported(a) || n == 0) {
        int rc = ops->apply(a->storage->inst, m, n, err, sizeof err);
        if (rc != HPF_OK)
            g_set_error(error, ADMIN_ERROR, rc, "%s", *err ? err : hpf_strerror(rc));
        return rc == HPF_OK;
    }
    struct note note = {.detail = g_string_new("")};
    describe(a, m, n, &note);
    if (action)
        note.action = action;
    if (detail)
        g_string_append_printf(note.detail, "%s%s", note.detail->len ? "; " : "", detail);
    char *actor = clean(a->actor ? a->actor : "unknown", HPF_AUDIT_TEXT_MAX);
    char *user = clean(note.user, HPF_NAME_MAX);
    char *object = clean(note.object, HPF_AUDIT_TEXT_MAX);
    char *more = clean(note.detail->str, HPF_AUDIT_TEXT_MAX);
    struct hpf_audit_record rec = {
        .time = g_get_real_time() / G_USEC_PER_SEC,
        .actor = *actor ? actor : "unknown",
        .user = user,
        .action = note.action,
        .object = object,
        .detail = more,
        .keep = a->audit_keep,
    };
    struct hpf_mutation *all = g_new(struct hpf_mutation, n + 1);
    memcpy(all, m, n * sizeof *m);
    all[n] = (struct hpf_mutation){.op = HPF_MUT_AUDIT, .audit = &rec};
    int rc = ops->apply(a->storage->inst, all, n + 1, err, sizeof err);
    if (rc != HPF_OK)
        g_set_error(error, ADMIN_ERROR, rc, "%s", *err ? err : hpf_strerror(rc));
    g_free(all);
    g_free(actor);
    g_free(user);
    g_free(object);
    g_free(more);
    g_free(note.user);
    g_free(note.object);
    g_string_free(note.detail, TRUE);
    return rc == HPF_OK;
}

void admin_audit_entry_free(gpointer p)
{
    struct admin_audit_entry *e = p;
    g_free(e->actor);
    g_free(e->user);
    g_free(e->action);
    g_free(e->object);
    g_free(e->detail);
    g_free(e);
}

static void take(void *ud, const struct hpf_audit_record *r)
{
    GPtrArray *out = ud;
    struct admin_audit_entry *e = g_new0(struct admin_audit_entry, 1);
    e->id = r->id;
    e->time = r->time;
    e->actor = g_strdup(r->actor ? r->actor : "");
    e->user = g_strdup(r->user ? r->user : "");
    e->action = g_strdup(r->action ? r->action : "");
    e->object = g_strdup(r->object ? r->object : "");
    e->detail = g_strdup(r->detail ? r->detail : "");
    g_ptr_array_add(out, e);
}

GPtrArray *admin_audit_list(struct admin *a, const struct hpf_audit_query *q, GError **error)
{
    if (!admin_audit_supported(a)) {
        g_set_error(error, ADMIN_ERROR, HPF_ERR_UNSUPPORTED,
                    "this storage keeps no audit trail (storage plugin '%s' is ABI %d.%d; the "
                    "audit trail needs 1.5)",
                    a->storage->desc->name, a->storage->desc->abi_major,
                    a->storage->desc->abi_minor);
        return NULL;
    }
    if (q->limit < 1 || q->limit > HPF_AUDIT_LIST_MAX) {
        g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID, "bad limit %u: use 1-%d", q->limit,
                    HPF_AUDIT_LIST_MAX);
        return NULL;
    }
    GPtrArray *out = g_ptr_array_new_with_free_func(admin_audit_entry_free);
    int rc = a->storage->desc->storage->audit_list(a->storage->inst, q, take, out);
    if (rc != HPF_OK) {
        g_ptr_array_unref(out);
        g_set_error(error, ADMIN_ERROR, rc, "reading the audit trail: %s", hpf_strerror(rc));
        return NULL;
    }
    return out;
}
