/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql reads: the model, authkey lookups, the version, snapshots
 * and counters.
 *
 * auth_keys rows come from outside (hpfeeds3-era tools, a SQL shell), so no
 * value is trusted: a NULL or unreadable field is logged once and skipped,
 * never a crash; a key without a usable secret is held in the model (it
 * exists for apply()) but never granted.  Its identifier column may carry a
 * case-insensitive or padding collation of the operator's choosing, so
 * lookups compare the bytes again here: "Alice" never logs in as "alice".
 */
#include "mysql_store.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "../common/sql_channels.h"

#define KEYS_BY_ID "SELECT identifier, secret, publish, subscribe FROM auth_keys ORDER BY id"
#define KEYS_BY_IDENT \
    "SELECT identifier, secret, publish, subscribe FROM auth_keys ORDER BY identifier"

static gboolean begin_snapshot(struct mystore *s)
{
    return my_exec(s, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", NULL, 0, NULL, NULL,
                   NULL);
}

/* ---- channel lists ---- */

static void warn_key(struct mystore *s, const char *ident, const char *what)
{
    char *why = g_strdup_printf("authkey '%s': %s", ident, what);
    my_warn_row(s, "auth_keys", why);
    g_free(why);
}

/* A JSON array of strings; anything else logged once and read as empty
 * (grants nothing): the one reader the SQL stores share (sql_channels.c). */
static GPtrArray *parse_channels(struct mystore *s, const char *ident, const char *column,
                                 const char *json)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    const char *why = sql_channels_parse(json, out);
    if (why) {
        char *what = g_strdup_printf("%s: %s", column, why);
        warn_key(s, ident, what);
        g_free(what);
    }
    return out;
}

char *my_format_channels(const GPtrArray *chans)
{
    JsonArray *a = json_array_sized_new(chans->len);
    for (guint i = 0; i < chans->len; i++)
        json_array_add_string_element(a, chans->pdata[i]);
    JsonNode *root = json_node_init_array(json_node_alloc(), a);
    char *text = json_to_string(root, FALSE);
    json_node_unref(root);
    json_array_unref(a);
    return text;
}

/* One auth_keys row (identifier, secret, publish, subscribe); NULL without identifier. */
static struct gm_key *parse_key(struct mystore *s, const char *const *v, const char *owner)
{
    if (!v[0] || !*v[0]) {
        my_warn_row(s, "auth_keys", "a row has no identifier");
        return NULL;
    }
    struct gm_key *k = g_new0(struct gm_key, 1);
    k->ident = g_strdup(v[0]);
    k->owner = g_strdup(owner && *owner ? owner : v[0]);
    if (v[1]) {
        k->secret = g_strdup(v[1]);
        k->usable = TRUE;
        k->publish = parse_channels(s, v[0], "publish", v[2]);
        k->subscribe = parse_channels(s, v[0], "subscribe", v[3]);
    } else {
        warn_key(s, v[0], "secret is NULL");
        k->publish = g_ptr_array_new_with_free_func(g_free);
        k->subscribe = g_ptr_array_new_with_free_func(g_free);
    }
    return k;
}

static void free_key(struct gm_key *k)
{
    struct gm_model none = {0};
    gm_key_free(&none, k);
}

/* ---- the model ---- */

static gboolean all_set(struct mystore *s, const char *table, const char *const *v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (!v[i] || !*v[i]) {
            my_warn_row(s, table, "a row has an empty or unreadable value");
            return FALSE;
        }
    return TRUE;
}

static void load_user(struct mystore *s, const char *const *v, unsigned n, void *m)
{
    if (n == 3 && all_set(s, "hpf_users", v, 1)) {
        gm_add_user(m, v[0], v[1] && !strcmp(v[1], "1"));
        if (v[2])
            gm_set_password(m, v[0], v[2]);
    }
}

static void load_group(struct mystore *s, const char *const *v, unsigned n, void *m)
{
    if (n == 2 && all_set(s, "hpf_groups", v, 2))
        gm_add_group(m, v[0], v[1]);
}

static void load_member(struct mystore *s, const char *const *v, unsigned n, void *m)
{
    if (n == 2 && all_set(s, "hpf_members", v, 2))
        gm_add_member(m, v[0], v[1]);
}

static void load_share(struct mystore *s, const char *const *v, unsigned n, void *m)
{
    if (n != 5 || !all_set(s, "hpf_shares", v, 5))
        return;
    int type = hpf_share_type_from_name(v[4]);
    if (type < 0)
        my_warn_row(s, "hpf_shares", "a share's type is neither shares nor shares_all");
    else
        gm_add_share(m, v[0], v[1], !strcmp(v[2], "1"), v[3], type);
}

static void load_accept(struct mystore *s, const char *const *v, unsigned n, void *m)
{
    if (n == 3 && all_set(s, "hpf_accepts", v, 3))
        gm_add_accept(m, v[0], v[1], v[2]);
}

static void load_decline(struct mystore *s, const char *const *v, unsigned n, void *m)
{
    if (n == 3 && all_set(s, "hpf_declines", v, 3))
        gm_add_decline(m, v[0], v[1], v[2]);
}

static void load_owner(struct mystore *s, const char *const *v, unsigned n, void *owners)
{
    if (n == 2 && all_set(s, "hpf_key_owners", v, 2))
        g_hash_table_insert(owners, g_strdup(v[0]), g_strdup(v[1]));
}

struct key_load {
    struct gm_model *m;
    GHashTable *owners;
};

static void load_key(struct mystore *s, const char *const *v, unsigned n, void *arg)
{
    struct key_load *kl = arg;
    if (n != 4)
        return;
    struct gm_key *k = parse_key(s, v, v[0] ? g_hash_table_lookup(kl->owners, v[0]) : NULL);
    if (k)
        gm_add_key(kl->m, k); /* the first row of a repeated identifier wins */
}

struct gm_model *my_load_model(struct mystore *s)
{
    struct gm_model *m = gm_model_new(NULL, NULL);
    static const struct {
        const char *sql;
        my_row_fn fn;
    } parts[] = {
        {"SELECT name, admin, password FROM hpf_users ORDER BY id", load_user},
        {"SELECT name, owner FROM hpf_groups ORDER BY id", load_group},
        {"SELECT group_name, user_name FROM hpf_members ORDER BY id", load_member},
        {"SELECT from_user, to_name, to_is_group, channel, type FROM hpf_shares ORDER BY id",
         load_share},
        {"SELECT user_name, from_user, channel FROM hpf_accepts ORDER BY id", load_accept},
        {"SELECT user_name, from_user, channel FROM hpf_declines ORDER BY id", load_decline},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
        if (!my_exec(s, parts[i].sql, NULL, 0, parts[i].fn, m, NULL)) {
            gm_model_free(m);
            return NULL;
        }
    struct key_load kl = {m, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
    gboolean ok =
        my_exec(s, "SELECT identifier, owner FROM hpf_key_owners", NULL, 0, load_owner, kl.owners,
                NULL) &&
        my_exec(s, s->auth_has_id ? KEYS_BY_ID : KEYS_BY_IDENT, NULL, 0, load_key, &kl, NULL);
    g_hash_table_unref(kl.owners);
    if (!ok) {
        gm_model_free(m);
        return NULL;
    }
    return m;
}

/* ---- version ---- */

static void take_int(struct mystore *s, const char *const *v, unsigned n, void *arg)
{
    (void)s;
    gint64 *out = arg;
    if (n > 0 && v[0])
        *out = g_ascii_strtoll(v[0], NULL, 10);
}

static void digest_row(struct mystore *s, const char *const *v, unsigned n, void *sum)
{
    (void)s;
    for (unsigned i = 0; i < n; i++) {
        /* Each value with its NUL, and NULL apart from "": no two rows feed the same bytes. */
        if (v[i])
            g_checksum_update(sum, (const guchar *)v[i], (gssize)strlen(v[i]) + 1);
        else
            g_checksum_update(sum, (const guchar *)"\xff", 1);
    }
}

static gboolean read_version(struct mystore *s, gint64 *data_version, guint8 digest[32])
{
    *data_version = 0;
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    gboolean ok =
        my_exec(s, "SELECT value FROM hpf_meta WHERE name = 'data_version'", NULL, 0, take_int,
                data_version, NULL) &&
        my_exec(s, s->auth_has_id ? KEYS_BY_ID : KEYS_BY_IDENT, NULL, 0, digest_row, sum, NULL) &&
        my_exec(s, "SELECT identifier, owner FROM hpf_key_owners ORDER BY identifier", NULL, 0,
                digest_row, sum, NULL);
    gsize len = 32;
    if (ok)
        g_checksum_get_digest(sum, digest, &len);
    g_checksum_free(sum);
    return ok;
}

int my_version(void *instance, uint64_t *version)
{
    struct mystore *s = instance;
    if (!version)
        return HPF_ERR_INVALID;
    gint64 dv;
    guint8 digest[32];
    /* One snapshot, so data_version and the rows it counts agree. */
    gboolean ok = begin_snapshot(s) && read_version(s, &dv, digest);
    my_rollback(s);
    if (!ok)
        return my_trouble(s, "reading the data version");
    if (!s->have_seen || dv != s->seen_data_version ||
        memcmp(digest, s->seen_digest, sizeof digest) != 0) {
        s->version++;
        s->have_seen = TRUE;
        s->seen_data_version = dv;
        memcpy(s->seen_digest, digest, sizeof digest);
    }
    my_healthy(s);
    *version = s->version;
    return HPF_OK;
}

/* ---- lookups ---- */

struct found {
    const char *ident;
    struct gm_key *key;
};

static void take_key(struct mystore *s, const char *const *v, unsigned n, void *arg)
{
    struct found *f = arg;
    /* The column's collation may match more than the exact bytes. */
    if (n == 5 && !f->key && v[0] && !strcmp(v[0], f->ident))
        f->key = parse_key(s, v, v[4]);
}

/* One statement, so one read view: the key and its owner as of the same moment. */
#define KEY_GET                                       \
    "SELECT identifier, secret, publish, subscribe, " \
    "(SELECT owner FROM hpf_key_owners WHERE identifier = ?) FROM auth_keys WHERE identifier = ?"

int my_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data)
{
    struct mystore *s = instance;
    if (!ident || !cb)
        return HPF_ERR_INVALID;
    struct found f = {.ident = ident};
    struct my_param p[2] = {MY_S(ident), MY_S(ident)};
    if (!my_exec(s, s->auth_has_id ? KEY_GET " ORDER BY id" : KEY_GET, p, 2, take_key, &f, NULL)) {
        if (f.key)
            free_key(f.key);
        /* An ident the column's character set cannot hold matches no row:
         * "no such key", a failed AUTH like any other, not an outage (which
         * would not count towards the address's back-off, and would log). */
        if (my_unmatchable(s))
            return HPF_ERR_NOTFOUND;
        return my_trouble(s, "authkey lookup");
    }
    my_healthy(s);
    int status = HPF_ERR_NOTFOUND;
    if (f.key && f.key->usable) {
        gm_emit_key(f.key, cb, user_data);
        status = HPF_OK;
    }
    if (f.key)
        free_key(f.key);
    return status;
}

int my_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor, void *user_data)
{
    struct mystore *s = instance;
    if (!visitor)
        return HPF_ERR_INVALID;
    struct gm_model *m = begin_snapshot(s) ? my_load_model(s) : NULL;
    my_rollback(s);
    if (!m)
        return my_trouble(s, "snapshot");
    my_healthy(s);
    gm_visit(m, visitor, user_data);
    gm_model_free(m);
    return HPF_OK;
}

static void take_counts(struct mystore *s, const char *const *v, unsigned n, void *arg)
{
    (void)s;
    struct hpf_counters *out = arg;
    if (n != 4)
        return;
    uint64_t *fields[] = {&out->published_msgs, &out->published_bytes, &out->received_msgs,
                          &out->received_bytes};
    for (unsigned i = 0; i < 4; i++)
        *fields[i] = v[i] ? g_ascii_strtoull(v[i], NULL, 10) : 0;
}

int my_counters_get(void *instance, const char *ident, struct hpf_counters *out)
{
    struct mystore *s = instance;
    if (!ident || !out)
        return HPF_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->ident = ident;
    struct my_param p = MY_S(ident);
    if (!my_exec(s,
                 "SELECT published_msgs, published_bytes, received_msgs, received_bytes "
                 "FROM hpf_counters WHERE ident = ?",
                 &p, 1, take_counts, out, NULL))
        return my_trouble(s, "reading counters");
    my_healthy(s);
    return HPF_OK;
}
