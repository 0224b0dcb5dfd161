# rules for the storage backends beside SQLite: storage_file and
# storage_mongodb (included from plugins/local.mk; paths written out).
#
# Both share plugins/storage_file/model.c, the in-memory data model that
# carries storage_sqlite's apply() rules; each module gets its own copy.
# Both link json-glib or libmongoc, which cannot be unloaded and loaded
# again in one process (GType registrations, libmongoc's global init), so
# the modules stay mapped once loaded (-z nodelete), as storage_sqlite does.

STORAGE_MODEL_SOURCES = \
	$(MUTATION_CHECK_SOURCES) \
	plugins/storage_file/model.h \
	plugins/storage_file/model.c

plugins_LTLIBRARIES += plugins/storage_file.la
plugins_storage_file_la_SOURCES = \
	$(STORAGE_MODEL_SOURCES) \
	plugins/crash_point.h \
	plugins/storage_file/file_store.h \
	plugins/storage_file/jsonfile.c \
	plugins/storage_file/storage_file.c
plugins_storage_file_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_storage_file_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS)
plugins_storage_file_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_storage_file_la_LIBADD = $(JSONGLIB_LIBS) $(GLIB_LIBS)

if BUILD_MONGODB
plugins_LTLIBRARIES += plugins/storage_mongodb.la
plugins_storage_mongodb_la_SOURCES = \
	$(STORAGE_MODEL_SOURCES) \
	plugins/storage_mongodb/mongo_store.h \
	plugins/storage_mongodb/storage_mongodb.c \
	plugins/storage_mongodb/read.c \
	plugins/storage_mongodb/write.c
plugins_storage_mongodb_la_CPPFLAGS = $(PLUGIN_CPPFLAGS) -I$(top_srcdir)/plugins/storage_file
plugins_storage_mongodb_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(MONGOC_CFLAGS)
plugins_storage_mongodb_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_storage_mongodb_la_LIBADD = $(MONGOC_LIBS) $(GLIB_LIBS)
endif
