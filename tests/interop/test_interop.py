#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Interop test: the real broker (hpfriendsd) against an independent Python
hpfeeds client (hpfeeds_py.py) and the C client CLI (hpfeeds-cli).

Starts hpfriendsd on 127.0.0.1 with a random port and an hpfeeds3-style
SQLite auth database in a temporary directory, runs the checks, and always
stops the broker.  Prints one line per check and ends with "N passed, M
failed"; exits 1 when anything failed.

Environment: HPF_BUILDDIR (top build directory; default: current
directory).  HPFRIENDSD and HPFEEDS_CLI override the two programs' paths.
"""

import base64
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

# No __pycache__ in the source tree (which may also be read-only).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpfeeds_py as hp  # noqa: E402
from ports import free_port  # noqa: E402

BUILDDIR = os.environ.get("HPF_BUILDDIR") or os.getcwd()
DAEMON = os.environ.get("HPFRIENDSD") or os.path.join(BUILDDIR, "core", "hpfriendsd")
CLI = os.environ.get("HPFEEDS_CLI") or os.path.join(BUILDDIR, "sdk", "cli", "hpfeeds-cli")
HOST = "127.0.0.1"
CHAN = "interop.events"
BIN = "interop.binary"
READY_TIMEOUT = 10.0
STEP_TIMEOUT = 20.0

# ident -> (secret, publish channels, subscribe channels)
KEYS = {
    "alice": ("alice-secret", [CHAN, BIN], [CHAN, BIN]),  # Python publisher
    "bob": ("bob-secret", [CHAN, BIN], [CHAN, BIN]),  # Python subscriber (syncs by publishing)
    "carol": ("carol-secret", [CHAN], []),  # hpfeeds-cli pub
    "dave": ("dave-secret", [], [CHAN, BIN]),  # hpfeeds-cli sub
}


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def make_auth_db(path):
    """The hpfeeds3 schema, channel lists as JSON text arrays."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE authkeys (id INTEGER PRIMARY KEY, owner TEXT, ident TEXT, "
                "secret TEXT, pubchans TEXT, subchans TEXT)")
    con.execute("CREATE TABLE logs (id INTEGER PRIMARY KEY, data TEXT)")
    con.execute("CREATE TABLE stats (id INTEGER PRIMARY KEY, ak TEXT, uid TEXT, data TEXT)")
    for ident, (secret, pub, sub) in KEYS.items():
        con.execute("INSERT INTO authkeys (owner, ident, secret, pubchans, subchans) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (ident + "-owner", ident, secret, json.dumps(pub), json.dumps(sub)))
    con.commit()
    con.close()


class Broker:
    def __init__(self, tmp):
        self.tmp = tmp
        self.proc = None
        self.port = None
        self.exporter_port = None
        self.log_path = os.path.join(tmp, "hpfriendsd.log")
        self.log = None

    def start(self):
        db = os.path.join(self.tmp, "auth.db")
        ready = os.path.join(self.tmp, "ready")
        make_auth_db(db)
        expect(os.access(DAEMON, os.X_OK), "broker not found or not executable: " + DAEMON)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [DAEMON, "-f", "--bind", HOST + ":0", "--auth", db, "--ready-file", ready,
             "--exporter", HOST + ":0"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.tmp)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed("broker exited with status %d before it was ready"
                                  % self.proc.returncode)
            ports = self._read_ready(ready)
            if ports:
                self.port, self.exporter_port = ports
                return
            time.sleep(0.02)
        raise CheckFailed("no hpfeeds and exporter listeners in %s after %.0f s"
                          % (ready, READY_TIMEOUT))

    @staticmethod
    def _read_ready(path):
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        port = exporter = None
        for line in text.splitlines(keepends=True):
            parts = line.split()
            if not line.endswith("\n") or len(parts) != 3:
                continue
            if parts[0] == "tcp" and parts[1] == HOST:
                port = int(parts[2])
            elif parts[:2] == ["http", "exporter"]:
                exporter = int(parts[2])
        return (port, exporter) if port and exporter else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            return []


# ---- helpers ----

def subscriptions(port, ident, chan):
    """ident's subscriptions to chan as the broker's /metrics counts them."""
    url = "http://%s:%d/metrics" % (HOST, port)
    with urllib.request.urlopen(url, timeout=STEP_TIMEOUT) as r:
        text = r.read().decode("utf-8", "replace")
    want = 'hpfeeds_broker_subscriptions{ident="%s",chan="%s"} ' % (ident, chan)
    for line in text.splitlines():
        if line.startswith(want):
            return int(line[len(want):])
    return 0


def wait_subscribed(port, ident, chans, timeout=STEP_TIMEOUT):
    """Waits until the broker holds ident's subscription to every one of
    chans.  A client's own "subscribed" line only says the SUBSCRIBE was
    written to the socket; a publish from another connection that the
    broker handles first is not delivered to it."""
    deadline = time.monotonic() + timeout
    while not all(subscriptions(port, ident, ch) > 0 for ch in chans):
        if time.monotonic() > deadline:
            raise CheckFailed("the broker has no subscription of %s to %s after %.0f s"
                              % (ident, ", ".join(chans), timeout))
        time.sleep(0.02)

def py_client(broker, ident, secret=None):
    c = hp.Client(HOST, broker.port, ident, KEYS[ident][0] if secret is None else secret)
    return c.connect()


def cli_args(broker, mode, ident, channels, secret=None):
    args = [CLI, mode, "--host", HOST, "--port", str(broker.port), "--ident", ident,
            "--secret", KEYS[ident][0] if secret is None else secret]
    for ch in channels:
        args += ["--channel", ch]
    return args


def run_cli(args, stdin_data=None):
    return subprocess.run(args, input=stdin_data if stdin_data is not None else b"",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=STEP_TIMEOUT)


class CliSubscriber:
    """hpfeeds-cli sub in the background; ready() waits for its -v line that
    says AUTH and SUBSCRIBE were written."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args + ["--verbose"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err_lines = queue.Queue()
        self.stderr_seen = []
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.err_lines.put(line)
        self.err_lines.put(None)

    def ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CheckFailed("hpfeeds-cli sub did not report its subscription")
            try:
                line = self.err_lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise CheckFailed("hpfeeds-cli sub exited early: "
                                  + b"".join(self.stderr_seen).decode("utf-8", "replace"))
            self.stderr_seen.append(line)
            if b"subscribed to" in line:
                return

    def finish(self):
        try:
            # Outputs here are far below a pipe's capacity: wait, then read.
            self.proc.wait(timeout=STEP_TIMEOUT)
            out = self.proc.stdout.read()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        while True:
            try:
                line = self.err_lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.stderr_seen.append(line)
        return self.proc.returncode, out, b"".join(self.stderr_seen)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---- checks ----

def check_py_to_py(broker):
    with py_client(broker, "bob") as sub, py_client(broker, "alice") as pub:
        sub.subscribe(CHAN)
        sub.sync(CHAN)
        msgs = [b"hello %d" % i for i in range(5)]
        for m in msgs:
            pub.publish(CHAN, m)
        got = [sub.next_message(5) for _ in msgs]
        expect(got == [(b"alice", CHAN.encode(), m) for m in msgs], "got %r" % (got,))


def check_py_to_cli_sub(broker):
    cli = CliSubscriber(cli_args(broker, "sub", "dave", [CHAN])
                        + ["--count", "3", "--timeout", "10"])
    try:
        cli.ready()
        wait_subscribed(broker.exporter_port, "dave", [CHAN])
        with py_client(broker, "alice") as pub:
            for i in range(3):
                pub.publish(CHAN, "message %d" % i)
            rc, out, err = cli.finish()
    finally:
        cli.kill()
    expect(rc == 0, "exit status %s, stderr %r" % (rc, err))
    want = b"".join(b"%s alice message %d\n" % (CHAN.encode(), i) for i in range(3))
    expect(out == want, "stdout %r, want %r" % (out, want))


def check_cli_pub_args(broker):
    with py_client(broker, "bob") as sub:
        sub.subscribe(CHAN)
        sub.sync(CHAN)
        msgs = ["one", "two words", "three"]
        r = run_cli(cli_args(broker, "pub", "carol", [CHAN]) + ["--"] + msgs)
        expect(r.returncode == 0, "exit status %d, stderr %r" % (r.returncode, r.stderr))
        got = [sub.next_message(5) for _ in msgs]
        want = [(b"carol", CHAN.encode(), m.encode()) for m in msgs]
        expect(got == want, "got %r" % (got,))


def check_cli_pub_stdin(broker):
    with py_client(broker, "bob") as sub:
        sub.subscribe(CHAN)
        sub.sync(CHAN)
        data = b"line one\nline two\n\nlast line without newline"
        r = run_cli(cli_args(broker, "pub", "carol", [CHAN]), stdin_data=data)
        expect(r.returncode == 0, "exit status %d, stderr %r" % (r.returncode, r.stderr))
        want = [b"line one", b"line two", b"", b"last line without newline"]
        got = [sub.next_message(5)[2] for _ in want]
        expect(got == want, "got %r" % (got,))


def check_binary_py(broker):
    payload = bytes(range(256))
    with py_client(broker, "bob") as sub, py_client(broker, "alice") as pub:
        sub.subscribe(BIN)
        sub.sync(BIN)
        pub.publish(BIN, payload)
        ident, chan, got = sub.next_message(5)
        expect((ident, chan) == (b"alice", BIN.encode()), "from %r on %r" % (ident, chan))
        expect(got == payload, "payload differs: %r" % (got,))


def check_binary_cli_json(broker):
    payload = bytes(range(256))
    text = "grüße ✓ \"quoted\"\ttab"
    cli = CliSubscriber(cli_args(broker, "sub", "dave", [BIN])
                        + ["--count", "2", "--json", "--timeout", "10"])
    try:
        cli.ready()
        wait_subscribed(broker.exporter_port, "dave", [BIN])
        with py_client(broker, "alice") as pub:
            pub.publish(BIN, payload)
            pub.publish(BIN, text.encode("utf-8"))
            rc, out, err = cli.finish()
    finally:
        cli.kill()
    expect(rc == 0, "exit status %s, stderr %r" % (rc, err))
    lines = out.splitlines()
    expect(len(lines) == 2, "stdout %r" % (out,))
    first, second = (json.loads(line) for line in lines)
    expect(first.get("channel") == BIN and first.get("ident") == "alice",
           "first object %r" % (first,))
    expect("payload" not in first and base64.b64decode(first.get("payload_b64", "")) == payload,
           "binary payload not bytes-exact: %r" % (first,))
    expect(second.get("payload") == text and "payload_b64" not in second,
           "text payload: %r" % (second,))


def check_wrong_secret_py(broker):
    c = hp.Client(HOST, broker.port, "alice", "not-the-secret")
    try:
        c.connect()
        try:
            op, fields = c.read_frame(5)
        except hp.Closed:
            raise CheckFailed("connection closed without an ERROR frame") from None
        expect(op == hp.OP_ERROR, "got op %d instead of ERROR" % op)
        expect(fields[0] == b"Authentication failed for alice", "ERROR text %r" % fields[0])
        try:
            c.read_frame(5)
            raise CheckFailed("broker kept the connection open after the auth failure")
        except hp.Closed:
            pass
    finally:
        c.close()


def check_wrong_secret_cli(broker):
    r = run_cli(cli_args(broker, "sub", "dave", [CHAN], secret="wrong") + ["--timeout", "10"])
    expect(r.returncode == 1, "exit status %d, stderr %r" % (r.returncode, r.stderr))
    expect(b"Authentication failed for dave" in r.stderr, "stderr %r" % r.stderr)
    expect(r.stdout == b"", "stdout %r" % r.stdout)


def check_cli_pub_denied(broker):
    # carol may not publish on BIN: the broker answers ERROR, the CLI exits 1.
    r = run_cli(cli_args(broker, "pub", "carol", [BIN]) + ["x"])
    expect(r.returncode == 1, "exit status %d, stderr %r" % (r.returncode, r.stderr))
    expect(b"broker error" in r.stderr, "stderr %r" % r.stderr)


def check_cli_refused(broker):
    # Not bind-to-0-and-close: that port is in the ephemeral range, where
    # a broker of a test running alongside (--bind :0) may listen on it by
    # the time the CLI connects, and where the CLI's own source port may
    # equal it (a TCP self-connect that succeeds).
    port = free_port()
    r = run_cli([CLI, "sub", "--host", HOST, "--port", str(port), "--ident", "dave",
                 "--secret", "x", "--channel", CHAN, "--timeout", "10"])
    expect(r.returncode == 1, "exit status %d, stderr %r" % (r.returncode, r.stderr))
    lines = r.stderr.decode("utf-8", "replace").splitlines()
    expect(len(lines) == 1 and "refused" in lines[0].lower(), "stderr %r" % r.stderr)


def check_broker_alive(broker):
    expect(broker.alive(), "broker exited with status %s" % broker.proc.returncode)


CHECKS = [
    ("python publisher -> python subscriber", check_py_to_py),
    ("python publisher -> hpfeeds-cli sub --count", check_py_to_cli_sub),
    ("hpfeeds-cli pub (arguments) -> python subscriber", check_cli_pub_args),
    ("hpfeeds-cli pub (stdin lines) -> python subscriber", check_cli_pub_stdin),
    ("binary payload, all 256 byte values, python -> python", check_binary_py),
    ("binary payload, python -> hpfeeds-cli sub --json (payload_b64)", check_binary_cli_json),
    ("wrong secret: python client gets ERROR 'Authentication failed for alice'",
     check_wrong_secret_py),
    ("wrong secret: hpfeeds-cli sub prints the ERROR, exits 1", check_wrong_secret_cli),
    ("hpfeeds-cli pub on a channel it may not use exits 1", check_cli_pub_denied),
    ("hpfeeds-cli sub, connection refused: one line, exit 1", check_cli_refused),
    ("broker still running after all checks", check_broker_alive),
]


def main():
    passed = failed = 0

    def report(ok, name, detail=None):
        nonlocal passed, failed
        if ok:
            passed += 1
            print("ok - %s" % name, flush=True)
        else:
            failed += 1
            print("FAIL - %s: %s" % (name, detail), flush=True)

    tmp = tempfile.mkdtemp(prefix="hpf-interop-")
    broker = Broker(tmp)
    try:
        try:
            broker.start()
            report(True, "broker started on %s:%d" % (HOST, broker.port))
        except Exception as e:  # noqa: BLE001 - any start-up failure is a failed check
            report(False, "broker started", e)
        for name, fn in CHECKS:
            if broker.port is None:
                report(False, name, "no broker")
                continue
            try:
                fn(broker)
                report(True, name)
            except CheckFailed as e:
                report(False, name, e)
            except Exception as e:  # noqa: BLE001
                report(False, name, "%s: %s" % (type(e).__name__, e))
                traceback.print_exc(file=sys.stdout)
    finally:
        broker.stop()
        if failed:
            for line in broker.log_tail():
                print("# broker: " + line)
        try:
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)
        except OSError:
            pass
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
