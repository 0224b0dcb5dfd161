#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The syslog sink (plugins/sink_syslog) against a real syslog daemon.

Starts Debian's rsyslogd in the foreground with a private config: imuxsock on
a private socket (not /dev/log), imudp and imtcp on 127.0.0.1, one ruleset per
input writing the raw message and the parsed fields to files.  A broker with
three syslog sinks (target = local through that socket, udp:..., tcp:...)
then gets messages and an auth failure, and the lines that arrive are
compared with the expected `channel ident owner len preview` text, escapes
and truncation included, and with the expected facility, severity, tag,
PID and header format.  rsyslogd is restarted to check that the TCP and
local targets reconnect.

rsyslogd missing is a failure, not a skip (Debian package rsyslog).
RSYSLOGD=PATH picks another rsyslogd binary.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinktest as st  # noqa: E402
from sinktest import expect  # noqa: E402

PUB, PUB_SECRET = "pub", "pub-secret"
SYNC = "sync"
CHAN = "sl.a"
ODD_CHAN = "sl.odd chan\\"  # a space and a backslash: escaped in the line
KEYS = {PUB: (PUB_SECRET, [CHAN, ODD_CHAN, SYNC, "sl.after"], [SYNC])}

RSYSLOG_CONF = """\
global(workDirectory="{tmp}")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\\n")
template(name="fields" type="string"
         string="%syslogfacility-text% %syslogseverity-text% %app-name% %procid% %msgid% [%msg%]\\n")
{rulesets}
input(type="imuxsock" Socket="{tmp}/log.sock" ruleset="local" RateLimit.Interval="0"
      CreatePath="on")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="tcp")
"""

RULESET = """\
ruleset(name="{name}") {{
  action(type="omfile" file="{tmp}/{name}.raw" template="raw")
  action(type="omfile" file="{tmp}/{name}.fields" template="fields")
}}
"""

SINKS = """\
[sink:local]
plugin = syslog
socket = log.sock
facility = local3
tag = hpflocal
preview = 16
events = true

[sink:udp]
plugin = syslog
target = udp:127.0.0.1:{udp}
facility = user
tag = hpfudp
channels = {chan};{odd};sl.after

[sink:tcp]
plugin = syslog
target = tcp:127.0.0.1:{tcp}
tag = hpftcp
channels = {chan};{odd};sl.after
"""

PAYLOADS = [
    b"hello world",
    b"tab\there \\ back\x00slash\xff",
    b"A" * 100,
    b"",
    "caf\u00e9".encode(),
    b"x" * 16,
    b"y" * 17,
]


def esc(data, word=False, quote=False):
    """The sink's escaping, written again from its description."""
    out = []
    for c in data:
        if c == 0x5c:
            out.append("\\\\")
        elif c < 0x20 or c > 0x7e or (word and c == 0x20) or (quote and c == 0x22):
            out.append("\\x%02x" % c)
        else:
            out.append(chr(c))
    return "".join(out)


def expected_line(channel, payload, preview):
    line = "%s %s %s %d" % (esc(channel.encode(), True), esc(PUB.encode(), True),
                            esc((PUB + "-owner").encode(), True), len(payload))
    if payload and preview:
        line += " " + esc(payload[:preview]) + ("..." if len(payload) > preview else "")
    return line


free_port = st.free_port  # outside the ephemeral range: see tests/interop/ports.py


class Rsyslog:
    def __init__(self, tmp):
        self.tmp = tmp
        exe = os.environ.get("RSYSLOGD") or shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        self.exe = exe if os.access(exe, os.X_OK) else None
        self.udp = free_port(socket.SOCK_DGRAM)
        self.tcp = free_port(socket.SOCK_STREAM)
        self.conf = tmp.join("rsyslog.conf")
        self.proc = None
        rulesets = "".join(RULESET.format(name=n, tmp=tmp.path) for n in ("local", "udp", "tcp"))
        with open(self.conf, "w") as f:
            f.write(RSYSLOG_CONF.format(tmp=tmp.path, udp=self.udp, tcp=self.tcp,
                                        rulesets=rulesets))

    def start(self):
        expect(self.exe, "rsyslogd not found (apt-get install rsyslog)")
        sock = self.tmp.join("log.sock")
        if os.path.exists(sock):
            os.unlink(sock)
        log = open(self.tmp.join("rsyslogd.log"), "ab")
        self.proc = subprocess.Popen([self.exe, "-n", "-f", self.conf, "-i",
                                      self.tmp.join("rsyslogd.pid")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        # Ready when each input has delivered a probe to its file.
        probe = "probe-%d" % time.monotonic_ns()
        deadline = time.monotonic() + st.READY_TIMEOUT
        while time.monotonic() < deadline:
            expect(self.proc.poll() is None,
                   "rsyslogd exited with status %s: %s" % (self.proc.returncode, self.log_tail()))
            self._probe(probe)
            if all(probe in "".join(self.messages(n)) for n in ("local", "udp", "tcp")):
                return self
            time.sleep(0.1)
        raise st.CheckFailed("rsyslogd not ready: %s" % self.log_tail())

    def _probe(self, text):
        msg = ("<14>1 - - probe - - - %s" % text).encode()
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.connect(self.tmp.join("log.sock"))
            s.send(("<14>Jan  1 00:00:00 probe: %s" % text).encode())
            s.close()
        except OSError:
            pass
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.sendto(msg, (st.HOST, self.udp))
            u.close()
        except OSError:
            pass
        try:
            t = socket.create_connection((st.HOST, self.tcp), timeout=1)
            t.sendall(b"%d " % len(msg) + msg)
            t.close()
        except OSError:
            pass

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self):
        try:
            with open(self.tmp.join("rsyslogd.log"), errors="replace") as f:
                return " | ".join(f.read().splitlines()[-10:])
        except OSError:
            return "(no log)"

    def lines(self, name, kind):
        return [raw.decode("utf-8", "replace") for raw in st.read_lines(
            self.tmp.join("%s.%s" % (name, kind)))]

    def messages(self, name):
        return [m.group(1) for m in (re.search(r"\[(.*)\]$", f) for f in self.lines(name, "fields"))
                if m]

    def records(self, name, tag):
        """[(facility, severity, procid, msgid, msg)] of one tag's lines, msg without the
        leading space RFC 3164 parsing leaves."""
        out = []
        for f in self.lines(name, "fields"):
            m = re.match(r"^(\S+) (\S+) (\S+) (\S+) (\S+) \[(.*)\]$", f)
            if m and m.group(3) == tag:
                msg = m.group(6)
                out.append((m.group(1), m.group(2), m.group(4), m.group(5),
                            msg[1:] if msg.startswith(" ") else msg))
        return out


TARGETS = [
    # name, tag, facility, preview, raw header pattern
    ("local", "hpflocal", "local3", 16,
     r"^<158>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d hpflocal\[%(pid)d\]: "),
    ("udp", "hpfudp", "user", 64,
     r"^<14>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ hpfudp %(pid)d message - "),
    ("tcp", "hpftcp", "daemon", 64,
     r"^<30>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ hpftcp %(pid)d message - "),
]


class SyslogSinkTest:
    def __init__(self, checks, tmp):
        self.c = checks
        self.tmp = tmp
        self.rs = Rsyslog(tmp)
        self.broker = None
        self.pub = None

    def publish_synced(self, channel, items):
        for p in items:
            self.pub.publish(channel, p)
        self.pub.sync(SYNC, timeout=30)

    def message_records(self, name, tag, channels):
        """Records of message lines on `channels` (not events, not sync tokens)."""
        firsts = {esc(ch.encode(), True) for ch in channels}
        return [r for r in self.rs.records(name, tag) if r[4].split(" ")[0] in firsts]

    def wait_messages(self, name, tag, channels, n):
        st.wait_for(lambda: len(self.message_records(name, tag, channels)) >= n)
        return self.message_records(name, tag, channels)

    def test_messages(self):
        sent = [(CHAN, p) for p in PAYLOADS] + [(ODD_CHAN, b"odd channel")]
        for ch, p in sent:
            self.pub.publish(ch, p)
        self.pub.sync(SYNC, timeout=30)
        pid = self.broker.proc.pid
        for name, tag, facility, preview, header in TARGETS:
            msgs = self.wait_messages(name, tag, (CHAN, ODD_CHAN), len(sent))
            want = [expected_line(ch, p, preview) for ch, p in sent]
            got = [r[4] for r in msgs]
            self.c.check("syslog %s: %d lines 'channel ident owner len preview', escaped, "
                         "truncated at %d with '...'" % (name, len(want), preview),
                         got == want, "\n   want %r\n   got  %r" % (want, got))
            self.c.check("syslog %s: facility %s, severity info, tag %s, PID of the broker"
                         % (name, facility, tag),
                         msgs and all(r[0] == facility and r[1] == "info" and r[2] == str(pid)
                                      for r in msgs),
                         repr(msgs[:2]))
            raws = [r for r in self.rs.lines(name, "raw") if (" %s" % tag) in r and
                    expected_line(CHAN, PAYLOADS[0], preview) in r]
            pattern = header % {"pid": pid}
            self.c.check("syslog %s: wire format %s" % (
                name, "as syslog(3) writes it" if name == "local" else "RFC 5424" +
                (" in octet-counted TCP frames" if name == "tcp" else " over UDP")),
                raws and re.match(pattern + re.escape(expected_line(CHAN, PAYLOADS[0], preview))
                                  + "$", raws[0]) is not None,
                "%r !~ %r" % (raws[:1], pattern))

    def test_events(self):
        expect(st.auth_refused(self.broker.port, PUB, "wrong-secret"),
               "a wrong secret was not refused")
        pat = re.compile(r'^auth_failed ident=pub peer=127\.0\.0\.1:\d+ reason=(\S+|"[^"]*")$')

        def found():
            return [r for r in self.rs.records("local", "hpflocal")
                    if r[4].startswith("auth_failed")]

        evs = st.wait_for(found)
        self.c.check("syslog local, events = true: an auth failure is a warning "
                     "'auth_failed ident=.. peer=.. reason=..'",
                     evs and pat.match(evs[0][4]) is not None and evs[0][1] == "warning"
                     and evs[0][3] == "-", repr(evs[:1]))
        udp_events = [r for r in self.rs.records("udp", "hpfudp") if "auth_failed" in r[4]]
        self.c.check("syslog udp, events unset: no event lines", not udp_events,
                     repr(udp_events[:1]))

    def test_restart(self):
        self.rs.stop()
        # While it is down: lost (counted by the broker), never blocking it.
        t0 = time.monotonic()
        self.publish_synced("sl.after", [b"while down"])
        self.c.check("syslog down: the broker keeps serving (publish + sync in %.1f s)"
                     % (time.monotonic() - t0), time.monotonic() - t0 < 5)
        self.rs.start()
        arrived = {}
        deadline = time.monotonic() + 20
        i = 0
        while time.monotonic() < deadline and len(arrived) < 3:
            self.publish_synced("sl.after", [b"after restart %d" % i])
            time.sleep(0.3)
            for name, tag, _, _, _ in TARGETS:
                if name not in arrived and any("after\\x20restart" in r[4] or "after restart"
                                               in r[4] for r in self.rs.records(name, tag)):
                    arrived[name] = i
            i += 1
        for name in ("local", "tcp", "udp"):
            self.c.check("syslog %s: messages arrive again after rsyslogd restarts "
                         "(reconnect)" % name, name in arrived,
                         "after %d attempts; broker log: %s" % (i, self.broker.log_tail(5)))

    def test_sighup(self):
        self.broker.kill(signal.SIGHUP)
        time.sleep(0.3)
        self.publish_synced(CHAN, [b"after hup"])
        ok = all(st.wait_for(lambda n=name, t=tag: any(r[4].endswith(" after hup") for r in
                                                      self.rs.records(n, t)))
                 for name, tag, _, _, _ in TARGETS)
        self.c.check("syslog: SIGHUP reconnects every target and lines keep coming", ok)
        rc = self.broker.stop(signal.SIGTERM)
        self.c.check("syslog: SIGTERM exits 0", rc == 0, "status %r" % rc)

    def run(self):
        self.c.check("rsyslogd is installed (Debian package rsyslog)", self.rs.exe is not None,
                     "not found in PATH or /usr/sbin")
        expect(self.rs.exe, "cannot test the syslog sink without rsyslogd")
        try:
            self.rs.start()
            self.c.check("rsyslogd runs with a private config (socket, udp %d, tcp %d)"
                         % (self.rs.udp, self.rs.tcp), True)
            st.make_auth_db(self.tmp.join("auth.db"), KEYS)
            sinks = SINKS.format(udp=self.rs.udp, tcp=self.rs.tcp, chan=CHAN, odd=ODD_CHAN)
            self.broker = st.Broker(self.tmp, sinks)
            self.broker.start()
            self.pub = self.broker.client(PUB, PUB_SECRET)
            self.pub.subscribe(SYNC)
            self.c.run("syslog: messages", self.test_messages)
            self.c.run("syslog: events", self.test_events)
            self.c.run("syslog: restart", self.test_restart)
            self.c.run("syslog: sighup", self.test_sighup)
        finally:
            if self.pub:
                self.pub.close()
            if self.broker:
                self.broker.stop(signal.SIGKILL)
            self.rs.stop()


CONFIG_ERRORS = [
    ("target scheme", "target = ftp:127.0.0.1:21", "target"),
    ("target port", "target = udp:127.0.0.1:99999", "target"),
    ("bare IPv6 target", "target = tcp:::1:514", "target"),
    ("facility", "facility = local9", "facility"),
    ("tag with a space", "tag = a b", "tag"),
    ("preview", "preview = -1", "preview"),
    ("socket with a remote target", "target = udp:127.0.0.1:514\nsocket = /x", "socket"),
    ("format", "format = json", "format"),
    ("nothing to send", "messages = false", "messages"),
]


def test_config(c, tmp):
    st.make_auth_db(tmp.join("auth.db"), KEYS)
    good = st.Broker(tmp, "[sink:a]\nplugin = syslog\ntarget = tcp:[::1]:6514\nfacility = local7\n"
                     "tag = x\npreview = 0\nformat = rfc3164\nevents = true\n"
                     "[sink:b]\nplugin = syslog\nsocket = /nonexistent/log\n", name="good")
    rc, out = st.run_daemon_once(["-t", "-c", good.conf], tmp)
    c.check("config: valid syslog sections pass hpfriendsd -t", rc == 0, out.strip())
    for what, body, word in CONFIG_ERRORS:
        b = st.Broker(tmp, "[sink:bad]\nplugin = syslog\n%s\n" % body, name="bad")
        rc, out = st.run_daemon_once(["-t", "-c", b.conf], tmp)
        c.check("config: %s is refused naming [sink:bad] and '%s'" % (what, word),
                rc != 0 and "sink:bad" in out and word in out,
                "status %d: %s" % (rc, out.strip()))


def main():
    c = st.Checks("sink_syslog")
    tmp = st.TempDir("hpf-sink-syslog-")
    conf_tmp = st.TempDir("hpf-sink-syslog-conf-")
    try:
        c.run("syslog: against rsyslogd", SyslogSinkTest(c, tmp).run)
        c.run("config", test_config, c, conf_tmp)
    finally:
        tmp.cleanup()
        conf_tmp.cleanup()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
