/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging: level filter, stderr or syslog, every line escaped; rate limiting. */
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
    case HPF_LOG_ERR:
        return "error";
    case HPF_LOG_WARNING:
        return "warning";
    case HPF_LOG_NOTICE:
        return "notice";
    case HPF_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/*
 * Escape what could forge or garble a line: control bytes (a newline in an
 * ident or channel would start a line of the sender's making; ESC sequences
 * reach the admin's terminal), C1 controls, and bytes that are not UTF-8,
 * each as \xNN, and a backslash as two.  Valid printable UTF-8 is kept as
 * it is.
 */
static void escape_line(const char *in, size_t len, char *out, size_t cap)
{
    const char *p = in, *end = in + len;
    size_t o = 0;
    while (p < end && o + 5 < cap) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\\') { /* so that a client's literal "\x0a" reads apart from an escape */
            out[o++] = '\\';
            out[o++] = *p++;
            continue;
        }
        if (ch >= 0x20 && ch < 0x7f) {
            out[o++] = *p++;
            continue;
        }
        if (ch >= 0x80) {
            gunichar u = g_utf8_get_char_validated(p, end - p);
            size_t n = u < 0x110000 ? (size_t)(g_utf8_next_char(p) - p) : 0;
            if (n && u >= 0xa0 && o + n < cap) {
                memcpy(out + o, p, n);
                o += n;
                p += n;
                continue;
            }
        }
        o += (size_t)g_snprintf(out + o, cap - o, "\\x%02x", ch);
        p++;
    }
    out[o] = '\0';
}

void log_msgv(int level, const char *prefix, const char *fmt, va_list ap)
{
    if (level > max_level)
        return;
    /* A line is bounded: what runs past raw's end is cut. */
    char raw[1024], line[4 * sizeof raw + 1];
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    escape_line(raw, n < 0 ? 0 : MIN((size_t)n, sizeof raw - 1), line, sizeof line);
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
