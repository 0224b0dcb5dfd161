/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the fuzz targets share: libFuzzer's entry points, invariant checks,
 * scratch files, quiet logs, where the plugins are.
 *
 * Each target keeps its work in fuzz_<target>_one() (and its set-up in
 * fuzz_<target>_init()), and defines LLVMFuzzerTestOneInput() around it
 * unless FUZZ_REPLAY is defined.  tests/fuzz/regressions.c compiles the
 * wire, config, console, nats_codec and mongo_read targets with FUZZ_REPLAY and replays their corpora with
 * a plain main(), so the normal build (gcc, no libFuzzer) runs every
 * corpus file through the very same code.
 */
#ifndef HPF_FUZZ_COMMON_H
#define HPF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* libFuzzer's entry points; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The targets' bodies (FUZZ_REPLAY builds call them directly). */
void fuzz_wire_init(void);
int fuzz_wire_one(const uint8_t *data, size_t size);
void fuzz_config_init(void);
int fuzz_config_one(const uint8_t *data, size_t size);
void fuzz_console_init(void);
int fuzz_console_one(const uint8_t *data, size_t size);
void fuzz_nats_codec_init(void);
int fuzz_nats_codec_one(const uint8_t *data, size_t size);
void fuzz_mongo_read_init(void);
int fuzz_mongo_read_one(const uint8_t *data, size_t size);

/*
 * A broken invariant.  Under libFuzzer it prints why and aborts, so the
 * input is saved as a crash; when fuzz_count_failures is set (the replayer)
 * it prints and counts, and the target carries on: every check is written
 * so that going on after it is safe.
 */
#define FUZZ_CHECK(cond, ...)                                    \
    do {                                                         \
        if (!(cond))                                             \
            fuzz_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)

void fuzz_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

extern gboolean fuzz_count_failures;
extern unsigned fuzz_failures;

/*
 * Common set-up, idempotent: logs off (HPF_FUZZ_LOG=debug|info|... turns
 * them on), GLib criticals made check failures (a g_return_if_fail()
 * tripped by input is a bug; HPF_FUZZ_CRITICALS=warn only prints them),
 * HPFRIENDS_PLUGIN_DIR pointed at the build tree's plugins when unset.
 */
void fuzz_setup(void);

/*
 * A fresh private directory under $TMPDIR, removed with everything in it
 * when the process exits normally.  Never returns NULL (aborts instead).
 */
char *fuzz_tmpdir(const char *what);

/* Replace path's contents with data; aborts on I/O errors. */
void fuzz_write_file(const char *path, const uint8_t *data, size_t size);

/* A NUL-terminated copy of data, for APIs that take C strings. */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
