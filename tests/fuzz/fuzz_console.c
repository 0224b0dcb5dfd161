/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_console: the console API's handlers (core/web/api.c) against a real
 * storage_sqlite file, below libevent's evhttp.
 *
 * evhttp only hands a request over from a connection (evhttp_connection_get_peer,
 * evhttp_send_reply need one), so this target drives what the console does
 * once evhttp parsed the request line, in the same order and with the same
 * calls as server.c's api_request(): the route lookup over web_routes[], the
 * query string and the body through the console's own web_parse_query()
 * and web_parse_body(), then the route's
 * run() on a job whose admin handle is the storage.  Sessions, CSRF and
 * the login/password routes (the password worker) are fuzz_session's and
 * the web tests' business and are skipped here, as are the loop-thread
 * finish() steps, which read the broker's live state.
 *
 * Per input, the same starting state: users alice (admin), bob and carol,
 * bob's group "team" with carol in it, authkeys "ak" (alice) and "bk" (bob),
 * alice sharing "a" with bob.  One storage instance serves every input (its
 * start-up, the schema check and dozens of prepared statements, took more
 * than half of each run); before each input a second SQLite connection
 * writes every table's rows back from a template file (DELETE, then INSERT
 * ... SELECT, in one transaction; hpf_meta, which the tables' triggers bump,
 * last), and the instance's own connection sees the new content at its next
 * transaction, as it sees hpfriendsctl's changes in a running broker.  (Not
 * SQLite's backup API: it bumps the schema cookie, and every statement of
 * the instance was prepared again, which took most of each run.)  The
 * instance holds no other state that an input could carry to the next (its
 * caches are prepared statements and the idents it already warned about).
 * The input is up to
 * MAX_REQUESTS records separated by the byte 0x1e, each:
 *     a flag byte: bit 0 the session user is bob (else alice, the admin),
 *                  bit 1 require_accept, bit 2 access = channels;
 *     "METHOD /path[?query]" up to the first '\n'; the rest is the body.
 * Checked: every handler ends with a status; 200 comes with a result
 * object, any other status with a message and no result; a non-admin never
 * gets a 200 for acting as another user; the storage still takes a
 * snapshot afterwards.
 */
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include <sqlite3.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin.h"
#include "fuzz_common.h"
#include "jsonutil.h"
#include "loader.h"
#include "snapshot.h"
#include "web/internal.h"

#define MAX_REQUESTS 8
/* As core/web/server.c. */
#define MAX_BODY     65536

static char *dir;
static char *db_path;
static GHashTable *keys;
/* A connection of our own to the instance's file, with the template attached
 * as "tmpl"; the statements that restore it, prepared once; the instance
 * every input uses. */
static sqlite3 *restore_db;
static GPtrArray *restore_stmts;
static struct plugin_instance *storage;
static struct web fake_web;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz_console: %s: %s\n", what, why ? why : "failed");
    abort();
}

static struct plugin_instance *open_storage(void)
{
    GError *e = NULL;
    struct plugin_instance *pi = plugin_instance_new(plugin_dir_resolve(NULL), "sqlite",
                                                     HPF_KIND_STORAGE, "storage", keys, dir, &e);
    if (!pi || !plugin_instance_start(pi, &e))
        die("storage_sqlite", e ? e->message : NULL);
    return pi;
}

static void sq_run(const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(restore_db, sql, NULL, NULL, &err) != SQLITE_OK)
        die(sql, err);
}

static void restore_add(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(restore_db, sql, -1, &st, NULL) != SQLITE_OK)
        die(sql, sqlite3_errmsg(restore_db));
    g_ptr_array_add(restore_stmts, st);
}

/* The restore statements: every table of the template, hpf_meta last. */
static void restore_prepare(void)
{
    restore_stmts = g_ptr_array_new();
    restore_add("BEGIN IMMEDIATE");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(restore_db,
                           "SELECT name FROM tmpl.sqlite_master WHERE type = 'table' "
                           "ORDER BY name = 'hpf_meta', name",
                           -1, &st, NULL) != SQLITE_OK)
        die("template tables", sqlite3_errmsg(restore_db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        char *del = sqlite3_mprintf("DELETE FROM main.\"%w\"", t);
        char *ins = sqlite3_mprintf("INSERT INTO main.\"%w\" SELECT * FROM tmpl.\"%w\"", t, t);
        restore_add(del);
        restore_add(ins);
        sqlite3_free(del);
        sqlite3_free(ins);
    }
    sqlite3_finalize(st);
    restore_add("COMMIT");
}

static void restore(void)
{
    for (guint i = 0; i < restore_stmts->len; i++) {
        sqlite3_stmt *st = restore_stmts->pdata[i];
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            die("restoring the template", sqlite3_errmsg(restore_db));
    }
    /* A read transaction the instance left open (a statement stepped and
     * never reset) would go on showing it the previous input's data: the
     * checkpoint cannot finish then.  It also keeps the WAL small. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(restore_db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        die("wal_checkpoint", sqlite3_errmsg(restore_db));
    int busy = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (busy)
        die("wal_checkpoint", "the storage instance holds a transaction open between inputs");
}

static void make_template(void)
{
    struct plugin_instance *pi = open_storage();
    struct admin a = {.storage = pi};
    GError *e = NULL;
    char *pub[] = {"a", "b", NULL}, *sub[] = {"a", NULL};
    if (!admin_user_add(&a, "alice", TRUE, &e) || !admin_user_add(&a, "bob", FALSE, &e) ||
        !admin_user_add(&a, "carol", FALSE, &e) || !admin_group_add(&a, "team", "bob", &e) ||
        !admin_member_add(&a, "team", "carol", &e) ||
        !admin_authkey_add(&a, "alice", "ak", "aksecret", pub, sub, NULL, &e) ||
        !admin_authkey_add(&a, "bob", "bk", "bksecret", sub, pub, NULL, &e) ||
        !admin_share_add(&a, "alice", "bob", "a", HPF_SHARE_SHARES, &e))
        die("template", e->message);
    plugin_instance_free(pi);
    /* The instance closed the file: its WAL is folded in, the file is whole. */
    char *tmpl = g_build_filename(dir, "template.db", NULL), *text;
    gsize len;
    if (!g_file_get_contents(db_path, &text, &len, &e) || !g_file_set_contents(tmpl, text, len, &e))
        die("template", e->message);
    g_free(text);
    if (sqlite3_open(db_path, &restore_db) != SQLITE_OK)
        die(db_path, sqlite3_errmsg(restore_db));
    sqlite3_busy_timeout(restore_db, 5000);
    char *attach = sqlite3_mprintf("ATTACH %Q AS tmpl", tmpl);
    sq_run(attach);
    sqlite3_free(attach);
    g_free(tmpl);
    restore_prepare();
    storage = open_storage();
}

static void init(void)
{
    fuzz_setup();
    dir = fuzz_tmpdir("console");
    db_path = g_build_filename(dir, "hpfriends.db", NULL);
    keys = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(keys, "path", db_path);
    make_template();
}

static const struct web_route *lookup(const char *method, const char *path)
{
    for (gsize i = 0; i < web_n_routes; i++)
        if (!strcmp(web_routes[i].path, path) && !strcmp(web_routes[i].method, method))
            return &web_routes[i];
    return NULL;
}

/* Routes that need a session table, the password worker or a live broker. */
static gboolean skipped(const struct web_route *r)
{
    return !strcmp(r->path, "/api/login") || !strcmp(r->path, "/api/logout") ||
           !strcmp(r->path, "/api/session") || !strcmp(r->path, "/api/password");
}

/* The body as the console reads it (evhttp bounds it to MAX_BODY first). */
static JsonNode *body_of(const char *text, size_t len)
{
    if (len == 0 || len > MAX_BODY)
        return NULL;
    char *why = NULL;
    JsonNode *out = web_parse_body(text, len, &why);
    g_free(why);
    return out;
}

static void check_job(const struct web_job *j, const char *line)
{
    FUZZ_CHECK(j->status >= 200 && j->status < 600, "%s: status %d", line, j->status);
    if (j->status == 200)
        FUZZ_CHECK(j->result && JSON_NODE_HOLDS_OBJECT(j->result), "%s: 200 without result", line);
    else
        FUZZ_CHECK(!j->result && j->error, "%s: status %d, result %p, error %p", line, j->status,
                   (void *)j->result, (void *)j->error);
    const char *as = j->query ? g_hash_table_lookup(j->query, "user") : NULL;
    if (j->status == 200 && !j->is_admin && as)
        FUZZ_CHECK(!strcmp(as, j->user), "%s: bob acted as %s", line, as);
}

/* One record: flag byte, request line, body. */
static void one_request(struct plugin_instance *pi, const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    guint8 flags = data[0];
    const uint8_t *nl = memchr(data + 1, '\n', size - 1);
    size_t line_len = nl ? (size_t)(nl - data - 1) : size - 1;
    char *line = fuzz_strndup(data + 1, line_len);
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t body_len = (size_t)(data + size - body);

    char *sp = strchr(line, ' ');
    if (!sp)
        goto out;
    *sp = '\0';
    char *path = sp + 1, *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    const struct web_route *r = lookup(line, path);
    if (!r || skipped(r))
        goto out;
    GHashTable *query;
    if (!web_parse_query(q, &query))
        goto out;
    struct web_job *j = g_new0(struct web_job, 1);
    j->w = &fake_web;
    j->route = r;
    j->admin.storage = pi;
    j->require_accept = (flags & 2) != 0;
    j->channels_mode = (flags & 4) != 0;
    j->peer = g_strdup("127.0.0.1");
    j->query = query;
    j->user = g_strdup(flags & 1 ? "bob" : "alice");
    j->session_id = g_strdup("fuzz");
    if (strcmp(r->method, "GET")) {
        char *text = fuzz_strndup(body, body_len);
        j->body = body_of(text, body_len);
        g_free(text);
        if (!j->body) {
            web_job_free(j);
            goto out;
        }
    }
    r->run(j);
    check_job(j, r->path);
    web_job_free(j);
out:
    g_free(line);
}

int fuzz_console_one(const uint8_t *data, size_t size)
{
    struct plugin_instance *pi = storage;
    restore();
    size_t start = 0;
    for (int n = 0; n < MAX_REQUESTS && start < size; n++) {
        const uint8_t *end = memchr(data + start, 0x1e, size - start);
        size_t len = end ? (size_t)(end - data - start) : size - start;
        one_request(pi, data + start, len);
        start += len + 1;
    }
    struct admin a = {.storage = pi};
    GError *e = NULL;
    struct snapshot *s = admin_snapshot(&a, &e);
    FUZZ_CHECK(s != NULL, "no snapshot after the requests: %s", e ? e->message : "?");
    if (s)
        snapshot_free(s);
    g_clear_error(&e);
    return 0;
}

void fuzz_console_init(void)
{
    static gboolean done;
    if (!done)
        init();
    done = TRUE;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_console_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_console_one(data, size);
}
#endif
