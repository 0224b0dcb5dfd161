# SPDX-License-Identifier: BSD-3-Clause
# storage_sqlite: the embedded default storage (one SQLite file).
plugins_LTLIBRARIES += plugins/storage_sqlite.la
plugins_storage_sqlite_la_SOURCES = \
	$(MUTATION_CHECK_SOURCES) \
	$(CRASH_POINT_SOURCES) \
	$(SQL_CHANNELS_SOURCES) \
	plugins/storage_sqlite/sqlite_store.h \
	plugins/storage_sqlite/storage_sqlite.c \
	plugins/storage_sqlite/schema.c \
	plugins/storage_sqlite/ops.c \
	plugins/storage_sqlite/apply.c \
	plugins/storage_sqlite/audit.c
plugins_storage_sqlite_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_storage_sqlite_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) $(SQLITE_CFLAGS)
plugins_storage_sqlite_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_storage_sqlite_la_LIBADD = $(JSONGLIB_LIBS) $(GLIB_LIBS) $(SQLITE_LIBS)
