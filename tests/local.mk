include tests/unit/local.mk
include tests/plugins/local.mk
include tests/integration/local.mk
include tests/interop/local.mk
include tests/system/local.mk
include tests/bench/local.mk
include tests/storage/local.mk
