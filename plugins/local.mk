# SPDX-License-Identifier: BSD-3-Clause
# rules for plugins: what every plugin shares, then one local.mk a plugin.
#
# Each plugin is a libtool module exporting only hpf_plugin_entry; plugins
# see the SDK headers, never core/ (the host table is all they get).  The
# modules are built as plugins/NAME.la (so plugins/.libs/ holds them all,
# which is where the tests point HPFRIENDS_PLUGIN_DIR); each plugin's
# sources live in plugins/NAME/ with its rules, paths written out.
#
# Plugins that link json-glib, libmongoc or libnats stay mapped once loaded
# (-z nodelete): those libraries register global state (GObject types,
# libmongoc's global init, libnats's threads) that cannot be torn down and
# set up again in one process.

PLUGIN_CPPFLAGS = -I$(top_srcdir)/include -DPLUGIN_VERSION='"$(PACKAGE_VERSION)"'
PLUGIN_LDFLAGS = -module -avoid-version -shared -export-symbols-regex '^hpf_plugin_entry$$'

# plugins/common/: code compiled into several plugins (plugins link nothing
# of the core, so each module gets its own copy).
# - the checks of a storage mutation that need no stored data (every storage);
MUTATION_CHECK_SOURCES = \
	plugins/common/mutation_check.h \
	plugins/common/mutation_check.c
# - the in-memory data model with storage_sqlite's apply() rules, for the
#   backends that keep the whole graph in memory (file, MongoDB);
STORAGE_MODEL_SOURCES = \
	$(MUTATION_CHECK_SOURCES) \
	plugins/common/model.h \
	plugins/common/model.c
# - test-only crash points (HPF_CRASH_AT), used by the system tests.
CRASH_POINT_SOURCES = plugins/common/crash_point.h
# - JSON channel lists of the SQL stores (sqlite, postgresql, mysql), one
#   reader for all three, and the check for a spelled NUL that every store
#   reading JSON written by other tools makes first.
SQL_CHANNELS_SOURCES = \
	plugins/common/json_nul.h \
	plugins/common/sql_channels.h \
	plugins/common/sql_channels.c
# - the record formats of the networked sinks (format = raw | normalized |
#   cef | splunk) and the normalized honeypot event schema; SDK headers,
#   GLib and json-glib only.
SINK_FORMAT_SOURCES = \
	plugins/common/sink_format.h \
	plugins/common/sink_format.c

include plugins/storage_sqlite/local.mk
include plugins/storage_file/local.mk
include plugins/storage_mongodb/local.mk
include plugins/storage_mysql/local.mk
include plugins/auth_storage/local.mk
include plugins/auth_env/local.mk
include plugins/sink_file/local.mk
include plugins/sink_syslog/local.mk
include plugins/sink_mqtt/local.mk
include plugins/sink_redis/local.mk
include plugins/sink_http/local.mk
include plugins/cluster_nats/local.mk
include plugins/storage_postgresql/local.mk
