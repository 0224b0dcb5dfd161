/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_mongo_read: storage_mongodb's document readers
 * (plugins/storage_mongodb/read.c), which turn the BSON documents a
 * database returns into users, groups, members, shares, accepts, authkeys,
 * the meta document and counters.  Documents come from outside (MHN, a
 * mongo shell), so every field may be missing or of any type.
 *
 * read.c is compiled into this program (#include below) so its static
 * readers are called as ms_load_model() calls them, without a server: the
 * cursor's part is what this target replaces.  Input: a sequence of
 * records, each a selector byte (which reader, modulo 8) and one BSON
 * document, its length taken from the document's own int32 header (clamped
 * to what is left; bson_new_from_data() refuses a mismatch, as libmongoc's
 * reader would).  All documents go into one model, which is then reported
 * through gm_visit() and every authkey found through gm_emit_key().
 * Checked: every reported string is non-NULL, every granted key has a
 * secret, counts are what count_field() may return.
 */
#include "../../plugins/storage_mongodb/read.c"

#include "fuzz_common.h"

#define MAX_DOCS 64

static void quiet_log(const struct hpf_plugin_ctx *ctx, int level, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    (void)fmt;
}

static struct hpf_host host = {.log = quiet_log};

static void v_user(void *ud, const char *name, bool admin)
{
    (void)admin;
    FUZZ_CHECK(name && *name, "user without a name");
    (*(int *)ud)++;
}

static void v_group(void *ud, const char *name, const char *owner)
{
    FUZZ_CHECK(name && owner, "group without name or owner");
    (*(int *)ud)++;
}

static void v_member(void *ud, const char *group, const char *user)
{
    FUZZ_CHECK(group && user, "member without group or user");
    (*(int *)ud)++;
}

static void v_share(void *ud, const char *from, const char *to, bool to_group, const char *channel,
                    int type)
{
    (void)to_group;
    FUZZ_CHECK(from && to && channel, "share without from, to or channel");
    FUZZ_CHECK(type == HPF_SHARE_SHARES || type == HPF_SHARE_ALL, "share type %d", type);
    (*(int *)ud)++;
}

static void v_accept(void *ud, const char *user, const char *from, const char *channel)
{
    FUZZ_CHECK(user && from && channel, "accept without user, from or channel");
    (*(int *)ud)++;
}

static void v_key(void *ud, const struct hpf_authkey *k)
{
    FUZZ_CHECK(k->ident && k->owner && k->secret, "authkey without ident, owner or secret");
    for (size_t i = 0; i < k->n_publish; i++)
        FUZZ_CHECK(k->publish[i] != NULL, "NULL publish channel");
    for (size_t i = 0; i < k->n_subscribe; i++)
        FUZZ_CHECK(k->subscribe[i] != NULL, "NULL subscribe channel");
    (*(int *)ud)++;
}

static void v_password(void *ud, const char *name, const char *hash)
{
    FUZZ_CHECK(name && hash, "password without user or hash");
    (*(int *)ud)++;
}

static const struct hpf_snapshot_visitor visitor = {
    .user = v_user,
    .group = v_group,
    .member = v_member,
    .share = v_share,
    .accept = v_accept,
    .authkey = v_key,
    .user_password = v_password,
};

/* One document through the reader its selector names. */
static void read_doc(struct mstore *s, struct gm_model *m, guint8 sel, const bson_t *doc)
{
    static const doc_fn loaders[] = {load_user,  load_group,  load_member,
                                     load_share, load_accept, load_key};
    if (sel % 8 < G_N_ELEMENTS(loaders)) {
        loaders[sel % 8](s, doc, m);
    } else if (sel % 8 == 6) {
        struct ms_meta meta = {0};
        take_meta(s, doc, &meta);
        FUZZ_CHECK(meta.data_version >= 0, "data_version %" G_GINT64_FORMAT, meta.data_version);
        struct found f = {NULL};
        take_key(s, doc, &f);
        if (f.key)
            free_key(f.key);
    } else {
        struct hpf_counters c = {0};
        take_counts(s, doc, &c);
        GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
        digest_doc(s, doc, sum);
        g_checksum_free(sum);
    }
}

static void on_emitted(void *ud, const struct hpf_authkey *k) { v_key(ud, k); }

int fuzz_mongo_read_one(const uint8_t *data, size_t size)
{
    struct mstore s = {.host = &host, .where = "fuzz"};
    s.warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    struct gm_model *m = gm_model_new(NULL, NULL);
    GPtrArray *idents = g_ptr_array_new_with_free_func(g_free);
    size_t at = 0;
    for (int n = 0; n < MAX_DOCS && at + 1 < size; n++) {
        guint8 sel = data[at++];
        size_t left = size - at, len = left;
        if (left >= 4) {
            uint32_t want = (uint32_t)data[at] | (uint32_t)data[at + 1] << 8 |
                            (uint32_t)data[at + 2] << 16 | (uint32_t)data[at + 3] << 24;
            if (want >= 5 && want < left)
                len = want;
        }
        bson_t *doc = bson_new_from_data(data + at, len);
        at += len;
        if (!doc)
            continue;
        const char *ident = str_field(doc, "identifier");
        if (ident)
            g_ptr_array_add(idents, g_strdup(ident));
        read_doc(&s, m, sel, doc);
        bson_destroy(doc);
    }
    int seen = 0;
    gm_visit(m, &visitor, &seen);
    for (guint i = 0; i < idents->len; i++) {
        const struct gm_key *k = gm_find_key(m, idents->pdata[i]);
        if (k && k->usable)
            gm_emit_key(k, on_emitted, &seen);
    }
    g_ptr_array_unref(idents);
    gm_model_free(m);
    g_hash_table_unref(s.warned);
    return 0;
}

void fuzz_mongo_read_init(void) { fuzz_setup(); }

#ifndef FUZZ_REPLAY
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_mongo_read_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_mongo_read_one(data, size);
}
#endif
