/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The MongoDB-wire test server (tests/mongo/server.mjs, CongoDB) as a child
 * process of a C test.  Needs node on PATH (or $NODE) and the npm packages
 * installed by tests/mongo/setup.sh; the script is found through
 * $HPF_SRCDIR (set by `make check`), else relative to the working directory.
 */
#ifndef HPF_TEST_MONGO_SERVER_H
#define HPF_TEST_MONGO_SERVER_H

#include <glib.h>

struct mongo_server {
    GPid pid;
    int port;
    int stdin_fd; /* kept open: the server exits when it closes (we died) */
    int stdout_fd;
};

/*
 * Start a server on 127.0.0.1:port (0: a free port) and wait until it
 * accepts connections.  NULL with error set when node, the script or the
 * packages are missing, or the server is not ready within 20 s.
 */
struct mongo_server *mongo_server_start(int port, GError **error);

/* SIGKILL, as a crash would: connections drop without goodbye.  Reaps it. */
void mongo_server_kill(struct mongo_server *ms);

/* SIGTERM, then SIGKILL after 3 s; reaps it and frees ms.  NULL is fine. */
void mongo_server_stop(struct mongo_server *ms);

/* "mongodb://127.0.0.1:PORT/db"; g_free() it. */
char *mongo_server_uri(const struct mongo_server *ms, const char *db);

#endif
