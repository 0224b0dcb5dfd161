# SPDX-License-Identifier: BSD-3-Clause
# sink_redis: messages to Redis streams through hiredis; built only when
# configure finds hiredis.  Links json-glib (the normalized format), so it
# stays mapped once loaded (see plugins/local.mk).
if BUILD_SINK_REDIS
plugins_LTLIBRARIES += plugins/sink_redis.la
plugins_sink_redis_la_SOURCES = plugins/sink_redis/sink_redis.c $(SINK_FORMAT_SOURCES)
plugins_sink_redis_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_sink_redis_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) $(HIREDIS_CFLAGS)
plugins_sink_redis_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_sink_redis_la_LIBADD = $(HIREDIS_LIBS) $(JSONGLIB_LIBS) $(GLIB_LIBS)
endif
