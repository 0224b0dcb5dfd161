/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging: level filter, stderr or syslog, every line escaped; rate
 * limiting.  The escaper here is the project's one way of showing bytes a
 * client sent: logs, ERROR texts, the console and hpfriendsctl all use it.
 */
#include "log.h"

#include <hpfriends/names.h>
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
 * reach the admin's terminal), C1 controls, the invisible and
 * direction-changing characters no name may hold (hpf_codepoint_refused:
 * U+202E would reorder what follows it on the line) and bytes that are not
 * UTF-8, each byte as \xNN (so U+0085 is \xc2\x85, and every \xNN is one
 * byte of the input), and a backslash as two.  Other UTF-8 is kept as it is.
 */
size_t log_escape_into(const char *in, size_t len, char *out, size_t cap)
{
    const char *p = in, *end = in + len;
    size_t o = 0;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        size_t n = 1; /* bytes of the character at p */
        gboolean keep = ch >= 0x20 && ch < 0x7f && ch != '\\';
        if (ch >= 0x80) {
            gunichar u = g_utf8_get_char_validated(p, end - p);
            if (u < 0x110000) {
                n = (size_t)(g_utf8_next_char(p) - p);
                keep = !hpf_codepoint_refused(u);
            }
        }
        if (keep) {
            if (o + n >= cap)
                break;
            memcpy(out + o, p, n);
            o += n;
        } else if (ch == '\\') { /* so that a client's literal "\x0a" reads apart from an escape */
            if (o + 2 >= cap)
                break;
            out[o++] = '\\';
            out[o++] = '\\';
        } else {
            if (o + 4 * n >= cap)
                break;
            for (size_t k = 0; k < n; k++)
                o += (size_t)g_snprintf(out + o, cap - o, "\\x%02x", (unsigned char)p[k]);
        }
        p += n;
    }
    if (cap)
        out[o] = '\0';
    return o;
}

char *log_escape(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    char *out = g_malloc(4 * len + 1);
    log_escape_into(s ? s : "", len, out, 4 * len + 1);
    return out;
}

void log_msgv(int level, const char *prefix, const char *fmt, va_list ap)
{
    if (level > max_level)
        return;
    /* A line is bounded: what runs past raw's end is cut. */
    char raw[1024], line[4 * sizeof raw + 1];
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    log_escape_into(raw, n < 0 ? 0 : MIN((size_t)n, sizeof raw - 1), line, sizeof line);
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
