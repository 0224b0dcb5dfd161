/* SPDX-License-Identifier: BSD-3-Clause */
/* The MongoDB-wire test server as a child process; see mongo_server.h. */
#include "mongo_server.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 20000

static char *script_path(void)
{
    const char *dir = g_getenv("HPF_MONGO_DIR");
    if (dir && *dir)
        return g_build_filename(dir, "server.mjs", NULL);
    const char *srcdir = g_getenv("HPF_SRCDIR");
    return g_build_filename(srcdir && *srcdir ? srcdir : ".", "tests", "mongo", "server.mjs", NULL);
}

/* Reads "ready PORT\n" from fd within the deadline; -1 when it does not come. */
static int read_ready(int fd, GString *seen)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)READY_TIMEOUT_MS * 1000;
    for (;;) {
        const char *nl = strchr(seen->str, '\n');
        if (nl) {
            int port = -1;
            if (sscanf(seen->str, "ready %d", &port) == 1)
                return port;
            return -1;
        }
        gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
        if (left_ms <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)left_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        char buf[256];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return -1; /* it exited */
        g_string_append_len(seen, buf, n);
    }
}

struct mongo_server *mongo_server_start(int port, GError **error)
{
    const char *node_env = g_getenv("NODE");
    char *node = node_env && *node_env ? g_strdup(node_env) : g_find_program_in_path("node");
    if (!node) {
        g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT,
                    "node is not on PATH: the MongoDB tests need Node.js (apt-get install nodejs)");
        return NULL;
    }
    char *script = script_path();
    char *dir = g_path_get_dirname(script);
    char *pkg =
        g_build_filename(dir, "node_modules", "@push.rocks", "smartmongo", "package.json", NULL);
    struct mongo_server *ms = NULL;
    if (!g_file_test(pkg, G_FILE_TEST_EXISTS)) {
        g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT,
                    "%s is missing: run tests/mongo/setup.sh (npm install) first", pkg);
        goto out;
    }
    char port_text[16];
    g_snprintf(port_text, sizeof port_text, "%d", port);
    char *argv[] = {node, script, "--port", port_text, "--exit-on-stdin-eof", NULL};
    ms = g_new0(struct mongo_server, 1);
    if (!g_spawn_async_with_pipes(dir, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &ms->pid,
                                  &ms->stdin_fd, &ms->stdout_fd, NULL, error)) {
        g_clear_pointer(&ms, g_free);
        goto out;
    }
    GString *seen = g_string_new(NULL);
    ms->port = read_ready(ms->stdout_fd, seen);
    if (ms->port <= 0) {
        g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                    "the MongoDB test server (%s %s --port %d) did not get ready within %d ms%s%s",
                    node, script, port, READY_TIMEOUT_MS, seen->len ? ": " : "", seen->str);
        mongo_server_stop(ms);
        ms = NULL;
    }
    g_string_free(seen, TRUE);
out:
    g_free(pkg);
    g_free(dir);
    g_free(script);
    g_free(node);
    return ms;
}

static void reap(struct mongo_server *ms, int grace_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)grace_ms * 1000;
    for (;;) {
        pid_t r = waitpid(ms->pid, NULL, WNOHANG);
        if (r == ms->pid || (r < 0 && errno != EINTR))
            break;
        if (g_get_monotonic_time() >= deadline) {
            kill(ms->pid, SIGKILL);
            waitpid(ms->pid, NULL, 0);
            break;
        }
        g_usleep(10000);
    }
    g_spawn_close_pid(ms->pid);
    ms->pid = 0;
}

static void close_fds(struct mongo_server *ms)
{
    if (ms->stdin_fd > 0)
        close(ms->stdin_fd);
    if (ms->stdout_fd > 0)
        close(ms->stdout_fd);
    ms->stdin_fd = ms->stdout_fd = -1;
}

void mongo_server_kill(struct mongo_server *ms)
{
    if (!ms || ms->pid <= 0)
        return;
    kill(ms->pid, SIGKILL);
    reap(ms, 3000);
    close_fds(ms);
}

void mongo_server_stop(struct mongo_server *ms)
{
    if (!ms)
        return;
    if (ms->pid > 0) {
        kill(ms->pid, SIGTERM);
        reap(ms, 3000);
    }
    close_fds(ms);
    g_free(ms);
}

char *mongo_server_uri(const struct mongo_server *ms, const char *db)
{
    return g_strdup_printf("mongodb://127.0.0.1:%d/%s", ms->port, db);
}
