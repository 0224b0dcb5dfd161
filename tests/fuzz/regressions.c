/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fuzz corpora as regression tests of the normal build (no libFuzzer,
 * any compiler): every file under tests/fuzz/corpus/<target>/ of fuzz_wire,
 * fuzz_config, fuzz_console, fuzz_nats_codec and (built with libmongoc)
 * fuzz_mongo_read goes through the fuzz targets' own code (compiled with
 * FUZZ_REPLAY), with their
 * invariant checks counted instead of aborting.  Crashes the fuzzers found
 * are corpus files too, so they are replayed here for good; the cases at
 * the end pin the ones worth a name.
 *
 * The corpus is found under $HPF_SRCDIR (set by `make check`), else under
 * the source directory this was built from.
 */
#include <stdio.h>
#include <string.h>

#include "../common/cunit_run.h"
#include "config.h"
#include "fuzz_common.h"
#include "wire.h"

static const char *srcdir(void)
{
    const char *d = g_getenv("HPF_SRCDIR");
#ifdef FUZZ_SRCDIR
    if (!d || !*d)
        d = FUZZ_SRCDIR;
#endif
    return d && *d ? d : ".";
}

/* Replay every file of corpus/<target>/ through one(); returns how many. */
static guint replay_dir(const char *target, int (*one)(const uint8_t *, size_t))
{
    char *dir = g_build_filename(srcdir(), "tests", "fuzz", "corpus", target, NULL);
    GError *e = NULL;
    GDir *d = g_dir_open(dir, 0, &e);
    if (!d) {
        fprintf(stderr, "\n  %s\n", e->message);
        g_error_free(e);
        g_free(dir);
        return 0;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d)))
        g_ptr_array_add(names, g_strdup(name));
    g_dir_close(d);

    guint n = 0;
    for (guint i = 0; i < names->len; i++) {
        char *path = g_build_filename(dir, names->pdata[i], NULL);
        char *data = NULL;
        gsize len = 0;
        if (!g_file_test(path, G_FILE_TEST_IS_REGULAR) ||
            !g_file_get_contents(path, &data, &len, NULL)) {
            g_free(path);
            continue;
        }
        unsigned before = fuzz_failures;
        one((const uint8_t *)data, len);
        if (fuzz_failures != before)
            fprintf(stderr, "  ^ in %s\n", path);
        CU_ASSERT_EQUAL(fuzz_failures, before);
        n++;
        g_free(data);
        g_free(path);
    }
    g_ptr_array_unref(names);
    g_free(dir);
    return n;
}

static void test_wire_corpus(void)
{
    guint n = replay_dir("fuzz_wire", fuzz_wire_one);
    printf("(%u files) ", n);
    CU_ASSERT(n > 0);
}

static void test_config_corpus(void)
{
    guint n = replay_dir("fuzz_config", fuzz_config_one);
    printf("(%u files) ", n);
    CU_ASSERT(n > 0);
}

static void test_console_corpus(void)
{
    guint n = replay_dir("fuzz_console", fuzz_console_one);
    printf("(%u files) ", n);
    CU_ASSERT(n > 0);
}

static void test_nats_codec_corpus(void)
{
    guint n = replay_dir("fuzz_nats_codec", fuzz_nats_codec_one);
    printf("(%u files) ", n);
    CU_ASSERT(n > 0);
}

#ifdef FUZZ_HAVE_MONGO
static void test_mongo_read_corpus(void)
{
    guint n = replay_dir("fuzz_mongo_read", fuzz_mongo_read_one);
    printf("(%u files) ", n);
    CU_ASSERT(n > 0);
}
#endif

/* The replay itself must catch a broken invariant, or it proves nothing. */
static void test_checks_are_counted(void)
{
    unsigned before = fuzz_failures;
    fprintf(stderr, "\n  (one deliberate check failure follows)\n");
    FUZZ_CHECK(0 == 1, "deliberate");
    CU_ASSERT_EQUAL(fuzz_failures, before + 1);
    fuzz_failures = before;
}

int main(void)
{
    fuzz_count_failures = TRUE;
    fuzz_wire_init();
    fuzz_config_init();
    fuzz_console_init();
    fuzz_nats_codec_init();
#ifdef FUZZ_HAVE_MONGO
    fuzz_mongo_read_init();
#endif
    static const struct test_case cases[] = {
        {"replay checks are counted", test_checks_are_counted},
        {"corpus: fuzz_wire", test_wire_corpus},
        {"corpus: fuzz_config", test_config_corpus},
        {"corpus: fuzz_console", test_console_corpus},
        {"corpus: fuzz_nats_codec", test_nats_codec_corpus},
#ifdef FUZZ_HAVE_MONGO
        {"corpus: fuzz_mongo_read", test_mongo_read_corpus},
#endif
        {NULL, NULL},
    };
    return cunit_run("fuzz regressions", cases);
}
