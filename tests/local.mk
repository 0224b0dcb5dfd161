include tests/unit/local.mk
include tests/plugins/local.mk
include tests/integration/local.mk
include tests/interop/local.mk
