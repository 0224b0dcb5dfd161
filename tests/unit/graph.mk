# SPDX-License-Identifier: BSD-3-Clause
# The graph flattener's unit and property tests.  Included from
# tests/unit/local.mk, so paths are spelled out rather than %reldir%.
if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_graph
TESTS += tests/unit/test_graph

tests_unit_test_graph_SOURCES = tests/unit/test_graph.c tests/common/cunit_run.h
tests_unit_test_graph_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_graph_LDADD = core/libhpfcore.la $(CUNIT_LIBS)
endif
