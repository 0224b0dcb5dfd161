#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The HTTP sink (plugins/sink_http) against a local HTTP server.

The test runs Python's http.server on a free port of 127.0.0.1, in this
process: it records every POST (path, headers, body, time) and answers
each path from a script (e.g. 429, then 500, then 200) or a fixed status.
A broker with six [sink:NAME] sections:

  nd     api = ndjson, batch_size = 100: N messages arrive as ceil(N/100)
         POSTs of at most 100 lines, every record exactly once, in order;
         token and custom headers sent
  es     api = elasticsearch-bulk: an index action (lower-cased template)
         before each document
  hec    api = splunk-hec: one event object per record, "Authorization:
         Splunk TOKEN"
  retry  the server answers 429, then 500, then 200: the same body is sent
         three times, with the back-off between attempts
  bad    the server answers 400: the batch is dropped and logged, never
         sent again
  down   the server answers 503 until told otherwise, max_queued = 5: M
         messages give 5 held and M - 5 dropped and counted; once the
         server answers 200 the 5 arrive, in order
  bytes  as down, with max_queued_bytes = 5000: 10 messages of 1000 bytes
         give 4 held (records of about 1100 bytes) and 6 dropped, counted
         and logged; once the server answers 200 the 4 arrive, in order
  esx    api = elasticsearch-bulk, index = {channel} on channel
         "_E s,x#y*z": the index is "e_s_x_y_z"; the server answers 200
         with "errors": true and one item of two failed: logged with the
         count, the reason and the running total
plus config errors caught by `hpfriendsd -t`.
"""

import http.server
import json
import os
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinktest as st  # noqa: E402
from sinktest import expect  # noqa: E402

PUB, PUB_SECRET = "pub", "pub-secret"
SYNC = "sync"
N, M, MAX_QUEUED = 250, 12, 5
ESX = "_E s,x#y*z"
CHANNELS = ["h.a", "h.r", "h.bad", "h.down", "h.bytes", ESX, "cowrie.sessions"]
ESX_REPLY = (b'{"took":3,"errors":true,"items":[{"index":{"_index":"e_s_x_y_z","status":201}},'
             b'{"index":{"_index":"e_s_x_y_z","status":400,"error":{"type":'
             b'"mapper_parsing_exception","reason":"failed to parse field"}}}]}')
KEYS = {PUB: (PUB_SECRET, CHANNELS + [SYNC], [SYNC])}

SINKS = """\
[sink:nd]
plugin = http
url = http://127.0.0.1:{port}/nd
api = ndjson
batch_size = 100
flush_interval = 0.2
token = tok-1
headers = X-Test: one; X-Other: two
channels = h.a

[sink:es]
plugin = http
url = http://127.0.0.1:{port}/_bulk
api = elasticsearch-bulk
format = raw
index = HPF-{{channel}}-{{date}}
flush_interval = 0.2
channels = h.a

[sink:esx]
plugin = http
url = http://127.0.0.1:{port}/esx/_bulk
api = elasticsearch-bulk
format = raw
index = {{channel}}
batch_size = 2
flush_interval = 5
channels = {esx}

[sink:hec]
plugin = http
url = http://127.0.0.1:{port}/services/collector/event
api = splunk-hec
token = hec-token
sourcetype = honeypot
flush_interval = 0.1
channels = cowrie.sessions

[sink:retry]
plugin = http
url = http://127.0.0.1:{port}/retry
format = raw
flush_interval = 0.2
retry_min = 0.3
retry_max = 0.6
channels = h.r

[sink:bad]
plugin = http
url = http://127.0.0.1:{port}/bad
format = raw
flush_interval = 0.1
channels = h.bad

[sink:down]
plugin = http
url = http://127.0.0.1:{port}/down
format = raw
batch_size = 1
flush_interval = 0.05
retry_min = 0.2
retry_max = 0.2
max_queued = {max_queued}
channels = h.down

[sink:bytes]
plugin = http
url = http://127.0.0.1:{port}/bytes
format = raw
batch_size = 1
flush_interval = 0.05
retry_min = 0.2
retry_max = 0.2
max_queued_bytes = 5000
channels = h.bytes
"""


class Recorder:
    """What the server saw, and what it answers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (path, headers, body, time, status)
        self.script = {}    # path -> [status, ...] answered in turn, then `fixed`
        self.fixed = {}     # path -> status (default 200)

    def answer(self, path):
        with self.lock:
            queue = self.script.get(path)
            if queue:
                return queue.pop(0)
            return self.fixed.get(path, 200)

    def got(self, path, status=None):
        with self.lock:
            return [r for r in self.requests
                    if r[0] == path and (status is None or r[4] == status)]


def make_handler(rec):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's naming
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            status = rec.answer(self.path)
            with rec.lock:
                rec.requests.append((self.path, dict(self.headers), body, time.monotonic(),
                                     status))
            reply = b'{"errors":false,"items":[]}' if self.path == "/_bulk" else b"{}"
            if self.path == "/esx/_bulk":
                reply = ESX_REPLY
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    return Handler


def lines_of(reqs):
    out = []
    for r in reqs:
        out.extend(r[2].decode().splitlines())
    return out


class HttpSinkTest:
    def __init__(self, checks, tmp):
        self.c = checks
        self.tmp = tmp
        self.rec = Recorder()
        self.server = http.server.ThreadingHTTPServer((st.HOST, 0), make_handler(self.rec))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.broker = None
        self.pub = None

    def publish(self, channel, items):
        for p in items:
            self.pub.publish(channel, p)
        self.pub.sync(SYNC, timeout=30)

    def first_fails(self, path, channel, payload):
        """Publish payload and wait until the sink has seen its POST to path fail."""
        self.publish(channel, [payload])
        failed = "POST to http://%s:%d%s failed (attempt 1)" % (st.HOST, self.port, path)
        expect(st.wait_for(lambda: failed in self.broker_log(), timeout=30),
               "no failed POST logged: " + self.broker.log_tail(5))

    def sink_counts(self, name):
        labels = 'sink="sink:%s"' % name
        return (self.broker.metric("hpfriends_sink_delivered_total", labels) or 0,
                self.broker.metric("hpfriends_sink_errors_total", labels) or 0)

    def broker_log(self):
        with open(self.broker.log_path, errors="replace") as f:
            return f.read()

    def test_ndjson_and_bulk(self):
        sent = ["m %d \"q\"\n" % i for i in range(N)]
        self.publish("h.a", [s.encode() for s in sent])
        st.wait_for(lambda: len(lines_of(self.rec.got("/nd"))) >= N, timeout=30)
        reqs = self.rec.got("/nd")
        recs = [json.loads(line) for line in lines_of(reqs)]
        self.c.check("http ndjson: %d normalized records, exactly once, in order" % N,
                     [r.get("raw") for r in recs] == sent and
                     all(r.get("sensor") == PUB and r.get("channel") == "h.a" for r in recs),
                     "%d records" % len(recs))
        self.c.check("http ndjson: batches of at most batch_size (100) lines: %s"
                     % [len(r[2].splitlines()) for r in reqs],
                     reqs and all(len(r[2].splitlines()) <= 100 for r in reqs) and
                     len(reqs) >= 3)
        h = reqs[0][1] if reqs else {}
        self.c.check("http ndjson: Content-Type, token (Bearer) and custom headers sent",
                     h.get("Content-Type") == "application/x-ndjson" and
                     h.get("Authorization") == "Bearer tok-1" and h.get("X-Test") == "one" and
                     h.get("X-Other") == "two", repr(h))
        st.wait_for(lambda: len(lines_of(self.rec.got("/_bulk"))) >= 2 * N, timeout=30)
        lines = lines_of(self.rec.got("/_bulk"))
        actions = [json.loads(x) for x in lines[0::2]]
        docs = [json.loads(x) for x in lines[1::2]]
        self.c.check("http elasticsearch-bulk: an index action (template lower-cased) "
                     "before each document",
                     len(actions) == N and all(re.match(r"^hpf-h\.a-\d{4}\.\d\d\.\d\d$",
                                                        a["index"]["_index"]) for a in actions),
                     repr(actions[:1]))
        self.c.check("http elasticsearch-bulk, format raw: documents are the envelope, in order",
                     [d.get("payload") for d in docs] == sent and
                     all(d.get("ident") == PUB for d in docs), repr(docs[:1]))

    def test_bulk_errors(self):
        self.publish(ESX, [b"x1", b"x2"])
        expect(st.wait_for(lambda: self.rec.got("/esx/_bulk")),
               "nothing posted to /esx/_bulk: " + self.broker.log_tail(5))
        lines = lines_of(self.rec.got("/esx/_bulk"))
        actions = [json.loads(x) for x in lines[0::2]]
        self.c.check("http elasticsearch-bulk: a channel with characters Elasticsearch "
                     "refuses gives a valid index name (e_s_x_y_z)",
                     len(actions) == 2 and
                     all(a["index"]["_index"] == "e_s_x_y_z" for a in actions), repr(actions))
        expect(st.wait_for(lambda: "bulk reply says errors" in self.broker_log()),
               "no bulk item error logged: " + self.broker.log_tail(5))
        self.c.check("http elasticsearch-bulk: a 200 reply with errors: true is detected; the "
                     "failed item is logged with its reason and the running total",
                     "sink:esx: http://127.0.0.1:%d/esx/_bulk: the bulk reply says errors: 1 of 2 "
                     "records failed (first: status 400, failed to parse field): dropped (1 "
                     "records refused in all)" % self.port in self.broker_log(),
                     self.broker.log_tail(5))

    def test_hec(self):
        self.publish("cowrie.sessions", [json.dumps({"peerIP": "203.0.113.9", "peerPort": 5,
                                                     "hostIP": "192.0.2.9", "hostPort": 22,
                                                     "credentials": [["a", "b"]]}).encode()])
        st.wait_for(lambda: self.rec.got("/services/collector/event"), timeout=30)
        reqs = self.rec.got("/services/collector/event")
        ev = json.loads(reqs[0][2]) if reqs else {}
        self.c.check("http splunk-hec: 'Authorization: Splunk TOKEN', one event object with "
                     "time, sourcetype and the normalized record",
                     reqs and reqs[0][1].get("Authorization") == "Splunk hec-token" and
                     ev.get("sourcetype") == "honeypot" and isinstance(ev.get("time"), float)
                     and ev.get("event", {}).get("src_ip") == "203.0.113.9" and
                     ev["event"].get("credentials") == [["a", "b"]], repr(ev))

    def test_retry(self):
        with self.rec.lock:
            self.rec.script["/retry"] = [429, 500, 200]
        self.publish("h.r", [b"r1", b"r2", b"r3"])
        st.wait_for(lambda: self.rec.got("/retry", 200), timeout=30)
        reqs = self.rec.got("/retry")
        bodies = [r[2] for r in reqs]
        self.c.check("http: 429, then 500, then 200: the same batch sent three times",
                     [r[4] for r in reqs] == [429, 500, 200] and len(set(bodies)) == 1 and
                     [json.loads(x)["payload"] for x in lines_of(reqs[:1])] == ["r1", "r2", "r3"],
                     repr([(r[4], r[2][:40]) for r in reqs]))
        gaps = [b[3] - a[3] for a, b in zip(reqs, reqs[1:])]
        self.c.check("http: back-off between attempts, doubling from retry_min (0.3 s, 0.6 s): "
                     "%s" % ["%.2f" % g for g in gaps],
                     len(gaps) == 2 and gaps[0] >= 0.29 and gaps[1] >= 0.59)

    def test_refused(self):
        with self.rec.lock:
            self.rec.script["/bad"] = [400]
        self.publish("h.bad", [b"b1", b"b2"])
        expect(st.wait_for(lambda: "refused a batch of 2 records: HTTP 400" in self.broker_log()),
               "no refusal logged: " + self.broker.log_tail(5))
        self.publish("h.bad", [b"b3"])
        st.wait_for(lambda: self.rec.got("/bad", 200), timeout=30)
        reqs = self.rec.got("/bad")
        self.c.check("http: the refusal log line carries the running total",
                     "HTTP 400 {}: dropped (2 records refused in all)" in self.broker_log(),
                     self.broker.log_tail(5))
        self.c.check("http: a 400 drops the batch (logged) and it is never sent again",
                     [(r[4], [json.loads(x)["payload"] for x in r[2].decode().splitlines()])
                      for r in reqs] == [(400, ["b1", "b2"]), (200, ["b3"])],
                     repr([(r[4], r[2]) for r in reqs]))

    def test_down(self):
        with self.rec.lock:
            self.rec.fixed["/down"] = 503
        down = [b"d%d" % i for i in range(M)]
        # The first record's POST fails before the rest fill the spool: the
        # drop then says "server failing" (with a POST still unanswered it
        # says "server slow", which a loaded machine gave at times).
        self.first_fails("/down", "h.down", down[0])
        self.publish("h.down", down[1:])
        expect(st.wait_for(lambda: sum(self.sink_counts("down")) >= M),
               "the sink did not take the messages: %r" % (self.sink_counts("down"),))
        delivered, errors = self.sink_counts("down")
        self.c.check("http server failing: %d held (max_queued, the batch being retried "
                     "included), %d dropped and counted" % (MAX_QUEUED, M - MAX_QUEUED),
                     delivered == MAX_QUEUED and errors == M - MAX_QUEUED,
                     "delivered %r errors %r" % (delivered, errors))
        self.c.check("http server failing: the drop is logged",
                     re.search(r"sink:down: spool full \(5 records, \d+ bytes; max_queued 5, "
                               r"max_queued_bytes 67108864; server failing\): dropping",
                               self.broker_log()) is not None, self.broker.log_tail(5))
        with self.rec.lock:
            self.rec.fixed["/down"] = 200
        st.wait_for(lambda: len(self.rec.got("/down", 200)) >= MAX_QUEUED, timeout=30)
        ok = [json.loads(r[2])["payload"] for r in self.rec.got("/down", 200)]
        self.c.check("http server back: the %d held records arrive, in order" % MAX_QUEUED,
                     ok == [d.decode() for d in down[:MAX_QUEUED]], repr(ok))

    def test_bytes(self):
        with self.rec.lock:
            self.rec.fixed["/bytes"] = 503
        big = [(b"%02d" % i) * 500 for i in range(10)]
        self.first_fails("/bytes", "h.bytes", big[0])
        self.publish("h.bytes", big[1:])
        expect(st.wait_for(lambda: sum(self.sink_counts("bytes")) >= 10),
               "the sink did not take the messages: %r" % (self.sink_counts("bytes"),))
        delivered, errors = self.sink_counts("bytes")
        self.c.check("http max_queued_bytes = 5000, server failing: 4 records of 1000-byte "
                     "payloads held, 6 dropped and counted", delivered == 4 and errors == 6,
                     "delivered %r errors %r" % (delivered, errors))
        self.c.check("http max_queued_bytes: the drop is logged with the bytes held",
                     re.search(r"sink:bytes: spool full \(4 records, 4\d\d\d bytes; max_queued "
                               r"100000, max_queued_bytes 5000; server failing\): dropping",
                               self.broker_log()) is not None, self.broker.log_tail(5))
        with self.rec.lock:
            self.rec.fixed["/bytes"] = 200
        st.wait_for(lambda: len(self.rec.got("/bytes", 200)) >= 4, timeout=30)
        ok = [json.loads(r[2])["payload"] for r in self.rec.got("/bytes", 200)]
        self.c.check("http server back: the 4 records max_queued_bytes held arrive, in order",
                     ok == [b.decode() for b in big[:4]], repr([o[:12] for o in ok]))

    def test_shutdown(self):
        rc = self.broker.stop(signal.SIGTERM)
        self.c.check("http: SIGTERM exits 0", rc == 0, "status %r" % rc)

    def run(self):
        self.thread.start()
        try:
            st.make_auth_db(self.tmp.join("auth.db"), KEYS)
            sinks = SINKS.format(port=self.port, max_queued=MAX_QUEUED, esx=ESX)
            self.broker = st.Broker(self.tmp, sinks, broker_extra="exporter = 127.0.0.1:0")
            self.broker.start()
            self.pub = self.broker.client(PUB, PUB_SECRET)
            self.pub.subscribe(SYNC)
            self.c.run("http: ndjson and bulk", self.test_ndjson_and_bulk)
            self.c.run("http: bulk errors", self.test_bulk_errors)
            self.c.run("http: hec", self.test_hec)
            self.c.run("http: retry", self.test_retry)
            self.c.run("http: refused", self.test_refused)
            self.c.run("http: down", self.test_down)
            self.c.run("http: max_queued_bytes", self.test_bytes)
            self.c.run("http: shutdown", self.test_shutdown)
        finally:
            if self.pub:
                self.pub.close()
            if self.broker:
                self.broker.stop(signal.SIGKILL)
            self.server.shutdown()
            self.server.server_close()


CONFIG_ERRORS = [
    ("missing url", "api = ndjson", "url"),
    ("url scheme", "url = ftp://x/", "url"),
    ("api", "url = http://x/\napi = xml", "api"),
    ("splunk-hec without token", "url = http://x/\napi = splunk-hec", "token"),
    ("header without colon", "url = http://x/\nheaders = X-A one", "headers"),
    ("header with a newline escape", "url = http://x/\nheaders = :x", "headers"),
    ("retry_min", "url = http://x/\nretry_min = 0", "retry_min"),
    ("username without password", "url = http://x/\nusername = u", "password"),
    ("no switch to skip TLS checks", "url = https://x/\ntls_verify = false", "tls_verify"),
]


def test_config(c, tmp):
    st.make_auth_db(tmp.join("auth.db"), KEYS)
    good = st.Broker(tmp, "[sink:a]\nplugin = http\nurl = https://es.example:9200/_bulk\n"
                     "api = elasticsearch-bulk\nindex = hp-{date}\nusername = u\npassword = p\n"
                     "cafile = /etc/ssl/certs/ca-certificates.crt\nbatch_bytes = 1M\n"
                     "format = cef\n", name="good")
    rc, out = st.run_daemon_once(["-t", "-c", good.conf], tmp)
    c.check("config: a valid http section passes hpfriendsd -t", rc == 0, out.strip())
    for what, body, word in CONFIG_ERRORS:
        b = st.Broker(tmp, "[sink:bad]\nplugin = http\n%s\n" % body, name="bad")
        rc, out = st.run_daemon_once(["-t", "-c", b.conf], tmp)
        c.check("config: %s is refused naming [sink:bad] and '%s'" % (what, word),
                rc != 0 and "sink:bad" in out and word in out,
                "status %d: %s" % (rc, out.strip()))


def main():
    c = st.Checks("sink_http")
    tmp = st.TempDir("hpf-sink-http-")
    conf_tmp = st.TempDir("hpf-sink-http-conf-")
    try:
        c.run("http: against a local HTTP server", HttpSinkTest(c, tmp).run)
        c.run("config", test_config, c, conf_tmp)
    finally:
        tmp.cleanup()
        conf_tmp.cleanup()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
