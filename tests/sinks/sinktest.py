# SPDX-License-Identifier: BSD-3-Clause
"""Shared helpers for the sink tests: a check counter that prints one line per
check and a final "N passed, N failed", an hpfeeds3 SQLite auth database, and
a broker (hpfriendsd) started in a temporary directory on 127.0.0.1 with a
random port.

Environment: HPF_BUILDDIR and HPF_SRCDIR (set by `make check`; default: the
tree this file is in), HPFRIENDSD (the daemon; default
$HPF_BUILDDIR/core/hpfriendsd), HPF_KEEP_TMP=1 keeps the temporary
directories.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("HPF_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
BUILDDIR = os.environ.get("HPF_BUILDDIR") or os.getcwd()
sys.path.insert(0, os.path.join(SRCDIR, "tests", "interop"))
import hpfeeds_py as hp  # noqa: E402,F401  (re-exported for the tests)
from ports import free_port  # noqa: E402,F401  (for the tests)

HOST = "127.0.0.1"
READY_TIMEOUT = 15.0
WAIT_TIMEOUT = 15.0


def daemon_path():
    return os.environ.get("HPFRIENDSD") or os.path.join(BUILDDIR, "core", "hpfriendsd")


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


class Checks:
    """Counts checks; check() prints "ok"/"FAIL" lines as automake's log shows them."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, what, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok   %s" % what, flush=True)
        else:
            self.failed += 1
            print("FAIL %s%s" % (what, (": " + detail) if detail else ""), flush=True)
        return cond

    def run(self, what, fn, *args):
        """Runs fn(*args); an exception is one failed check named `what`."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a test reports every failure
            self.failed += 1
            print("FAIL %s: %s: %s" % (what, type(e).__name__, e), flush=True)
            if not isinstance(e, CheckFailed):
                traceback.print_exc(file=sys.stdout)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed or not self.passed else 0


def make_auth_db(path, keys):
    """keys: ident -> (secret, publish channels, subscribe channels); owner = ident + "-owner"."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE authkeys (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT, "
                "ident TEXT, secret TEXT, pubchans TEXT, subchans TEXT)")
    for ident, (secret, pub, sub) in keys.items():
        con.execute("INSERT INTO authkeys (owner, ident, secret, pubchans, subchans) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (ident + "-owner", ident, secret, json.dumps(pub), json.dumps(sub)))
    con.commit()
    con.close()


def wait_for(pred, timeout=WAIT_TIMEOUT, step=0.02):
    """Polls pred() until it returns something true; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


class TempDir:
    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        if os.environ.get("HPF_KEEP_TMP"):
            print("# kept %s" % self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


BROKER_CONF = """\
[broker]
name = sinktest
listen = tcp:127.0.0.1:0
access = channels
{broker_extra}
[storage]
plugin = sqlite
path = auth.db

{sinks}
"""


class Broker:
    """hpfriendsd -f -c DIR/NAME.conf --ready-file DIR/NAME.ready, logging to DIR/NAME.log."""

    def __init__(self, tmp, sinks, name="broker", broker_extra="", daemon=None, env=None):
        self.tmp = tmp
        self.name = name
        self.conf = tmp.join(name + ".conf")
        self.ready = tmp.join(name + ".ready")
        self.log_path = tmp.join(name + ".log")
        self.daemon = daemon or daemon_path()
        self.env = env
        with open(self.conf, "w") as f:
            f.write(BROKER_CONF.format(sinks=sinks, broker_extra=broker_extra))
        self.proc = None
        self.port = None
        self.exporter_port = None  # with `exporter = 127.0.0.1:0` in broker_extra

    def start(self):
        expect(os.access(self.daemon, os.X_OK), "broker not executable: " + self.daemon)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.daemon, "-f", "-c", self.conf, "--ready-file", self.ready],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp.path,
            env=self.env)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed("broker exited with status %d before it was ready: %s"
                                  % (self.proc.returncode, self.log_tail()))
            port = self._read_ready()
            if port:
                self.port = port
                return self
            time.sleep(0.02)
        self.stop(signal.SIGKILL)  # never leave a half-started broker behind
        raise CheckFailed("broker not ready after %.0f s: %s" % (READY_TIMEOUT, self.log_tail()))

    def _read_ready(self):
        try:
            with open(self.ready) as f:
                port = None
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == "tcp" and parts[1] == HOST:
                        port = int(parts[2])
                    elif len(parts) == 3 and parts[:2] == ["http", "exporter"]:
                        self.exporter_port = int(parts[2])
                return port
        except FileNotFoundError:
            pass
        return None

    def metric(self, name, labels):
        """One sample from /metrics, e.g. metric("x_total", 'sink="a"'); None if absent."""
        expect(self.exporter_port, "broker started without an exporter")
        url = "http://%s:%d/metrics" % (HOST, self.exporter_port)
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        want = "%s{%s} " % (name, labels)
        for line in text.splitlines():
            if line.startswith(want):
                return float(line[len(want):])
        return None

    def client(self, ident, secret):
        return hp.Client(HOST, self.port, ident, secret).connect()

    def kill(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=READY_TIMEOUT):
        """Signals the broker and returns its exit status (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-n:])


def run_daemon_once(args, tmp, timeout=READY_TIMEOUT, env=None):
    """Runs the daemon to completion (e.g. -t); returns (status, output)."""
    p = subprocess.run([daemon_path()] + args, cwd=tmp.path, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def auth_refused(port, ident, secret):
    """Connects with a wrong secret; True when the broker answers ERROR or closes."""
    try:
        with hp.Client(HOST, port, ident, secret) as bad:
            bad.connect()
            bad.next_message(5)
    except (hp.BrokerError, hp.Closed, ConnectionError):
        return True
    except TimeoutError:
        return False
    return False


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []
