/* SPDX-License-Identifier: BSD-3-Clause */
/* The [web] section of the config file: pure parsing, no side effects. */
#include <string.h>

#include "config.h"

void web_conf_free(struct web_conf *wc)
{
    if (!wc)
        return;
    listen_addr_free(wc->listen);
    g_free(wc->root);
    g_free(wc->tls_cert);
    g_free(wc->tls_key);
    g_strfreev(wc->hostnames);
    g_free(wc->public_host);
    g_free(wc);
}

static gboolean web_fail(GError **error, const char *file, const char *key, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
static gboolean web_fail(GError **error, const char *file, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *base = g_path_get_basename(file);
    g_set_error(error, CONFIG_ERROR, 0, "%s: [web] %s: %s", base, key, why);
    g_free(base);
    g_free(why);
    return FALSE;
}

static gboolean get_uint(const char *v, guint64 min, guint64 max, guint *out)
{
    guint64 n;
    if (!g_ascii_string_to_unsigned(v, 10, min, max, &n, NULL))
        return FALSE;
    *out = (guint)n;
    return TRUE;
}

/* "a.example, b.example" or "*": names a browser may use for the console. */
static gboolean parse_hostnames(struct web_conf *wc, const char *v, GError **error,
                                const char *file)
{
    char **names = g_strsplit_set(v, ", \t", -1);
    GPtrArray *out = g_ptr_array_new();
    gboolean ok = TRUE;
    for (char **n = names; *n && ok; n++) {
        if (!**n)
            continue;
        static const char allowed[] = "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*";
        if (strlen(*n) > 253 || strspn(*n, allowed) != strlen(*n) ||
            (strchr(*n, '*') && strcmp(*n, "*")))
            ok = web_fail(error, file, "hostnames",
                          "expected host names separated by commas, or *, got '%s'", *n);
        else
            g_ptr_array_add(out, g_ascii_strdown(*n, -1));
    }
    g_strfreev(names);
    g_ptr_array_add(out, NULL);
    char **list = (char **)g_ptr_array_free(out, FALSE);
    if (!ok) {
        g_strfreev(list);
        return FALSE;
    }
    g_strfreev(wc->hostnames);
    wc->hostnames = list;
    return TRUE;
}

/*
 * "host:port" or "[v6]:port": where sensors reach the broker when that is
 * not the listener's own address (NAT, a proxy), shown in the console's
 * connection snippets.  The host is a name or an address, nothing a shell
 * or the page could read as more than that.
 */
static gboolean parse_public(struct web_conf *wc, const char *v, GError **error, const char *file)
{
    const char *colon = strrchr(v, ':');
    char *host = colon ? g_strndup(v, colon - v) : NULL;
    gboolean v6 = host && host[0] == '[' && host[strlen(host) - 1] == ']';
    if (v6) {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = 0;
    }
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";
    guint port = 0;
    gboolean ok = host && *host && strlen(host) <= 253 &&
                  strspn(host, v6 ? "0123456789abcdefABCDEF:." : allowed) == strlen(host) &&
                  get_uint(colon + 1, 1, 65535, &port);
    if (!ok) {
        g_free(host);
        return web_fail(error, file, "public_hpfeeds",
                        "expected HOST:PORT (a name or address, [ADDRESS]:PORT for IPv6), "
                        "got '%s'",
                        v);
    }
    g_free(wc->public_host);
    wc->public_host = host;
    wc->public_port = port;
    return TRUE;
}

const char *const config_web_keys[] = {
    "listen",         "root",      "tls_cert",       "tls_key", "session_timeout",
    "login_failures", "hostnames", "public_hpfeeds", NULL,
};

gboolean config_load_web(struct config *cfg, GKeyFile *kf, const char *file, GError **error)
{
    struct web_conf *wc = g_new0(struct web_conf, 1);
    wc->session_timeout = 8 * 3600;
    wc->login_failures = 5;
    web_conf_free(cfg->web);
    cfg->web = wc;

    gsize n = 0;
    char **keys = g_key_file_get_keys(kf, "web", &n, NULL);
    gboolean ok = TRUE;
    for (gsize i = 0; i < n && ok; i++) {
        const char *k = keys[i];
        if (!g_strv_contains(config_web_keys, k)) {
            ok = web_fail(error, file, k, "unknown key");
            break;
        }
        char *v = g_strstrip(g_key_file_get_value(kf, "web", k, NULL));
        if (!strcmp(k, "listen")) {
            GError *e = NULL;
            listen_addr_free(wc->listen);
            wc->listen = config_parse_listen(v, &e);
            if (!wc->listen) {
                ok = web_fail(error, file, k, "%s", e->message);
                g_error_free(e);
            }
        } else if (!strcmp(k, "root") || !strcmp(k, "tls_cert") || !strcmp(k, "tls_key")) {
            char **field = !strcmp(k, "root")       ? &wc->root
                           : !strcmp(k, "tls_cert") ? &wc->tls_cert
                                                    : &wc->tls_key;
            if (!*v) {
                ok = web_fail(error, file, k, "must not be empty");
            } else {
                g_free(*field);
                *field = g_strdup(v);
            }
        } else if (!strcmp(k, "session_timeout")) {
            if (!get_uint(v, 60, 30 * 86400, &wc->session_timeout))
                ok = web_fail(error, file, k, "expected seconds from 60 to 2592000, got '%s'", v);
        } else if (!strcmp(k, "login_failures")) {
            if (!get_uint(v, 1, 1000, &wc->login_failures))
                ok =
                    web_fail(error, file, k, "expected a whole number from 1 to 1000, got '%s'", v);
        } else if (!strcmp(k, "hostnames")) {
            ok = parse_hostnames(wc, v, error, file);
        } else if (!strcmp(k, "public_hpfeeds")) {
            ok = parse_public(wc, v, error, file);
        } else {
            ok = web_fail(error, file, k, "in config_web_keys but not handled");
        }
        g_free(v);
    }
    g_strfreev(keys);
    if (ok && !wc->listen)
        ok = web_fail(error, file, "listen", "missing (e.g. listen = tcp:127.0.0.1:8080)");
    return ok;
}
