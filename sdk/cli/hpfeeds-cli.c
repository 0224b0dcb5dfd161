/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hpfeeds-cli: publish to and subscribe from an hpfeeds broker, built on
 * the client library (sdk/client).
 *
 *   hpfeeds-cli pub [--host H] [--port P] [--tls [--cafile F]] --ident I --secret S
 *                   --channel C [--verbose] [MESSAGE...]
 *   hpfeeds-cli sub [--host H] [--port P] [--tls [--cafile F]] --ident I --secret S --channel C
 *                   [--channel C2...] [--count N] [--json] [--timeout SECONDS]
 *                   [--reconnect] [--verbose] [--failover HOST:PORT...]
 *
 * The secret may come from $HPFEEDS_SECRET instead of the command line.
 * --tls speaks TLS to a tls: listener, verifying the broker's certificate
 * (against --cafile, or the system's trust store) and that it names --host;
 * --cafile implies --tls.
 * Exit status: 0 success; 1 error (usage, connection, broker ERROR);
 * 2 sub --timeout expired before --count messages arrived (or before the
 * connection was up).
 */
#include "autoconfig.h"

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "hpfeeds-client.h"

#define PROG              "hpfeeds-cli"
#define EXIT_TIMEOUT      2
/* Grace period after the last byte went out, for an ERROR to come back. */
#define PUB_GRACE_MS      200
/* Stop reading stdin while this much waits to be written. */
#define STDIN_PAUSE_BYTES (1024u * 1024u)
#define STDIN_CHUNK       65536

enum mode { MODE_PUB, MODE_SUB };

struct cli {
    enum mode mode;
    /* options */
    gchar *host;
    gint port;
    gchar *ident;
    gchar *secret;
    gchar **channels;
    gboolean verbose;
    gint64 count;
    gboolean json;
    gdouble timeout;
    gboolean reconnect;
    gboolean tls;
    gchar *cafile;
    gchar **failover; /* --failover HOST:PORT... */

    /* run time */
    struct event_base *base;
    struct hpfc_client *client;
    int rc;
    bool finished;
    bool announced;          /* --verbose line printed for this connection */
    bool authenticated_once; /* AUTH was sent at least once */
    gint64 received;
    struct event *sig_int;
    struct event *sig_term;
    struct event *timer; /* pub: grace period; sub: --timeout */

    /* pub reading stdin */
    struct event *stdin_ev;
    struct evbuffer *stdin_buf;
    bool stdin_pollable; /* pipe, socket or tty: else read it like a file */
    bool stdin_paused;
    bool input_done; /* every message has been handed to hpfc_publish() */
};

static void finish(struct cli *cli, int rc)
{
    if (cli->finished)
        return;
    cli->finished = true;
    cli->rc = rc;
    event_base_loopbreak(cli->base);
}

static void start_timer(struct cli *cli, gdouble seconds)
{
    struct timeval tv = {.tv_sec = (time_t)seconds,
                         .tv_usec = (suseconds_t)((seconds - (gdouble)(time_t)seconds) * 1e6)};
    evtimer_add(cli->timer, &tv);
}

/* ---- pub ---- */

static void stdin_resume(struct cli *cli);

/* The broker has everything: wait briefly for an ERROR, then succeed. */
static void maybe_done(struct cli *cli)
{
    if (cli->mode != MODE_PUB || !cli->input_done || cli->finished)
        return;
    if (hpfc_state(cli->client) != HPFC_STATE_AUTHENTICATED || hpfc_pending_bytes(cli->client) != 0)
        return;
    if (!evtimer_pending(cli->timer, NULL))
        start_timer(cli, PUB_GRACE_MS / 1000.0);
}

static bool publish_one(struct cli *cli, const void *data, size_t len)
{
    int rc = hpfc_publish(cli->client, cli->channels[0], data, len);
    if (rc == HPFC_OK)
        return true;
    fprintf(stderr, PROG ": cannot publish: %s\n", hpfc_strerror(rc));
    finish(cli, 1);
    return false;
}

/* Publishes each complete line in stdin_buf, and at EOF the unterminated rest. */
static bool publish_lines(struct cli *cli, bool eof)
{
    for (;;) {
        size_t eol_len = 0;
        struct evbuffer_ptr pos =
            evbuffer_search_eol(cli->stdin_buf, NULL, &eol_len, EVBUFFER_EOL_LF);
        if (pos.pos < 0)
            break;
        size_t line_len = (size_t)pos.pos;
        const unsigned char *p = evbuffer_pullup(cli->stdin_buf, (ev_ssize_t)(line_len + eol_len));
        if (!p) {
            fprintf(stderr, PROG ": out of memory\n");
            finish(cli, 1);
            return false;
        }
        if (!publish_one(cli, p, line_len))
            return false;
        evbuffer_drain(cli->stdin_buf, line_len + eol_len);
    }
    size_t rest = evbuffer_get_length(cli->stdin_buf);
    if (eof && rest) {
        const unsigned char *p = evbuffer_pullup(cli->stdin_buf, -1);
        if (!p || !publish_one(cli, p, rest))
            return false;
        evbuffer_drain(cli->stdin_buf, rest);
    } else if (rest > HPFC_DEFAULT_QUEUE_LIMIT) {
        fprintf(stderr, PROG ": input line longer than %u bytes\n", HPFC_DEFAULT_QUEUE_LIMIT);
        finish(cli, 1);
        return false;
    }
    return true;
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    struct cli *cli = arg;
    int n = evbuffer_read(cli->stdin_buf, STDIN_FILENO, STDIN_CHUNK);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            stdin_resume(cli);
            return;
        }
        fprintf(stderr, PROG ": cannot read stdin: %s\n", g_strerror(errno));
        finish(cli, 1);
        return;
    }
    bool eof = n == 0;
    if (!publish_lines(cli, eof))
        return;
    if (eof) {
        cli->input_done = true;
        if (cli->stdin_pollable)
            event_del(cli->stdin_ev);
        maybe_done(cli);
        return;
    }
    if (hpfc_pending_bytes(cli->client) >= STDIN_PAUSE_BYTES) {
        /* Back-pressure: on_drained resumes. */
        cli->stdin_paused = true;
        if (cli->stdin_pollable)
            event_del(cli->stdin_ev);
        return;
    }
    stdin_resume(cli);
}

/* Pollable stdin stays armed; a file is read chunk by chunk from the loop. */
static void stdin_resume(struct cli *cli)
{
    if (!cli->stdin_ev || cli->input_done || cli->finished)
        return;
    cli->stdin_paused = false;
    if (cli->stdin_pollable)
        event_add(cli->stdin_ev, NULL);
    else
        event_active(cli->stdin_ev, EV_READ, 0);
}

static bool setup_stdin(struct cli *cli)
{
    struct stat st;
    if (fstat(STDIN_FILENO, &st) < 0) {
        fprintf(stderr, PROG ": cannot read stdin: %s\n", g_strerror(errno));
        return false;
    }
    /* epoll refuses regular files and /dev/null; those never block anyway. */
    cli->stdin_pollable = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
                          (S_ISCHR(st.st_mode) && isatty(STDIN_FILENO));
    cli->stdin_buf = evbuffer_new();
    cli->stdin_ev = cli->stdin_pollable
                        ? event_new(cli->base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, cli)
                        : event_new(cli->base, -1, 0, on_stdin, cli);
    if (!cli->stdin_buf || !cli->stdin_ev) {
        fprintf(stderr, PROG ": out of memory\n");
        return false;
    }
    stdin_resume(cli);
    return true;
}

static void on_pub_grace(evutil_socket_t fd, short what, void *arg)
{
    struct cli *cli = arg;
    if (hpfc_state(cli->client) == HPFC_STATE_AUTHENTICATED && hpfc_pending_bytes(cli->client) == 0)
        finish(cli, 0);
}

/* ---- sub ---- */

static void print_json(struct cli *cli, const char *ident, const char *channel,
                       const uint8_t *payload, size_t len)
{
    JsonBuilder *b = json_builder_new();
    gchar *chan_u = g_utf8_make_valid(channel, -1);
    gchar *ident_u = g_utf8_make_valid(ident, -1);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "channel");
    json_builder_add_string_value(b, chan_u);
    json_builder_set_member_name(b, "ident");
    json_builder_add_string_value(b, ident_u);
    /* A NUL byte fails validation too, so strings never get cut short. */
    if (g_utf8_validate((const gchar *)payload, (gssize)len, NULL)) {
        gchar *text = g_strndup((const gchar *)payload, len);
        json_builder_set_member_name(b, "payload");
        json_builder_add_string_value(b, text);
        g_free(text);
    } else {
        gchar *b64 = g_base64_encode(payload, len);
        json_builder_set_member_name(b, "payload_b64");
        json_builder_add_string_value(b, b64);
        g_free(b64);
    }
    json_builder_end_object(b);

    JsonGenerator *gen = json_generator_new();
    JsonNode *root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    gsize out_len = 0;
    gchar *out = json_generator_to_data(gen, &out_len);
    fwrite(out, 1, out_len, stdout);
    fputc('\n', stdout);
    g_free(out);
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(b);
    g_free(chan_u);
    g_free(ident_u);
}

static void on_message(void *ud, const char *ident, const char *channel, const uint8_t *payload,
                       size_t len)
{
    struct cli *cli = ud;
    if (cli->mode != MODE_SUB || cli->finished)
        return;
    if (cli->json) {
        print_json(cli, ident, channel, payload, len);
    } else {
        fputs(channel, stdout);
        fputc(' ', stdout);
        fputs(ident, stdout);
        fputc(' ', stdout);
        fwrite(payload, 1, len, stdout);
        fputc('\n', stdout);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROG ": cannot write to stdout: %s\n", g_strerror(errno));
        finish(cli, 1);
        return;
    }
    cli->received++;
    if (cli->count > 0 && cli->received >= cli->count)
        finish(cli, 0);
}

static void on_sub_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct cli *cli = arg;
    if (!cli->authenticated_once) {
        fprintf(stderr, PROG ": timed out after %g s before the broker accepted the connection\n",
                cli->timeout);
        finish(cli, EXIT_TIMEOUT);
    } else if (cli->count > 0 && cli->received < cli->count) {
        fprintf(stderr,
                PROG ": timed out after %g s with %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                     " messages\n",
                cli->timeout, cli->received, cli->count);
        finish(cli, EXIT_TIMEOUT);
    } else {
        finish(cli, 0);
    }
}

/* ---- shared callbacks ---- */

static bool keeps_going(const struct cli *cli) { return cli->mode == MODE_SUB && cli->reconnect; }

static void on_error(void *ud, const char *message)
{
    struct cli *cli = ud;
    if (cli->finished)
        return;
    fprintf(stderr, PROG ": broker error: %s\n", message);
    if (!keeps_going(cli))
        finish(cli, 1);
}

static void on_state(void *ud, enum hpfc_state state, const char *reason)
{
    struct cli *cli = ud;
    if (cli->finished)
        return;
    if (state == HPFC_STATE_AUTHENTICATED) {
        cli->authenticated_once = true;
        maybe_done(cli);
        return;
    }
    if (state != HPFC_STATE_DISCONNECTED)
        return;
    if (keeps_going(cli)) {
        fprintf(stderr, PROG ": %s; reconnecting\n", reason);
        cli->announced = false;
        return;
    }
    fprintf(stderr, PROG ": %s\n", reason);
    finish(cli, 1);
}

static void on_drained(void *ud)
{
    struct cli *cli = ud;
    if (cli->finished)
        return;
    if (cli->verbose && !cli->announced) {
        /* AUTH and subscriptions are in the kernel: a script may go on. */
        gchar *chans = g_strjoinv(",", cli->channels);
        const char *name = hpfc_broker_name(cli->client);
        uint16_t port = 0;
        const char *host = hpfc_current_host(cli->client, &port);
        fprintf(stderr, PROG ": %s %s on %s:%d (broker %s) as %s\n",
                cli->mode == MODE_SUB ? "subscribed to" : "publishing to", chans, host, (int)port,
                name ? name : "?", cli->ident);
        g_free(chans);
        cli->announced = true;
    }
    if (cli->stdin_paused)
        stdin_resume(cli);
    maybe_done(cli);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    struct cli *cli = arg;
    /* Interrupting a subscriber is how it normally ends. */
    finish(cli, cli->mode == MODE_SUB ? 0 : 1);
}

/* ---- command line ---- */

/* --failover HOST:PORT (IPv6 in brackets) for each other broker. */
static bool add_failover(struct cli *cli)
{
    for (gchar **f = cli->failover; f && *f; f++) {
        char *colon = strrchr(*f, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == *f || !end || *end || port < 1 || port > 65535) {
            fprintf(stderr, PROG ": --failover %s: expected HOST:PORT\n", *f);
            return false;
        }
        gchar *host = (**f == '[' && colon[-1] == ']') ? g_strndup(*f + 1, colon - *f - 2)
                                                       : g_strndup(*f, colon - *f);
        int rc = hpfc_add_broker(cli->client, host, (uint16_t)port);
        g_free(host);
        if (rc != HPFC_OK) {
            fprintf(stderr, PROG ": --failover %s: %s\n", *f, hpfc_strerror(rc));
            return false;
        }
    }
    return true;
}

static void usage(FILE *to)
{
    fprintf(to,
            "Usage:\n"
            "  " PROG " pub [OPTION...] [MESSAGE...]   publish each MESSAGE, or each stdin line\n"
            "  " PROG " sub [OPTION...]                print messages as they arrive\n"
            "\n"
            "Run '" PROG " pub --help' or '" PROG " sub --help' for the options.\n");
}

static bool parse_args(struct cli *cli, int argc, char **argv, gchar ***rest)
{
    GOptionEntry common[] = {
        {"host", 0, 0, G_OPTION_ARG_STRING, &cli->host, "Broker host (default 127.0.0.1)", "HOST"},
        {"port", 'p', 0, G_OPTION_ARG_INT, &cli->port, "Broker port (default 10000)", "PORT"},
        {"ident", 'i', 0, G_OPTION_ARG_STRING, &cli->ident, "Authkey ident", "IDENT"},
        {"secret", 's', 0, G_OPTION_ARG_STRING, &cli->secret,
         "Authkey secret (default: $HPFEEDS_SECRET)", "SECRET"},
        {"channel", 'c', 0, G_OPTION_ARG_STRING_ARRAY, &cli->channels,
         cli->mode == MODE_PUB ? "Channel to publish on" : "Channel to subscribe to (repeatable)",
         "CHANNEL"},
        {"tls", 0, 0, G_OPTION_ARG_NONE, &cli->tls,
         "Use TLS; the broker's certificate must verify and name HOST", NULL},
        {"cafile", 0, 0, G_OPTION_ARG_FILENAME, &cli->cafile,
         "Trust the CA certificates in FILE (PEM) instead of the system's; implies --tls", "FILE"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &cli->verbose,
         "Say on stderr once AUTH and subscriptions were sent", NULL},
        {"failover", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cli->failover,
         "Another broker (node of the same cluster) to try when the connection is lost, "
         "round robin (repeatable)",
         "HOST:PORT"},
        G_OPTION_ENTRY_NULL,
    };
    GOptionEntry sub[] = {
        {"count", 'n', 0, G_OPTION_ARG_INT64, &cli->count, "Exit 0 after N messages", "N"},
        {"json", 'j', 0, G_OPTION_ARG_NONE, &cli->json,
         "One JSON object per line: channel, ident, payload or payload_b64", NULL},
        {"timeout", 't', 0, G_OPTION_ARG_DOUBLE, &cli->timeout,
         "Stop after SECONDS: exit 2 if --count (or the connection) was not reached, else 0",
         "SECONDS"},
        {"reconnect", 'r', 0, G_OPTION_ARG_NONE, &cli->reconnect,
         "Keep reconnecting after errors instead of exiting 1", NULL},
        G_OPTION_ENTRY_NULL,
    };

    bool ok = false;
    GError *err = NULL;
    gchar **args = g_strdupv(argv + 1); /* args[0] is the sub-command */
    g_set_prgname(cli->mode == MODE_PUB ? PROG " pub" : PROG " sub");
    GOptionContext *ctx = g_option_context_new(cli->mode == MODE_PUB ? "[MESSAGE...]" : "");
    g_option_context_set_summary(
        ctx, cli->mode == MODE_PUB
                 ? "Publish each MESSAGE argument as one message; without any, publish each\n"
                   "line of stdin (without its newline).  Exits 0 once everything was written\n"
                   "and the broker did not answer with an ERROR."
                 : "Print each message as 'channel ident payload', one per line.");
    g_option_context_add_main_entries(ctx, common, NULL);
    if (cli->mode == MODE_SUB)
        g_option_context_add_main_entries(ctx, sub, NULL);
    if (!g_option_context_parse_strv(ctx, &args, &err)) {
        fprintf(stderr, PROG ": %s\n", err->message);
        goto out;
    }
    g_set_prgname(PROG);

    guint n_args = g_strv_length(args);
    guint n_chans = cli->channels ? g_strv_length(cli->channels) : 0;
    if (!cli->secret && g_getenv("HPFEEDS_SECRET"))
        cli->secret = g_strdup(g_getenv("HPFEEDS_SECRET"));
    if (!cli->host)
        cli->host = g_strdup("127.0.0.1");
    if (cli->port < 1 || cli->port > 65535) {
        fprintf(stderr, PROG ": --port must be 1..65535\n");
    } else if (!cli->ident || !*cli->ident) {
        fprintf(stderr, PROG ": --ident is required\n");
    } else if (!cli->secret) {
        fprintf(stderr, PROG ": --secret (or $HPFEEDS_SECRET) is required\n");
    } else if (n_chans == 0) {
        fprintf(stderr, PROG ": --channel is required\n");
    } else if (cli->mode == MODE_PUB && n_chans != 1) {
        fprintf(stderr, PROG ": pub takes exactly one --channel\n");
    } else if (cli->mode == MODE_SUB && n_args > 1) {
        fprintf(stderr, PROG ": sub takes no arguments (got '%s')\n", args[1]);
    } else if (cli->count < 0) {
        fprintf(stderr, PROG ": --count must not be negative\n");
    } else if (cli->cafile && !*cli->cafile) {
        fprintf(stderr, PROG ": --cafile must name a file\n");
    } else if (cli->timeout < 0 || cli->timeout > 1e9) {
        fprintf(stderr, PROG ": --timeout must be 0..1e9 seconds\n");
    } else {
        ok = true;
    }
out:
    g_clear_error(&err);
    g_option_context_free(ctx);
    if (ok)
        *rest = args;
    else
        g_strfreev(args);
    return ok;
}

/* Checked before any input is read, so a bad name fails before stdin does. */
static bool valid_channel_for_pub(const struct cli *cli)
{
    size_t n = strlen(cli->channels[0]);
    if (n >= 1 && n <= 255)
        return true;
    fprintf(stderr, PROG ": --channel must be 1..255 bytes\n");
    return false;
}

static int run(struct cli *cli, gchar **args)
{
    struct hpfc_callbacks cbs = {
        .on_message = on_message,
        .on_error = on_error,
        .on_state = on_state,
        .on_drained = on_drained,
    };
    cli->base = event_base_new();
    if (!cli->base) {
        fprintf(stderr, PROG ": cannot create an event loop\n");
        return 1;
    }
    cli->client = hpfc_client_new(cli->base, cli->host, (uint16_t)cli->port, cli->ident,
                                  cli->secret, &cbs, cli);
    cli->sig_int = evsignal_new(cli->base, SIGINT, on_signal, cli);
    cli->sig_term = evsignal_new(cli->base, SIGTERM, on_signal, cli);
    cli->timer = evtimer_new(cli->base, cli->mode == MODE_PUB ? on_pub_grace : on_sub_timeout, cli);
    if (!cli->client) {
        fprintf(stderr, PROG ": invalid --ident (1..255 bytes) or --host, or out of memory\n");
        return 1;
    }
    if (!cli->sig_int || !cli->sig_term || !cli->timer || evsignal_add(cli->sig_int, NULL) < 0 ||
        evsignal_add(cli->sig_term, NULL) < 0) {
        fprintf(stderr, PROG ": cannot set up the event loop\n");
        return 1;
    }
    hpfc_set_reconnect(cli->client, keeps_going(cli), 0, 0);
    if (cli->tls || cli->cafile) {
        int rc = hpfc_set_tls(cli->client, true, cli->cafile);
        if (rc != HPFC_OK) {
            if (rc == HPFC_ERR_TLS && cli->cafile)
                fprintf(stderr, PROG ": cannot load CA certificates from %s\n", cli->cafile);
            else
                fprintf(stderr, PROG ": cannot set up TLS: %s\n", hpfc_strerror(rc));
            return 1;
        }
    }
    if (!add_failover(cli))
        return 1;

    if (cli->mode == MODE_SUB) {
        for (gchar **ch = cli->channels; *ch; ch++) {
            int rc = hpfc_subscribe(cli->client, *ch);
            if (rc != HPFC_OK) {
                fprintf(stderr, PROG ": cannot subscribe to '%s': %s\n", *ch, hpfc_strerror(rc));
                return 1;
            }
        }
        if (cli->timeout > 0)
            start_timer(cli, cli->timeout);
    } else {
        if (!valid_channel_for_pub(cli))
            return 1;
        if (args[1]) {
            for (gchar **m = args + 1; *m; m++)
                if (!publish_one(cli, *m, strlen(*m)))
                    return 1;
            cli->input_done = true;
        } else if (!setup_stdin(cli)) {
            return 1;
        }
    }

    int rc = hpfc_connect(cli->client);
    if (rc != HPFC_OK) {
        fprintf(stderr, PROG ": cannot connect to %s:%d: %s\n", cli->host, cli->port,
                hpfc_strerror(rc));
        return 1;
    }
    cli->rc = 1;
    event_base_dispatch(cli->base);
    return cli->rc;
}

static void cleanup(struct cli *cli)
{
    g_strfreev(cli->failover);
    hpfc_free(cli->client);
    if (cli->stdin_ev)
        event_free(cli->stdin_ev);
    if (cli->stdin_buf)
        evbuffer_free(cli->stdin_buf);
    if (cli->timer)
        event_free(cli->timer);
    if (cli->sig_int)
        event_free(cli->sig_int);
    if (cli->sig_term)
        event_free(cli->sig_term);
    if (cli->base)
        event_base_free(cli->base);
    g_free(cli->host);
    g_free(cli->cafile);
    g_free(cli->ident);
    if (cli->secret) {
        memset(cli->secret, 0, strlen(cli->secret));
        g_free(cli->secret);
    }
    g_strfreev(cli->channels);
}

int main(int argc, char **argv)
{
    /* A broker that hangs up must not kill us with SIGPIPE mid-write. */
    signal(SIGPIPE, SIG_IGN);
    setlocale(LC_ALL, "");

    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    struct cli cli = {.port = 10000};
    if (strcmp(argv[1], "pub") == 0) {
        cli.mode = MODE_PUB;
    } else if (strcmp(argv[1], "sub") == 0) {
        cli.mode = MODE_SUB;
    } else if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    } else if (strcmp(argv[1], "--version") == 0) {
        printf(PROG " (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        return 0;
    } else {
        fprintf(stderr, PROG ": unknown command '%s' (expected pub or sub)\n", argv[1]);
        usage(stderr);
        return 1;
    }

    gchar **args = NULL;
    int rc = 1;
    if (parse_args(&cli, argc, argv, &args))
        rc = run(&cli, args);
    g_strfreev(args);
    cleanup(&cli);
    return rc;
}
