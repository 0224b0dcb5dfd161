# SPDX-License-Identifier: BSD-3-Clause
# storage_file: the whole graph in memory, saved as hpfeeds3-style JSON files.
plugins_LTLIBRARIES += plugins/storage_file.la
plugins_storage_file_la_SOURCES = \
	$(STORAGE_MODEL_SOURCES) \
	$(CRASH_POINT_SOURCES) \
	plugins/common/json_nul.h \
	plugins/storage_file/file_store.h \
	plugins/storage_file/jsonfile.c \
	plugins/storage_file/storage_file.c \
	plugins/storage_file/audit.c
plugins_storage_file_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_storage_file_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS)
plugins_storage_file_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_storage_file_la_LIBADD = $(JSONGLIB_LIBS) $(GLIB_LIBS)
