#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The file sink (plugins/sink_file) in a real broker.

One broker with several [sink:NAME] sections, each a scenario:
  all      no filter: N mixed text/binary messages become exactly N valid JSON
           lines with the right fields; payload bytes round-trip
  rot      max_size rotation with a generous keep: nothing lost across
           path, path.1, ...; no file over max_size; order kept
  rotkeep  rotation with keep = 2: only path, path.1, path.2, holding the newest
  hup      rename + SIGHUP (logrotate): nothing lost, new lines in the new file
  fa, fb   channel filters: each gets only its channels
  full     path = /dev/full: write errors are logged once (rate-limited), the
           broker and the other sinks carry on
  ev       events = true, messages = false: auth failures and denials with
           ident and peer, no message lines
  burst    SIGTERM right after a burst: every line is in the file, exit 0
           (fsync = every keeps the sink behind the broker, so the shutdown
           really has a queue to drain)
plus config errors caught by `hpfriendsd -t`.
"""

import base64
import datetime
import json
import os
import random
import re
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinktest as st  # noqa: E402
from sinktest import expect, hp  # noqa: E402

PUB, PUB_SECRET = "pub", "pub-secret"
SYNC = "sync"
CHANNELS = ["mix", "rot", "hup", "burst", "f.a", "f.b", "f.c", "f.d"]
KEYS = {
    PUB: (PUB_SECRET, CHANNELS + [SYNC], [SYNC]),
    "weak": ("weak-secret", ["mix"], []),
}

ROT_MAX = 4096
ROTKEEP_MAX = 2048
BURST = 1000

SINKS = """\
[sink:all]
plugin = file
path = all.jsonl

[sink:rot]
plugin = file
path = rot.jsonl
channels = rot
max_size = 4K
keep = 100
fsync = every

[sink:rotkeep]
plugin = file
path = rotkeep.jsonl
channels = rot
max_size = 2K
keep = 2

[sink:hup]
plugin = file
path = hup.jsonl
channels = hup

[sink:fa]
plugin = file
path = fa.jsonl
channels = f.a

[sink:fb]
plugin = file
path = fb.jsonl
channels = f.b;f.c

[sink:full]
plugin = file
path = /dev/full
channels = f.a

[sink:ev]
plugin = file
path = ev.jsonl
messages = false
events = true

[sink:burst]
plugin = file
path = burst.jsonl
channels = burst
fsync = every
"""

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def is_text(payload):
    if b"\x00" in payload:
        return False
    try:
        payload.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def payloads():
    rnd = random.Random(4242)
    texts = [b"hello world", "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c".encode(),
             b'quote " backslash \\ slash /', b"line1\nline2\ttab\r", b"\x01\x02 ctl \x1f",
             b"", b'{"json": [1, 2]}', "bee \U0001f41d".encode(), b"\x7f del"]
    binaries = [b"\x00", b"a\x00b", b"\xff\xfe\xfd", bytes(range(256)), b"\xc3\x28 bad",
                b"ok\xed\xa0\x80", bytes(rnd.randrange(256) for _ in range(64))]
    out = []
    i = 0
    while len(out) < 60:
        kind = texts if i % 3 else binaries
        out.append(kind[(i // 3) % len(kind)] + (b"" if i % 5 == 0 else b" #%d" % i))
        i += 1
    return out


def decode_lines(path):
    """All lines of a file as objects; raises on a line that is not a JSON object."""
    objs = []
    for n, raw in enumerate(st.read_lines(path), 1):
        obj = json.loads(raw.decode("utf-8"))
        expect(isinstance(obj, dict), "%s:%d: not a JSON object" % (path, n))
        objs.append(obj)
    return objs


def channel_lines(path, channel):
    try:
        return [o for o in decode_lines(path) if o.get("channel") == channel]
    except ValueError:
        return []


def rotated_files(base):
    """[path.K, ..., path.1, path] that exist: oldest first."""
    files = []
    k = 1
    while os.path.exists("%s.%d" % (base, k)):
        files.append("%s.%d" % (base, k))
        k += 1
    files.reverse()
    if os.path.exists(base):
        files.append(base)
    return files


def seqs(path, prefix):
    out = []
    for raw in st.read_lines(path):
        obj = json.loads(raw)
        out.append(int(obj["payload"][len(prefix):].split("-")[0]))
    return out


class FileSinkTest:
    def __init__(self, checks, tmp):
        self.c = checks
        self.tmp = tmp
        self.broker = None
        self.pub = None

    def publish_synced(self, channel, items):
        for p in items:
            self.pub.publish(channel, p)
        self.pub.sync(SYNC, timeout=30)

    # ---- scenarios ----

    def test_format(self):
        sent = payloads()
        self.publish_synced("mix", sent)
        path = self.tmp.join("all.jsonl")
        got = st.wait_for(lambda: len(channel_lines(path, "mix")) >= len(sent) and
                          channel_lines(path, "mix"))
        self.c.check("file: %d messages give exactly %d lines on their channel"
                     % (len(sent), len(sent)), got and len(got) == len(sent),
                     "got %d" % len(got or []))
        all_ok = True
        try:
            decode_lines(path)
        except ValueError as e:
            all_ok = False
            self.c.check("file: every line is one valid JSON object", False, str(e))
        if all_ok:
            self.c.check("file: every line is one valid JSON object", True)
        got = got or []
        now = datetime.datetime.now(datetime.timezone.utc)
        bad_fields, bad_time, bad_payload, wrong_kind = [], [], [], []
        for i, (obj, want) in enumerate(zip(got, sent)):
            key = "payload" if is_text(want) else "payload_b64"
            if set(obj) != {"time", "ident", "owner", "channel", key}:
                bad_fields.append((i, sorted(obj)))
            if obj.get("ident") != PUB or obj.get("owner") != PUB + "-owner":
                bad_fields.append((i, obj.get("ident"), obj.get("owner")))
            t = obj.get("time", "")
            if not TIME_RE.match(t):
                bad_time.append(t)
            else:
                when = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc)
                if abs((now - when).total_seconds()) > 120:
                    bad_time.append(t)
            if key not in obj:
                wrong_kind.append(i)
                continue
            data = (obj[key].encode("utf-8") if key == "payload"
                    else base64.b64decode(obj[key], validate=True))
            if data != want:
                bad_payload.append((i, want, data))
        self.c.check("file: fields are exactly time, ident, owner, channel, payload|payload_b64",
                     not bad_fields, repr(bad_fields[:3]))
        self.c.check("file: time is RFC 3339 UTC with microseconds, close to now",
                     not bad_time, repr(bad_time[:3]))
        self.c.check("file: valid UTF-8 as payload, anything else (NUL, bad UTF-8) as "
                     "payload_b64", not wrong_kind, repr(wrong_kind[:5]))
        self.c.check("file: payload bytes round-trip, in order (%d text, %d binary)"
                     % (sum(map(is_text, sent)), sum(not is_text(p) for p in sent)),
                     not bad_payload and len(got) == len(sent), repr(bad_payload[:2]))

    def test_rotation(self):
        n = 400
        items = [b"rot-%04d-" % i + b"x" * 80 for i in range(n)]
        self.publish_synced("rot", items)
        base = self.tmp.join("rot.jsonl")

        def total():
            return sum(len(st.read_lines(f)) for f in rotated_files(base))

        st.wait_for(lambda: total() >= n)
        files = rotated_files(base)
        got = [s for f in files for s in seqs(f, "rot-")]
        self.c.check("rotation: %d lines across %d files (path, path.1, ...), none lost or "
                     "doubled" % (n, len(files)), sorted(got) == list(range(n)),
                     "got %d lines" % len(got))
        self.c.check("rotation: rotated at all (more than 5 files for ~%d KB at 4K)"
                     % (n * 140 // 1024), len(files) > 5, "%d files" % len(files))
        sizes = [os.path.getsize(f) for f in files]
        self.c.check("rotation: no file over max_size (%d bytes)" % ROT_MAX,
                     max(sizes or [0]) <= ROT_MAX, repr(sizes))
        self.c.check("rotation: oldest in the highest number, order kept across files",
                     got == list(range(n)))

        kbase = self.tmp.join("rotkeep.jsonl")
        st.wait_for(lambda: os.path.exists(kbase + ".2") and seqs_tail(kbase) == n - 1)
        kfiles = rotated_files(kbase)
        self.c.check("rotation keep = 2: exactly path, path.1, path.2 remain",
                     kfiles == [kbase + ".2", kbase + ".1", kbase] and
                     not os.path.exists(kbase + ".3"), repr([os.path.basename(f) for f in kfiles]))
        kept = [s for f in kfiles for s in seqs(f, "rot-")]
        self.c.check("rotation keep = 2: the kept files hold the newest lines, contiguous",
                     kept and kept == list(range(kept[0], n)) and
                     max(os.path.getsize(f) for f in kfiles) <= ROTKEEP_MAX,
                     "%d..%d" % (kept[0], kept[-1]) if kept else "none")

    def test_reopen(self):
        base = self.tmp.join("hup.jsonl")
        old = base + ".old"
        self.publish_synced("hup", [b"hup-%03d-a" % i for i in range(50)])
        st.wait_for(lambda: len(st.read_lines(base)) >= 50)
        os.rename(base, old)
        # Still written to the renamed file, through the open descriptor.
        self.publish_synced("hup", [b"hup-%03d-b" % i for i in range(50, 100)])
        self.broker.kill(signal.SIGHUP)
        reopened = st.wait_for(lambda: os.path.exists(base))
        self.c.check("reopen: SIGHUP creates a fresh file at path", reopened)
        self.publish_synced("hup", [b"hup-%03d-c" % i for i in range(100, 150)])
        st.wait_for(lambda: len(st.read_lines(old)) + len(st.read_lines(base)) >= 150)
        in_old, in_new = seqs(old, "hup-"), seqs(base, "hup-")
        self.c.check("reopen: rename + SIGHUP loses nothing (150 lines over both files)",
                     sorted(in_old + in_new) == list(range(150)),
                     "old %d, new %d" % (len(in_old), len(in_new)))
        self.c.check("reopen: lines before the SIGHUP in the renamed file, after it in the new",
                     in_old == list(range(100)) and in_new == list(range(100, 150)))

    def test_filters(self):
        for ch, n in (("f.a", 3), ("f.b", 4), ("f.c", 5), ("f.d", 6)):
            self.publish_synced(ch, [b"%s-%d" % (ch.encode(), i) for i in range(n)])
        fa, fb = self.tmp.join("fa.jsonl"), self.tmp.join("fb.jsonl")
        st.wait_for(lambda: len(st.read_lines(fa)) >= 3 and len(st.read_lines(fb)) >= 9)
        st.wait_for(lambda: False, timeout=0.3)  # anything extra would show up by now
        a = [o["channel"] for o in decode_lines(fa)]
        b = [o["channel"] for o in decode_lines(fb)]
        self.c.check("channels = f.a: exactly the 3 f.a messages", a == ["f.a"] * 3, repr(a))
        self.c.check("channels = f.b;f.c: exactly the 4 + 5 f.b and f.c messages",
                     b == ["f.b"] * 4 + ["f.c"] * 5, repr(b))

        # [sink:full] writes f.a to /dev/full: every write fails (ENOSPC).
        def complaints():
            with open(self.broker.log_path, errors="replace") as f:
                return [ln for ln in f if "sink:full:" in ln and "write to /dev/full failed" in ln]
        found = st.wait_for(complaints)
        self.c.check("a failing sink (/dev/full) fails soft: logged once for 3 failed writes "
                     "(rate-limited), the broker and other sinks carry on",
                     len(found) == 1 and "No space left" in found[0] and a == ["f.a"] * 3,
                     repr(found))

    def test_events(self):
        path = self.tmp.join("ev.jsonl")
        expect(st.auth_refused(self.broker.port, PUB, "wrong-secret"),
               "a wrong secret was not refused")

        def auth_failed():
            try:
                return [o for o in decode_lines(path) if o.get("event") == "auth_failed"]
            except ValueError:
                return []

        evs = st.wait_for(auth_failed)
        ev = evs[0] if evs else {}
        self.c.check("events: an auth failure is a line with event, ident and peer",
                     ev.get("ident") == PUB and str(ev.get("peer", "")).startswith("127.0.0.1")
                     and TIME_RE.match(ev.get("time", "")) is not None, repr(ev))

        # A publish outside the key's channels: a denial with the channel.
        with hp.Client(st.HOST, self.broker.port, "weak", "weak-secret") as weak:
            weak.connect()
            weak.publish("f.d", b"not allowed")
            try:
                weak.read_frame(2)
            except (hp.Closed, TimeoutError, ConnectionError):
                pass

        def denied():
            try:
                return [o for o in decode_lines(path) if o.get("event") == "denied"]
            except ValueError:
                return []

        dn = st.wait_for(denied)
        d = dn[0] if dn else {}
        self.c.check("events: a denied publish names ident, owner, channel and peer",
                     d.get("ident") == "weak" and d.get("owner") == "weak-owner" and
                     d.get("channel") == "f.d" and "peer" in d, repr(d))
        objs = decode_lines(path)
        self.c.check("events: messages = false writes no message lines",
                     objs and all("event" in o for o in objs))
        kinds = {o["event"] for o in objs}
        self.c.check("events: connect and disconnect are reported too",
                     {"connect", "disconnect"} <= kinds, repr(sorted(kinds)))

        # An events-only instance is never handed messages: what it handled
        # (counted after each line is written) cannot exceed its lines,
        # although every test above published messages to [sink:all].
        handled = self.broker.metric("hpfriends_sink_delivered_total", 'sink="sink:ev"')
        lines = len(decode_lines(path))
        every = self.broker.metric("hpfriends_sink_delivered_total", 'sink="sink:all"')
        self.c.check("events: messages = false: the broker queues no message for it "
                     "(%r handled, %d lines; [sink:all] handled %r)" % (handled, lines, every),
                     handled is not None and every is not None and 0 < handled <= lines < every)

    def test_burst_then_sigterm(self):
        path = self.tmp.join("burst.jsonl")
        body = b"b" * 150
        for i in range(BURST):
            self.pub.publish("burst", b"burst-%05d-" % i + body)
        self.pub.sync(SYNC, timeout=60)
        before = len(st.read_lines(path))
        rc = self.broker.stop(signal.SIGTERM, timeout=120)
        self.c.check("SIGTERM: the broker exits 0", rc == 0,
                     "status %r: %s" % (rc, self.broker.log_tail()))
        got = seqs(path, "burst-")
        self.c.check("SIGTERM right after a burst of %d: every line written (%d were on disk "
                     "at the signal)" % (BURST, before), got == list(range(BURST)),
                     "got %d" % len(got))

    def run(self):
        st.make_auth_db(self.tmp.join("auth.db"), KEYS)
        self.broker = st.Broker(self.tmp, SINKS, broker_extra="exporter = 127.0.0.1:0").start()
        try:
            self.pub = self.broker.client(PUB, PUB_SECRET)
            self.pub.subscribe(SYNC)
            self.c.run("file: format", self.test_format)
            self.c.run("file: rotation", self.test_rotation)
            self.c.run("file: reopen", self.test_reopen)
            self.c.run("file: channel filters", self.test_filters)
            self.c.run("file: events", self.test_events)
            self.c.run("file: burst + SIGTERM", self.test_burst_then_sigterm)
        finally:
            if self.pub:
                self.pub.close()
            self.broker.stop(signal.SIGKILL)


def seqs_tail(base):
    try:
        s = seqs(base, "rot-")
    except (ValueError, KeyError):
        return None
    return s[-1] if s else None


CONFIG_ERRORS = [
    ("path missing", "", "path"),
    ("fsync value", "path = x.jsonl\nfsync = sometimes", "fsync"),
    ("max_size value", "path = x.jsonl\nmax_size = 10Q", "max_size"),
    ("keep value", "path = x.jsonl\nkeep = 0", "keep"),
    ("events value", "path = x.jsonl\nevents = maybe", "events"),
    ("nothing to write", "path = x.jsonl\nmessages = false", "messages"),
    ("unknown key", "path = x.jsonl\ncolour = blue", "colour"),
]


def test_config(c, tmp):
    st.make_auth_db(tmp.join("auth.db"), KEYS)
    good = st.Broker(tmp, "[sink:ok]\nplugin = file\npath = ok.jsonl\nmax_size = 1M\n"
                     "fsync = interval\nfsync_interval = 0.5\nkeep = 3\nevents = true\n",
                     name="good")
    rc, out = st.run_daemon_once(["-t", "-c", good.conf], tmp)
    c.check("config: a full valid [sink:x] passes hpfriendsd -t", rc == 0, out.strip())
    c.check("config: -t opens no file (create() is pure)", not os.path.exists(tmp.join("ok.jsonl")))
    for what, body, word in CONFIG_ERRORS:
        b = st.Broker(tmp, "[sink:bad]\nplugin = file\n%s\n" % body, name="bad")
        rc, out = st.run_daemon_once(["-t", "-c", b.conf], tmp)
        conf = os.path.basename(b.conf)
        c.check("config: %s is refused naming %s, [sink:bad] and '%s'" % (what, conf, word),
                rc != 0 and "%s: [sink:bad] " % conf in out and word in out,
                "status %d: %s" % (rc, out.strip()))


def main():
    c = st.Checks("sink_file")
    tmp = st.TempDir("hpf-sink-file-")
    conf_tmp = st.TempDir("hpf-sink-file-conf-")
    try:
        c.run("file: broker with file sinks", FileSinkTest(c, tmp).run)
        c.run("config", test_config, c, conf_tmp)
    finally:
        tmp.cleanup()
        conf_tmp.cleanup()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
