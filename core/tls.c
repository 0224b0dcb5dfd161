/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TLS server context for tls: listeners and the console: certificate
 * and key loaded and checked against each other at start-up (and again on
 * SIGHUP, when a new context replaces the old), TLS 1.2 or newer, and
 * OpenSSL's error queue turned into one readable message.
 */
#include "tls.h"

#include <openssl/err.h>

#include "config.h"

static void set_ssl_error(GError **error, const char *what, const char *path)
{
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    g_set_error(error, CONFIG_ERROR, 0, "%s %s: %s", what, path, buf);
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, GError **error)
{
    if (!cert || !key) {
        g_set_error(error, CONFIG_ERROR, 0,
                    "[broker] tls_cert and tls_key are needed for tls: listeners "
                    "(or --tlscert and --tlskey)");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        set_ssl_error(error, "TLS", "context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        set_ssl_error(error, "TLS certificate", cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        set_ssl_error(error, "TLS key", key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        set_ssl_error(error, "TLS key does not match the certificate", key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
