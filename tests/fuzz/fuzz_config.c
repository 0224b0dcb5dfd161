/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_config: the config file reader (core/config.c).
 *
 * Input: a key file.  It is loaded with config_load_file() from a scratch
 * file and finished with config_finish(); a config that loads must satisfy
 * what the broker relies on (a listen address, storage, an auth chain, a
 * name that fits INFO).  Then each of the first lines is given to
 * config_parse_listen(), config_parse_size() and, as hpfeeds3-style flags,
 * to config_apply_flags().
 */
#include <string.h>

#include "config.h"
#include "fuzz_common.h"
#include "wire.h"

#define MAX_LINES 32

static char *conf_path;

/* Hosts made of these are meant to survive listen_addr_to_string(). */
static gboolean plain_host(const char *h)
{
    for (; *h; h++)
        if (!g_ascii_isalnum(*h) && !strchr(".:-_%*", *h))
            return FALSE;
    return TRUE;
}

static void check_listen(const struct listen_addr *la, const char *spec)
{
    FUZZ_CHECK(la->host && la->port, "'%s': listen address without host or port", spec);
    if (!la->host || !la->port)
        return;
    guint64 port;
    FUZZ_CHECK(g_ascii_string_to_unsigned(la->port, 10, 0, 65535, &port, NULL),
               "'%s': port '%s' is not 0-65535", spec, la->port);
    if (!plain_host(la->host))
        return;
    /* What bind_one() logs must name the same address. */
    char *back = listen_addr_to_string(la);
    GError *e = NULL;
    struct listen_addr *again = config_parse_listen(back, &e);
    FUZZ_CHECK(again && again->tls == la->tls && !strcmp(again->host, la->host) &&
                   !strcmp(again->port, la->port),
               "'%s' printed as '%s' reads back %s", spec, back,
               again ? "as another address" : e->message);
    g_clear_error(&e);
    listen_addr_free(again);
    g_free(back);
}

static void check_plugin_conf(const struct plugin_conf *pc, const char *what)
{
    FUZZ_CHECK(pc->section && pc->name && pc->plugin && *pc->plugin && pc->keys,
               "%s: incomplete plugin section", what);
}

static void check_config(struct config *cfg)
{
    FUZZ_CHECK(cfg->name && strlen(cfg->name) <= WIRE_MAX_NAME,
               "broker name of %zu bytes does not fit INFO", cfg->name ? strlen(cfg->name) : 0);
    FUZZ_CHECK(cfg->dir && g_path_is_absolute(cfg->dir), "config dir '%s' is not absolute",
               cfg->dir ? cfg->dir : "(null)");
    FUZZ_CHECK(cfg->listen->len > 0, "no listen address after config_finish()");
    for (guint i = 0; i < cfg->listen->len; i++)
        check_listen(cfg->listen->pdata[i], "[broker] listen");
    FUZZ_CHECK(cfg->max_frame >= 64, "max_frame %u", cfg->max_frame);
    FUZZ_CHECK(cfg->max_queued_bytes >= 4096, "max_queued_bytes %zu", cfg->max_queued_bytes);
    FUZZ_CHECK(cfg->reload_interval >= 1 && cfg->auth_timeout >= 1 && cfg->max_connections >= 1,
               "a minimum of 1 was not enforced");
    FUZZ_CHECK(cfg->storage != NULL, "no storage after config_finish()");
    if (cfg->storage) {
        check_plugin_conf(cfg->storage, "[storage]");
        const char *path = g_hash_table_lookup(cfg->storage->keys, "path");
        char *resolved = config_resolve_path(cfg, path);
        FUZZ_CHECK(!path || (resolved && *resolved), "storage path '%s' resolves to nothing", path);
        g_free(resolved);
    }
    FUZZ_CHECK(cfg->auth->len > 0, "empty auth chain after config_finish()");
    for (guint i = 0; i < cfg->auth->len; i++)
        check_plugin_conf(cfg->auth->pdata[i], "[auth]");
    for (guint i = 0; i < cfg->sinks->len; i++)
        check_plugin_conf(cfg->sinks->pdata[i], "[sink:]");
}

static void check_lines(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    char **lines = g_strsplit(text, "\n", MAX_LINES + 1);
    guint n = g_strv_length(lines);
    if (n > MAX_LINES)
        n = MAX_LINES;

    for (guint i = 0; i < n; i++) {
        GError *e = NULL;
        struct listen_addr *la = config_parse_listen(lines[i], &e);
        FUZZ_CHECK((la == NULL) == (e != NULL), "'%s': result and error disagree", lines[i]);
        if (la)
            check_listen(la, lines[i]);
        listen_addr_free(la);
        g_clear_error(&e);

        /* The same line as an hpfeeds3 -e/--endpoint string. */
        char *cert = NULL, *key = NULL;
        la = config_parse_endpoint(lines[i], &cert, &key, &e);
        FUZZ_CHECK((la == NULL) == (e != NULL), "endpoint '%s': result and error disagree",
                   lines[i]);
        FUZZ_CHECK(!la || (la->host && la->port), "endpoint '%s': no host or port", lines[i]);
        FUZZ_CHECK(!la || la->tls || (!cert && !key), "endpoint '%s': cert on tcp", lines[i]);
        listen_addr_free(la);
        g_free(cert);
        g_free(key);
        g_clear_error(&e);

        guint64 v = 12345;
        if (!config_parse_size(lines[i], &v))
            FUZZ_CHECK(v == 12345, "'%s': refused but wrote %" G_GUINT64_FORMAT, lines[i], v);
    }

    /* hpfeeds3-style flags: lines as --bind, one as --auth and --name. */
    char *saved = NULL;
    if (n < g_strv_length(lines)) { /* cut the list at MAX_LINES */
        saved = lines[n];
        lines[n] = NULL;
    }
    struct config *cfg = config_new_default();
    char *auths[] = {n > 0 ? lines[0] : NULL, NULL};
    GError *e = NULL;
    gboolean ok =
        config_apply_flags(cfg, lines, auths, n > 1 ? lines[1] : NULL, n > 2 ? lines[2] : NULL,
                           n > 3 ? lines[3] : NULL, n > 4 ? lines[4] : NULL, &e);
    FUZZ_CHECK(ok == (e == NULL), "config_apply_flags: result and error disagree");
    if (ok) {
        config_finish(cfg);
        check_config(cfg);
    }
    g_clear_error(&e);
    config_free(cfg);
    if (saved)
        lines[n] = saved;
    g_strfreev(lines);
    g_free(text);
}

void fuzz_config_init(void)
{
    fuzz_setup();
    if (!conf_path) {
        char *dir = fuzz_tmpdir("config");
        conf_path = g_build_filename(dir, "hpfriendsd.conf", NULL);
        g_free(dir);
    }
}

int fuzz_config_one(const uint8_t *data, size_t size)
{
    fuzz_write_file(conf_path, data, size);
    GError *e = NULL;
    struct config *cfg = config_load_file(conf_path, &e);
    FUZZ_CHECK((cfg == NULL) == (e != NULL), "config_load_file: result and error disagree");
    if (cfg) {
        config_finish(cfg);
        check_config(cfg);
        config_free(cfg);
    } else if (e) {
        FUZZ_CHECK(e->message && *e->message, "an error without a message");
    }
    g_clear_error(&e);
    check_lines(data, size);
    return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_config_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_config_one(data, size); }
#endif
