# SPDX-License-Identifier: BSD-3-Clause
# rules for tests/fuzz: libFuzzer targets, their corpora, the corpus replayer
#
# `make fuzz [FUZZ_SECONDS=60]` runs tests/fuzz/run-fuzzers.sh, which
# configures a separate clang build (ASan + UBSan + libFuzzer coverage) in
# $(abs_top_builddir)/build-fuzz, builds the targets there with
# `make fuzz-programs`, and runs each for FUZZ_SECONDS on a copy of its
# corpus in tests/fuzz/corpus/<target>/.  The header of run-fuzzers.sh
# says more.  The targets are EXTRA_PROGRAMS: rules only, never built by
# `make` or `make check` (they need clang's -fsanitize=fuzzer).
#
# tests/fuzz/regressions is an ordinary check program: it replays the wire,
# config, console, nats_codec and (with libmongoc) mongo_read corpora
# through the same target code, in this (any-compiler) build.

FUZZ_SECONDS = 60

EXTRA_PROGRAMS = \
	tests/fuzz/fuzz_wire \
	tests/fuzz/fuzz_session \
	tests/fuzz/fuzz_config \
	tests/fuzz/fuzz_import \
	tests/fuzz/fuzz_file_storage \
	tests/fuzz/fuzz_console \
	tests/fuzz/fuzz_nats_codec

# The plugins the targets load (HPFRIENDS_PLUGIN_DIR defaults to this
# build's plugins/.libs, compiled in).
FUZZ_PLUGINS = plugins/storage_sqlite.la plugins/auth_storage.la plugins/storage_file.la

FUZZ_COMMON = tests/fuzz/fuzz_common.c tests/fuzz/fuzz_common.h
FUZZ_CPP_FLAGS = $(AM_CPPFLAGS) -DFUZZ_PLUGIN_DIR='"$(abs_top_builddir)/plugins/.libs"'
FUZZ_C_FLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
# libFuzzer's main(), in these programs only.
FUZZ_LINK_FLAGS = -fsanitize=fuzzer
FUZZ_LIBS = core/libhpfcore.la $(GLIB_LIBS)

tests_fuzz_fuzz_wire_SOURCES = tests/fuzz/fuzz_wire.c $(FUZZ_COMMON)
tests_fuzz_fuzz_wire_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_wire_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_wire_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_wire_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_session_SOURCES = tests/fuzz/fuzz_session.c $(FUZZ_COMMON)
tests_fuzz_fuzz_session_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_session_CFLAGS = $(FUZZ_C_FLAGS) $(SQLITE_CFLAGS)
tests_fuzz_fuzz_session_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_session_LDADD = $(FUZZ_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(SQLITE_LIBS)

tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c $(FUZZ_COMMON)
tests_fuzz_fuzz_config_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_config_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_config_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_config_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_import_SOURCES = tests/fuzz/fuzz_import.c $(FUZZ_COMMON)
tests_fuzz_fuzz_import_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_import_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_import_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_import_LDADD = $(FUZZ_LIBS) $(JSONGLIB_LIBS)

tests_fuzz_fuzz_file_storage_SOURCES = tests/fuzz/fuzz_file_storage.c $(FUZZ_COMMON)
tests_fuzz_fuzz_file_storage_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_file_storage_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_file_storage_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_file_storage_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_console_SOURCES = tests/fuzz/fuzz_console.c $(FUZZ_COMMON)
tests_fuzz_fuzz_console_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_console_CFLAGS = $(FUZZ_C_FLAGS) $(SQLITE_CFLAGS)
tests_fuzz_fuzz_console_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_console_LDADD = $(FUZZ_LIBS) $(JSONGLIB_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) \
	$(SQLITE_LIBS)

# cluster_nats's pure codec only: no libnats, built whether or not the plugin is.
tests_fuzz_fuzz_nats_codec_SOURCES = tests/fuzz/fuzz_nats_codec.c \
	plugins/cluster_nats/codec.c plugins/cluster_nats/codec.h $(FUZZ_COMMON)
tests_fuzz_fuzz_nats_codec_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_nats_codec_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_nats_codec_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_nats_codec_LDADD = $(FUZZ_LIBS)

# storage_mongodb's readers, compiled in (fuzz_mongo_read.c includes read.c);
# only where libmongoc is (configure's BUILD_MONGODB).
if BUILD_MONGODB
EXTRA_PROGRAMS += tests/fuzz/fuzz_mongo_read
endif
FUZZ_MONGO_SOURCES = $(STORAGE_MODEL_SOURCES) plugins/storage_mongodb/mongo_store.h \
	plugins/storage_mongodb/storage_mongodb.c plugins/storage_mongodb/write.c \
	plugins/storage_mongodb/audit.c
tests_fuzz_fuzz_mongo_read_SOURCES = tests/fuzz/fuzz_mongo_read.c $(FUZZ_MONGO_SOURCES) \
	$(FUZZ_COMMON)
EXTRA_tests_fuzz_fuzz_mongo_read_SOURCES = plugins/storage_mongodb/read.c
tests_fuzz_fuzz_mongo_read_CPPFLAGS = $(FUZZ_CPP_FLAGS) $(PLUGIN_CPPFLAGS)
tests_fuzz_fuzz_mongo_read_CFLAGS = $(FUZZ_C_FLAGS) $(MONGOC_CFLAGS)
tests_fuzz_fuzz_mongo_read_LDFLAGS = $(FUZZ_LINK_FLAGS)
tests_fuzz_fuzz_mongo_read_LDADD = $(FUZZ_LIBS) $(MONGOC_LIBS)

# What run-fuzzers.sh builds in the clang tree.
fuzz-programs: $(EXTRA_PROGRAMS) $(FUZZ_PLUGINS)

fuzz:
	HPF_FUZZ_BUILDDIR='$(abs_top_builddir)/build-fuzz' \
	  bash '$(abs_top_srcdir)/tests/fuzz/run-fuzzers.sh' '$(FUZZ_SECONDS)'

# `make fuzz-long [FUZZ_RUNS=10000000]`: every target for FUZZ_RUNS
# executions (libFuzzer -runs=), one after the other, reporting executions,
# coverage (cov) and features (ft) per target; what it finds is merged into
# the committed corpora (HPF_FUZZ_MERGE=1).
FUZZ_RUNS = 10000000

fuzz-long:
	HPF_FUZZ_BUILDDIR='$(abs_top_builddir)/build-fuzz' HPF_FUZZ_RUNS='$(FUZZ_RUNS)' \
	  HPF_FUZZ_MERGE=1 bash '$(abs_top_srcdir)/tests/fuzz/run-fuzzers.sh'

.PHONY: fuzz fuzz-long fuzz-programs

EXTRA_DIST += tests/fuzz/run-fuzzers.sh tests/fuzz/ci.sh tests/fuzz/corpus

if HAVE_CUNIT
check_PROGRAMS += tests/fuzz/regressions
TESTS += tests/fuzz/regressions
tests_fuzz_regressions_SOURCES = tests/fuzz/regressions.c tests/fuzz/fuzz_wire.c \
	tests/fuzz/fuzz_config.c tests/fuzz/fuzz_console.c tests/fuzz/fuzz_nats_codec.c \
	plugins/cluster_nats/codec.c $(FUZZ_COMMON) tests/common/cunit_run.h
tests_fuzz_regressions_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_REPLAY \
	-DFUZZ_SRCDIR='"$(abs_top_srcdir)"' \
	-DFUZZ_PLUGIN_DIR='"$(abs_top_builddir)/plugins/.libs"'
tests_fuzz_regressions_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS) $(SQLITE_CFLAGS) $(CUNIT_CFLAGS)
tests_fuzz_regressions_LDADD = core/libhpfcore.la $(GLIB_LIBS) $(JSONGLIB_LIBS) \
	$(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(SQLITE_LIBS) $(CUNIT_LIBS)
if BUILD_MONGODB
tests_fuzz_regressions_SOURCES += tests/fuzz/fuzz_mongo_read.c $(FUZZ_MONGO_SOURCES)
tests_fuzz_regressions_CPPFLAGS += $(PLUGIN_CPPFLAGS) -DFUZZ_HAVE_MONGO
tests_fuzz_regressions_CFLAGS += $(MONGOC_CFLAGS)
tests_fuzz_regressions_LDADD += $(MONGOC_LIBS)
endif
endif
