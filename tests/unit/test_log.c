/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging (core/log.c): every line is escaped so that what a peer sends
 * (a newline in an ident, an ESC sequence, bytes that are not UTF-8) can
 * neither forge a line nor reach a terminal raw; levels filter; lines are
 * bounded; the rate limiter lets one line an interval through and counts
 * the rest.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/cunit_run.h"
#include "log.h"

/* What one log call wrote to stderr. */
static char *capture(int level, const char *fmt, const char *arg)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    if (saved < 0 || !tmp)
        return NULL;
    dup2(fileno(tmp), 2);
    log_msg(level, fmt, arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp);
    char *out = g_malloc0((gsize)MAX(n, 0) + 1);
    rewind(tmp);
    if (n > 0 && fread(out, 1, (size_t)n, tmp) != (size_t)n)
        out[0] = '\0';
    fclose(tmp);
    return out;
}

static void test_escaping(void)
{
    log_set_level(HPF_LOG_DEBUG);
    char *out = capture(HPF_LOG_WARNING, "auth failed for %s", "eve\n2026 error forged");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "warning auth failed for eve\\x0a2026 error forged\n"));
    CU_ASSERT_EQUAL(strchr(out, '\n'), out + strlen(out) - 1); /* one line */
    g_free(out);

    /* A backslash doubled: a client's literal "\x0a" is not an escape. */
    out = capture(HPF_LOG_ERR, "ident %s", "a\\x0a");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ident a\\\\x0a\n"));
    g_free(out);

    out = capture(HPF_LOG_ERR, "channel %s", "\x1b[31mred\x7f");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "channel \\x1b[31mred\\x7f\n"));
    g_free(out);

    /* Invalid UTF-8 and C1 controls escaped, valid UTF-8 kept. */
    out = capture(HPF_LOG_ERR, "ident %s",
                  "gr\xc3\xbc\xc3\x9f"
                  "e \xff \xc2\x85 \xf0\x9f\x90\x9d");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ident gr\xc3\xbc\xc3\x9f"
                                       "e \\xff \\xc2\\x85 \xf0\x9f\x90\x9d\n"));
    g_free(out);
}

/* The one escaper: logs, ERROR texts, the console and hpfriendsctl show client bytes this way. */
static void test_escape(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain.chan-1", "plain.chan-1"},
        {"gr\xc3\xbc\xc3\x9f"
         "e \xf0\x9f\x90\x9d",
         "gr\xc3\xbc\xc3\x9f"
         "e \xf0\x9f\x90\x9d"},
        {"a\nb\x1b[0m\x7f", "a\\x0ab\\x1b[0m\\x7f"},
        {"back\\slash", "back\\\\slash"},
        /* C1 controls byte by byte, as invalid bytes: every \xNN is one input byte. */
        {"nel\xc2\x85", "nel\\xc2\\x85"},
        {"bad\xff\xc3", "bad\\xff\\xc3"},
        /* What no name may hold: bidi overrides and isolates, zero-width, BOM, separators. */
        {"e\xe2\x80\xaelif", "e\\xe2\\x80\\xaelif"},
        {"i\xe2\x81\xa6x", "i\\xe2\\x81\\xa6x"},
        {"z\xe2\x80\x8bw", "z\\xe2\\x80\\x8bw"},
        {"\xef\xbb\xbf"
         "bom",
         "\\xef\\xbb\\xbfbom"},
        {"l\xe2\x80\xa8s", "l\\xe2\\x80\\xa8s"},
        {"n\xef\xbf\xbe", "n\\xef\\xbf\\xbe"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *got = log_escape(cases[i].in);
        CU_ASSERT_STRING_EQUAL(got, cases[i].out);
        g_free(got);
    }
    char *got = log_escape(NULL);
    CU_ASSERT_STRING_EQUAL(got, "");
    g_free(got);
    /* Cut at a character, never inside an escape or a UTF-8 sequence. */
    char out[8];
    CU_ASSERT_EQUAL(log_escape_into("ab\x1b", 3, out, sizeof out), 6);
    CU_ASSERT_STRING_EQUAL(out, "ab\\x1b");
    CU_ASSERT_EQUAL(log_escape_into("abcd\x1b", 5, out, sizeof out), 4);
    CU_ASSERT_STRING_EQUAL(out, "abcd");
    CU_ASSERT_EQUAL(log_escape_into("abcdef\xc3\xbc", 8, out, sizeof out), 6);
    CU_ASSERT_STRING_EQUAL(out, "abcdef");
}

static void test_levels_and_bounds(void)
{
    log_set_level(HPF_LOG_NOTICE);
    char *out = capture(HPF_LOG_INFO, "%s", "not shown");
    CU_ASSERT_STRING_EQUAL(out, "");
    g_free(out);
    CU_ASSERT_EQUAL(log_get_level(), HPF_LOG_NOTICE);

    char *big = g_strnfill(100000, '\n');
    out = capture(HPF_LOG_ERR, "%s", big);
    CU_ASSERT(strlen(out) < 8192); /* bounded, however long the text */
    CU_ASSERT_EQUAL(strchr(out, '\n'), out + strlen(out) - 1);
    g_free(out);
    g_free(big);
}

static void test_ratelimit(void)
{
    struct log_ratelimit rl = LOG_RATELIMIT_INIT(3600);
    uint64_t suppressed = 99;
    CU_ASSERT(log_ratelimit_ok(&rl, &suppressed));
    CU_ASSERT_EQUAL(suppressed, 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT(!log_ratelimit_ok(&rl, &suppressed));
    CU_ASSERT_EQUAL(rl.suppressed, 5);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"lines escaped: no forged lines, no raw controls", test_escaping},
        {"one escaper for what clients sent", test_escape},
        {"levels filter, lines are bounded", test_levels_and_bounds},
        {"rate limit", test_ratelimit},
        {NULL, NULL},
    };
    return cunit_run("log", cases);
}
