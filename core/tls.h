/* SPDX-License-Identifier: BSD-3-Clause */
/* TLS for tls: listeners: one server context, replaced on SIGHUP. */
#ifndef HPF_TLS_H
#define HPF_TLS_H

#include <glib.h>
#include <openssl/ssl.h>

/** A server context for cert and key (PEM), TLS 1.2 or newer; NULL with error. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, GError **error);

#endif
