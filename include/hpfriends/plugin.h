/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file hpfriends/plugin.h
 * @brief The hpfriends plugin ABI: what every plugin exports and what the
 *        broker hands it.
 *
 * A plugin is a shared object with exactly one exported symbol,
 * hpf_plugin_entry(), returning a pointer to a constant struct hpf_plugin.
 * The broker (hpfriendsd) and the management tool (hpfriendsctl) load it
 * with the same loader and check, in order:
 *
 *  1. the entry symbol exists;
 *  2. abi_major equals the broker's HPF_ABI_MAJOR, and abi_minor is not
 *     newer than the broker's HPF_ABI_MINOR (a plugin built against an older
 *     minor keeps working: structs only ever grow at their end);
 *  3. the name is set and at least one kind bit is set, with the ops table
 *     of that kind present.
 *
 * Life cycle, always on the broker's main thread:
 *
 *  - create(): pure. Read and validate this instance's configuration with
 *    host->config_get(), allocate the instance. No files, no sockets.
 *    `hpfriendsd -t` stops here.
 *  - start(): side effects (open files, connect, create tables).
 *  - destroy(): release everything; called once, also after a failed start().
 *
 * Only fixed-size integer types, bool, size_t and plain C strings cross this
 * ABI: plugins need neither GLib nor libevent.  Strings handed to a plugin
 * are valid for the duration of the call only; strings a plugin hands back
 * through a callback are copied by the broker before the callback returns.
 *
 * Versioning promise: within one ABI major, fields are only appended (the
 * reserved slots at the end of each struct are consumed first) and the minor
 * is bumped; nothing is removed or reordered.  Anything else bumps the major.
 * Which structs grow how:
 *  - with reserved slots at their end, consumed first: hpf_host,
 *    hpf_plugin, the ops table of every kind, hpf_snapshot_visitor,
 *    hpf_mutation, hpf_cluster_stats;
 *  - at their end, without reserved slots: hpf_auth_request and hpf_event,
 *    which only the broker allocates and a plugin only reads through a
 *    pointer;
 *  - never, frozen for ABI major 1: hpf_authkey, hpf_message and
 *    hpf_counters.  Plugins build them or the broker hands them over in
 *    arrays, so their size is part of the ABI; they have no reserved
 *    slots, and what they lack waits for major 2.
 *
 * Names: the module file is KIND_NAME.so (storage_sqlite.so, sink_file.so)
 * and the descriptor's name is that same KIND_NAME.  A config section
 * names the plugin either way: `plugin = sqlite` in [storage] finds
 * storage_sqlite.so (the loader tries KIND_NAME.so, then NAME.so), and
 * `plugin = storage_sqlite` finds it too.
 *
 * History: 1.1 sink instance_wants; 1.2 console passwords in storage; 1.3
 * cluster plugins and host->cluster_inject; 1.4 the config readers
 * host->config_bool/config_size/config_uint, hpf_auth_ops.flags; 1.5 the
 * audit trail (hpf_storage_ops.audit_list, HPF_MUT_AUDIT), the sink event
 * HPF_EVENT_REFUSED, declined offers (hpf_snapshot_visitor.decline,
 * HPF_MUT_DECLINE_ADD/DEL).
 */
#ifndef HPFRIENDS_PLUGIN_H
#define HPFRIENDS_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HPF_ABI_MAJOR 1
#define HPF_ABI_MINOR 5

/** The one symbol a plugin exports. */
#define HPF_PLUGIN_ENTRY_SYMBOL "hpf_plugin_entry"

#if defined(__GNUC__)
#define HPF_EXPORT       __attribute__((visibility("default")))
#define HPF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HPF_EXPORT
#define HPF_PRINTF(f, a)
#endif

/** Status codes shared by every plugin call. 0 is success. */
enum hpf_status {
    HPF_OK = 0,
    HPF_ERR_NOTFOUND,    /**< no such object (user, authkey, ...) */
    HPF_ERR_EXISTS,      /**< object already exists */
    HPF_ERR_INVALID,     /**< bad argument or bad data */
    HPF_ERR_IO,          /**< storage or file I/O failed */
    HPF_ERR_UNAVAILABLE, /**< backend unreachable for now; retry later */
    HPF_ERR_NOMEM,       /**< allocation failed */
    HPF_ERR_UNSUPPORTED, /**< this plugin does not implement that */
};

/** Plugin kinds; a plugin may be several at once. */
enum hpf_kind {
    HPF_KIND_STORAGE = 1u << 0,
    HPF_KIND_AUTH = 1u << 1,
    HPF_KIND_SINK = 1u << 2,
    HPF_KIND_CLUSTER = 1u << 3, /**< since ABI 1.3: hpfriends/cluster.h */
};

/** Log levels: syslog's numbers. */
enum hpf_log_level {
    HPF_LOG_ERR = 3,
    HPF_LOG_WARNING = 4,
    HPF_LOG_NOTICE = 5,
    HPF_LOG_INFO = 6,
    HPF_LOG_DEBUG = 7,
};

/** Opaque handle identifying one plugin instance to the host. */
struct hpf_plugin_ctx;

/**
 * An authkey, as storage holds it and as auth plugins grant it.  Frozen for
 * ABI major 1 (see the file comment).
 */
struct hpf_authkey {
    const char *ident;
    const char *owner; /**< owning user; storage sets ident when it has none */
    const char *secret;
    const char *const *publish; /**< channels it may publish on */
    size_t n_publish;
    const char *const *subscribe; /**< channels it may subscribe to */
    size_t n_subscribe;
};

/** Called by storage once per authkey it reports; copy what you keep. */
typedef void (*hpf_authkey_cb)(void *user_data, const struct hpf_authkey *key);

struct hpf_auth_request;
struct hpf_message; /* hpfriends/sink.h */

/**
 * What the broker offers every plugin.  Every function may be called from
 * any thread the plugin is called on.
 */
struct hpf_host {
    uint16_t abi_major;
    uint16_t abi_minor;

    /** Log one line, prefixed with the plugin instance's name. */
    void (*log)(const struct hpf_plugin_ctx *ctx, int level, const char *fmt, ...) HPF_PRINTF(3, 4);

    /** Value of `key` in this instance's config section, or NULL if unset. */
    const char *(*config_get)(const struct hpf_plugin_ctx *ctx, const char *key);

    /**
     * Value of `key` as a path: relative paths are resolved against the
     * directory of the config file.  Returns a newly allocated string the
     * caller frees with free(), or NULL if unset.
     */
    char *(*config_path)(const struct hpf_plugin_ctx *ctx, const char *key);

    /** Name of this instance (config section suffix or plugin name). */
    const char *(*instance_name)(const struct hpf_plugin_ctx *ctx);

    /**
     * Look an authkey up in the configured storage (for auth plugins).
     * Blocking; auth plugins are only ever called off the event loop.
     * Returns HPF_OK after calling cb once, HPF_ERR_NOTFOUND, or an error.
     */
    int (*authkey_lookup)(const struct hpf_plugin_ctx *ctx, const char *ident, hpf_authkey_cb cb,
                          void *user_data);

    /**
     * True when hash equals SHA-1(nonce || secret) for this request,
     * compared in constant time.
     */
    bool (*auth_hash_matches)(const struct hpf_auth_request *req, const char *secret);

    /**
     * Record what an ALLOW grants (owner and channel lists); call it before
     * returning HPF_AUTH_ALLOW.  The key is copied.
     */
    void (*auth_grant)(struct hpf_auth_request *req, const struct hpf_authkey *key);

    /**
     * Since ABI 1.3, for cluster plugins: deliver a message received from
     * another node to this node's subscribers (see hpfriends/cluster.h).
     * Any thread; copies msg and returns at once.  HPF_OK when queued,
     * HPF_ERR_UNAVAILABLE when the hand-over queue is full (dropped and
     * counted), HPF_ERR_INVALID for a message the wire cannot carry.
     */
    int (*cluster_inject)(const struct hpf_plugin_ctx *ctx, const struct hpf_message *msg);

    /*
     * Since ABI 1.4: typed config readers with the broker's own grammar, the
     * one its [broker] section uses, so every section accepts the same
     * words.  When `key` is unset they return HPF_OK and leave *out as it
     * was (put the default there first).  A value that does not parse or
     * lies outside [min, max] gives HPF_ERR_INVALID and a one-line reason
     * in err naming the key ("queue_size: expected ..."), ready to return
     * from create().  A plugin built for 1.4 or later may call them
     * unchecked: a broker older than the plugin's minor refuses to load it.
     */

    /** true, yes, 1 or false, no, 0; letters in any case. */
    int (*config_bool)(const struct hpf_plugin_ctx *ctx, const char *key, bool *out, char *err,
                       size_t err_len);
    /**
     * A number of bytes with an optional K, M or G (powers of 1024, any
     * case, "KB"/"KiB" alike): 4096, 64k, 10M, 1GiB.
     */
    int (*config_size)(const struct hpf_plugin_ctx *ctx, const char *key, uint64_t min,
                       uint64_t max, uint64_t *out, char *err, size_t err_len);
    /** A whole decimal number. */
    int (*config_uint)(const struct hpf_plugin_ctx *ctx, const char *key, uint64_t min,
                       uint64_t max, uint64_t *out, char *err, size_t err_len);

    const void *reserved[12];
};

struct hpf_storage_ops;
struct hpf_auth_ops;
struct hpf_sink_ops;
struct hpf_cluster_ops;

/** What hpf_plugin_entry() returns. Keep it `static const`. */
struct hpf_plugin {
    uint16_t abi_major; /**< HPF_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor; /**< HPF_ABI_MINOR the plugin was built with */
    const char *name;   /**< the module's file name without .so: KIND_NAME */
    const char *version;
    const char *description;
    uint32_t kinds; /**< bitwise OR of enum hpf_kind */

    /** NULL-terminated list of config keys this plugin accepts. */
    const char *const *config_keys;

    /** Pure configuration phase; see the file comment. */
    int (*create)(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx, void **instance,
                  char *err, size_t err_len);
    /** Side effects phase. May be NULL. */
    int (*start)(void *instance, char *err, size_t err_len);
    /** Release the instance. */
    void (*destroy)(void *instance);

    const struct hpf_storage_ops *storage; /**< set with HPF_KIND_STORAGE */
    const struct hpf_auth_ops *auth;       /**< set with HPF_KIND_AUTH */
    const struct hpf_sink_ops *sink;       /**< set with HPF_KIND_SINK */
    /** Set with HPF_KIND_CLUSTER (since ABI 1.3). */
    const struct hpf_cluster_ops *cluster;

    const void *reserved[15];
};

/** Prototype of the exported entry point. */
typedef const struct hpf_plugin *(*hpf_plugin_entry_fn)(void);

/** Declares the entry point in a plugin source file. */
#define HPF_PLUGIN_DEFINE(desc)                                 \
    HPF_EXPORT const struct hpf_plugin *hpf_plugin_entry(void); \
    HPF_EXPORT const struct hpf_plugin *hpf_plugin_entry(void) { return &(desc); }

/**
 * Write a one-line reason into err (as create(), start() and storage's
 * apply() take it) and return `status`, so a failure is one statement:
 * `return hpf_set_error(err, err_len, HPF_ERR_INVALID, "path: %s", why);`.
 * err may be NULL.  Header-only: no broker symbol involved.
 */
static inline int hpf_set_errorv(char *err, size_t err_len, int status, const char *fmt, va_list ap)
    HPF_PRINTF(4, 0);
static inline int hpf_set_errorv(char *err, size_t err_len, int status, const char *fmt, va_list ap)
{
    if (err && err_len > 0)
        vsnprintf(err, err_len, fmt, ap);
    return status;
}

static inline int hpf_set_error(char *err, size_t err_len, int status, const char *fmt, ...)
    HPF_PRINTF(4, 5);
static inline int hpf_set_error(char *err, size_t err_len, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hpf_set_errorv(err, err_len, status, fmt, ap);
    va_end(ap);
    return status;
}

static inline const char *hpf_strerror(int status)
{
    switch (status) {
    case HPF_OK:
        return "success";
    case HPF_ERR_NOTFOUND:
        return "not found";
    case HPF_ERR_EXISTS:
        return "already exists";
    case HPF_ERR_INVALID:
        return "invalid argument";
    case HPF_ERR_IO:
        return "i/o error";
    case HPF_ERR_UNAVAILABLE:
        return "backend unavailable";
    case HPF_ERR_NOMEM:
        return "out of memory";
    case HPF_ERR_UNSUPPORTED:
        return "not supported";
    default:
        return "unknown error";
    }
}

#ifdef __cplusplus
}
#endif

#endif
