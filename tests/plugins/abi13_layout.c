/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The layout of the ABI 1.3 structs, measured with the headers kept in
 * tests/plugins/abi13/ (this file is built on its own with those first on
 * the include path), for test_plugin_abi to hold against today's headers:
 * a minor bump may only append, so every 1.3 field keeps its offset and the
 * structs with reserved slots keep their size.
 */
#include <stddef.h>

#include <hpfriends/auth.h>
#include <hpfriends/plugin.h>
#include <hpfriends/sink.h>

#include "abi13_layout.h"

#if HPF_ABI_MINOR != 3
#error "abi13_layout.c must be built against tests/plugins/abi13/"
#endif

static const struct abi13_field fields[] = {
    ABI13_FIELDS(ABI13_FIELD, ABI13_SIZE){NULL, 0},
};

const struct abi13_field *abi13_layout(void) { return fields; }

size_t abi13_host_reserved(void) { return offsetof(struct hpf_host, reserved); }

size_t abi13_auth_ops_reserved(void) { return offsetof(struct hpf_auth_ops, reserved); }
