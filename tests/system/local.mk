# SPDX-License-Identifier: BSD-3-Clause
# rules for tests/system: the real hpfriendsd and hpfriendsctl end to end,
# driven by Python 3 scripts (standard library only) that share hpftest.py
# and the interop client tests/interop/hpfeeds_py.py.  test_ctl.py needs
# Graphviz's dot on PATH (it fails, not skips, without it).
#
# test_manpages lints the man pages built from doc/*.scd with mandoc and
# checks that every key `hpfriendsd --list-config-keys` reports is in
# hpfriendsd.conf(5) and conf/hpfriendsd.conf.
#
# test_kill_import (sqlite and file only) SIGKILLs hpfriendsctl import at
# the storage plugins' test-only crash points (plugins/common/crash_point.h) and
# at delays, and checks the previous state survives intact.
#
# test_service (user switch, pid file; the user switch needs root, else it
# reports SKIP), test_sd_notify (the runner plays systemd's notify socket)
# and test_units (systemd-analyze verify/security on the generated units,
# the installed sample config) check hpfriendsd as a system service.
#
# The behavioural runners (graph, live reload, hpfriendsctl, counters) run
# once per storage backend: test_NAME-BACKEND.test runs test_NAME.py
# --backend BACKEND, so `make check` lists each pair on its own.  The
# mongodb ones, and the runners that need MongoDB (MHN data, round trip
# between the three backends, outage), start their own MongoDB-wire test
# server (tests/mongo/server.mjs under node, after tests/mongo/setup.sh);
# they exist only when the mongodb plugin is built (BUILD_MONGODB), and fail,
# never skip, when node or the server is missing.  Likewise the postgresql
# ones (BUILD_POSTGRESQL) and the PostgreSQL runners (outage, hpfeeds3's
# auth_keys) start a private PostgreSQL with tests/pg/pg-server.sh; the
# round trip between all four backends needs both plugins.  The mysql ones
# (BUILD_MYSQL) start a private MariaDB (tests/mysql/mysql-server.sh);
# test_roundtrip-mysql adds mysql to that round trip.

%canon_reldir%_scripts = \
	%reldir%/test_graph_e2e.py \
	%reldir%/test_live_reload.py \
	%reldir%/test_ctl.py \
	%reldir%/test_counters.py \
	%reldir%/test_hpfeeds3_db.py \
	%reldir%/test_hpfeeds3_json.py \
	%reldir%/test_mhn_mongodb.py \
	%reldir%/test_roundtrip.py \
	%reldir%/test_mongo_outage.py \
	%reldir%/test_pg_outage.py \
	%reldir%/test_pg_hpfeeds3.py \
	%reldir%/test_mysql_outage.py \
	%reldir%/test_hpfeeds3_mysql.py \
	%reldir%/test_kill_import.py \
	%reldir%/test_license.py \
	%reldir%/test_manpages.py \
	%reldir%/test_service.py \
	%reldir%/test_sd_notify.py \
	%reldir%/test_units.py

EXTRA_DIST += %reldir%/hpftest.py %reldir%/hp3common.py %reldir%/mongowire.py \
	$(%canon_reldir%_scripts)

# One generated wrapper per (script, backend), so nothing depends on the
# executable bit of a file in the source tree (or on a writable srcdir).
# The longest first: the parallel harness starts them in this order.
%canon_reldir%_wrappers =
if BUILD_MONGODB
%canon_reldir%_wrappers += \
	%reldir%/test_ctl-mongodb.test \
	%reldir%/test_mongo_outage.test \
	%reldir%/test_graph_e2e-mongodb.test \
	%reldir%/test_live_reload-mongodb.test \
	%reldir%/test_counters-mongodb.test \
	%reldir%/test_mhn_mongodb.test
endif
if BUILD_POSTGRESQL
if BUILD_MONGODB
%canon_reldir%_wrappers += %reldir%/test_roundtrip.test
endif
%canon_reldir%_wrappers += \
	%reldir%/test_ctl-postgresql.test \
	%reldir%/test_pg_outage.test \
	%reldir%/test_graph_e2e-postgresql.test \
	%reldir%/test_live_reload-postgresql.test \
	%reldir%/test_counters-postgresql.test \
	%reldir%/test_pg_hpfeeds3.test
endif
if BUILD_MYSQL
%canon_reldir%_wrappers += \
	%reldir%/test_mysql_outage.test \
	%reldir%/test_ctl-mysql.test \
	%reldir%/test_graph_e2e-mysql.test \
	%reldir%/test_live_reload-mysql.test \
	%reldir%/test_counters-mysql.test \
	%reldir%/test_hpfeeds3_mysql.test
if BUILD_MONGODB
if BUILD_POSTGRESQL
%canon_reldir%_wrappers += %reldir%/test_roundtrip-mysql.test
endif
endif
endif
%canon_reldir%_wrappers += \
	%reldir%/test_kill_import-file.test \
	%reldir%/test_kill_import-sqlite.test \
	%reldir%/test_ctl-sqlite.test \
	%reldir%/test_ctl-file.test \
	%reldir%/test_graph_e2e-sqlite.test \
	%reldir%/test_graph_e2e-file.test \
	%reldir%/test_live_reload-sqlite.test \
	%reldir%/test_live_reload-file.test \
	%reldir%/test_counters-sqlite.test \
	%reldir%/test_counters-file.test \
	%reldir%/test_hpfeeds3_db.test \
	%reldir%/test_hpfeeds3_json.test \
	%reldir%/test_license.test \
	%reldir%/test_manpages.test \
	%reldir%/test_service.test \
	%reldir%/test_units.test
# sd_notify only exists with libsystemd (configure --with-systemd).
if HAVE_SYSTEMD
%canon_reldir%_wrappers += %reldir%/test_sd_notify.test
endif

TESTS += $(%canon_reldir%_wrappers)
CLEANFILES += $(%canon_reldir%_wrappers)

# test_NAME-BACKEND.test: test_NAME.py --backend BACKEND; test_NAME.test:
# test_NAME.py as it is.
$(%canon_reldir%_wrappers): %reldir%/local.mk
	$(AM_V_GEN)$(MKDIR_P) $(@D) && \
	base=`basename $@ .test` && \
	case $$base in \
	  *-sqlite|*-file|*-mongodb|*-postgresql|*-mysql) \
	    script=`echo $$base | sed 's/-[a-z]*$$//'`.py; \
	    args=" --backend `echo $$base | sed 's/^.*-//'`";; \
	  *) script=$$base.py; args="";; \
	esac && \
	{ echo '#!/bin/sh'; \
	  echo '# generated by %reldir%/local.mk'; \
	  echo "exec /usr/bin/env python3 \"$(abs_top_srcdir)/%reldir%/$$script\"$$args \"\$$@\""; \
	} > $@.tmp && chmod +x $@.tmp && mv -f $@.tmp $@
