# SPDX-License-Identifier: BSD-3-Clause
# sink_mqtt: messages to an MQTT broker through libmosquitto; built only when
# configure finds libmosquitto.  Links json-glib (the normalized format), so
# it stays mapped once loaded (see plugins/local.mk).
if BUILD_SINK_MQTT
plugins_LTLIBRARIES += plugins/sink_mqtt.la
plugins_sink_mqtt_la_SOURCES = plugins/sink_mqtt/sink_mqtt.c $(SINK_FORMAT_SOURCES)
plugins_sink_mqtt_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_sink_mqtt_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) $(MOSQUITTO_CFLAGS)
plugins_sink_mqtt_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_sink_mqtt_la_LIBADD = $(MOSQUITTO_LIBS) $(JSONGLIB_LIBS) $(GLIB_LIBS)
endif
