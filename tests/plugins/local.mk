# rules for tests/plugins
