# SPDX-License-Identifier: BSD-3-Clause
# storage_mysql: shared storage in MariaDB or MySQL (libmariadb), beside
# hpfeeds3's auth_keys table; the graph kept in memory by the common model.
if BUILD_MYSQL
plugins_LTLIBRARIES += plugins/storage_mysql.la
plugins_storage_mysql_la_SOURCES = \
	$(STORAGE_MODEL_SOURCES) \
	$(SQL_CHANNELS_SOURCES) \
	plugins/storage_mysql/mysql_store.h \
	plugins/storage_mysql/storage_mysql.c \
	plugins/storage_mysql/uri.c \
	plugins/storage_mysql/conn.c \
	plugins/storage_mysql/schema.c \
	plugins/storage_mysql/read.c \
	plugins/storage_mysql/write.c \
	plugins/storage_mysql/audit.c
plugins_storage_mysql_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_storage_mysql_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) $(MARIADB_CFLAGS)
plugins_storage_mysql_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_storage_mysql_la_LIBADD = $(MARIADB_LIBS) $(JSONGLIB_LIBS) $(GLIB_LIBS)
endif
