/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay scenarios' process, forked from the bench: the simplest thing
 * that could possibly relay, so that "vs relay" means "vs the naive way".
 * One thread, blocking sockets, poll(): one read of up to 1 MiB from a
 * publisher, then that buffer written whole to each subscriber with
 * blocking write().  No parsing and no auth; with more than one publisher
 * (the ingest relay) it forwards only whole frames (the 4-byte length prefix), so
 * that two publishers' bytes never interleave inside a frame, and keeps a
 * publisher's partial frame for its next read.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "bench_common.h"

#define RELAY_READ     (1u << 20)
#define RELAY_MAX_PUBS 4096

struct relay_pub {
    int fd;
    uint8_t *buf; /* RELAY_READ bytes, allocated on first use */
    size_t len;   /* a partial frame kept from the last read */
};

struct relay {
    int pub_listener, sub_listener;
    GArray *pubs;    /* struct relay_pub */
    GArray *subs;    /* int fd */
    gboolean framed; /* several publishers: forward whole frames only */
};

static gboolean write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return FALSE;
        p += w;
        n -= (size_t)w;
    }
    return TRUE;
}

/* The buffer to every subscriber, whole; one that fails is dropped. */
static void relay_out(struct relay *r, const uint8_t *p, size_t n)
{
    for (guint i = 0; i < r->subs->len;) {
        int fd = g_array_index(r->subs, int, i);
        if (write_all(fd, p, n)) {
            i++;
            continue;
        }
        close(fd);
        g_array_remove_index_fast(r->subs, i);
    }
}

/* Bytes at the head of p that are whole frames. */
static size_t whole_frames(const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 4) {
        uint32_t flen = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
                        (uint32_t)p[off + 2] << 8 | p[off + 3];
        if (flen < 5 || flen > n - off)
            break;
        off += flen;
    }
    return off;
}

/* FALSE when the publisher is gone. */
static gboolean relay_pub_read(struct relay *r, struct relay_pub *pb)
{
    if (!pb->buf)
        pb->buf = g_malloc(RELAY_READ);
    ssize_t n = read(pb->fd, pb->buf + pb->len, RELAY_READ - pb->len);
    if (n < 0 && errno == EINTR)
        return TRUE;
    if (n <= 0)
        return FALSE;
    if (!r->framed) {
        relay_out(r, pb->buf, (size_t)n);
        return TRUE;
    }
    pb->len += (size_t)n;
    size_t whole = whole_frames(pb->buf, pb->len);
    if (whole == 0 && pb->len == RELAY_READ)
        return FALSE; /* a frame larger than the buffer: not ours to relay */
    relay_out(r, pb->buf, whole);
    memmove(pb->buf, pb->buf + whole, pb->len - whole);
    pb->len -= whole;
    return TRUE;
}

static int relay_listen(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 1024) != 0)
        return -1;
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void relay_accept(struct relay *r, int listener)
{
    int fd = accept(listener, NULL, NULL), on = 1;
    if (fd < 0)
        return;
    /* As the broker does: no Nagle delay on small writes (latency-relay). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (listener == r->sub_listener) {
        g_array_append_val(r->subs, fd);
    } else if (r->pubs->len < RELAY_MAX_PUBS) {
        struct relay_pub pb = {.fd = fd};
        g_array_append_val(r->pubs, pb);
    } else {
        close(fd);
    }
}

/* One poll() over the listeners and the publishers, then each ready one in turn. */
static void relay_turn(struct relay *r, struct pollfd *pfd)
{
    guint n = r->pubs->len;
    pfd[0] = (struct pollfd){.fd = r->pub_listener, .events = POLLIN};
    pfd[1] = (struct pollfd){.fd = r->sub_listener, .events = POLLIN};
    for (guint i = 0; i < n; i++)
        pfd[2 + i] =
            (struct pollfd){.fd = g_array_index(r->pubs, struct relay_pub, i).fd, .events = POLLIN};
    if (poll(pfd, n + 2, -1) <= 0)
        return;
    for (guint i = n; i-- > 0;) {
        if (!(pfd[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        struct relay_pub *pb = &g_array_index(r->pubs, struct relay_pub, i);
        if (!relay_pub_read(r, pb)) {
            close(pb->fd);
            g_free(pb->buf);
            g_array_remove_index_fast(r->pubs, i);
        }
    }
    if (pfd[0].revents & POLLIN)
        relay_accept(r, r->pub_listener);
    if (pfd[1].revents & POLLIN)
        relay_accept(r, r->sub_listener);
}

/* The child: serve until killed. */
static void G_GNUC_NORETURN relay_main(int report_fd, gboolean framed)
{
    signal(SIGPIPE, SIG_IGN);
    struct relay r = {.framed = framed,
                      .pubs = g_array_new(FALSE, FALSE, sizeof(struct relay_pub)),
                      .subs = g_array_new(FALSE, FALSE, sizeof(int))};
    int ports[2] = {0, 0};
    r.pub_listener = relay_listen(&ports[0]);
    r.sub_listener = relay_listen(&ports[1]);
    if (r.pub_listener < 0 || r.sub_listener < 0)
        _exit(1);
    if (write(report_fd, ports, sizeof ports) != sizeof ports)
        _exit(1);
    close(report_fd);
    struct pollfd *pfd = g_new(struct pollfd, RELAY_MAX_PUBS + 2);
    for (;;)
        relay_turn(&r, pfd);
}

gboolean relay_spawn(struct target *t, gboolean framed, GError **error)
{
    int fds[2];
    if (pipe(fds) != 0) {
        g_set_error(error, bench_error_quark(), 0, "pipe: %s", g_strerror(errno));
        return FALSE;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        relay_main(fds[1], framed);
    }
    close(fds[1]);
    int ports[2];
    ssize_t n = pid > 0 ? read(fds[0], ports, sizeof ports) : -1;
    close(fds[0]);
    if (n != (ssize_t)sizeof ports) {
        g_set_error(error, bench_error_quark(), 0, "relay did not start");
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        return FALSE;
    }
    t->pid = pid;
    t->spawned = TRUE;
    t->is_relay = TRUE;
    bench_parse_addr("127.0.0.1", ports[0], &t->addr, &t->addr_len);
    socklen_t l;
    bench_parse_addr("127.0.0.1", ports[1], &t->sub_addr, &l);
    return TRUE;
}
