# SPDX-License-Identifier: BSD-3-Clause
# hpfriends-bench: a libevent load generator that starts hpfriendsd and runs
# named scenarios (see the header of hpfriends_bench.c).  Built with the tree
# (noinst), never run by `make check`.  Paths are spelled out, as in the
# other nested fragments.
noinst_PROGRAMS += tests/bench/hpfriends-bench
tests_bench_hpfriends_bench_SOURCES = \
	tests/bench/hpfriends_bench.c \
	tests/bench/bench_common.h \
	tests/bench/bench_broker.c \
	tests/bench/bench_relay.c \
	tests/bench/bench_run.c \
	tests/bench/bench_report.c
tests_bench_hpfriends_bench_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(SQLITE_CFLAGS)
# Only the wire codec is taken from the core library.
tests_bench_hpfriends_bench_LDADD = core/libhpfcore.la $(JSONGLIB_LIBS) $(GLIB_LIBS) \
	$(LIBEVENT_LIBS) $(SQLITE_LIBS) $(OPENSSL_LIBS)
