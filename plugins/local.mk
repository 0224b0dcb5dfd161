# rules for plugins
#
# Each plugin is a libtool module exporting only hpf_plugin_entry; plugins
# see the SDK headers, never core/ (the host table is all they get).

PLUGIN_CPPFLAGS = -I$(top_srcdir)/include -DPLUGIN_VERSION='"$(PACKAGE_VERSION)"'
PLUGIN_LDFLAGS = -module -avoid-version -shared -export-symbols-regex '^hpf_plugin_entry$$'

# The checks of a storage mutation that need no stored data: compiled into
# each storage plugin (plugins link nothing of the core).
MUTATION_CHECK_SOURCES = \
	%reldir%/common/mutation_check.h \
	%reldir%/common/mutation_check.c

plugins_LTLIBRARIES += %reldir%/storage_sqlite.la
%canon_reldir%_storage_sqlite_la_SOURCES = \
	$(MUTATION_CHECK_SOURCES) \
	%reldir%/crash_point.h \
	%reldir%/storage_sqlite/sqlite_store.h \
	%reldir%/storage_sqlite/storage_sqlite.c \
	%reldir%/storage_sqlite/schema.c \
	%reldir%/storage_sqlite/ops.c \
	%reldir%/storage_sqlite/apply.c
%canon_reldir%_storage_sqlite_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
%canon_reldir%_storage_sqlite_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) $(SQLITE_CFLAGS)
# json-glib registers GObject types, which cannot be unregistered: unloading
# it and loading it again (plugin reopened in one process) breaks GType.  So
# this module, and with it json-glib, stays mapped once loaded.
%canon_reldir%_storage_sqlite_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
%canon_reldir%_storage_sqlite_la_LIBADD = $(JSONGLIB_LIBS) $(GLIB_LIBS) $(SQLITE_LIBS)

plugins_LTLIBRARIES += %reldir%/auth_storage.la
%canon_reldir%_auth_storage_la_SOURCES = %reldir%/auth_storage/auth_storage.c
%canon_reldir%_auth_storage_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
%canon_reldir%_auth_storage_la_LDFLAGS = $(PLUGIN_LDFLAGS)

include plugins/sinks.mk
include plugins/backends.mk
include plugins/cluster.mk
