# SPDX-License-Identifier: BSD-3-Clause
# rules for sdk: the hpfeeds client library and hpfeeds-cli

pkgconfig_DATA += %reldir%/hpfeeds-client.pc

# Installed as <hpfeeds-client.h>, matching Cflags: -I${includedir} in the .pc.
hpfeedsincludedir = $(includedir)
hpfeedsinclude_HEADERS = %reldir%/client/hpfeeds-client.h

# The wire codec is compiled in (not a second codec); only hpfc_* is exported.
lib_LTLIBRARIES += %reldir%/client/libhpfeeds-client.la
%canon_reldir%_client_libhpfeeds_client_la_SOURCES = \
	%reldir%/client/client.c \
	%reldir%/client/hpfeeds-client.h \
	core/wire.c \
	core/wire.h
%canon_reldir%_client_libhpfeeds_client_la_CPPFLAGS = $(AM_CPPFLAGS) \
	$(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
%canon_reldir%_client_libhpfeeds_client_la_LDFLAGS = \
	-version-info 1:0:1 -no-undefined -export-symbols-regex '^hpfc_'
%canon_reldir%_client_libhpfeeds_client_la_LIBADD = $(LIBEVENT_LIBS) $(OPENSSL_LIBS)

bin_PROGRAMS += %reldir%/cli/hpfeeds-cli
%canon_reldir%_cli_hpfeeds_cli_SOURCES = %reldir%/cli/hpfeeds-cli.c
%canon_reldir%_cli_hpfeeds_cli_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/%reldir%/client \
	$(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) $(LIBEVENT_CFLAGS)
%canon_reldir%_cli_hpfeeds_cli_LDADD = %reldir%/client/libhpfeeds-client.la \
	$(JSONGLIB_LIBS) $(GLIB_LIBS) $(LIBEVENT_LIBS)

# Plugin SDK (the headers are installed by include/local.mk): the pkg-config
# file, the guide, and the example sink, installed as a starting point.
pkgconfig_DATA += %reldir%/hpfriends-plugin.pc
sdkdocdir = $(docdir)
dist_sdkdoc_DATA = %reldir%/WRITING_PLUGINS.md
sdkexampledir = $(docdir)/example-sink
dist_sdkexample_DATA = \
	%reldir%/example-sink/example_sink.c \
	%reldir%/example-sink/Makefile
