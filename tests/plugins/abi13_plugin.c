/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A sink and auth plugin compiled against the ABI 1.3 headers kept in
 * tests/plugins/abi13/ (tests/plugins/local.mk puts them first on the include
 * path), as a third party built it before 1.4: it declares minor 3, sees the
 * 1.3 layout of hpf_host, hpf_plugin and the ops tables, and uses only what
 * 1.3 offered.  test_plugin_abi loads it through the real loader and checks
 * it works: every 1.3 host call reaches the right function, its messages
 * arrive, its auth verdict counts.
 *
 * Keys: path (required; each message's channel is appended to that file as
 * a line, and create() writes "instance NAME" there first), answer (allow,
 * deny or defer: what authenticate() says), and n, flag, size (read by
 * nothing: the test reads them through the 1.4 host readers with this
 * plugin's context).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hpfriends/auth.h>
#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#if HPF_ABI_MINOR != 3
#error "abi13_plugin.c must be built against tests/plugins/abi13/"
#endif

struct abi13 {
    const struct hpf_host *host;
    const struct hpf_plugin_ctx *ctx;
    char *path;
    int answer; /* enum hpf_auth_verdict */
};

static const char *const config_keys[] = {"path", "answer", "n", "flag", "size", NULL};

static int append_line(const char *path, const char *what, const char *text)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return HPF_ERR_IO;
    fprintf(f, "%s %s\n", what, text);
    return fclose(f) == 0 ? HPF_OK : HPF_ERR_IO;
}

static int abi13_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                        void **instance, char *err, size_t err_len)
{
    if (host->abi_major != 1 || host->abi_minor < 3) {
        snprintf(err, err_len, "host speaks %u.%u", host->abi_major, host->abi_minor);
        return HPF_ERR_UNSUPPORTED;
    }
    struct abi13 *a = calloc(1, sizeof *a);
    if (!a)
        return HPF_ERR_NOMEM;
    a->host = host;
    a->ctx = ctx;
    a->path = host->config_path(ctx, "path");
    const char *answer = host->config_get(ctx, "answer");
    a->answer = !answer                    ? HPF_AUTH_DEFER
                : !strcmp(answer, "allow") ? HPF_AUTH_ALLOW
                : !strcmp(answer, "deny")  ? HPF_AUTH_DENY
                                           : HPF_AUTH_DEFER;
    if (!a->path || append_line(a->path, "instance", host->instance_name(ctx)) != HPF_OK) {
        snprintf(err, err_len, "path: missing or not writable");
        free(a->path);
        free(a);
        return HPF_ERR_INVALID;
    }
    host->log(ctx, HPF_LOG_DEBUG, "built for ABI %d.%d", HPF_ABI_MAJOR, HPF_ABI_MINOR);
    *instance = a;
    return HPF_OK;
}

static void abi13_destroy(void *instance)
{
    struct abi13 *a = instance;
    free(a->path);
    free(a);
}

static int abi13_message(void *instance, const struct hpf_message *msg)
{
    struct abi13 *a = instance;
    return append_line(a->path, "message", msg->channel);
}

static int abi13_authenticate(void *instance, struct hpf_auth_request *req)
{
    struct abi13 *a = instance;
    if (a->answer == HPF_AUTH_ALLOW) {
        const char *chan = "abi13";
        struct hpf_authkey key = {
            .ident = req->ident, .owner = "abi13-owner", .publish = &chan, .n_publish = 1};
        a->host->auth_grant(req, &key);
    }
    return a->answer;
}

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES,
    .message = abi13_message,
};

static const struct hpf_auth_ops auth_ops = {
    .authenticate = abi13_authenticate,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR,
    .abi_minor = HPF_ABI_MINOR,
    .name = "abi13_plugin",
    .version = "1.3",
    .description = "a plugin built against the ABI 1.3 headers",
    .kinds = HPF_KIND_SINK | HPF_KIND_AUTH,
    .config_keys = config_keys,
    .create = abi13_create,
    .destroy = abi13_destroy,
    .sink = &sink_ops,
    .auth = &auth_ops,
};

HPF_PLUGIN_DEFINE(plugin)
