/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ABI 1.3 structs as abi13_layout.c measured them, and the list of what
 * is measured, shared with test_plugin_abi.c which measures the same with
 * today's headers.
 */
#ifndef HPF_TEST_ABI13_LAYOUT_H
#define HPF_TEST_ABI13_LAYOUT_H

#include <stddef.h>

/* Every 1.3 field a plugin or the broker reads, and the size of each struct
 * (one group a struct, as a reader scans it: kept out of clang-format). */
/* clang-format off */
#define ABI13_FIELDS(FIELD, SIZE)                                                             \
    SIZE(hpf_host)                                                                            \
    FIELD(hpf_host, log) FIELD(hpf_host, config_get) FIELD(hpf_host, config_path)             \
    FIELD(hpf_host, instance_name) FIELD(hpf_host, authkey_lookup)                            \
    FIELD(hpf_host, auth_hash_matches) FIELD(hpf_host, auth_grant)                            \
    FIELD(hpf_host, cluster_inject)                                                           \
    SIZE(hpf_plugin)                                                                          \
    FIELD(hpf_plugin, abi_minor) FIELD(hpf_plugin, name) FIELD(hpf_plugin, kinds)             \
    FIELD(hpf_plugin, config_keys) FIELD(hpf_plugin, create) FIELD(hpf_plugin, start)         \
    FIELD(hpf_plugin, destroy) FIELD(hpf_plugin, storage) FIELD(hpf_plugin, auth)             \
    FIELD(hpf_plugin, sink) FIELD(hpf_plugin, cluster)                                        \
    SIZE(hpf_auth_ops)                                                                        \
    FIELD(hpf_auth_ops, authenticate)                                                         \
    SIZE(hpf_sink_ops)                                                                        \
    FIELD(hpf_sink_ops, message) FIELD(hpf_sink_ops, instance_wants)                          \
    SIZE(hpf_auth_request)                                                                    \
    SIZE(hpf_authkey)                                                                         \
    SIZE(hpf_message)
/* clang-format on */

#define ABI13_FIELD(s, f) {#s "." #f, offsetof(struct s, f)},
#define ABI13_SIZE(s)     {"sizeof " #s, sizeof(struct s)},

struct abi13_field {
    const char *what;
    size_t value;
};

/** The 1.3 measurements (ABI13_FIELDS, in order), ending with {NULL, 0}. */
const struct abi13_field *abi13_layout(void);

/** Where 1.3 had the first reserved slot of hpf_host and of hpf_auth_ops. */
size_t abi13_host_reserved(void);
size_t abi13_auth_ops_reserved(void);

#endif
