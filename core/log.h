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
