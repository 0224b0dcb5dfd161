# SPDX-License-Identifier: BSD-3-Clause
# rules for tests/integration
#
# Live-broker protocol tests: each binary starts core/hpfriendsd on
# 127.0.0.1 with a random port and talks raw hpfeeds bytes to it.  They find
# the daemon through HPF_BUILDDIR and the plugins through
# HPFRIENDS_PLUGIN_DIR (both set by AM_TESTS_ENVIRONMENT).  Run one alone:
#   HPF_BUILDDIR=$PWD HPFRIENDS_PLUGIN_DIR=$PWD/plugins/.libs \
#     ./tests/integration/t02_pubsub
# HPF_IT_KEEP=1 keeps each test's temp dir (config, db, daemon log).
# The harness is compiled into each binary so no extra library is needed.

if HAVE_CUNIT
it_cflags = $(AM_CFLAGS) $(GLIB_CFLAGS) $(OPENSSL_CFLAGS) $(SQLITE_CFLAGS) $(CUNIT_CFLAGS)
it_ldadd = $(GLIB_LIBS) $(OPENSSL_LIBS) $(SQLITE_LIBS) $(CUNIT_LIBS)
it_harness = %reldir%/harness.c %reldir%/harness.h

it_progs = \
	%reldir%/t01_handshake \
	%reldir%/t02_pubsub \
	%reldir%/t03_errors \
	%reldir%/t04_limits \
	%reldir%/t05_slow \
	%reldir%/t06_load \
	%reldir%/t07_config \
	%reldir%/t08_soak \
	%reldir%/t09_abuse \
	%reldir%/t10_shutdown \
	%reldir%/t11_hostile
check_PROGRAMS += $(it_progs)
TESTS += $(it_progs)

%canon_reldir%_t01_handshake_SOURCES = %reldir%/t01_handshake.c $(it_harness)
%canon_reldir%_t01_handshake_CFLAGS = $(it_cflags)
%canon_reldir%_t01_handshake_LDADD = $(it_ldadd)
%canon_reldir%_t02_pubsub_SOURCES = %reldir%/t02_pubsub.c $(it_harness)
%canon_reldir%_t02_pubsub_CFLAGS = $(it_cflags)
%canon_reldir%_t02_pubsub_LDADD = $(it_ldadd)
%canon_reldir%_t03_errors_SOURCES = %reldir%/t03_errors.c $(it_harness)
%canon_reldir%_t03_errors_CFLAGS = $(it_cflags)
%canon_reldir%_t03_errors_LDADD = $(it_ldadd)
%canon_reldir%_t04_limits_SOURCES = %reldir%/t04_limits.c $(it_harness)
%canon_reldir%_t04_limits_CFLAGS = $(it_cflags)
%canon_reldir%_t04_limits_LDADD = $(it_ldadd)
%canon_reldir%_t05_slow_SOURCES = %reldir%/t05_slow.c $(it_harness)
%canon_reldir%_t05_slow_CFLAGS = $(it_cflags)
%canon_reldir%_t05_slow_LDADD = $(it_ldadd)
%canon_reldir%_t06_load_SOURCES = %reldir%/t06_load.c $(it_harness)
%canon_reldir%_t06_load_CFLAGS = $(it_cflags)
%canon_reldir%_t06_load_LDADD = $(it_ldadd)
%canon_reldir%_t07_config_SOURCES = %reldir%/t07_config.c $(it_harness)
%canon_reldir%_t07_config_CFLAGS = $(it_cflags)
%canon_reldir%_t07_config_LDADD = $(it_ldadd)
# the soak test drives its 1,000 clients from one libevent loop
%canon_reldir%_t08_soak_SOURCES = %reldir%/t08_soak.c $(it_harness)
%canon_reldir%_t08_soak_CFLAGS = $(it_cflags) $(LIBEVENT_CFLAGS)
%canon_reldir%_t08_soak_LDADD = $(it_ldadd) $(LIBEVENT_LIBS)
%canon_reldir%_t09_abuse_SOURCES = %reldir%/t09_abuse.c $(it_harness)
%canon_reldir%_t09_abuse_CFLAGS = $(it_cflags)
%canon_reldir%_t09_abuse_LDADD = $(it_ldadd)
%canon_reldir%_t10_shutdown_SOURCES = %reldir%/t10_shutdown.c $(it_harness)
%canon_reldir%_t10_shutdown_CFLAGS = $(it_cflags)
%canon_reldir%_t10_shutdown_LDADD = $(it_ldadd)
%canon_reldir%_t11_hostile_SOURCES = %reldir%/t11_hostile.c $(it_harness)
%canon_reldir%_t11_hostile_CFLAGS = $(it_cflags)
%canon_reldir%_t11_hostile_LDADD = $(it_ldadd)
endif
