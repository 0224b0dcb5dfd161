# SPDX-License-Identifier: BSD-3-Clause
# sink_file: JSON Lines file sink; GLib only (UTF-8 checks, base64, strings).
# Its JSON writer is its own (the comment above json_string() says why).
plugins_LTLIBRARIES += plugins/sink_file.la
plugins_sink_file_la_SOURCES = plugins/sink_file/sink_file.c
plugins_sink_file_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_sink_file_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
plugins_sink_file_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_sink_file_la_LIBADD = $(GLIB_LIBS)
