# rules for plugins
