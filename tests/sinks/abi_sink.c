/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A sink that accepts and drops everything, built four times by
 * tests/sinks/local.mk: for this broker's ABI (abi_sink_ok), the previous
 * minor (abi_sink_prev_minor), the next major (abi_sink_next_major) and
 * the next minor (abi_sink_next_minor).
 * Only the version differs, so a refusal can only be about the version.
 */
#include <stdlib.h>

#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#ifndef ABI_MAJOR_DELTA
#define ABI_MAJOR_DELTA 0
#endif
#ifndef ABI_MINOR_DELTA
#define ABI_MINOR_DELTA 0
#endif

static const char *const config_keys[] = {NULL};

static int abi_create(const struct hpf_host *host, const struct hpf_plugin_ctx *ctx,
                      void **instance, char *err, size_t err_len)
{
    (void)host;
    (void)ctx;
    (void)err;
    (void)err_len;
    *instance = NULL;
    return HPF_OK;
}

static void abi_destroy(void *instance) { (void)instance; }

static int abi_message(void *instance, const struct hpf_message *msg)
{
    (void)instance;
    (void)msg;
    return HPF_OK;
}

static const struct hpf_sink_ops sink_ops = {
    .wants = HPF_SINK_MESSAGES,
    .message = abi_message,
};

static const struct hpf_plugin plugin = {
    .abi_major = HPF_ABI_MAJOR + ABI_MAJOR_DELTA,
    .abi_minor = HPF_ABI_MINOR + ABI_MINOR_DELTA,
    .name = "abi_sink",
    .version = "0",
    .description = "test sink that drops everything, built for a chosen ABI version",
    .kinds = HPF_KIND_SINK,
    .config_keys = config_keys,
    .create = abi_create,
    .destroy = abi_destroy,
    .sink = &sink_ops,
};

HPF_PLUGIN_DEFINE(plugin)
