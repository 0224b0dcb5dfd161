#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The MQTT sink (plugins/sink_mqtt) against a real mosquitto.

Starts Debian's mosquitto on a free port of 127.0.0.1 with a private config
(persistence in the temporary directory, so a persistent subscriber session
survives a restart) and a subscriber of our own (tests/sinks/mqtt_min.py).
A broker with three [sink:NAME] sections then gets messages:

  mq     qos = 1, topic hpfeeds/{channel}/{owner}/{ident}: N messages, text
         and binary, arrive exactly, in order, on the expanded topic
  away   qos = 1, max_queued = 5: mosquitto is stopped, M messages are
         published: the first 5 wait in the sink's queue, the other M - 5
         are dropped, counted (the broker's errors metric) and logged;
         mosquitto is started again: the sink reconnects by itself and the 5
         arrive, in order, then new messages flow again (on mq too)
  bytes  qos = 1, max_queued_bytes = 5000: while mosquitto is stopped, 10
         messages of 1000 bytes: 4 wait (4044 bytes with their topics), 6
         are dropped, counted and logged; the 4 arrive after the restart
  poison qos = 1, max_message_size = 25000, and mosquitto's max_packet_size
         is 10000 (sent to MQTT v5 clients in CONNACK): a 30000-byte
         message is dropped at the queue, a 20000-byte one is refused by
         libmosquitto (never sent, so no disconnect and no resend loop);
         both are logged and the small messages after them arrive
  norm   format = normalized, qos 0: a cowrie.sessions payload arrives as a
         normalized record (src_ip, credentials, ...); a payload that is not
         JSON keeps `raw` and a `parse_error`
  wild   protocol = 3.1.1; a channel holding '+' and '#': published with
         them replaced by '_'
  tls    tls = true with the test's CA as cafile, to mosquitto's TLS listener
         (a certificate for IP 127.0.0.1 from a CA the test makes): arrives
  untrusted  tls = true against the system's CAs: never connects, the
         verification failure is logged
  badpw  a wrong password: refused, logged, nothing published
mosquitto requires a user name and password from every client
(password_file), so every sink above but badpw authenticates.
plus config errors caught by `hpfriendsd -t`.

mosquitto missing is a failure, not a skip (Debian package mosquitto).
"""

import json
import os
import re
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinktest as st  # noqa: E402
import mqtt_min  # noqa: E402
from sinktest import expect  # noqa: E402

PUB, PUB_SECRET = "pub", "pub-secret"
SYNC = "sync"
CHAN = "mq.a"
AWAY = "mq.b"
WILD = "mq.w+x#"
BYTES = "mq.c"
POISON = "mq.p"
MAX_QUEUED_BYTES = 5000
BIG = 1000
N = 300
TOPICS = ["hpfeeds/#", "away/#", "norm/#", "wild/#", "tls/#", "untrusted/#", "badpw/#", "bytes/#", "poison/#"]
M = 12
MAX_QUEUED = 5
USERS = {"hpf": "hpf-pw", "sub": "sub-pw"}
AUTH = "username = hpf\npassword = hpf-pw\n"
KEYS = {PUB: (PUB_SECRET, [CHAN, AWAY, WILD, BYTES, POISON, "mq.t", "cowrie.sessions", SYNC], [SYNC])}

SINKS = """\
[sink:mq]
plugin = mqtt
{auth}host = 127.0.0.1
port = {port}
topic = hpfeeds/{{channel}}/{{owner}}/{{ident}}
qos = 1
reconnect_min = 1
reconnect_max = 1
client_id = hpf-test-mq
channels = {chan}

[sink:away]
plugin = mqtt
{auth}port = {port}
topic = away/{{channel}}
qos = 1
max_queued = {max_queued}
reconnect_min = 1
reconnect_max = 1
channels = {away}

[sink:bytes]
plugin = mqtt
{auth}port = {port}
topic = bytes/{{channel}}
qos = 1
max_queued_bytes = {max_queued_bytes}
reconnect_min = 1
reconnect_max = 1
channels = {bytes}

[sink:poison]
plugin = mqtt
{auth}port = {port}
topic = poison/{{channel}}
qos = 1
max_message_size = 25000
channels = {poison}

[sink:norm]
plugin = mqtt
{auth}port = {port}
topic = norm/{{channel}}
format = normalized
channels = cowrie.sessions

[sink:wild]
plugin = mqtt
{auth}port = {port}
topic = wild/{{channel}}
protocol = 3.1.1
channels = {wild}

[sink:tls]
plugin = mqtt
{auth}port = {tls_port}
tls = true
cafile = ca.pem
topic = tls/{{channel}}
channels = mq.t

[sink:untrusted]
plugin = mqtt
{auth}port = {tls_port}
tls = true
topic = untrusted/{{channel}}
channels = mq.t

[sink:badpw]
plugin = mqtt
port = {port}
username = hpf
password = wrong
topic = badpw/{{channel}}
channels = mq.t
"""

TLS_LISTENER = """\
max_packet_size 10000
listener {tls_port} 127.0.0.1
cafile {tmp}/ca.pem
certfile {tmp}/server.pem
keyfile {tmp}/server.key
"""


def make_certs(tmp):
    """A CA and a certificate for IP 127.0.0.1 it signs (openssl, as CI has it)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=tmp.path, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(tmp.join("san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=hpfriends test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")

# cowrie's hpfeeds3 output plugin publishes one JSON object per session
# (cowrie/output/hpfeeds3.py: session, startTime, endTime, peerIP, peerPort,
# hostIP, hostPort, loggedin, protocol, credentials, commands, urls, ...).
COWRIE = {
    "session": "a1b2c3d4", "startTime": "2026-12-07T05:00:00.000000Z",
    "endTime": "2026-12-07T05:00:09.000000Z", "peerIP": "203.0.113.7", "peerPort": 51234,
    "hostIP": "192.0.2.10", "hostPort": 2222, "loggedin": ["root", "123456"],
    "protocol": "ssh", "credentials": [["root", "admin"], ["root", "123456"]],
    "commands": ["uname -a"], "unknownCommands": [], "urls": [], "version": "SSH-2.0-Go",
    "ttylog": None, "hashes": [],
}


def payloads(n, tag):
    out = []
    for i in range(n):
        if i % 7 == 3:
            out.append(bytes([i % 256, 0, 0xFF, 0x80]) + tag.encode())  # binary
        else:
            out.append(("%s %d" % (tag, i)).encode())
    return out


class MqttSinkTest:
    def __init__(self, checks, tmp):
        self.c = checks
        self.tmp = tmp
        self.port = st.free_port()
        self.tls_port = st.free_port()
        make_certs(tmp)
        self.mosq = mqtt_min.Mosquitto(
            tmp.path, self.port, users=USERS,
            extra=TLS_LISTENER.format(tls_port=self.tls_port, tmp=tmp.path))
        self.sub = None
        self.broker = None
        self.pub = None

    def sink_counts(self, name):
        labels = 'sink="sink:%s"' % name
        return (self.broker.metric("hpfriends_sink_delivered_total", labels) or 0,
                self.broker.metric("hpfriends_sink_errors_total", labels) or 0)

    def wait_sub(self, prefix, n, timeout=30):
        st.wait_for(lambda: len(self.sub.received(prefix)) >= n, timeout)
        return self.sub.received(prefix)

    def broker_log(self):
        try:
            with open(self.broker.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def test_in_order(self):
        sent = payloads(N, "first")
        for p in sent:
            self.pub.publish(CHAN, p)
        self.pub.sync(SYNC, timeout=30)
        topic = "hpfeeds/%s/%s-owner/%s" % (CHAN, PUB, PUB)
        got = self.wait_sub("hpfeeds/", N)
        self.c.check("mqtt qos 1: %d messages arrive exactly once, in order, payload bytes "
                     "unchanged (format raw)" % N,
                     [m[1] for m in got] == sent,
                     "got %d, first difference at %s" % (
                         len(got), next((i for i, (a, b) in enumerate(zip(got, sent))
                                         if a[1] != b), None)))
        self.c.check("mqtt: topic template expanded to %s" % topic,
                     got and all(m[0] == topic for m in got), repr(got[:1]))

    def test_restart(self):
        self.sub.close()
        self.mosq.stop()
        expect(st.wait_for(lambda: "sink:away: disconnected from 127.0.0.1:%d" % self.port
                           in self.broker_log()),
               "the sink did not notice mosquitto stopping: " + self.broker.log_tail(5))
        down = payloads(M, "down")
        for p in down:
            self.pub.publish(AWAY, p)
        self.pub.sync(SYNC, timeout=30)
        expect(st.wait_for(lambda: sum(self.sink_counts("away")) >= M),
               "the sink did not take the %d messages: %r" % (M, self.sink_counts("away")))
        delivered, errors = self.sink_counts("away")
        self.c.check("mqtt broker away: %d queued (max_queued), %d dropped and counted"
                     % (MAX_QUEUED, M - MAX_QUEUED),
                     errors == M - MAX_QUEUED and delivered == MAX_QUEUED,
                     "delivered %r errors %r" % (delivered, errors))
        self.c.check("mqtt broker away: the drop is logged ('queue full ... dropping')",
                     re.search(r"sink:away: queue full \(5 messages, \d+ bytes; max_queued 5, "
                               r"max_queued_bytes 67108864; broker away\): dropping",
                               self.broker_log()) is not None, self.broker.log_tail(5))
        big = self.fill_bytes_sink()
        self.mosq.start()
        self.sub = mqtt_min.Subscriber(self.port, "hpf-test-sub", clean=False,
                                       username="sub", password=USERS["sub"]).connect(
            TOPICS)
        got = self.wait_sub("bytes/", 4)
        self.c.check("mqtt broker back: the 4 messages max_queued_bytes held arrive, in order, "
                     "and no others", [m[1] for m in got] == big[:4],
                     "got %d: %r" % (len(got), [m[1][:12] for m in got]))
        # A new subscriber object: its list holds only what came after the restart.
        got = self.wait_sub("away/", MAX_QUEUED)
        self.c.check("mqtt broker back: the sink reconnects by itself and the %d queued "
                     "messages arrive, in order" % MAX_QUEUED,
                     [m[1] for m in got] == down[:MAX_QUEUED], "got %r" % [m[1] for m in got])
        self.c.check("mqtt broker back: reconnect logged with the drop count",
                     re.search(r"sink:away: connected to 127\.0\.0\.1:%d \(\d+ queued, %d "
                               r"dropped in all\)"
                               % (self.port, M - MAX_QUEUED), self.broker_log()) is not None,
                     self.broker.log_tail(5))
        after = payloads(100, "after")
        for p in after:
            self.pub.publish(CHAN, p)
        self.pub.publish(AWAY, b"after")
        self.pub.sync(SYNC, timeout=30)
        got = self.wait_sub("away/", MAX_QUEUED + 1)
        self.c.check("mqtt broker back: new messages flow again, in order, no duplicates",
                     [m[1] for m in got] == down[:MAX_QUEUED] + [b"after"],
                     "got %d: %r" % (len(got), [m[1] for m in got][:8]))
        got = self.wait_sub("hpfeeds/", len(after))
        self.c.check("mqtt broker back: the other sink (qos 1) reconnected too: %d messages "
                     "in order" % len(after), [m[1] for m in got] == after,
                     "got %d" % len(got))

    def fill_bytes_sink(self):
        """10 messages of BIG bytes to the bytes sink while mosquitto is away."""
        expect(st.wait_for(lambda: "sink:bytes: disconnected from" in self.broker_log()),
               "sink:bytes did not notice mosquitto stopping: " + self.broker.log_tail(5))
        big = [(b"%02d" % i) * (BIG // 2) for i in range(10)]
        self.publish_n(BYTES, big)
        expect(st.wait_for(lambda: sum(self.sink_counts("bytes")) >= 10),
               "the sink did not take the 10 messages: %r" % (self.sink_counts("bytes"),))
        delivered, errors = self.sink_counts("bytes")
        # Each held message: BIG payload bytes + "bytes/mq.c" (10): 4 fit in 5000, not 5.
        self.c.check("mqtt max_queued_bytes = %d, broker away: 4 messages of %d bytes held, 6 "
                     "dropped and counted" % (MAX_QUEUED_BYTES, BIG),
                     delivered == 4 and errors == 6, "delivered %r errors %r" % (delivered, errors))
        self.c.check("mqtt max_queued_bytes: the drop is logged with the bytes held",
                     re.search(r"sink:bytes: queue full \(4 messages, 4040 bytes; max_queued "
                               r"100000, max_queued_bytes 5000; broker away\): dropping",
                               self.broker_log()) is not None, self.broker.log_tail(5))
        return big

    def test_poison(self):
        small = [b"s1", b"s2", b"s3"]
        self.publish_n(POISON, [b"a" * 30000, b"b" * 20000] + small)
        got = self.wait_sub("poison/", 3)
        self.c.check("mqtt: messages over max_message_size or the server's max_packet_size "
                     "are dropped; the small ones after them arrive, in order",
                     [m[1] for m in got] == small, repr([m[1][:8] for m in got]))
        log = self.broker_log()
        self.c.check("mqtt: the message over max_message_size is dropped, counted and logged",
                     re.search(r"sink:poison: message of 30000 bytes on poison/mq\.p is larger "
                               r"than max_message_size \(25000\): dropped", log) is not None and
                     self.sink_counts("poison")[1] == 1,
                     "%r %s" % (self.sink_counts("poison"), self.broker.log_tail(5)))
        self.c.check("mqtt: the message over the server's Maximum Packet Size is refused by "
                     "the client and logged; no disconnect",
                     re.search(r"sink:poison: publish on poison/mq\.p failed: .*: dropped", log)
                     is not None and "sink:poison: disconnected" not in log,
                     self.broker.log_tail(5))

    def test_normalized(self):
        self.pub.publish("cowrie.sessions", json.dumps(COWRIE).encode())
        self.pub.publish("cowrie.sessions", b"not json {")
        self.pub.sync(SYNC, timeout=30)
        got = self.wait_sub("norm/", 2)
        recs = []
        for m in got:
            try:
                recs.append(json.loads(m[1]))
            except ValueError:
                recs.append(None)
        expect(len(recs) == 2 and all(recs), "normalized records: %r" % got)
        r = recs[0]
        want = {"sensor": PUB, "owner": PUB + "-owner", "channel": "cowrie.sessions",
                "protocol": "ssh", "transport": "tcp", "src_ip": "203.0.113.7",
                "src_port": 51234, "dst_ip": "192.0.2.10", "dst_port": 2222,
                "credentials": [["root", "admin"], ["root", "123456"]],
                "login": ["root", "123456"], "session": "a1b2c3d4"}
        self.c.check("mqtt format = normalized: a cowrie session becomes a normalized record",
                     all(r.get(k) == v for k, v in want.items()) and
                     re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", r.get("time", "")),
                     json.dumps(r))
        bad = recs[1]
        self.c.check("mqtt format = normalized: a payload that is not JSON keeps raw and "
                     "parse_error", bad.get("raw") == "not json {" and "parse_error" in bad
                     and bad.get("sensor") == PUB, json.dumps(bad))
        self.c.check("mqtt qos 0: delivered at QoS 0", all(m[2] == 0 for m in got), repr(got))

    def test_wildcards(self):
        self.pub.publish(WILD, b"w")
        self.pub.sync(SYNC, timeout=30)
        got = self.wait_sub("wild/", 1)
        self.c.check("mqtt: '+' and '#' in a channel become '_' in the topic",
                     [m[0] for m in got] == ["wild/mq.w_x_"], repr(got))

    def test_tls_auth(self):
        self.publish_n("mq.t", [b"t1", b"t2", b"t3"])
        got = self.wait_sub("tls/", 3)
        self.c.check("mqtt tls = true, cafile = the test CA, username/password: 3 messages "
                     "arrive over TLS", [m[1] for m in got] == [b"t1", b"t2", b"t3"], repr(got))
        log = self.broker_log()
        self.c.check("mqtt tls = true against the system's CAs: the broker's certificate is "
                     "refused (logged), never connected",
                     "sink:untrusted: connected" not in log and
                     re.search(r"sink:untrusted: mqtt 127\.0\.0\.1:%d: .*certificate verify "
                               r"failed" % self.tls_port, log) is not None,
                     self.broker.log_tail(8))
        self.c.check("mqtt wrong password: refused and logged, never connected",
                     "sink:badpw: connected" not in log and
                     re.search(r"sink:badpw: mqtt broker 127\.0\.0\.1:%d refused: .*; retrying"
                               % self.port, log) is not None, self.broker.log_tail(8))
        self.c.check("mqtt: nothing published by the sinks that could not connect",
                     not self.sub.received("untrusted/") and not self.sub.received("badpw/"),
                     repr(self.sub.received("untrusted/") + self.sub.received("badpw/")))

    def publish_n(self, channel, items):
        for p in items:
            self.pub.publish(channel, p)
        self.pub.sync(SYNC, timeout=30)

    def test_shutdown(self):
        rc = self.broker.stop(signal.SIGTERM)
        self.c.check("mqtt: SIGTERM exits 0", rc == 0, "status %r: %s"
                     % (rc, self.broker.log_tail(5)))

    def run(self):
        self.c.check("mosquitto is installed (Debian package mosquitto)",
                     self.mosq.exe is not None, "not found in PATH or /usr/sbin")
        expect(self.mosq.exe, "cannot test the MQTT sink without mosquitto")
        try:
            self.mosq.start()
            self.sub = mqtt_min.Subscriber(self.port, "hpf-test-sub", clean=False,
                                       username="sub", password=USERS["sub"]).connect(
                TOPICS)
            st.make_auth_db(self.tmp.join("auth.db"), KEYS)
            sinks = SINKS.format(port=self.port, max_queued=MAX_QUEUED, chan=CHAN, away=AWAY,
                                 bytes=BYTES, max_queued_bytes=MAX_QUEUED_BYTES, poison=POISON,
                                 wild=WILD, tls_port=self.tls_port, auth=AUTH)
            self.broker = st.Broker(self.tmp, sinks, broker_extra="exporter = 127.0.0.1:0")
            self.broker.start()
            expect(st.wait_for(lambda: self.broker_log().count("connected to 127.0.0.1:%d"
                                                               % self.port) >= 6 and
                               "sink:tls: connected to" in self.broker_log()),
                   "the sinks did not connect: " + self.broker.log_tail(5))
            self.pub = self.broker.client(PUB, PUB_SECRET)
            self.pub.subscribe(SYNC)
            self.c.run("mqtt: in order", self.test_in_order)
            self.c.run("mqtt: poison", self.test_poison)
            self.c.run("mqtt: normalized", self.test_normalized)
            self.c.run("mqtt: wildcards", self.test_wildcards)
            self.c.run("mqtt: tls and passwords", self.test_tls_auth)
            self.c.run("mqtt: restart", self.test_restart)
            self.c.run("mqtt: shutdown", self.test_shutdown)
        finally:
            if self.pub:
                self.pub.close()
            if self.broker:
                self.broker.stop(signal.SIGKILL)
            if self.sub:
                self.sub.close()
            self.mosq.stop()


CONFIG_ERRORS = [
    ("qos 2", "qos = 2", "qos"),
    ("port", "port = 70000", "port"),
    ("format", "format = xml", "format"),
    ("topic placeholder", "topic = a/{nope}", "topic"),
    ("topic wildcard", "topic = a/#", "topic"),
    ("password without username", "password = x", "password"),
    ("cafile without tls", "cafile = /etc/ssl/certs/ca-certificates.crt", "tls"),
    ("reconnect_max < reconnect_min", "reconnect_min = 10\nreconnect_max = 2", "reconnect_max"),
    ("max_queued 0", "max_queued = 0", "max_queued"),
    ("protocol", "protocol = 4", "protocol"),
    ("max_message_size over MQTT's limit", "max_message_size = 300M", "max_message_size"),
    ("max_queued_bytes below 1K", "max_queued_bytes = 100", "max_queued_bytes"),
    ("unknown key", "colour = blue", "colour"),
]


def test_config(c, tmp):
    st.make_auth_db(tmp.join("auth.db"), KEYS)
    good = st.Broker(tmp, "[sink:a]\nplugin = mqtt\nhost = mqtt.example\nport = 8883\n"
                     "tls = true\ncafile = /etc/ssl/certs/ca-certificates.crt\nqos = 1\n"
                     "username = u\npassword = p\nformat = cef\n"
                     "topic = x/{owner}/{ident}/{channel}\n", name="good")
    rc, out = st.run_daemon_once(["-t", "-c", good.conf], tmp)
    c.check("config: a valid mqtt section passes hpfriendsd -t", rc == 0, out.strip())
    for what, body, word in CONFIG_ERRORS:
        b = st.Broker(tmp, "[sink:bad]\nplugin = mqtt\n%s\n" % body, name="bad")
        rc, out = st.run_daemon_once(["-t", "-c", b.conf], tmp)
        c.check("config: %s is refused naming [sink:bad] and '%s'" % (what, word),
                rc != 0 and "sink:bad" in out and word in out,
                "status %d: %s" % (rc, out.strip()))


def main():
    c = st.Checks("sink_mqtt")
    tmp = st.TempDir("hpf-sink-mqtt-")
    conf_tmp = st.TempDir("hpf-sink-mqtt-conf-")
    try:
        c.run("mqtt: against mosquitto", MqttSinkTest(c, tmp).run)
        c.run("config", test_config, c, conf_tmp)
    finally:
        tmp.cleanup()
        conf_tmp.cleanup()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
