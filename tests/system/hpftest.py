# SPDX-License-Identifier: BSD-3-Clause
"""Shared helpers for the system tests: a real hpfriendsd in a temporary
directory, hpfriendsctl runs, hpfeeds client connections, and a small check
recorder that prints one line per check and a final "N passed, M failed".

Storage backend: every config written with write_config() (so every broker
and hpfriendsctl run a runner starts with it) uses the backend chosen by the
command-line argument `--backend sqlite|file|mongodb|postgresql|mysql`, else
by the environment variable HPF_TEST_BACKEND, else sqlite.  For mongodb the
runner starts ONE MongoDB-wire test server (tests/mongo/server.mjs, CongoDB, in
memory) on a random port the first time a config needs it, and stops it when
the runner ends, whatever happened; each config directory gets a database
of its own on it, so tests never see each other's data.  A missing node, a
server that does not start: failed checks, never a skip.  For postgresql
likewise ONE private PostgreSQL server (tests/pg/pg-server.sh: Debian's
postgresql, a temporary cluster, run as a non-root user when the runner is
root), with a database per config directory.  For mysql the same holds
with a private MariaDB server (tests/mysql/mysql-server.sh: a data directory
in the runner's temporary directory, a free port).

Environment (all optional; `make check` sets the first three):
  HPF_BUILDDIR           top build directory (default: the current directory)
  HPF_SRCDIR             top source directory (default: derived from this file)
  HPFRIENDS_PLUGIN_DIR   plugin directory (default: $HPF_BUILDDIR/plugins/.libs)
  HPFRIENDSD, HPFRIENDSCTL   override the two programs' paths
  HPF_TEST_BACKEND       sqlite (default), file, mongodb, postgresql or mysql
  HPF_NODE (or NODE)     node for the MongoDB-wire test server (default: node on PATH)
  HPF_KEEP_TMP=1         keep the temporary directory even when all passed

Waiting is always bounded: every loop has a deadline, and short sleeps only
pace a poll, they never stand in for a check.
"""

import atexit
import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("HPF_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("HPF_BUILDDIR") or os.getcwd()
DAEMON = os.environ.get("HPFRIENDSD") or os.path.join(BUILDDIR, "core", "hpfriendsd")
CTL = os.environ.get("HPFRIENDSCTL") or os.path.join(BUILDDIR, "core", "hpfriendsctl")
if not os.environ.get("HPFRIENDS_PLUGIN_DIR"):
    os.environ["HPFRIENDS_PLUGIN_DIR"] = os.path.join(BUILDDIR, "plugins", ".libs")

# The independent stdlib client written for the interop tests.
sys.path.insert(0, os.path.join(SRCDIR, "tests", "interop"))
try:
    import hpfeeds_py as hp  # noqa: E402
    from ports import free_port  # noqa: E402,F401  (for the tests)
except ImportError as _e:  # keep the one-line-per-check output contract
    print("FAIL - import the hpfeeds client tests/interop/hpfeeds_py.py (HPF_SRCDIR=%s): %s"
          % (SRCDIR, _e))
    print("0 passed, 1 failed")
    sys.exit(1)

BACKENDS = ("sqlite", "file", "mongodb", "postgresql")
# Backends a runner takes with --backend beyond those (plugins configure may leave out).
EXTRA_BACKENDS = ("mysql",)


def _backend_from_argv():
    """--backend X (or --backend=X) from the command line, removed from
    sys.argv; else HPF_TEST_BACKEND; else sqlite."""
    chosen = os.environ.get("HPF_TEST_BACKEND") or "sqlite"
    argv = sys.argv[:1]
    it = iter(sys.argv[1:])
    for a in it:
        if a == "--backend":
            chosen = next(it, "")
        elif a.startswith("--backend="):
            chosen = a.split("=", 1)[1]
        else:
            argv.append(a)
    sys.argv[:] = argv
    return chosen


BACKEND = _backend_from_argv()
if BACKEND not in BACKENDS + EXTRA_BACKENDS:
    print("FAIL - storage backend %r: want one of %s (--backend or HPF_TEST_BACKEND)"
          % (BACKEND, ", ".join(BACKENDS + EXTRA_BACKENDS)))
    print("0 passed, 1 failed")
    sys.exit(1)

HOST = "127.0.0.1"
READY_TIMEOUT = 15.0     # broker start to ready file
STOP_TIMEOUT = 15.0      # SIGTERM to exit
CTL_TIMEOUT = 30.0       # one hpfriendsctl run
IO_TIMEOUT = 5.0         # one expected frame
MONGO_READY_TIMEOUT = 15.0  # node server.mjs to "ready PORT"
MYSQL_START_TIMEOUT = 120.0  # mysql-server.sh start (a first start installs a data directory)
SYNC_PREFIX = b"\x00hpftest-sync:"


class CheckFailed(Exception):
    """A step a check depends on did not happen."""


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


# ---------------------------------------------------------------- recorder

class Runner:
    """Collects checks.  check() prints "ok - NAME" or "FAIL - NAME: why";
    section() runs a group of checks and turns an unexpected exception into
    one failed check, so one broken step does not hide the remaining ones."""

    def __init__(self, name):
        global _current
        self.name = name
        self.passed = 0
        self.failed = 0
        self.tmp = tempfile.mkdtemp(prefix="hpf-%s-" % name)
        self.brokers = []
        self.peers = []
        self.mongo = None  # the MongoDB-wire test server, once one was asked for
        self.pg = None  # the PostgreSQL test server, once one was asked for
        self.mysql = None  # the MariaDB test server, likewise
        _current = self

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL - %s%s" % (name, (": " + detail) if detail else ""), flush=True)
            self.dump_logs()
        return bool(cond)

    def equal(self, name, got, want):
        return self.check(name, got == want, "got %r, want %r" % (got, want))

    def section(self, name, fn, *args):
        try:
            fn(self, *args)
        except Exception as e:  # noqa: BLE001 - any failure is one failed check
            detail = "%s: %s" % (type(e).__name__, e)
            if not isinstance(e, CheckFailed):
                detail += "\n" + "".join(
                    "# " + l + "\n" for l in traceback.format_exc().splitlines())
            self.check("%s (completed)" % name, False, detail)
        finally:
            self.close_all()

    def dump_logs(self):
        if self.mongo is not None:
            self.mongo.dump_log()
        if self.pg is not None:
            self.pg.dump_log()
        if self.mysql is not None:
            self.mysql.dump_log()
        for b in self.brokers:
            text = b.new_log()
            if text:
                print("# ---- %s log (%s) ----" % (b.name, b.log_path))
                for line in text.splitlines():
                    print("# " + line)
                print("# ---- end of %s log ----" % b.name, flush=True)

    def close_all(self):
        for p in self.peers:
            p.close()
        self.peers = []
        for b in self.brokers:
            b.kill()

    def finish(self):
        self.close_all()
        if self.mongo is not None:
            self.mongo.stop()
        if self.pg is not None:
            self.pg.destroy()
        if self.mysql is not None:
            self.mysql.stop()
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        if self.failed == 0 and not os.environ.get("HPF_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("# files kept in %s" % self.tmp, flush=True)
        return 1 if self.failed else 0

    def subdir(self, name):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        return d


class Interrupted(BaseException):
    """SIGTERM/SIGINT/SIGHUP to the runner (make check's timeout, ^C): unwinds
    past the sections so that finish() still stops what was started."""


def _interrupted(signum, frame):
    raise Interrupted("signal %d" % signum)


def _cleanup_at_exit():
    r = _current
    if r is None:
        return
    for b in r.brokers:
        try:
            b.kill()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    if r.mongo is not None:
        r.mongo.stop()
    if r.pg is not None:
        r.pg.destroy()
    if r.mysql is not None:
        r.mysql.stop()


atexit.register(_cleanup_at_exit)


def main(name, sections, backend_specific=True):
    """Run [(title, fn), ...] and exit with the verdict.  backend_specific:
    the runner follows the selected storage backend (named in its output
    and temporary directory); runners that choose their backends
    themselves pass False."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _interrupted)
    if backend_specific:
        name = "%s-%s" % (name, BACKEND)
        print("# storage backend: %s" % BACKEND, flush=True)
    r = Runner(name)
    only = os.environ.get("HPF_ONLY")  # a developer's filter: sections whose title holds it
    try:
        for title, fn in sections:
            if not only or only in title:
                r.section(title, fn)
    except Interrupted as e:
        r.check("the runner ran to its end", False, "interrupted by %s" % e)
    finally:
        code = r.finish()
    sys.exit(code)


# ----------------------------------------------------------- config + ctl

def _keyfile_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def storage_keys(directory, db="hpfriends.db", backend=None):
    """The [storage] keys of backend (default: the selected one) for the
    data set called db in directory.  sqlite: the file db; file: the JSON
    file db with .json for .db; mongodb: a database of its own, named after
    directory/db, on the runner's MongoDB-wire server (started if need be).
    The same (directory, db) always names the same data."""
    backend = backend or BACKEND
    if backend == "sqlite":
        return {"plugin": "sqlite", "path": db}
    if backend == "file":
        return {"plugin": "file", "path": json_name(db)}
    if backend == "mongodb":
        return {"plugin": "mongodb", "uri": mongo_uri(directory, db)}
    if backend == "postgresql":
        return {"plugin": "postgresql", "uri": pg_server().uri(mongo_db_name(directory, db))}
    if backend == "mysql":
        return {"plugin": "mysql", "uri": mysql_uri(directory, db)}
    raise CheckFailed("unknown storage backend %r" % backend)


def json_name(db):
    return db[:-3] + ".json" if db.endswith(".db") else db


def mongo_db_name(directory, db="hpfriends.db"):
    digest = hashlib.sha1(os.path.abspath(os.path.join(directory, db)).encode()).hexdigest()
    return "hpf_" + digest[:16]


def mongo_uri(directory, db="hpfriends.db"):
    return "mongodb://%s:%d/%s" % (HOST, mongo_server().port, mongo_db_name(directory, db))


def mysql_uri(directory, db="hpfriends.db", user="hpftest", options=None):
    """The URI of the database for (directory, db) on the runner's MariaDB
    server, created if need be; the password needs its %-escapes."""
    srv = mysql_server()
    name = mongo_db_name(directory, db)
    srv.sql(None, "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4" % name)
    return "mysql://%s:%s@%s:%d/%s%s" % (user, MYSQL_PASSWORD_URI, HOST, srv.port, name,
                                         "?" + options if options else "")


def auth_location(directory, db="hpfriends.db", backend=None):
    """What --auth takes for the same data as storage_keys(): a path or a URI."""
    keys = storage_keys(directory, db, backend)
    if "uri" in keys:
        return keys["uri"]
    return os.path.join(directory, keys["path"])


def write_config(directory, broker=None, db="hpfriends.db", name="hpfriends.conf",
                 backend=None, storage=None):
    """A config in directory: [broker] with a random port plus the given
    keys, [storage] of backend (default: the selected one) for the data set
    db (see storage_keys), plus the given storage keys."""
    keys = {"name": "hpftest", "listen": "tcp:%s:0" % HOST}
    keys.update(broker or {})
    lines = ["[broker]"]
    for k, v in keys.items():
        lines.append("%s = %s" % (k, _keyfile_value(v)))
    skeys = storage_keys(directory, db, backend)
    skeys.update(storage or {})
    lines += ["", "[storage]"]
    lines += ["%s = %s" % (k, _keyfile_value(v)) for k, v in skeys.items()]
    lines.append("")
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


class Result:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def lines(self):
        return self.out.splitlines()

    def __repr__(self):
        return "rc=%r out=%r err=%r" % (self.rc, self.out, self.err)


def ctl_raw(storage_args, *args, input=None, timeout=CTL_TIMEOUT):
    """Run hpfriendsctl; storage_args is ["-c", CONF] or ["--auth", DB]."""
    argv = [CTL] + list(storage_args) + [str(a) for a in args]
    p = subprocess.run(argv, input=input if input is not None else b"",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"))


def ctl(conf, *args, input=None, timeout=CTL_TIMEOUT):
    return ctl_raw(["-c", conf], *args, input=input, timeout=timeout)


def ctl_ok(conf, *args, input=None, timeout=CTL_TIMEOUT):
    """Run hpfriendsctl; a non-zero exit is a broken precondition."""
    res = ctl(conf, *args, input=input, timeout=timeout)
    expect(res.rc == 0, "hpfriendsctl %s: %r" % (" ".join(str(a) for a in args), res))
    return res


# ------------------------------------------------- MongoDB-wire test server

_current = None  # the Runner of this process


def mongo_server():
    """The runner's MongoDB-wire test server, started on first use."""
    r = _current
    expect(r is not None, "no Runner yet")
    if r.mongo is None:
        r.mongo = MongoServer(r)
    if not r.mongo.running():
        r.mongo.start()
    return r.mongo


class MongoServer:
    """node tests/mongo/server.mjs (CongoDB, in memory) on 127.0.0.1, its
    output in a log file.  --exit-on-stdin-eof with a pipe we hold: if this
    runner dies without cleaning up, the server goes too.  start(port)
    restarts it on a given port (empty: it keeps nothing in memory)."""

    def __init__(self, runner):
        self.dir = runner.subdir("mongo-server")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.port = None
        self.error = None  # why the first start failed: later ones fail alike, at once
        self.log_shown = 0

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, port=0):
        if self.error and port == 0:
            raise CheckFailed(self.error)
        try:
            self._start(port)
        except CheckFailed as e:
            if port == 0:
                self.error = "MongoDB-wire test server: %s" % e
            self.stop()
            raise CheckFailed("MongoDB-wire test server: %s" % e) from None
        return self

    def _start(self, port):
        node = os.environ.get("HPF_NODE") or os.environ.get("NODE") or shutil.which("node")
        expect(node, "node not found on PATH (install nodejs, or set HPF_NODE)")
        where = os.environ.get("HPF_MONGO_DIR") or os.path.join(SRCDIR, "tests", "mongo")
        script = os.path.join(where, "server.mjs")
        expect(os.path.exists(script), "missing " + script)
        mods = os.path.join(where, "node_modules", "@push.rocks", "smartmongo")
        expect(os.path.isdir(mods), "its npm packages are not installed (%s missing): run "
               "tests/mongo/setup.sh" % mods)
        try:
            start_at = os.path.getsize(self.log_path)
        except OSError:
            start_at = 0
        with open(self.log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(
                    [node, script, "--port", str(port), "--exit-on-stdin-eof"],
                    stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
            except OSError as e:
                raise CheckFailed("cannot run %s: %s" % (node, e)) from None
        deadline = time.monotonic() + MONGO_READY_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(start_at)
                text = f.read().decode("utf-8", "replace")
            for line in text.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "ready" and parts[1].isdigit() \
                        and text.endswith("\n"):
                    self.port = int(parts[1])
                    expect(port in (0, self.port), "asked for port %d, got %d" % (port, self.port))
                    return
            if self.proc.poll() is not None:
                raise CheckFailed("exited with status %d before it was ready: %s"
                                  % (self.proc.returncode, text.strip()))
            time.sleep(0.02)
        raise CheckFailed("not ready after %.0f s" % MONGO_READY_TIMEOUT)

    def stop(self):
        """SIGTERM and wait (then SIGKILL); returns the exit status."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)  # in case a test stopped it
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p.stdin:
            p.stdin.close()
        return p.returncode

    def dump_log(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_shown)
                data = f.read()
        except OSError:
            return
        self.log_shown += len(data)
        text = data.decode("utf-8", "replace").strip()
        if text:
            print("# ---- MongoDB-wire test server log ----")
            for line in text.splitlines():
                print("# " + line)
            print("# ---- end of server log ----", flush=True)


# ------------------------------------------------------ PostgreSQL test server

def pg_server():
    """The runner's PostgreSQL test server, started on first use."""
    r = _current
    expect(r is not None, "no Runner yet")
    global _pg_error
    if r.pg is None:
        expect(_pg_error is None, _pg_error)  # failed once: fail alike, at once
        try:
            r.pg = PgServer()
        except (CheckFailed, OSError, subprocess.TimeoutExpired) as e:
            _pg_error = str(e)
            raise CheckFailed(_pg_error) from None
    return r.pg


_pg_error = None  # why the PostgreSQL test server did not start


class PgServer:
    """A private PostgreSQL on 127.0.0.1 made by tests/pg/pg-server.sh (TLS
    on; DIR/ca.crt is its certificate).  The script's watcher removes it if
    this runner dies without cleaning up.  stop()/resume() make an outage
    that keeps the data."""

    def __init__(self):
        self.script = os.path.join(SRCDIR, "tests", "pg", "pg-server.sh")
        self.dbs = set()
        self.log_shown = 0
        p = subprocess.run(["/bin/sh", self.script, "start", "--tls", "--owner",
                            str(os.getpid())], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        words = p.stdout.decode("utf-8", "replace").split()
        if p.returncode != 0 or len(words) != 3 or words[0] != "ready":
            raise CheckFailed("PostgreSQL test server (%s start): status %d: %s %s"
                              % (self.script, p.returncode, p.stdout.decode("utf-8", "replace"),
                                 p.stderr.decode("utf-8", "replace")))
        self.port, self.dir = int(words[1]), words[2]
        self.ca = os.path.join(self.dir, "ca.crt")

    def _script(self, cmd):
        p = subprocess.run(["/bin/sh", self.script, cmd, self.dir], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        expect(p.returncode == 0, "pg-server.sh %s: %s" % (cmd, p.stdout.decode()))

    def stop(self):
        self._script("stop")

    def resume(self):
        self._script("resume")

    def destroy(self):
        if self.dir and os.path.isdir(self.dir):
            subprocess.run(["/bin/sh", self.script, "destroy", self.dir], timeout=120)
        self.dir = None

    def dump_log(self):
        """The server's log since the last dump (its warnings and errors)."""
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                f.seek(self.log_shown)
                data = f.read()
        except (OSError, TypeError):
            return
        self.log_shown += len(data)
        text = data.decode("utf-8", "replace").strip()
        if text:
            print("# ---- PostgreSQL test server log ----")
            for line in text.splitlines():
                print("# " + line)
            print("# ---- end of server log ----", flush=True)

    def psql(self, db, sql):
        """Run sql as the superuser in database db; its rows as 'a|b' lines."""
        psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
        p = subprocess.run([psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", HOST,
                            "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        expect(p.returncode == 0, "psql %r: %s" % (sql, p.stderr.decode("utf-8", "replace")))
        return p.stdout.decode("utf-8")

    def uri(self, db):
        """The libpq URI of database db, created on first use."""
        if db not in self.dbs:
            self.psql("postgres", "CREATE DATABASE %s" % db)
            self.dbs.add(db)
        return "postgresql://postgres@%s:%d/%s" % (HOST, self.port, db)


# ------------------------------------------------------ MariaDB test server

MYSQL_PASSWORD = "hpf:t@st/pw%1"  # tests/mysql/mysql-server.sh's test users
MYSQL_PASSWORD_URI = "hpf%3At%40st%2Fpw%251"


def mysql_server():
    """The runner's MariaDB test server, started on first use."""
    r = _current
    expect(r is not None, "no Runner yet")
    if r.mysql is None:
        r.mysql = MysqlServer(r)
    if not r.mysql.running():
        r.mysql.start()
    return r.mysql


class MysqlServer:
    """A private mariadbd (tests/mysql/mysql-server.sh) with its data in the
    runner's temporary directory, listening on 127.0.0.1.  The script is
    given this process's id: if the runner dies without cleaning up, the
    server goes too.  start(port) restarts it on a given port, with its data."""

    def __init__(self, runner):
        self.dir = runner.subdir("mysql-server")
        self.script = os.path.join(SRCDIR, "tests", "mysql", "mysql-server.sh")
        self.port = None
        self.error = None  # why the first start failed: later ones fail alike, at once
        self.log_shown = 0

    def _run(self, *args, timeout=MYSQL_START_TIMEOUT):
        try:
            return subprocess.run(["/bin/sh", self.script] + [str(a) for a in args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CheckFailed("%s %s: %s" % (self.script, args[0], e)) from None

    def pid(self):
        try:
            with open(os.path.join(self.dir, "pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False

    def start(self, port=0):
        if self.error and port == 0:
            raise CheckFailed(self.error)
        p = self._run("start", self.dir, port, os.getpid())
        out = p.stdout.decode("utf-8", "replace").split()
        if p.returncode != 0 or len(out) != 2 or out[0] != "ready" or not out[1].isdigit():
            why = "MariaDB test server: start failed (status %d): %s %s" % (
                p.returncode, p.stdout.decode("utf-8", "replace").strip(),
                p.stderr.decode("utf-8", "replace").strip())
            if port == 0:
                self.error = why
            raise CheckFailed(why)
        self.port = int(out[1])
        expect(port in (0, self.port), "asked for port %d, got %d" % (port, self.port))
        return self

    def stop(self):
        """SIGTERM and wait (SIGKILL after 30 s)."""
        if self.pid() is not None:
            self._run("stop", self.dir, timeout=60)

    def kill(self):
        """SIGKILL, as a crash would."""
        self._run("kill", self.dir, timeout=30)

    def sql(self, db, text):
        """Run SQL as root over the server's socket; the rows, tab-separated."""
        argv = ["mariadb", "--no-defaults", "--socket=" + os.path.join(self.dir, "sock"),
                "-uroot", "-N", "-B"] + ([db] if db else []) + ["-e", text]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        expect(p.returncode == 0, "mariadb -e %r: %s" % (text, p.stderr.decode("utf-8", "replace")))
        return p.stdout.decode("utf-8", "replace")

    def dump_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), "rb") as f:
                f.seek(self.log_shown)
                data = f.read()
        except OSError:
            return
        self.log_shown += len(data)
        text = data.decode("utf-8", "replace").strip()
        if text:
            print("# ---- MariaDB test server log ----")
            for line in text.splitlines()[-40:]:
                print("# " + line)
            print("# ---- end of server log ----", flush=True)


# ---------------------------------------------------------------- broker

class Broker:
    """hpfriendsd -f in the foreground, stderr+stdout into a log file."""

    def __init__(self, runner, name, conf=None, args=None, cwd=None):
        self.runner = runner
        self.name = name
        self.dir = cwd or runner.subdir(name)
        self.conf = conf
        self.extra = list(args or [])
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "%s.log" % name)
        self.ready = os.path.join(self.dir, "%s.ready" % name)
        self.log_shown = 0
        runner.brokers.append(self)

    def start(self):
        expect(os.access(DAEMON, os.X_OK), "broker not found or not executable: " + DAEMON)
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        argv = [DAEMON, "-f"]
        if self.conf:
            argv += ["-c", self.conf]
        argv += self.extra + ["--ready-file", self.ready]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed("%s exited with status %d before it was ready"
                                  % (self.name, self.proc.returncode))
            port = self._read_ready()
            if port:
                self.port = port
                return self
            time.sleep(0.02)
        raise CheckFailed("%s: no listener in %s after %.0f s"
                          % (self.name, self.ready, READY_TIMEOUT))

    def _read_ready(self):
        try:
            with open(self.ready) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        for line in text.splitlines(keepends=True):
            parts = line.split()
            if line.endswith("\n") and len(parts) == 3 and parts[0] == "tcp" and parts[1] == HOST:
                return int(parts[2])
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        expect(self.alive(), "%s is not running (status %r)"
               % (self.name, self.proc.returncode if self.proc else None))
        self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM and wait; returns the exit status (None: it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)  # in case a test stopped it
                self.proc.kill()
            finally:
                self.proc.wait()

    def new_log(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_shown)
                data = f.read()
        except OSError:
            return ""
        self.log_shown += len(data)
        return data.decode("utf-8", "replace")

    def connect(self, ident, secret):
        p = Peer(self, ident, secret)
        self.runner.peers.append(p)
        return p


# ---------------------------------------------------------------- clients

class Peer:
    """One authenticated hpfeeds connection that files every PUBLISH it
    reads into inbox (as (ident, channel, payload) bytes tuples), except the
    sync tokens of this module, which are recognised and left out."""

    _seq = 0

    def __init__(self, broker, ident, secret):
        self.ident = ident.encode() if isinstance(ident, str) else ident
        self.client = hp.Client(HOST, broker.port, ident, secret, timeout=IO_TIMEOUT)
        try:
            self.client.connect()
        except BaseException:
            self.client.close()
            raise
        self.inbox = []
        self.closed = False

    def close(self):
        self.client.close()
        self.closed = True

    def subscribe(self, chan):
        self.client.subscribe(chan)

    def unsubscribe(self, chan):
        self.client.unsubscribe(chan)

    def publish(self, chan, payload):
        self.client.publish(chan, payload)

    def _file(self, msg):
        if not msg[2].startswith(SYNC_PREFIX):
            self.inbox.append(msg)

    def sync(self, chan, timeout=IO_TIMEOUT):
        """Publish a token on chan (this key must be allowed to publish there
        and this connection subscribed to it) and read until it comes back:
        afterwards every frame the broker queued for this connection before
        it handled the token is in inbox.  Returns the token.  Raises hp.BrokerError on ERROR,
        hp.Closed, TimeoutError."""
        Peer._seq += 1
        token = SYNC_PREFIX + self.ident + b":" + str(Peer._seq).encode()
        self.client.publish(chan, token)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.next_message(max(0.001, deadline - time.monotonic()))
            if msg[0] == self.ident and msg[2] == token:
                return token
            self._file(msg)

    def still_works(self, chan):
        """sync on chan as a check: True, or False with the reason printed as
        a comment."""
        try:
            self.sync(chan)
            return True
        except Exception as e:  # noqa: BLE001 - ERROR, close or timeout
            print("# %s: %s: %s" % (self.ident.decode(errors="replace"), type(e).__name__, e))
            return False

    def drain(self, timeout):
        """Read whatever arrives within timeout seconds into inbox."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                self._file(self.client.next_message(remaining))
            except TimeoutError:
                return

    def payloads(self):
        return [m[2] for m in self.inbox]

    def take(self):
        got, self.inbox = self.inbox, []
        return got

    def wait_error_and_close(self, timeout):
        """Read until the broker closes the connection: (ERROR texts seen,
        closed?, PUBLISH frames seen)."""
        errors, closed = [], False
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                op, fields = self.client.read_frame(remaining)
            except TimeoutError:
                break
            except (hp.Closed, ConnectionError):
                closed = True
                break
            if op == hp.OP_ERROR:
                errors.append(fields[0].decode("utf-8", "replace"))
            elif op == hp.OP_PUBLISH:
                self._file(tuple(fields))
        return errors, closed


def drain_all(peers, timeout):
    """Like Peer.drain for several peers at once, in timeout seconds in
    all: whatever arrives at any of them until the deadline is filed."""
    peers = list(peers)
    deadline = time.monotonic() + timeout
    while True:
        for p in peers:
            if p.client.buf:  # frames already read from the socket
                p.drain(0.001)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([p.client.sock for p in peers], [], [], remaining)
        for p in peers:
            if p.client.sock in ready:
                p.drain(0.001)
    for p in peers:  # one last look
        p.drain(0.001)


def poll(cond, timeout, pace=0.1):
    """Call cond() until it returns true or the deadline passes; its last
    value is returned.  cond does its own bounded I/O."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(pace)


def unique(tag):
    return ("%s-%s" % (tag, hashlib.sha1(os.urandom(8)).hexdigest()[:10])).encode()
