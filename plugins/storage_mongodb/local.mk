# SPDX-License-Identifier: BSD-3-Clause
# storage_mongodb: shared storage for several nodes (libmongoc), the graph
# kept in memory by the common model.
if BUILD_MONGODB
plugins_LTLIBRARIES += plugins/storage_mongodb.la
plugins_storage_mongodb_la_SOURCES = \
	$(STORAGE_MODEL_SOURCES) \
	plugins/storage_mongodb/mongo_store.h \
	plugins/storage_mongodb/storage_mongodb.c \
	plugins/storage_mongodb/read.c \
	plugins/storage_mongodb/write.c \
	plugins/storage_mongodb/audit.c
plugins_storage_mongodb_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_storage_mongodb_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(MONGOC_CFLAGS)
plugins_storage_mongodb_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_storage_mongodb_la_LIBADD = $(MONGOC_LIBS) $(GLIB_LIBS)
endif
