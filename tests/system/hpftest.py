"""Shared helpers for the system tests: a real hpfriendsd in a temporary
directory, hpfriendsctl runs, hpfeeds client connections, and a small check
recorder that prints one line per check and a final "N passed, M failed".

Environment (all optional; `make check` sets the first three):
  HPF_BUILDDIR           top build directory (default: the current directory)
  HPF_SRCDIR             top source directory (default: derived from this file)
  HPFRIENDS_PLUGIN_DIR   plugin directory (default: $HPF_BUILDDIR/plugins/.libs)
  HPFRIENDSD, HPFRIENDSCTL   override the two programs' paths
  HPF_KEEP_TMP=1         keep the temporary directory even when all passed

Waiting is always bounded: every loop has a deadline, and short sleeps only
pace a poll, they never stand in for a check.
"""

import hashlib
import os
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
except ImportError as _e:  # keep the one-line-per-check output contract
    print("FAIL - import the hpfeeds client tests/interop/hpfeeds_py.py (HPF_SRCDIR=%s): %s"
          % (SRCDIR, _e))
    print("0 passed, 1 failed")
    sys.exit(1)

HOST = "127.0.0.1"
READY_TIMEOUT = 15.0     # broker start to ready file
STOP_TIMEOUT = 15.0      # SIGTERM to exit
CTL_TIMEOUT = 30.0       # one hpfriendsctl run
IO_TIMEOUT = 5.0         # one expected frame
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
        self.name = name
        self.passed = 0
        self.failed = 0
        self.tmp = tempfile.mkdtemp(prefix="hpf-%s-" % name)
        self.brokers = []
        self.peers = []

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


def main(name, sections):
    """Run [(title, fn), ...] and exit with the verdict."""
    r = Runner(name)
    try:
        for title, fn in sections:
            r.section(title, fn)
    finally:
        code = r.finish()
    sys.exit(code)


# ----------------------------------------------------------- config + ctl

def write_config(directory, broker=None, db="hpfriends.db", name="hpfriends.conf"):
    """A config in directory: [broker] with a random port plus the given
    keys, [storage] sqlite at db (relative to the config's directory)."""
    keys = {"name": "hpftest", "listen": "tcp:%s:0" % HOST}
    keys.update(broker or {})
    lines = ["[broker]"]
    for k, v in keys.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        lines.append("%s = %s" % (k, v))
    lines += ["", "[storage]", "plugin = sqlite", "path = %s" % db, ""]
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


def ctl_raw(storage_args, *args, input=None):
    """Run hpfriendsctl; storage_args is ["-c", CONF] or ["--auth", DB]."""
    argv = [CTL] + list(storage_args) + [str(a) for a in args]
    p = subprocess.run(argv, input=input if input is not None else b"",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CTL_TIMEOUT)
    return Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"))


def ctl(conf, *args, input=None):
    return ctl_raw(["-c", conf], *args, input=input)


def ctl_ok(conf, *args, input=None):
    """Run hpfriendsctl; a non-zero exit is a broken precondition."""
    res = ctl(conf, *args, input=input)
    expect(res.rc == 0, "hpfriendsctl %s: %r" % (" ".join(str(a) for a in args), res))
    return res


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
        self.client.connect()
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
