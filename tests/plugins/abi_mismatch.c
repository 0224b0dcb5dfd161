/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A plugin built for the next ABI major: otherwise well formed (a sink that
 * drops everything), so the only reason to refuse it is the version.
 */
#include <stdlib.h>

#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

static const char *const config_keys[] = {NULL};

static int mismatch_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                           void **instance, char *err, size_t err_len)
{
    (void)host;
    (void)ctx;
    (void)err;
    (void)err_len;
    *instance = NULL;
    return HPF_OK;
}

static void mismatch_destroy(void *instance) { (void)instance; }

static int mismatch_message(void *instance, const struct hpf_message *msg)
{
    (void)instance;
    (void)msg;
    return HPF_OK;
}

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES,
    .message = mismatch_message,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR + 1,
    .abi_minor = 0,
    .name = "abi_mismatch",
    .version = "0",
    .description = "test plugin built for a future ABI major",
    .kinds = HPF_KIND_SINK,
    .config_keys = config_keys,
    .create = mismatch_create,
    .destroy = mismatch_destroy,
    .sink = &sink_ops,
};

HPF_PLUGIN_DEFINE(plugin)
