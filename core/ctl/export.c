/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfriendsctl export / import: the whole dataset as one JSON document,
 * one array per kind (users, groups, shares, accepts, authkeys, declines), each
 * written and read by a function of its own; an import checks every name
 * with hpf_name_check() and applies everything as one storage transaction.
 */
#include <hpfriends/names.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "admin.h"
#include "jsonutil.h"

#define EXPORT_FORMAT    "hpfriends-export"
#define EXPORT_VERSION   1
#define IMPORT_MAX_DEPTH 32

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static gint cmp_group(gconstpointer a, gconstpointer b)
{
    const struct snap_group *x = *(struct snap_group *const *)a,
                            *y = *(struct snap_group *const *)b;
    return strcmp(x->name, y->name);
}

static gint cmp_share(gconstpointer a, gconstpointer b)
{
    const struct snap_share *x = *(struct snap_share *const *)a,
                            *y = *(struct snap_share *const *)b;
    int c = strcmp(x->from, y->from);
    if (!c)
        c = x->to_group - y->to_group;
    if (!c)
        c = strcmp(x->to, y->to);
    if (!c)
        c = strcmp(x->channel, y->channel);
    return c;
}

static gint cmp_accept(gconstpointer a, gconstpointer b)
{
    const struct snap_accept *x = *(struct snap_accept *const *)a,
                             *y = *(struct snap_accept *const *)b;
    int c = strcmp(x->user, y->user);
    if (!c)
        c = strcmp(x->from, y->from);
    if (!c)
        c = strcmp(x->channel, y->channel);
    return c;
}

static gint cmp_authkey(gconstpointer a, gconstpointer b)
{
    const struct snap_authkey *x = *(struct snap_authkey *const *)a,
                              *y = *(struct snap_authkey *const *)b;
    return strcmp(x->ident, y->ident);
}

/*
 * One exporter per kind: each sorts its rows (the order is part of the
 * format, so two exports of the same data are equal) and adds them to the
 * open array of its kind.
 */

/* Users: explicit ones and every authkey owner, so an import recreates them. */
static void export_users(JsonBuilder *jb, struct snapshot *s)
{
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    GPtrArray *users = g_ptr_array_new();
    for (guint i = 0; i < s->users->len; i++)
        if (g_hash_table_add(seen, s->users->pdata[i]))
            g_ptr_array_add(users, s->users->pdata[i]);
    for (guint i = 0; i < s->authkeys->len; i++) {
        char *owner = ((struct snap_authkey *)s->authkeys->pdata[i])->owner;
        if (g_hash_table_add(seen, owner))
            g_ptr_array_add(users, owner);
    }
    g_hash_table_unref(seen);
    g_ptr_array_sort(users, cmp_str);
    for (guint i = 0; i < users->len; i++) {
        const char *name = users->pdata[i];
        json_builder_begin_object(jb);
        jsonutil_add_str(jb, "name", name);
        jsonutil_add_bool(jb, "admin", g_hash_table_contains(s->admins, name));
        const char *pw = g_hash_table_lookup(s->passwords, name);
        if (pw)
            jsonutil_add_str(jb, "password", pw);
        json_builder_end_object(jb);
    }
    g_ptr_array_unref(users);
}

static void export_groups(JsonBuilder *jb, struct snapshot *s)
{
    g_ptr_array_sort(s->groups, cmp_group);
    for (guint i = 0; i < s->groups->len; i++) {
        const struct snap_group *g = s->groups->pdata[i];
        GPtrArray *members = g_ptr_array_new();
        for (guint j = 0; j < s->members->len; j++) {
            const struct snap_member *m = s->members->pdata[j];
            if (!strcmp(m->group, g->name))
                g_ptr_array_add(members, m->user);
        }
        g_ptr_array_sort(members, cmp_str);
        json_builder_begin_object(jb);
        jsonutil_add_str(jb, "name", g->name);
        jsonutil_add_str(jb, "owner", g->owner);
        jsonutil_add_strv(jb, "members", members);
        json_builder_end_object(jb);
        g_ptr_array_unref(members);
    }
}

static void export_shares(JsonBuilder *jb, struct snapshot *s)
{
    g_ptr_array_sort(s->shares, cmp_share);
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        json_builder_begin_object(jb);
        jsonutil_add_str(jb, "from", sh->from);
        jsonutil_add_str(jb, sh->to_group ? "to_group" : "to_user", sh->to);
        jsonutil_add_str(jb, "channel", sh->channel);
        jsonutil_add_str(jb, "type", share_type_name(sh->type));
        json_builder_end_object(jb);
    }
}

static void export_accepts(JsonBuilder *jb, struct snapshot *s)
{
    g_ptr_array_sort(s->accepts, cmp_accept);
    for (guint i = 0; i < s->accepts->len; i++) {
        const struct snap_accept *ac = s->accepts->pdata[i];
        json_builder_begin_object(jb);
        jsonutil_add_str(jb, "user", ac->user);
        jsonutil_add_str(jb, "from", ac->from);
        jsonutil_add_str(jb, "channel", ac->channel);
        json_builder_end_object(jb);
    }
}

static void export_declines(JsonBuilder *jb, struct snapshot *s)
{
    g_ptr_array_sort(s->declines, cmp_accept);
    for (guint i = 0; i < s->declines->len; i++) {
        const struct snap_accept *d = s->declines->pdata[i];
        json_builder_begin_object(jb);
        jsonutil_add_str(jb, "user", d->user);
        jsonutil_add_str(jb, "from", d->from);
        jsonutil_add_str(jb, "channel", d->channel);
        json_builder_end_object(jb);
    }
}

static void export_authkeys(JsonBuilder *jb, struct snapshot *s)
{
    g_ptr_array_sort(s->authkeys, cmp_authkey);
    for (guint i = 0; i < s->authkeys->len; i++) {
        const struct snap_authkey *k = s->authkeys->pdata[i];
        json_builder_begin_object(jb);
        jsonutil_add_str(jb, "ident", k->ident);
        jsonutil_add_str(jb, "owner", k->owner);
        jsonutil_add_str(jb, "secret", k->secret);
        jsonutil_add_strv(jb, "publish", k->publish);
        jsonutil_add_strv(jb, "subscribe", k->subscribe);
        json_builder_end_object(jb);
    }
}

/* ---- import ---- */

#define MUT_SUMMARY_KINDS 6

struct importer {
    GArray *muts;      /* struct hpf_mutation */
    GPtrArray *keep;   /* things mutations point to */
    const char *where; /* the kind being read, for messages */
    GError *err;
    const struct hpf_plugin *storage; /* what it is imported into */
};

static gboolean fail_at(struct importer *im, guint i, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static gboolean fail_at(struct importer *im, guint i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(&im->err, ADMIN_ERROR, HPF_ERR_INVALID, "import: %s[%u]: %s", im->where, i, what);
    g_free(what);
    return FALSE;
}

/* A required string member that passes the name rule, or NULL (and the error set). */
static const char *str_member(struct importer *im, JsonObject *o, const char *key, guint i)
{
    const char *v = jsonutil_get_str(o, key);
    if (!v) {
        fail_at(im, i, "'%s' must be a string", key);
        return NULL;
    }
    /* json-glib lets escapes through that make invalid UTF-8: the next export would break. */
    gboolean secret = !strcmp(key, "secret") || !strcmp(key, "password");
    const char *why = hpf_name_check(v, secret ? HPF_SECRET_MAX : HPF_NAME_MAX);
    if (why) {
        fail_at(im, i, "'%s' %s", key, why);
        return NULL;
    }
    return v;
}

/*
 * A string list member as a NULL-terminated array kept alive in im->keep;
 * an absent one is empty.  FALSE (and the error set) when it is not a list
 * of names.
 */
static gboolean strv_member(struct importer *im, JsonObject *o, const char *key, guint i,
                            const char *const **out, size_t *n)
{
    JsonNode *node = json_object_get_member(o, key);
    *out = NULL;
    *n = 0;
    if (!node)
        return TRUE;
    if (!JSON_NODE_HOLDS_ARRAY(node))
        return fail_at(im, i, "'%s' must be an array of strings", key);
    JsonArray *a = json_node_get_array(node);
    guint len = json_array_get_length(a);
    const char **v = g_new0(const char *, len + 1);
    g_ptr_array_add(im->keep, v);
    for (guint j = 0; j < len; j++) {
        JsonNode *e = json_array_get_element(a, j);
        if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
            return fail_at(im, i, "'%s' must be an array of strings", key);
        v[j] = json_node_get_string(e);
        const char *why = hpf_name_check(v[j], HPF_NAME_MAX);
        if (why)
            return fail_at(im, i, "'%s' entry %u %s", key, j + 1, why);
    }
    *out = v;
    *n = len;
    return TRUE;
}

static void push(struct importer *im, struct hpf_mutation m) { g_array_append_val(im->muts, m); }

/* One importer per kind: the mutations of one element of its array. */

/* The name of a user or group the import creates: held to the rule of new names. */
static const char *new_name_member(struct importer *im, JsonObject *o, guint i)
{
    const char *v = str_member(im, o, "name", i);
    const char *why = v ? hpf_principal_name_check(v, HPF_NAME_MAX) : NULL;
    if (why) {
        fail_at(im, i, "'name' %s", why);
        return NULL;
    }
    return v;
}

static gboolean import_user(struct importer *im, JsonObject *o, guint i)
{
    const char *name = new_name_member(im, o, i);
    if (!name)
        return FALSE;
    push(im, (struct hpf_mutation){.op = HPF_MUT_USER_ADD, .user = name});
    int admin = jsonutil_get_bool(o, "admin");
    if (admin < 0)
        return fail_at(im, i, "'admin' must be true or false");
    if (admin)
        push(im, (struct hpf_mutation){.op = HPF_MUT_USER_SET_ADMIN, .user = name, .flag = true});
    if (!json_object_has_member(o, "password"))
        return TRUE;
    const char *pw = str_member(im, o, "password", i);
    if (pw)
        push(im,
             (struct hpf_mutation){.op = HPF_MUT_USER_SET_PASSWORD, .user = name, .password = pw});
    return pw != NULL;
}

static gboolean import_group(struct importer *im, JsonObject *o, guint i)
{
    const char *name = new_name_member(im, o, i);
    const char *owner = name ? str_member(im, o, "owner", i) : NULL;
    const char *const *members;
    size_t n;
    if (!owner || !strv_member(im, o, "members", i, &members, &n))
        return FALSE;
    push(im, (struct hpf_mutation){.op = HPF_MUT_GROUP_ADD, .group = name, .user = owner});
    for (size_t j = 0; j < n; j++)
        push(im,
             (struct hpf_mutation){.op = HPF_MUT_MEMBER_ADD, .group = name, .user = members[j]});
    return TRUE;
}

static gboolean import_share(struct importer *im, JsonObject *o, guint i)
{
    gboolean to_group = json_object_has_member(o, "to_group");
    const char *from = str_member(im, o, "from", i);
    const char *to = from ? str_member(im, o, to_group ? "to_group" : "to_user", i) : NULL;
    const char *chan = to ? str_member(im, o, "channel", i) : NULL;
    const char *type = chan ? str_member(im, o, "type", i) : NULL;
    if (!type)
        return FALSE;
    int t = share_type_parse(type);
    if (t < 0)
        return fail_at(im, i, "'type' must be shares or shares_all");
    push(im, (struct hpf_mutation){.op = HPF_MUT_SHARE_ADD,
                                   .user = from,
                                   .target = to,
                                   .target_is_group = to_group,
                                   .channel = chan,
                                   .share_type = t});
    return TRUE;
}

static gboolean import_accept(struct importer *im, JsonObject *o, guint i)
{
    const char *user = str_member(im, o, "user", i);
    const char *from = user ? str_member(im, o, "from", i) : NULL;
    const char *chan = from ? str_member(im, o, "channel", i) : NULL;
    if (!chan)
        return FALSE;
    push(im, (struct hpf_mutation){
                 .op = HPF_MUT_ACCEPT_ADD, .user = user, .target = from, .channel = chan});
    return TRUE;
}

static gboolean import_decline(struct importer *im, JsonObject *o, guint i)
{
    const char *user = str_member(im, o, "user", i);
    const char *from = user ? str_member(im, o, "from", i) : NULL;
    const char *chan = from ? str_member(im, o, "channel", i) : NULL;
    if (!chan)
        return FALSE;
    if (im->storage->abi_minor < 5)
        return fail_at(im, i,
                       "storage plugin '%s' (ABI %d.%d) cannot store declined offers: "
                       "it needs ABI 1.5",
                       im->storage->name, im->storage->abi_major, im->storage->abi_minor);
    push(im, (struct hpf_mutation){
                 .op = HPF_MUT_DECLINE_ADD, .user = user, .target = from, .channel = chan});
    return TRUE;
}

static gboolean import_authkey(struct importer *im, JsonObject *o, guint i)
{
    const char *ident = str_member(im, o, "ident", i);
    const char *owner = ident ? str_member(im, o, "owner", i) : NULL;
    const char *secret = owner ? str_member(im, o, "secret", i) : NULL;
    if (!secret)
        return FALSE;
    struct hpf_authkey *k = g_new0(struct hpf_authkey, 1);
    g_ptr_array_add(im->keep, k);
    k->ident = ident;
    k->owner = owner;
    k->secret = secret;
    if (!strv_member(im, o, "publish", i, &k->publish, &k->n_publish) ||
        !strv_member(im, o, "subscribe", i, &k->subscribe, &k->n_subscribe))
        return FALSE;
    push(im, (struct hpf_mutation){.op = HPF_MUT_AUTHKEY_ADD, .authkey = k});
    return TRUE;
}

/*
 * The kinds of the document, in the order they are written and read back
 * (an import adds users before the groups, shares and keys that name them).
 * "declines" came with storage ABI 1.5 and is written only when there are
 * some, so an export without them is what older builds wrote and read;
 * a build before it ignores the array (its offers read as pending).
 */
static const struct kind {
    const char *name; /* its array's member name */
    void (*export)(JsonBuilder *jb, struct snapshot *s);
    gboolean (*import)(struct importer *im, JsonObject *o, guint i);
} kinds[] = {
    {"users", export_users, import_user},          {"groups", export_groups, import_group},
    {"shares", export_shares, import_share},       {"accepts", export_accepts, import_accept},
    {"authkeys", export_authkeys, import_authkey}, {"declines", export_declines, import_decline},
};

char *admin_export(struct admin *a, GError **error)
{
    struct snapshot *s = admin_snapshot(a, error);
    if (!s)
        return NULL;
    JsonBuilder *jb = json_builder_new();
    json_builder_begin_object(jb);
    jsonutil_add_str(jb, "format", EXPORT_FORMAT);
    json_builder_set_member_name(jb, "version");
    json_builder_add_int_value(jb, EXPORT_VERSION);
    for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
        if (kinds[k].export == export_declines && s->declines->len == 0)
            continue;
        json_builder_set_member_name(jb, kinds[k].name);
        json_builder_begin_array(jb);
        kinds[k].export(jb, s);
        json_builder_end_array(jb);
    }
    json_builder_end_object(jb);
    JsonNode *root = json_builder_get_root(jb);
    char *out = jsonutil_to_text(root, TRUE);
    json_node_unref(root);
    g_object_unref(jb);
    snapshot_free(s);
    return out;
}

/* Every kind's array (an absent one is empty), element by element, after a clear. */
static gboolean collect(struct importer *im, JsonObject *root)
{
    push(im, (struct hpf_mutation){.op = HPF_MUT_CLEAR});
    for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++) {
        im->where = kinds[k].name;
        JsonNode *n = json_object_get_member(root, kinds[k].name);
        if (!n)
            continue;
        if (!JSON_NODE_HOLDS_ARRAY(n)) {
            g_set_error(&im->err, ADMIN_ERROR, HPF_ERR_INVALID, "import: '%s' must be an array",
                        kinds[k].name);
            return FALSE;
        }
        JsonArray *a = json_node_get_array(n);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonNode *e = json_array_get_element(a, i);
            if (!JSON_NODE_HOLDS_OBJECT(e))
                return fail_at(im, i, "must be an object");
            if (!kinds[k].import(im, json_node_get_object(e), i))
                return FALSE;
        }
    }
    return TRUE;
}

/* The audit record's summary of an import: how much of each kind replaced everything. */
static char *import_summary(const GArray *muts)
{
    guint n[MUT_SUMMARY_KINDS] = {0};
    for (guint i = 0; i < muts->len; i++) {
        int op = g_array_index(muts, struct hpf_mutation, i).op;
        if (op == HPF_MUT_USER_ADD)
            n[0]++;
        else if (op == HPF_MUT_GROUP_ADD)
            n[1]++;
        else if (op == HPF_MUT_MEMBER_ADD)
            n[2]++;
        else if (op == HPF_MUT_SHARE_ADD)
            n[3]++;
        else if (op == HPF_MUT_ACCEPT_ADD)
            n[4]++;
        else if (op == HPF_MUT_AUTHKEY_ADD)
            n[5]++;
    }
    return g_strdup_printf("replaced everything with %u users, %u groups, %u memberships, "
                           "%u shares, %u acceptances, %u authkeys",
                           n[0], n[1], n[2], n[3], n[4], n[5]);
}

gboolean admin_import(struct admin *a, const char *json, gsize len, GError **error)
{
    JsonNode *root = NULL;
    gboolean ok = FALSE;
    struct importer im = {
        .muts = g_array_new(FALSE, FALSE, sizeof(struct hpf_mutation)),
        .keep = g_ptr_array_new_with_free_func(g_free),
        .storage = a->storage->desc,
    };

    /* An export nests four deep; a deeper document could run the parser's stack out. */
    char *why = NULL;
    root = jsonutil_parse(json, len, IMPORT_MAX_DEPTH, &why);
    if (!root) {
        g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID, "import: %s", why);
        g_free(why);
        goto out;
    }
    if (!JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID, "import: the document must be an object");
        goto out;
    }
    JsonObject *o = json_node_get_object(root);
    const char *format = jsonutil_get_str(o, "format");
    if (!format || strcmp(format, EXPORT_FORMAT)) {
        g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID,
                    "import: not an hpfriends export (\"format\" must be \"%s\")", EXPORT_FORMAT);
        goto out;
    }
    gint64 version = jsonutil_get_int(o, "version");
    if (version != EXPORT_VERSION) {
        g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID,
                    "import: \"version\" must be %d (the export format this build reads)",
                    EXPORT_VERSION);
        goto out;
    }
    if (!collect(&im, o)) {
        g_propagate_error(error, im.err);
        im.err = NULL;
        goto out;
    }
    /* One audit record for the whole import, in the same apply(). */
    char *summary = import_summary(im.muts);
    GError *e = NULL;
    ok = admin_apply_noted(a, (const struct hpf_mutation *)im.muts->data, im.muts->len, "import",
                           summary, &e);
    g_free(summary);
    if (!ok) {
        g_set_error(error, ADMIN_ERROR, e->code, "import: %s (nothing was changed)", e->message);
        g_error_free(e);
    }
out:
    g_clear_error(&im.err);
    g_array_unref(im.muts);
    g_ptr_array_unref(im.keep);
    if (root)
        json_node_unref(root); /* after apply: the mutations point into it */
    return ok;
}
