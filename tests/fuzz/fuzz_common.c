/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the fuzz targets and the corpus replayer. */
#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "log.h"

gboolean fuzz_count_failures;
unsigned fuzz_failures;

void fuzz_failed(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "FUZZ CHECK FAILED at %s:%d: %s: %s\n", file, line, cond, why);
    fflush(stderr);
    g_free(why);
    if (!fuzz_count_failures)
        abort();
    fuzz_failures++;
}

static int level_from_env(void)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                        "warning", "notice", "info", "debug"};
    const char *v = g_getenv("HPF_FUZZ_LOG");
    if (!v || !*v)
        return -1;
    for (int i = 0; i < (int)G_N_ELEMENTS(names); i++)
        if (!g_ascii_strcasecmp(v, names[i]))
            return i;
    return HPF_LOG_DEBUG;
}

/*
 * GLib criticals (g_return_if_fail() and friends) are bugs: make them
 * failures.  GLib's own fatal path raises SIGTRAP, which libFuzzer does not
 * catch (no input would be saved), hence a handler that goes through
 * fuzz_failed() (abort(), or a counted failure when replaying).
 * HPF_FUZZ_CRITICALS=warn keeps them as warnings, to fuzz past a known one.
 */
static void on_glib_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
    static gboolean warn_only = -1;
    if (warn_only == -1)
        warn_only = !g_strcmp0(g_getenv("HPF_FUZZ_CRITICALS"), "warn");
    if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) && !warn_only) {
        fuzz_failed(__FILE__, __LINE__, "no GLib critical", "%s-CRITICAL: %s",
                    domain ? domain : "GLib", msg);
        return;
    }
    g_log_default_handler(domain, level, msg, data);
}

void fuzz_setup(void)
{
    static gboolean done;
    if (done)
        return;
    done = TRUE;
    log_set_level(level_from_env());
    g_log_set_default_handler(on_glib_log, NULL);
#ifdef FUZZ_PLUGIN_DIR
    /* The plugins built beside this program, unless the caller chose. */
    if (!g_getenv("HPFRIENDS_PLUGIN_DIR"))
        g_setenv("HPFRIENDS_PLUGIN_DIR", FUZZ_PLUGIN_DIR, TRUE);
#endif
}

/* ---- scratch directories ---- */

static GPtrArray *tmpdirs;

static void remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (d) {
        const char *name;
        while ((name = g_dir_read_name(d))) {
            char *child = g_build_filename(path, name, NULL);
            if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
                !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                remove_tree(child);
            else
                g_unlink(child);
            g_free(child);
        }
        g_dir_close(d);
    }
    g_rmdir(path);
}

static void remove_tmpdirs(void)
{
    for (guint i = 0; tmpdirs && i < tmpdirs->len; i++)
        remove_tree(tmpdirs->pdata[i]);
}

char *fuzz_tmpdir(const char *what)
{
    char *tmpl = g_strdup_printf("%s/hpf-fuzz-%s-XXXXXX", g_get_tmp_dir(), what);
    if (!g_mkdtemp(tmpl)) {
        fprintf(stderr, "fuzz: cannot create a directory from %s: %s\n", tmpl, g_strerror(errno));
        abort();
    }
    if (!tmpdirs) {
        tmpdirs = g_ptr_array_new();
        atexit(remove_tmpdirs);
    }
    g_ptr_array_add(tmpdirs, g_strdup(tmpl));
    return tmpl;
}

void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fuzz: %s: %s\n", path, g_strerror(errno));
        abort();
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "fuzz: writing %s: %s\n", path, g_strerror(errno));
            abort();
        }
        done += (size_t)n;
    }
    close(fd);
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = g_malloc(size + 1);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
