# SPDX-License-Identifier: BSD-3-Clause
# rules for tests/storage: one storage contract, three backends.
#
# test_backends runs the same conformance cases against storage_sqlite,
# storage_file and storage_mongodb (the last also with transactions forced),
# then each backend's own cases.  The MongoDB cases need a MongoDB-wire
# server: the test starts tests/mongo/server.mjs (CongoDB, under node)
# itself, after tests/mongo/setup.sh has installed its npm packages; when
# that cannot start, those cases fail.  The PostgreSQL cases (BUILD_POSTGRESQL)
# start a private server with tests/pg/pg-server.sh (Debian's postgresql)
# and fail when it cannot start.

EXTRA_DIST += \
	tests/mongo/package.json \
	tests/mongo/package-lock.json \
	tests/mongo/server.mjs \
	tests/mongo/setup.sh \
	tests/mongo/mongo-server.sh \
	tests/pg/pg-server.sh \
	tests/mysql/mysql-server.sh

if HAVE_CUNIT
check_PROGRAMS += tests/storage/test_backends
tests_storage_test_backends_SOURCES = tests/storage/test_backends.c \
	tests/storage/store_check.c tests/storage/store_check.h
tests_storage_test_backends_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONGLIB_CFLAGS) \
	$(SQLITE_CFLAGS) $(CUNIT_CFLAGS)
tests_storage_test_backends_LDADD = core/libhpfcore.la $(JSONGLIB_LIBS) $(GLIB_LIBS) \
	$(SQLITE_LIBS) $(CUNIT_LIBS)
if BUILD_MONGODB
tests_storage_test_backends_SOURCES += tests/mongo/mongo_server.c tests/mongo/mongo_server.h
tests_storage_test_backends_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/mongo \
	-DHPF_TEST_MONGODB=1
tests_storage_test_backends_CFLAGS += $(MONGOC_CFLAGS)
tests_storage_test_backends_LDADD += $(MONGOC_LIBS)
endif
if BUILD_POSTGRESQL
tests_storage_test_backends_SOURCES += tests/storage/pg_backend.c tests/storage/pg_backend.h
tests_storage_test_backends_CFLAGS += $(LIBPQ_CFLAGS) -DHPF_TEST_POSTGRESQL=1
tests_storage_test_backends_LDADD += $(LIBPQ_LIBS)
endif
if BUILD_MYSQL
tests_storage_test_backends_SOURCES += tests/storage/mysql_backend.c tests/storage/mysql_backend.h
tests_storage_test_backends_CFLAGS += -DHPF_TEST_MYSQL=1 $(MARIADB_CFLAGS)
tests_storage_test_backends_LDADD += $(MARIADB_LIBS)
endif
TESTS += tests/storage/test_backends
endif
