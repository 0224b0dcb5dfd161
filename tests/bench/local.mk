# SPDX-License-Identifier: BSD-3-Clause
# Benchmarks: built with the tree (noinst), never run by `make check`.
# Paths are spelled out rather than %reldir%, like other nested fragments.
noinst_PROGRAMS += tests/bench/graph-flatten-bench
tests_bench_graph_flatten_bench_SOURCES = tests/bench/graph_flatten.c
tests_bench_graph_flatten_bench_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_bench_graph_flatten_bench_LDADD = core/libhpfcore.la -lm
include tests/bench/hpfriends-bench.mk
# One node versus three over NATS (drives hpfriends-bench against running nodes).
EXTRA_DIST += tests/bench/cluster_bench.py
# hpfriendsctl import per storage backend, on generated data sets of growing size.
EXTRA_DIST += tests/bench/import_bench.py
# Messages per second from the broker into each networked sink's server.
EXTRA_DIST += tests/bench/sink_bench.py
