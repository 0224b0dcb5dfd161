# SPDX-License-Identifier: BSD-3-Clause
# The daemon: everything but main.c lives in a convenience library that the
# unit tests link too.  core/web/ is the console (served by the daemon
# itself), core/ctl/ the admin tool hpfriendsctl; both drive storage through
# admin.c.  Export/import (core/ctl/export.c) sits in the library so that
# the fuzzers and tests reach it.
noinst_LTLIBRARIES += %reldir%/libhpfcore.la
%canon_reldir%_libhpfcore_la_SOURCES = \
	%reldir%/wire.c %reldir%/wire.h \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/config.c %reldir%/config.h \
	%reldir%/flags.c \
	%reldir%/loader.c %reldir%/loader.h \
	%reldir%/worker.c %reldir%/worker.h \
	%reldir%/router.c %reldir%/router.h \
	%reldir%/snapshot.c %reldir%/snapshot.h \
	%reldir%/graph.c %reldir%/graph.h \
	%reldir%/reload.c \
	%reldir%/sinks.c %reldir%/sinks.h \
	%reldir%/cluster.c %reldir%/cluster.h \
	%reldir%/metrics.c %reldir%/metrics.h \
	%reldir%/tls.c %reldir%/tls.h \
	%reldir%/ipguard.c %reldir%/ipguard.h \
	%reldir%/admin.c %reldir%/admin.h \
	%reldir%/admin_audit.c \
	%reldir%/jsonutil.c %reldir%/jsonutil.h \
	%reldir%/password.c %reldir%/password.h \
	%reldir%/wire_str.h \
	%reldir%/accept.c %reldir%/accept.h \
	%reldir%/broker.c %reldir%/broker.h \
	%reldir%/service.c %reldir%/service.h \
	%reldir%/conn.c \
	%reldir%/output.c \
	%reldir%/counters.c %reldir%/counters.h \
	%reldir%/flow.c %reldir%/flow.h \
	%reldir%/handle_auth.c \
	%reldir%/handle_publish.c \
	%reldir%/handle_subscribe.c \
	%reldir%/web/web.h %reldir%/web/internal.h \
	%reldir%/web/config.c \
	%reldir%/web/server.c \
	%reldir%/web/session.c \
	%reldir%/web/api.c \
	%reldir%/web/api_logs.c \
	%reldir%/web/api_admin.c \
	%reldir%/ctl/export.c
%canon_reldir%_libhpfcore_la_CPPFLAGS = $(AM_CPPFLAGS) -DHPF_PLUGINDIR='"$(pluginsdir)"' \
	-DHPF_WEBDIR='"$(pkgdatadir)/web"'
%canon_reldir%_libhpfcore_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS) $(SYSTEMD_CFLAGS)
%canon_reldir%_libhpfcore_la_LIBADD = $(JSONGLIB_LIBS) $(GLIB_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) \
	$(SYSTEMD_LIBS)

sbin_PROGRAMS += %reldir%/hpfriendsd
%canon_reldir%_hpfriendsd_SOURCES = %reldir%/main.c
%canon_reldir%_hpfriendsd_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(LIBEVENT_CFLAGS)
%canon_reldir%_hpfriendsd_LDADD = %reldir%/libhpfcore.la
# --list-config-keys: what the parsers and the plugins accept (doc checks).
%canon_reldir%_hpfriendsd_SOURCES += %reldir%/keys.c %reldir%/keys.h

bin_PROGRAMS += %reldir%/hpfriendsctl
%canon_reldir%_hpfriendsctl_SOURCES = %reldir%/ctl/ctl.c
%canon_reldir%_hpfriendsctl_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
%canon_reldir%_hpfriendsctl_LDADD = %reldir%/libhpfcore.la
