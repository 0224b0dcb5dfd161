#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Interop test: hpfriendsd run with hpfeeds-broker's own command lines.

Each check starts hpfriendsd with a command line spelled as hpfeeds3's
README, docs (broker.rst) and Dockerfile spell it for hpfeeds-broker: no
config file, no -f, no extra flag.  The broker must stay in the foreground,
listen where hpfeeds-broker listens (0.0.0.0:20000 by default, the ports the
docs name otherwise), send the name `hpfeeds` in INFO, find its keys where
hpfeeds-broker finds them, and serve real clients (tests/interop/
hpfeeds_py.py, plain and over TLS).  The error cases check the exact start-up
message and that no file was created.

Fixed ports (20000, 10000, 9431) cannot be shared with whatever else runs on
the machine, so the test re-runs itself in a private network namespace
(`unshare -rn`: a loopback of its own, every port free).  Where namespaces
are not available it runs on the host and fails, saying why, when a port it
needs is taken.

Environment: HPF_BUILDDIR (top build directory; default: current
directory), HPFRIENDSD, HPFRIENDS_PLUGIN_DIR (as for every test).
"""

import fcntl
import json
import os
import shutil
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpfeeds_py as hp  # noqa: E402

BUILDDIR = os.environ.get("HPF_BUILDDIR") or os.getcwd()
DAEMON = os.path.abspath(os.environ.get("HPFRIENDSD")
                         or os.path.join(BUILDDIR, "core", "hpfriendsd"))
os.environ.setdefault("HPFRIENDS_PLUGIN_DIR", os.path.join(BUILDDIR, "plugins", ".libs"))
CTL = os.path.abspath(os.environ.get("HPFRIENDSCTL")
                      or os.path.join(BUILDDIR, "core", "hpfriendsctl"))
HOST = "127.0.0.1"
TIMEOUT = 15.0
IN_NETNS = "--in-private-netns"
PRIVATE = IN_NETNS in sys.argv[1:]


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


# ---- the private network namespace ----

def loopback_up():
    """ip link set lo up, with the ioctls (no iproute2 needed)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = fcntl.ioctl(s, siocgifflags, struct.pack("16sH14x", b"lo", 0))
        flags = struct.unpack("16sH14x", ifr)[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
    finally:
        s.close()


def reexec_in_netns():
    """Run this script again in a network namespace of its own; None when impossible."""
    unshare = shutil.which("unshare")
    if not unshare:
        return None, "no unshare command"
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None, "unshare -rn: %s" % probe.stderr.strip()
    argv = [unshare, "-rn", sys.executable, os.path.abspath(__file__), IN_NETNS]
    return subprocess.run(argv).returncode, None


# ---- the broker ----

def listening(port):
    """Local addresses ("0.0.0.0", "127.0.0.1", ...) with a TCP listener on port."""
    out = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                out.add(socket.inet_ntoa(struct.pack("<I", int(addr, 16))))
    return out


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Broker:
    """hpfriendsd with exactly the given arguments, in its own working directory."""

    def __init__(self, tmp, name, args, env=None):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.args = args
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.log_path = os.path.join(tmp, name + ".log")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def start(self, port, tls_ctx=None):
        """Start and wait until port answers with INFO; returns the broker name."""
        expect(port_free(port), ("port %d is taken in this test's private network namespace "
                                 "(a broker of an earlier check still holds it?)" if PRIVATE
                                 else "port %d is taken on this machine, and no private "
                                 "network namespace was available to run hpfeeds3's command "
                                 "line on it") % port)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([DAEMON] + self.args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                         env=self.env)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed("hpfriendsd %s exited with status %d (it must stay in the "
                                  "foreground like hpfeeds-broker): %s"
                                  % (" ".join(self.args), self.proc.returncode, self.log()))
            try:
                return info(port, tls_ctx)
            except (OSError, hp.Closed, TimeoutError):
                time.sleep(0.05)
        raise CheckFailed("nothing answered on port %d" % port)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""


def run_fail(tmp, name, args, env=None):
    """Run a command line that must not start: (status, output, files left in its cwd)."""
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    full = dict(os.environ)
    full.update(env or {})
    try:
        r = subprocess.run([DAEMON] + args, cwd=d, env=full, capture_output=True, text=True,
                           timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CheckFailed("hpfriendsd %s did not stop within %.0f s" % (" ".join(args), TIMEOUT))
    return r.returncode, r.stdout + r.stderr, sorted(os.listdir(d))


# ---- clients ----

class TlsClient(hp.Client):
    def __init__(self, ctx, *args, **kw):
        super().__init__(*args, **kw)
        self.ctx = ctx

    def connect(self):
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock = self.ctx.wrap_socket(raw, server_hostname=self.host)
        op, fields = self.read_frame(self.timeout)
        expect(op == hp.OP_INFO, "first frame over TLS was op %d, not INFO" % op)
        self.broker_name, self.nonce = fields
        self.send(hp.encode_auth(self.ident, self.nonce, self.secret))
        return self


def client(port, ident, secret, tls_ctx=None):
    if tls_ctx:
        return TlsClient(tls_ctx, HOST, port, ident, secret, timeout=TIMEOUT).connect()
    return hp.Client(HOST, port, ident, secret, timeout=TIMEOUT).connect()


def info(port, tls_ctx=None):
    c = client(port, "nobody", "x", tls_ctx)
    try:
        return c.broker_name.decode()
    finally:
        c.close()


def pubsub(port, pub, sub, chan, tls_ctx=None):
    """sub=(ident, secret) subscribes to chan, pub publishes until it arrives."""
    s = client(port, sub[0], sub[1], tls_ctx)
    p = client(port, pub[0], pub[1], tls_ctx)
    try:
        s.subscribe(chan)
        payload = b"hello from " + pub[0].encode()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            p.publish(chan, payload)
            try:
                msg = s.next_message(timeout=0.2)
            except TimeoutError:
                continue
            expect(msg == (pub[0].encode(), chan.encode(), payload),
                   "%s received %r" % (sub[0], msg))
            return
        raise CheckFailed("%s never received %s's message on %s" % (sub[0], pub[0], chan))
    except hp.BrokerError as e:
        raise CheckFailed("broker error in %s -> %s on %s: %s" % (pub[0], sub[0], chan, e))
    finally:
        s.close()
        p.close()


def refused(port, ident, secret):
    """The ERROR text of a refused AUTH (the broker answers with ERROR, then closes)."""
    c = client(port, ident, secret)
    try:
        op, fields = c.read_frame(TIMEOUT)
    except hp.Closed:
        return "closed without ERROR"
    finally:
        c.close()
    return fields[0].decode() if op == hp.OP_ERROR else "op %d" % op


# ---- data, made the way hpfeeds3's docs make it ----

def hpfeeds3_sqlite_insert(db, owner, ident, secret, pub, sub):
    con = sqlite3.connect(db)
    con.execute("INSERT INTO authkeys (owner, ident, secret, pubchans, subchans) "
                "VALUES (?, ?, ?, ?, ?)", (owner, ident, secret, json.dumps(pub), json.dumps(sub)))
    con.commit()
    con.close()


def auth_keys_db(path):
    """broker.rst's table for database+sqlite, and its example row."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE `auth_keys` (`id` int AUTO_INCREMENT NOT NULL , "
                "`identifier` varchar(36) DEFAULT NULL, `secret` varchar(36) DEFAULT NULL, "
                "`publish` json DEFAULT NULL, `subscribe` json DEFAULT NULL, PRIMARY KEY (`id`))")
    # In SQLite that `id` is no rowid alias, so it needs a value (NOT NULL).
    con.execute("INSERT INTO auth_keys (id, identifier, secret, publish, subscribe) VALUES "
                "(1, 'testing', 'secretkey', '[\"channel1\", \"channel2\"]', '[\"channel2\"]')")
    con.commit()
    rows = con.execute("SELECT * FROM auth_keys").fetchall()
    con.close()
    return rows


def users_json(path, users):
    with open(path, "w") as f:
        json.dump({ident: {"owner": ident + "-owner", "secret": secret, "pubchans": pub,
                           "subchans": sub} for ident, (secret, pub, sub) in users.items()}, f)


def make_cert(d):
    """broker.rst's openssl line (with -subj instead of the prompts)."""
    key, crt = os.path.join(d, "broker.key"), os.path.join(d, "broker.crt")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout", key,
                        "-nodes", "-out", crt, "-sha256", "-days", "1000", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, text=True)
    expect(r.returncode == 0, "openssl req failed: %s" % r.stderr)
    ctx = ssl.create_default_context(cafile=crt)
    return ctx


# ---- the checks: one per row of the table, and the errors ----

def check_no_flags(tmp):
    """hpfeeds-broker with no flags: 0.0.0.0:20000, ./sqlite.db, name hpfeeds."""
    b = Broker(tmp, "no-flags", [])
    try:
        name = b.start(20000)
        expect(name == "hpfeeds", "INFO name %r, expected hpfeeds" % name)
        expect(listening(20000) == {"0.0.0.0"}, "listeners on 20000: %r" % listening(20000))
        db = b.path("sqlite.db")
        expect(os.path.exists(db), "no ./sqlite.db in the working directory: %r"
               % os.listdir(b.dir))
        # broker.rst: keys are added with SQL, "You don't need to restart the broker".
        hpfeeds3_sqlite_insert(db, "owner", "ident", "secret", ["chan1"], ["chan1"])
        pubsub(20000, ("ident", "secret"), ("ident", "secret"), "chan1")
        expect(sorted(x for x in os.listdir(b.dir) if not x.startswith("sqlite.db"))
               == [], "other files in the working directory: %r" % os.listdir(b.dir))
    finally:
        b.stop()


def check_auth_sqlite(tmp):
    for value in ("sqlite", "sqlite.db", "./sqlite.db"):
        b = Broker(tmp, "auth-" + value, ["--auth", value])
        try:
            b.start(20000)
            expect(os.path.exists(b.path("sqlite.db")), "--auth %s: no ./sqlite.db: %r"
                   % (value, os.listdir(b.dir)))
            expect(not os.path.exists(b.path("sqlite")), "a file named 'sqlite' was created")
            hpfeeds3_sqlite_insert(b.path("sqlite.db"), "o", "k", "s", ["c"], ["c"])
            pubsub(20000, ("k", "s"), ("k", "s"), "c")
        finally:
            b.stop()


ENV_COMPOSE = {"HPFEEDS_TEST_SECRET": "test", "HPFEEDS_TEST_SUBCHANS": "spam",
               "HPFEEDS_TEST_PUBCHANS": "spam"}


def check_auth_env(tmp):
    """broker.rst's docker-compose example, and its james example (upper-cased names)."""
    env = dict(ENV_COMPOSE, HPFEEDS_JAMES_SECRET="secret", HPFEEDS_JAMES_SUBCHANS="test-chan",
               HPFEEDS_JAMES_PUBCHANS="test-chan,other", HPFEEDS_JAMES_OWNER="jim")
    b = Broker(tmp, "auth-env", ["--endpoint=tcp:port=10000", "--auth=env"], env)
    try:
        name = b.start(10000)
        expect(name == "hpfeeds", "INFO name %r" % name)
        expect(listening(10000) == {"0.0.0.0"}, "listeners on 10000: %r" % listening(10000))
        expect(not listening(20000), "also listening on 20000")
        pubsub(10000, ("test", "test"), ("test", "test"), "spam")
        pubsub(10000, ("james", "secret"), ("james", "secret"), "test-chan")
        why = refused(10000, "test", "wrong")
        expect(why == "Authentication failed for test", "wrong secret: %r" % why)
        why = refused(10000, "nobody", "x")
        expect(why == "Authentication failed for nobody", "unknown ident: %r" % why)
        expect(os.listdir(b.dir) == [], "files created: %r" % os.listdir(b.dir))
    finally:
        b.stop()


def check_stacked(tmp):
    """--auth users.json --auth env: in order, the first source knowing an ident wins."""
    for order in (["users.json", "env"], ["env", "users.json"]):
        b = Broker(tmp, "stacked-" + "-".join(order), ["-e", "tcp:port=20000"] +
                   [x for a in order for x in ("--auth", a)],
                   {"HPFEEDS_BOTH_SECRET": "env-secret", "HPFEEDS_BOTH_PUBCHANS": "c",
                    "HPFEEDS_BOTH_SUBCHANS": "c", "HPFEEDS_ENVONLY_SECRET": "e",
                    "HPFEEDS_ENVONLY_PUBCHANS": "c", "HPFEEDS_ENVONLY_SUBCHANS": "c"})
        users_json(b.path("users.json"), {"both": ("json-secret", ["c"], ["c"]),
                                          "jsononly": ("j", ["c"], ["c"])})
        try:
            b.start(20000)
            winner, loser = (("json-secret", "env-secret") if order[0] == "users.json"
                             else ("env-secret", "json-secret"))
            pubsub(20000, ("both", winner), ("jsononly", "j"), "c")
            why = refused(20000, "both", loser)
            expect(why == "Authentication failed for both",
                   "order %r: the later source's secret for 'both': %r" % (order, why))
            pubsub(20000, ("envonly", "e"), ("jsononly", "j"), "c")
        finally:
            b.stop()


def check_endpoints(tmp):
    """-e tcp:port=..., interface=, two endpoints (README, broker.rst, Dockerfile CMD)."""
    b = Broker(tmp, "endpoint-interface", ["--endpoint=tcp:interface=127.0.0.1:port=20000"])
    try:
        b.start(20000)
        expect(listening(20000) == {"127.0.0.1"}, "listeners: %r" % listening(20000))
    finally:
        b.stop()
    # The Dockerfile's CMD: metrics on 9431 too.
    b = Broker(tmp, "dockerfile-cmd", ["--endpoint=tcp:port=20000", "--exporter=0.0.0.0:9431"])
    try:
        b.start(20000)
        expect(listening(20000) == {"0.0.0.0"}, "listeners: %r" % listening(20000))
        with urllib.request.urlopen("http://127.0.0.1:9431/metrics", timeout=TIMEOUT) as r:
            expect(r.status == 200, "exporter status %d" % r.status)
    finally:
        b.stop()
    # README: -e ... --auth=FILE.json
    b = Broker(tmp, "readme-json", ["-e", "tcp:port=20000", "--exporter=0.0.0.0:9431",
                                    "--auth=users.json"])
    users_json(b.path("users.json"), {"my-user-ident": ("my-really-strong-passphrase",
                                                        ["chan1"], ["chan1"])})
    try:
        b.start(20000)
        key = ("my-user-ident", "my-really-strong-passphrase")
        pubsub(20000, key, key, "chan1")
    finally:
        b.stop()


def check_name(tmp):
    b = Broker(tmp, "name", ["-e", "tcp:port=10000", "--name", "mybroker"])
    try:
        name = b.start(10000)
        expect(name == "mybroker", "INFO name %r" % name)
    finally:
        b.stop()


def check_tls(tmp):
    """broker.rst's TLS example and its "Multiple interfaces" one (device=lo here)."""
    b = Broker(tmp, "tls", ["--endpoint=tls:port=10000:key=broker.key:cert=broker.crt",
                            "--endpoint=tcp:port=20000:device=lo", "--auth=env"], ENV_COMPOSE)
    ctx = make_cert(b.dir)
    try:
        name = b.start(10000, ctx)
        expect(name == "hpfeeds", "INFO name over TLS %r" % name)
        pubsub(10000, ("test", "test"), ("test", "test"), "spam", ctx)
        expect(listening(20000) == {"0.0.0.0"}, "plain listener: %r" % listening(20000))
        pubsub(20000, ("test", "test"), ("test", "test"), "spam")
        plain = socket.create_connection((HOST, 10000), timeout=TIMEOUT)
        try:
            plain.settimeout(2)
            try:
                first = plain.recv(5)
            except (socket.timeout, ConnectionError):
                first = b""
            expect(first[4:5] != bytes([hp.OP_INFO]), "port 10000 speaks plain hpfeeds")
        finally:
            plain.close()
    finally:
        b.stop()


def check_database_sqlite(tmp):
    """--auth "database+sqlite:///auth_keys.db" (relative) and ////abs."""
    for form in ("database+sqlite:///auth_keys.db", "database+sqlite:////ABS/auth_keys.db",
                 "database+sqlite+aiosqlite:///auth_keys.db"):
        b = Broker(tmp, "db-" + str(abs(hash(form))), [])
        arg = form.replace("/ABS", b.dir)
        b.args = ["-e", "tcp:port=20000", "--exporter=0.0.0.0:9431", "--auth=" + arg]
        before = auth_keys_db(b.path("auth_keys.db"))
        try:
            b.start(20000)
            pubsub(20000, ("testing", "secretkey"), ("testing", "secretkey"), "channel2")
            why = refused(20000, "testing", "wrong")
            expect(why == "Authentication failed for testing", "%s: wrong secret %r"
                   % (form, why))
        finally:
            b.stop()
        con = sqlite3.connect(b.path("auth_keys.db"))
        after = con.execute("SELECT * FROM auth_keys").fetchall()
        con.close()
        expect(after == before, "%s: auth_keys rows changed: %r -> %r" % (form, before, after))
        expect(not os.path.exists(b.path("sqlite.db")), "%s: a sqlite.db was made" % form)


def check_sql_plugin_missing(tmp):
    """database+postgresql/mysql with a plugin directory that lacks the plugin."""
    real = os.environ.get("HPFRIENDS_PLUGIN_DIR") or os.path.join(BUILDDIR, "plugins", ".libs")
    pdir = os.path.join(tmp, "plugins-without-sql")
    os.makedirs(pdir, exist_ok=True)
    for f in os.listdir(real):
        if f.endswith(".so") and "postgresql" not in f and "mysql" not in f:
            os.symlink(os.path.join(real, f), os.path.join(pdir, f))
    cases = [("database+postgresql://localhost/example", "PostgreSQL", "postgresql"),
             ("database+postgresql+psycopg2://u:hunter2@localhost/example", "PostgreSQL",
              "postgresql"),
             ("database+mysql://username:hunter2@127.0.0.1/example", "MySQL/MariaDB", "mysql"),
             ("database+mysql+pymysql://username:hunter2@127.0.0.1/example", "MySQL/MariaDB",
              "mysql")]
    for i, (arg, what, plugin) in enumerate(cases):
        rc, out, files = run_fail(tmp, "sql-%d" % i, ["-e", "tcp:port=20000", "--auth=" + arg],
                                  {"HPFRIENDS_PLUGIN_DIR": pdir})
        want = ("%s storage needs the plugin storage_%s, which is not installed (no %s/"
                "storage_%s.so)" % (what, plugin, pdir, plugin))
        expect(rc == 1 and want in out, "%s: status %d, output %r; wanted %r" % (arg, rc, out,
                                                                                   want))
        expect("hunter2" not in out, "%s: the password appears in the output" % arg)
        expect(files == [], "%s: files created: %r" % (arg, files))
        r = subprocess.run([CTL, "--auth", arg, "authkey", "list"], capture_output=True,
                           text=True, timeout=TIMEOUT, env=dict(os.environ,
                                                                HPFRIENDS_PLUGIN_DIR=pdir))
        expect(r.returncode == 1 and r.stderr == "hpfriendsctl: %s\n" % want,
               "hpfriendsctl --auth %s: %d %r" % (arg, r.returncode, r.stderr))


def check_errors(tmp):
    cases = [
        (["--auth", "nosuch"], "hpfriendsd: --auth nosuch: no such file, and not a kind of "
         "source hpfriendsd knows; expected a .json file, env, sqlite, a SQLite file, "
         "mongodb://..., or database+postgresql|mysql|sqlite://..."),
        (["--auth=/var/lib/hpfeeds-nonexistent/users.json"],
         "hpfriendsd: --auth /var/lib/hpfeeds-nonexistent/users.json: cannot find "
         "'/var/lib/hpfeeds-nonexistent/users.json'"),
        (["--auth", "database+sqlite:///auth_keys.db"],
         "hpfriendsd: --auth database+sqlite:///auth_keys.db: cannot find '%(cwd)s/auth_keys.db'"),
        (["--auth", "database+oracle://u:pw@h/db"],
         "hpfriendsd: --auth database+oracle://...: unsupported database 'oracle' "
         "(postgresql, mysql or sqlite)"),
        (["--auth", "env", "--auth", "env"], "hpfriendsd: --auth env: given twice"),
        (["--auth", "sqlite", "--auth", "x.json"],
         "hpfriendsd: --auth x.json: a second writable source after --auth sqlite"),
        (["-e", "tcp:port=20000:cert=x"], "hpfriendsd: --endpoint tcp:port=20000:cert=x: "
         "unknown key 'cert' (expected port, interface, device)"),
        (["-e", "tcp:interface=127.0.0.1"],
         "hpfriendsd: --endpoint tcp:interface=127.0.0.1: port= is required"),
        (["--tlscert", "c.pem"], "hpfriendsd: --tlscert and --tlskey go together: give both"),
        # broker.rst's "Multiple interfaces" example, on a machine without lan0.
        (["--endpoint=tcp:port=20000:device=lan0", "--auth=env"],
         "hpfriendsd: listen tcp:0.0.0.0:20000: device lan0: No such device"),
    ]
    for i, (args, want) in enumerate(cases):
        name = "err-%d" % i
        if "x.json" in args:
            os.makedirs(os.path.join(tmp, name), exist_ok=True)
            users_json(os.path.join(tmp, name, "x.json"), {})
        rc, out, files = run_fail(tmp, name, args)
        want = want % {"cwd": os.path.join(tmp, name)} if "%(cwd)s" in want else want
        expect(rc == 1 and want in out, "%s: status %d, output %r; wanted %r"
               % (" ".join(args), rc, out, want))
        expect(files in ([], ["x.json"]), "%s: files created: %r" % (" ".join(args), files))


def ctl(cwd, *args):
    r = subprocess.run([CTL] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


def check_ctl(tmp):
    """hpfriendsctl takes the same --auth values; env keys are read-only."""
    d = os.path.join(tmp, "ctl")
    os.makedirs(d, exist_ok=True)
    rc, out, err = ctl(d, "--auth", "env", "authkey", "list")
    want = ("hpfriendsctl: --auth env: keys from the environment are read-only (set "
            "HPFEEDS_<IDENT>_SECRET, _OWNER, _PUBCHANS, _SUBCHANS for the broker); name a "
            "writable source to manage\n")
    expect(rc == 1 and err == want, "--auth env: status %d, stderr %r" % (rc, err))
    users_json(os.path.join(d, "users.json"), {"k": ("s", ["c"], ["c"])})
    rc, out, err = ctl(d, "--auth", "users.json", "--auth", "env", "authkey", "list")
    expect(rc == 0 and out.startswith("k\t"), "users.json + env list: %d %r %r" % (rc, out, err))
    expect(err == "hpfriendsctl: note: keys from --auth env are read-only and not shown here; "
           "this works on the other source\n", "the note: %r" % err)
    auth_keys_db(os.path.join(d, "auth_keys.db"))
    rc, out, err = ctl(d, "--auth", "database+sqlite:///auth_keys.db", "authkey", "list")
    expect(rc == 0 and out.startswith("testing\t"), "auth_keys list: %d %r %r" % (rc, out, err))
    rc, out, err = ctl(d, "--auth", "database+sqlite:///auth_keys.db", "authkey", "del", "testing")
    expect(rc == 1 and err == "hpfriendsctl: authkey 'testing' is in hpfeeds3's auth_keys table, "
           "which is read-only here (change it with SQL)\n", "auth_keys del: %d %r" % (rc, err))
    rc, out, err = ctl(d, "--auth", "nosuch", "authkey", "list")
    expect(rc == 1 and "--auth nosuch: no such file" in err and
           not os.path.exists(os.path.join(d, "nosuch")), "nosuch: %d %r" % (rc, err))


def check_config_file_defaults(tmp):
    """A config file keeps hpfriends' own defaults: 127.0.0.1:10000, name hpfriends."""
    d = os.path.join(tmp, "conf")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "hpfriendsd.conf")
    with open(conf, "w") as f:
        f.write("[storage]\nplugin = sqlite\npath = hpfriends.db\n")
    b = Broker(tmp, "conf", ["-f", "-c", conf])
    try:
        name = b.start(10000)
        expect(name == "hpfriends", "INFO name %r" % name)
        expect(listening(10000) == {"127.0.0.1"}, "listeners: %r" % listening(10000))
        expect(not listening(20000), "listening on 20000 too")
    finally:
        b.stop()


CHECKS = [
    ("no --bind, no -e, no --auth: 0.0.0.0:20000, ./sqlite.db, INFO name hpfeeds",
     check_no_flags),
    ("--auth sqlite, sqlite.db, ./sqlite.db: ./sqlite.db, no file named sqlite",
     check_auth_sqlite),
    ("--endpoint=tcp:port=10000 --auth=env: HPFEEDS_<IDENT>_* keys, nothing written",
     check_auth_env),
    ("--auth users.json --auth env (and reversed): first source knowing the ident wins",
     check_stacked),
    ("-e/--endpoint tcp forms, interface=, the Dockerfile CMD with --exporter", check_endpoints),
    ("--name mybroker", check_name),
    ("--endpoint=tls:...:key=broker.key:cert=broker.crt plus tcp:...:device=lo", check_tls),
    ("--auth=database+sqlite:///auth_keys.db, ////absolute, +driver: auth_keys rows",
     check_database_sqlite),
    ("database+postgresql/mysql without their plugin: a clear error", check_sql_plugin_missing),
    ("unknown --auth kinds, missing files, bad endpoints: exact errors, no file made",
     check_errors),
    ("hpfriendsctl --auth: env keys read-only, auth_keys listed, no file made", check_ctl),
    ("-c FILE keeps 127.0.0.1:10000 and the name hpfriends", check_config_file_defaults),
]


def run_checks():
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="hpf-cmdline-")
    try:
        for name, fn in CHECKS:
            try:
                fn(tmp)
                passed += 1
                print("ok - %s" % name, flush=True)
            except CheckFailed as e:
                failed += 1
                print("FAIL - %s: %s" % (name, e), flush=True)
            except Exception as e:  # noqa: BLE001 - any error is a failed check
                failed += 1
                print("FAIL - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
                traceback.print_exc(file=sys.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    if IN_NETNS in sys.argv[1:]:
        loopback_up()
        print("# in a private network namespace", flush=True)
        return run_checks()
    rc, why = reexec_in_netns()
    if rc is not None:
        return rc
    print("# no private network namespace (%s): using the host's ports" % why, flush=True)
    return run_checks()


if __name__ == "__main__":
    sys.exit(main())
