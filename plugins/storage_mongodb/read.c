/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mongodb reads: the model, authkey lookups, the version, snapshots
 * and counters.
 *
 * Documents come from outside (MHN, a mongo shell, an older hpfriends), so
 * no field is trusted to exist or to have its type: what cannot be read is
 * skipped with a warning logged once, never a crash.  An authkey without a
 * usable secret is kept in the model (it exists for apply()) but never
 * granted.
 */
#include "mongo_store.h"

#include <string.h>

#define SNAPSHOT_TRIES 5

typedef void (*doc_fn)(struct mstore *s, const bson_t *doc, void *arg);

/* Runs fn on every document matching filter, in _id order. */
static gboolean each_doc(struct mstore *s, enum ms_coll c, mongoc_client_session_t *cs,
                         const bson_t *filter, const bson_t *projection, int64_t limit, doc_fn fn,
                         void *arg, bson_error_t *e)
{
    bson_t opts = BSON_INITIALIZER;
    bson_t sort;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    if (projection)
        BSON_APPEND_DOCUMENT(&opts, "projection", projection);
    if (limit > 0)
        BSON_APPEND_INT64(&opts, "limit", limit);
    if (cs && !mongoc_client_session_append(cs, &opts, e)) {
        bson_destroy(&opts);
        return FALSE;
    }
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur =
        mongoc_collection_find_with_opts(s->coll[c], filter ? filter : &empty, &opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc))
        fn(s, doc, arg);
    gboolean ok = !mongoc_cursor_error(cur, e);
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    bson_destroy(&empty);
    return ok;
}

/* A UTF-8 value as a C string, or NULL when it holds a NUL: a BSON string
 * carries its length, and as a C string it would be cut at the NUL (a
 * channel "sensor\0.private" read as "sensor": a wider grant). */
static const char *whole_utf8(const bson_iter_t *it)
{
    uint32_t len = 0;
    const char *v = bson_iter_utf8(it, &len);
    return v && strlen(v) == len ? v : NULL;
}

/* A non-empty string field, or NULL. */
static const char *str_field(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it))
        return NULL;
    const char *v = whole_utf8(&it);
    return v && *v ? v : NULL;
}

/* true/false, a number (non-zero is true), or absent (def); FALSE when neither. */
static gboolean bool_field(const bson_t *doc, const char *key, gboolean def, gboolean *out)
{
    bson_iter_t it;
    *out = def;
    if (!bson_iter_init_find(&it, doc, key) || BSON_ITER_HOLDS_NULL(&it))
        return TRUE;
    if (BSON_ITER_HOLDS_BOOL(&it) || BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it) ||
        BSON_ITER_HOLDS_DOUBLE(&it)) {
        *out = bson_iter_as_bool(&it);
        return TRUE;
    }
    return FALSE;
}

/* A non-negative count from any numeric field; 0 when absent or unreadable. */
static uint64_t count_field(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key))
        return 0;
    if (!(BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_DOUBLE(&it)))
        return 0;
    int64_t v = bson_iter_as_int64(&it);
    return v > 0 ? (uint64_t)v : 0;
}

static GPtrArray *channel_field(struct mstore *s, const bson_t *doc, const char *ident,
                                const char *key)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    bson_iter_t it, sub;
    if (!bson_iter_init_find(&it, doc, key) || BSON_ITER_HOLDS_NULL(&it))
        return out;
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &sub)) {
        char *why = g_strdup_printf("authkey '%s': %s is not a list", ident, key);
        ms_warn_doc(s, MS_AUTH_KEY, why);
        g_free(why);
        return out;
    }
    while (bson_iter_next(&sub)) {
        if (BSON_ITER_HOLDS_UTF8(&sub) && whole_utf8(&sub)) {
            g_ptr_array_add(out, g_strdup(whole_utf8(&sub)));
        } else {
            char *why = g_strdup_printf("authkey '%s': an item of %s is not a string "
                                        "(or holds a NUL)",
                                        ident, key);
            ms_warn_doc(s, MS_AUTH_KEY, why);
            g_free(why);
        }
    }
    return out;
}

/* One auth_key document; NULL when it has no identifier. */
static struct gm_key *parse_key(struct mstore *s, const bson_t *doc)
{
    const char *ident = str_field(doc, "identifier");
    if (!ident) {
        ms_warn_doc(s, MS_AUTH_KEY, "a document has no string 'identifier'");
        return NULL;
    }
    struct gm_key *k = g_new0(struct gm_key, 1);
    k->ident = g_strdup(ident);
    const char *owner = str_field(doc, "owner");
    bson_iter_t it;
    if (!owner && bson_iter_init_find(&it, doc, "owner") && !BSON_ITER_HOLDS_NULL(&it) &&
        !BSON_ITER_HOLDS_UTF8(&it)) {
        char *why =
            g_strdup_printf("authkey '%s': owner is not a string, the identifier owns it", ident);
        ms_warn_doc(s, MS_AUTH_KEY, why);
        g_free(why);
    }
    k->owner = g_strdup(owner ? owner : ident);
    if (bson_iter_init_find(&it, doc, "secret") && BSON_ITER_HOLDS_UTF8(&it) && whole_utf8(&it)) {
        k->secret = g_strdup(whole_utf8(&it));
        k->usable = TRUE;
        k->publish = channel_field(s, doc, ident, "publish");
        k->subscribe = channel_field(s, doc, ident, "subscribe");
    } else {
        char *why = g_strdup_printf("authkey '%s': secret is missing or not a string", ident);
        ms_warn_doc(s, MS_AUTH_KEY, why);
        g_free(why);
        k->publish = g_ptr_array_new_with_free_func(g_free);
        k->subscribe = g_ptr_array_new_with_free_func(g_free);
    }
    return k;
}

/* ---- the model ---- */

static void need_fields(struct mstore *s, enum ms_coll c, const char *names)
{
    char *why = g_strdup_printf("a document lacks a string %s", names);
    ms_warn_doc(s, c, why);
    g_free(why);
}

static void load_user(struct mstore *s, const bson_t *doc, void *arg)
{
    const char *name = str_field(doc, "name");
    gboolean admin;
    if (!name) {
        need_fields(s, MS_USERS, "'name'");
        return;
    }
    if (!bool_field(doc, "admin", FALSE, &admin))
        ms_warn_doc(s, MS_USERS, "'admin' is not true or false (taken as false)");
    gm_add_user(arg, name, admin);
    const char *password = str_field(doc, "password");
    if (password)
        gm_set_password(arg, name, password);
}

static void load_group(struct mstore *s, const bson_t *doc, void *arg)
{
    const char *name = str_field(doc, "name"), *owner = str_field(doc, "owner");
    if (!name || !owner)
        need_fields(s, MS_GROUPS, "'name' or 'owner'");
    else
        gm_add_group(arg, name, owner);
}

static void load_member(struct mstore *s, const bson_t *doc, void *arg)
{
    const char *group = str_field(doc, "group"), *user = str_field(doc, "user");
    if (!group || !user)
        need_fields(s, MS_MEMBERS, "'group' or 'user'");
    else
        gm_add_member(arg, group, user);
}

static void load_share(struct mstore *s, const bson_t *doc, void *arg)
{
    const char *from = str_field(doc, "from"), *to = str_field(doc, "to");
    const char *channel = str_field(doc, "channel"), *type = str_field(doc, "type");
    gboolean to_group;
    if (!from || !to || !channel || !type) {
        need_fields(s, MS_SHARES, "'from', 'to', 'channel' or 'type'");
        return;
    }
    int t = hpf_share_type_from_name(type);
    if (t < 0) {
        ms_warn_doc(s, MS_SHARES, "a share's type is neither shares nor shares_all");
        return;
    }
    if (!bool_field(doc, "to_group", FALSE, &to_group)) {
        ms_warn_doc(s, MS_SHARES, "'to_group' is not true or false");
        return;
    }
    gm_add_share(arg, from, to, to_group, channel, t);
}

static void load_accept(struct mstore *s, const bson_t *doc, void *arg)
{
    const char *user = str_field(doc, "user"), *from = str_field(doc, "from");
    const char *channel = str_field(doc, "channel");
    if (!user || !from || !channel)
        need_fields(s, MS_ACCEPTS, "'user', 'from' or 'channel'");
    else
        gm_add_accept(arg, user, from, channel);
}

static void load_decline(struct mstore *s, const bson_t *doc, void *arg)
{
    const char *user = str_field(doc, "user"), *from = str_field(doc, "from");
    const char *channel = str_field(doc, "channel");
    if (!user || !from || !channel)
        need_fields(s, MS_DECLINES, "'user', 'from' or 'channel'");
    else
        gm_add_decline(arg, user, from, channel);
}

static void load_key(struct mstore *s, const bson_t *doc, void *arg)
{
    struct gm_key *k = parse_key(s, doc);
    if (k)
        gm_add_key(arg, k); /* the first document of a repeated identifier wins */
}

struct gm_model *ms_load_model(struct mstore *s, mongoc_client_session_t *cs, bson_error_t *e)
{
    struct gm_model *m = gm_model_new(NULL, NULL);
    static const struct {
        enum ms_coll c;
        doc_fn fn;
    } parts[] = {
        {MS_USERS, load_user},       {MS_GROUPS, load_group},   {MS_MEMBERS, load_member},
        {MS_SHARES, load_share},     {MS_ACCEPTS, load_accept}, {MS_AUTH_KEY, load_key},
        {MS_DECLINES, load_decline},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
        if (!each_doc(s, parts[i].c, cs, NULL, NULL, 0, parts[i].fn, m, e)) {
            gm_model_free(m);
            return NULL;
        }
    return m;
}

/* ---- meta and version ---- */

static void take_meta(struct mstore *s, const bson_t *doc, void *arg)
{
    (void)s;
    struct ms_meta *meta = arg;
    meta->data_version = (int64_t)count_field(doc, "value");
    gboolean busy = FALSE;
    bool_field(doc, "busy", FALSE, &busy);
    meta->busy = busy;
}

gboolean ms_read_meta(struct mstore *s, mongoc_client_session_t *cs, struct ms_meta *out,
                      bson_error_t *e)
{
    /* Absent (a fresh or wiped database): version 0, nobody writing. */
    memset(out, 0, sizeof *out);
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "key", "data_version");
    gboolean ok = each_doc(s, MS_META, cs, &filter, NULL, 1, take_meta, out, e);
    bson_destroy(&filter);
    return ok;
}

static void digest_doc(struct mstore *s, const bson_t *doc, void *arg)
{
    (void)s;
    g_checksum_update(arg, bson_get_data(doc), doc->len);
}

gboolean ms_authkey_digest(struct mstore *s, guint8 out[32], bson_error_t *e)
{
    bson_t proj = BSON_INITIALIZER;
    BSON_APPEND_INT32(&proj, "_id", 0);
    static const char *const fields[] = {"identifier", "owner", "secret", "publish", "subscribe"};
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
        BSON_APPEND_INT32(&proj, fields[i], 1);
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    gboolean ok = each_doc(s, MS_AUTH_KEY, NULL, NULL, &proj, 0, digest_doc, sum, e);
    gsize len = 32;
    if (ok)
        g_checksum_get_digest(sum, out, &len);
    g_checksum_free(sum);
    bson_destroy(&proj);
    return ok;
}

int ms_version(void *instance, uint64_t *version)
{
    struct mstore *s = instance;
    if (!version)
        return HPF_ERR_INVALID;
    if (!s->client)
        return HPF_ERR_UNAVAILABLE;
    bson_error_t e;
    struct ms_meta meta;
    guint8 digest[32];
    if (!ms_read_meta(s, NULL, &meta, &e) || !ms_authkey_digest(s, digest, &e))
        return ms_trouble(s, "reading the data version", &e);
    if (!s->have_seen || meta.data_version != s->seen_data_version ||
        memcmp(digest, s->seen_digest, sizeof digest) != 0) {
        s->version++;
        s->have_seen = TRUE;
        s->seen_data_version = meta.data_version;
        memcpy(s->seen_digest, digest, sizeof digest);
    }
    ms_healthy(s);
    *version = s->version;
    return HPF_OK;
}

/* ---- lookups ---- */

struct found {
    struct gm_key *key;
};

static void take_key(struct mstore *s, const bson_t *doc, void *arg)
{
    struct found *f = arg;
    if (!f->key)
        f->key = parse_key(s, doc);
}

static void free_key(struct gm_key *k)
{
    struct gm_model none = {0};
    gm_key_free(&none, k);
}

int ms_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data)
{
    struct mstore *s = instance;
    if (!ident || !cb)
        return HPF_ERR_INVALID;
    if (!s->client)
        return HPF_ERR_UNAVAILABLE;
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "identifier", ident);
    bson_error_t e;
    struct found f = {NULL};
    gboolean ok = each_doc(s, MS_AUTH_KEY, NULL, &filter, NULL, 1, take_key, &f, &e);
    bson_destroy(&filter);
    if (!ok)
        return ms_trouble(s, "authkey lookup", &e);
    ms_healthy(s);
    int status = HPF_ERR_NOTFOUND;
    if (f.key && f.key->usable) {
        gm_emit_key(f.key, cb, user_data);
        status = HPF_OK;
    }
    if (f.key)
        free_key(f.key);
    return status;
}

/*
 * Collections are read one after another, which MongoDB does not make one
 * point in time.  data_version is read before and after: when it moved, or
 * a non-transactional apply was writing (busy), read again.  A busy flag
 * that stays while the version stands still is a writer that died half-way;
 * its data is what there is, so it is served (with a warning) rather than
 * refused forever.
 */
int ms_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data)
{
    struct mstore *s = instance;
    if (!visitor)
        return HPF_ERR_INVALID;
    if (!s->client)
        return HPF_ERR_UNAVAILABLE;
    bson_error_t e;
    for (int attempt = 0; attempt < SNAPSHOT_TRIES; attempt++) {
        if (attempt > 0)
            g_usleep((gulong)attempt * 50000);
        struct ms_meta before, after;
        if (!ms_read_meta(s, NULL, &before, &e))
            return ms_trouble(s, "snapshot", &e);
        struct gm_model *m = ms_load_model(s, NULL, &e);
        if (!m)
            return ms_trouble(s, "snapshot", &e);
        if (!ms_read_meta(s, NULL, &after, &e)) {
            gm_model_free(m);
            return ms_trouble(s, "snapshot", &e);
        }
        gboolean stable = before.data_version == after.data_version;
        if (stable && before.busy && attempt == SNAPSHOT_TRIES - 1)
            ms_warn_doc(s, MS_META,
                        "data_version stays busy: an apply() died half-way; serving the data "
                        "as it is until the next apply()");
        if (stable && (!before.busy || attempt == SNAPSHOT_TRIES - 1)) {
            ms_healthy(s);
            gm_visit(m, visitor, user_data);
            gm_model_free(m);
            return HPF_OK;
        }
        gm_model_free(m);
    }
    MS_LOG(s, HPF_LOG_WARNING,
           "mongodb at %s: snapshot: the data kept changing while read; "
           "trying again at the next reload",
           s->where);
    return HPF_ERR_UNAVAILABLE;
}

static void take_counts(struct mstore *s, const bson_t *doc, void *arg)
{
    (void)s;
    struct hpf_counters *out = arg;
    out->published_msgs = count_field(doc, "published_msgs");
    out->published_bytes = count_field(doc, "published_bytes");
    out->received_msgs = count_field(doc, "received_msgs");
    out->received_bytes = count_field(doc, "received_bytes");
}

int ms_counters_get(void *instance, const char *ident, struct hpf_counters *out)
{
    struct mstore *s = instance;
    if (!ident || !out)
        return HPF_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->ident = ident;
    if (!s->client)
        return HPF_ERR_UNAVAILABLE;
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "ident", ident);
    bson_error_t e;
    gboolean ok = each_doc(s, MS_COUNTERS, NULL, &filter, NULL, 1, take_counts, out, &e);
    bson_destroy(&filter);
    if (!ok)
        return ms_trouble(s, "reading counters", &e);
    ms_healthy(s);
    return HPF_OK;
}
