# rules for tests/interop
