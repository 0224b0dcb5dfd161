# rules for the sink plugins (included from plugins/local.mk, which defines
# PLUGIN_CPPFLAGS and PLUGIN_LDFLAGS)

# JSON Lines file sink.  json-glib registers GObject types that cannot be
# unregistered, so the module stays mapped once loaded (-z nodelete).
plugins_LTLIBRARIES += plugins/sink_file.la
plugins_sink_file_la_SOURCES = plugins/sink_file/sink_file.c
plugins_sink_file_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_sink_file_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS)
plugins_sink_file_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_sink_file_la_LIBADD = $(JSONGLIB_LIBS) $(GLIB_LIBS)

# Syslog sink: local socket, UDP or TCP; libc only.
plugins_LTLIBRARIES += plugins/sink_syslog.la
plugins_sink_syslog_la_SOURCES = plugins/sink_syslog/sink_syslog.c
plugins_sink_syslog_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_sink_syslog_la_LDFLAGS = $(PLUGIN_LDFLAGS)
