/* hpfriendsctl export / import: the whole dataset as one JSON document. */
#include <hpfriends/names.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "admin.h"

#define EXPORT_FORMAT "hpfriends-export"
#define EXPORT_VERSION 1

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static gint cmp_group(gconstpointer a, gconstpointer b)
{
    const struct snap_group *x = *(struct snap_group *const *)a, *y = *(struct snap_group *const *)b;
    return strcmp(x->name, y->name);
}

static gint cmp_share(gconstpointer a, gconstpointer b)
{
    const struct snap_share *x = *(struct snap_share *const *)a, *y = *(struct snap_share *const *)b;
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

static void add_strings(JsonBuilder *jb, const char *name, GPtrArray *list)
{
    json_builder_set_member_name(jb, name);
    json_builder_begin_array(jb);
    for (guint i = 0; i < list->len; i++)
        json_builder_add_string_value(jb, list->pdata[i]);
    json_builder_end_array(jb);
}

char *admin_export(struct admin *a, GError **error)
{
    struct snapshot *s = admin_snapshot(a, error);
    if (!s)
        return NULL;

    /* Users: explicit ones and every authkey owner, so an import recreates them. */
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
    g_ptr_array_sort(s->groups, cmp_group);
    g_ptr_array_sort(s->shares, cmp_share);
    g_ptr_array_sort(s->accepts, cmp_accept);
    g_ptr_array_sort(s->authkeys, cmp_authkey);

    JsonBuilder *jb = json_builder_new();
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "format");
    json_builder_add_string_value(jb, EXPORT_FORMAT);
    json_builder_set_member_name(jb, "version");
    json_builder_add_int_value(jb, EXPORT_VERSION);

    json_builder_set_member_name(jb, "users");
    json_builder_begin_array(jb);
    for (guint i = 0; i < users->len; i++) {
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "name");
        json_builder_add_string_value(jb, users->pdata[i]);
        json_builder_set_member_name(jb, "admin");
        json_builder_add_boolean_value(jb, g_hash_table_contains(s->admins, users->pdata[i]));
        const char *pw = g_hash_table_lookup(s->passwords, users->pdata[i]);
        if (pw) {
            json_builder_set_member_name(jb, "password");
            json_builder_add_string_value(jb, pw);
        }
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);

    json_builder_set_member_name(jb, "groups");
    json_builder_begin_array(jb);
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
        json_builder_set_member_name(jb, "name");
        json_builder_add_string_value(jb, g->name);
        json_builder_set_member_name(jb, "owner");
        json_builder_add_string_value(jb, g->owner);
        add_strings(jb, "members", members);
        json_builder_end_object(jb);
        g_ptr_array_unref(members);
    }
    json_builder_end_array(jb);

    json_builder_set_member_name(jb, "shares");
    json_builder_begin_array(jb);
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "from");
        json_builder_add_string_value(jb, sh->from);
        json_builder_set_member_name(jb, sh->to_group ? "to_group" : "to_user");
        json_builder_add_string_value(jb, sh->to);
        json_builder_set_member_name(jb, "channel");
        json_builder_add_string_value(jb, sh->channel);
        json_builder_set_member_name(jb, "type");
        json_builder_add_string_value(jb, share_type_name(sh->type));
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);

    json_builder_set_member_name(jb, "accepts");
    json_builder_begin_array(jb);
    for (guint i = 0; i < s->accepts->len; i++) {
        const struct snap_accept *ac = s->accepts->pdata[i];
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "user");
        json_builder_add_string_value(jb, ac->user);
        json_builder_set_member_name(jb, "from");
        json_builder_add_string_value(jb, ac->from);
        json_builder_set_member_name(jb, "channel");
        json_builder_add_string_value(jb, ac->channel);
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);

    json_builder_set_member_name(jb, "authkeys");
    json_builder_begin_array(jb);
    for (guint i = 0; i < s->authkeys->len; i++) {
        const struct snap_authkey *k = s->authkeys->pdata[i];
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "ident");
        json_builder_add_string_value(jb, k->ident);
        json_builder_set_member_name(jb, "owner");
        json_builder_add_string_value(jb, k->owner);
        json_builder_set_member_name(jb, "secret");
        json_builder_add_string_value(jb, k->secret);
        add_strings(jb, "publish", k->publish);
        add_strings(jb, "subscribe", k->subscribe);
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);
    json_builder_end_object(jb);

    JsonGenerator *gen = json_generator_new();
    JsonNode *root = json_builder_get_root(jb);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    json_generator_set_indent(gen, 2);
    char *text = json_generator_to_data(gen, NULL);
    char *out = g_strconcat(text, "\n", NULL);
    g_free(text);
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(jb);
    g_ptr_array_unref(users);
    snapshot_free(s);
    return out;
}

/* ---- import ---- */

struct importer {
    GArray *muts;     /* struct hpf_mutation */
    GPtrArray *keep;  /* things mutations point to */
    GError *err;
};

static gboolean fail_at(struct importer *im, const char *where, guint i, const char *what)
{
    g_set_error(&im->err, ADMIN_ERROR, HPF_ERR_INVALID, "import: %s[%u]: %s", where, i, what);
    return FALSE;
}

/* A required string member, or NULL (and the error set). */
static const char *str_member(struct importer *im, JsonObject *o, const char *key,
                              const char *where, guint i)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
        char *what = g_strdup_printf("'%s' must be a string", key);
        fail_at(im, where, i, what);
        g_free(what);
        return NULL;
    }
    const char *v = json_node_get_string(n);
    /* json-glib lets escapes through that make invalid UTF-8: the next export would break. */
    const char *why = hpf_name_check(v, strcmp(key, "secret") && strcmp(key, "password")
                                            ? HPF_NAME_MAX
                                            : HPF_SECRET_MAX);
    if (why) {
        char *what = g_strdup_printf("'%s' %s", key, why);
        fail_at(im, where, i, what);
        g_free(what);
        return NULL;
    }
    return v;
}

static JsonArray *array_member(struct importer *im, JsonObject *root, const char *key)
{
    JsonNode *n = json_object_get_member(root, key);
    if (!n)
        return NULL; /* absent: nothing of that kind */
    if (!JSON_NODE_HOLDS_ARRAY(n)) {
        g_set_error(&im->err, ADMIN_ERROR, HPF_ERR_INVALID, "import: '%s' must be an array", key);
        return NULL;
    }
    return json_node_get_array(n);
}

static JsonObject *object_at(struct importer *im, JsonArray *a, const char *where, guint i)
{
    JsonNode *n = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(n)) {
        fail_at(im, where, i, "must be an object");
        return NULL;
    }
    return json_node_get_object(n);
}

/* Typed reads of optional members: NULL/FALSE/-1 when absent or of another type. */
static const char *opt_string(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

static gint64 opt_int(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return -1;
    return json_node_get_int(n);
}

/* TRUE, FALSE, or -1 when present but not a boolean. */
static int opt_bool(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n)
        return FALSE;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
        return -1;
    return json_node_get_boolean(n);
}

static void push(struct importer *im, struct hpf_mutation m) { g_array_append_val(im->muts, m); }

/* A string list member as a NULL-terminated array kept alive in im->keep. */
static const char **strv_member(struct importer *im, JsonObject *o, const char *key,
                                const char *where, guint i, size_t *n)
{
    JsonNode *node = json_object_get_member(o, key);
    *n = 0;
    if (!node)
        return NULL;
    if (!JSON_NODE_HOLDS_ARRAY(node)) {
        char *what = g_strdup_printf("'%s' must be an array of strings", key);
        fail_at(im, where, i, what);
        g_free(what);
        return (const char **)-1;
    }
    JsonArray *a = json_node_get_array(node);
    guint len = json_array_get_length(a);
    const char **v = g_new0(const char *, len + 1);
    g_ptr_array_add(im->keep, v);
    for (guint j = 0; j < len; j++) {
        JsonNode *e = json_array_get_element(a, j);
        if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING) {
            char *what = g_strdup_printf("'%s' must be an array of strings", key);
            fail_at(im, where, i, what);
            g_free(what);
            return (const char **)-1;
        }
        v[j] = json_node_get_string(e);
        const char *why = hpf_name_check(v[j], HPF_NAME_MAX);
        if (why) {
            char *what = g_strdup_printf("'%s' entry %u %s", key, j + 1, why);
            fail_at(im, where, i, what);
            g_free(what);
            return (const char **)-1;
        }
    }
    *n = len;
    return v;
}

static gboolean collect(struct importer *im, JsonObject *root)
{
    JsonArray *a;
    push(im, (struct hpf_mutation){.op = HPF_MUT_CLEAR});

    if ((a = array_member(im, root, "users")))
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonObject *o = object_at(im, a, "users", i);
            const char *name = o ? str_member(im, o, "name", "users", i) : NULL;
            if (!name)
                return FALSE;
            push(im, (struct hpf_mutation){.op = HPF_MUT_USER_ADD, .user = name});
            int admin = opt_bool(o, "admin");
            if (admin < 0)
                return fail_at(im, "users", i, "'admin' must be true or false");
            if (admin)
                push(im, (struct hpf_mutation){.op = HPF_MUT_USER_SET_ADMIN, .user = name,
                                               .flag = true});
            JsonNode *pw = json_object_get_member(o, "password");
            if (pw && !str_member(im, o, "password", "users", i))
                return FALSE;
            if (pw)
                push(im, (struct hpf_mutation){.op = HPF_MUT_USER_SET_PASSWORD, .user = name,
                                               .password = opt_string(o, "password")});
        }
    else if (im->err)
        return FALSE;

    if ((a = array_member(im, root, "groups")))
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonObject *o = object_at(im, a, "groups", i);
            const char *name = o ? str_member(im, o, "name", "groups", i) : NULL;
            const char *owner = name ? str_member(im, o, "owner", "groups", i) : NULL;
            if (!owner)
                return FALSE;
            push(im, (struct hpf_mutation){.op = HPF_MUT_GROUP_ADD, .group = name, .user = owner});
            size_t n;
            const char **members = strv_member(im, o, "members", "groups", i, &n);
            if (members == (const char **)-1)
                return FALSE;
            for (size_t j = 0; j < n; j++)
                push(im, (struct hpf_mutation){.op = HPF_MUT_MEMBER_ADD, .group = name,
                                               .user = members[j]});
        }
    else if (im->err)
        return FALSE;

    if ((a = array_member(im, root, "shares")))
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonObject *o = object_at(im, a, "shares", i);
            if (!o)
                return FALSE;
            gboolean to_group = json_object_has_member(o, "to_group");
            const char *from = str_member(im, o, "from", "shares", i);
            const char *to = from ? str_member(im, o, to_group ? "to_group" : "to_user", "shares", i)
                                  : NULL;
            const char *chan = to ? str_member(im, o, "channel", "shares", i) : NULL;
            const char *type = chan ? str_member(im, o, "type", "shares", i) : NULL;
            if (!type)
                return FALSE;
            int t = share_type_parse(type);
            if (t < 0)
                return fail_at(im, "shares", i, "'type' must be shares or shares_all");
            push(im, (struct hpf_mutation){.op = HPF_MUT_SHARE_ADD, .user = from, .target = to,
                                           .target_is_group = to_group, .channel = chan,
                                           .share_type = t});
        }
    else if (im->err)
        return FALSE;

    if ((a = array_member(im, root, "accepts")))
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonObject *o = object_at(im, a, "accepts", i);
            const char *user = o ? str_member(im, o, "user", "accepts", i) : NULL;
            const char *from = user ? str_member(im, o, "from", "accepts", i) : NULL;
            const char *chan = from ? str_member(im, o, "channel", "accepts", i) : NULL;
            if (!chan)
                return FALSE;
            push(im, (struct hpf_mutation){.op = HPF_MUT_ACCEPT_ADD, .user = user, .target = from,
                                           .channel = chan});
        }
    else if (im->err)
        return FALSE;

    if ((a = array_member(im, root, "authkeys")))
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonObject *o = object_at(im, a, "authkeys", i);
            const char *ident = o ? str_member(im, o, "ident", "authkeys", i) : NULL;
            const char *owner = ident ? str_member(im, o, "owner", "authkeys", i) : NULL;
            const char *secret = owner ? str_member(im, o, "secret", "authkeys", i) : NULL;
            if (!secret)
                return FALSE;
            struct hpf_authkey *k = g_new0(struct hpf_authkey, 1);
            g_ptr_array_add(im->keep, k);
            k->ident = ident;
            k->owner = owner;
            k->secret = secret;
            k->publish = strv_member(im, o, "publish", "authkeys", i, &k->n_publish);
            if (k->publish == (const char **)-1)
                return FALSE;
            k->subscribe = strv_member(im, o, "subscribe", "authkeys", i, &k->n_subscribe);
            if (k->subscribe == (const char **)-1)
                return FALSE;
            push(im, (struct hpf_mutation){.op = HPF_MUT_AUTHKEY_ADD, .authkey = k});
        }
    else if (im->err)
        return FALSE;
    return TRUE;
}

gboolean admin_import(struct admin *a, const char *json, gsize len, GError **error)
{
    JsonParser *parser = json_parser_new();
    GError *e = NULL;
    gboolean ok = FALSE;
    struct importer im = {
        .muts = g_array_new(FALSE, FALSE, sizeof(struct hpf_mutation)),
        .keep = g_ptr_array_new_with_free_func(g_free),
    };

    if (!json_parser_load_from_data(parser, json, (gssize)len, &e)) {
        /* json-glib's message carries <data>:LINE:COL. */
        g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID, "import: %s", e->message);
        g_error_free(e);
        goto out;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID, "import: the document must be an object");
        goto out;
    }
    JsonObject *o = json_node_get_object(root);
    const char *format = opt_string(o, "format");
    if (!format || strcmp(format, EXPORT_FORMAT)) {
        g_set_error(error, ADMIN_ERROR, HPF_ERR_INVALID,
                    "import: not an hpfriends export (\"format\" must be \"%s\")", EXPORT_FORMAT);
        goto out;
    }
    gint64 version = opt_int(o, "version");
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
    char err[512] = "";
    int rc = a->storage->desc->storage->apply(a->storage->inst,
                                              (const struct hpf_mutation *)im.muts->data,
                                              im.muts->len, err, sizeof err);
    if (rc != HPF_OK) {
        g_set_error(error, ADMIN_ERROR, rc, "import: %s (nothing was changed)",
                    *err ? err : hpf_strerror(rc));
        goto out;
    }
    ok = TRUE;
out:
    g_clear_error(&im.err);
    g_array_unref(im.muts);
    g_ptr_array_unref(im.keep);
    g_object_unref(parser);
    return ok;
}
