# SPDX-License-Identifier: BSD-3-Clause
# sink_http: batched POSTs through libcurl (ndjson, Elasticsearch bulk,
# Splunk HEC); built only when configure finds libcurl.  Links json-glib
# (the normalized format), so it stays mapped once loaded (see
# plugins/local.mk).
if BUILD_SINK_HTTP
plugins_LTLIBRARIES += plugins/sink_http.la
plugins_sink_http_la_SOURCES = plugins/sink_http/sink_http.c $(SINK_FORMAT_SOURCES)
plugins_sink_http_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_sink_http_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) $(LIBCURL_CFLAGS)
plugins_sink_http_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_sink_http_la_LIBADD = $(LIBCURL_LIBS) $(JSONGLIB_LIBS) $(GLIB_LIBS)
endif
