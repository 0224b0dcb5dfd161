/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfriendsctl: manage users, groups, shares, acceptances and authkeys in
 * the storage named by the broker's own config file, through the same
 * plugin loader.  Exit 0 on success, 1 with one line on stderr otherwise,
 * 2 on a usage error.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <locale.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "log.h"
#include "password.h"
#include "loader.h"
#include "snapshot.h"

static char *opt_config, **opt_auth, *opt_plugin_dir;
static char *opt_from, *opt_to, *opt_channel, *opt_type, *opt_user, *opt_owner, *opt_ident,
    *opt_secret, *opt_publish, *opt_subscribe, *opt_actor;
static gboolean opt_admin, opt_dot, opt_version;
static gint opt_limit = 50;
static gint64 opt_before;

/*
 * A value option given twice: --publish and --subscribe take the channels
 * of every occurrence (--publish a --publish b is a,b); any other is
 * refused, rather than the last silently winning.
 */
static struct {
    const char *name;
    char **dst;
} const valued[] = {
    {"--from", &opt_from},           {"--to", &opt_to},         {"--channel", &opt_channel},
    {"--type", &opt_type},           {"--user", &opt_user},     {"--owner", &opt_owner},
    {"--ident", &opt_ident},         {"--secret", &opt_secret}, {"--publish", &opt_publish},
    {"--subscribe", &opt_subscribe}, {"--actor", &opt_actor},
};

static gboolean take_value(const gchar *name, const gchar *value, gpointer data, GError **error)
{
    for (gsize i = 0; i < G_N_ELEMENTS(valued); i++) {
        if (strcmp(name, valued[i].name))
            continue;
        char **dst = valued[i].dst;
        gboolean list = dst == &opt_publish || dst == &opt_subscribe;
        if (*dst && !list) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "%s given more than once",
                        name);
            return FALSE;
        }
        char *v = *dst ? g_strconcat(*dst, ",", value, NULL) : g_strdup(value);
        g_free(*dst);
        *dst = v;
        return TRUE;
    }
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "%s: not a value option", name);
    return FALSE;
}

#define VALUE_OPTION(name, help, meta)                                      \
    {                                                                       \
        name, 0, 0, G_OPTION_ARG_CALLBACK, (gpointer)take_value, help, meta \
    }

static const GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "The broker's config file", "FILE"},
    {"auth", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_auth,
     "Storage without a config file, as the broker's --auth (SQLite file, sqlite, .json file, "
     "mongodb:// or database+...:// URI; env keys are read-only)",
     "SOURCE"},
    {"plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_plugin_dir, "Load plugins from DIR", "DIR"},
    VALUE_OPTION("from", "Sharing user", "USER"),
    VALUE_OPTION("to", "Receiving user, or @GROUP", "USER|@GROUP"),
    VALUE_OPTION("channel", "Channel", "CHANNEL"),
    VALUE_OPTION("type", "shares (default) or shares_all", "TYPE"),
    VALUE_OPTION("user", "User", "USER"),
    VALUE_OPTION("owner", "Owning user", "USER"),
    VALUE_OPTION("ident", "Authkey ident", "IDENT"),
    VALUE_OPTION("secret", "Authkey secret (generated if absent)", "SECRET"),
    VALUE_OPTION("publish", "Channels it may publish on (repeatable)", "C1,C2"),
    VALUE_OPTION("subscribe", "Channels it may subscribe to (repeatable)", "C1,C2"),
    {"admin", 0, 0, G_OPTION_ARG_NONE, &opt_admin, "With user add: an administrator", NULL},
    {"dot", 0, 0, G_OPTION_ARG_NONE, &opt_dot, "With graph: Graphviz output", NULL},
    VALUE_OPTION("actor", "With audit: records of this actor only", "ACTOR"),
    {"limit", 0, 0, G_OPTION_ARG_INT, &opt_limit, "With audit: at most N records (default 50)",
     "N"},
    {"before", 0, 0, G_OPTION_ARG_INT64, &opt_before, "With audit: records older than record ID",
     "ID"},
    {"version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL},
    G_OPTION_ENTRY_NULL,
};

static const char usage_text[] =
    "Commands:\n"
    "  user add NAME [--admin] | user del NAME | user list\n"
    "  user passwd NAME (console password: first line of stdin, or asked twice on a tty)\n"
    "  user admin NAME yes|no\n"
    "  group add NAME --owner USER | group del NAME | group list\n"
    "  group member add|del GROUP USER\n"
    "  share add --from U --to U|@GROUP --channel C [--type shares|shares_all]\n"
    "  share del --from U --to U|@GROUP --channel C\n"
    "  share list [--user U]\n"
    "  share accept|decline|reject --user U --from F --channel C\n"
    "  authkey add --owner U --ident I [--secret S] [--publish C1,C2] [--subscribe C1,C2]\n"
    "  authkey set IDENT [--owner U] [--secret S] [--publish C1,C2] [--subscribe C1,C2]\n"
    "  authkey del IDENT | authkey list [--owner U] | authkey show IDENT\n"
    "  readers --user U --channel C\n"
    "  graph --dot\n"
    "  export [FILE] | import FILE|-\n"
    "  audit [--user U] [--actor A] [--limit N] [--before ID]\n";

struct ctx {
    struct config *cfg;
    struct admin admin;
    int argc;
    char **argv; /* the words after the program name and options */
};

static int fail(GError *e)
{
    fprintf(stderr, "hpfriendsctl: %s\n", e->message);
    g_error_free(e);
    return 1;
}

/*
 * A stored value for the terminal: control characters and invalid UTF-8
 * escaped (log_escape), so what is already stored cannot drive the
 * admin's terminal.  The copies live until the command ends.
 */
static GPtrArray *shown_pool;

static const char *shown(const char *v)
{
    if (!shown_pool)
        shown_pool = g_ptr_array_new_with_free_func(g_free);
    char *s = log_escape(v);
    g_ptr_array_add(shown_pool, s);
    return s;
}

static int fail_msg(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int fail_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hpfriendsctl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

static int usage(const char *why)
{
    fprintf(stderr, "hpfriendsctl: %s\n%s", why, usage_text);
    return 2;
}

#define NEED(opt, name)                      \
    do {                                     \
        if (!(opt))                          \
            return usage("missing --" name); \
    } while (0)

/* Takes the error by address: it is read only after the call ran. */
static int done(gboolean ok, GError **e) { return ok ? 0 : fail(*e); }

/* ---- user ---- */

/* One line from stdin without its end of line; on a terminal, without echo. */
static char *read_password(const char *prompt)
{
    gboolean tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = FALSE;
        }
    }
    char buf[1024];
    char *line = fgets(buf, sizeof buf, stdin) ? g_strdup(buf) : NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (line)
        line[strcspn(line, "\r\n")] = '\0';
    explicit_bzero(buf, sizeof buf);
    return line;
}

static int cmd_passwd(struct ctx *c, const char *name)
{
    char *pw = read_password("new console password: ");
    if (!pw)
        return fail_msg("no password on standard input");
    if (isatty(STDIN_FILENO)) {
        char *again = read_password("again: ");
        gboolean same = again && !strcmp(again, pw);
        g_free(again);
        if (!same) {
            g_free(pw);
            return fail_msg("the passwords differ");
        }
    }
    if (strlen(pw) < PASSWORD_MIN_LEN) {
        g_free(pw);
        return fail_msg("password too short: at least %d characters", PASSWORD_MIN_LEN);
    }
    char *hash = password_hash(pw, password_iterations());
    explicit_bzero(pw, strlen(pw));
    g_free(pw);
    if (!hash)
        return fail_msg("cannot hash the password: OpenSSL failed");
    GError *e = NULL;
    gboolean ok = admin_user_set_password(&c->admin, name, hash, &e);
    g_free(hash);
    return done(ok, &e);
}

static int cmd_user(struct ctx *c)
{
    GError *e = NULL;
    const char *verb = c->argc > 1 ? c->argv[1] : "";
    if (!strcmp(verb, "add") && c->argc == 3)
        return done(admin_user_add(&c->admin, c->argv[2], opt_admin, &e), &e);
    if (!strcmp(verb, "del") && c->argc == 3)
        return done(admin_user_del(&c->admin, c->argv[2], &e), &e);
    if (!strcmp(verb, "passwd") && c->argc == 3)
        return cmd_passwd(c, c->argv[2]);
    if (!strcmp(verb, "admin") && c->argc == 4 &&
        (!strcmp(c->argv[3], "yes") || !strcmp(c->argv[3], "no")))
        return done(admin_user_set_admin(&c->admin, c->argv[2], !strcmp(c->argv[3], "yes"), &e),
                    &e);
    if (!strcmp(verb, "list") && c->argc == 2) {
        struct snapshot *s = admin_snapshot(&c->admin, &e);
        if (!s)
            return fail(e);
        GHashTable *owners = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < s->users->len; i++) {
            const char *u = s->users->pdata[i];
            printf("%s%s\n", shown(u), g_hash_table_contains(s->admins, u) ? "\tadmin" : "");
            g_hash_table_add(owners, (gpointer)u);
        }
        /* hpfeeds databases have authkey owners without user rows. */
        for (guint i = 0; i < s->authkeys->len; i++) {
            const char *o = ((struct snap_authkey *)s->authkeys->pdata[i])->owner;
            if (g_hash_table_add(owners, (gpointer)o))
                printf("%s\t(authkey owner only)\n", shown(o));
        }
        g_hash_table_unref(owners);
        snapshot_free(s);
        return 0;
    }
    return usage("user: expected add NAME, del NAME, list, passwd NAME or admin NAME yes|no");
}

/* ---- group ---- */

static int cmd_group(struct ctx *c)
{
    GError *e = NULL;
    const char *verb = c->argc > 1 ? c->argv[1] : "";
    if (!strcmp(verb, "add") && c->argc == 3) {
        NEED(opt_owner, "owner");
        return done(admin_group_add(&c->admin, c->argv[2], opt_owner, &e), &e);
    }
    if (!strcmp(verb, "del") && c->argc == 3)
        return done(admin_group_del(&c->admin, c->argv[2], &e), &e);
    if (!strcmp(verb, "member") && c->argc == 5) {
        if (!strcmp(c->argv[2], "add"))
            return done(admin_member_add(&c->admin, c->argv[3], c->argv[4], &e), &e);
        if (!strcmp(c->argv[2], "del"))
            return done(admin_member_del(&c->admin, c->argv[3], c->argv[4], &e), &e);
    }
    if (!strcmp(verb, "list") && c->argc == 2) {
        struct snapshot *s = admin_snapshot(&c->admin, &e);
        if (!s)
            return fail(e);
        for (guint i = 0; i < s->groups->len; i++) {
            const struct snap_group *g = s->groups->pdata[i];
            GString *m = g_string_new(NULL);
            for (guint j = 0; j < s->members->len; j++) {
                const struct snap_member *mb = s->members->pdata[j];
                if (!strcmp(mb->group, g->name))
                    g_string_append_printf(m, "%s%s", m->len ? "," : "", shown(mb->user));
            }
            printf("%s\towner=%s\tmembers=%s\n", shown(g->name), shown(g->owner), m->str);
            g_string_free(m, TRUE);
        }
        snapshot_free(s);
        return 0;
    }
    return usage("group: expected add NAME --owner U, del NAME, member add|del GROUP USER "
                 "or list");
}

/* ---- share ---- */

/* Is there an offer from `from` on `chan` that reaches `user`? */
static gboolean offer_exists(const struct snapshot *s, const char *user, const char *from,
                             const char *chan)
{
    for (guint i = 0; i < s->shares->len; i++) {
        const struct snap_share *sh = s->shares->pdata[i];
        if (strcmp(sh->from, from) || strcmp(sh->channel, chan))
            continue;
        if (sh->to_group ? snapshot_is_member(s, sh->to, user) : !strcmp(sh->to, user))
            return TRUE;
    }
    return FALSE;
}

/* share add; a change of type is said, and what a widening cost in consent. */
static int share_add(struct ctx *c, int type)
{
    GError *e = NULL;
    struct admin_share_change ch;
    if (!admin_share_set(&c->admin, opt_from, opt_to, opt_channel, type, &ch, &e))
        return fail(e);
    if (ch.old_type >= 0 && ch.old_type != type)
        printf("changed from %s to %s", share_type_name(ch.old_type), share_type_name(type));
    if (admin_share_widens(ch.old_type, type))
        printf("; %u acceptance%s dropped: recipients must accept again", ch.voided,
               ch.voided == 1 ? "" : "s");
    if (ch.old_type >= 0 && ch.old_type != type)
        printf("\n");
    return 0;
}

/*
 * share accept, decline or reject (back to pending: withdraws an acceptance
 * or a decline).  Saying again what already holds is no error; answering
 * an offer that does not reach the user is.
 */
static int share_answer(struct ctx *c, const char *verb)
{
    GError *e = NULL;
    struct snapshot *s = admin_snapshot(&c->admin, &e);
    if (!s)
        return fail(e);
    gboolean offered = offer_exists(s, opt_user, opt_from, opt_channel);
    enum offer_state now = snapshot_offer_state(s, opt_user, opt_from, opt_channel);
    snapshot_free(s);
    enum offer_state want = !strcmp(verb, "accept")    ? OFFER_ACCEPTED
                            : !strcmp(verb, "decline") ? OFFER_DECLINED
                                                       : OFFER_PENDING;
    if (!offered && (want != OFFER_PENDING || now == OFFER_PENDING))
        return fail_msg("no offer from '%s' on '%s' reaches '%s'", opt_from, opt_channel, opt_user);
    return done(admin_offer_answer(&c->admin, opt_user, opt_from, opt_channel, now, want, &e), &e);
}

/* A share's recipients with their answers: "\tbob=declined,carol=accepted" ("-": none). */
static void print_recipients(const struct snapshot *s, const struct snap_share *sh)
{
    guint n = 0;
    printf("\t");
    for (guint i = 0; i < (sh->to_group ? s->members->len : 1); i++) {
        const char *u = sh->to;
        if (sh->to_group) {
            const struct snap_member *m = s->members->pdata[i];
            if (strcmp(m->group, sh->to))
                continue;
            u = m->user;
        }
        printf("%s%s=%s", n++ ? "," : "", shown(u),
               offer_state_name(snapshot_offer_state(s, u, sh->from, sh->channel)));
    }
    if (n == 0)
        printf("-");
}

static int cmd_share(struct ctx *c)
{
    GError *e = NULL;
    const char *verb = c->argc > 1 ? c->argv[1] : "";
    if (c->argc != 2)
        return usage("share: unexpected arguments");
    if (!strcmp(verb, "add")) {
        NEED(opt_from, "from");
        NEED(opt_to, "to");
        NEED(opt_channel, "channel");
        int type = share_type_parse(opt_type ? opt_type : "shares");
        if (type < 0)
            return usage("--type must be shares or shares_all");
        return share_add(c, type);
    }
    if (!strcmp(verb, "del")) {
        NEED(opt_from, "from");
        NEED(opt_to, "to");
        NEED(opt_channel, "channel");
        return done(admin_share_del(&c->admin, opt_from, opt_to, opt_channel, &e), &e);
    }
    if (!strcmp(verb, "accept") || !strcmp(verb, "decline") || !strcmp(verb, "reject")) {
        NEED(opt_user, "user");
        NEED(opt_from, "from");
        NEED(opt_channel, "channel");
        return share_answer(c, verb);
    }
    if (!strcmp(verb, "list")) {
        struct snapshot *s = admin_snapshot(&c->admin, &e);
        if (!s)
            return fail(e);
        for (guint i = 0; i < s->shares->len; i++) {
            const struct snap_share *sh = s->shares->pdata[i];
            gboolean mine = !opt_user || !strcmp(sh->from, opt_user) ||
                            (!sh->to_group && !strcmp(sh->to, opt_user));
            if (!mine && sh->to_group)
                mine = snapshot_is_member(s, sh->to, opt_user);
            if (!mine)
                continue;
            printf("%s\t%s%s\t%s\t%s", shown(sh->from), sh->to_group ? "@" : "", shown(sh->to),
                   shown(sh->channel), share_type_name(sh->type));
            if (opt_user && strcmp(sh->from, opt_user))
                printf("\t%s",
                       offer_state_name(snapshot_offer_state(s, opt_user, sh->from, sh->channel)));
            else if (opt_user)
                print_recipients(s, sh);
            printf("\n");
        }
        snapshot_free(s);
        return 0;
    }
    return usage("share: expected add, del, list, accept, decline or reject");
}

/* ---- authkey ---- */

static void print_list(const char *label, GPtrArray *list, const char *end)
{
    printf("%s", label);
    for (guint i = 0; i < list->len; i++)
        printf("%s%s", i ? "," : "", shown(list->pdata[i]));
    printf("%s", end);
}

static int cmd_authkey(struct ctx *c)
{
    GError *e = NULL;
    const char *verb = c->argc > 1 ? c->argv[1] : "";
    if (!strcmp(verb, "add") && c->argc == 2) {
        NEED(opt_owner, "owner");
        NEED(opt_ident, "ident");
        char **pub = admin_channel_list(opt_publish, &e);
        char **sub = pub ? admin_channel_list(opt_subscribe, &e) : NULL;
        if (!sub) {
            g_strfreev(pub);
            return fail(e);
        }
        char *secret = NULL;
        gboolean ok =
            admin_authkey_add(&c->admin, opt_owner, opt_ident, opt_secret, pub, sub, &secret, &e);
        g_strfreev(pub);
        g_strfreev(sub);
        if (!ok)
            return fail(e);
        if (!opt_secret)
            printf("%s\n", secret);
        g_free(secret);
        return 0;
    }
    const char *ident = c->argc == 3 ? c->argv[2] : opt_ident;
    if (!strcmp(verb, "set") && ident) {
        char **pub = opt_publish ? admin_channel_list(opt_publish, &e) : NULL;
        char **sub = !e && opt_subscribe ? admin_channel_list(opt_subscribe, &e) : NULL;
        if (e) {
            g_strfreev(pub);
            return fail(e);
        }
        gboolean ok = admin_authkey_set(&c->admin, ident, opt_owner, opt_secret, pub, sub, &e);
        g_strfreev(pub);
        g_strfreev(sub);
        return done(ok, &e);
    }
    if (!strcmp(verb, "del") && ident)
        return done(admin_authkey_del(&c->admin, ident, &e), &e);
    if (!strcmp(verb, "list") && c->argc == 2) {
        struct snapshot *s = admin_snapshot(&c->admin, &e);
        if (!s)
            return fail(e);
        for (guint i = 0; i < s->authkeys->len; i++) {
            const struct snap_authkey *k = s->authkeys->pdata[i];
            if (opt_owner && strcmp(k->owner, opt_owner))
                continue;
            printf("%s\towner=%s\t", shown(k->ident), shown(k->owner));
            print_list("publish=", k->publish, "\t");
            print_list("subscribe=", k->subscribe, "\n");
        }
        snapshot_free(s);
        return 0;
    }
    if (!strcmp(verb, "show") && ident) {
        struct snapshot *s = admin_snapshot(&c->admin, &e);
        if (!s)
            return fail(e);
        const struct snap_authkey *k = g_hash_table_lookup(s->authkey_by_ident, ident);
        if (!k) {
            snapshot_free(s);
            return fail_msg("unknown authkey '%s'", ident);
        }
        printf("ident: %s\nowner: %s\nsecret: %s\n", shown(k->ident), shown(k->owner),
               shown(k->secret));
        print_list("publish: ", k->publish, "\n");
        print_list("subscribe: ", k->subscribe, "\n");
        const struct hpf_storage_ops *ops = c->admin.storage->desc->storage;
        struct hpf_counters n = {0};
        if (ops->counters_get && ops->counters_get(c->admin.storage->inst, ident, &n) == HPF_OK)
            printf("published: %" G_GUINT64_FORMAT " messages, %" G_GUINT64_FORMAT " bytes\n"
                   "received: %" G_GUINT64_FORMAT " messages, %" G_GUINT64_FORMAT " bytes\n",
                   (guint64)n.published_msgs, (guint64)n.published_bytes, (guint64)n.received_msgs,
                   (guint64)n.received_bytes);
        snapshot_free(s);
        return 0;
    }
    return usage("authkey: expected add, set IDENT, del IDENT, list or show IDENT");
}

/* ---- readers, graph, export, import ---- */

static int cmd_readers(struct ctx *c)
{
    GError *e = NULL;
    NEED(opt_user, "user");
    NEED(opt_channel, "channel");
    struct snapshot *s = admin_snapshot(&c->admin, &e);
    if (!s)
        return fail(e);
    if (!snapshot_has_user(s, opt_user)) {
        snapshot_free(s);
        return fail_msg("unknown user '%s'", opt_user);
    }
    GPtrArray *r = admin_readers(s, opt_user, opt_channel, c->cfg->require_accept);
    for (guint i = 0; i < r->len; i++) {
        const struct admin_reader *rd = r->pdata[i];
        printf("%s\t%s\n", shown(rd->user), shown(rd->path));
    }
    g_ptr_array_unref(r);
    snapshot_free(s);
    return 0;
}

static int cmd_graph(struct ctx *c)
{
    GError *e = NULL;
    if (!opt_dot)
        return usage("graph: only --dot output exists");
    struct snapshot *s = admin_snapshot(&c->admin, &e);
    if (!s)
        return fail(e);
    char *dot = admin_graph_dot(s);
    fputs(dot, stdout);
    g_free(dot);
    snapshot_free(s);
    return 0;
}

static int cmd_export(struct ctx *c)
{
    GError *e = NULL;
    char *json = admin_export(&c->admin, &e);
    if (!json)
        return fail(e);
    int rc = 0;
    if (c->argc > 1 && strcmp(c->argv[1], "-")) {
        if (!g_file_set_contents(c->argv[1], json, -1, &e))
            rc = fail(e);
    } else {
        fputs(json, stdout);
    }
    g_free(json);
    return rc;
}

static int cmd_import(struct ctx *c)
{
    GError *e = NULL;
    if (c->argc != 2)
        return usage("import: expected FILE or -");
    char *data = NULL;
    gsize len = 0;
    if (!strcmp(c->argv[1], "-")) {
        GString *buf = g_string_new(NULL);
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
            g_string_append_len(buf, chunk, (gssize)n);
        len = buf->len;
        data = g_string_free(buf, FALSE);
    } else if (!g_file_get_contents(c->argv[1], &data, &len, &e)) {
        return fail(e);
    }
    gboolean ok = admin_import(&c->admin, data, len, &e);
    g_free(data);
    return done(ok, &e);
}

/* ---- audit ---- */

/* One record a line: ID, UTC time, actor, action, object, detail; tab-separated. */
static int cmd_audit(struct ctx *c)
{
    if (c->argc != 1)
        return usage("audit takes options only");
    if (opt_limit < 1 || opt_limit > HPF_AUDIT_LIST_MAX)
        return fail_msg("bad --limit %d: use 1-%d", opt_limit, HPF_AUDIT_LIST_MAX);
    if (opt_before < 0)
        return fail_msg("bad --before: a record id is positive");
    struct hpf_audit_query q = {
        .limit = (uint32_t)opt_limit, .before = opt_before, .actor = opt_actor, .user = opt_user};
    GError *e = NULL;
    GPtrArray *list = admin_audit_list(&c->admin, &q, &e);
    if (!list)
        return fail(e);
    for (guint i = 0; i < list->len; i++) {
        const struct admin_audit_entry *r = list->pdata[i];
        GDateTime *t = g_date_time_new_from_unix_utc(r->time);
        char *when = t ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
        printf("%" G_GINT64_FORMAT "\t%s\t%s\t%s\t%s\t%s\n", r->id, when, shown(r->actor),
               shown(r->action), shown(r->object), shown(r->detail));
        g_free(when);
        if (t)
            g_date_time_unref(t);
    }
    g_ptr_array_unref(list);
    return 0;
}

static const struct {
    const char *name;
    int (*run)(struct ctx *c);
} commands[] = {
    {"user", cmd_user},       {"group", cmd_group},     {"share", cmd_share},
    {"authkey", cmd_authkey}, {"readers", cmd_readers}, {"graph", cmd_graph},
    {"export", cmd_export},   {"import", cmd_import},   {"audit", cmd_audit},
};

/*
 * --auth env: those keys are the broker's HPFEEDS_<IDENT>_* environment
 * variables, read-only and out of this tool's sight.  Say so; with nothing
 * else to work on, stop.
 */
static gboolean env_keys_note(struct config *cfg)
{
    if (!config_auth_has_env(cfg))
        return TRUE;
    if (config_storage_is_placeholder(cfg)) {
        fprintf(stderr, "hpfriendsctl: --auth env: keys from the environment are read-only "
                        "(set HPFEEDS_<IDENT>_SECRET, _OWNER, _PUBCHANS, _SUBCHANS for the "
                        "broker); name a writable source to manage\n");
        config_free(cfg);
        return FALSE;
    }
    fprintf(stderr, "hpfriendsctl: note: keys from --auth env are read-only and not shown "
                    "here; this works on the other source\n");
    return TRUE;
}

int main(int argc, char **argv)
{
    GError *e = NULL;
    int rc = 1;
    struct ctx c = {0};

    plugin_process_init();
    /* GOption converts option values from the locale's charset: UTF-8 names need it. */
    setlocale(LC_ALL, "");

    GOptionContext *octx = g_option_context_new("COMMAND ... - manage hpfriends storage");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_option_context_set_description(octx, usage_text);
    if (!g_option_context_parse(octx, &argc, &argv, &e)) {
        g_option_context_free(octx);
        fprintf(stderr, "hpfriendsctl: %s\n", e->message);
        g_error_free(e);
        return 2;
    }
    g_option_context_free(octx);
    if (opt_version) {
        printf("hpfriendsctl %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (argc < 2)
        return usage("no command given");
    c.argc = argc - 1;
    c.argv = argv + 1;

    int (*run)(struct ctx *) = NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
        if (!strcmp(commands[i].name, c.argv[0]))
            run = commands[i].run;
    if (!run) {
        char *why = g_strdup_printf("unknown command '%s'", c.argv[0]);
        rc = usage(why);
        g_free(why);
        return rc;
    }

    log_set_level(HPF_LOG_WARNING);
    c.cfg = opt_config ? config_load_file(opt_config, &e) : config_new_default();
    if (!c.cfg)
        return fail(e);
    if (!config_apply_flags(c.cfg, NULL, opt_auth, NULL, NULL, NULL, NULL, &e)) {
        config_free(c.cfg);
        return fail(e);
    }
    if (!opt_config && !opt_auth) {
        config_free(c.cfg);
        return usage("name the storage: -c CONFIG or --auth PATH");
    }
    if (!env_keys_note(c.cfg))
        return 1;
    config_finish(c.cfg);
    const char *dir = plugin_dir_resolve(opt_plugin_dir ? opt_plugin_dir : c.cfg->plugin_dir);
    if (!config_check_sql_plugin(c.cfg, dir, &e)) {
        config_free(c.cfg);
        return fail(e);
    }
    c.admin.storage = plugin_instance_new(dir, c.cfg->storage->plugin, HPF_KIND_STORAGE, "storage",
                                          c.cfg->storage->keys, c.cfg->dir, &e);
    if (!c.admin.storage || !plugin_instance_start(c.admin.storage, &e)) {
        config_prefix_error(c.cfg, &e);
        rc = fail(e);
        goto out;
    }
    char *actor = admin_ctl_actor();
    c.admin.actor = actor;
    c.admin.audit_keep = c.cfg->audit_keep;
    rc = run(&c);
    g_free(actor);
out:
    if (shown_pool)
        g_ptr_array_unref(shown_pool);
    plugin_instance_free(c.admin.storage);
    config_free(c.cfg);
    return rc;
}
