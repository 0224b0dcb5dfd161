/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_file: users, graph and hpfeeds3's JSON authkeys in one flat file,
 * reloaded when it changes on disk.  The format and why it suits hpfeeds3
 * are in file_store.h; reading and writing in jsonfile.c; the mutation rules
 * (the same as storage_sqlite's) in model.c.
 *
 * Every call first compares the file's identity (inode, size, mtime, ctime)
 * with the one last read; when it differs, the file is read again.  A file
 * that does not parse is refused, logged once, and the last good data stays
 * in force until the file is fixed.  version() is an in-memory counter that
 * moves whenever what the broker sees changed: a digest of authkeys, graph
 * and the stored data_version (which every apply() increments, so another
 * process's apply moves it too); counters are left out, so saving them does
 * not make the broker rebuild its graph.
 */
#include "file_store.h"
#include "../common/mutation_check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_LOCK_TIMEOUT_MS 5000

static const char *const config_keys[] = {"path", "lock_timeout", NULL};

static void state_digest(const struct fs_state *st, guint8 out[32])
{
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    char dv[32];
    g_snprintf(dv, sizeof dv, "%" G_GUINT64_FORMAT, st->data_version);
    g_checksum_update(sum, (const guchar *)dv, (gssize)strlen(dv) + 1);
    gm_digest(st->model, sum);
    gsize len = 32;
    g_checksum_get_digest(sum, out, &len);
    g_checksum_free(sum);
}

void fs_install(struct fstore *s, struct fs_state *st, const struct fs_identity *id)
{
    guint8 digest[32];
    state_digest(st, digest);
    if (!s->state || memcmp(digest, s->digest, sizeof digest) != 0)
        s->version++;
    memcpy(s->digest, digest, sizeof digest);
    fs_state_free(s->state);
    s->state = st;
    s->seen = *id;
    if (s->bad)
        FS_LOG(s, HPF_LOG_NOTICE, "%s: the file reads again; its data is in force", s->path);
    s->bad = FALSE;
}

/*
 * Bring the data in force up to date with the file.  Problems are logged
 * once per version of the file and leave the last good data in force, so
 * readers keep working; only start() reports them as errors.
 */
static void refresh(struct fstore *s)
{
    /* The common case, on every call: one stat(), nothing changed. */
    struct stat sb;
    if (stat(s->path, &sb) == 0) {
        struct fs_identity now = {
            .dev = sb.st_dev,
            .ino = sb.st_ino,
            .size = sb.st_size,
            .mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec,
            .ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec,
            .valid = TRUE,
        };
        if (fs_identity_equal(&now, &s->seen))
            return;
    }
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        struct fs_identity gone = {.valid = TRUE, .size = -1};
        if (!fs_identity_equal(&gone, &s->seen))
            FS_LOG(s, HPF_LOG_ERR, "%s: %s; keeping the data last read", s->path,
                   g_strerror(errno));
        s->seen = gone;
        s->bad = TRUE;
        return;
    }
    struct fs_identity id;
    struct fs_state *st = NULL;
    char err[512];
    int status = fs_read_fd(s, fd, &st, &id, err, sizeof err);
    close(fd);
    if (status == HPF_OK) {
        fs_install(s, st, &id);
        return;
    }
    if (status == HPF_ERR_UNAVAILABLE) /* being written in place: look again next time */
        return;
    FS_LOG(s, HPF_LOG_ERR, "%s; keeping the data last read until the file is fixed", err);
    s->seen = id;
    s->bad = TRUE;
}

static int file_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                       void **instance, char *err, size_t err_len)
{
    char *path = host->config_path(ctx, "path");
    if (!path || !*path) {
        free(path);
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "missing required key 'path'");
    }
    guint64 timeout = DEFAULT_LOCK_TIMEOUT_MS;
    const char *value = host->config_get(ctx, "lock_timeout");
    if (value) {
        GError *error = NULL;
        if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXINT, &timeout, &error)) {
            int status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                                       "lock_timeout: '%s' is not a number of milliseconds "
                                       "(0 to %d): %s",
                                       value, G_MAXINT, error->message);
            g_error_free(error);
            free(path);
            return status;
        }
    }
    struct fstore *s = g_new0(struct fstore, 1);
    s->host = host;
    s->ctx = ctx;
    s->path = g_strdup(path);
    free(path);
    s->lock_timeout_ms = (int)timeout;
    s->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    *instance = s;
    return HPF_OK;
}

static int file_start(void *instance, char *err, size_t err_len)
{
    struct fstore *s = instance;
    int status = fs_create_empty(s, err, err_len);
    if (status != HPF_OK)
        return status;
    fs_tidy(s);
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hpf_set_error(err, err_len, HPF_ERR_IO, "%s: %s", s->path, g_strerror(errno));
    struct fs_state *st = NULL;
    struct fs_identity id;
    for (int tries = 0; tries < 5; tries++) {
        status = fs_read_fd(s, fd, &st, &id, err, err_len);
        if (status != HPF_ERR_UNAVAILABLE)
            break;
        g_usleep(20000);
    }
    close(fd);
    if (status != HPF_OK)
        return status;
    fs_install(s, st, &id);
    return HPF_OK;
}

static void file_destroy(void *instance)
{
    struct fstore *s = instance;
    if (!s)
        return;
    fs_state_free(s->state);
    g_hash_table_destroy(s->warned);
    g_free(s->path);
    g_free(s);
}

/* Calls before a successful start() find no state: nothing to serve. */
#define NEED_STATE(s)                   \
    do {                                \
        if (!(s)->state)                \
            return HPF_ERR_UNAVAILABLE; \
    } while (0)

static int file_authkey_get(void *instance, const char *ident, hpf_authkey_cb cb, void *user_data)
{
    struct fstore *s = instance;
    if (!ident || !cb)
        return HPF_ERR_INVALID;
    NEED_STATE(s);
    refresh(s);
    const struct gm_key *k = gm_find_key(s->state->model, ident);
    if (!k || !k->usable)
        return HPF_ERR_NOTFOUND;
    gm_emit_key(k, cb, user_data);
    return HPF_OK;
}

static int file_version(void *instance, uint64_t *version)
{
    struct fstore *s = instance;
    if (!version)
        return HPF_ERR_INVALID;
    NEED_STATE(s);
    refresh(s);
    *version = s->version;
    return HPF_OK;
}

static int file_snapshot(void *instance, const struct hpf_snapshot_visitor *visitor,
                         void *user_data)
{
    struct fstore *s = instance;
    if (!visitor)
        return HPF_ERR_INVALID;
    NEED_STATE(s);
    refresh(s);
    gm_visit(s->state->model, visitor, user_data);
    return HPF_OK;
}

struct batch {
    const struct hpf_mutation *mutations;
    size_t n;
};

static int apply_batch(struct fstore *s, struct fs_state *st, void *arg, char *err, size_t err_len)
{
    (void)s;
    struct batch *b = arg;
    /* The section's key is no ident (see file_store.h); never let one take its place. */
    for (size_t i = 0; i < b->n; i++) {
        const struct hpf_mutation *m = &b->mutations[i];
        if (m->op == HPF_MUT_AUTHKEY_ADD && m->authkey && m->authkey->ident &&
            !strcmp(m->authkey->ident, FS_SECTION_KEY))
            return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                                 "authkey_add: that ident is the name of hpfriends' own section");
    }
    int status = gm_apply(st->model, b->mutations, b->n, err, err_len);
    for (size_t i = 0; status == HPF_OK && i < b->n; i++)
        if (b->mutations[i].op == HPF_MUT_AUDIT)
            fs_audit_append(st, &b->mutations[i]);
    if (status == HPF_OK)
        st->data_version++; /* every successful apply, even one that changed nothing */
    return status;
}

static int file_apply(void *instance, const struct hpf_mutation *mutations, size_t n, char *err,
                      size_t err_len)
{
    struct fstore *s = instance;
    int status = mut_check_batch(mutations, n, err, err_len);
    if (status != HPF_OK)
        return status;
    NEED_STATE(s);
    struct batch b = {mutations, n};
    status = fs_change(s, apply_batch, &b, err, err_len);
    /* The contract's statuses: a lock or a vanished file is an i/o problem here. */
    if (status == HPF_ERR_UNAVAILABLE)
        status = HPF_ERR_IO;
    return status;
}

struct deltas {
    const struct hpf_counters *d;
    size_t n;
};

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

static int add_counts(struct fstore *s, struct fs_state *st, void *arg, char *err, size_t err_len)
{
    (void)s;
    (void)err;
    (void)err_len;
    struct deltas *d = arg;
    for (size_t i = 0; i < d->n; i++) {
        const struct hpf_counters *x = &d->d[i];
        struct fs_counts *c = g_hash_table_lookup(st->counters, x->ident);
        if (!c) {
            c = g_new0(struct fs_counts, 1);
            g_hash_table_insert(st->counters, g_strdup(x->ident), c);
        }
        c->published_msgs = sat_add(c->published_msgs, x->published_msgs);
        c->published_bytes = sat_add(c->published_bytes, x->published_bytes);
        c->received_msgs = sat_add(c->received_msgs, x->received_msgs);
        c->received_bytes = sat_add(c->received_bytes, x->received_bytes);
    }
    return HPF_OK;
}

static int file_counters_add(void *instance, const struct hpf_counters *deltas, size_t n)
{
    struct fstore *s = instance;
    if (n == 0)
        return HPF_OK;
    if (!mut_counters_ok(deltas, n))
        return HPF_ERR_INVALID;
    NEED_STATE(s);
    char err[512];
    struct deltas d = {deltas, n};
    int status = fs_change(s, add_counts, &d, err, sizeof err);
    if (status != HPF_OK)
        FS_LOG(s, HPF_LOG_WARNING, "saving counters: %s", err);
    return status;
}

static int file_counters_get(void *instance, const char *ident, struct hpf_counters *out)
{
    struct fstore *s = instance;
    if (!ident || !out)
        return HPF_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->ident = ident;
    NEED_STATE(s);
    refresh(s);
    const struct fs_counts *c = g_hash_table_lookup(s->state->counters, ident);
    if (c) {
        out->published_msgs = c->published_msgs;
        out->published_bytes = c->published_bytes;
        out->received_msgs = c->received_msgs;
        out->received_bytes = c->received_bytes;
    }
    return HPF_OK;
}

static int file_audit_list(void *instance, const struct hpf_audit_query *q, hpf_audit_cb cb,
                           void *user_data)
{
    struct fstore *s = instance;
    if (!mut_audit_query_ok(q) || !cb)
        return HPF_ERR_INVALID;
    NEED_STATE(s);
    refresh(s);
    fs_audit_list(s->state, q, cb, user_data);
    return HPF_OK;
}

static const struct hpf_storage_ops storage_ops = {
    .authkey_get = file_authkey_get,
    .version = file_version,
    .snapshot = file_snapshot,
    .apply = file_apply,
    .counters_add = file_counters_add,
    .counters_get = file_counters_get,
    .audit_list = file_audit_list,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "storage_file",
    .version = PLUGIN_VERSION,
    .description = "hpfeeds3's JSON authkey file, with the sharing graph kept in the same file",
    .kinds = HPF_KIND_STORAGE,
    .config_keys = config_keys,
    .create = file_create,
    .start = file_start,
    .destroy = file_destroy,
    .storage = &storage_ops,
};

HPF_PLUGIN_DEFINE(plugin)
