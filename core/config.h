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
};

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
};

struct config {
    char *path; /**< config file, NULL with flags only */
    char *dir;  /**< anchors relative paths */

    char *name;
    GPtrArray *listen; /**< struct listen_addr * */
    enum access_mode access;
    guint reload_interval;
    gboolean require_accept;
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
 * Apply hpfeeds3-style flags on top of cfg (binds replace the listen list;
 * auth selects the storage by its form: mongodb:// URI, *.json file, or
 * SQLite file).  NULL/empty arguments leave the value alone.
 */
gboolean config_apply_flags(struct config *cfg, char **binds, char **auths, const char *name,
                            const char *tlscert, const char *tlskey, const char *exporter,
                            GError **error);

/**
 * Fill in what neither the file nor the flags set: listen on
 * 127.0.0.1:10000, SQLite storage in hpfriends.db, the auth chain
 * "storage".
 */
void config_finish(struct config *cfg);

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

/** Read the [web] section (web/config.c); sets cfg->web. */
gboolean config_load_web(struct config *cfg, GKeyFile *kf, const char *file, GError **error);
void web_conf_free(struct web_conf *wc);

#endif
