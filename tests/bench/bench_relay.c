/*
 * The relay scenario's process: a trivial relay forked from the bench, the
 * machine's own ceiling for fan-out.  No parsing, no auth: every byte read
 * from the one publisher connection is queued, by reference, to every
 * subscriber connection.  When a subscriber holds more than RELAY_HIGH it
 * stops reading the publisher (so it never drops) until all are under
 * RELAY_LOW.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "bench_common.h"

#define RELAY_HIGH (4u << 20) /* stop reading the publisher when a subscriber holds this */
#define RELAY_LOW (1u << 20)

struct relay {
    struct event_base *base;
    GPtrArray *subs; /* struct bufferevent * */
    struct bufferevent *pub;
    gboolean paused;
};

struct relay_block {
    int refs;
    uint8_t data[];
};

static void relay_block_unref(G_GNUC_UNUSED const void *data, G_GNUC_UNUSED size_t len,
                              void *arg)
{
    struct relay_block *b = arg;
    if (--b->refs == 0)
        g_free(b);
}

static void relay_drop(struct relay *r, struct bufferevent *bev)
{
    if (bev == r->pub)
        r->pub = NULL;
    else
        g_ptr_array_remove_fast(r->subs, bev);
    bufferevent_free(bev);
}

static void relay_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        relay_drop(arg, bev);
}

static void relay_pub_read(struct bufferevent *bev, void *arg)
{
    struct relay *r = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (n == 0)
        return;
    if (r->subs->len == 0) {
        evbuffer_drain(in, n);
        return;
    }
    /* One copy out of the socket buffer, then a reference per subscriber. */
    struct relay_block *b = g_malloc(sizeof *b + n);
    b->refs = 1;
    evbuffer_remove(in, b->data, n);
    gboolean full = FALSE;
    for (guint i = 0; i < r->subs->len; i++) {
        struct evbuffer *out = bufferevent_get_output(r->subs->pdata[i]);
        b->refs++;
        evbuffer_add_reference(out, b->data, n, relay_block_unref, b);
        full |= evbuffer_get_length(out) > RELAY_HIGH;
    }
    relay_block_unref(NULL, 0, b);
    if (full) {
        bufferevent_disable(bev, EV_READ);
        r->paused = TRUE;
    }
}

static void relay_sub_write(G_GNUC_UNUSED struct bufferevent *bev, void *arg)
{
    struct relay *r = arg;
    if (!r->paused || !r->pub)
        return;
    for (guint i = 0; i < r->subs->len; i++)
        if (evbuffer_get_length(bufferevent_get_output(r->subs->pdata[i])) > RELAY_LOW)
            return;
    r->paused = FALSE;
    bufferevent_enable(r->pub, EV_READ);
}

static void relay_sub_read(struct bufferevent *bev, G_GNUC_UNUSED void *arg)
{
    evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
}

static struct bufferevent *relay_bev(struct relay *r, evutil_socket_t fd)
{
    /* As the broker does: no Nagle delay on small writes (latency-relay). */
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    struct bufferevent *bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_set_max_single_read(bev, 65536);
    bufferevent_set_max_single_write(bev, 65536);
    return bev;
}

static void relay_accept_pub(G_GNUC_UNUSED struct evconnlistener *l, evutil_socket_t fd,
                             G_GNUC_UNUSED struct sockaddr *sa, G_GNUC_UNUSED int salen,
                             void *arg)
{
    struct relay *r = arg;
    if (r->pub) {
        evutil_closesocket(fd); /* bytes from two publishers would interleave */
        return;
    }
    r->pub = relay_bev(r, fd);
    bufferevent_setcb(r->pub, relay_pub_read, NULL, relay_event, r);
    bufferevent_enable(r->pub, EV_READ);
}

static void relay_accept_sub(G_GNUC_UNUSED struct evconnlistener *l, evutil_socket_t fd,
                             G_GNUC_UNUSED struct sockaddr *sa, G_GNUC_UNUSED int salen,
                             void *arg)
{
    struct relay *r = arg;
    struct bufferevent *bev = relay_bev(r, fd);
    bufferevent_setcb(bev, relay_sub_read, relay_sub_write, relay_event, r);
    bufferevent_setwatermark(bev, EV_WRITE, RELAY_LOW, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    g_ptr_array_add(r->subs, bev);
}

static struct evconnlistener *relay_listen(struct relay *r, evconnlistener_cb cb, int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct evconnlistener *l =
        evconnlistener_new_bind(r->base, cb, r, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                                (struct sockaddr *)&sin, sizeof sin);
    if (!l)
        return NULL;
    struct sockaddr_in got;
    socklen_t len = sizeof got;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&got, &len);
    *port = ntohs(got.sin_port);
    return l;
}

/* The child: serve until killed, or until the parent goes away. */
static void G_GNUC_NORETURN relay_main(int report_fd)
{
    struct relay r = {.base = event_base_new(), .subs = g_ptr_array_new()};
    int ports[2] = {0, 0};
    if (!relay_listen(&r, relay_accept_pub, &ports[0]) ||
        !relay_listen(&r, relay_accept_sub, &ports[1]))
        _exit(1);
    if (write(report_fd, ports, sizeof ports) != sizeof ports)
        _exit(1);
    close(report_fd);
    event_base_dispatch(r.base);
    _exit(0);
}

gboolean relay_spawn(struct target *t, GError **error)
{
    int fds[2];
    if (pipe(fds) != 0) {
        g_set_error(error, bench_error_quark(), 0, "pipe: %s", g_strerror(errno));
        return FALSE;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        relay_main(fds[1]);
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

