# SPDX-License-Identifier: BSD-3-Clause
# storage_postgresql: shared storage for several nodes (libpq), beside
# hpfeeds3's auth_keys table; the graph kept in memory by the common model.
if BUILD_POSTGRESQL
plugins_LTLIBRARIES += plugins/storage_postgresql.la
plugins_storage_postgresql_la_SOURCES = \
	$(STORAGE_MODEL_SOURCES) \
	$(SQL_CHANNELS_SOURCES) \
	plugins/storage_postgresql/pg_store.h \
	plugins/storage_postgresql/storage_postgresql.c \
	plugins/storage_postgresql/conn.c \
	plugins/storage_postgresql/schema.c \
	plugins/storage_postgresql/read.c \
	plugins/storage_postgresql/write.c \
	plugins/storage_postgresql/batch.c \
	plugins/storage_postgresql/audit.c
plugins_storage_postgresql_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_storage_postgresql_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) \
	$(LIBPQ_CFLAGS)
plugins_storage_postgresql_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_storage_postgresql_la_LIBADD = $(LIBPQ_LIBS) $(JSONGLIB_LIBS) $(GLIB_LIBS)
endif
