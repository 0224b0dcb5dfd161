/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Configuration and signals as a running daemon sees them: several
 * listeners (IPv4 and IPv6), start-up errors, -t, SIGHUP.
 */
#include <signal.h>
#include <string.h>

#include "harness.h"

/* INFO, AUTH on a connection to host:port; -1 on failure. */
static int client_at(const char *host, int port, const char *ident)
{
    char *secret = g_strconcat(ident, "-secret", NULL);
    int fd = h_connect_host(host, port);

    if (fd >= 0 && !h_auth(fd, ident, secret)) {
        h_close(fd);
        fd = -1;
    }
    g_free(secret);
    return fd;
}

static void test_ipv4_and_ipv6_listeners(void)
{
    struct h_broker *b = h_std_broker("listen = tcp:127.0.0.1:0 ; tcp:[::1]:0\n");
    const struct h_listener *v4 = NULL, *v6 = NULL;
    char name[256];
    int sub6, pub4, sub4, pub6, sync, fd;

    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_wait_listeners(b, 2));
    for (int i = 0; i < b->n_listeners; i++) {
        if (strcmp(b->listeners[i].kind, "tcp") != 0)
            continue;
        if (strchr(b->listeners[i].host, ':'))
            v6 = &b->listeners[i];
        else
            v4 = &b->listeners[i];
    }
    CU_ASSERT_FATAL(v4 != NULL && v6 != NULL);
    CU_ASSERT_STRING_EQUAL(v4->host, "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(v6->host, "::1");
    CU_ASSERT(v4->port != v6->port);

    fd = h_connect_host(v6->host, v6->port);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(h_read_info(fd, true, name, NULL));
    CU_ASSERT_STRING_EQUAL(name, "testbroker");
    h_close(fd);

    sub6 = client_at(v6->host, v6->port, "sub1");
    sub4 = client_at(v4->host, v4->port, "sub2");
    pub4 = client_at(v4->host, v4->port, "pub1");
    pub6 = client_at(v6->host, v6->port, "pub2");
    sync = client_at(v4->host, v4->port, "sync");
    CU_ASSERT_FATAL(sub6 >= 0 && sub4 >= 0 && pub4 >= 0 && pub6 >= 0 && sync >= 0);
    CU_ASSERT_FATAL(h_sub(sub6, "sub1", "chan.a"));
    CU_ASSERT_FATAL(h_sub(sub4, "sub2", "chan.a"));
    CU_ASSERT_FATAL(
        h_barrier(b, (int[]){sub6, sub4}, (const char *[]){"sub1", "sub2"}, 2, sync, "sync"));
    CU_ASSERT_FATAL(h_pub_str(pub4, "pub1", "chan.a", "v4 to all"));
    CU_ASSERT_FATAL(h_pub_str(pub6, "pub2", "chan.a", "v6 to all"));
    CU_ASSERT(h_expect_pub_str(sub6, "pub1", "chan.a", "v4 to all"));
    CU_ASSERT(h_expect_pub_str(sub6, "pub2", "chan.a", "v6 to all"));
    CU_ASSERT(h_expect_pub_str(sub4, "pub1", "chan.a", "v4 to all"));
    CU_ASSERT(h_expect_pub_str(sub4, "pub2", "chan.a", "v6 to all"));
    H_FINISH(b);
}

/* True when every needle occurs in text. */
static bool mentions(const char *text, const char *const *needles)
{
    bool ok = true;

    for (const char *const *n = needles; *n; n++) {
        if (!strstr(text, *n)) {
            fprintf(stderr, "  daemon output does not mention \"%s\"\n", *n);
            ok = false;
        }
    }
    if (!ok)
        fprintf(stderr, "  ---- daemon output ----\n%s  ----\n", text);
    return ok;
}

/* A config error stops the start at once: non-zero exit, and the message
 * names the file, the section and the key. */
static void check_config_error(const char *extra, const char *key)
{
    struct h_broker *b = h_broker_new();
    char *out = NULL;
    int st;

    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_write_config(b, extra));
    {
        const char *args[] = {"-f", "-c", b->conf_path, "--ready-file", b->ready_path, NULL};
        st = h_broker_run_sync(b, args, 5000, &out);
    }
    fprintf(stderr, "  exit status %d\n", st);
    CU_ASSERT(st > 0);
    CU_ASSERT(mentions(out, (const char *[]){key, "broker", "hpfriendsd.conf", NULL}));
    CU_ASSERT(!g_file_test(b->ready_path, G_FILE_TEST_EXISTS));
    g_free(out);

    /* -t gives the same verdict without starting */
    {
        const char *args[] = {"-t", "-c", b->conf_path, NULL};
        st = h_broker_run_sync(b, args, 5000, &out);
    }
    CU_ASSERT(st > 0);
    CU_ASSERT(mentions(out, (const char *[]){key, NULL}));
    g_free(out);
}

static void test_unknown_key(void) { check_config_error("no_such_key = 1\n", "no_such_key"); }

static void test_bad_value(void) { check_config_error("max_frame = banana\n", "max_frame"); }

static void test_bad_error_style(void)
{
    check_config_error("error_style = shouting\n", "error_style");
}

/* A start that fails after the listeners are bound (here: the console's
 * files are missing) exits with a status and a message, not a crash. */
static void test_late_start_failure(void)
{
    struct h_broker *b = h_broker_new();
    char *out = NULL;
    CU_ASSERT_FATAL(b != NULL);
    /* (the broker's listen is spelled out: the harness leaves it to the
     * extra text once that sets a key of the name) */
    CU_ASSERT_FATAL(h_broker_write_config(b, "listen = tcp:127.0.0.1:0\n"
                                             "[web]\nlisten = tcp:127.0.0.1:0\n"
                                             "root = /nonexistent/hpfriends-web\n"));
    const char *args[] = {"-f", "-c", b->conf_path, "--ready-file", b->ready_path, NULL};
    int st = h_broker_run_sync(b, args, 5000, &out);
    fprintf(stderr, "  exit status %d\n", st);
    CU_ASSERT_EQUAL(st, 1); /* -1 would be a signal: the old code crashed here */
    CU_ASSERT(mentions(out, (const char *[]){"/nonexistent/hpfriends-web", NULL}));
    CU_ASSERT(!g_file_test(b->ready_path, G_FILE_TEST_EXISTS));
    g_free(out);
}

/* -t on a good config: exit 0 quickly, nothing listening. */
static void test_check_mode_ok(void)
{
    struct h_broker *b = h_broker_new();
    char *out = NULL;
    int st;

    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(h_broker_write_config(b, "max_frame = 4096\non_denied = continue\n"));
    {
        const char *args[] = {"-t", "-c", b->conf_path, "--ready-file", b->ready_path, NULL};
        st = h_broker_run_sync(b, args, 5000, &out);
    }
    fprintf(stderr, "  -t said: %s", out ? out : "(nothing)\n");
    CU_ASSERT(st == 0);
    CU_ASSERT(out != NULL && *out != '\0');
    CU_ASSERT(!g_file_test(b->ready_path, G_FILE_TEST_EXISTS));
    g_free(out);
}

/* SIGHUP reloads what can be reloaded; it neither stops the daemon nor
 * drops its sessions. */
static void test_sighup_keeps_serving(void)
{
    struct h_broker *b = h_std_broker(NULL);
    int sub, pub, sync, late;

    h_std_pubsub(b, "chan.a", &sub, &pub, &sync);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(kill(b->pid, SIGHUP) == 0);
        h_sleep_ms(200);
        CU_ASSERT_FATAL(h_broker_alive(b));
    }
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "after HUP"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "after HUP"));
    late = h_std_subscriber(b, "sub2", "chan.a", sync);
    CU_ASSERT_FATAL(h_pub_str(pub, "pub1", "chan.a", "late"));
    CU_ASSERT(h_expect_pub_str(late, "pub1", "chan.a", "late"));
    CU_ASSERT(h_expect_pub_str(sub, "pub1", "chan.a", "late"));
    H_FINISH(b);
}

static const struct h_test tests[] = {
    {"IPv4 and IPv6 listeners side by side", test_ipv4_and_ipv6_listeners},
    {"unknown config key stops the start", test_unknown_key},
    {"bad config value stops the start", test_bad_value},
    {"bad error_style stops the start", test_bad_error_style},
    {"a failure after binding exits cleanly", test_late_start_failure},
    {"-t on a good config", test_check_mode_ok},
    {"SIGHUP keeps serving", test_sighup_keeps_serving},
    {NULL, NULL},
};

int main(void)
{
    h_init(120);
    if (CU_initialize_registry() != CUE_SUCCESS || !h_add_suite("t07_config", tests))
        return 1;
    return h_run();
}
