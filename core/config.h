/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Broker configuration: a GLib key file, or hpfeeds3-style command-line
 * flags.  Pure: parsing and validation only, no side effects.
 */
#ifndef HPF_CONFIG_H
#define HPF_CONFIG_H

#include <glib.h>

enum access_mode { ACCESS_CHANNELS, ACCESS_GRAPH };
enum error_style { ERROR_STYLE_HPFEEDS, ERROR_STYLE_LEGACY };
enum on_denied { ON_DENIED_CLOSE, ON_DENIED_CONTINUE };

struct listen_addr {
    gboolean tls;
    char *host; /**< without brackets; "" or "*" for any */
    char *port;
    char *device; /**< network interface to bind to (SO_BINDTODEVICE), or NULL */
};

/** hpfeeds-broker's SQLite file, in its working directory. */
#define HPFEEDS3_SQLITE "sqlite.db"

/** One plugin section: which plugin, and the keys handed to it. */
struct plugin_conf {
    char *section;    /**< "storage", "auth:NAME", "sink:NAME" */
    char *name;       /**< instance name: "storage", NAME for auth and sinks */
    char *plugin;     /**< plugin name from `plugin =` */
    GHashTable *keys; /**< every other key -> value */
};

/** The [web] section: the admin console's HTTP listener. */
struct web_conf {
    struct listen_addr *listen; /**< tcp: or tls: */
    char *root;                 /**< static files; NULL: installed ones */
    char *tls_cert, *tls_key;   /**< NULL: the broker's */
    guint session_timeout;      /**< seconds of inactivity before a session ends */
    guint login_failures;       /**< failed logins per address per minute before back-off */
    char **hostnames;           /**< Host names allowed besides IP literals and localhost;
                                     NULL: none; {"*"}: any */
    char *public_host;          /**< hpfeeds address shown in connection snippets; NULL: the
                                     listener's (public_hpfeeds) */
    guint public_port;
};

struct config {
    char *path; /**< config file, NULL with flags only */
    char *dir;  /**< anchors relative paths */

    char *name;
    GPtrArray *listen; /**< struct listen_addr * */
    enum access_mode access;
    guint reload_interval;
    gboolean require_accept;
    guint audit_keep; /**< newest audit records storage keeps */
    enum error_style error_style;
    enum on_denied on_denied;
    guint32 max_frame;
    gsize max_queued_bytes;
    guint slow_deadline;
    guint backpressure_hold; /**< ms a lagging reader may hold publishers back; 0: never */
    guint max_connections;
    guint max_connections_per_ip;       /**< 0: unlimited */
    guint auth_failures_before_backoff; /**< 0: never back off */
    guint auth_backoff;                 /**< seconds, doubling while failures go on */
    guint auth_timeout;
    char *plugin_dir; /**< NULL: built-in default */
    char *tls_cert;
    char *tls_key;
    char *exporter;  /**< HOST:PORT or NULL */
    char *log_level; /**< NULL: info */
    char *user;      /**< switch to this user once bound; NULL: stay (service.c) */
    char *group;     /**< with user: this group instead of the user's own */
    char *pid_file;  /**< NULL: none */

    /* Incomplete frames of authenticated sessions (conn.c, the input budget). */
    guint frame_timeout;       /**< seconds a frame may take to arrive whole */
    gsize input_budget;        /**< bytes held in incomplete frames, all sessions */
    gsize input_budget_per_ip; /**< the same, the sessions of one address */

    struct web_conf *web; /**< NULL: no console */

    struct plugin_conf *storage;
    GPtrArray *auth;             /**< struct plugin_conf *, chain order */
    GPtrArray *sinks;            /**< struct plugin_conf * */
    struct plugin_conf *cluster; /**< [cluster], or NULL: a single node */
};

#define CONFIG_ERROR (config_error_quark())
GQuark config_error_quark(void);

/** Defaults, as with no config file and no flags. */
struct config *config_new_default(void);

/**
 * Read a key file.  Errors name the file, the section and the key, e.g.
 * "hpfriendsd.conf: [broker] max_frame: expected a number of bytes".
 */
struct config *config_load_file(const char *path, GError **error);

/**
 * Apply hpfeeds3-style flags on top of cfg (core/flags.c).  binds replace
 * the listen list.  auths are hpfeeds-broker's --auth values, in order: each
 * a .json file, `env`, `sqlite`, a SQLite file that exists, a mongodb://
 * URI or database+DIALECT://...; together they replace [storage] (the one
 * writable source) and the [auth] chain (every source, in order).  A value
 * of no known kind, a file that is not there, or two writable sources are
 * errors.  NULL/empty arguments leave the value alone.
 */
gboolean config_apply_flags(struct config *cfg, char **binds, char **auths, const char *name,
                            const char *tlscert, const char *tlskey, const char *exporter,
                            GError **error);

/**
 * hpfeeds-broker's -e/--endpoint strings (core/flags.c): tcp:KEY=VALUE:...
 * or tls:..., keys port (required), interface, device, and for tls cert and
 * key (default cert.pem, key.pem; every TLS listener serves one certificate).
 * They are added to the listen list after --bind's, or replace the config
 * file's listen when there was no --bind.
 */
gboolean config_apply_endpoints(struct config *cfg, char **endpoints, gboolean after_binds,
                                GError **error);

/** Parse one -e/--endpoint string (also for the unit tests). */
struct listen_addr *config_parse_endpoint(const char *spec, char **cert, char **key,
                                          GError **error);

/**
 * Storage plugin postgresql or mysql (--auth database+...) not installed in
 * the plugin directory dir: an error that says so.
 */
gboolean config_check_sql_plugin(const struct config *cfg, const char *dir, GError **error);

/** TRUE when the auth chain holds the read-only `env` source. */
gboolean config_auth_has_env(const struct config *cfg);

/** TRUE when storage is the empty in-memory stand-in of an env-only --auth. */
gboolean config_storage_is_placeholder(const struct config *cfg);

/**
 * Fill in what neither the file nor the flags set.  With a config file:
 * listen on 127.0.0.1:10000, SQLite storage in hpfriends.db.  Without one
 * (hpfeeds-broker's defaults): 0.0.0.0:20000 (TLS when a certificate was
 * given), SQLite storage in ./sqlite.db.  The auth chain "storage".
 */
void config_finish(struct config *cfg);

struct plugin_conf *plugin_conf_new(const char *section, const char *name, const char *plugin);
void plugin_conf_free(struct plugin_conf *pc);

/** Parse "tcp:HOST:PORT", "tls:HOST:PORT", "HOST:PORT"; IPv6 in brackets. */
struct listen_addr *config_parse_listen(const char *spec, GError **error);
void listen_addr_free(struct listen_addr *la);
char *listen_addr_to_string(const struct listen_addr *la);

/*
 * The one grammar for config values: the [broker] keys, the console's and
 * (through the host table) every plugin's.  The config_value_* forms say
 * what was expected in error, without file, section or key.
 */

/** true, yes, 1 / false, no, 0, letters in any case. */
gboolean config_parse_bool(const char *s, gboolean *out);
/** Bytes with an optional K, M or G (powers of 1024; "KB", "KiB" alike). */
gboolean config_parse_size(const char *s, guint64 *out);
gboolean config_value_bool(const char *v, gboolean *out, GError **error);
gboolean config_value_size(const char *v, guint64 min, guint64 max, guint64 *out, GError **error);
/** A whole decimal number in [min, max]. */
gboolean config_value_uint(const char *v, guint64 min, guint64 max, guint64 *out, GError **error);

/** Resolve a path against cfg->dir unless it is absolute. */
char *config_resolve_path(const struct config *cfg, const char *path);

/** Prefix an error with the config file's name, when there is one. */
void config_prefix_error(const struct config *cfg, GError **error);

void config_free(struct config *cfg);

/**
 * Every key the parsers accept outside the plugins' own, from the tables
 * they read: cb(section, key) for [broker], [web], [auth], `plugin` of each
 * plugin section and the keys the core takes out of every [sink:NAME]
 * (sections with an instance name are given as "auth:NAME", "sink:NAME").
 */
typedef void (*config_key_cb)(const char *section, const char *key, void *ud);
void config_list_keys(config_key_cb cb, void *ud);

/** The keys of [web], NULL-terminated: config_load_web() refuses any other. */
extern const char *const config_web_keys[];

/** Read the [web] section (web/config.c); sets cfg->web. */
gboolean config_load_web(struct config *cfg, GKeyFile *kf, const char *file, GError **error);
void web_conf_free(struct web_conf *wc);

#endif
