/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_file internals shared by its source files.
 *
 * The file is hpfeeds3's JSON authkey file, read as it is:
 *
 *   { "<ident>": {"owner": .., "secret": .., "pubchans": [..], "subchans": [..]}, ... }
 *
 * The sharing graph, traffic counters and a data version live in the SAME
 * file, under one more top-level key, FS_SECTION_KEY below.  Why that works
 * with hpfeeds3 (checked against its json authenticator):
 *  - hpfeeds3 treats every top-level key as an ident and refuses the whole
 *    file (keeping no keys at all on a fresh start) unless every value is an
 *    object holding "owner", "secret", "pubchans" (a list) and "subchans"
 *    (a list).  Our section is such an object: owner "hpfriends", a random
 *    secret, two empty lists, and our data in further members, which
 *    hpfeeds3 never looks at.
 *  - The key cannot collide with a real ident, nor can anyone log in as it:
 *    it is longer than 255 bytes, and an hpfeeds ident travels as a
 *    length-prefixed string of at most 255 bytes (AUTH's s8).  Its empty
 *    channel lists would grant nothing anyway.
 * One file means one atomic rename covers authkeys and graph together (a
 * user deleted with its authkeys is never half done), which a sibling file
 * could not give.  The cost: hpfeeds3 counts one extra "user" when it logs
 * how many it loaded, and the file is rewritten when counters are saved.
 *
 * Writes: under an exclusive flock() on the current file, re-read it, apply,
 * write a temporary file in the same directory (fwrite, fflush, fsync),
 * rename() it over the file, fsync() the directory.  Readers never lock:
 * rename() shows them the old file or the new one, never a mix.  A writer
 * killed half-way leaves its temporary file (".<name>.tmp-XXXXXX"); the
 * next writer removes such files while it holds the lock (jsonfile.c says
 * why only then), and so does start() when the lock is free.
 */
#ifndef HPF_STORAGE_FILE_STORE_H
#define HPF_STORAGE_FILE_STORE_H

#include <stdint.h>
#include <sys/types.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <hpfriends/plugin.h>
#include <hpfriends/storage.h>

#include "../common/model.h"

#define FS_SECTION_KEY                                                                      \
    "hpfriends: sharing graph, traffic counters and data version of hpfriends. This entry " \
    "is not an authkey: its name is longer than the 255 bytes an hpfeeds ident can have, "  \
    "so no client can log in as it; owner, secret, pubchans and subchans are here only "    \
    "because hpfeeds3 requires them of every entry. Change it with hpfriendsctl."

/* Layout of our section; a file with a newer one is refused, not rewritten. */
#define FS_FORMAT 1

struct fs_counts {
    uint64_t published_msgs, published_bytes, received_msgs, received_bytes;
};

/* Everything one version of the file holds. */
struct fs_state {
    struct gm_model *model;
    GHashTable *counters; /* ident -> struct fs_counts */
    uint64_t data_version;
    char *section_secret; /* NULL until the section exists */
    guint section_at;     /* authkeys before the section; G_MAXUINT: at the end */
    JsonArray *audit;     /* the audit trail, oldest first (audit.c); NULL: none yet */
};

/* What tells one version of the file from another without reading it. */
struct fs_identity {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    gboolean valid;
};

struct fstore {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;
    char *path;
    int lock_timeout_ms;

    struct fs_state *state;  /* the last good data, in force */
    struct fs_identity seen; /* the file last looked at, good or bad */
    guint8 digest[32];       /* of state: what the broker sees */
    uint64_t version;        /* moves whenever digest does */
    gboolean bad;            /* the file on disk is refused right now */
    GHashTable *warned;      /* idents whose bad entries were logged */
};

#define FS_LOG(s, level, ...) (s)->host->log((s)->ctx, (level), __VA_ARGS__)

struct fs_state *fs_state_new(void);
void fs_state_free(struct fs_state *st);

/*
 * Read and parse the file at fd (path names it in messages).  On success,
 * *out is the new state and *id the identity it was read at.  A file that
 * changed while being read gives HPF_ERR_UNAVAILABLE (try again).  Errors
 * are one line in err: "path:LINE:COL: message" for malformed files.
 */
int fs_read_fd(struct fstore *s, int fd, struct fs_state **out, struct fs_identity *id, char *err,
               size_t err_len);

/* The file's text for a state. g_free() it. */
char *fs_serialize(struct fstore *s, const struct fs_state *st, gsize *len);

int fs_identity_of(int fd, struct fs_identity *id);
gboolean fs_identity_equal(const struct fs_identity *a, const struct fs_identity *b);

/*
 * Run fn(st) on a fresh read of the file under an exclusive lock, then
 * write the result atomically.  fn returns HPF_OK to write, or a status to
 * abandon (it fills err).  On success the written state becomes current.
 */
typedef int (*fs_change_fn)(struct fstore *s, struct fs_state *st, void *arg, char *err,
                            size_t err_len);
int fs_change(struct fstore *s, fs_change_fn fn, void *arg, char *err, size_t err_len);

/* Create the file as `{}` if it does not exist (never replacing one). */
int fs_create_empty(struct fstore *s, char *err, size_t err_len);

/*
 * Remove temporary files of writes that were killed half-way, if the
 * writers' lock is free right now (else the next writer does).  Logs them.
 */
void fs_tidy(struct fstore *s);

/*
 * The audit trail (audit.c).  fs_audit_load() takes the section's "audit"
 * member (NULL: none) into st, or says in why what is wrong with it;
 * fs_audit_append() adds an HPF_MUT_AUDIT's record and trims to its bound.
 */
gboolean fs_audit_load(struct fs_state *st, JsonNode *node, char *why, size_t why_len);
void fs_audit_append(struct fs_state *st, const struct hpf_mutation *m);
void fs_audit_serialize(JsonBuilder *b, const struct fs_state *st);
void fs_audit_list(const struct fs_state *st, const struct hpf_audit_query *q, hpf_audit_cb cb,
                   void *ud);

/* Install st as the data in force; moves the version when its content differs. */
void fs_install(struct fstore *s, struct fs_state *st, const struct fs_identity *id);

#endif
