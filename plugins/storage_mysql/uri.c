/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storage_mysql's `uri` key: mysql://USER:PASSWORD@HOST:PORT/DATABASE?OPTIONS
 * (also mariadb://, and mysql+DRIVER:// as Python database URLs spell it), the form
 * hpfeeds3's `--auth database+mysql://...` takes.
 *
 * User, password and database may hold %-escapes (a password with '@' or
 * '/' in it); a %00, a malformed escape or text that is not UTF-8 is an
 * error, never a truncated credential.  HOST may be a name, an IPv4 address
 * or a bracketed IPv6 address; no host means the local server through its
 * socket.  Options, each at most once:
 *   ssl_mode=disabled|required|verify_ca|verify_identity   (tls=false|true,
 *     or ssl=, are short for disabled and verify_identity); required encrypts but
 *     does not check the server's certificate; the verify modes check the
 *     chain against ssl_ca/ssl_capath (or the system's trust store) and the
 *     host name (libmariadb checks both in either mode).  Without
 *     ssl_mode, any ssl_* file option means verify_identity, none means
 *     disabled.  There is no "preferred": a downgrade to plain text must not
 *     be silent.
 *   ssl_ca, ssl_capath, ssl_cert, ssl_key, ssl_cipher: file names (cipher list)
 *   unix_socket=/path: the socket, for a URI without host
 *   charset (utf8mb4 or utf8), min_size, max_size, pool_recycle: what Python
 *     drivers take; checked and ignored (see python_option())
 * Anything else is an error naming the option, so a typo cannot turn TLS off.
 */
#include "mysql_store.h"

#include <string.h>

#define MAX_URI_LEN 4096

static const char *const file_opts[] = {"ssl_ca",  "ssl_capath", "ssl_cert",
                                        "ssl_key", "ssl_cipher", "unix_socket"};

void my_target_clear(struct my_target *t)
{
    g_free(t->host);
    g_free(t->user);
    if (t->password)
        memset(t->password, 0, strlen(t->password));
    g_free(t->password);
    g_free(t->db);
    g_free(t->unix_socket);
    g_free(t->ssl_ca);
    g_free(t->ssl_capath);
    g_free(t->ssl_cert);
    g_free(t->ssl_key);
    g_free(t->ssl_cipher);
    memset(t, 0, sizeof *t);
}

static char **file_opt_slot(struct my_target *t, const char *key)
{
    char **slots[] = {&t->ssl_ca,  &t->ssl_capath, &t->ssl_cert,
                      &t->ssl_key, &t->ssl_cipher, &t->unix_socket};
    for (size_t i = 0; i < G_N_ELEMENTS(file_opts); i++)
        if (!strcmp(key, file_opts[i]))
            return slots[i];
    return NULL;
}

static int tls_mode(const char *key, const char *value, int *mode, char *err, size_t err_len)
{
    static const struct {
        const char *key, *value;
        int mode;
    } modes[] = {
        {"ssl_mode", "disabled", MY_TLS_DISABLED}, {"ssl_mode", "required", MY_TLS_REQUIRED},
        {"ssl_mode", "verify_ca", MY_TLS_VERIFY},  {"ssl_mode", "verify_identity", MY_TLS_VERIFY},
        {"tls", "false", MY_TLS_DISABLED},         {"tls", "true", MY_TLS_VERIFY},
        {"ssl", "false", MY_TLS_DISABLED},         {"ssl", "true", MY_TLS_VERIFY},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++)
        if (!strcmp(key, modes[i].key) && !g_ascii_strcasecmp(value, modes[i].value)) {
            *mode = modes[i].mode;
            return HPF_OK;
        }
    return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                         strcmp(key, "ssl_mode")
                             ? "uri: tls=%s (or ssl=): want true or false"
                             : "uri: ssl_mode=%s: want disabled, required, verify_ca or "
                               "verify_identity",
                         value);
}

/*
 * Options a URI written for hpfeeds3's Python database drivers may carry:
 * pool sizes (one connection serves here: storage calls are serialised) and
 * the character set (always utf8mb4 here).  Checked, then ignored.
 */
static gboolean python_option(const char *key)
{
    return !strcmp(key, "charset") || !strcmp(key, "min_size") || !strcmp(key, "max_size") ||
           !strcmp(key, "pool_recycle");
}

static int python_option_ok(const char *key, const char *value, char *err, size_t err_len)
{
    if (!strcmp(key, "charset")) {
        if (!g_ascii_strcasecmp(value, "utf8mb4") || !g_ascii_strcasecmp(value, "utf8") ||
            !g_ascii_strcasecmp(value, "utf8mb3"))
            return HPF_OK;
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: charset=%s: only utf8mb4 is used (utf8 is accepted)", value);
    }
    if (g_ascii_string_to_signed(value, 10, -1, G_MAXINT32, NULL, NULL))
        return HPF_OK;
    return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: %s=%s: not a number", key, value);
}

/* One key=value option into t; `mode` -1 until an ssl_mode/tls was given. */
static int take_option(const char *key, const char *value, struct my_target *t, int *mode,
                       char *err, size_t err_len)
{
    if (!g_utf8_validate(value, -1, NULL) || !*value)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: option %s: empty or not UTF-8",
                             key);
    char **slot = file_opt_slot(t, key);
    if (slot) {
        if (*slot)
            return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: option %s given twice", key);
        *slot = g_strdup(value);
        return HPF_OK;
    }
    if (!strcmp(key, "ssl_mode") || !strcmp(key, "tls") || !strcmp(key, "ssl")) {
        if (*mode >= 0)
            return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: give ssl_mode or tls once");
        return tls_mode(key, value, mode, err, err_len);
    }
    if (python_option(key))
        return python_option_ok(key, value, err, err_len);
    return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                         "uri: unknown option '%s' (known: ssl_mode, tls, ssl, ssl_ca, ssl_capath, "
                         "ssl_cert, ssl_key, ssl_cipher, unix_socket, charset, min_size, max_size, "
                         "pool_recycle)",
                         key);
}

/* The &-separated options, each %-unescaped; a repeat is an error, not "the last wins". */
static int parse_options(const char *query, struct my_target *t, int *mode, char *err,
                         size_t err_len)
{
    char **items = g_strsplit(query, "&", -1);
    int status = HPF_OK;
    for (char **item = items; status == HPF_OK && *item; item++) {
        if (!**item)
            continue;
        const char *eq = strchr(*item, '=');
        char *key = eq ? g_uri_unescape_segment(*item, eq, NULL) : NULL;
        char *value = eq ? g_uri_unescape_string(eq + 1, NULL) : NULL;
        if (!key || !value)
            status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                                   "uri: options: want key=value with valid %%-escapes");
        else
            status = take_option(key, value, t, mode, err, err_len);
        g_free(key);
        g_free(value);
    }
    g_strfreev(items);
    return status;
}

static int parse_query(const char *query, struct my_target *t, char *err, size_t err_len)
{
    int mode = -1;
    if (query && *query) {
        int status = parse_options(query, t, &mode, err, err_len);
        if (status != HPF_OK)
            return status;
    }
    gboolean files = t->ssl_ca || t->ssl_capath || t->ssl_cert || t->ssl_key || t->ssl_cipher;
    t->tls = mode >= 0 ? (enum my_tls)mode : files ? MY_TLS_VERIFY : MY_TLS_DISABLED;
    if (t->tls == MY_TLS_DISABLED && files)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: ssl_* files given but TLS disabled: drop one or the other");
    return HPF_OK;
}

static gboolean plain_text(const char *s, size_t max)
{
    if (!s || strlen(s) > max || !g_utf8_validate(s, -1, NULL))
        return FALSE;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return FALSE;
    return TRUE;
}

/* user[:password] from GUri (already unescaped), with their checks. */
static int take_userinfo(GUri *u, struct my_target *t, char *err, size_t err_len)
{
    const char *user = g_uri_get_user(u), *password = g_uri_get_password(u);
    if (!user || !*user)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: no user: use mysql://USER:PASSWORD@HOST:PORT/DATABASE");
    if (!plain_text(user, 255))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: the user name is not printable UTF-8 of at most 255 bytes");
    if (password && !plain_text(password, 1024))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: the password is not printable UTF-8 of at most 1024 bytes");
    t->user = g_strdup(user);
    t->password = password ? g_strdup(password) : NULL;
    return HPF_OK;
}

static int take_location(GUri *u, struct my_target *t, char *err, size_t err_len)
{
    const char *host = g_uri_get_host(u);
    if (host && *host) {
        if (!plain_text(host, 255))
            return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: bad host name");
        t->host = g_strdup(host);
    }
    int port = g_uri_get_port(u);
    if (port == 0)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: port 0");
    t->port = port > 0 ? (unsigned)port : 3306;
    const char *path = g_uri_get_path(u);
    if (path && *path == '/')
        path++;
    if (!path || !*path)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: no database name: use mysql://USER:PASSWORD@HOST:PORT/DATABASE");
    if (strchr(path, '/') || !plain_text(path, 64))
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: the database name '%s' is not one name of at most 64 bytes",
                             path);
    t->db = g_strdup(path);
    return HPF_OK;
}

/* mysql, mariadb, and the SQLAlchemy-style mysql+DRIVER (the driver is always libmariadb here). */
static gboolean known_scheme(const char *scheme)
{
    static const char *const names[] = {"mysql", "mariadb"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        size_t n = strlen(names[i]);
        if (!g_ascii_strncasecmp(scheme, names[i], n) && (scheme[n] == '\0' || scheme[n] == '+'))
            return TRUE;
    }
    return FALSE;
}

int my_target_parse(const char *uri, struct my_target *t, char *err, size_t err_len)
{
    memset(t, 0, sizeof *t);
    if (!uri || !*uri)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "missing required key 'uri' "
                             "(mysql://USER:PASSWORD@HOST:PORT/DATABASE)");
    if (strlen(uri) > MAX_URI_LEN)
        return hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: longer than %d bytes",
                             MAX_URI_LEN);
    GError *error = NULL;
    GUri *u = g_uri_parse(uri, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_QUERY, &error);
    if (!u) {
        /* GLib's message quotes the URI, password included: not repeated. */
        g_error_free(error);
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "uri: not a valid mysql://USER:PASSWORD@HOST:PORT/DATABASE URI "
                             "(a %%-escape that is malformed or decodes to NUL, or a bad port?)");
    }
    int status = HPF_OK;
    if (!known_scheme(g_uri_get_scheme(u)))
        status =
            hpf_set_error(err, err_len, HPF_ERR_INVALID,
                          "uri: scheme '%s': want mysql:// or mariadb://", g_uri_get_scheme(u));
    if (status == HPF_OK && g_uri_get_fragment(u))
        status =
            hpf_set_error(err, err_len, HPF_ERR_INVALID, "uri: a #fragment means nothing here");
    if (status == HPF_OK)
        status = take_userinfo(u, t, err, err_len);
    if (status == HPF_OK)
        status = take_location(u, t, err, err_len);
    if (status == HPF_OK)
        status = parse_query(g_uri_get_query(u), t, err, err_len);
    if (status == HPF_OK && t->host && t->unix_socket)
        status = hpf_set_error(err, err_len, HPF_ERR_INVALID,
                               "uri: unix_socket is for a URI without a host");
    g_uri_unref(u);
    if (status != HPF_OK)
        my_target_clear(t);
    return status;
}
