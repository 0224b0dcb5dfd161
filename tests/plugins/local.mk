# SPDX-License-Identifier: BSD-3-Clause
# rules for tests/plugins
#
# Plugins through the real loader (core's plugin.c, host table included),
# found via HPFRIENDS_PLUGIN_DIR which AM_TESTS_ENVIRONMENT points at the
# build tree's plugins/.libs.

# A module built for the next ABI major, for the loader to refuse.
# check_LTLIBRARIES is not predeclared in the top Makefile.am.
check_LTLIBRARIES = %reldir%/abi_mismatch.la
%canon_reldir%_abi_mismatch_la_SOURCES = %reldir%/abi_mismatch.c
%canon_reldir%_abi_mismatch_la_CPPFLAGS = -I$(top_srcdir)/include
%canon_reldir%_abi_mismatch_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere \
	-export-symbols-regex '^hpf_plugin_entry$$'
# A storage plugin built for ABI 1.0 (before passwords): still loads.
check_LTLIBRARIES += %reldir%/abi_old_storage.la
%canon_reldir%_abi_old_storage_la_SOURCES = %reldir%/abi_old_storage.c
%canon_reldir%_abi_old_storage_la_CPPFLAGS = -I$(top_srcdir)/include
%canon_reldir%_abi_old_storage_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere \
	-export-symbols-regex '^hpf_plugin_entry$$'

# Built against the ABI 1.3 headers kept in abi13/ (their folder comes
# first, and include/ not at all): a sink+auth plugin as a third party
# compiled it for 1.3, and the 1.3 struct layout for test_plugin_abi to hold
# against today's headers (a libtool convenience library: no -rpath).
ABI13_CPPFLAGS = -I$(top_srcdir)/tests/plugins/abi13 -I$(top_srcdir)/tests/plugins
EXTRA_DIST += %reldir%/abi13/README %reldir%/abi13/hpfriends/plugin.h \
	%reldir%/abi13/hpfriends/sink.h %reldir%/abi13/hpfriends/auth.h
check_LTLIBRARIES += %reldir%/abi13_plugin.la
%canon_reldir%_abi13_plugin_la_SOURCES = %reldir%/abi13_plugin.c
%canon_reldir%_abi13_plugin_la_CPPFLAGS = $(ABI13_CPPFLAGS)
%canon_reldir%_abi13_plugin_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere \
	-export-symbols-regex '^hpf_plugin_entry$$'
check_LTLIBRARIES += %reldir%/libabi13_layout.la
%canon_reldir%_libabi13_layout_la_SOURCES = %reldir%/abi13_layout.c %reldir%/abi13_layout.h
%canon_reldir%_libabi13_layout_la_CPPFLAGS = $(ABI13_CPPFLAGS)

if HAVE_CUNIT
PLUGIN_TEST_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(CUNIT_CFLAGS)
PLUGIN_TEST_LDADD = core/libhpfcore.la $(GLIB_LIBS) $(CUNIT_LIBS)

check_PROGRAMS += %reldir%/test_storage_sqlite
%canon_reldir%_test_storage_sqlite_SOURCES = %reldir%/test_storage_sqlite.c \
	tests/storage/store_check.c tests/storage/store_check.h
%canon_reldir%_test_storage_sqlite_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/storage
%canon_reldir%_test_storage_sqlite_CFLAGS = $(PLUGIN_TEST_CFLAGS) $(SQLITE_CFLAGS)
%canon_reldir%_test_storage_sqlite_LDADD = $(PLUGIN_TEST_LDADD) $(SQLITE_LIBS)

check_PROGRAMS += %reldir%/test_auth_storage
%canon_reldir%_test_auth_storage_SOURCES = %reldir%/test_auth_storage.c
%canon_reldir%_test_auth_storage_CFLAGS = $(PLUGIN_TEST_CFLAGS)
%canon_reldir%_test_auth_storage_LDADD = $(PLUGIN_TEST_LDADD)

check_PROGRAMS += %reldir%/test_auth_env
%canon_reldir%_test_auth_env_SOURCES = %reldir%/test_auth_env.c
%canon_reldir%_test_auth_env_CFLAGS = $(PLUGIN_TEST_CFLAGS)
%canon_reldir%_test_auth_env_LDADD = $(PLUGIN_TEST_LDADD)

check_PROGRAMS += %reldir%/test_plugin_abi
%canon_reldir%_test_plugin_abi_SOURCES = %reldir%/test_plugin_abi.c
%canon_reldir%_test_plugin_abi_CFLAGS = $(PLUGIN_TEST_CFLAGS)
%canon_reldir%_test_plugin_abi_LDADD = %reldir%/libabi13_layout.la $(PLUGIN_TEST_LDADD)
if BUILD_NATS
%canon_reldir%_test_plugin_abi_CPPFLAGS = $(AM_CPPFLAGS) -DHPF_TEST_CLUSTER_NATS
endif

TESTS += \
	%reldir%/test_storage_sqlite \
	%reldir%/test_auth_storage \
	%reldir%/test_auth_env \
	%reldir%/test_plugin_abi
endif
