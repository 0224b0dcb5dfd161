/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Console password hashing with OpenSSL's PBKDF2-HMAC-SHA256: a random salt
 * per hash, the iteration count stored with it (and bounded when read, so
 * a tampered record cannot stall the worker), comparison in constant time.
 */
#include "password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define HASH_LEN 32
#define PREFIX   "pbkdf2-sha256$"
/* Bounds on a stored iteration count: a tampered value must not stall us. */
#define MIN_ITER 1000
#define MAX_ITER 10000000

static gboolean derive(const char *password, const guint8 *salt, gsize salt_len, guint iter,
                       guint8 out[HASH_LEN])
{
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iter,
                             EVP_sha256(), HASH_LEN, out) == 1;
}

guint password_iterations(void)
{
    const char *env = g_getenv("HPFRIENDS_PASSWORD_ITERATIONS");
    guint64 n;
    if (env && g_ascii_string_to_unsigned(env, 10, MIN_ITER, MAX_ITER, &n, NULL))
        return (guint)n;
    return PASSWORD_ITERATIONS;
}

char *password_hash(const char *password, guint iterations)
{
    guint8 salt[SALT_LEN], out[HASH_LEN];
    if (!password || iterations < MIN_ITER || iterations > MAX_ITER)
        return NULL;
    if (RAND_bytes(salt, sizeof salt) != 1 || !derive(password, salt, sizeof salt, iterations, out))
        return NULL;
    char *s64 = g_base64_encode(salt, sizeof salt);
    char *h64 = g_base64_encode(out, sizeof out);
    char *res = g_strdup_printf(PREFIX "%u$%s$%s", iterations, s64, h64);
    g_free(s64);
    g_free(h64);
    OPENSSL_cleanse(out, sizeof out);
    return res;
}

gboolean password_verify(const char *password, const char *stored)
{
    if (!password || !stored || !g_str_has_prefix(stored, PREFIX))
        return FALSE;
    char **parts = g_strsplit(stored + strlen(PREFIX), "$", -1);
    gboolean ok = FALSE;
    guint64 iter;
    guchar *salt = NULL, *want = NULL;
    gsize salt_len = 0, want_len = 0;
    guint8 got[HASH_LEN];
    if (g_strv_length(parts) != 3 ||
        !g_ascii_string_to_unsigned(parts[0], 10, MIN_ITER, MAX_ITER, &iter, NULL))
        goto out;
    salt = g_base64_decode(parts[1], &salt_len);
    want = g_base64_decode(parts[2], &want_len);
    if (salt_len < 8 || want_len != HASH_LEN)
        goto out;
    if (!derive(password, salt, salt_len, (guint)iter, got))
        goto out;
    ok = CRYPTO_memcmp(got, want, HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof got);
out:
    g_free(salt);
    g_free(want);
    g_strfreev(parts);
    return ok;
}
