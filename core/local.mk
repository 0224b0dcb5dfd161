# rules for core
