# SPDX-License-Identifier: BSD-3-Clause
# sink_syslog: local socket, UDP or TCP; libc only.
plugins_LTLIBRARIES += plugins/sink_syslog.la
plugins_sink_syslog_la_SOURCES = plugins/sink_syslog/sink_syslog.c
plugins_sink_syslog_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_sink_syslog_la_LDFLAGS = $(PLUGIN_LDFLAGS)
