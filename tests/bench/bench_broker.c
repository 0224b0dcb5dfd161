/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The process under test: a broker the bench starts (temporary config and
 * storage, ready file), an external one (--host/--port), or the trivial
 * relay forked from the bench itself (bench_relay.c).  Also /proc sampling,
 * the broker's own counters, perf, and the
 * storage the scenarios need (an hpfeeds3 authkeys table written directly,
 * or a generated sharing graph loaded through `hpfriendsctl import`).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "bench_common.h"

#define READY_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS  15000

GQuark bench_error_quark(void) { return g_quark_from_static_string("hpfriends-bench"); }

char *key_ident(const char *role, int i) { return g_strdup_printf("bench-%s-%d", role, i); }

/* ---- /proc ---- */

static char *read_proc(pid_t pid, const char *what)
{
    char path[64], *data = NULL;
    g_snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    if (!g_file_get_contents(path, &data, NULL, NULL))
        return NULL;
    return data;
}

static long status_kib(const char *status, const char *field)
{
    const char *p = strstr(status, field);
    return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

gboolean proc_sample(pid_t pid, struct proc_sample *out)
{
    memset(out, 0, sizeof *out);
    if (pid <= 0)
        return FALSE;
    char *stat = read_proc(pid, "stat");
    char *status = read_proc(pid, "status");
    gboolean ok = FALSE;
    /* Fields after the command name, which may hold spaces and ')'. */
    const char *p = stat ? strrchr(stat, ')') : NULL;
    if (p && status) {
        unsigned long minflt = 0, utime = 0, stime = 0;
        /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %lu %*u %*u %*u %lu %lu", &minflt, &utime,
                   &stime) == 3) {
            out->minflt = minflt;
            out->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
            out->rss_kib = status_kib(status, "VmRSS:");
            out->hwm_kib = status_kib(status, "VmHWM:");
            ok = out->rss_kib >= 0;
        }
    }
    g_free(stat);
    g_free(status);
    out->ok = ok;
    return ok;
}

gboolean proc_reset_peak(pid_t pid)
{
    char path[64];
    g_snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return FALSE;
    gboolean ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
}

double load_average(void)
{
    char *text = NULL;
    double v = -1;
    if (g_file_get_contents("/proc/loadavg", &text, NULL, NULL))
        v = g_ascii_strtod(text, NULL);
    g_free(text);
    return v;
}

/* ---- the broker's counters ---- */

static double metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)); p += n)
        if ((p == text || p[-1] == '\n') && (p[n] == ' ' || p[n] == '{'))
            return g_ascii_strtod(strchr(p + n, ' ') + 1, NULL);
    return 0;
}

gboolean target_counters(const struct target *t, struct broker_counters *out)
{
    memset(out, 0, sizeof *out);
    if (t->exporter_port <= 0)
        return FALSE;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return FALSE;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)t->exporter_port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    GString *resp = g_string_new(NULL);
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
        write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
        char buf[16384];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            g_string_append_len(resp, buf, n);
    }
    close(fd);
    const char *body = strstr(resp->str, "\r\n\r\n");
    if (body && strstr(resp->str, " 200 ")) {
        out->publishes = metric(body + 4, "hpfriends_publishes_total");
        out->deliveries = metric(body + 4, "hpfriends_deliveries_total");
        out->drops = metric(body + 4, "hpfriends_drops_total");
        out->slow_disconnects = metric(body + 4, "hpfriends_slow_disconnects_total");
        out->graph_build_s = metric(body + 4, "hpfriends_graph_build_seconds");
        out->graph_entries = metric(body + 4, "hpfriends_graph_entries");
        out->graph_users = metric(body + 4, "hpfriends_graph_users");
        out->graph_reloads = metric(body + 4, "hpfriends_graph_reloads_total");
        out->ok = TRUE;
    }
    g_string_free(resp, TRUE);
    return out->ok;
}

/* ---- perf ---- */

void perf_start(const struct opts *o, struct target *t, const char *scenario)
{
    if (!o->perf_dir || t->pid <= 0)
        return;
    char *out = g_strdup_printf("%s/perf-%s.data", o->perf_dir, scenario);
    char *pid = g_strdup_printf("%d", (int)t->pid);
    char *argv[] = {"perf", "record", "-g", "-F", "1999", "-q", "-p", pid, "-o", out, NULL};
    GError *e = NULL;
    GPid child;
    if (g_spawn_async(NULL, argv, NULL,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                          G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, &child, &e)) {
        t->perf_pid = child;
        g_usleep(200000); /* let it attach before the window opens */
    } else {
        fprintf(stderr, "hpfriends-bench: perf: %s\n", e->message);
        g_error_free(e);
    }
    g_free(out);
    g_free(pid);
}

void perf_stop(struct target *t)
{
    if (t->perf_pid <= 0)
        return;
    kill(t->perf_pid, SIGINT);
    int st;
    waitpid(t->perf_pid, &st, 0);
    t->perf_pid = 0;
}

/* ---- storage ---- */

/* Keys a plan connects with: role and count. */
static void plan_keys(const struct plan *p, int *pubs, int *subs, int *idle)
{
    *pubs = p->publishers;
    *subs = p->subscribers;
    *idle = p->mode == MODE_IDLE ? p->connections : 0;
}

static gboolean sql_ok(sqlite3 *db, int rc, const char *what, GError **error)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return TRUE;
    g_set_error(error, bench_error_quark(), 0, "authkeys db: %s: %s", what, sqlite3_errmsg(db));
    return FALSE;
}

gboolean authdb_write(const char *path, const struct opts *o, const struct plan *const *plans,
                      guint n_plans, GError **error)
{
    int pubs = 0, subs = 0, idle = 0;
    for (guint i = 0; i < n_plans; i++) {
        int a, b, c;
        plan_keys(plans[i], &a, &b, &c);
        pubs = MAX(pubs, a);
        subs = MAX(subs, b);
        idle = MAX(idle, c);
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    gboolean ok = FALSE;
    if (!sql_ok(db, sqlite3_open(path, &db), "open", error))
        goto out;
    /* hpfeeds3's own tables, as hpfeeds3 creates them. */
    if (!sql_ok(db,
                sqlite3_exec(db,
                             "CREATE TABLE IF NOT EXISTS logs (id integer primary key "
                             "autoincrement, data TEXT);"
                             "CREATE TABLE IF NOT EXISTS stats (id integer primary key "
                             "autoincrement, ak TEXT, uid TEXT, data TEXT);"
                             "CREATE TABLE IF NOT EXISTS authkeys (id integer primary key "
                             "autoincrement, owner TEXT, ident TEXT, secret TEXT, pubchans "
                             "TEXT, subchans TEXT);"
                             "BEGIN;",
                             NULL, NULL, NULL),
                "create tables", error))
        goto out;
    if (!sql_ok(db,
                sqlite3_prepare_v2(db,
                                   "INSERT INTO authkeys (owner, ident, secret, pubchans, "
                                   "subchans) VALUES (?1, ?1, ?2, ?3, ?4)",
                                   -1, &st, NULL),
                "prepare", error))
        goto out;
    static const char chans[] = "[\"" BENCH_CHANNEL "\"]";
    static const char idle_chans[] = "[\"" BENCH_IDLE_CHANNEL "\"]";
    static const char pub_chans[] = "[\"" BENCH_CHANNEL "\", \"" BENCH_IDLE_CHANNEL "\"]";
    /* Idle connections subscribe to a channel of their own; publisher 0's
     * probes there are the proof that they are in.  They publish nothing. */
    const struct {
        const char *role;
        int n;
        const char *pub, *sub;
    } kinds[] = {{"pub", pubs, pub_chans, "[]"},
                 {"sub", subs, "[]", chans},
                 {"idle", idle, "[]", idle_chans}};
    for (gsize k = 0; k < G_N_ELEMENTS(kinds); k++)
        for (int i = 0; i < kinds[k].n; i++) {
            char *ident = key_ident(kinds[k].role, i);
            sqlite3_bind_text(st, 1, ident, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, o->secret, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, kinds[k].pub, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, kinds[k].sub, -1, SQLITE_STATIC);
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            g_free(ident);
            if (!sql_ok(db, rc, "insert", error))
                goto out;
        }
    ok = sql_ok(db, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), "commit", error);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

/*
 * The graph scenario's data, as an `hpfriendsctl import` document:
 * users u00000 ..; u00000 owns the publisher key, u00001.. the subscriber
 * keys.  The first half of the subscribers' owners are reached by direct
 * shares, the rest through a group; the remaining edges are random (user
 * or group targets, 20 channels including the bench channel, one in ten
 * shares_all), so the publisher's reader set and the table are realistic
 * in size rather than minimal.
 */
static char *graph_document(const struct opts *o, const struct plan *p)
{
    GRand *rng = g_rand_new_with_seed((guint32)o->seed);
    int users = MAX(p->users, p->subscribers + 2);
    int n_groups = MAX(users / 50, 1);
    enum { MEMBERS = 25, CHANNELS = 20 };
    char name[32];
#define USER(i) (g_snprintf(name, sizeof name, "u%05d", (i)), name)

    JsonBuilder *jb = json_builder_new();
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "format");
    json_builder_add_string_value(jb, "hpfriends-export");
    json_builder_set_member_name(jb, "version");
    json_builder_add_int_value(jb, 1);

    json_builder_set_member_name(jb, "users");
    json_builder_begin_array(jb);
    for (int i = 0; i < users; i++) {
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "name");
        json_builder_add_string_value(jb, USER(i));
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);

    int half = p->subscribers / 2;
    json_builder_set_member_name(jb, "groups");
    json_builder_begin_array(jb);
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "name");
    json_builder_add_string_value(jb, "bench-readers");
    json_builder_set_member_name(jb, "owner");
    json_builder_add_string_value(jb, USER(0));
    json_builder_set_member_name(jb, "members");
    json_builder_begin_array(jb);
    for (int i = half; i < p->subscribers; i++)
        json_builder_add_string_value(jb, USER(1 + i));
    json_builder_end_array(jb);
    json_builder_end_object(jb);
    for (int g = 0; g < n_groups; g++) {
        char gname[32];
        g_snprintf(gname, sizeof gname, "g%04d", g);
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "name");
        json_builder_add_string_value(jb, gname);
        json_builder_set_member_name(jb, "owner");
        json_builder_add_string_value(jb, USER(g_rand_int_range(rng, 0, users)));
        json_builder_set_member_name(jb, "members");
        json_builder_begin_array(jb);
        GHashTable *in = g_hash_table_new(NULL, NULL);
        while (g_hash_table_size(in) < (guint)MIN(MEMBERS, users)) {
            int u = g_rand_int_range(rng, 0, users);
            if (g_hash_table_add(in, GINT_TO_POINTER(u + 1)))
                json_builder_add_string_value(jb, USER(u));
        }
        g_hash_table_unref(in);
        json_builder_end_array(jb);
        json_builder_end_object(jb);
    }
    json_builder_end_array(jb);

    json_builder_set_member_name(jb, "shares");
    json_builder_begin_array(jb);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int made = 0;
    for (int i = 0; i < half; i++, made++) {
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "from");
        json_builder_add_string_value(jb, USER(0));
        json_builder_set_member_name(jb, "to_user");
        json_builder_add_string_value(jb, USER(1 + i));
        json_builder_set_member_name(jb, "channel");
        json_builder_add_string_value(jb, BENCH_CHANNEL);
        json_builder_set_member_name(jb, "type");
        json_builder_add_string_value(jb, "shares");
        json_builder_end_object(jb);
        g_hash_table_add(seen, g_strdup_printf("0 u%d %s", 1 + i, BENCH_CHANNEL));
    }
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "from");
    json_builder_add_string_value(jb, USER(0));
    json_builder_set_member_name(jb, "to_group");
    json_builder_add_string_value(jb, "bench-readers");
    json_builder_set_member_name(jb, "channel");
    json_builder_add_string_value(jb, BENCH_CHANNEL);
    json_builder_set_member_name(jb, "type");
    json_builder_add_string_value(jb, "shares");
    json_builder_end_object(jb);
    made++;
    while (made < p->edges) {
        int from = g_rand_int_range(rng, 0, users);
        gboolean to_group = g_rand_int_range(rng, 0, 10) == 0;
        int to = to_group ? g_rand_int_range(rng, 0, n_groups) : g_rand_int_range(rng, 0, users);
        int ch = g_rand_int_range(rng, 0, CHANNELS);
        char chan[32];
        if (ch == 0)
            g_strlcpy(chan, BENCH_CHANNEL, sizeof chan);
        else
            g_snprintf(chan, sizeof chan, "chan%02d", ch);
        if (!to_group && to == from)
            continue; /* storage refuses a user sharing with itself */
        char *k = g_strdup_printf("%d %c%d %s", from, to_group ? 'g' : 'u', to, chan);
        if (!g_hash_table_add(seen, k))
            continue;
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "from");
        json_builder_add_string_value(jb, USER(from));
        if (to_group) {
            char gname[32];
            g_snprintf(gname, sizeof gname, "g%04d", to);
            json_builder_set_member_name(jb, "to_group");
            json_builder_add_string_value(jb, gname);
        } else {
            json_builder_set_member_name(jb, "to_user");
            json_builder_add_string_value(jb, USER(to));
        }
        json_builder_set_member_name(jb, "channel");
        json_builder_add_string_value(jb, chan);
        json_builder_set_member_name(jb, "type");
        json_builder_add_string_value(jb,
                                      g_rand_int_range(rng, 0, 10) == 0 ? "shares_all" : "shares");
        json_builder_end_object(jb);
        made++;
    }
    g_hash_table_unref(seen);
    json_builder_end_array(jb);

    json_builder_set_member_name(jb, "authkeys");
    json_builder_begin_array(jb);
    for (int i = 0; i < p->publishers + p->subscribers; i++) {
        gboolean pub = i < p->publishers;
        char *ident = key_ident(pub ? "pub" : "sub", pub ? i : i - p->publishers);
        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "ident");
        json_builder_add_string_value(jb, ident);
        json_builder_set_member_name(jb, "owner");
        json_builder_add_string_value(jb, USER(pub ? 0 : 1 + i - p->publishers));
        json_builder_set_member_name(jb, "secret");
        json_builder_add_string_value(jb, o->secret);
        json_builder_set_member_name(jb, "publish");
        json_builder_begin_array(jb);
        if (pub)
            json_builder_add_string_value(jb, BENCH_CHANNEL);
        json_builder_end_array(jb);
        json_builder_set_member_name(jb, "subscribe");
        json_builder_begin_array(jb);
        if (!pub)
            json_builder_add_string_value(jb, BENCH_CHANNEL);
        json_builder_end_array(jb);
        json_builder_end_object(jb);
        g_free(ident);
    }
    json_builder_end_array(jb);
    json_builder_end_object(jb);
#undef USER

    JsonGenerator *gen = json_generator_new();
    JsonNode *root = json_builder_get_root(jb);
    json_generator_set_root(gen, root);
    char *text = json_generator_to_data(gen, NULL);
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(jb);
    g_rand_free(rng);
    return text;
}

/* ---- a broker we start ---- */

static char **child_env(const struct opts *o)
{
    char **env = g_get_environ();
    return g_environ_setenv(env, "HPFRIENDS_PLUGIN_DIR", o->plugin_dir, TRUE);
}

static gboolean load_graph(const struct opts *o, const struct plan *p, const char *conf,
                           const char *dir, GError **error)
{
    char *doc = graph_document(o, p);
    char *json_path = g_build_filename(dir, "graph.json", NULL);
    gboolean ok = g_file_set_contents(json_path, doc, -1, error);
    g_free(doc);
    if (ok) {
        char *argv[] = {o->ctl, "-c", (char *)conf, "import", json_path, NULL};
        char **env = child_env(o);
        char *err_text = NULL;
        int status = 0;
        ok = g_spawn_sync(NULL, argv, env, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err_text,
                          &status, error);
        if (ok && !g_spawn_check_wait_status(status, NULL)) {
            g_set_error(error, bench_error_quark(), 0, "%s import failed: %s", o->ctl,
                        err_text ? g_strstrip(err_text) : "");
            ok = FALSE;
        }
        g_free(err_text);
        g_strfreev(env);
    }
    g_free(json_path);
    return ok;
}

/* A throw-away self-signed certificate for the TLS scenario (openssl(1)). */
static gboolean make_cert(const char *dir, GError **error)
{
    char *key = g_build_filename(dir, "tls.key", NULL);
    char *crt = g_build_filename(dir, "tls.crt", NULL);
    char *argv[] = {"openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    key,
                    "-out",
                    crt,
                    "-days",
                    "1",
                    "-subj",
                    "/CN=127.0.0.1",
                    NULL};
    int status = 0;
    char *err_text = NULL;
    gboolean ok = g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                               NULL, NULL, NULL, &err_text, &status, error);
    if (ok && !g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, bench_error_quark(), 0, "openssl req failed: %s",
                    err_text ? g_strstrip(err_text) : "");
        ok = FALSE;
    }
    g_free(err_text);
    g_free(key);
    g_free(crt);
    return ok;
}

static gboolean write_config(const struct plan *p, const char *path, GError **error)
{
    GString *c = g_string_new("[broker]\nname = hpfriends-bench\n");
    if (p->tls)
        g_string_append(c, "listen = tls:127.0.0.1:0\ntls_cert = tls.crt\ntls_key = tls.key\n");
    else
        g_string_append(c, "listen = tcp:127.0.0.1:0\n");
    g_string_append_printf(c, "access = %s\n", p->graph ? "graph" : "channels");
    /* Per-connection log lines would cost the broker CPU in the idle scenario. */
    g_string_append(c, "log_level = notice\n");
    if (p->mode == MODE_IDLE) {
        g_string_append_printf(c, "max_connections = %d\n", p->connections + 1000);
        /* All of ours come from 127.0.0.1. */
        g_string_append_printf(c, "max_connections_per_ip = %d\n", p->connections + 1000);
    }
    /* Port 0: the ready file names the port; the bench reads the broker's counters. */
    g_string_append(c, "exporter = 127.0.0.1:0\n");
    if (p->max_queued)
        g_string_append_printf(c, "max_queued_bytes = %" G_GUINT64_FORMAT "\n", p->max_queued);
    g_string_append(c, "[storage]\nplugin = sqlite\npath = auth.db\n");
    gboolean ok = g_file_set_contents(path, c->str, (gssize)c->len, error);
    g_string_free(c, TRUE);
    return ok;
}

gboolean bench_parse_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof *in;
        return TRUE;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return TRUE;
    }
    return FALSE;
}

static char *log_tail(const char *path)
{
    char *text = NULL;
    if (!path || !g_file_get_contents(path, &text, NULL, NULL))
        return g_strdup("(no log)");
    size_t n = strlen(text);
    char *tail = g_strdup(n > 800 ? text + n - 800 : text);
    g_free(text);
    return tail;
}

static gboolean spawn_broker(const struct opts *o, const struct plan *p, struct target *t,
                             GError **error)
{
    t->dir = g_dir_make_tmp("hpfbench-XXXXXX", error);
    if (!t->dir)
        return FALSE;
    char *conf = g_build_filename(t->dir, "broker.conf", NULL);
    char *db = g_build_filename(t->dir, "auth.db", NULL);
    char *ready = g_build_filename(t->dir, "ready", NULL);
    t->log_path = g_build_filename(t->dir, "broker.log", NULL);
    gboolean ok = (!p->tls || make_cert(t->dir, error)) && write_config(p, conf, error);
    if (ok)
        ok = p->graph ? load_graph(o, p, conf, t->dir, error) : authdb_write(db, o, &p, 1, error);
    if (!ok)
        goto out;

    char **env = child_env(o);
    gint64 t0 = g_get_monotonic_time();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(t->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char *argv[] = {o->broker, "-f", "-c", conf, "--ready-file", ready, NULL};
        execve(o->broker, argv, env);
        fprintf(stderr, "exec %s: %s\n", o->broker, strerror(errno));
        _exit(127);
    }
    g_strfreev(env);
    if (pid < 0) {
        g_set_error(error, bench_error_quark(), 0, "fork: %s", g_strerror(errno));
        ok = FALSE;
        goto out;
    }
    t->pid = pid;
    t->spawned = TRUE;

    /* Wait for the ready file: "tcp ADDRESS PORT", then "http exporter PORT". */
    ok = FALSE;
    for (int waited = 0; waited < READY_TIMEOUT_MS; waited += 10) {
        char *text = NULL;
        if (g_file_get_contents(ready, &text, NULL, NULL)) {
            char addr[64];
            int port;
            char kind[8];
            if (sscanf(text, "%7s %63s %d", kind, addr, &port) == 3 &&
                (!strcmp(kind, "tcp") || !strcmp(kind, "tls")) &&
                bench_parse_addr(addr, port, &t->addr, &t->addr_len)) {
                ok = TRUE;
                t->start_s = (double)(g_get_monotonic_time() - t0) / 1e6;
            } else {
                g_set_error(error, bench_error_quark(), 0, "unexpected ready file: %s", text);
            }
            const char *http = strstr(text, "http exporter ");
            if (http)
                t->exporter_port = atoi(http + strlen("http exporter "));
            g_free(text);
            break;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char *tail = log_tail(t->log_path);
            g_set_error(error, bench_error_quark(), 0,
                        "broker exited during start-up (status %d): %s", st, tail);
            g_free(tail);
            t->pid = 0;
            t->spawned = FALSE;
            goto out;
        }
        g_usleep(10000);
    }
    if (!ok && error && !*error)
        g_set_error(error, bench_error_quark(), 0, "broker not ready after %d s",
                    READY_TIMEOUT_MS / 1000);
out:
    g_free(conf);
    g_free(db);
    g_free(ready);
    return ok;
}

gboolean target_start(const struct opts *o, const struct plan *p, struct target *t, GError **error)
{
    memset(t, 0, sizeof *t);
    if (p->relay)
        return relay_spawn(t, p->publishers > 1, error);
    if (o->host) {
        if (!bench_parse_addr(o->host, o->port, &t->addr, &t->addr_len)) {
            g_set_error(error, bench_error_quark(), 0, "--host: '%s' is not a numeric address",
                        o->host);
            return FALSE;
        }
        t->pid = o->broker_pid;
        return TRUE;
    }
    return spawn_broker(o, p, t, error);
}

static GPtrArray *log_warnings(const char *path, guint max);

void target_stop(const struct opts *o, struct target *t, char **exit_desc, GPtrArray **warnings)
{
    perf_stop(t);
    if (t->spawned && t->pid > 0) {
        kill(t->pid, SIGTERM);
        int st = 0;
        int waited = 0;
        while (waitpid(t->pid, &st, WNOHANG) == 0) {
            if (waited >= STOP_TIMEOUT_MS) {
                kill(t->pid, SIGKILL);
                waitpid(t->pid, &st, 0);
                *exit_desc = g_strdup_printf("did not exit within %d s of SIGTERM; killed",
                                             STOP_TIMEOUT_MS / 1000);
                break;
            }
            g_usleep(10000);
            waited += 10;
        }
        if (!*exit_desc && !t->is_relay) {
            if (WIFSIGNALED(st))
                *exit_desc = g_strdup_printf("killed by signal %d (%s) on SIGTERM", WTERMSIG(st),
                                             g_strsignal(WTERMSIG(st)));
            else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
                *exit_desc = g_strdup_printf("exit status %d on SIGTERM", WEXITSTATUS(st));
        }
    }
    if (warnings)
        *warnings = log_warnings(t->log_path, 8);
    if (t->dir) {
        if (o->keep) {
            fprintf(stderr, "hpfriends-bench: kept %s\n", t->dir);
        } else {
            char *argv[] = {"rm", "-rf", t->dir, NULL};
            g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
        }
    }
    g_free(t->dir);
    g_free(t->log_path);
    memset(t, 0, sizeof *t);
}

static GPtrArray *log_warnings(const char *path, guint max)
{
    char *text = NULL;
    if (!path || !g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    char **lines = g_strsplit(text, "\n", -1);
    guint total = 0;
    for (char **l = lines; *l; l++)
        if (strstr(*l, " warning ") || strstr(*l, " error ")) {
            if (out->len < max)
                g_ptr_array_add(out, g_strdup(*l));
            total++;
        }
    if (total > max)
        g_ptr_array_add(out, g_strdup_printf("(%u more)", total - max));
    g_strfreev(lines);
    g_free(text);
    return out;
}
