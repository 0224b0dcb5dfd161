#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""hpfriendsd as a service: switching to an unprivileged user and the pid file.

Privilege drop (needs root, as in CI): a broker started as root with
[broker] user = nobody runs with nobody's uid, gid and groups only
(/proc/PID/status), creates its SQLite database and file-sink log as that
user, serves pub/sub from them, and after a logrotate-style rename plus
SIGHUP reopens the log and reloads authkeys as that user.  Failure modes: an
unknown user or group, user root, a group without a user, and a non-root
process asked to become another user all refuse to start, with the reason;
a non-root process asked to be itself starts.

Pid file: holds the daemon's pid (in the foreground and after daemonizing),
is locked, so that a second broker on it refuses to start and leaves it
alone; is removed on SIGTERM; a stale one is taken over; a failed start
leaves none.  With a user switch: a missing directory is made for the user
and the file is removed after the switch.

logrotate (needs root and /usr/sbin/logrotate): the installed snippet,
with test paths, rotates a file sink's log of a broker running as nobody,
which then writes a new file.

Run as root it runs everything; run as another user, the root-only checks
cannot run: the runner then reports SKIP (exit 77) if the others passed.
"""

import grp
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time

import hpftest as T

ROOT = os.geteuid() == 0
USER = "nobody"
START_TIMEOUT = 15.0


def nobody_ids():
    pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def user_dir(r, name, owner=True):
    """A directory the service user may write (the runner's is 0700)."""
    os.chmod(r.tmp, 0o755)
    d = r.subdir(name)
    if owner and ROOT:
        uid, gid = nobody_ids()
        os.chown(d, uid, gid)
    return d


def conf(d, broker=None, sink=True, name="hpfriends.conf"):
    path = T.write_config(d, broker=broker, name=name, backend="sqlite")
    if sink:
        with open(path, "a") as f:
            f.write("\n[sink:log]\nplugin = file\npath = messages.jsonl\nfsync = every\n")
    return path


def status_ids(pid):
    """Uid, Gid and Groups lines of /proc/PID/status, as lists of ints."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(x) for x in value.split()]
    return out


def as_user(uid, gid):
    """subprocess arguments that run a child as uid/gid with no other group."""
    return {"user": uid, "group": gid, "extra_groups": []}


def run_daemon(args, timeout=START_TIMEOUT, cwd=None, **kw):
    """hpfriendsd ARGS to completion: (exit status, stdout+stderr)."""
    p = subprocess.run([T.DAEMON] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, cwd=cwd, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def ctl_as(uid, gid, conf_path, *args):
    p = subprocess.run([T.CTL, "-c", conf_path] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=T.CTL_TIMEOUT, **as_user(uid, gid))
    T.expect(p.returncode == 0, "hpfriendsctl %s: %s" % (" ".join(map(str, args)),
                                                         p.stderr.decode(errors="replace")))


def add_key(uid, gid, conf_path, user, ident, secret, chan):
    ctl_as(uid, gid, conf_path, "user", "add", user)
    ctl_as(uid, gid, conf_path, "authkey", "add", "--owner", user, "--ident", ident,
           "--secret", secret, "--publish", chan, "--subscribe", chan)


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def owner_of(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid


# ------------------------------------------------------------ privilege drop

def test_drop(r):
    uid, gid = nobody_ids()
    d = user_dir(r, "drop")
    # Only SIGHUP reloads (no timer within the test).
    c = conf(d, broker={"user": USER, "reload_interval": 3600})
    add_key(uid, gid, c, "alice", "alice-key", "alice-secret", "ch")
    b = T.Broker(r, "drop", conf=c, cwd=d).start()
    ids = status_ids(b.proc.pid)
    want_groups = sorted(set(os.getgrouplist(USER, gid)))
    r.equal("Uid: real, effective, saved, fs are nobody's", ids.get("Uid"), [uid] * 4)
    r.equal("Gid: real, effective, saved, fs are nobody's group", ids.get("Gid"), [gid] * 4)
    r.equal("Groups: nobody's supplementary groups only (no 0)", sorted(ids.get("Groups", [])),
            want_groups)
    r.check("the log says it switched", "now running as user nobody" in open(b.log_path).read())
    db = os.path.join(d, "hpfriends.db")
    r.equal("the database was created by the service user", owner_of(db), (uid, gid))

    # One connection publishes and reads: the broker orders what one peer sends.
    sub = b.connect("alice-key", "alice-secret")
    sub.subscribe("ch")
    sub.publish("ch", b"before-rotate")
    sub.sync("ch")
    r.equal("pub/sub works after the switch", sub.payloads(), [b"before-rotate"])
    log = os.path.join(d, "messages.jsonl")
    # The sink writes on its own thread: wait for the line.
    T.poll(lambda: any(b"before-rotate" in l for l in read_lines(log)), 10, 0.05)
    r.check("the file sink logs as the service user",
            any(b"before-rotate" in l for l in read_lines(log)) and owner_of(log) == (uid, gid),
            "lines %r, owner %r" % (read_lines(log), owner_of(log) if os.path.exists(log) else None))

    # logrotate: rename, then SIGHUP.  A key added since: AUTH looks keys up
    # in storage as they are, so it proves the service user reads new rows;
    # the reload the SIGHUP asks for is proven by its graph version.
    os.rename(log, log + ".1")
    add_key(uid, gid, c, "bob", "bob-key", "bob-secret", "ch")
    b.signal(signal.SIGHUP)
    def bob_in():
        try:
            p = b.connect("bob-key", "bob-secret")
        except Exception:  # noqa: BLE001
            return None
        return p
    bob = T.poll(bob_in, 10)
    r.check("a key added after the switch authenticates", bob is not None)
    # The signal is handled on the loop, maybe after bob's AUTH: messages
    # accepted once the sink has reopened go to the new file, not before.
    reopened = "reopened %s" % log
    r.check("SIGHUP after the switch reaches the sink",
            T.poll(lambda: reopened in open(b.log_path).read(), 10, 0.05))
    def reloaded():
        text = open(b.log_path).read()
        after = text[text.find("SIGHUP: reloading"):]
        return "SIGHUP: reloading" in text and re.search(r"graph: version \d+: 2 users", after)
    r.check("SIGHUP after the switch reloads the graph (bob is its second user)",
            T.poll(reloaded, 10, 0.05), open(b.log_path).read()[-2000:])
    sub.publish("ch", b"after-rotate")
    sub.sync("ch")
    T.poll(lambda: any(b"after-rotate" in l for l in read_lines(log)), 10, 0.05)
    r.check("SIGHUP after the switch reopens the sink's file, as the service user",
            os.path.exists(log) and owner_of(log) == (uid, gid) and
            any(b"after-rotate" in l for l in read_lines(log)) and
            not any(b"after-rotate" in l for l in read_lines(log + ".1")),
            "new file %r, rotated %r" % (read_lines(log), read_lines(log + ".1")))
    r.check("still the service user after SIGHUP", status_ids(b.proc.pid).get("Uid") == [uid] * 4)
    r.equal("SIGTERM: clean exit", b.stop(), 0)


def refused(r, what, args, want, **kw):
    rc, out = run_daemon(args, **kw)
    r.check("%s: refused with the reason" % what, rc != 0 and want in out,
            "status %r, output %r (want %r)" % (rc, out, want))


def test_refusals(r):
    d = user_dir(r, "refuse", owner=False)
    base = {"user": "hpf-no-such-user"}
    c = conf(d, broker=base, sink=False)
    refused(r, "unknown user", ["-f", "-c", c], "[broker] user: no such user 'hpf-no-such-user'")
    refused(r, "unknown user, --test", ["--test", "-c", c], "no such user 'hpf-no-such-user'")
    c2 = conf(d, sink=False, name="flags.conf")
    refused(r, "unknown --user", ["-f", "-c", c2, "--user", "hpf-no-such-user"],
            "no such user 'hpf-no-such-user'")
    refused(r, "unknown --group", ["-f", "-c", c2, "--user", USER, "--group", "hpf-no-such-group"],
            "no such group 'hpf-no-such-group'")
    refused(r, "user root", ["-f", "-c", c2, "--user", "root"], "is root (uid 0)")
    refused(r, "group without user", ["-f", "-c", c2, "--group", "nogroup"],
            "needs [broker] user")
    r.check("nothing was created by the refused starts",
            not os.path.exists(os.path.join(d, "hpfriends.db")), str(os.listdir(d)))


def test_not_root(r):
    """A non-root broker asked to become another user refuses; asked to be
    itself, it runs."""
    if ROOT:
        uid, gid = nobody_ids()
        kw = as_user(uid, gid)
        other = "daemon"
        me = USER
    else:
        kw = {}
        other = "nobody" if pwd.getpwuid(os.getuid()).pw_name != "nobody" else "daemon"
        me = pwd.getpwuid(os.getuid()).pw_name
    d = user_dir(r, "notroot")
    c = conf(d, broker={"user": other}, sink=False)
    refused(r, "not root, another user", ["-f", "-c", c], "cannot switch to user %s" % other,
            cwd=d, **kw)
    r.check("not root, another user: it did not serve",
            not os.path.exists(os.path.join(d, "hpfriends.db")), str(os.listdir(d)))
    c2 = conf(d, broker={"user": me}, sink=False, name="me.conf")
    ready = os.path.join(d, "me.ready")
    p = subprocess.Popen([T.DAEMON, "-f", "-c", c2, "--ready-file", ready],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=d, **kw)
    try:
        up = T.poll(lambda: os.path.exists(ready) or p.poll() is not None, START_TIMEOUT, 0.05)
        r.check("not root, user = itself: it runs", up and p.poll() is None,
                "status %r" % p.poll())
    finally:
        p.send_signal(signal.SIGTERM)
        out = p.communicate(timeout=T.STOP_TIMEOUT)[0].decode(errors="replace")
    r.equal("not root, user = itself: clean exit (%s)" % out.strip().splitlines()[-1:],
            p.returncode, 0)


# ------------------------------------------------------------ pid file

def read_pid(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def test_pidfile(r):
    d = user_dir(r, "pid", owner=False)
    pidf = os.path.join(d, "hpfriendsd.pid")
    c = conf(d, sink=False)
    b = T.Broker(r, "first", conf=c, cwd=d, args=["--pid-file", pidf]).start()
    r.equal("the pid file holds the broker's pid", read_pid(pidf), "%d\n" % b.proc.pid)

    c2 = conf(d, sink=False, name="second.conf", broker={"pid_file": "hpfriendsd.pid"})
    rc, out = run_daemon(["-f", "-c", c2], cwd="/")
    r.check("a second broker on the same pid file ([broker] pid_file, relative to the "
            "config) refuses to start",
            rc != 0 and "held by running process %d" % b.proc.pid in out, "%r %r" % (rc, out))
    r.equal("... and leaves the first one's file alone", read_pid(pidf), "%d\n" % b.proc.pid)
    r.check("... and the first still runs", b.alive())
    r.equal("SIGTERM: clean exit", b.stop(), 0)
    r.check("SIGTERM: the pid file is removed", not os.path.exists(pidf))

    with open(pidf, "w") as f:
        f.write("999999\n")  # left by a crash: no one holds its lock
    b = T.Broker(r, "stale", conf=c, cwd=d, args=["--pid-file", pidf]).start()
    r.equal("a stale pid file is taken over", read_pid(pidf), "%d\n" % b.proc.pid)
    r.equal("SIGINT: clean exit", (b.proc.send_signal(signal.SIGINT), b.proc.wait(15))[1], 0)
    r.check("SIGINT: the pid file is removed", not os.path.exists(pidf))

    held = socket.socket()
    held.bind((T.HOST, 0))
    held.listen(1)
    c3 = conf(d, sink=False, name="busy.conf",
              broker={"listen": "tcp:%s:%d" % (T.HOST, held.getsockname()[1])})
    rc, out = run_daemon(["-f", "-c", c3, "--pid-file", pidf])
    held.close()
    r.check("a failed start (port in use) exits non-zero", rc != 0, out)
    r.check("a failed start leaves no pid file", not os.path.exists(pidf))


def test_pidfile_daemon(r):
    """Without -f: the file names the daemon, not the process that was started."""
    d = user_dir(r, "pid-daemon", owner=False)
    pidf = os.path.join(d, "hpfriendsd.pid")
    ready = os.path.join(d, "ready")
    c = conf(d, sink=False)
    rc, out = run_daemon(["-c", c, "--pid-file", pidf, "--ready-file", ready])
    r.equal("daemonizing: the starting process exits 0", rc, 0)
    T.poll(lambda: os.path.exists(ready), START_TIMEOUT, 0.05)
    text = read_pid(pidf) or ""
    T.expect(text.strip().isdigit(), "pid file %r" % text)
    pid = int(text)
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv0 = f.read().split(b"\0")[0]
    r.check("the pid file names the running daemon", argv0.endswith(b"hpfriendsd"), argv0)
    # A second daemon on the same port: the command that starts it waits for
    # the detached broker and says why it could not start (it used to exit 0
    # and leave the reason in syslog only).
    with open(ready) as f:
        port = next(l.split()[2] for l in f if l.startswith("tcp "))
    rc, out = run_daemon(["-c", c, "--pid-file", os.path.join(d, "second.pid"),
                          "--bind", "127.0.0.1:%s" % port])
    r.check("a detached start that fails: the command exits 1 and says why",
            rc == 1 and "Address already in use" in out, "status %d: %r" % (rc, out))
    r.check("... and leaves no pid file", not os.path.exists(os.path.join(d, "second.pid")))
    os.kill(pid, signal.SIGTERM)
    gone = T.poll(lambda: not os.path.exists("/proc/%d" % pid) or
                  open("/proc/%d/stat" % pid).read().split()[2] == "Z", T.STOP_TIMEOUT)
    r.check("the daemon exits on SIGTERM", gone)
    r.check("... and removes its pid file", not os.path.exists(pidf))


def test_pidfile_drop(r):
    uid, gid = nobody_ids()
    d = user_dir(r, "pid-drop")
    rundir = os.path.join(d, "run")  # missing: made for the user
    pidf = os.path.join(rundir, "hpfriendsd.pid")
    c = conf(d, broker={"user": USER, "pid_file": pidf}, sink=False)
    b = T.Broker(r, "pid-drop", conf=c, cwd=d).start()
    r.equal("a missing pid file directory is made for the user", owner_of(rundir), (uid, gid))
    r.equal("the pid file holds the pid", read_pid(pidf), "%d\n" % b.proc.pid)
    r.equal("SIGTERM after the switch: clean exit", b.stop(), 0)
    r.check("... and the pid file is removed", not os.path.exists(pidf))

    # A directory the user may not write: the file can only be emptied.
    rootdir = os.path.join(d, "rootonly")
    os.mkdir(rootdir, 0o755)
    pidf = os.path.join(rootdir, "hpfriendsd.pid")
    b = T.Broker(r, "pid-rootdir", conf=c, cwd=d, args=["--pid-file", pidf]).start()
    r.equal("SIGTERM: clean exit", b.stop(), 0)
    r.equal("a pid file the user cannot remove is left empty", read_pid(pidf), "")
    b = T.Broker(r, "pid-again", conf=c, cwd=d, args=["--pid-file", pidf]).start()
    r.equal("... and the next start takes it", read_pid(pidf), "%d\n" % b.proc.pid)
    b.stop()


def test_logrotate(r):
    """The installed logrotate snippet rotates a file sink's log of a broker
    running as the service user, and the broker goes on in a new file.  The
    copy run here differs only in paths and names: the log directory (the
    test's), the user (nobody), the pid file (the test's) and the systemd
    branch (off: no systemd runs here)."""
    tool = "/usr/sbin/logrotate"
    T.expect(os.access(tool, os.X_OK), "logrotate not installed (apt-get install logrotate)")
    src = os.path.join(T.BUILDDIR, "conf", "hpfriends.logrotate")
    T.expect(os.path.exists(src), "%s not built (make)" % src)
    uid, gid = nobody_ids()
    d = user_dir(r, "logrotate")
    logdir = os.path.join(d, "log")
    os.mkdir(logdir, 0o750)
    os.chown(logdir, uid, gid)
    pidf = os.path.join(d, "hpfriendsd.pid")
    c = T.write_config(d, broker={"user": USER, "reload_interval": 3600, "pid_file": pidf},
                       backend="sqlite")
    with open(c, "a") as f:
        f.write("\n[sink:log]\nplugin = file\npath = log/messages.jsonl\n")
    add_key(uid, gid, c, "alice", "alice-key", "alice-secret", "ch")
    b = T.Broker(r, "rotated", conf=c, cwd=d).start()
    peer = b.connect("alice-key", "alice-secret")
    peer.subscribe("ch")
    peer.publish("ch", b"first")
    log = os.path.join(logdir, "messages.jsonl")
    T.poll(lambda: any(b"first" in l for l in read_lines(log)), 10, 0.05)

    with open(src) as f:
        text = f.read()
    prefix = re.search(r"^(\S+)/log/hpfriends/\*\.jsonl", text, re.M)
    T.expect(prefix, "no log path in %s" % src)
    text = text.replace(prefix.group(1) + "/log/hpfriends", logdir)
    text = text.replace("su hpfriends hpfriends", "su %s %s" % (USER, grp.getgrgid(gid).gr_name))
    text = text.replace("/run/hpfriends/hpfriendsd.pid", pidf)
    text = text.replace("[ -d /run/systemd/system ]", "false")
    conf_copy = os.path.join(d, "logrotate.conf")
    with open(conf_copy, "w") as f:
        f.write(text)
    p = subprocess.run([tool, "-f", "-s", os.path.join(d, "state"), conf_copy],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    r.check("logrotate runs the snippet without a complaint",
            p.returncode == 0 and not p.stdout.strip(), p.stdout.decode(errors="replace"))
    rotated = [n for n in os.listdir(logdir) if n.startswith("messages.jsonl-")]
    r.check("the log was renamed (dateext)", len(rotated) == 1, str(os.listdir(logdir)))
    # The signal is handled, and the file reopened, after logrotate returns:
    # wait for the sink to say so, or a message could still go to the old file.
    reopened = "reopened %s" % log
    r.check("the postrotate SIGHUP reaches the broker's sink",
            T.poll(lambda: reopened in open(b.log_path).read(), 10, 0.05))
    peer.publish("ch", b"second")
    T.poll(lambda: any(b"second" in l for l in read_lines(log)), 10, 0.05)
    r.check("the broker writes a new file after the postrotate SIGHUP",
            any(b"second" in l for l in read_lines(log)) and owner_of(log) == (uid, gid),
            "%r" % read_lines(log))
    r.check("... and the rotated file keeps the old lines only",
            rotated and any(b"first" in l for l in read_lines(os.path.join(logdir, rotated[0])))
            and not any(b"second" in l
                        for l in read_lines(os.path.join(logdir, rotated[0]))))

    # The pid file's directory may belong to the service user, who can put
    # any number there: root's postrotate must not signal another process.
    victim = subprocess.Popen(["sleep", "60"])
    try:
        with open(pidf + ".planted", "w") as f:
            f.write("%d\n" % victim.pid)
        os.replace(pidf + ".planted", pidf)
        peer.publish("ch", b"third")
        T.poll(lambda: any(b"third" in l for l in read_lines(log)), 10, 0.05)
        with open(conf_copy, "w") as f:
            f.write(text.replace("dateext", "nodateext"))
        p = subprocess.run([tool, "-f", "-s", os.path.join(d, "state"), conf_copy],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        r.check("logrotate runs again (a planted pid file)", p.returncode == 0,
                p.stdout.decode(errors="replace"))
        try:
            victim.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        r.check("a pid file naming another process: postrotate does not signal it",
                victim.poll() is None, "the planted process exited: %r" % victim.returncode)
    finally:
        victim.kill()
        victim.wait()
    r.equal("SIGTERM: clean exit", b.stop(), 0)


def main():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, T._interrupted)
    r = T.Runner("service")
    sections = [("refusals", test_refusals), ("not root", test_not_root),
                ("pid file", test_pidfile), ("pid file, daemonized", test_pidfile_daemon)]
    root_only = [("privilege drop", test_drop), ("pid file and privilege drop", test_pidfile_drop),
                 ("logrotate", test_logrotate)]
    if ROOT:
        sections += root_only
    try:
        for title, fn in sections:
            r.section(title, fn)
    except T.Interrupted as e:
        r.check("the runner ran to its end", False, "interrupted by %s" % e)
    finally:
        code = r.finish()
    if code == 0 and not ROOT:
        print("# SKIP: not root: %s not run" % ", ".join(t for t, _ in root_only))
        code = 77
    sys.exit(code)


if __name__ == "__main__":
    main()
