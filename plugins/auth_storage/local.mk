# SPDX-License-Identifier: BSD-3-Clause
# auth_storage: authkey checks against the configured storage.
plugins_LTLIBRARIES += plugins/auth_storage.la
plugins_auth_storage_la_SOURCES = plugins/auth_storage/auth_storage.c
plugins_auth_storage_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_auth_storage_la_LDFLAGS = $(PLUGIN_LDFLAGS)
