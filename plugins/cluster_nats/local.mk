# SPDX-License-Identifier: BSD-3-Clause
# cluster_nats: several nodes as one broker over NATS (libnats).  It links
# OpenSSL itself only to work around libnats's teardown (see destroy() in
# cluster_nats.c).
if BUILD_NATS
plugins_LTLIBRARIES += plugins/cluster_nats.la
plugins_cluster_nats_la_SOURCES = plugins/cluster_nats/cluster_nats.c \
	plugins/cluster_nats/codec.h plugins/cluster_nats/codec.c
plugins_cluster_nats_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_cluster_nats_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(NATS_CFLAGS) $(OPENSSL_CFLAGS)
plugins_cluster_nats_la_LDFLAGS = $(PLUGIN_LDFLAGS) -Wl,-z,nodelete
plugins_cluster_nats_la_LIBADD = $(NATS_LIBS) $(GLIB_LIBS) $(OPENSSL_LIBS)
endif
