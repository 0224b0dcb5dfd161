/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * JSON helpers (core/jsonutil.c): the pre-scan that stands before
 * json-glib's recursive parser for untrusted text (strict JSON only, a
 * depth bound that comments and '...' strings cannot hide from), and the
 * typed getters and builders the console and export/import share.
 */
#include <string.h>

#include "../common/cunit_run.h"
#include "jsonutil.h"

static const char *scan(const char *text, guint max)
{
    return jsonutil_prescan(text, strlen(text), max);
}

/* Refused, and the reason says why. */
static void refused(const char *text, guint max, const char *why)
{
    const char *got = scan(text, max);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got)
        CU_ASSERT_PTR_NOT_NULL(strstr(got, why));
}

static void test_prescan_accepts_strict_json(void)
{
    CU_ASSERT_PTR_NULL(scan("{\"a\": [1, 2.5e3, -4, true, false, null], \"b\": \"x\\\"]]]\"}", 4));
    CU_ASSERT_PTR_NULL(scan("[[[[]]]]", 4));
    CU_ASSERT_PTR_NULL(scan("", 1));
    /* Brackets inside strings are not nesting. */
    CU_ASSERT_PTR_NULL(scan("[\"[[[[[[[[[[\"]", 1));
}

static void test_prescan_depth(void)
{
    CU_ASSERT_PTR_NULL(scan("[[[]]]", 3));
    refused("[[[[]]]]", 3, "nested too deeply");
    refused("{\"a\":{\"b\":{\"c\":{}}}}", 3, "nested too deeply");
    /* Closers cannot go below zero to buy room for more openers. */
    CU_ASSERT_PTR_NOT_NULL(scan("]]]][[[[[", 3));
}

static void test_prescan_refuses_lenient_syntax(void)
{
    /* What json-glib's lenient parser takes, and what could hide closers. */
    refused("['a]]]']", 8, "strict JSON");
    refused("[/* ]]] */ 1]", 8, "strict JSON");
    refused("[1] // x", 8, "strict JSON");
    refused("[\"a\nb\"]", 8, "control character");
    refused("[\"jojo\\u0000x\"]", 8, "NUL");
    CU_ASSERT_PTR_NULL(scan("[\"\\\\u0000\", \"\\u0041\"]", 8)); /* "\\u0000" is text */
    const char nul[] = "[1,\0 2]";
    CU_ASSERT_PTR_NOT_NULL(jsonutil_prescan(nul, sizeof nul - 1, 8));
}

static void test_prescan_one_value(void)
{
    /* json-glib reads the first of two and ignores the rest. */
    refused("{}{}", 8, "more than one value");
    refused("{\"user\": \"a\"} {\"user\": \"root\"}", 8, "more than one value");
    refused("[1]\n[2]", 8, "more than one value");
    refused("\"a\" \"b\"", 8, "more than one value");
    refused("1 2", 8, "more than one value");
    refused("true{}", 8, "more than one value");
    CU_ASSERT_PTR_NULL(scan("  {\"a\": [1, {}]}  \r\n", 8));
    CU_ASSERT_PTR_NULL(scan("12", 8));
}

/* jsonutil_parse refuses text with why containing want; NULL want: accepts it. */
static void parsed(const char *text, const char *want)
{
    char *why = NULL;
    JsonNode *n = jsonutil_parse(text, strlen(text), 8, &why);
    if (want) {
        CU_ASSERT_PTR_NULL(n);
        CU_ASSERT_PTR_NOT_NULL(why);
        if (why)
            CU_ASSERT_PTR_NOT_NULL(strstr(why, want));
    } else {
        CU_ASSERT_PTR_NOT_NULL(n);
        CU_ASSERT_PTR_NULL(why);
    }
    if (n)
        json_node_unref(n);
    g_free(why);
}

static void test_parse_duplicate_keys(void)
{
    parsed("{\"a\": 1, \"a\": 2}", "twice");
    parsed("{\"user\": \"alice\", \"x\": 0, \"user\": \"root\"}", "twice");
    /* The same key spelled with an escape is the same key. */
    parsed("{\"ab\": 1, \"a\\u0062\": 2}", "twice");
    parsed("[{\"a\": 1}, {\"b\": {\"c\": 1, \"c\": 1}}]", "twice");
    parsed("{\"a\": {\"a\": 1}, \"b\": [{\"a\": 2}, {\"a\": 3}]}", NULL);
    parsed("{}{}", "more than one value");
    parsed("{\"a\": ", "bad JSON");
    parsed("   ", "empty");
}

static void test_getters_and_builders(void)
{
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    jsonutil_add_str(b, "s", "v");
    jsonutil_add_str(b, "n", NULL);
    jsonutil_add_bool(b, "t", TRUE);
    GPtrArray *a = g_ptr_array_new();
    g_ptr_array_add(a, "x");
    g_ptr_array_add(a, "y");
    jsonutil_add_strv(b, "l", a);
    g_ptr_array_unref(a);
    json_builder_set_member_name(b, "i");
    json_builder_add_int_value(b, 42);
    json_builder_end_object(b);
    JsonNode *root = json_builder_get_root(b);
    g_object_unref(b);

    char *text = jsonutil_to_text(root, FALSE);
    CU_ASSERT_STRING_EQUAL(text,
                           "{\"s\":\"v\",\"n\":null,\"t\":true,\"l\":[\"x\",\"y\"],\"i\":42}");
    g_free(text);
    text = jsonutil_to_text(root, TRUE);
    CU_ASSERT(g_str_has_suffix(text, "}\n"));
    g_free(text);

    JsonObject *o = json_node_get_object(root);
    CU_ASSERT_STRING_EQUAL(jsonutil_get_str(o, "s"), "v");
    CU_ASSERT_PTR_NULL(jsonutil_get_str(o, "n"));
    CU_ASSERT_PTR_NULL(jsonutil_get_str(o, "i"));
    CU_ASSERT_PTR_NULL(jsonutil_get_str(o, "missing"));
    CU_ASSERT_EQUAL(jsonutil_get_int(o, "i"), 42);
    CU_ASSERT_EQUAL(jsonutil_get_int(o, "s"), -1);
    CU_ASSERT_EQUAL(jsonutil_get_bool(o, "t"), TRUE);
    CU_ASSERT_EQUAL(jsonutil_get_bool(o, "missing"), FALSE);
    CU_ASSERT_EQUAL(jsonutil_get_bool(o, "s"), -1);
    json_node_unref(root);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"pre-scan accepts strict JSON", test_prescan_accepts_strict_json},
        {"pre-scan bounds the depth", test_prescan_depth},
        {"pre-scan refuses what strict JSON does not allow", test_prescan_refuses_lenient_syntax},
        {"pre-scan takes one value only", test_prescan_one_value},
        {"parse refuses a key twice", test_parse_duplicate_keys},
        {"getters and builders", test_getters_and_builders},
        {NULL, NULL},
    };
    return cunit_run("jsonutil", cases);
}
