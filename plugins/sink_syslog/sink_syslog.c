/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sink_syslog: one syslog line per accepted message,
 *
 *   CHANNEL IDENT OWNER LEN PREVIEW
 *
 * where PREVIEW is the payload's first `preview` bytes, printable ASCII kept
 * as is, a backslash written as "\\", every other byte as "\xNN", and "..."
 * appended when the payload is longer.  No preview is written for an empty
 * payload or with preview = 0.  CHANNEL, IDENT and OWNER are escaped the
 * same way and a space in them becomes "\x20", so the first four fields
 * always split on spaces; OWNER is "-" when unknown.  Broker events
 * (events = true) are lines of the form
 *
 *   auth_failed ident=bob peer=127.0.0.1:40000 reason="bad secret"
 *
 * Targets (the syslog wire is written here, syslog(3) is not used, so the
 * socket is configurable and several instances can differ in tag and
 * facility):
 *   target = local          a datagram to the local syslog socket (`socket`,
 *                           default /dev/log), BSD format as syslog(3)
 *                           writes it: <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG
 *   target = udp:HOST:PORT  RFC 5424 in one UDP datagram (RFC 5426)
 *   target = tcp:HOST:PORT  RFC 5424 with octet-counting framing (RFC 6587)
 * `format = rfc5424|rfc3164` overrides the target's default format.
 * IPv6 hosts go in brackets: udp:[::1]:514.
 *
 * Failures are soft: a lost syslog daemon or a refused connection drops
 * messages (returned as HPF_ERR_UNAVAILABLE, so the broker counts them) and
 * the connection is retried with a back-off from 0.5 s to 30 s.  TCP
 * notices a peer that went away before it writes, so a restarted syslog
 * daemon gets the next message.  reopen() (SIGHUP) reconnects at once.
 *
 * Threading: create/start/destroy on the broker's main thread, everything
 * else on this instance's sink thread, one call at a time.
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL, SOCK_CLOEXEC */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0"
#endif

#define DEFAULT_SOCKET     "/dev/log"
#define DEFAULT_TAG        "hpfriends"
#define DEFAULT_PREVIEW    64
#define MAX_PREVIEW        4096
#define MAX_TAG            48 /* RFC 5424 APP-NAME */
#define CONNECT_TIMEOUT_MS 3000
#define SEND_TIMEOUT_S     5
#define BACKOFF_MIN_US     500000
#define BACKOFF_MAX_US     (30 * 1000000LL)
#define COMPLAIN_EVERY_US  (60 * 1000000LL)

enum target { TARGET_LOCAL, TARGET_UDP, TARGET_TCP };
enum format { FORMAT_RFC3164, FORMAT_RFC5424 };

enum severity { SEV_WARNING = 4, SEV_NOTICE = 5, SEV_INFO = 6 };

/* A growable byte buffer. */
struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

struct syslog_sink {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;

    /* configuration */
    int facility;
    char *tag;
    size_t preview;
    enum target target;
    enum format format;
    char *socket_path;      /* local */
    char *host_name, *port; /* udp, tcp */
    bool messages, events;

    /* state (sink thread once started) */
    char hostname[256];
    long pid;
    int fd;
    int64_t retry_at_us; /* monotonic; no connection attempt before */
    int64_t backoff_us;
    struct buf line;  /* the message */
    struct buf frame; /* header + message (+ TCP length prefix) */

    int64_t last_complaint_us;
    uint64_t lost; /* since the last complaint */
    uint64_t lost_total;
    bool failing;
};

static const char *const config_keys[] = {
    "target", "socket", "facility", "tag", "preview", "format", "messages", "events", NULL,
};

static const struct {
    const char *name;
    int code;
} facilities[] = {
    {"user", 1},    {"daemon", 3},  {"auth", 4},    {"authpriv", 10},
    {"local0", 16}, {"local1", 17}, {"local2", 18}, {"local3", 19},
    {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23},
};

/* ---- small helpers ---- */

static int64_t now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *dup_str(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static bool buf_reserve(struct buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_printf(struct buf *b, const char *fmt, ...) HPF_PRINTF(2, 3);
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void buf_reset(struct buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->p)
        b->p[0] = '\0';
}

/*
 * Printable ASCII kept, backslash doubled, anything else \xNN.  With
 * `word`, a space is escaped too and `quote` also escapes '"'.
 */
static void buf_escaped(struct buf *b, const uint8_t *s, size_t n, bool word, bool quote)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf_reserve(b, n * 4))
        return;
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '\\') {
            *o++ = '\\';
            *o++ = '\\';
        } else if (c < 0x20 || c > 0x7e || (word && c == ' ') || (quote && c == '"')) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

static void buf_word(struct buf *b, const char *s)
{
    if (!s || !*s)
        buf_str(b, "-");
    else
        buf_escaped(b, (const uint8_t *)s, strlen(s), true, false);
}

/* ---- configuration (create(): pure) ---- */

/* "HOST:PORT" or "[V6]:PORT" into two allocated strings. */
static bool parse_hostport(const char *s, char **host, char **port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return false;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return false; /* a bare IPv6 address needs brackets */
        hlen = (size_t)(colon - s);
    }
    const char *p = colon + 1;
    if (!hlen || !*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
        return false;
    long portnum = strtol(p, NULL, 10);
    if (portnum < 1 || portnum > 65535)
        return false;
    *host = dup_str(h, hlen);
    *port = dup_str(p, strlen(p));
    return *host && *port;
}

static void sink_free(struct syslog_sink *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->tag);
    free(s->socket_path);
    free(s->host_name);
    free(s->port);
    free(s->line.p);
    free(s->frame.p);
    free(s);
}

/* target and socket: where the lines go. */
static bool read_target(struct syslog_sink *s, char *err, size_t err_len)
{
    const struct hpf_host *host = s->host;
    const struct hpf_plugin_ctx *ctx = s->ctx;
    const char *v;

    if ((v = host->config_get(ctx, "target")) && strcmp(v, "local") != 0) {
        bool udp = !strncmp(v, "udp:", 4), tcp = !strncmp(v, "tcp:", 4);
        if ((!udp && !tcp) || !parse_hostport(v + 4, &s->host_name, &s->port)) {
            snprintf(err, err_len,
                     "target: expected local, udp:HOST:PORT or tcp:HOST:PORT, got '%s'", v);
            return false;
        }
        s->target = udp ? TARGET_UDP : TARGET_TCP;
    }
    s->format = s->target == TARGET_LOCAL ? FORMAT_RFC3164 : FORMAT_RFC5424;

    if (host->config_get(ctx, "socket")) {
        if (s->target != TARGET_LOCAL) {
            snprintf(err, err_len, "socket: only used with target = local");
            return false;
        }
        s->socket_path = host->config_path(ctx, "socket");
    } else {
        s->socket_path = dup_str(DEFAULT_SOCKET, strlen(DEFAULT_SOCKET));
    }
    if (!s->socket_path) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    if (strlen(s->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, err_len, "socket: path longer than %zu bytes: %s",
                 sizeof(((struct sockaddr_un *)0)->sun_path) - 1, s->socket_path);
        return false;
    }
    return true;
}

/* facility, tag, preview and format: what each line looks like. */
static bool read_line_format(struct syslog_sink *s, char *err, size_t err_len)
{
    const struct hpf_host *host = s->host;
    const struct hpf_plugin_ctx *ctx = s->ctx;
    const char *v;

    if ((v = host->config_get(ctx, "facility"))) {
        bool found = false;
        for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++) {
            if (!strcmp(v, facilities[i].name)) {
                s->facility = facilities[i].code;
                found = true;
            }
        }
        if (!found) {
            snprintf(err, err_len,
                     "facility: expected user, daemon, auth, authpriv or local0..local7, got '%s'",
                     v);
            return false;
        }
    }

    v = host->config_get(ctx, "tag");
    if (!v)
        v = DEFAULT_TAG;
    for (const char *c = v; *c; c++) {
        if (*c <= ' ' || *c > '~' || *c == ':' || *c == '[' || *c == ']') {
            snprintf(err, err_len,
                     "tag: printable ASCII without spaces, ':', '[' or ']' expected, got '%s'", v);
            return false;
        }
    }
    if (!*v || strlen(v) > MAX_TAG) {
        snprintf(err, err_len, "tag: 1 to %d characters expected, got '%s'", MAX_TAG, v);
        return false;
    }
    s->tag = dup_str(v, strlen(v));
    if (!s->tag) {
        snprintf(err, err_len, "out of memory");
        return false;
    }

    uint64_t preview = s->preview;
    if (host->config_uint(ctx, "preview", 0, MAX_PREVIEW, &preview, err, err_len) != HPF_OK)
        return false;
    s->preview = (size_t)preview;

    if ((v = host->config_get(ctx, "format"))) {
        if (!strcmp(v, "rfc5424"))
            s->format = FORMAT_RFC5424;
        else if (!strcmp(v, "rfc3164"))
            s->format = FORMAT_RFC3164;
        else {
            snprintf(err, err_len, "format: expected rfc5424 or rfc3164, got '%s'", v);
            return false;
        }
    }
    return true;
}

static int syslog_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                         void **instance, char *err, size_t err_len)
{
    struct syslog_sink *s = calloc(1, sizeof *s);
    if (!s)
        return HPF_ERR_NOMEM;
    s->host = host;
    s->ctx = ctx;
    s->fd = -1;
    s->facility = 3; /* daemon */
    s->preview = DEFAULT_PREVIEW;
    s->target = TARGET_LOCAL;
    s->messages = true;

    if (!read_target(s, err, err_len) || !read_line_format(s, err, err_len) ||
        host->config_bool(ctx, "messages", &s->messages, err, err_len) != HPF_OK ||
        host->config_bool(ctx, "events", &s->events, err, err_len) != HPF_OK)
        goto fail;
    if (!s->messages && !s->events) {
        snprintf(err, err_len, "messages and events are both false: nothing to send");
        goto fail;
    }
    *instance = s;
    return HPF_OK;

fail:
    sink_free(s);
    return HPF_ERR_INVALID;
}

/* ---- the connection ---- */

static const char *target_text(const struct syslog_sink *s, char *out, size_t out_len)
{
    if (s->target == TARGET_LOCAL)
        snprintf(out, out_len, "%s", s->socket_path);
    else
        snprintf(out, out_len, "%s:%s:%s", s->target == TARGET_UDP ? "udp" : "tcp", s->host_name,
                 s->port);
    return out;
}

/* Once a minute at most, with what was lost meanwhile. */
static void complain(struct syslog_sink *s, const char *what, const char *why)
{
    int64_t now = now_mono_us();
    s->failing = true;
    if (s->last_complaint_us && now - s->last_complaint_us < COMPLAIN_EVERY_US)
        return;
    char t[300];
    s->host->log(s->ctx, HPF_LOG_WARNING,
                 "%s %s failed: %s (%" PRIu64 " lines lost since the last report; retrying)", what,
                 target_text(s, t, sizeof t), why, s->lost);
    s->last_complaint_us = now;
    s->lost = 0;
}

static void disconnect(struct syslog_sink *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static void set_send_timeout(int fd)
{
    struct timeval tv = {.tv_sec = SEND_TIMEOUT_S};
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int connect_local(struct syslog_sink *s, const char **why)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, s->socket_path, strlen(s->socket_path) + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        *why = strerror(errno);
        close(fd);
        return -1;
    }
    set_send_timeout(fd);
    return fd;
}

/* A TCP connect bounded by CONNECT_TIMEOUT_MS. */
static bool connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int *err)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        *err = errno;
        return false;
    }
    if (connect(fd, sa, len) != 0) {
        if (errno != EINPROGRESS) {
            *err = errno;
            return false;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n;
        do
            n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            *err = n == 0 ? ETIMEDOUT : errno;
            return false;
        }
        socklen_t elen = sizeof *err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &elen) != 0)
            *err = errno;
        if (*err)
            return false;
    }
    if (fcntl(fd, F_SETFL, flags) != 0) {
        *err = errno;
        return false;
    }
    return true;
}

static int connect_inet(struct syslog_sink *s, const char **why)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = s->target == TARGET_UDP ? SOCK_DGRAM : SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV,
    };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(s->host_name, s->port, &hints, &res);
    if (rc != 0) {
        *why = gai_strerror(rc);
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        bool ok = s->target == TARGET_UDP
                      ? (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || ((err = errno), false))
                      : connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, &err);
        if (!ok) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        *why = strerror(err ? err : EHOSTUNREACH);
        return -1;
    }
    set_send_timeout(fd);
    return fd;
}

/*
 * Connects unless backing off.  False when there is no connection; *why is
 * then the reason of a failed attempt, or NULL while backing off.
 */
static bool ensure_connected(struct syslog_sink *s, const char **why)
{
    *why = NULL;
    if (s->fd >= 0)
        return true;
    int64_t now = now_mono_us();
    if (now < s->retry_at_us)
        return false;
    *why = "unknown error";
    s->fd = s->target == TARGET_LOCAL ? connect_local(s, why) : connect_inet(s, why);
    if (s->fd < 0) {
        s->backoff_us = s->backoff_us ? s->backoff_us * 2 : BACKOFF_MIN_US;
        if (s->backoff_us > BACKOFF_MAX_US)
            s->backoff_us = BACKOFF_MAX_US;
        s->retry_at_us = now + s->backoff_us;
        return false;
    }
    return true;
}

/* A TCP syslog server never talks: readable means it closed or failed. */
static void drop_if_peer_gone(struct syslog_sink *s)
{
    if (s->target != TARGET_TCP || s->fd < 0)
        return;
    struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0)
        return;
    char junk[256];
    ssize_t n = recv(s->fd, junk, sizeof junk, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        disconnect(s);
}

static bool send_all(int fd, const char *p, size_t len, int *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

/* Sends s->frame; one reconnect and retry on a stale connection. */
static int deliver(struct syslog_sink *s)
{
    if (s->frame.oom) {
        s->lost++;
        s->lost_total++;
        return HPF_ERR_NOMEM;
    }
    drop_if_peer_gone(s);
    int err = 0;
    const char *what = NULL, *why = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ensure_connected(s, &why)) {
            what = "connecting to";
            break;
        }
        if (send_all(s->fd, s->frame.p, s->frame.len, &err)) {
            s->backoff_us = 0;
            if (s->failing) {
                char t[300];
                s->failing = false;
                s->host->log(s->ctx, HPF_LOG_NOTICE,
                             "sending to %s again (%" PRIu64 " lines lost in all)",
                             target_text(s, t, sizeof t), s->lost_total);
                s->lost = 0;
            }
            return HPF_OK;
        }
        /*
         * A stale connection (daemon restarted; or, for UDP, an earlier
         * datagram's ICMP error) deserves one retry on a fresh socket; a
         * send timeout (daemon alive but not reading) does not.
         */
        disconnect(s);
        what = "sending to";
        why = strerror(err);
        if (attempt == 1 || err == EAGAIN || err == EWOULDBLOCK) {
            s->backoff_us = BACKOFF_MIN_US;
            s->retry_at_us = now_mono_us() + s->backoff_us;
            break;
        }
    }
    s->lost++;
    s->lost_total++;
    if (why)
        complain(s, what, why);
    else
        s->failing = true;
    return HPF_ERR_UNAVAILABLE;
}

static int syslog_start(void *instance, char *err, size_t err_len)
{
    struct syslog_sink *s = instance;
    s->pid = (long)getpid();
    if (gethostname(s->hostname, sizeof s->hostname - 1) != 0 || !s->hostname[0])
        strcpy(s->hostname, "-");
    /* RFC 5424 HOSTNAME: printable US-ASCII, no spaces. */
    for (char *c = s->hostname; *c; c++)
        if (*c <= ' ' || *c > '~')
            *c = '-';
    if (s->target != TARGET_LOCAL) {
        /* A name that does not resolve is a config error: fail fast. */
        struct addrinfo hints = {.ai_flags = AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(s->host_name, s->port, &hints, &res);
        if (rc == EAI_NONAME) {
            snprintf(err, err_len, "target: cannot resolve %s: %s", s->host_name, gai_strerror(rc));
            return HPF_ERR_INVALID;
        }
        if (res)
            freeaddrinfo(res);
    }
    /* A syslog daemon that is not up yet is not fatal: the next message retries. */
    const char *why = NULL;
    if (!ensure_connected(s, &why)) {
        char t[300];
        s->host->log(s->ctx, HPF_LOG_WARNING, "cannot connect to %s yet: %s; will retry",
                     target_text(s, t, sizeof t), why ? why : "?");
    }
    return HPF_OK;
}

/* ---- formatting ---- */

static void add_header(struct syslog_sink *s, int severity, int64_t time_us, const char *msgid)
{
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t secs = time_us / 1000000, frac = time_us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    int pri = s->facility * 8 + severity;
    if (s->format == FORMAT_RFC3164) {
        /* What syslog(3) sends: local time, no year, no host. */
        if (!localtime_r(&t, &tm))
            memset(&tm, 0, sizeof tm);
        buf_printf(&s->frame, "<%d>%s %2d %02d:%02d:%02d %s[%ld]: ", pri,
                   months[tm.tm_mon >= 0 && tm.tm_mon < 12 ? tm.tm_mon : 0], tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, s->tag, s->pid);
    } else {
        if (!gmtime_r(&t, &tm))
            memset(&tm, 0, sizeof tm);
        buf_printf(&s->frame, "<%d>1 %04d-%02d-%02dT%02d:%02d:%02d.%06dZ ", pri, tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
        buf_str(&s->frame, s->hostname);
        buf_printf(&s->frame, " %s %ld %s - ", s->tag, s->pid, msgid);
    }
}

/* Builds s->frame from s->line and sends it. */
static int emit(struct syslog_sink *s, int severity, int64_t time_us, const char *msgid)
{
    buf_reset(&s->frame);
    add_header(s, severity, time_us, msgid);
    buf_add(&s->frame, s->line.p, s->line.len);
    if (s->target == TARGET_TCP && !s->frame.oom) {
        /* RFC 6587 octet counting: "LEN SP MSG". */
        char prefix[32];
        size_t n = (size_t)snprintf(prefix, sizeof prefix, "%zu ", s->frame.len);
        if (buf_reserve(&s->frame, n)) {
            memmove(s->frame.p + n, s->frame.p, s->frame.len + 1);
            memcpy(s->frame.p, prefix, n);
            s->frame.len += n;
        }
    }
    return deliver(s);
}

static int syslog_message(void *instance, const struct hpf_message *msg)
{
    struct syslog_sink *s = instance;
    if (!s->messages)
        return HPF_OK;
    buf_reset(&s->line);
    buf_word(&s->line, msg->channel);
    buf_str(&s->line, " ");
    buf_word(&s->line, msg->ident);
    buf_str(&s->line, " ");
    buf_word(&s->line, msg->owner);
    buf_printf(&s->line, " %zu", msg->payload_len);
    size_t n = msg->payload_len < s->preview ? msg->payload_len : s->preview;
    if (n) {
        buf_str(&s->line, " ");
        buf_escaped(&s->line, msg->payload, n, false, false);
        if (n < msg->payload_len)
            buf_str(&s->line, "...");
    }
    return emit(s, SEV_INFO, msg->time_us, "message");
}

static void add_field(struct buf *b, const char *key, const char *value)
{
    if (!value)
        return;
    buf_printf(b, " %s=", key);
    if (*value && !strpbrk(value, " \"")) {
        buf_escaped(b, (const uint8_t *)value, strlen(value), false, false);
    } else {
        buf_str(b, "\"");
        buf_escaped(b, (const uint8_t *)value, strlen(value), false, true);
        buf_str(b, "\"");
    }
}

static int syslog_event(void *instance, const struct hpf_event *ev)
{
    struct syslog_sink *s = instance;
    if (!s->events)
        return HPF_OK;
    const char *name = hpf_event_name(ev->type);
    int severity = SEV_INFO;
    switch (ev->type) {
    case HPF_EVENT_AUTH_FAILED:
        severity = SEV_WARNING;
        break;
    case HPF_EVENT_DENIED:
        severity = SEV_NOTICE;
        break;
    case HPF_EVENT_SLOW_DROP:
        severity = SEV_WARNING;
        break;
    default:
        break;
    }
    if (!name)
        name = "event";
    buf_reset(&s->line);
    buf_str(&s->line, name);
    if (!strcmp(name, "event"))
        buf_printf(&s->line, " type=%d", ev->type);
    add_field(&s->line, "ident", ev->ident);
    add_field(&s->line, "owner", ev->owner);
    add_field(&s->line, "peer", ev->peer);
    add_field(&s->line, "channel", ev->channel);
    add_field(&s->line, "reason", ev->reason);
    if (ev->count || ev->type == HPF_EVENT_SLOW_DROP)
        buf_printf(&s->line, " count=%" PRIu64, ev->count);
    return emit(s, severity, ev->time_us, name);
}

/* SIGHUP: a fresh connection (the daemon may have moved or restarted). */
static int syslog_reopen(void *instance)
{
    struct syslog_sink *s = instance;
    disconnect(s);
    s->retry_at_us = 0;
    s->backoff_us = 0;
    const char *why = NULL;
    if (ensure_connected(s, &why))
        return HPF_OK;
    complain(s, "reconnecting to", why ? why : "?");
    return HPF_ERR_UNAVAILABLE;
}

static void syslog_destroy(void *instance) { sink_free(instance); }

/* The plugin can send both; each instance asks for what its config keeps. */
static uint32_t syslog_instance_wants(void *instance)
{
    const struct syslog_sink *s = instance;
    return (s->messages ? HPF_SINK_MESSAGES : 0u) | (s->events ? HPF_SINK_EVENTS : 0u);
}

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES | HPF_SINK_EVENTS,
    .message = syslog_message,
    .event = syslog_event,
    .reopen = syslog_reopen,
    .instance_wants = syslog_instance_wants,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "sink_syslog",
    .version = PLUGIN_VERSION,
    .description = "one syslog line per message (local socket, UDP or TCP RFC 5424)",
    .kinds = HPF_KIND_SINK,
    .config_keys = config_keys,
    .create = syslog_create,
    .start = syslog_start,
    .destroy = syslog_destroy,
    .sink = &sink_ops,
};

HPF_PLUGIN_DEFINE(plugin)
