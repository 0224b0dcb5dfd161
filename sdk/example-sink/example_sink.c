/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * example_sink.c: a complete third-party hpfriends sink, built out of tree.
 *
 * It counts the messages and payload bytes seen on each channel and, when
 * the broker shuts down (and on every SIGHUP, as a checkpoint), writes a
 * summary file with one line per channel, sorted by name:
 *
 *     CHANNEL COUNT BYTES
 *
 * Channel names are written with bytes outside printable ASCII, spaces and
 * backslashes as \xNN so that every line splits into three fields.
 *
 * Build and install (see Makefile next to this file):
 *
 *     make && make install
 *
 * then load it from the broker config:
 *
 *     [sink:stats]
 *     plugin = example          ; finds sink_example.so in the plugin dir
 *     summary = /var/lib/hpfriends/channel-summary.txt
 *     channels = dionaea.captures;cowrie.sessions   ; optional, done by the broker
 *
 * The plugin uses the C library only: the SDK headers need nothing else.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hpfriends/plugin.h> /* the entry point, the host table, status codes */
#include <hpfriends/sink.h>   /* struct hpf_sink_ops, struct hpf_message */

/* ---- the counting ---- */

/* One channel's totals; a chained hash table holds them. */
struct channel_stat {
    struct channel_stat *next;
    uint64_t count;
    uint64_t bytes;
    char name[]; /* NUL-terminated */
};

#define N_BUCKETS 256u /* grows by chaining; plenty for a few thousand channels */

/* Everything one [sink:NAME] section owns: what create() returns. */
struct example_sink {
    const struct hpf_host *host;      /* the broker's functions */
    const struct hpf_plugin_ctx *ctx; /* who we are, for host calls */
    char *summary_path;               /* from the `summary` key */
    struct channel_stat *buckets[N_BUCKETS];
    size_t n_channels;
    int dirty; /* counted something since the last summary */
};

/* FNV-1a: small and good enough for a table of channel names. */
static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

static struct channel_stat *find_or_add(struct example_sink *ex, const char *name)
{
    uint32_t b = hash_name(name) % N_BUCKETS;
    for (struct channel_stat *cs = ex->buckets[b]; cs; cs = cs->next)
        if (!strcmp(cs->name, name))
            return cs;
    size_t len = strlen(name);
    struct channel_stat *cs = calloc(1, sizeof *cs + len + 1);
    if (!cs)
        return NULL;
    memcpy(cs->name, name, len + 1);
    cs->next = ex->buckets[b];
    ex->buckets[b] = cs;
    ex->n_channels++;
    return cs;
}

/* ---- writing the summary ---- */

static int by_name(const void *a, const void *b)
{
    const struct channel_stat *x = *(const struct channel_stat *const *)a;
    const struct channel_stat *y = *(const struct channel_stat *const *)b;
    return strcmp(x->name, y->name);
}

static void write_name(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c > '~' || c == '\\')
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

/*
 * Written to PATH.tmp and renamed over PATH, so a reader never sees half a
 * summary.  Returns an HPF_* status.
 */
static int write_summary(struct example_sink *ex)
{
    int status = HPF_OK;
    struct channel_stat **all = NULL;
    size_t tmp_len = strlen(ex->summary_path) + 5;
    char *tmp = malloc(tmp_len);
    FILE *f = NULL;

    if (!tmp || (ex->n_channels && !(all = calloc(ex->n_channels, sizeof *all)))) {
        status = HPF_ERR_NOMEM;
        goto out;
    }
    snprintf(tmp, tmp_len, "%s.tmp", ex->summary_path);

    size_t n = 0;
    for (unsigned b = 0; b < N_BUCKETS; b++)
        for (struct channel_stat *cs = ex->buckets[b]; cs; cs = cs->next)
            all[n++] = cs;
    if (n)
        qsort(all, n, sizeof *all, by_name);

    f = fopen(tmp, "w");
    if (!f) {
        /* host->log adds this instance's name in front: "sink:stats: ..." */
        ex->host->log(ex->ctx, HPF_LOG_ERR, "cannot write %s: %s", tmp, strerror(errno));
        status = HPF_ERR_IO;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        write_name(f, all[i]->name);
        fprintf(f, " %llu %llu\n", (unsigned long long)all[i]->count,
                (unsigned long long)all[i]->bytes);
    }
    if (fclose(f) != 0) {
        f = NULL;
        ex->host->log(ex->ctx, HPF_LOG_ERR, "cannot write %s: %s", tmp, strerror(errno));
        status = HPF_ERR_IO;
        goto out;
    }
    f = NULL;
    if (rename(tmp, ex->summary_path) != 0) {
        ex->host->log(ex->ctx, HPF_LOG_ERR, "cannot rename %s to %s: %s", tmp, ex->summary_path,
                      strerror(errno));
        status = HPF_ERR_IO;
        goto out;
    }
    ex->dirty = 0;

out:
    if (f)
        fclose(f);
    free(all);
    free(tmp);
    return status;
}

/* ---- the plugin's life cycle (broker's main thread) ---- */

/*
 * Every key the plugin accepts.  The broker refuses any other key in the
 * section before create() runs, naming the section and the key.  `channels`
 * and `queue_size` are the broker's own and never reach the plugin.
 */
static const char *const config_keys[] = {"summary", NULL};

/*
 * create(): read and check the configuration, allocate.  No side effects
 * here: `hpfriendsd -t` (config check) runs create() and stops.
 */
static int example_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                          void **instance, char *err, size_t err_len)
{
    struct example_sink *ex = calloc(1, sizeof *ex);
    if (!ex)
        return HPF_ERR_NOMEM;
    ex->host = host;
    ex->ctx = ctx;
    /* config_path() resolves a relative path against the config file's dir. */
    ex->summary_path = host->config_path(ctx, "summary");
    if (!ex->summary_path || !*ex->summary_path) {
        free(ex->summary_path);
        free(ex);
        /* The broker prints "FILE: [sink:NAME]: <err>" and exits non-zero. */
        return hpf_set_error(err, err_len, HPF_ERR_INVALID,
                             "summary: required (the file to write the totals to)");
    }
    *instance = ex;
    return HPF_OK;
}

/* start(): side effects.  Here: prove now that the summary can be written. */
static int example_start(void *instance, char *err, size_t err_len)
{
    struct example_sink *ex = instance;
    int status = write_summary(ex); /* an empty summary */
    if (status != HPF_OK)
        return hpf_set_error(err, err_len, status, "summary: cannot write %s", ex->summary_path);
    return HPF_OK;
}

/* destroy(): release everything.  Also called after a failed start(). */
static void example_destroy(void *instance)
{
    struct example_sink *ex = instance;
    if (!ex)
        return;
    /* flush() normally wrote it already; this catches anything after. */
    if (ex->dirty)
        (void)write_summary(ex);
    for (unsigned b = 0; b < N_BUCKETS; b++) {
        struct channel_stat *cs = ex->buckets[b];
        while (cs) {
            struct channel_stat *next = cs->next;
            free(cs);
            cs = next;
        }
    }
    free(ex->summary_path);
    free(ex);
}

/* ---- the sink ops (this instance's own worker thread) ---- */

/*
 * One accepted message.  Called on the sink's worker thread, one call at a
 * time, so no locking is needed.  msg and everything it points to are valid
 * during this call only: copy what you keep.  A slow sink never slows the
 * broker: the broker queues (bounded) and drops and counts when full.
 */
static int example_message(void *instance, const struct hpf_message *msg)
{
    struct example_sink *ex = instance;
    struct channel_stat *cs = find_or_add(ex, msg->channel);
    if (!cs)
        return HPF_ERR_NOMEM; /* the broker counts and logs failed calls */
    cs->count++;
    cs->bytes += msg->payload_len;
    ex->dirty = 1;
    return HPF_OK;
}

/* SIGHUP: a checkpoint of the totals so far. */
static int example_reopen(void *instance) { return write_summary(instance); }

/* Shutdown: the queue has been drained; make the result durable. */
static int example_flush(void *instance) { return write_summary(instance); }

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES, /* no broker events: .event stays NULL */
    .message = example_message,
    .reopen = example_reopen,
    .flush = example_flush,
};

/* What the broker reads first: keep it static const. */
static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR, /* the headers this was compiled against */
    .abi_minor = HPF_ABI_MINOR,
    .name = "sink_example", /* the file's name: sink_example.so */
    .version = "1.0",
    .description = "counts messages and bytes per channel, writes a summary at shutdown",
    .kinds = HPF_KIND_SINK,
    .config_keys = config_keys,
    .create = example_create,
    .start = example_start,
    .destroy = example_destroy,
    .sink = &sink_ops,
};

/* Defines and exports hpf_plugin_entry(), the one symbol the broker looks up. */
HPF_PLUGIN_DEFINE(plugin)
