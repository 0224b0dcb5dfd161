/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_file: reading, writing and locking the JSON file; see
 * file_store.h for the format and the write protocol.
 */
#include "file_store.h"

#include "../common/json_nul.h"
#include "../common/crash_point.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

G_STATIC_ASSERT(sizeof(FS_SECTION_KEY) - 1 > 255);

static gpointer node_ref(gpointer node) { return json_node_ref(node); }

static void node_unref(gpointer node) { json_node_unref(node); }

struct fs_state *fs_state_new(void)
{
    struct fs_state *st = g_new0(struct fs_state, 1);
    st->model = gm_model_new(node_ref, node_unref);
    st->counters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    st->section_at = G_MAXUINT;
    return st;
}

void fs_state_free(struct fs_state *st)
{
    if (!st)
        return;
    gm_model_free(st->model);
    g_hash_table_destroy(st->counters);
    if (st->audit)
        json_array_unref(st->audit);
    g_free(st->section_secret);
    g_free(st);
}

/* ---- file identity ---- */

int fs_identity_of(int fd, struct fs_identity *id)
{
    struct stat sb;
    memset(id, 0, sizeof *id);
    if (fstat(fd, &sb) < 0)
        return -1;
    id->dev = sb.st_dev;
    id->ino = sb.st_ino;
    id->size = sb.st_size;
    id->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    id->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec;
    id->valid = TRUE;
    return 0;
}

gboolean fs_identity_equal(const struct fs_identity *a, const struct fs_identity *b)
{
    return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* ---- parsing ---- */

/* Line and column (1-based) of byte offset `at` in text. */
static void position_of(const char *text, gsize at, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (gsize i = 0; i < at && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Where the section's key starts in the text, for messages about it. */
static void section_position(const char *text, unsigned *line, unsigned *col)
{
    const char *at = strstr(text, "\"hpfriends: ");
    position_of(text, at ? (gsize)(at - text) : 0, line, col);
}

struct parse {
    struct fstore *s;
    const char *text;
    char *err;
    size_t err_len;
};

static int section_fail(struct parse *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static int section_fail(struct parse *p, const char *fmt, ...)
{
    unsigned line, col;
    section_position(p->text, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    int status = hpf_set_error(p->err, p->err_len, HPF_ERR_INVALID,
                               "%s:%u:%u: hpfriends section: %s", p->s->path, line, col, why);
    g_free(why);
    return status;
}

static void warn_entry(struct fstore *s, const char *ident, const char *why)
{
    if (g_hash_table_contains(s->warned, ident))
        return;
    g_hash_table_add(s->warned, g_strdup(ident));
    FS_LOG(s, HPF_LOG_WARNING, "%s: authkey '%s': %s; ignoring what cannot be read", s->path, ident,
           why);
}

static gboolean is_string(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING;
}

static gboolean is_int(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

/* hpfeeds3's channel list: strings kept, anything else dropped with a warning. */
static GPtrArray *channel_list(struct fstore *s, const char *ident, JsonObject *o,
                               const char *member)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    JsonNode *n = json_object_get_member(o, member);
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return out;
    if (!JSON_NODE_HOLDS_ARRAY(n)) {
        char *why = g_strdup_printf("%s is not a list", member);
        warn_entry(s, ident, why);
        g_free(why);
        return out;
    }
    JsonArray *a = json_node_get_array(n);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *item = json_array_get_element(a, i);
        if (is_string(item)) {
            g_ptr_array_add(out, g_strdup(json_node_get_string(item)));
        } else {
            char *why = g_strdup_printf("an item of %s is not a string", member);
            warn_entry(s, ident, why);
            g_free(why);
        }
    }
    return out;
}

/* One hpfeeds3 entry.  What cannot be read is kept (raw) but grants nothing. */
static void parse_authkey(struct fstore *s, struct fs_state *st, const char *ident, JsonNode *node)
{
    struct gm_key *k = g_new0(struct gm_key, 1);
    k->ident = g_strdup(ident);
    k->raw = json_node_copy(node);
    k->publish = g_ptr_array_new_with_free_func(g_free);
    k->subscribe = g_ptr_array_new_with_free_func(g_free);
    if (!JSON_NODE_HOLDS_OBJECT(node)) {
        warn_entry(s, ident, "the entry is not an object");
        k->owner = g_strdup(ident);
        gm_add_key(st->model, k);
        return;
    }
    JsonObject *o = json_node_get_object(node);
    JsonNode *owner = json_object_get_member(o, "owner");
    if (is_string(owner) && *json_node_get_string(owner)) {
        k->owner = g_strdup(json_node_get_string(owner));
    } else {
        if (owner && !JSON_NODE_HOLDS_NULL(owner) && !is_string(owner))
            warn_entry(s, ident, "owner is not a string, the ident owns it");
        k->owner = g_strdup(ident);
    }
    JsonNode *secret = json_object_get_member(o, "secret");
    if (is_string(secret)) {
        k->secret = g_strdup(json_node_get_string(secret));
        k->usable = TRUE;
        g_ptr_array_unref(k->publish);
        g_ptr_array_unref(k->subscribe);
        k->publish = channel_list(s, ident, o, "pubchans");
        k->subscribe = channel_list(s, ident, o, "subchans");
    } else {
        warn_entry(s, ident, "secret is missing or not a string");
    }
    gm_add_key(st->model, k);
}

/* A string member of an object inside our section, or NULL. */
static const char *str_member(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);
    return is_string(n) ? json_node_get_string(n) : NULL;
}

/* Each element of section member `name` (an array of objects, may be absent). */
static int section_array(struct parse *p, JsonObject *sec, const char *name, JsonArray **out)
{
    *out = NULL;
    JsonNode *n = json_object_get_member(sec, name);
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HPF_OK;
    if (!JSON_NODE_HOLDS_ARRAY(n))
        return section_fail(p, "\"%s\" is not a list", name);
    JsonArray *a = json_node_get_array(n);
    for (guint i = 0; i < json_array_get_length(a); i++)
        if (!JSON_NODE_HOLDS_OBJECT(json_array_get_element(a, i)))
            return section_fail(p, "%s[%u] is not an object", name, i);
    *out = a;
    return HPF_OK;
}

#define ELEM(a, i) json_node_get_object(json_array_get_element((a), (i)))

static int need_str(struct parse *p, JsonObject *o, const char *list, guint i, const char *name,
                    const char **out)
{
    *out = str_member(o, name);
    if (!*out || !**out)
        return section_fail(p, "%s[%u]: \"%s\" is missing or not a string", list, i, name);
    return HPF_OK;
}

#define TRY(expr)                  \
    do {                           \
        int try_status_ = (expr);  \
        if (try_status_ != HPF_OK) \
            return try_status_;    \
    } while (0)

static int parse_counts(struct parse *p, struct fs_state *st, JsonObject *sec)
{
    JsonNode *n = json_object_get_member(sec, "counters");
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HPF_OK;
    if (!JSON_NODE_HOLDS_OBJECT(n))
        return section_fail(p, "\"counters\" is not an object");
    JsonObject *co = json_node_get_object(n);
    GList *idents = json_object_get_members(co);
    int status = HPF_OK;
    for (GList *l = idents; l && status == HPF_OK; l = l->next) {
        JsonNode *e = json_object_get_member(co, l->data);
        if (!JSON_NODE_HOLDS_OBJECT(e)) {
            status = section_fail(p, "counters of '%s' are not an object", (char *)l->data);
            break;
        }
        JsonObject *eo = json_node_get_object(e);
        static const char *const names[] = {"published_msgs", "published_bytes", "received_msgs",
                                            "received_bytes"};
        uint64_t v[4] = {0};
        for (int i = 0; i < 4; i++) {
            JsonNode *x = json_object_get_member(eo, names[i]);
            if (!x)
                continue;
            if (!is_int(x) || json_node_get_int(x) < 0) {
                status = section_fail(p, "counters of '%s': \"%s\" is not a count", (char *)l->data,
                                      names[i]);
                break;
            }
            v[i] = (uint64_t)json_node_get_int(x);
        }
        struct fs_counts *c = g_new(struct fs_counts, 1);
        *c = (struct fs_counts){v[0], v[1], v[2], v[3]};
        g_hash_table_replace(st->counters, g_strdup(l->data), c);
    }
    g_list_free(idents);
    return status;
}

/*
 * "accepts" and "declines": {user, from, channel} each.  A file written
 * before declines existed has no "declines" (read as none); a storage_file
 * of ABI 1.4 ignores the member, so there its declines read as pending.
 */
static int parse_answers(struct parse *p, struct fs_state *st, JsonObject *sec, const char *list,
                         bool (*add)(struct gm_model *, const char *, const char *, const char *))
{
    JsonArray *a;
    TRY(section_array(p, sec, list, &a));
    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        const char *user, *from, *channel;
        JsonObject *o = ELEM(a, i);
        TRY(need_str(p, o, list, i, "user", &user));
        TRY(need_str(p, o, list, i, "from", &from));
        TRY(need_str(p, o, list, i, "channel", &channel));
        add(st->model, user, from, channel);
    }
    return HPF_OK;
}

static int parse_section(struct parse *p, struct fs_state *st, JsonNode *node)
{
    if (!JSON_NODE_HOLDS_OBJECT(node))
        return section_fail(p, "not an object");
    JsonObject *sec = json_node_get_object(node);

    JsonNode *fmt = json_object_get_member(sec, "format");
    if (fmt && !is_int(fmt))
        return section_fail(p, "\"format\" is not a number");
    if (fmt && json_node_get_int(fmt) > FS_FORMAT)
        return section_fail(p,
                            "format %" G_GINT64_FORMAT " is newer than this storage_file "
                            "reads (%d); upgrade hpfriends",
                            json_node_get_int(fmt), FS_FORMAT);
    JsonNode *dv = json_object_get_member(sec, "data_version");
    if (dv && (!is_int(dv) || json_node_get_int(dv) < 0))
        return section_fail(p, "\"data_version\" is not a count");
    st->data_version = dv ? (uint64_t)json_node_get_int(dv) : 0;
    const char *secret = str_member(sec, "secret");
    st->section_secret = g_strdup(secret);

    JsonArray *a;
    TRY(section_array(p, sec, "users", &a));
    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        const char *name;
        TRY(need_str(p, ELEM(a, i), "users", i, "name", &name));
        JsonNode *admin = json_object_get_member(ELEM(a, i), "admin");
        if (admin &&
            !(JSON_NODE_HOLDS_VALUE(admin) && json_node_get_value_type(admin) == G_TYPE_BOOLEAN))
            return section_fail(p, "users[%u]: \"admin\" is not true or false", i);
        gm_add_user(st->model, name, admin && json_node_get_boolean(admin));
        JsonNode *pw = json_object_get_member(ELEM(a, i), "password");
        if (pw && !(JSON_NODE_HOLDS_VALUE(pw) && json_node_get_value_type(pw) == G_TYPE_STRING))
            return section_fail(p, "users[%u]: \"password\" is not a string", i);
        if (pw)
            gm_set_password(st->model, name, json_node_get_string(pw));
    }
    TRY(section_array(p, sec, "groups", &a));
    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        const char *name, *owner;
        TRY(need_str(p, ELEM(a, i), "groups", i, "name", &name));
        TRY(need_str(p, ELEM(a, i), "groups", i, "owner", &owner));
        gm_add_group(st->model, name, owner);
        JsonNode *mn = json_object_get_member(ELEM(a, i), "members");
        if (!mn || JSON_NODE_HOLDS_NULL(mn))
            continue;
        if (!JSON_NODE_HOLDS_ARRAY(mn))
            return section_fail(p, "groups[%u]: \"members\" is not a list", i);
        JsonArray *ma = json_node_get_array(mn);
        for (guint j = 0; j < json_array_get_length(ma); j++) {
            JsonNode *u = json_array_get_element(ma, j);
            if (!is_string(u) || !*json_node_get_string(u))
                return section_fail(p, "groups[%u]: members[%u] is not a user name", i, j);
            gm_add_member(st->model, name, json_node_get_string(u));
        }
    }
    TRY(section_array(p, sec, "shares", &a));
    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        const char *from, *to, *channel, *type;
        JsonObject *o = ELEM(a, i);
        TRY(need_str(p, o, "shares", i, "from", &from));
        TRY(need_str(p, o, "shares", i, "to", &to));
        TRY(need_str(p, o, "shares", i, "channel", &channel));
        TRY(need_str(p, o, "shares", i, "type", &type));
        int t = hpf_share_type_from_name(type);
        if (t < 0)
            return section_fail(p, "shares[%u]: type '%s' is not shares or shares_all", i, type);
        JsonNode *tg = json_object_get_member(o, "to_group");
        if (tg && !(JSON_NODE_HOLDS_VALUE(tg) && json_node_get_value_type(tg) == G_TYPE_BOOLEAN))
            return section_fail(p, "shares[%u]: \"to_group\" is not true or false", i);
        gm_add_share(st->model, from, to, tg && json_node_get_boolean(tg), channel, t);
    }
    TRY(parse_answers(p, st, sec, "accepts", gm_add_accept));
    TRY(parse_answers(p, st, sec, "declines", gm_add_decline));
    char why[128];
    if (!fs_audit_load(st, json_object_get_member(sec, "audit"), why, sizeof why))
        return section_fail(p, "%s", why);
    return parse_counts(p, st, sec);
}

/* Replaces json-glib's "<data>" with the path: "path:LINE:COL: message". */
static int syntax_fail(struct fstore *s, const GError *error, char *err, size_t err_len)
{
    const char *msg = error->message;
    if (g_str_has_prefix(msg, "<data>:"))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "%s:%s", s->path,
                             msg + strlen("<data>:"));
    return hpf_set_error(err, err_len, HPF_ERR_INVALID, "%s:1:1: %s", s->path, msg);
}

static int parse_text(struct fstore *s, const char *text, gsize len, struct fs_state **out,
                      char *err, size_t err_len)
{
    *out = NULL;
    if (memchr(text, '\0', len))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "%s:1:1: the file contains NUL bytes",
                             s->path);
    /* json-glib would cut a string at it: "sensor\u0000.private" read as "sensor". */
    if (json_text_has_nul(text, (gssize)len))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "%s: a string spells a NUL (\\u0000), which no name, secret or "
                             "channel may hold",
                             s->path);
    JsonParser *parser = json_parser_new_immutable();
    GError *error = NULL;
    int status = HPF_OK;
    struct fs_state *st = NULL;
    if (!json_parser_load_from_data(parser, text, (gssize)len, &error)) {
        status = syntax_fail(s, error, err, err_len);
        g_error_free(error);
        goto out;
    }
    JsonNode *root = json_parser_get_root(parser);
    gsize first = 0;
    while (first < len && g_ascii_isspace(text[first]))
        first++;
    unsigned line, col;
    position_of(text, first, &line, &col);
    if (!root) {
        status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                               "%s:%u:%u: the file is empty, expected a JSON object", s->path, line,
                               col);
        goto out;
    }
    if (!JSON_NODE_HOLDS_OBJECT(root)) {
        status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                               "%s:%u:%u: the top level is not a JSON object of authkeys", s->path,
                               line, col);
        goto out;
    }
    st = fs_state_new();
    struct parse p = {.s = s, .text = text, .err = err, .err_len = err_len};
    JsonObject *top = json_node_get_object(root);
    GList *names = json_object_get_members(top);
    for (GList *l = names; l && status == HPF_OK; l = l->next) {
        JsonNode *node = json_object_get_member(top, l->data);
        if (!strcmp(l->data, FS_SECTION_KEY)) {
            st->section_at = st->model->keys->len;
            status = parse_section(&p, st, node);
        } else {
            parse_authkey(s, st, l->data, node);
        }
    }
    g_list_free(names);
out:
    g_object_unref(parser);
    if (status == HPF_OK)
        *out = st;
    else
        fs_state_free(st);
    return status;
}

int fs_read_fd(struct fstore *s, int fd, struct fs_state **out, struct fs_identity *id, char *err,
               size_t err_len)
{
    *out = NULL;
    struct fs_identity after;
    if (fs_identity_of(fd, id) < 0)
        return hpf_set_error(err, err_len, HPF_ERR_IO, "%s: %s", s->path, g_strerror(errno));
    GByteArray *buf = g_byte_array_sized_new(id->size > 0 ? (guint)id->size + 1 : 4096);
    if (lseek(fd, 0, SEEK_SET) < 0)
        goto io_error;
    for (;;) {
        guint8 chunk[65536];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto io_error;
        if (n == 0)
            break;
        g_byte_array_append(buf, chunk, (guint)n);
    }
    if (fs_identity_of(fd, &after) < 0)
        goto io_error;
    if (!fs_identity_equal(id, &after)) {
        g_byte_array_unref(buf);
        return hpf_set_error(err, err_len, HPF_ERR_UNAVAILABLE, "%s: changed while being read",
                             s->path);
    }
    gsize len = buf->len;
    g_byte_array_append(buf, (const guint8 *)"", 1);
    int status = parse_text(s, (const char *)buf->data, len, out, err, err_len);
    g_byte_array_unref(buf);
    return status;

io_error:;
    int e = errno;
    g_byte_array_unref(buf);
    return hpf_set_error(err, err_len, HPF_ERR_IO, "%s: read: %s", s->path, g_strerror(e));
}

/* ---- writing ---- */

static JsonNode *string_list(const GPtrArray *a)
{
    JsonArray *arr = json_array_sized_new(a->len);
    for (guint i = 0; i < a->len; i++)
        json_array_add_string_element(arr, a->pdata[i]);
    JsonNode *n = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(n, arr);
    return n;
}

/* hpfeeds3's four members, every one present so that hpfeeds3 accepts the entry. */
static JsonNode *authkey_node(const struct gm_key *k)
{
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "owner", k->owner);
    json_object_set_string_member(o, "secret", k->secret ? k->secret : "");
    json_object_set_member(o, "pubchans", string_list(k->publish));
    json_object_set_member(o, "subchans", string_list(k->subscribe));
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(n, o);
    return n;
}

static char *random_secret(void)
{
    guint8 bytes[32];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof bytes) /* no entropy source: still unusable, see FS_SECTION_KEY */
        for (size_t i = got; i < sizeof bytes; i++)
            bytes[i] = (guint8)g_random_int();
    GString *hex = g_string_sized_new(2 * sizeof bytes);
    for (size_t i = 0; i < sizeof bytes; i++)
        g_string_append_printf(hex, "%02x", bytes[i]);
    return g_string_free(hex, FALSE);
}

static gint64 clamp64(uint64_t v) { return v > (uint64_t)G_MAXINT64 ? G_MAXINT64 : (gint64)v; }

/* One member of the object being built. */
static void put_str(JsonBuilder *b, const char *key, const char *v)
{
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, v);
}

static void put_bool(JsonBuilder *b, const char *key, gboolean v)
{
    json_builder_set_member_name(b, key);
    json_builder_add_boolean_value(b, v);
}

static void put_int(JsonBuilder *b, const char *key, uint64_t v)
{
    json_builder_set_member_name(b, key);
    json_builder_add_int_value(b, clamp64(v));
}

static void section_users(JsonBuilder *b, const struct gm_model *m)
{
    json_builder_set_member_name(b, "users");
    json_builder_begin_array(b);
    for (guint i = 0; i < m->users->len; i++) {
        const struct gm_user *u = m->users->pdata[i];
        json_builder_begin_object(b);
        put_str(b, "name", u->name);
        put_bool(b, "admin", u->admin);
        if (u->password)
            put_str(b, "password", u->password);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void section_groups(JsonBuilder *b, const struct gm_model *m)
{
    /* Each group's members in storage order, gathered in one pass over them. */
    GHashTable *members_of =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_ptr_array_unref);
    for (guint j = 0; j < m->members->len; j++) {
        const struct gm_member *mb = m->members->pdata[j];
        GPtrArray *users = g_hash_table_lookup(members_of, mb->group);
        if (!users) {
            users = g_ptr_array_new();
            g_hash_table_insert(members_of, mb->group, users);
        }
        g_ptr_array_add(users, mb->user);
    }
    json_builder_set_member_name(b, "groups");
    json_builder_begin_array(b);
    for (guint i = 0; i < m->groups->len; i++) {
        const struct gm_group *g = m->groups->pdata[i];
        json_builder_begin_object(b);
        put_str(b, "name", g->name);
        put_str(b, "owner", g->owner);
        json_builder_set_member_name(b, "members");
        json_builder_begin_array(b);
        const GPtrArray *users = g_hash_table_lookup(members_of, g->name);
        for (guint j = 0; users && j < users->len; j++)
            json_builder_add_string_value(b, users->pdata[j]);
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    g_hash_table_destroy(members_of);
}

static void section_answers(JsonBuilder *b, const char *name, const GPtrArray *list)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (guint i = 0; i < list->len; i++) {
        const struct gm_accept *a = list->pdata[i];
        json_builder_begin_object(b);
        put_str(b, "user", a->user);
        put_str(b, "from", a->from);
        put_str(b, "channel", a->channel);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void section_shares(JsonBuilder *b, const struct gm_model *m)
{
    json_builder_set_member_name(b, "shares");
    json_builder_begin_array(b);
    for (guint i = 0; i < m->shares->len; i++) {
        const struct gm_share *s = m->shares->pdata[i];
        json_builder_begin_object(b);
        put_str(b, "from", s->from);
        put_str(b, "to", s->to);
        put_bool(b, "to_group", s->to_group);
        put_str(b, "channel", s->channel);
        put_str(b, "type", hpf_share_type_name(s->type));
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    section_answers(b, "accepts", m->accepts);
    /* Only when there are some: a file without declines stays as before them. */
    if (m->declines->len > 0)
        section_answers(b, "declines", m->declines);
}

static void section_counters(JsonBuilder *b, GHashTable *counters)
{
    /* Sorted, so that a rewrite of the same data gives the same text. */
    json_builder_set_member_name(b, "counters");
    json_builder_begin_object(b);
    GList *idents = g_list_sort(g_hash_table_get_keys(counters), (GCompareFunc)strcmp);
    for (GList *l = idents; l; l = l->next) {
        const struct fs_counts *c = g_hash_table_lookup(counters, l->data);
        json_builder_set_member_name(b, l->data);
        json_builder_begin_object(b);
        put_int(b, "published_msgs", c->published_msgs);
        put_int(b, "published_bytes", c->published_bytes);
        put_int(b, "received_msgs", c->received_msgs);
        put_int(b, "received_bytes", c->received_bytes);
        json_builder_end_object(b);
    }
    g_list_free(idents);
    json_builder_end_object(b);
}

/* The hpfriends section: an hpfeeds3-shaped entry (so hpfeeds3 reads the
 * file) that carries the graph. */
static JsonNode *section_node(const struct fs_state *st)
{
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    put_str(b, "owner", "hpfriends");
    put_str(b, "secret", st->section_secret);
    json_builder_set_member_name(b, "pubchans");
    json_builder_begin_array(b);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "subchans");
    json_builder_begin_array(b);
    json_builder_end_array(b);
    put_int(b, "format", FS_FORMAT);
    put_int(b, "data_version", st->data_version);
    section_users(b, st->model);
    section_groups(b, st->model);
    section_shares(b, st->model);
    section_counters(b, st->counters);
    fs_audit_serialize(b, st);
    json_builder_end_object(b);
    JsonNode *n = json_builder_get_root(b);
    g_object_unref(b);
    return n;
}

char *fs_serialize(struct fstore *s, const struct fs_state *st, gsize *len)
{
    (void)s;
    const struct gm_model *m = st->model;
    JsonObject *top = json_object_new();
    for (guint i = 0; i <= m->keys->len; i++) {
        if (i == st->section_at || (i == m->keys->len && st->section_at > m->keys->len))
            json_object_set_member(top, FS_SECTION_KEY, section_node(st));
        if (i == m->keys->len)
            break;
        const struct gm_key *k = m->keys->pdata[i];
        /* Entries we did not change go back as they came, unknown members and all. */
        json_object_set_member(top, k->ident, k->raw ? json_node_copy(k->raw) : authkey_node(k));
    }
    JsonNode *root = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(root, top);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_pretty(gen, TRUE);
    json_generator_set_indent(gen, 2);
    json_generator_set_root(gen, root);
    gsize n = 0;
    char *body = json_generator_to_data(gen, &n);
    g_object_unref(gen);
    json_node_unref(root);
    char *text = g_strconcat(body, "\n", NULL);
    g_free(body);
    *len = n + 1;
    return text;
}

/* Where to write: the file itself, through a symlink if the path is one. */
static char *write_target(struct fstore *s)
{
    char *real = realpath(s->path, NULL);
    char *out = g_strdup(real ? real : s->path);
    free(real);
    return out;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* A temporary file is ".<name of the file>" TMP_INFIX and mkstemp's six characters. */
#define TMP_INFIX  ".tmp-"
#define TMP_RANDOM 6

/*
 * The new text into a temporary file beside target, then renamed over it.
 * `like` (may be NULL) gives mode and ownership to keep.  Nothing is
 * changed unless this returns HPF_OK.
 */
static int write_atomically(struct fstore *s, const char *target, const char *text, gsize len,
                            const struct stat *like, struct fs_identity *written, char *err,
                            size_t err_len, gboolean no_replace)
{
    char *dir = g_path_get_dirname(target);
    char *base = g_path_get_basename(target);
    char *tmp = g_strdup_printf("%s/."
                                "%s" TMP_INFIX "XXXXXX",
                                dir, base);
    int status = HPF_OK;
    FILE *f = NULL;
    int fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        status =
            hpf_set_error(err, err_len, HPF_ERR_IO, "%s: cannot create a temporary file in %s: %s",
                          s->path, dir, g_strerror(errno));
        goto out;
    }
    if (like) {
        /* Keep who may read it (an hpfeeds3 running as another user, say). */
        if (fchown(fd, like->st_uid, like->st_gid) < 0 && errno != EPERM)
            FS_LOG(s, HPF_LOG_WARNING, "%s: cannot keep the file's owner: %s", s->path,
                   g_strerror(errno));
        if (fchmod(fd, like->st_mode & 07777) < 0)
            FS_LOG(s, HPF_LOG_WARNING, "%s: cannot keep the file's mode: %s", s->path,
                   g_strerror(errno));
    }
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        status = hpf_set_error(err, err_len, HPF_ERR_IO, "%s: %s", tmp, g_strerror(errno));
        goto remove_tmp;
    }
    if (hpf_crash_point_armed("file-tmp-half")) {
        /* test-only (crash_point.h): half of the new text written, then gone */
        if (fwrite(text, 1, len / 2, f) == len / 2)
            fflush(f);
        raise(SIGKILL);
    }
    if (fwrite(text, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        status = hpf_set_error(err, err_len, HPF_ERR_IO, "%s: writing %s: %s", s->path, tmp,
                               g_strerror(errno));
        goto remove_tmp;
    }
    struct fs_identity tmp_id;
    fs_identity_of(fileno(f), &tmp_id);
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        status = hpf_set_error(err, err_len, HPF_ERR_IO, "%s: writing %s: %s", s->path, tmp,
                               g_strerror(errno));
        goto remove_tmp;
    }
    if (!no_replace)
        hpf_crash_point("file-before-rename");
    if (no_replace) {
        /* link() fails when the name exists: never clobbers a file made meanwhile. */
        rc = link(tmp, target);
        if (rc == 0)
            unlink(tmp);
    } else {
        rc = rename(tmp, target);
    }
    if (rc < 0) {
        status =
            hpf_set_error(err, err_len, errno == EEXIST ? HPF_ERR_EXISTS : HPF_ERR_IO,
                          "%s: cannot put the new file in place: %s", s->path, g_strerror(errno));
        goto remove_tmp;
    }
    hpf_crash_point("file-after-rename");
    /* Past this point the change is made: a failure here only costs durability. */
    if (fsync_dir(dir) < 0)
        FS_LOG(s, HPF_LOG_WARNING,
               "%s: fsync of directory %s: %s (the change may not survive "
               "a power cut)",
               s->path, dir, g_strerror(errno));
    if (written) {
        int rfd = open(target, O_RDONLY | O_CLOEXEC);
        memset(written, 0, sizeof *written);
        if (rfd >= 0) {
            if (fs_identity_of(rfd, written) == 0 && written->ino != tmp_id.ino)
                written->valid = FALSE; /* someone else's file already: read it */
            close(rfd);
        }
    }
    goto out;

remove_tmp:
    if (f)
        fclose(f);
    unlink(tmp);
out:
    g_free(tmp);
    g_free(base);
    g_free(dir);
    return status;
}

int fs_create_empty(struct fstore *s, char *err, size_t err_len)
{
    if (g_file_test(s->path, G_FILE_TEST_EXISTS))
        return HPF_OK;
    int status = write_atomically(s, s->path, "{}\n", 3, NULL, NULL, err, err_len, TRUE);
    /*
     * Made by another process meanwhile: use it.  (Its next writer may even
     * have removed our temporary file as stale, see remove_stale_temps(),
     * failing our link() with ENOENT: the file is there all the same.)
     */
    if (status == HPF_ERR_EXISTS || (status != HPF_OK && g_file_test(s->path, G_FILE_TEST_EXISTS)))
        return HPF_OK;
    if (status == HPF_OK)
        FS_LOG(s, HPF_LOG_NOTICE, "%s: created an empty authkey file", s->path);
    return status;
}

/*
 * Open target and take an exclusive lock on it, making sure the locked file
 * is still the one the name points at (a writer may have replaced it while
 * we waited).  Gives up after timeout_ms (0: a single try).
 */
static int lock_current(struct fstore *s, const char *target, int timeout_ms, int *fd_out,
                        char *err, size_t err_len)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    for (;;) {
        int fd = open(target, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return hpf_set_error(err, err_len, HPF_ERR_IO, "%s: %s", s->path, g_strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            struct stat a, b;
            if (fstat(fd, &a) == 0 && stat(target, &b) == 0 && a.st_dev == b.st_dev &&
                a.st_ino == b.st_ino) {
                *fd_out = fd;
                return HPF_OK;
            }
            close(fd); /* replaced meanwhile: lock the new one */
            continue;
        }
        int e = errno;
        close(fd);
        if (e != EWOULDBLOCK && e != EINTR)
            return hpf_set_error(err, err_len, HPF_ERR_IO, "%s: lock: %s", s->path, g_strerror(e));
        if (g_get_monotonic_time() >= deadline)
            return hpf_set_error(err, err_len, HPF_ERR_IO,
                                 "%s: locked by another writer for more than %d ms", s->path,
                                 timeout_ms);
        g_usleep(5000);
    }
}

/* Is name one of write_atomically()'s temporary files for the file called base? */
static gboolean is_temp_of(const char *name, const char *base)
{
    size_t blen = strlen(base);
    if (strlen(name) != 1 + blen + strlen(TMP_INFIX) + TMP_RANDOM || name[0] != '.' ||
        strncmp(name + 1, base, blen) != 0 || !g_str_has_prefix(name + 1 + blen, TMP_INFIX))
        return FALSE;
    for (const char *c = name + 1 + blen + strlen(TMP_INFIX); *c; c++)
        if (!g_ascii_isalnum(*c))
            return FALSE;
    return TRUE;
}

/*
 * Remove the temporary files that writes killed half-way (kill -9, a power
 * cut) left beside target.  The caller holds lock_current()'s lock, which
 * is what makes this safe: every writer creates its temporary file only
 * while it holds that lock on the file the name points at, and renames it
 * over the file or removes it before letting go.  So while we hold the lock
 * on the current file, no live writer owns a temporary file there, with
 * two exceptions that removing does not harm:
 *  - fs_create_empty() writes without a lock, because there is no file to
 *    lock yet.  Its temporary file exists while the name is missing (then
 *    nobody holds our lock) or, once link()ed, as a second name of the file
 *    itself; a creator that finds its temporary file gone sees that the
 *    file exists and uses it.
 *  - a writer whose locked file was replaced from outside (an editor's
 *    rename) after it took the lock: its rename() then fails and reports
 *    an error, which beats overwriting that edit with data read before it.
 */
static void remove_stale_temps(struct fstore *s, const char *target)
{
    char *dir = g_path_get_dirname(target);
    char *base = g_path_get_basename(target);
    GDir *d = g_dir_open(dir, 0, NULL);
    GString *removed = NULL;
    guint n = 0;
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        if (!is_temp_of(name, base))
            continue;
        char *path = g_build_filename(dir, name, NULL);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (unlink(path) == 0) {
                if (!removed)
                    removed = g_string_new(NULL);
                g_string_append_printf(removed, "%s%s", n++ ? ", " : "", name);
            } else if (errno != ENOENT) {
                FS_LOG(s, HPF_LOG_WARNING, "%s: cannot remove stale temporary file %s: %s", s->path,
                       path, g_strerror(errno));
            }
        }
        g_free(path);
    }
    if (d)
        g_dir_close(d);
    if (removed) {
        FS_LOG(s, HPF_LOG_WARNING,
               "%s: removed %u temporary file%s left by an interrupted "
               "write: %s",
               s->path, n, n == 1 ? "" : "s", removed->str);
        g_string_free(removed, TRUE);
    }
    g_free(base);
    g_free(dir);
}

void fs_tidy(struct fstore *s)
{
    char *target = write_target(s);
    int fd = -1;
    char err[256];
    /* Busy: that writer removes them itself (fs_change), so do not wait. */
    if (lock_current(s, target, 0, &fd, err, sizeof err) == HPF_OK) {
        remove_stale_temps(s, target);
        close(fd);
    }
    g_free(target);
}

int fs_change(struct fstore *s, fs_change_fn fn, void *arg, char *err, size_t err_len)
{
    char *target = write_target(s);
    int fd = -1;
    struct fs_state *st = NULL;
    int status = lock_current(s, target, s->lock_timeout_ms, &fd, err, err_len);
    if (status != HPF_OK)
        goto out;
    remove_stale_temps(s, target);
    struct fs_identity id;
    /* Locked: no writer of ours changes it now; an editor still might, so retry a little. */
    for (int tries = 0; tries < 5; tries++) {
        status = fs_read_fd(s, fd, &st, &id, err, err_len);
        if (status != HPF_ERR_UNAVAILABLE)
            break;
        g_usleep(10000);
    }
    if (status != HPF_OK)
        goto out;
    status = fn(s, st, arg, err, err_len);
    if (status != HPF_OK)
        goto out;
    if (!st->section_secret)
        st->section_secret = random_secret();

    struct stat like;
    gboolean have_like = fstat(fd, &like) == 0;
    gsize len;
    char *text = fs_serialize(s, st, &len);
    struct fs_identity written;
    status = write_atomically(s, target, text, len, have_like ? &like : NULL, &written, err,
                              err_len, FALSE);
    g_free(text);
    if (status == HPF_OK) {
        fs_install(s, st, &written);
        st = NULL;
    }
out:
    if (fd >= 0)
        close(fd); /* releases the lock */
    fs_state_free(st);
    g_free(target);
    return status;
}
