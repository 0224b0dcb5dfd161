/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live-broker test harness; see harness.h.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <sqlite3.h>

/* Largest frame the harness accepts from the broker; bigger means garbage. */
#define H_MAX_INCOMING (64u * 1024u * 1024u)

/* Everything the current test started, released by h_teardown. */
static GPtrArray *brokers;
static GArray *open_fds;
static unsigned failures_at_setup;

/* Daemon pids for the alarm handler, which may only do async-safe things. */
#define H_MAX_PIDS 64
static volatile pid_t live_pids[H_MAX_PIDS];

/* ------------------------------------------------------------------ */
/* time                                                                */

int64_t h_now_ms(void) { return g_get_monotonic_time() / 1000; }

void h_sleep_ms(int ms) { g_usleep((gulong)ms * 1000); }

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - h_now_ms();
    return left < 0 ? 0 : (int)left;
}

/* ------------------------------------------------------------------ */
/* fixture                                                             */

static void on_alarm(int sig)
{
    static const char msg[] = "\nharness: global time limit hit, killing daemons\n";
    (void)sig;
    for (int i = 0; i < H_MAX_PIDS; i++)
        if (live_pids[i] > 0)
            kill(live_pids[i], SIGKILL);
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing left to do */
    }
    _exit(3);
}

void h_init(unsigned alarm_seconds)
{
    const char *pd = getenv("HPFRIENDS_PLUGIN_DIR");

    /* the daemon runs in "/": keep a relative plugin dir meaningful */
    if (pd && *pd && !g_path_is_absolute(pd)) {
        char *abs = g_canonicalize_filename(pd, NULL);
        g_setenv("HPFRIENDS_PLUGIN_DIR", abs, TRUE);
        g_free(abs);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(alarm_seconds);
    setvbuf(stderr, NULL, _IONBF, 0);
}

static void pid_track(pid_t pid, bool add)
{
    for (int i = 0; i < H_MAX_PIDS; i++) {
        if (add && live_pids[i] == 0) {
            live_pids[i] = pid;
            return;
        }
        if (!add && live_pids[i] == pid) {
            live_pids[i] = 0;
            return;
        }
    }
}

void h_setup(void)
{
    if (!brokers)
        brokers = g_ptr_array_new();
    if (!open_fds)
        open_fds = g_array_new(FALSE, FALSE, sizeof(int));
    failures_at_setup = CU_get_number_of_failures();
}

static void remove_tree(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (!d)
        return;
    while ((name = g_dir_read_name(d))) {
        char *p = g_build_filename(dir, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            remove_tree(p);
        else
            g_unlink(p);
        g_free(p);
    }
    g_dir_close(d);
    g_rmdir(dir);
}

static void broker_free(struct h_broker *b)
{
    if (b->pid > 0) {
        if (!h_broker_stop(b, 5000))
            fprintf(stderr, "harness: daemon did not stop cleanly at teardown\n");
    }
    if (b->dir) {
        if (getenv("HPF_IT_KEEP"))
            fprintf(stderr, "harness: kept %s\n", b->dir);
        else
            remove_tree(b->dir);
    }
    g_free(b->dir);
    g_free(b->db_path);
    g_free(b->conf_path);
    g_free(b->ready_path);
    g_free(b->log_path);
    g_free(b);
}

void h_teardown(void)
{
    bool failed = CU_get_number_of_failures() > failures_at_setup;

    if (open_fds) {
        for (guint i = 0; i < open_fds->len; i++)
            close(g_array_index(open_fds, int, i));
        g_array_set_size(open_fds, 0);
    }
    if (brokers) {
        for (guint i = 0; i < brokers->len; i++) {
            struct h_broker *b = g_ptr_array_index(brokers, i);
            if (failed && !b->log_dumped)
                h_broker_dump_log(b);
            broker_free(b);
        }
        g_ptr_array_set_size(brokers, 0);
    }
}

int h_run(void)
{
    unsigned failed_asserts, failed_tests, run;
    CU_ErrorCode err;

    CU_basic_set_mode(CU_BRM_VERBOSE);
    err = CU_basic_run_tests();
    failed_asserts = CU_get_number_of_failures();
    failed_tests = CU_get_number_of_tests_failed();
    run = CU_get_number_of_tests_run();
    if (err == CUE_SUCCESS)
        err = CU_get_error();
    CU_cleanup_registry();
    printf("\n%s: %u tests run, %u failed, %u failed assertions, cunit error %d\n",
           g_get_prgname() ? g_get_prgname() : "test", run, failed_tests, failed_asserts, (int)err);
    return (failed_asserts || failed_tests || err != CUE_SUCCESS || run == 0) ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* daemon                                                              */

struct h_broker *h_broker_new(void)
{
    struct h_broker *b = g_new0(struct h_broker, 1);
    GError *err = NULL;
    sqlite3 *db = NULL;
    char *emsg = NULL;

    if (!brokers)
        h_setup();
    b->dir = g_dir_make_tmp("hpf-it-XXXXXX", &err);
    if (!b->dir) {
        fprintf(stderr, "harness: g_dir_make_tmp: %s\n", err->message);
        g_error_free(err);
        g_free(b);
        return NULL;
    }
    g_ptr_array_add(brokers, b);
    b->db_path = g_build_filename(b->dir, "auth.db", NULL);
    b->conf_path = g_build_filename(b->dir, "hpfriendsd.conf", NULL);
    b->ready_path = g_build_filename(b->dir, "ready", NULL);
    b->log_path = g_build_filename(b->dir, "daemon.log", NULL);

    /* The schema hpfeeds3 creates, so the daemon reads existing data as-is. */
    if (sqlite3_open(b->db_path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TABLE authkeys (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT,"
                     " ident TEXT, secret TEXT, pubchans TEXT, subchans TEXT);"
                     "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT);"
                     "CREATE TABLE stats (id INTEGER PRIMARY KEY AUTOINCREMENT, ak TEXT,"
                     " uid TEXT, data TEXT);",
                     NULL, NULL, &emsg) != SQLITE_OK) {
        fprintf(stderr, "harness: creating %s: %s\n", b->db_path, emsg ? emsg : sqlite3_errmsg(db));
        sqlite3_free(emsg);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_close(db);
    return b;
}

static char *json_list(const char *csv)
{
    GString *s = g_string_new("[");
    char **parts = g_strsplit(csv ? csv : "", ",", -1);
    bool first = true;

    for (char **p = parts; *p; p++) {
        if (!**p)
            continue;
        g_string_append_printf(s, "%s\"%s\"", first ? "" : ",", *p);
        first = false;
    }
    for (int i = 0; i < H_SYNC_CHANNELS; i++) {
        g_string_append_printf(s, "%s\"" H_SYNC_PREFIX "%d\"", first ? "" : ",", i);
        first = false;
    }
    g_strfreev(parts);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

bool h_broker_add_key(struct h_broker *b, const char *ident, const char *secret,
                      const char *pub_csv, const char *sub_csv)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *pub = json_list(pub_csv), *sub = json_list(sub_csv);
    bool ok = false;

    if (sqlite3_open(b->db_path, &db) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 5000);
    /* a throw-away test db: no fsync per insert (the load test adds hundreds) */
    sqlite3_exec(db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO authkeys (owner, ident, secret, pubchans, subchans)"
                           " VALUES (?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, ident, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, ident, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, secret, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, pub, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, sub, -1, SQLITE_TRANSIENT);
    ok = sqlite3_step(st) == SQLITE_DONE;
out:
    if (!ok)
        fprintf(stderr, "harness: adding authkey %s: %s\n", ident,
                db ? sqlite3_errmsg(db) : "cannot open db");
    sqlite3_finalize(st);
    sqlite3_close(db);
    g_free(pub);
    g_free(sub);
    return ok;
}

/* Absolute, because the daemon runs in "/" (see spawn). */
static char *daemon_path(void)
{
    const char *bd = getenv("HPF_BUILDDIR");
    char *rel = g_build_filename(bd && *bd ? bd : ".", "core", "hpfriendsd", NULL);
    char *abs = g_canonicalize_filename(rel, NULL);

    g_free(rel);
    return abs;
}

/* Parses the ready file into b->listeners; a line counts once it ends in
 * '\n', or when the same unterminated content was already seen on the
 * previous poll.  Returns the number of listeners. */
static int read_ready(struct h_broker *b, char **prev)
{
    char *text = NULL;
    int n = 0;

    if (!g_file_get_contents(b->ready_path, &text, NULL, NULL))
        return 0;
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l && n < H_MAX_LISTENERS; l++) {
        bool terminated = l[1] != NULL;
        struct h_listener *li = &b->listeners[n];
        int p = 0;
        if (!**l || (!terminated && !(*prev && strcmp(*prev, text) == 0)))
            continue;
        if (sscanf(*l, "%7s %63s %d", li->kind, li->host, &p) == 3 && p > 0 && p < 65536) {
            li->port = p;
            n++;
        } else {
            fprintf(stderr, "harness: ready file line not understood: \"%s\"\n", *l);
        }
    }
    g_strfreev(lines);
    g_free(*prev);
    *prev = text;
    b->n_listeners = n;
    b->port = 0;
    for (int i = 0; i < n && !b->port; i++)
        if (strcmp(b->listeners[i].kind, "tcp") == 0)
            b->port = b->listeners[i].port;
    return n;
}

bool h_broker_wait_listeners(struct h_broker *b, int n)
{
    int64_t deadline = h_now_ms() + 10000;
    char *prev = NULL;

    while (h_now_ms() < deadline) {
        if (read_ready(b, &prev) >= n) {
            g_free(prev);
            return true;
        }
        if (!h_broker_alive(b))
            break;
        h_sleep_ms(20);
    }
    g_free(prev);
    fprintf(stderr, "harness: ready file lists %d listeners, wanted %d\n", b->n_listeners, n);
    return false;
}

static bool spawn(struct h_broker *b, GPtrArray *argv)
{
    pid_t parent = getpid();

    fflush(NULL);
    b->pid = fork();
    if (b->pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        b->pid = 0;
        return false;
    }
    if (b->pid == 0) {
        /* The daemon must not outlive a crashed test binary. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        int logfd = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nullfd = open("/dev/null", O_RDONLY);
        if (logfd < 0 || nullfd < 0)
            _exit(126);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        /* A working directory where nothing resolves: relative paths in a
         * config must be taken relative to the config file. */
        if (chdir("/") < 0)
            _exit(126);
        execv(g_ptr_array_index(argv, 0), (char **)argv->pdata);
        dprintf(2, "harness: exec %s: %s\n", (char *)g_ptr_array_index(argv, 0), strerror(errno));
        _exit(127);
    }
    pid_track(b->pid, true);
    return true;
}

static bool spawn_and_wait(struct h_broker *b, GPtrArray *argv)
{
    int64_t deadline;
    char *prev = NULL;
    int status;

    g_unlink(b->ready_path);
    b->n_listeners = 0;
    b->port = 0;
    if (!spawn(b, argv))
        return false;
    deadline = h_now_ms() + 10000;
    while (h_now_ms() < deadline) {
        pid_t w = waitpid(b->pid, &status, WNOHANG);
        if (w == b->pid) {
            pid_track(b->pid, false);
            b->pid = 0;
            b->exit_status = status;
            fprintf(stderr, "harness: daemon exited before ready (%s %d)\n",
                    WIFEXITED(status) ? "status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            h_broker_dump_log(b);
            g_free(prev);
            return false;
        }
        if (read_ready(b, &prev) > 0 && b->port > 0) {
            g_free(prev);
            return true;
        }
        h_sleep_ms(20);
    }
    g_free(prev);
    fprintf(stderr, "harness: daemon not ready within 10 s (ready file %s)\n", b->ready_path);
    h_broker_dump_log(b);
    return false;
}

/* True when the extra [broker] lines set key themselves. */
static bool sets_key(const char *extra, const char *key)
{
    char **lines = g_strsplit(extra ? extra : "", "\n", -1);
    bool found = false;

    for (char **l = lines; *l && !found; l++) {
        /* Only the [broker] part counts: a [web] listen is not the broker's. */
        if (g_str_has_prefix(g_strchug(*l), "["))
            break;
        char *eq = strchr(*l, '=');
        if (!eq)
            continue;
        char *k = g_strstrip(g_strndup(*l, (gsize)(eq - *l)));
        found = strcmp(k, key) == 0;
        g_free(k);
    }
    g_strfreev(lines);
    return found;
}

bool h_broker_write_config(struct h_broker *b, const char *broker_extra)
{
    static const char *const defaults[][2] = {
        {"name", "testbroker"},
        {"listen", "tcp:127.0.0.1:0"},
        {"access", "channels"},
    };
    GString *conf = g_string_new("[broker]\n");
    GError *err = NULL;
    bool ok;

    for (size_t i = 0; i < G_N_ELEMENTS(defaults); i++)
        if (!sets_key(broker_extra, defaults[i][0]))
            g_string_append_printf(conf, "%s = %s\n", defaults[i][0], defaults[i][1]);
    if (broker_extra && *broker_extra) {
        g_string_append(conf, broker_extra);
        if (conf->str[conf->len - 1] != '\n')
            g_string_append_c(conf, '\n');
    }
    /* relative on purpose: resolved against the config file's directory,
     * while the daemon's working directory is the test's */
    g_string_append(conf, "[storage]\nplugin = sqlite\npath = auth.db\n");
    ok = g_file_set_contents(b->conf_path, conf->str, (gssize)conf->len, &err);
    if (!ok) {
        fprintf(stderr, "harness: writing config: %s\n", err->message);
        g_error_free(err);
    }
    g_string_free(conf, TRUE);
    return ok;
}

bool h_broker_start(struct h_broker *b, const char *broker_extra)
{
    GPtrArray *argv;
    bool ok;

    if (!b || !h_broker_write_config(b, broker_extra))
        return false;
    argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(argv, daemon_path());
    g_ptr_array_add(argv, g_strdup("-f"));
    g_ptr_array_add(argv, g_strdup("-c"));
    g_ptr_array_add(argv, g_strdup(b->conf_path));
    g_ptr_array_add(argv, g_strdup("--ready-file"));
    g_ptr_array_add(argv, g_strdup(b->ready_path));
    g_ptr_array_add(argv, NULL);
    ok = spawn_and_wait(b, argv);
    g_ptr_array_free(argv, TRUE);
    return ok;
}

int h_broker_run_sync(struct h_broker *b, const char *const *args, int timeout_ms, char **output)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    int64_t deadline = h_now_ms() + timeout_ms;
    int status = 0, ret = -1;
    bool exited = false;

    if (output)
        *output = NULL;
    g_unlink(b->log_path);
    g_ptr_array_add(argv, daemon_path());
    for (const char *const *a = args; *a; a++)
        g_ptr_array_add(argv, g_strdup(*a));
    g_ptr_array_add(argv, NULL);
    if (!spawn(b, argv)) {
        g_ptr_array_free(argv, TRUE);
        return -1;
    }
    g_ptr_array_free(argv, TRUE);
    while (h_now_ms() < deadline) {
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            exited = true;
            break;
        }
        h_sleep_ms(10);
    }
    if (!exited) {
        fprintf(stderr, "harness: daemon still running after %d ms, killing it\n", timeout_ms);
        kill(b->pid, SIGKILL);
        waitpid(b->pid, &status, 0);
    }
    pid_track(b->pid, false);
    b->pid = 0;
    b->exit_status = status;
    if (exited && WIFEXITED(status))
        ret = WEXITSTATUS(status);
    if (output && !g_file_get_contents(b->log_path, output, NULL, NULL))
        *output = g_strdup("");
    return ret;
}

bool h_broker_start_argv(struct h_broker *b, const char *const *args)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    bool ok;

    if (!b)
        return false;
    g_ptr_array_add(argv, daemon_path());
    g_ptr_array_add(argv, g_strdup("-f"));
    for (const char *const *a = args; *a; a++)
        g_ptr_array_add(argv, g_strdup(*a));
    g_ptr_array_add(argv, g_strdup("--ready-file"));
    g_ptr_array_add(argv, g_strdup(b->ready_path));
    g_ptr_array_add(argv, NULL);
    ok = spawn_and_wait(b, argv);
    g_ptr_array_free(argv, TRUE);
    return ok;
}

bool h_broker_alive(struct h_broker *b)
{
    int status;

    if (!b || b->pid <= 0)
        return false;
    if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
        pid_track(b->pid, false);
        b->pid = 0;
        b->exit_status = status;
        fprintf(stderr, "harness: daemon died (%s %d)\n", WIFEXITED(status) ? "status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return false;
    }
    return true;
}

static bool broker_wait(struct h_broker *b, int timeout_ms, bool signal_first)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    int status = 0;
    bool exited = false;

    if (!b || b->pid <= 0) {
        fprintf(stderr, "harness: stop: daemon is not running\n");
        return false;
    }
    if (signal_first)
        kill(b->pid, SIGTERM);
    while (h_now_ms() < deadline) {
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            exited = true;
            break;
        }
        h_sleep_ms(10);
    }
    if (!exited) {
        fprintf(stderr, "harness: daemon ignored SIGTERM for %d ms, killing it\n", timeout_ms);
        kill(b->pid, SIGKILL);
        waitpid(b->pid, &status, 0);
    }
    pid_track(b->pid, false);
    b->pid = 0;
    b->exit_status = status;
    if (!exited)
        return false;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "harness: daemon exit after SIGTERM: %s %d\n",
                WIFEXITED(status) ? "status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return false;
    }
    return true;
}

bool h_broker_stop(struct h_broker *b, int timeout_ms) { return broker_wait(b, timeout_ms, true); }

bool h_broker_wait_exit(struct h_broker *b, int timeout_ms)
{
    return broker_wait(b, timeout_ms, false);
}

long h_broker_rss_kb(struct h_broker *b)
{
    char path[64], *text = NULL, *p;
    long kb = -1;

    if (!b || b->pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)b->pid);
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    p = strstr(text, "\nVmRSS:");
    if (p)
        kb = strtol(p + 7, NULL, 10);
    g_free(text);
    return kb;
}

int h_broker_fds(struct h_broker *b)
{
    char path[64];
    GDir *d;
    int n = 0;

    if (!b || b->pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)b->pid);
    d = g_dir_open(path, 0, NULL);
    if (!d)
        return -1;
    while (g_dir_read_name(d))
        n++;
    g_dir_close(d);
    return n;
}

int h_broker_wait_fds(struct h_broker *b, int want, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    int n = h_broker_fds(b);

    while ((n < 0 || n > want) && h_now_ms() < deadline) {
        h_sleep_ms(100);
        n = h_broker_fds(b);
    }
    return n;
}

void h_broker_dump_log(struct h_broker *b)
{
    char *text = NULL;
    gsize len = 0;

    if (!b || !b->log_path || !g_file_get_contents(b->log_path, &text, &len, NULL))
        return;
    b->log_dumped = true;
    /* The tail is what explains a failure; keep the output readable. */
    const char *start = len > 8192 ? text + len - 8192 : text;
    fprintf(stderr, "---- daemon log %s%s ----\n%s%s---- end of daemon log ----\n", b->log_path,
            len > 8192 ? " (tail)" : "", start, len && text[len - 1] != '\n' ? "\n" : "");
    g_free(text);
}

/* ------------------------------------------------------------------ */
/* sockets                                                             */

static void fd_track(int fd, bool add)
{
    if (!open_fds)
        h_setup();
    if (add) {
        g_array_append_val(open_fds, fd);
        return;
    }
    for (guint i = 0; i < open_fds->len; i++) {
        if (g_array_index(open_fds, int, i) == fd) {
            g_array_remove_index_fast(open_fds, i);
            return;
        }
    }
}

static int connect_addr(const char *host, int port, int rcvbuf)
{
    struct sockaddr_storage ss = {0};
    socklen_t slen;
    struct pollfd pfd;
    int fd, soerr = 0, flags;
    socklen_t sl = sizeof soerr;

    if (strchr(host, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -1;
        slen = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return -1;
        slen = sizeof *s4;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "harness: socket: %s\n", strerror(errno));
        return -1;
    }
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

    flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (connect(fd, (struct sockaddr *)&ss, slen) < 0 && errno != EINPROGRESS) {
        fprintf(stderr, "harness: connect to %s port %d: %s\n", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    pfd.fd = fd;
    pfd.events = POLLOUT;
    if (poll(&pfd, 1, 5000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ||
        soerr != 0) {
        fprintf(stderr, "harness: connect to %s port %d: %s\n", host, port,
                soerr ? strerror(soerr) : "timed out");
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, flags);
    fd_track(fd, true);
    return fd;
}

int h_connect_opt(int port, int rcvbuf) { return connect_addr("127.0.0.1", port, rcvbuf); }

int h_connect_host(const char *host, int port) { return connect_addr(host, port, 0); }

int h_connect(int port) { return h_connect_opt(port, 0); }

void h_close(int fd)
{
    if (fd < 0)
        return;
    fd_track(fd, false);
    close(fd);
}

static bool send_deadline(int fd, const uint8_t *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int r = poll(&pfd, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            fprintf(stderr, "harness: send timed out with %zu bytes left\n", len);
            return false;
        }
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            fprintf(stderr, "harness: send: %s\n", strerror(errno));
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool h_send(int fd, const void *buf, size_t len)
{
    return send_deadline(fd, buf, len, h_now_ms() + 10000);
}

bool h_send_trickle(int fd, const void *buf, size_t len, unsigned delay_us)
{
    const uint8_t *p = buf;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (size_t i = 0; i < len; i++) {
        if (!h_send(fd, p + i, 1))
            return false;
        if (delay_us)
            g_usleep(delay_us);
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* encoders                                                            */

static void put_u32(GByteArray *out, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    g_byte_array_append(out, b, 4);
}

static void put_s8(GByteArray *out, const char *s)
{
    size_t n = strlen(s);
    uint8_t l = (uint8_t)n;

    g_assert(n <= 255);
    g_byte_array_append(out, &l, 1);
    g_byte_array_append(out, (const uint8_t *)s, (guint)n);
}

void h_enc_frame(GByteArray *out, uint8_t op, const void *payload, size_t len)
{
    put_u32(out, (uint32_t)(len + 5));
    g_byte_array_append(out, &op, 1);
    if (len)
        g_byte_array_append(out, payload, (guint)len);
}

void h_enc_auth(GByteArray *out, const char *ident, const uint8_t hash[20])
{
    put_u32(out, (uint32_t)(5 + 1 + strlen(ident) + 20));
    g_byte_array_append(out, (const uint8_t[]){H_OP_AUTH}, 1);
    put_s8(out, ident);
    g_byte_array_append(out, hash, 20);
}

void h_enc_publish(GByteArray *out, const char *ident, const char *chan, const void *payload,
                   size_t len)
{
    put_u32(out, (uint32_t)(5 + 1 + strlen(ident) + 1 + strlen(chan) + len));
    g_byte_array_append(out, (const uint8_t[]){H_OP_PUBLISH}, 1);
    put_s8(out, ident);
    put_s8(out, chan);
    if (len)
        g_byte_array_append(out, payload, (guint)len);
}

static void enc_sub_unsub(GByteArray *out, uint8_t op, const char *ident, const char *chan)
{
    put_u32(out, (uint32_t)(5 + 1 + strlen(ident) + strlen(chan)));
    g_byte_array_append(out, &op, 1);
    put_s8(out, ident);
    g_byte_array_append(out, (const uint8_t *)chan, (guint)strlen(chan));
}

void h_enc_subscribe(GByteArray *out, const char *ident, const char *chan)
{
    enc_sub_unsub(out, H_OP_SUBSCRIBE, ident, chan);
}

void h_enc_unsubscribe(GByteArray *out, const char *ident, const char *chan)
{
    enc_sub_unsub(out, H_OP_UNSUBSCRIBE, ident, chan);
}

void h_auth_hash(const uint8_t nonce[4], const char *secret, uint8_t out[20])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;

    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, nonce, 4);
    EVP_DigestUpdate(ctx, secret, strlen(secret));
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
    g_assert(len == 20);
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

const char *h_read_str(int r)
{
    switch (r) {
    case H_FRAME:
        return "a frame";
    case H_EOF:
        return "EOF";
    case H_TIMEOUT:
        return "timeout";
    case H_RESET:
        return "connection reset/error";
    case H_TRUNC:
        return "EOF inside a frame";
    default:
        return "garbage from broker";
    }
}

/* 1 all read, 0 EOF before any byte, -1 timeout, -2 error, -3 EOF midway */
static int recv_exact(int fd, uint8_t *p, size_t len, int64_t deadline)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return H_TIMEOUT;
        ssize_t n = recv(fd, p + got, len - got, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return H_RESET;
        }
        if (n == 0)
            return got == 0 ? H_EOF : H_TRUNC;
        got += (size_t)n;
    }
    return 1;
}

void h_frame_clear(struct h_frame *f)
{
    g_free(f->raw);
    f->raw = NULL;
    f->len = 0;
    f->op = 0xff;
}

int h_read_frame_raw(int fd, int timeout_ms, struct h_frame *f)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    uint8_t hdr[5];
    uint32_t len;
    int r;

    h_frame_clear(f);
    r = recv_exact(fd, hdr, 5, deadline);
    if (r != 1)
        return r;
    len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (len < 5 || len > H_MAX_INCOMING) {
        fprintf(stderr, "harness: broker sent a frame of length %u\n", len);
        return -4;
    }
    f->raw = g_malloc(len);
    memcpy(f->raw, hdr, 5);
    f->len = len;
    f->op = hdr[4];
    r = recv_exact(fd, f->raw + 5, len - 5, deadline);
    if (r == H_EOF)
        r = H_TRUNC;
    if (r != 1) {
        h_frame_clear(f);
        return r;
    }
    return H_FRAME;
}

bool h_parse_publish(const struct h_frame *f, const uint8_t **ident, size_t *ident_len,
                     const uint8_t **chan, size_t *chan_len, const uint8_t **payload,
                     size_t *payload_len)
{
    size_t pos = 5;

    if (f->op != H_OP_PUBLISH || f->len < 7)
        return false;
    *ident_len = f->raw[pos++];
    *ident = f->raw + pos;
    pos += *ident_len;
    if (pos + 1 > f->len)
        return false;
    *chan_len = f->raw[pos++];
    *chan = f->raw + pos;
    pos += *chan_len;
    if (pos > f->len)
        return false;
    *payload = f->raw + pos;
    *payload_len = f->len - pos;
    return true;
}

static bool is_sync(const struct h_frame *f)
{
    const uint8_t *id, *ch, *pl;
    size_t il, cl, pll;

    return h_parse_publish(f, &id, &il, &ch, &cl, &pl, &pll) && cl >= strlen(H_SYNC_PREFIX) &&
           memcmp(ch, H_SYNC_PREFIX, strlen(H_SYNC_PREFIX)) == 0;
}

int h_read_frame(int fd, int timeout_ms, struct h_frame *f)
{
    int64_t deadline = h_now_ms() + timeout_ms;

    for (;;) {
        int r = h_read_frame_raw(fd, remaining_ms(deadline), f);
        if (r != H_FRAME || !is_sync(f))
            return r;
    }
}

/* A short printable description of a frame, for failure messages. */
static char *describe(const struct h_frame *f)
{
    const uint8_t *id, *ch, *pl;
    size_t il, cl, pll;
    GString *s = g_string_new(NULL);

    switch (f->op) {
    case H_OP_ERROR:
        g_string_append_printf(s, "ERROR \"%.*s\"", (int)(f->len - 5), f->raw + 5);
        break;
    case H_OP_INFO:
        g_string_append_printf(s, "INFO (%zu bytes)", f->len);
        break;
    case H_OP_PUBLISH:
        if (h_parse_publish(f, &id, &il, &ch, &cl, &pl, &pll)) {
            g_string_append_printf(s, "PUBLISH ident=%.*s chan=%.*s payload=%zu bytes \"", (int)il,
                                   id, (int)cl, ch, pll);
            for (size_t i = 0; i < pll && i < 40; i++)
                g_string_append_c(s, g_ascii_isprint(pl[i]) ? (char)pl[i] : '.');
            g_string_append_c(s, '"');
            break;
        }
        /* fall through */
    default:
        g_string_append_printf(s, "op %u (%zu bytes)", f->op, f->len);
    }
    return g_string_free(s, FALSE);
}

static void report_unexpected(const char *what, int r, const struct h_frame *f)
{
    if (r == H_FRAME) {
        char *d = describe(f);
        fprintf(stderr, "harness: expected %s, got %s\n", what, d);
        g_free(d);
    } else {
        fprintf(stderr, "harness: expected %s, got %s\n", what, h_read_str(r));
    }
}

bool h_read_info(int fd, bool one_read, char *name_out, uint8_t nonce_out[4])
{
    struct h_frame f = {0};
    bool ok = false;
    int r;

    if (one_read) {
        /* What a client sees in its first recv() once data has arrived. */
        uint8_t peek[4096];
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, H_WAIT_MS) != 1) {
            fprintf(stderr, "harness: no INFO within %d ms\n", H_WAIT_MS);
            return false;
        }
        ssize_t n = recv(fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
        if (n < 5) {
            fprintf(stderr, "harness: first recv() got %zd bytes, not a whole header\n", n);
            return false;
        }
        uint32_t len =
            (uint32_t)peek[0] << 24 | (uint32_t)peek[1] << 16 | (uint32_t)peek[2] << 8 | peek[3];
        if ((size_t)n < len) {
            fprintf(stderr, "harness: first recv() got %zd bytes of a %u-byte INFO\n", n, len);
            return false;
        }
    }
    r = h_read_frame_raw(fd, H_WAIT_MS, &f);
    if (r != H_FRAME || f.op != H_OP_INFO) {
        report_unexpected("INFO", r, &f);
        goto out;
    }
    if (f.len < 6 || 6 + (size_t)f.raw[5] + 4 != f.len) {
        fprintf(stderr, "harness: INFO of %zu bytes with name length %u: nonce is not 4 bytes\n",
                f.len, f.len > 5 ? f.raw[5] : 0);
        goto out;
    }
    if (name_out) {
        memcpy(name_out, f.raw + 6, f.raw[5]);
        name_out[f.raw[5]] = '\0';
    }
    if (nonce_out)
        memcpy(nonce_out, f.raw + 6 + f.raw[5], 4);
    ok = true;
out:
    h_frame_clear(&f);
    return ok;
}

bool h_send_auth(int fd, const uint8_t nonce[4], const char *ident, const char *secret)
{
    uint8_t hash[20];
    GByteArray *out = g_byte_array_new();
    bool ok;

    h_auth_hash(nonce, secret, hash);
    h_enc_auth(out, ident, hash);
    ok = h_send(fd, out->data, out->len);
    g_byte_array_free(out, TRUE);
    return ok;
}

bool h_auth(int fd, const char *ident, const char *secret)
{
    uint8_t nonce[4];

    return fd >= 0 && h_read_info(fd, false, NULL, nonce) && h_send_auth(fd, nonce, ident, secret);
}

int h_client(int port, const char *ident, const char *secret)
{
    int fd = h_connect(port);

    if (fd < 0)
        return -1;
    if (!h_auth(fd, ident, secret)) {
        h_close(fd);
        return -1;
    }
    return fd;
}

static bool send_array(int fd, GByteArray *out)
{
    bool ok = h_send(fd, out->data, out->len);

    g_byte_array_free(out, TRUE);
    return ok;
}

bool h_sub(int fd, const char *ident, const char *chan)
{
    GByteArray *out = g_byte_array_new();

    h_enc_subscribe(out, ident, chan);
    return send_array(fd, out);
}

bool h_unsub(int fd, const char *ident, const char *chan)
{
    GByteArray *out = g_byte_array_new();

    h_enc_unsubscribe(out, ident, chan);
    return send_array(fd, out);
}

bool h_pub(int fd, const char *ident, const char *chan, const void *payload, size_t len)
{
    GByteArray *out = g_byte_array_new();

    h_enc_publish(out, ident, chan, payload, len);
    return send_array(fd, out);
}

bool h_pub_str(int fd, const char *ident, const char *chan, const char *payload)
{
    return h_pub(fd, ident, chan, payload, strlen(payload));
}

static bool expect_error(int fd, const char *text, bool prefix)
{
    struct h_frame f = {0};
    int r = h_read_frame(fd, H_WAIT_MS, &f);
    size_t tl = strlen(text);
    bool ok = r == H_FRAME && f.op == H_OP_ERROR && (prefix ? f.len - 5 >= tl : f.len - 5 == tl) &&
              memcmp(f.raw + 5, text, tl) == 0;

    if (!ok) {
        char *what = g_strdup_printf("ERROR %s\"%s\"", prefix ? "starting with " : "", text);
        report_unexpected(what, r, &f);
        g_free(what);
    }
    h_frame_clear(&f);
    return ok;
}

bool h_expect_error(int fd, const char *text) { return expect_error(fd, text, false); }

bool h_expect_error_prefix(int fd, const char *prefix) { return expect_error(fd, prefix, true); }

bool h_expect_eof(int fd, int timeout_ms)
{
    struct h_frame f = {0};
    int r = h_read_frame(fd, timeout_ms, &f);
    bool ok = r == H_EOF || r == H_RESET;

    if (!ok)
        report_unexpected("the broker to close the connection", r, &f);
    h_frame_clear(&f);
    return ok;
}

bool h_expect_silence(int fd, int ms)
{
    struct h_frame f = {0};
    int r = h_read_frame(fd, ms, &f);
    bool ok = r == H_TIMEOUT;

    if (!ok)
        report_unexpected("nothing", r, &f);
    h_frame_clear(&f);
    return ok;
}

bool h_expect_raw(int fd, const void *raw, size_t len)
{
    struct h_frame f = {0};
    int r = h_read_frame(fd, H_WAIT_MS, &f);
    bool ok = r == H_FRAME && f.len == len && memcmp(f.raw, raw, len) == 0;

    if (!ok) {
        if (r == H_FRAME) {
            size_t i = 0;
            while (i < len && i < f.len && f.raw[i] == ((const uint8_t *)raw)[i])
                i++;
            char *d = describe(&f);
            fprintf(stderr,
                    "harness: expected a %zu-byte frame, got %s, %zu bytes, first difference at "
                    "offset %zu\n",
                    len, d, f.len, i);
            g_free(d);
        } else {
            report_unexpected("a frame", r, &f);
        }
    }
    h_frame_clear(&f);
    return ok;
}

bool h_expect_pub(int fd, const char *ident, const char *chan, const void *payload, size_t len)
{
    GByteArray *want = g_byte_array_new();
    bool ok;

    h_enc_publish(want, ident, chan, payload, len);
    ok = h_expect_raw(fd, want->data, want->len);
    if (!ok)
        fprintf(stderr, "harness: (wanted PUBLISH ident=%s chan=%s payload=%zu bytes)\n", ident,
                chan, len);
    g_byte_array_free(want, TRUE);
    return ok;
}

bool h_expect_pub_str(int fd, const char *ident, const char *chan, const char *payload)
{
    return h_expect_pub(fd, ident, chan, payload, strlen(payload));
}

bool h_barrier(struct h_broker *b, const int *sub_fds, const char *const *sub_idents, size_t n,
               int pub_fd, const char *pub_ident)
{
    char chan[32];
    bool *seen = g_new0(bool, n);
    size_t nseen = 0;
    int64_t deadline = h_now_ms() + 10000;
    unsigned round = 0;
    bool ok = false;

    if (b->sync_next >= H_SYNC_CHANNELS) {
        fprintf(stderr, "harness: out of sync channels\n");
        goto out;
    }
    snprintf(chan, sizeof chan, H_SYNC_PREFIX "%u", b->sync_next++);
    for (size_t i = 0; i < n; i++)
        if (!h_sub(sub_fds[i], sub_idents[i], chan))
            goto out;

    while (nseen < n && h_now_ms() < deadline) {
        char payload[32];
        int64_t round_end = h_now_ms() + 300;

        snprintf(payload, sizeof payload, "sync-%u", round++);
        if (!h_pub_str(pub_fd, pub_ident, chan, payload))
            goto out;
        while (nseen < n && h_now_ms() < round_end) {
            struct pollfd *pfds = g_new(struct pollfd, n);
            size_t *idx = g_new(size_t, n);
            nfds_t np = 0;
            for (size_t i = 0; i < n; i++) {
                if (seen[i])
                    continue;
                pfds[np].fd = sub_fds[i];
                pfds[np].events = POLLIN;
                pfds[np].revents = 0;
                idx[np++] = i;
            }
            int pr = poll(pfds, np, remaining_ms(round_end));
            for (nfds_t k = 0; pr > 0 && k < np; k++) {
                struct h_frame f = {0};
                const uint8_t *id, *ch, *pl;
                size_t il, cl, pll;
                if (!pfds[k].revents)
                    continue;
                int r = h_read_frame_raw(pfds[k].fd, 2000, &f);
                if (r != H_FRAME || !h_parse_publish(&f, &id, &il, &ch, &cl, &pl, &pll) ||
                    !is_sync(&f)) {
                    report_unexpected("a sync message during a barrier", r, &f);
                    h_frame_clear(&f);
                    g_free(pfds);
                    g_free(idx);
                    goto out;
                }
                if (cl == strlen(chan) && memcmp(ch, chan, cl) == 0) {
                    seen[idx[k]] = true;
                    nseen++;
                }
                h_frame_clear(&f);
            }
            g_free(pfds);
            g_free(idx);
        }
    }
    ok = nseen == n;
    if (!ok)
        fprintf(stderr, "harness: barrier on %s: %zu of %zu subscribers saw it in 10 s\n", chan,
                nseen, n);
out:
    g_free(seen);
    return ok;
}

bool h_barrier1(struct h_broker *b, int sub_fd, const char *sub_ident, int pub_fd,
                const char *pub_ident)
{
    return h_barrier(b, &sub_fd, &sub_ident, 1, pub_fd, pub_ident);
}

/* ------------------------------------------------------------------ */
/* conveniences                                                        */

struct h_broker *h_std_broker(const char *broker_extra)
{
    static const struct {
        const char *ident, *pub, *sub;
    } keys[] = {
        {"pub1", "chan.a,chan.b,chan.bin", ""},
        {"pub2", "chan.a", ""},
        {"sub1", "", "chan.a,chan.b,chan.bin"},
        {"sub2", "", "chan.a,chan.b,chan.bin"},
        {"sub3", "", "chan.a,chan.b,chan.bin"},
        {"self", "chan.self,chan.a", "chan.self,chan.a"},
        {"sync", "", ""},
    };
    struct h_broker *b = h_broker_new();

    if (!b)
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        char *secret = g_strconcat(keys[i].ident, "-secret", NULL);
        bool ok = h_broker_add_key(b, keys[i].ident, secret, keys[i].pub, keys[i].sub);
        g_free(secret);
        if (!ok)
            return NULL;
    }
    return h_broker_start(b, broker_extra) ? b : NULL;
}

int h_std_client(struct h_broker *b, const char *ident)
{
    char *secret = g_strconcat(ident, "-secret", NULL);
    int fd = h_client(b->port, ident, secret);

    if (fd < 0)
        fprintf(stderr, "harness: client %s could not connect and authenticate\n", ident);
    g_free(secret);
    return fd;
}

void h_std_trio(struct h_broker *b, int *sub, int *pub, int *sync)
{
    CU_ASSERT_FATAL(b != NULL);
    *sub = h_std_client(b, "sub1");
    *pub = h_std_client(b, "pub1");
    *sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(*sub >= 0 && *pub >= 0 && *sync >= 0);
}

void h_std_pubsub(struct h_broker *b, const char *chan, int *sub, int *pub, int *sync)
{
    h_std_trio(b, sub, pub, sync);
    CU_ASSERT_FATAL(h_sub(*sub, "sub1", chan));
    CU_ASSERT_FATAL(h_barrier1(b, *sub, "sub1", *sync, "sync"));
}

void h_std_pubsub2(struct h_broker *b, const char *chan1, const char *chan2, int *sub1, int *sub2,
                   int *pub, int *sync)
{
    CU_ASSERT_FATAL(b != NULL);
    *sub1 = h_std_client(b, "sub1");
    *sub2 = h_std_client(b, "sub2");
    *pub = h_std_client(b, "pub1");
    *sync = h_std_client(b, "sync");
    CU_ASSERT_FATAL(*sub1 >= 0 && *sub2 >= 0 && *pub >= 0 && *sync >= 0);
    CU_ASSERT_FATAL(h_sub(*sub1, "sub1", chan1));
    CU_ASSERT_FATAL(h_sub(*sub2, "sub2", chan2));
    CU_ASSERT_FATAL(
        h_barrier(b, (int[]){*sub1, *sub2}, (const char *[]){"sub1", "sub2"}, 2, *sync, "sync"));
}

int h_std_subscriber(struct h_broker *b, const char *ident, const char *chan, int sync)
{
    int fd = h_std_client(b, ident);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(h_sub(fd, ident, chan));
    CU_ASSERT_FATAL(h_barrier1(b, fd, ident, sync, "sync"));
    return fd;
}

bool h_add_suite(const char *name, const struct h_test *tests)
{
    CU_pSuite s = CU_add_suite_with_setup_and_teardown(name, NULL, NULL, h_setup, h_teardown);

    if (!s)
        return false;
    /* HPF_IT_ONLY=text: only the tests whose name contains text (by hand,
     * while working on one; make check runs them all). */
    const char *only = getenv("HPF_IT_ONLY");
    for (const struct h_test *t = tests; t->name; t++)
        if ((!only || strstr(t->name, only)) && !CU_add_test(s, t->name, t->fn))
            return false;
    return true;
}
