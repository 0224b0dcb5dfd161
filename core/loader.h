/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Plugin loader: one loader for every kind.  Loads a module with GModule,
 * checks it against a table of rules (entry symbol, ABI version, kinds and
 * their ops, config keys), then runs its create()/start() phases.
 */
#ifndef HPF_CORE_LOADER_H
#define HPF_CORE_LOADER_H

#include <glib.h>
#include <gmodule.h>

#include <hpfriends/auth.h>
#include <hpfriends/cluster.h>
#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>
#include <hpfriends/storage.h>

#define HPF_PLUGIN_ERROR (hpf_plugin_error_quark())
GQuark hpf_plugin_error_quark(void);

/** One configured plugin instance. */
struct plugin_instance {
    const struct hpf_plugin *desc;
    void *inst;                 /**< what create() returned */
    struct hpf_plugin_ctx *ctx; /**< handed to the plugin's host calls */
    GModule *module;
    char *name; /**< instance name, e.g. "sink:archive" */
    gboolean started;
};

/**
 * Directory plugins are loaded from: $HPFRIENDS_PLUGIN_DIR when set, else
 * `configured` when not NULL, else the install directory.
 */
const char *plugin_dir_resolve(const char *configured);

/**
 * Call first thing in main(), before any thread exists.  Sets what the
 * libraries plugins link read from the environment as they are loaded:
 * libmongoc's constructor would otherwise put its diagnostic counters in a
 * /dev/shm/mongoc-PID segment that a killed process leaves behind, and
 * print "Falling back to malloc for counters" on stderr when a later
 * process gets that pid.  What the operator set is kept.
 */
void plugin_process_init(void);

/**
 * Load module `module` (a file name without ".so", or a path containing a
 * '/') from `dir`, check it provides `kind`, validate that every key in
 * `config` (key -> value, may be NULL) is one the plugin accepts, and run
 * its create().  `config_dir` anchors relative paths.  The instance name is
 * used as log prefix.  Returns NULL with error set on any failure; the
 * message names the plugin (and both versions on an ABI mismatch).
 */
struct plugin_instance *plugin_instance_new(const char *dir, const char *module, enum hpf_kind kind,
                                            const char *instance_name, GHashTable *config,
                                            const char *config_dir, GError **error);

/** Run start(); FALSE with error set when it fails. */
gboolean plugin_instance_start(struct plugin_instance *pi, GError **error);

/** destroy() the instance and unload the module.  NULL is fine. */
void plugin_instance_free(struct plugin_instance *pi);

/** Storage that auth plugins of this process reach via host->authkey_lookup. */
void plugin_set_storage(struct plugin_instance *storage);

/**
 * Where host->cluster_inject() goes (core/cluster.c sets it while a cluster
 * plugin runs): calls made with the context `from` (that plugin's) reach fn;
 * any other call, or any call while fn is NULL, fails with
 * HPF_ERR_UNSUPPORTED.
 */
typedef int (*plugin_inject_fn)(void *data, const struct hpf_message *msg);
void plugin_set_cluster_inject(plugin_inject_fn fn, void *data, const struct hpf_plugin_ctx *from);

/**
 * True when an auth plugin's grants come from the configured storage
 * (HPF_AUTH_FROM_STORAGE, ABI 1.4), so its sessions are re-checked when the
 * data reloads.  False for plugins built before 1.4.
 */
gboolean plugin_auth_from_storage(const struct plugin_instance *pi);

/** The host table handed to plugins. */
const struct hpf_host *plugin_host(void);

/**
 * Auth request as the core sees it: the public part first, then what
 * host->auth_grant() fills in.
 */
struct auth_request {
    struct hpf_auth_request pub;
    gboolean granted;
    char *owner;
    GPtrArray *publish;   /**< char * */
    GPtrArray *subscribe; /**< char * */
};

void auth_request_init(struct auth_request *req);
void auth_request_clear(struct auth_request *req);

#endif
