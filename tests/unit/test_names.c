/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one rule for stored names and secrets (include/hpfriends/names.h):
 * length, valid UTF-8, no controls, no invisible or direction-changing
 * format characters, no non-characters; any other UTF-8 text passes.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <hpfriends/names.h>

#include "../common/cunit_run.h"

static void refused(const char *s, const char *why)
{
    const char *got = hpf_name_check(s, HPF_NAME_MAX);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got && strcmp(got, why))
        fprintf(stderr, "'%s': got \"%s\", want \"%s\"\n", s, got, why);
    if (got)
        CU_ASSERT_STRING_EQUAL(got, why);
}

static void test_accepted(void)
{
    static const char *const good[] = {
        "dionaea.captures",
        "gr\xc3\xbc\xc3\x9f"
        "e",
        "\xf0\x9f\x90\x9d",
        "a b,c",
        "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", /* Hebrew: right-to-left letters are text */
        "\xe2\x80\x94",
        "\xe2\x81\xa5" /* U+2014, U+2065 (unassigned, not a format char) */
        ,
        "\xef\xbf\xbd",
        "\xf3\xa0\x80\x81",
        "\xee\x80\x80",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        const char *why = hpf_name_check(good[i], HPF_NAME_MAX);
        CU_ASSERT_PTR_NULL(why);
        if (why)
            fprintf(stderr, "'%s' refused: %s\n", good[i], why);
    }
}

static void test_refused(void)
{
    const char *fmt = "contains an invisible or bidirectional formatting character, or a "
                      "non-character";
    refused("", "is empty");
    refused("a\x1f", "contains a control character");
    refused("a\xc2\x9b", "contains a control character");
    refused("a\xed\xb0\x80", "is not valid UTF-8");
    /* Bidirectional marks, embeddings, overrides, isolates. */
    static const char *const bidi[] = {
        "\xd8\x9c",     "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xaa",
        "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae",
        "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9",
    };
    /* Zero-width and invisible, BOM, line and paragraph separators. */
    static const char *const invisible[] = {
        "\xe2\x80\x8b", "\xe2\x80\x8c", "\xe2\x80\x8d", "\xe2\x81\xa0",
        "\xe2\x81\xa4", "\xef\xbb\xbf", "\xe2\x80\xa8", "\xe2\x80\xa9",
    };
    /* Non-characters: U+FDD0-U+FDEF, U+xxFFFE and U+xxFFFF. */
    static const char *const nonchars[] = {
        "\xef\xb7\x90", "\xef\xb7\xaf",     "\xef\xbf\xbe",
        "\xef\xbf\xbf", "\xf0\x9f\xbf\xbe", "\xf4\x8f\xbf\xbf",
    };
    const char *const *sets[] = {bidi, invisible, nonchars};
    const gsize lens[] = {G_N_ELEMENTS(bidi), G_N_ELEMENTS(invisible), G_N_ELEMENTS(nonchars)};
    for (gsize s = 0; s < G_N_ELEMENTS(sets); s++) {
        for (gsize i = 0; i < lens[s]; i++) {
            char *name = g_strconcat("admin", sets[s][i], "x", NULL);
            refused(name, fmt);
            g_free(name);
        }
    }
}

int main(void)
{
    static const struct test_case cases[] = {
        {"any other UTF-8 text is a name", test_accepted},
        {"controls, invisible and bidi formatting, non-characters refused", test_refused},
        {NULL, NULL},
    };
    return cunit_run("names", cases);
}
