/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging: syslog levels, "who: what failed: why" lines, rate limiting. */
#ifndef HPF_LOG_H
#define HPF_LOG_H

#include <glib.h>
#include <stdarg.h>
#include <stdint.h>

#include <hpfriends/plugin.h>

void log_set_level(int max_level);
int log_get_level(void);
/** Send lines to syslog instead of stderr (daemon mode). */
void log_use_syslog(const char *ident);

void log_msg(int level, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void log_msgv(int level, const char *prefix, const char *fmt, va_list ap);

/**
 * Bytes a client sent, made safe to show (log line, ERROR text, console,
 * terminal): control characters, the invisible and direction-changing
 * characters no name may hold, and bytes that are not UTF-8 become \xNN
 * (one per byte), a backslash becomes two; other UTF-8 is kept.  Writes at
 * most cap bytes with the NUL (4 * len + 1 always suffices; what does not
 * fit is cut at a character) and returns the length written.
 */
size_t log_escape_into(const char *in, size_t len, char *out, size_t cap);
/** s escaped as by log_escape_into() (caller frees; NULL gives ""). */
char *log_escape(const char *s);

#define log_err(...)    log_msg(HPF_LOG_ERR, __VA_ARGS__)
#define log_warn(...)   log_msg(HPF_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(HPF_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(HPF_LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(HPF_LOG_DEBUG, __VA_ARGS__)

/**
 * Complain once per interval: returns TRUE when a line may be logged now,
 * and reports through *suppressed how many were held back since the last.
 */
struct log_ratelimit {
    int64_t last_us;
    uint64_t suppressed;
    int64_t interval_us;
};
#define LOG_RATELIMIT_INIT(seconds)             \
    {                                           \
        0, 0, (int64_t)(seconds)*G_USEC_PER_SEC \
    }
gboolean log_ratelimit_ok(struct log_ratelimit *rl, uint64_t *suppressed);

#endif
