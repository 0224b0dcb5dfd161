#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Redis sink (plugins/sink_redis) against a real redis-server.

Starts Debian's redis-server on a free port of 127.0.0.1 (no persistence,
--dir in the temporary directory, stream-node-max-entries 10 so that
MAXLEN ~ trims close to its bound) and reads the streams back with a RESP
client of our own (tests/sinks/redis_min.py).  A broker with four
[sink:NAME] sections:

  rs     stream hpfeeds:{channel}: N messages, text and binary, give XLEN N
         and entries with exactly the time, ident, owner, channel and
         payload bytes, in order
  one    one stream for two channels, format = normalized: `record` holds
         the normalized JSON
  trim   maxlen = 100: after 1000 messages XLEN is 100 to 110 (MAXLEN ~)
  away   max_queued = 5: redis-server is stopped, M messages are published:
         5 wait, M - 5 are dropped, counted (errors metric) and logged;
         redis-server is started again (empty: no persistence): the sink
         reconnects by itself, XLEN is exactly 5 with the first 5, and new
         messages follow
  bytes  max_queued_bytes = 5000, while redis-server is stopped: 10 messages
         of 1000 bytes: 4 wait (with key and fields about 1060 bytes each),
         6 are dropped, counted and logged; the 4 arrive after the restart
  oom    redis-server's maxmemory set to 1 byte: XADD answers -OOM; the
         entries are kept (logged, not dropped) and, once maxmemory is
         lifted, arrive in order
plus config errors caught by `hpfriendsd -t`.

redis-server missing is a failure, not a skip (Debian package redis-server).
"""

import json
import os
import re
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinktest as st  # noqa: E402
import redis_min  # noqa: E402
from sinktest import expect  # noqa: E402

PUB, PUB_SECRET = "pub", "pub-secret"
SYNC = "sync"
CHAN, TRIM, AWAY, BYTES, OOM = "rd.a", "rd.t", "rd.b", "rd.c", "rd.o"
N, M, MAX_QUEUED, TRIM_N = 500, 12, 5, 1000
KEYS = {PUB: (PUB_SECRET, [CHAN, TRIM, AWAY, BYTES, OOM, "cowrie.sessions", SYNC], [SYNC])}

SINKS = """\
[sink:rs]
plugin = redis
port = {port}
stream = hpfeeds:{{channel}}
batch = 64
channels = {chan}

[sink:one]
plugin = redis
port = {port}
stream = all
format = normalized
channels = {chan};cowrie.sessions

[sink:trim]
plugin = redis
port = {port}
stream = trim:{{ident}}
maxlen = 100
channels = {trim}

[sink:away]
plugin = redis
port = {port}
stream = away:{{owner}}
max_queued = {max_queued}
reconnect_min = 1
reconnect_max = 1
channels = {away}

[sink:bytes]
plugin = redis
port = {port}
stream = bytes:{{owner}}
max_queued_bytes = 5000
reconnect_min = 1
reconnect_max = 1
channels = {bytes}

[sink:oom]
plugin = redis
port = {port}
stream = oom:{{owner}}
reconnect_min = 1
reconnect_max = 1
channels = {oom}
"""


def payloads(n, tag):
    return [bytes([i % 256, 0, 0xFF]) + tag.encode() if i % 9 == 4 else
            ("%s %d" % (tag, i)).encode() for i in range(n)]


class RedisSinkTest:
    def __init__(self, checks, tmp):
        self.c = checks
        self.tmp = tmp
        self.port = st.free_port()
        self.srv = redis_min.Server(tmp.path, self.port,
                                    ["--stream-node-max-entries", "10"])
        self.broker = None
        self.pub = None

    def cli(self):
        return redis_min.Client(self.port)

    def xlen(self, key):
        c = self.cli()
        try:
            return c.command("XLEN", key)
        finally:
            c.close()

    def xrange(self, key):
        c = self.cli()
        try:
            return c.xrange(key)
        finally:
            c.close()

    def sink_counts(self, name):
        labels = 'sink="sink:%s"' % name
        return (self.broker.metric("hpfriends_sink_delivered_total", labels) or 0,
                self.broker.metric("hpfriends_sink_errors_total", labels) or 0)

    def broker_log(self):
        with open(self.broker.log_path, errors="replace") as f:
            return f.read()

    def publish(self, channel, items):
        for p in items:
            self.pub.publish(channel, p)
        self.pub.sync(SYNC, timeout=30)

    def test_exact(self):
        sent = payloads(N, "m")
        self.publish(CHAN, sent)
        key = "hpfeeds:" + CHAN
        st.wait_for(lambda: self.xlen(key) >= N, timeout=30)
        entries = self.xrange(key)
        self.c.check("redis: XLEN %s is exactly %d" % (key, N), len(entries) == N,
                     "XLEN %d" % len(entries))
        self.c.check("redis: payload bytes exact and in order (format raw)",
                     [e[1].get(b"payload") for e in entries] == sent)
        tre = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.c.check("redis: fields time, ident, owner, channel",
                     all(e[1].get(b"ident") == PUB.encode() and
                         e[1].get(b"owner") == (PUB + "-owner").encode() and
                         e[1].get(b"channel") == CHAN.encode() and
                         tre.match(e[1].get(b"time", b"")) for e in entries),
                     repr(entries[:1]))

    def test_one_stream(self):
        self.pub.publish("cowrie.sessions", json.dumps(
            {"peerIP": "203.0.113.7", "peerPort": 1, "hostIP": "192.0.2.1", "hostPort": 22,
             "credentials": [["root", "toor"]]}).encode())
        self.pub.sync(SYNC, timeout=30)
        st.wait_for(lambda: self.xlen("all") >= N + 1, timeout=30)
        entries = self.xrange("all")
        self.c.check("redis: one stream for two channels: XLEN %d" % (N + 1),
                     len(entries) == N + 1, "XLEN %d" % len(entries))
        last = json.loads(entries[-1][1].get(b"record", b"null")) if entries else None
        self.c.check("redis format = normalized: `record` is the normalized record",
                     last is not None and last.get("src_ip") == "203.0.113.7" and
                     last.get("credentials") == [["root", "toor"]] and
                     last.get("channel") == "cowrie.sessions", repr(last))
        first = json.loads(entries[0][1].get(b"record", b"null")) if entries else None
        self.c.check("redis format = normalized: an unmapped channel keeps raw",
                     first is not None and first.get("raw") == "m 0", repr(first))

    def test_trim(self):
        self.publish(TRIM, [b"t%d" % i for i in range(TRIM_N)])
        key = "trim:" + PUB
        st.wait_for(lambda: sum(self.sink_counts("trim")) >= TRIM_N, timeout=30)
        # The last entry written is the last one sent: then the count is final.
        st.wait_for(lambda: (self.xrange(key) or [(0, {})])[-1][1].get(b"payload")
                    == b"t%d" % (TRIM_N - 1), timeout=30)
        n = self.xlen(key)
        self.c.check("redis maxlen = 100: XADD MAXLEN ~ keeps %s at 100..110 entries after %d"
                     % (key, TRIM_N), 100 <= n <= 110, "XLEN %d" % n)

    def test_restart(self):
        self.srv.stop()
        down = payloads(M, "down")
        self.publish(AWAY, down)
        expect(st.wait_for(lambda: sum(self.sink_counts("away")) >= M),
               "the sink did not take the %d messages: %r" % (M, self.sink_counts("away")))
        delivered, errors = self.sink_counts("away")
        self.c.check("redis away: %d held (max_queued), %d dropped and counted"
                     % (MAX_QUEUED, M - MAX_QUEUED),
                     delivered == MAX_QUEUED and errors == M - MAX_QUEUED,
                     "delivered %r errors %r" % (delivered, errors))
        self.c.check("redis away: the drop is logged",
                     re.search(r"sink:away: queue full \(5 entries, \d+ bytes; max_queued 5, "
                               r"max_queued_bytes 67108864; redis \w+\): dropping",
                               self.broker_log()) is not None, self.broker.log_tail(5))
        big = self.fill_bytes_sink()
        self.srv.start()
        bkey = "bytes:%s-owner" % PUB
        st.wait_for(lambda: self.xlen(bkey) >= 4, timeout=30)
        got = [e[1].get(b"payload") for e in self.xrange(bkey)]
        self.c.check("redis back: the 4 entries max_queued_bytes held arrive, in order, and no "
                     "others", got == big[:4], "got %d: %r" % (len(got), [g[:12] for g in got]))
        key = "away:%s-owner" % PUB
        st.wait_for(lambda: self.xlen(key) >= MAX_QUEUED, timeout=30)
        entries = self.xrange(key)
        self.c.check("redis back (empty, no persistence): the sink reconnects by itself; "
                     "XLEN exactly %d, the first %d sent, in order" % (MAX_QUEUED, MAX_QUEUED),
                     [e[1].get(b"payload") for e in entries] == down[:MAX_QUEUED],
                     repr([e[1].get(b"payload") for e in entries]))
        self.c.check("redis back: reconnect logged with the drop count",
                     re.search(r"sink:away: connected to 127\.0\.0\.1:%d \(\d+ queued, %d dropped "
                               r"in all\)" % (self.port, M - MAX_QUEUED), self.broker_log())
                     is not None, self.broker.log_tail(5))
        self.publish(AWAY, [b"after 1", b"after 2"])
        st.wait_for(lambda: self.xlen(key) >= MAX_QUEUED + 2, timeout=30)
        got = [e[1].get(b"payload") for e in self.xrange(key)]
        self.c.check("redis back: new entries follow, no duplicates",
                     got == down[:MAX_QUEUED] + [b"after 1", b"after 2"], repr(got))

    def config_set(self, key, value):
        c = self.cli()
        try:
            return c.command("CONFIG", "SET", key, value)
        finally:
            c.close()

    def test_oom(self):
        key = "oom:%s-owner" % PUB
        self.config_set("maxmemory", "1")
        sent = [b"o1", b"o2", b"o3"]
        try:
            self.publish(OOM, sent)
            expect(st.wait_for(lambda: "sink:oom: redis 127.0.0.1:%d out of memory (OOM)"
                               % self.port in self.broker_log()),
                   "no OOM logged: " + self.broker.log_tail(5))
            self.c.check("redis OOM: nothing written while Redis is out of memory",
                         self.xlen(key) == 0, "XLEN %r" % self.xlen(key))
        finally:
            self.config_set("maxmemory", "0")
        st.wait_for(lambda: self.xlen(key) >= len(sent), timeout=30)
        got = [e[1].get(b"payload") for e in self.xrange(key)]
        self.c.check("redis OOM is temporary: once memory is back the kept entries arrive, "
                     "in order, none dropped", got == sent and self.sink_counts("oom")[1] == 0
                     and "sink:oom: XADD" not in self.broker_log(),
                     "%r %r %s" % (got, self.sink_counts("oom"), self.broker.log_tail(5)))

    def fill_bytes_sink(self):
        """10 messages of 1000 bytes to the bytes sink while redis-server is away."""
        big = [(b"%02d" % i) * 500 for i in range(10)]
        self.publish(BYTES, big)
        expect(st.wait_for(lambda: sum(self.sink_counts("bytes")) >= 10),
               "the sink did not take the 10 messages: %r" % (self.sink_counts("bytes"),))
        delivered, errors = self.sink_counts("bytes")
        self.c.check("redis max_queued_bytes = 5000, redis away: 4 entries of 1000 bytes held, "
                     "6 dropped and counted", delivered == 4 and errors == 6,
                     "delivered %r errors %r" % (delivered, errors))
        self.c.check("redis max_queued_bytes: the drop is logged with the bytes held",
                     re.search(r"sink:bytes: queue full \(4 entries, 4\d\d\d bytes; max_queued "
                               r"100000, max_queued_bytes 5000; redis \w+\): dropping",
                               self.broker_log()) is not None, self.broker.log_tail(5))
        return big

    def test_shutdown(self):
        rc = self.broker.stop(signal.SIGTERM)
        self.c.check("redis: SIGTERM exits 0", rc == 0, "status %r" % rc)

    def run(self):
        self.c.check("redis-server is installed (Debian package redis-server)",
                     self.srv.exe is not None, "not found in PATH or /usr/bin")
        expect(self.srv.exe, "cannot test the Redis sink without redis-server")
        try:
            self.srv.start()
            st.make_auth_db(self.tmp.join("auth.db"), KEYS)
            sinks = SINKS.format(port=self.port, chan=CHAN, trim=TRIM, away=AWAY,
                                 max_queued=MAX_QUEUED, bytes=BYTES, oom=OOM)
            self.broker = st.Broker(self.tmp, sinks, broker_extra="exporter = 127.0.0.1:0")
            self.broker.start()
            self.pub = self.broker.client(PUB, PUB_SECRET)
            self.pub.subscribe(SYNC)
            self.c.run("redis: exact", self.test_exact)
            self.c.run("redis: one stream", self.test_one_stream)
            self.c.run("redis: trim", self.test_trim)
            self.c.run("redis: oom", self.test_oom)
            self.c.run("redis: restart", self.test_restart)
            self.c.run("redis: shutdown", self.test_shutdown)
        finally:
            if self.pub:
                self.pub.close()
            if self.broker:
                self.broker.stop(signal.SIGKILL)
            self.srv.stop()


CONFIG_ERRORS = [
    ("port", "port = 0", "port"),
    ("format", "format = xml", "format"),
    ("stream placeholder", "stream = x:{nope}", "stream"),
    ("username without password", "username = u", "username"),
    ("batch 0", "batch = 0", "batch"),
    ("max_queued_bytes below 1K", "max_queued_bytes = 100", "max_queued_bytes"),
    ("reconnect_max < reconnect_min", "reconnect_min = 10\nreconnect_max = 2", "reconnect_max"),
    ("unknown key (no TLS in this hiredis)", "tls = true", "tls"),
]


def test_config(c, tmp):
    st.make_auth_db(tmp.join("auth.db"), KEYS)
    good = st.Broker(tmp, "[sink:a]\nplugin = redis\nhost = redis.example\nport = 6380\n"
                     "stream = x:{owner}:{ident}:{channel}\nmaxlen = 0\nusername = u\n"
                     "password = p\ndb = 3\nformat = splunk\n", name="good")
    rc, out = st.run_daemon_once(["-t", "-c", good.conf], tmp)
    c.check("config: a valid redis section passes hpfriendsd -t", rc == 0, out.strip())
    for what, body, word in CONFIG_ERRORS:
        b = st.Broker(tmp, "[sink:bad]\nplugin = redis\n%s\n" % body, name="bad")
        rc, out = st.run_daemon_once(["-t", "-c", b.conf], tmp)
        c.check("config: %s is refused naming [sink:bad] and '%s'" % (what, word),
                rc != 0 and "sink:bad" in out and word in out,
                "status %d: %s" % (rc, out.strip()))


def main():
    c = st.Checks("sink_redis")
    tmp = st.TempDir("hpf-sink-redis-")
    conf_tmp = st.TempDir("hpf-sink-redis-conf-")
    try:
        c.run("redis: against redis-server", RedisSinkTest(c, tmp).run)
        c.run("config", test_config, c, conf_tmp)
    finally:
        tmp.cleanup()
        conf_tmp.cleanup()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
