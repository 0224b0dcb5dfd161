# rules for tests/integration
