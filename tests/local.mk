# SPDX-License-Identifier: BSD-3-Clause
include tests/unit/local.mk
include tests/plugins/local.mk
include tests/integration/local.mk
include tests/interop/local.mk
include tests/system/local.mk
include tests/bench/local.mk
include tests/storage/local.mk
include tests/sinks/local.mk
include tests/fuzz/local.mk
include tests/web/local.mk
include tests/cluster/local.mk
