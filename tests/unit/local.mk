# SPDX-License-Identifier: BSD-3-Clause
# CUnit unit tests, one program per core module; they link the core library.
if HAVE_CUNIT
UNIT_TESTS = %reldir%/test_wire %reldir%/test_router %reldir%/test_config \
	%reldir%/test_ipguard %reldir%/test_password %reldir%/test_worker \
	%reldir%/test_snapshot %reldir%/test_jsonutil %reldir%/test_log \
	%reldir%/test_counters %reldir%/test_metrics %reldir%/test_names \
	%reldir%/test_flow
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

UNIT_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(CUNIT_CFLAGS)
UNIT_LDADD = core/libhpfcore.la $(CUNIT_LIBS)

%canon_reldir%_test_wire_SOURCES = %reldir%/test_wire.c tests/common/cunit_run.h
%canon_reldir%_test_wire_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_wire_LDADD = $(UNIT_LDADD)
%canon_reldir%_test_router_SOURCES = %reldir%/test_router.c
%canon_reldir%_test_router_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_router_LDADD = $(UNIT_LDADD)
%canon_reldir%_test_config_SOURCES = %reldir%/test_config.c
%canon_reldir%_test_config_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_config_LDADD = $(UNIT_LDADD)
%canon_reldir%_test_ipguard_SOURCES = %reldir%/test_ipguard.c
%canon_reldir%_test_ipguard_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_ipguard_LDADD = $(UNIT_LDADD)
%canon_reldir%_test_password_SOURCES = %reldir%/test_password.c
%canon_reldir%_test_password_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_password_LDADD = $(UNIT_LDADD)
%canon_reldir%_test_worker_SOURCES = %reldir%/test_worker.c
%canon_reldir%_test_worker_CFLAGS = $(UNIT_CFLAGS) $(LIBEVENT_CFLAGS)
%canon_reldir%_test_worker_LDADD = $(UNIT_LDADD) $(LIBEVENT_LIBS)
%canon_reldir%_test_snapshot_SOURCES = %reldir%/test_snapshot.c
%canon_reldir%_test_snapshot_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_snapshot_LDADD = $(UNIT_LDADD)
# Units that make up a broker (connections over bufferevent pairs) need libevent.
%canon_reldir%_test_counters_SOURCES = %reldir%/test_counters.c
%canon_reldir%_test_counters_CFLAGS = $(UNIT_CFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
%canon_reldir%_test_counters_LDADD = $(UNIT_LDADD) $(LIBEVENT_LIBS)
%canon_reldir%_test_metrics_SOURCES = %reldir%/test_metrics.c
%canon_reldir%_test_metrics_CFLAGS = $(UNIT_CFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
%canon_reldir%_test_metrics_LDADD = $(UNIT_LDADD) $(LIBEVENT_LIBS)
%canon_reldir%_test_jsonutil_SOURCES = %reldir%/test_jsonutil.c
%canon_reldir%_test_jsonutil_CFLAGS = $(UNIT_CFLAGS) $(JSONGLIB_CFLAGS)
%canon_reldir%_test_jsonutil_LDADD = $(UNIT_LDADD) $(JSONGLIB_LIBS)
%canon_reldir%_test_names_SOURCES = %reldir%/test_names.c
%canon_reldir%_test_names_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_names_LDADD = $(UNIT_LDADD)
%canon_reldir%_test_log_SOURCES = %reldir%/test_log.c
%canon_reldir%_test_log_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_log_LDADD = $(UNIT_LDADD)
%canon_reldir%_test_flow_SOURCES = %reldir%/test_flow.c
%canon_reldir%_test_flow_CFLAGS = $(UNIT_CFLAGS)
%canon_reldir%_test_flow_LDADD = $(UNIT_LDADD)
include tests/unit/graph.mk
endif
