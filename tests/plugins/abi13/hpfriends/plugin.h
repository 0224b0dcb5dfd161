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
 */
#ifndef HPFRIENDS_PLUGIN_H
#define HPFRIENDS_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HPF_ABI_MAJOR 1
#define HPF_ABI_MINOR 3

/** The one symbol a plugin exports. */
#define HPF_PLUGIN_ENTRY_SYMBOL "hpf_plugin_entry"

#if defined(__GNUC__)
#define HPF_EXPORT __attribute__((visibility("default")))
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

/** An authkey, as storage holds it and as auth plugins grant it. */
struct hpf_authkey {
    const char *ident;
    const char *owner;  /**< owning user; storage sets ident when it has none */
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
    void (*log)(const struct hpf_plugin_ctx *ctx, int level, const char *fmt, ...)
        HPF_PRINTF(3, 4);

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
    int (*authkey_lookup)(const struct hpf_plugin_ctx *ctx, const char *ident,
                          hpf_authkey_cb cb, void *user_data);

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

    const void *reserved[15];
};

struct hpf_storage_ops;
struct hpf_auth_ops;
struct hpf_sink_ops;
struct hpf_cluster_ops;

/** What hpf_plugin_entry() returns. Keep it `static const`. */
struct hpf_plugin {
    uint16_t abi_major; /**< HPF_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor; /**< HPF_ABI_MINOR the plugin was built with */
    const char *name;   /**< matches the .so name and the config value */
    const char *version;
    const char *description;
    uint32_t kinds; /**< bitwise OR of enum hpf_kind */

    /** NULL-terminated list of config keys this plugin accepts. */
    const char *const *config_keys;

    /** Pure configuration phase; see the file comment. */
    int (*create)(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                  void **instance, char *err, size_t err_len);
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
#define HPF_PLUGIN_DEFINE(desc)                                                \
    HPF_EXPORT const struct hpf_plugin *hpf_plugin_entry(void);                \
    HPF_EXPORT const struct hpf_plugin *hpf_plugin_entry(void) { return &(desc); }

static inline const char *hpf_strerror(int status)
{
    switch (status) {
    case HPF_OK: return "success";
    case HPF_ERR_NOTFOUND: return "not found";
    case HPF_ERR_EXISTS: return "already exists";
    case HPF_ERR_INVALID: return "invalid argument";
    case HPF_ERR_IO: return "i/o error";
    case HPF_ERR_UNAVAILABLE: return "backend unavailable";
    case HPF_ERR_NOMEM: return "out of memory";
    case HPF_ERR_UNSUPPORTED: return "not supported";
    default: return "unknown error";
    }
}

#ifdef __cplusplus
}
#endif

#endif
