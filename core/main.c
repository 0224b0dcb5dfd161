/* SPDX-License-Identifier: BSD-3-Clause */
/* hpfriendsd: command line, config, daemon life cycle. */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/thread.h>

#include "broker.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "loader.h"
#include "service.h"

static char *opt_config;
static gboolean opt_test, opt_foreground, opt_debug, opt_version;
static char **opt_bind, **opt_auth, **opt_endpoint;
static char *opt_name, *opt_tlscert, *opt_tlskey, *opt_exporter, *opt_ready_file, *opt_plugin_dir;
/* For documentation checks and tooling; hidden from --help, described in hpfriendsd(8). */
static gboolean opt_list_keys;

static const GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Configuration file (GLib key file)",
     "FILE"},
    {"test", 't', 0, G_OPTION_ARG_NONE, &opt_test, "Check the configuration and exit", NULL},
    {"list-config-keys", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_list_keys,
     "Print every config key accepted, with those of each plugin in the plugin dir", NULL},
    {"foreground", 'f', 0, G_OPTION_ARG_NONE, &opt_foreground,
     "Stay in the foreground, log to stderr (always so without -c)", NULL},
    {"debug", 'd', 0, G_OPTION_ARG_NONE, &opt_debug, "Log debug messages", NULL},
    {"bind", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_bind,
     "Listen on HOST:PORT (repeatable; hpfeeds3 compatible)", "HOST:PORT"},
    {"endpoint", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &opt_endpoint,
     "Listen on an hpfeeds3 endpoint, e.g. tcp:port=20000 or "
     "tls:port=20001:cert=c.pem:key=k.pem (repeatable)",
     "ENDPOINT"},
    {"auth", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_auth,
     "Authkeys from a SQLite file, sqlite (./sqlite.db), a .json file, env, a mongodb:// URI "
     "or database+postgresql|mysql|sqlite://... (repeatable: asked in order)",
     "SOURCE"},
    {"name", 0, 0, G_OPTION_ARG_STRING, &opt_name, "Broker name sent in INFO (default hpfeeds)",
     "NAME"},
    {"tlscert", 0, 0, G_OPTION_ARG_FILENAME, &opt_tlscert, "TLS certificate (PEM)", "FILE"},
    {"tlskey", 0, 0, G_OPTION_ARG_FILENAME, &opt_tlskey, "TLS private key (PEM)", "FILE"},
    {"exporter", 0, 0, G_OPTION_ARG_STRING, &opt_exporter, "Prometheus exporter address",
     "HOST:PORT"},
    {"ready-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_ready_file,
     "Once listening, write 'tcp ADDRESS PORT' lines to FILE", "FILE"},
    {"plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_plugin_dir, "Load plugins from DIR", "DIR"},
    {"version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL},
    G_OPTION_ENTRY_NULL,
};

/* Running as a service (service.c); kept apart from the hpfeeds3-style flags. */
static char *opt_user, *opt_group, *opt_pid_file;

static const GOptionEntry service_entries[] = {
    {"user", 0, 0, G_OPTION_ARG_STRING, &opt_user,
     "Once listening, switch to USER for good ([broker] user)", "USER"},
    {"group", 0, 0, G_OPTION_ARG_STRING, &opt_group,
     "With --user: run as GROUP instead of USER's group ([broker] group)", "GROUP"},
    {"pid-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_pid_file,
     "Write the daemon's pid to FILE, locked while it runs ([broker] pid_file)", "FILE"},
    G_OPTION_ENTRY_NULL,
};

/* --user, --group, --pid-file over the file's keys; the pid file made absolute
 * (a daemon's working directory is /). */
static void apply_service_flags(struct config *cfg)
{
    if (opt_user && *opt_user) {
        g_free(cfg->user);
        cfg->user = g_strdup(opt_user);
    }
    if (opt_group && *opt_group) {
        g_free(cfg->group);
        cfg->group = g_strdup(opt_group);
    }
    char *pid = opt_pid_file && *opt_pid_file ? g_canonicalize_filename(opt_pid_file, NULL)
                                              : config_resolve_path(cfg, cfg->pid_file);
    g_free(cfg->pid_file);
    cfg->pid_file = pid;
}

static void free_service_options(void)
{
    g_free(opt_user);
    g_free(opt_group);
    g_free(opt_pid_file);
}

static char *ready_status(const struct config *cfg)
{
    GString *s = g_string_new(NULL);
    g_string_printf(s, "%s serving (access = %s) on", cfg->name,
                    cfg->access == ACCESS_GRAPH ? "graph" : "channels");
    for (guint i = 0; i < cfg->listen->len; i++) {
        char *spec = listen_addr_to_string(cfg->listen->pdata[i]);
        g_string_append_printf(s, " %s", spec);
        g_free(spec);
    }
    return g_string_free(s, FALSE);
}

static int level_from_name(const char *s)
{
    if (!s)
        return HPF_LOG_INFO;
    if (!g_ascii_strcasecmp(s, "error"))
        return HPF_LOG_ERR;
    if (!g_ascii_strcasecmp(s, "warning"))
        return HPF_LOG_WARNING;
    if (!g_ascii_strcasecmp(s, "notice"))
        return HPF_LOG_NOTICE;
    if (!g_ascii_strcasecmp(s, "debug"))
        return HPF_LOG_DEBUG;
    if (!g_ascii_strcasecmp(s, "info"))
        return HPF_LOG_INFO;
    return -1;
}

/* The command line: -1 to go on, otherwise the exit status to stop with. */
static int parse_options(int *argc, char ***argv)
{
    GError *error = NULL;
    GOptionContext *ctx = g_option_context_new("- hpfriends broker (hpfeeds protocol)");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_add_main_entries(ctx, service_entries, NULL);
    gboolean ok = g_option_context_parse(ctx, argc, argv, &error);
    g_option_context_free(ctx);
    if (!ok) {
        fprintf(stderr, "hpfriendsd: %s\n", error->message);
        g_error_free(error);
        return 2;
    }
    if (opt_version) {
        printf("hpfriendsd %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, HPF_ABI_MAJOR, HPF_ABI_MINOR);
        return 0;
    }
    if (opt_list_keys)
        return keys_print(plugin_dir_resolve(opt_plugin_dir));
    if (*argc > 1) {
        fprintf(stderr, "hpfriendsd: unexpected argument '%s'\n", (*argv)[1]);
        return 2;
    }
    return -1;
}

static void free_options(void)
{
    g_free(opt_config);
    g_strfreev(opt_bind);
    g_strfreev(opt_auth);
    g_strfreev(opt_endpoint);
    g_free(opt_name);
    g_free(opt_tlscert);
    g_free(opt_tlskey);
    g_free(opt_exporter);
    g_free(opt_ready_file);
    g_free(opt_plugin_dir);
    free_service_options();
}

/* The config file (or the defaults), then the flags over it. */
static struct config *load_config(GError **error)
{
    struct config *cfg = opt_config ? config_load_file(opt_config, error) : config_new_default();
    if (!cfg)
        return NULL;
    if (!config_apply_flags(cfg, opt_bind, opt_auth, opt_name, opt_tlscert, opt_tlskey,
                            opt_exporter, error) ||
        !config_apply_endpoints(cfg, opt_endpoint, opt_bind && opt_bind[0], error)) {
        config_free(cfg);
        return NULL;
    }
    if (opt_plugin_dir) {
        g_free(cfg->plugin_dir);
        cfg->plugin_dir = g_strdup(opt_plugin_dir);
    }
    config_finish(cfg);
    if (!config_check_sql_plugin(cfg, plugin_dir_resolve(cfg->plugin_dir), error)) {
        config_free(cfg);
        return NULL;
    }
    int level = level_from_name(cfg->log_level);
    if (level < 0) {
        g_set_error(error, CONFIG_ERROR, 0,
                    "[broker] log_level: expected error, warning, notice, info or debug, "
                    "got '%s'",
                    cfg->log_level);
        config_free(cfg);
        return NULL;
    }
    log_set_level(opt_debug ? HPF_LOG_DEBUG : level);
    return cfg;
}

int main(int argc, char **argv)
{
    GError *error = NULL;
    struct config *cfg = NULL;
    struct broker *b = NULL;
    struct service_identity ident = {0};
    struct pidfile *pidfile = NULL;
    int rc = 1;

    broker_tune_malloc();
    plugin_process_init();
    int status = parse_options(&argc, &argv);
    if (status >= 0) {
        free_options();
        return status;
    }
    cfg = load_config(&error);
    if (!cfg)
        goto out;
    /* Before daemonizing, so that these errors reach the terminal. */
    apply_service_flags(cfg);
    if (!service_identity_resolve(cfg, &ident, &error))
        goto out;
    if (!opt_test && cfg->pid_file && !service_pidfile_check(cfg->pid_file, &error))
        goto out;

    /* Libevent must know about threads before the base exists. */
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);

    b = broker_new(cfg, &error);
    if (!b)
        goto out;

    if (opt_test) {
        /* Pure phase only: parse, load and configure the plugins, no side effects. */
        if (!broker_load_plugins(b, FALSE, &error))
            goto out;
        printf("hpfriendsd: configuration %s is valid\n", opt_config ? opt_config : "(flags)");
        rc = 0;
        goto out;
    }

    /* Without a config file it stands in for hpfeeds-broker, which never forks. */
    if (!opt_foreground && opt_config) {
        /* The command waits until the broker serves, or prints why it cannot. */
        if (!service_daemonize()) {
            g_set_error(&error, CONFIG_ERROR, 0, "cannot daemonize: %s", g_strerror(errno));
            goto out;
        }
        log_use_syslog("hpfriendsd");
        /* The fork happened after the base was made; tell libevent. */
        event_reinit(b->base);
    }
    /* The pid is final now; the file is written while still root. */
    if (cfg->pid_file && !(pidfile = service_pidfile_acquire(cfg->pid_file, &ident, &error)))
        goto out;
    if (!broker_start(b, opt_ready_file, &error))
        goto out;
    char *serving = ready_status(cfg);
    service_notify_ready(b->base, serving);
    g_free(serving);
    service_daemon_ready();
    rc = broker_run(b);

out:
    if (error) {
        if (opt_test)
            printf("hpfriendsd: configuration is NOT valid: %s\n", error->message);
        log_err("hpfriendsd: %s", error->message);
        char *why = g_strdup_printf("failed: %s", error->message);
        service_notify_status(why);
        g_free(why);
    }
    service_notify_close();
    broker_free(b);
    /* Last: whoever waits for the file to go knows the sinks are flushed. */
    service_pidfile_release(pidfile);
    /* A detached start's command exits with this: nothing of ours is left
     * by then (the pid file was still there when it was told before). */
    if (error) {
        service_daemon_failed(error->message);
        g_error_free(error);
    }
    service_identity_clear(&ident);
    config_free(cfg);
    free_options();
    return rc;
}
