/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sink_file: accepted messages (and, on request, broker events) as JSON
 * Lines, one object per line:
 *
 *   {"time":"2026-11-26T22:50:39.958123Z","ident":"i","owner":"o",
 *    "channel":"c","payload":"text"}
 *
 * "payload" holds the payload when it is valid UTF-8 without NUL bytes
 * (quotes, backslashes and control characters escaped); anything else is
 * written as "payload_b64" (standard base64).  Events look like
 *
 *   {"time":"...","event":"auth_failed","ident":"i","peer":"127.0.0.1:5555",
 *    "reason":"..."}
 *
 * with only the fields the event carries.
 *
 * Config (section [sink:NAME], plugin = file):
 *   path            the file (required; relative to the config file)
 *   messages        true|false, write messages (default true)
 *   events          true|false, write broker events (default false)
 *   fsync           never|interval|every (default interval)
 *   fsync_interval  seconds between fsyncs in interval mode (default 1)
 *   max_size        rotate once the file would grow past this (K/M/G
 *                   suffixes; default 0: never rotate)
 *   keep            rotated files kept: path.1 (newest) .. path.KEEP (default 5)
 *
 * Every line is handed to the kernel with one write(2) as soon as it is
 * built, so a reader (tail -f, a shipper) sees whole lines and a crash of the
 * broker loses nothing the sink has seen.  fsync only decides how often the
 * data is forced to the disk (in interval mode: when a line is written and
 * the last fsync is older than fsync_interval; an idle file is left to the
 * kernel's writeback until the next line or the shutdown flush).  reopen()
 * (SIGHUP) closes and reopens `path`, which is all logrotate's
 * rename-then-signal needs; flush() (shutdown) fsyncs whatever `fsync` says.
 * Rotation (max_size) renames path -> path.1 -> ... -> path.KEEP, dropping
 * the oldest; a line is never split across files, and a line longer than
 * max_size gets a file of its own.
 *
 * Threading: create/start/destroy run on the broker's main thread, every
 * other call on this instance's sink thread, one at a time: no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0"
#endif

#define COMPLAIN_EVERY_US (60 * G_USEC_PER_SEC)
#define ROTATE_RETRY_US   (5 * G_USEC_PER_SEC)
#define MAX_KEEP          1000

enum fsync_mode { FSYNC_NEVER, FSYNC_INTERVAL, FSYNC_EVERY };

struct file_sink {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;

    /* configuration */
    char *path;
    bool messages, events;
    enum fsync_mode fsync_mode;
    int64_t fsync_interval_us;
    uint64_t max_size;
    unsigned keep;

    /* state, sink thread only once started */
    int fd;
    uint64_t size;           /* bytes in the open file, as far as we know */
    bool dirty;              /* written since the last fsync */
    bool torn;               /* the last write stopped mid-line */
    int64_t last_sync_us;    /* monotonic */
    int64_t rotate_retry_us; /* monotonic: no rotation attempt before this */
    GString *line;
    int64_t ts_secs;    /* the second ts_prefix was formatted for */
    char ts_prefix[64]; /* "2026-11-26T22:50:39." */

    /* rate-limited complaints: once a minute, and once on recovery */
    int64_t last_complaint_us;
    uint64_t failures; /* since the last complaint */
    bool failing;
};

static const char *const config_keys[] = {
    "path", "messages", "events", "fsync", "fsync_interval", "max_size", "keep", NULL,
};

/* ---- configuration parsing (create(): pure) ---- */

/* Config phase: read and check every key, allocate; no files yet. */
static int file_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                       void **instance, char *err, size_t err_len)
{
    struct file_sink *fs = g_new0(struct file_sink, 1);
    const char *v;
    fs->host = host;
    fs->ctx = ctx;
    fs->fd = -1;
    fs->messages = true;
    fs->events = false;
    fs->fsync_mode = FSYNC_INTERVAL;
    fs->fsync_interval_us = G_USEC_PER_SEC;
    fs->keep = 5;

    char *p = host->config_path(ctx, "path");
    if (!p || !*p) {
        free(p);
        snprintf(err, err_len, "path: required (the JSON Lines file to write)");
        goto fail;
    }
    fs->path = g_strdup(p);
    free(p);

    if (host->config_bool(ctx, "messages", &fs->messages, err, err_len) != HPF_OK ||
        host->config_bool(ctx, "events", &fs->events, err, err_len) != HPF_OK)
        goto fail;
    if (!fs->messages && !fs->events) {
        snprintf(err, err_len, "messages and events are both false: nothing to write");
        goto fail;
    }
    if ((v = host->config_get(ctx, "fsync"))) {
        if (!strcmp(v, "never"))
            fs->fsync_mode = FSYNC_NEVER;
        else if (!strcmp(v, "interval"))
            fs->fsync_mode = FSYNC_INTERVAL;
        else if (!strcmp(v, "every"))
            fs->fsync_mode = FSYNC_EVERY;
        else {
            snprintf(err, err_len, "fsync: expected never, interval or every, got '%s'", v);
            goto fail;
        }
    }
    if ((v = host->config_get(ctx, "fsync_interval"))) {
        char *end = NULL;
        double secs = g_ascii_strtod(v, &end);
        if (end == v || *end || !(secs > 0) || secs > 86400) {
            snprintf(err, err_len,
                     "fsync_interval: expected seconds (more than 0, at most 86400), got '%s'", v);
            goto fail;
        }
        fs->fsync_interval_us = (int64_t)(secs * G_USEC_PER_SEC);
    }
    uint64_t keep = fs->keep;
    if (host->config_size(ctx, "max_size", 0, UINT64_MAX, &fs->max_size, err, err_len) != HPF_OK ||
        host->config_uint(ctx, "keep", 1, MAX_KEEP, &keep, err, err_len) != HPF_OK)
        goto fail;
    fs->keep = (unsigned)keep;

    fs->line = g_string_sized_new(512);
    *instance = fs;
    return HPF_OK;

fail:
    g_free(fs->path);
    g_free(fs);
    return HPF_ERR_INVALID;
}

/* ---- the file ---- */

/* Logs at most once a minute, saying how many failures went unreported. */
static void complain(struct file_sink *fs, const char *what, const char *path, int errnum)
{
    int64_t now = g_get_monotonic_time();
    fs->failing = true;
    fs->failures++;
    if (fs->last_complaint_us && now - fs->last_complaint_us < COMPLAIN_EVERY_US)
        return;
    fs->host->log(fs->ctx, HPF_LOG_ERR,
                  "%s %s failed: %s (%" G_GUINT64_FORMAT " failures since the last report)", what,
                  path, g_strerror(errnum), fs->failures);
    fs->last_complaint_us = now;
    fs->failures = 0;
}

static void recovered(struct file_sink *fs)
{
    if (!fs->failing)
        return;
    fs->failing = false;
    fs->host->log(fs->ctx, HPF_LOG_NOTICE, "writing %s again", fs->path);
}

static int open_path(const char *path, uint64_t *size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    struct stat st;
    *size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return fd;
}

static void sync_now(struct file_sink *fs)
{
    if (fs->fd < 0 || !fs->dirty)
        return;
    if (fdatasync(fs->fd) != 0)
        complain(fs, "fsync of", fs->path, errno);
    fs->dirty = false;
    fs->last_sync_us = g_get_monotonic_time();
}

static int file_start(void *instance, char *err, size_t err_len)
{
    struct file_sink *fs = instance;
    fs->fd = open_path(fs->path, &fs->size);
    if (fs->fd < 0) {
        snprintf(err, err_len, "path: cannot open %s: %s", fs->path, g_strerror(errno));
        return HPF_ERR_IO;
    }
    fs->last_sync_us = g_get_monotonic_time();
    return HPF_OK;
}

static char *numbered(const char *path, unsigned n) { return g_strdup_printf("%s.%u", path, n); }

/*
 * path.KEEP-1 -> path.KEEP, ..., path -> path.1, then a fresh path.  Until
 * the fresh file is open the old descriptor stays in use (now as path.1),
 * so a failed rotation never loses a line.
 */
static void rotate(struct file_sink *fs)
{
    int64_t now = g_get_monotonic_time();
    if (now < fs->rotate_retry_us)
        return;

    /* The file may be shorter than we think (copytruncate): trust fstat. */
    struct stat st;
    if (fstat(fs->fd, &st) == 0 && (uint64_t)st.st_size < fs->size)
        fs->size = (uint64_t)st.st_size;
    if (fs->size == 0 || fs->size + fs->line->len <= fs->max_size)
        return;

    if (fs->fsync_mode != FSYNC_NEVER)
        sync_now(fs);
    for (unsigned i = fs->keep; i > 1; i--) {
        char *from = numbered(fs->path, i - 1), *to = numbered(fs->path, i);
        if (rename(from, to) != 0 && errno != ENOENT)
            complain(fs, "rotation: rename of", from, errno);
        g_free(from);
        g_free(to);
    }
    char *first = numbered(fs->path, 1);
    int rc = rename(fs->path, first);
    int rename_errno = errno;
    g_free(first);
    if (rc != 0 && rename_errno != ENOENT) {
        complain(fs, "rotation: rename of", fs->path, rename_errno);
        fs->rotate_retry_us = now + ROTATE_RETRY_US;
        return;
    }
    uint64_t size = 0;
    int fd = open_path(fs->path, &size);
    if (fd < 0) {
        complain(fs, "rotation: open of", fs->path, errno);
        fs->rotate_retry_us = now + ROTATE_RETRY_US;
        return;
    }
    close(fs->fd);
    fs->fd = fd;
    fs->size = size;
    fs->dirty = false;
}

static bool write_all(int fd, const char *buf, size_t len, size_t *done)
{
    *done = 0;
    while (*done < len) {
        ssize_t n = write(fd, buf + *done, len - *done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        *done += (size_t)n;
    }
    return true;
}

/* Writes fs->line (one complete line, newline included). */
static int write_line(struct file_sink *fs)
{
    if (fs->torn) {
        /* End the half-written line so the damage stays on one line. */
        g_string_prepend_c(fs->line, '\n');
    }
    if (fs->max_size && fs->size && fs->size + fs->line->len > fs->max_size)
        rotate(fs);

    size_t done = 0;
    bool ok = write_all(fs->fd, fs->line->str, fs->line->len, &done);
    fs->size += done;
    if (done)
        fs->dirty = true;
    if (!ok) {
        fs->torn = done > 0 || fs->torn;
        complain(fs, "write to", fs->path, errno);
        return HPF_ERR_IO;
    }
    fs->torn = false;
    recovered(fs);

    if (fs->fsync_mode == FSYNC_EVERY ||
        (fs->fsync_mode == FSYNC_INTERVAL &&
         g_get_monotonic_time() - fs->last_sync_us >= fs->fsync_interval_us))
        sync_now(fs);
    return HPF_OK;
}

/* ---- formatting ---- */

/*
 * Appends "time":"2026-11-26T22:50:39.958123Z" (RFC 3339, UTC, microseconds).
 * The date and time part is formatted once per second and reused.
 */
static void append_time(struct file_sink *fs, int64_t time_us)
{
    static const char digits[] = "0123456789";
    int64_t secs = time_us / G_USEC_PER_SEC;
    int64_t frac = time_us % G_USEC_PER_SEC;
    if (frac < 0) {
        frac += G_USEC_PER_SEC;
        secs--;
    }
    if (secs != fs->ts_secs || !fs->ts_prefix[0]) {
        time_t t = (time_t)secs;
        struct tm tm;
        if (!gmtime_r(&t, &tm))
            memset(&tm, 0, sizeof tm);
        snprintf(fs->ts_prefix, sizeof fs->ts_prefix, "%04d-%02d-%02dT%02d:%02d:%02d.",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        fs->ts_secs = secs;
    }
    char us[8];
    for (int i = 5; i >= 0; i--) {
        us[i] = digits[frac % 10];
        frac /= 10;
    }
    us[6] = 'Z';
    us[7] = '"';
    g_string_append(fs->line, "\"time\":\"");
    g_string_append(fs->line, fs->ts_prefix);
    g_string_append_len(fs->line, us, sizeof us);
}

/*
 * JSON is written directly into fs->line rather than through json-glib:
 * json-glib 1.6 writes U+001F unescaped (invalid JSON, refused by strict
 * parsers), and building a tree per line was most of this sink's cost.
 * Strings reaching json_string() are valid UTF-8 without NUL; only '"',
 * '\\' and the control characters U+0000..U+001F need escaping (RFC 8259).
 */
static void json_string(GString *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s, *end = s + n;
    g_string_append_c(out, '"');
    for (const char *p = s; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        g_string_append_len(out, run, p - run);
        run = p + 1;
        switch (c) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        case '\b':
            g_string_append(out, "\\b");
            break;
        case '\f':
            g_string_append(out, "\\f");
            break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
            g_string_append(out, u);
        }
        }
    }
    g_string_append_len(out, run, end - run);
    g_string_append_c(out, '"');
}

/* ,"key":"value" -- idents and channels are wire bytes: made valid UTF-8. */
static void add_text(GString *out, const char *key, const char *value)
{
    if (!value)
        return;
    g_string_append(out, ",\"");
    g_string_append(out, key);
    g_string_append(out, "\":");
    size_t n = strlen(value);
    if (g_utf8_validate_len(value, n, NULL)) {
        json_string(out, value, n);
    } else {
        char *valid = g_utf8_make_valid(value, (gssize)n);
        json_string(out, valid, strlen(valid));
        g_free(valid);
    }
}

static void begin_line(struct file_sink *fs, int64_t time_us)
{
    g_string_truncate(fs->line, 0);
    g_string_append_c(fs->line, '{');
    append_time(fs, time_us);
}

static int end_line(struct file_sink *fs)
{
    g_string_append(fs->line, "}\n");
    return write_line(fs);
}

/* Standard base64, appended without an intermediate copy. */
static void append_base64(GString *out, const uint8_t *data, size_t len)
{
    gint state = 0, save = 0;
    gsize at = out->len;
    g_string_set_size(out, at + (len / 3 + 1) * 4 + 8);
    gsize n = g_base64_encode_step(data, len, FALSE, out->str + at, &state, &save);
    n += g_base64_encode_close(FALSE, out->str + at + n, &state, &save);
    g_string_truncate(out, at + n);
}

static int file_message(void *instance, const struct hpf_message *msg)
{
    struct file_sink *fs = instance;
    if (!fs->messages)
        return HPF_OK;
    begin_line(fs, msg->time_us);
    add_text(fs->line, "ident", msg->ident);
    add_text(fs->line, "owner", msg->owner);
    add_text(fs->line, "channel", msg->channel);
    /* validate_len refuses NUL bytes too: JSON strings here never hold them. */
    const char *bytes = (const char *)msg->payload;
    if (!msg->payload_len || g_utf8_validate_len(bytes, msg->payload_len, NULL)) {
        g_string_append(fs->line, ",\"payload\":");
        json_string(fs->line, bytes ? bytes : "", msg->payload_len);
    } else {
        g_string_append(fs->line, ",\"payload_b64\":\"");
        append_base64(fs->line, msg->payload, msg->payload_len);
        g_string_append_c(fs->line, '"');
    }
    return end_line(fs);
}

static int file_event(void *instance, const struct hpf_event *ev)
{
    struct file_sink *fs = instance;
    if (!fs->events)
        return HPF_OK;
    begin_line(fs, ev->time_us);
    const char *name = hpf_event_name(ev->type);
    if (name)
        g_string_append_printf(fs->line, ",\"event\":\"%s\"", name);
    else /* a type newer than this plugin: still worth a line */
        g_string_append_printf(fs->line, ",\"event\":\"event_%d\"", ev->type);
    add_text(fs->line, "ident", ev->ident);
    add_text(fs->line, "owner", ev->owner);
    add_text(fs->line, "peer", ev->peer);
    add_text(fs->line, "channel", ev->channel);
    add_text(fs->line, "reason", ev->reason);
    if (ev->count || ev->type == HPF_EVENT_SLOW_DROP)
        g_string_append_printf(fs->line, ",\"count\":%" G_GUINT64_FORMAT, (guint64)ev->count);
    return end_line(fs);
}

/* ---- reopen, flush, destroy ---- */

static int file_reopen(void *instance)
{
    struct file_sink *fs = instance;
    if (fs->fsync_mode != FSYNC_NEVER)
        sync_now(fs);
    uint64_t size = 0;
    int fd = open_path(fs->path, &size);
    if (fd < 0) {
        /* Keep writing where we were: late lines beat lost lines. */
        complain(fs, "reopen of", fs->path, errno);
        return HPF_ERR_IO;
    }
    if (fs->fd >= 0)
        close(fs->fd);
    fs->fd = fd;
    fs->size = size;
    fs->dirty = false;
    fs->torn = false;
    fs->rotate_retry_us = 0;
    fs->host->log(fs->ctx, HPF_LOG_INFO, "reopened %s", fs->path);
    return HPF_OK;
}

/* Shutdown: everything written so far reaches the disk, whatever `fsync` says. */
static int file_flush(void *instance)
{
    struct file_sink *fs = instance;
    if (fs->fd < 0)
        return HPF_OK;
    fs->dirty = true;
    sync_now(fs);
    return fs->failing ? HPF_ERR_IO : HPF_OK;
}

static void file_destroy(void *instance)
{
    struct file_sink *fs = instance;
    if (!fs)
        return;
    if (fs->fd >= 0)
        close(fs->fd);
    if (fs->line)
        g_string_free(fs->line, TRUE);
    g_free(fs->path);
    g_free(fs);
}

/* The plugin can write both; each instance asks for what its config keeps. */
static uint32_t file_instance_wants(void *instance)
{
    const struct file_sink *fs = instance;
    return (fs->messages ? HPF_SINK_MESSAGES : 0u) | (fs->events ? HPF_SINK_EVENTS : 0u);
}

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES | HPF_SINK_EVENTS,
    .message = file_message,
    .event = file_event,
    .reopen = file_reopen,
    .flush = file_flush,
    .instance_wants = file_instance_wants,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "sink_file",
    .version = PLUGIN_VERSION,
    .description = "messages and events as JSON Lines, with rotation and reopen on SIGHUP",
    .kinds = HPF_KIND_SINK,
    .config_keys = config_keys,
    .create = file_create,
    .start = file_start,
    .destroy = file_destroy,
    .sink = &sink_ops,
};

HPF_PLUGIN_DEFINE(plugin)
