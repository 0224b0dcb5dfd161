#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""sink_bench.py: messages per second from hpfriendsd into each networked
sink's server (sink_mqtt into mosquitto, sink_redis into redis-server,
sink_http into a local http.server), on this machine.

Each case starts its server and a broker with that one sink (queue_size and
max_queued large enough that nothing is dropped), then publishes --count
messages as fast as one connection can (frames encoded up front, sent in
large writes) and stops the clock when the server holds all of them (the
MQTT subscriber has received them; XLEN; the HTTP server has read them).
The rate is count / that time; "publish" is how long the broker took to
accept the burst (a sync round trip), so a rate close to count / publish
means the publisher, not the sink, set the pace.  Each case runs --runs
times; the table shows the median and the spread.  Not a test: nothing is
asserted, and the numbers depend on the machine and its load (printed).

  HPF_BUILDDIR=build python3 tests/bench/sink_bench.py [--count 50000]
      [--runs 3] [--cases mqtt-qos0,mqtt-qos1,redis,redis-normalized,http]
"""

import argparse
import http.server
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sinks"))
import sinktest as st  # noqa: E402
import mqtt_min  # noqa: E402
import redis_min  # noqa: E402

os.environ.setdefault("HPFRIENDS_PLUGIN_DIR", os.path.join(st.BUILDDIR, "plugins", ".libs"))

PUB, SECRET, SYNC = "pub", "pub-secret", "sync"
CHAN = "cowrie.sessions"
PAYLOAD = json.dumps({
    "session": "c0ffee01", "peerIP": "203.0.113.7", "peerPort": 51234,
    "hostIP": "192.0.2.10", "hostPort": 2222, "loggedin": None, "protocol": "ssh",
    "credentials": [["root", "admin"], ["root", "123456"]], "commands": [], "urls": [],
    "version": "SSH-2.0-Go", "startTime": "2026-12-07T05:00:00.000000Z",
    "endTime": "2026-12-07T05:00:09.000000Z"}).encode()


def publish_burst(broker, count):
    """Publishes count messages in large writes; returns seconds until the broker synced."""
    c = broker.client(PUB, SECRET)
    c.subscribe(SYNC)
    frame = st.hp.encode_publish(PUB, CHAN, PAYLOAD)
    chunk = frame * 1000
    t0 = time.monotonic()
    left = count
    while left:
        n = min(left, 1000)
        c.send(chunk if n == 1000 else frame * n)
        left -= n
    c.sync(SYNC, timeout=600)
    elapsed = time.monotonic() - t0
    c.close()
    return t0, elapsed


def wait_until(pred, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return time.monotonic()
        time.sleep(0.005)
    raise RuntimeError("timed out")


def run_broker(tmp, sink):
    st.make_auth_db(tmp.join("auth.db"), {PUB: (SECRET, [CHAN, SYNC], [SYNC])})
    return st.Broker(tmp, sink + "queue_size = 1G\n", broker_extra="").start()


def case_mqtt(tmp, count, qos):
    port = st.free_port()
    mq = mqtt_min.Mosquitto(tmp.path, port).start()
    sub = mqtt_min.Subscriber(port, "bench-sub").connect(["hpfeeds/#"])
    broker = run_broker(tmp, "[sink:m]\nplugin = mqtt\nport = %d\nqos = %d\nmax_queued = %d\n"
                        % (port, qos, count * 2))
    try:
        t0, pub = publish_burst(broker, count)
        t1 = wait_until(lambda: len(sub.messages) >= count)
        return count / (t1 - t0), pub
    finally:
        broker.stop(signal.SIGTERM)
        sub.close()
        mq.stop()


def case_redis(tmp, count, fmt):
    port = st.free_port()
    srv = redis_min.Server(tmp.path, port).start()
    broker = run_broker(tmp, "[sink:r]\nplugin = redis\nport = %d\nformat = %s\nmax_queued = %d\n"
                        % (port, fmt, count * 2))
    cli = redis_min.Client(port)
    try:
        t0, pub = publish_burst(broker, count)
        t1 = wait_until(lambda: cli.command("XLEN", "hpfeeds:" + CHAN) >= count)
        return count / (t1 - t0), pub
    finally:
        cli.close()
        broker.stop(signal.SIGTERM)
        srv.stop()


def case_http(tmp, count):
    lines = [0]
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                lines[0] += body.count(b"\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer((st.HOST, 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    broker = run_broker(tmp, "[sink:h]\nplugin = http\nurl = http://127.0.0.1:%d/\n"
                        "max_queued = %d\nbatch_size = 1000\nflush_interval = 0.05\n"
                        % (srv.server_address[1], count * 2))
    try:
        t0, pub = publish_burst(broker, count)
        t1 = wait_until(lambda: lines[0] >= count)
        return count / (t1 - t0), pub
    finally:
        broker.stop(signal.SIGTERM)
        srv.shutdown()
        srv.server_close()


CASES = {
    "mqtt-qos0": ("sink_mqtt, QoS 0, format raw", lambda t, n: case_mqtt(t, n, 0)),
    "mqtt-qos1": ("sink_mqtt, QoS 1, format raw", lambda t, n: case_mqtt(t, n, 1)),
    "redis": ("sink_redis, XADD, format raw", lambda t, n: case_redis(t, n, "raw")),
    "redis-normalized": ("sink_redis, XADD, format normalized",
                         lambda t, n: case_redis(t, n, "normalized")),
    "http": ("sink_http, ndjson normalized, batches of 1000", case_http),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    print("# %d messages of %d bytes (a cowrie session) per run, %d runs; load average "
          "before: %s; %d CPUs" % (args.count, len(PAYLOAD), args.runs,
                                   " ".join("%.2f" % x for x in os.getloadavg()),
                                   os.cpu_count()))
    print("%-42s %12s %10s %14s" % ("case", "msgs/s", "spread", "publish s"))
    for name in args.cases.split(","):
        what, fn = CASES[name]
        rates, pubs = [], []
        for _ in range(args.runs):
            tmp = st.TempDir("hpf-sink-bench-")
            try:
                rate, pub = fn(tmp, args.count)
            finally:
                tmp.cleanup()
            rates.append(rate)
            pubs.append(pub)
        print("%-42s %12.0f %10s %14.2f" % (what, statistics.median(rates),
                                             "%.0f-%.0f" % (min(rates), max(rates)),
                                             statistics.median(pubs)), flush=True)
    print("# load average after: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
