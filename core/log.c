#include "log.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static int max_level = HPF_LOG_INFO;
static gboolean to_syslog;

void log_set_level(int level) { max_level = level; }
int log_get_level(void) { return max_level; }

void log_use_syslog(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    to_syslog = TRUE;
}

static const char *level_name(int level)
{
    switch (level) {
    case HPF_LOG_ERR: return "error";
    case HPF_LOG_WARNING: return "warning";
    case HPF_LOG_NOTICE: return "notice";
    case HPF_LOG_INFO: return "info";
    default: return "debug";
    }
}

void log_msgv(int level, const char *prefix, const char *fmt, va_list ap)
{
    if (level > max_level)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    if (to_syslog) {
        if (prefix)
            syslog(level, "%s: %s", prefix, line);
        else
            syslog(level, "%s", line);
        return;
    }
    GDateTime *now = g_date_time_new_now_local();
    gchar *ts = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%f");
    /* %f gives microseconds; milliseconds are enough on a terminal. */
    if (ts && strlen(ts) > 23)
        ts[23] = '\0';
    fprintf(stderr, "%s %s %s%s%s\n", ts ? ts : "", level_name(level), prefix ? prefix : "",
            prefix ? ": " : "", line);
    g_free(ts);
    g_date_time_unref(now);
}

void log_msg(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_msgv(level, NULL, fmt, ap);
    va_end(ap);
}

gboolean log_ratelimit_ok(struct log_ratelimit *rl, uint64_t *suppressed)
{
    int64_t now = g_get_monotonic_time();
    if (rl->last_us == 0 || now - rl->last_us >= rl->interval_us) {
        if (suppressed)
            *suppressed = rl->suppressed;
        rl->suppressed = 0;
        rl->last_us = now;
        return TRUE;
    }
    rl->suppressed++;
    return FALSE;
}
