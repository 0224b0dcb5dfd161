#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""cluster_bench.py: one hpfriendsd node versus three over NATS, measured
with hpfriends-bench against running brokers (--host, --sub-port).

Setups, each started fresh (nodes share one SQLite authkeys file written by
hpfriends-bench --write-authdb; access = channels, as the bench's fanout):

  single      one node, no [cluster]
  single+nats one node with cluster_nats (what forwarding every publish to
              NATS costs when nobody elsewhere listens)
  three       three nodes, a three-server NATS cluster; the publisher on
              node0, subscribers spread over the three nodes round robin
  hop         three nodes; publisher on node0, every subscriber on node1:
              each delivery crosses node0 -> NATS -> node1

Scenarios per setup: fanout (1 publisher -> 50 subscribers, 1 KiB, at most
--window messages in flight to the slowest subscriber) and latency
(--rate messages per second from a timer, 10 subscribers).
Each is run --runs times; the table shows medians (and the spread).

  HPF_BUILDDIR=build python3 tests/bench/cluster_bench.py [--runs 3]
      [--duration 3] [--window 1000] [--rate 2000] [--json FILE] [--keep]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("HPF_BUILDDIR") or os.getcwd()
DAEMON = os.path.join(BUILD, "core", "hpfriendsd")
BENCH = os.path.join(BUILD, "tests", "bench", "hpfriends-bench")
PLUGINS = os.environ.get("HPFRIENDS_PLUGIN_DIR") or os.path.join(BUILD, "plugins", ".libs")
HOST = "127.0.0.1"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, argv, log, **kw):
        f = open(log, "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             **kw)
        f.close()
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


def start_nats(procs, d):
    nats = shutil.which("nats-server")
    if not nats:
        sys.exit("cluster_bench: nats-server not found on PATH")
    ports = [free_port() for _ in range(3)]
    routes = [free_port() for _ in range(3)]
    for i in range(3):
        others = ",".join("nats://%s:%d" % (HOST, routes[j]) for j in range(3) if j != i)
        procs.start([nats, "-a", HOST, "-p", str(ports[i]), "--cluster_name", "bench",
                     "--cluster", "nats://%s:%d" % (HOST, routes[i]), "--routes", others],
                    os.path.join(d, "nats%d.log" % i))
    for p in ports:
        if not wait_port(p):
            sys.exit("cluster_bench: nats-server on %d did not come up" % p)
    time.sleep(1.0)  # routes: the bench's warm-up probes wait for interest anyway
    return ["nats://%s:%d" % (HOST, p) for p in ports]


def start_node(procs, d, i, nats_urls):
    conf = os.path.join(d, "node%d.conf" % i)
    ready = os.path.join(d, "node%d.ready" % i)
    lines = ["[broker]", "name = node%d" % i, "listen = tcp:%s:0" % HOST, "access = channels",
             "log_level = notice", "[storage]", "plugin = sqlite",
             "path = %s" % os.path.join(d, "auth.db")]
    if nats_urls:
        # The bench's NATS servers take anonymous clients on 127.0.0.1.
        lines += ["[cluster]", "plugin = cluster_nats", "allow_anonymous = true",
                  "servers = %s" % ",".join(nats_urls), "node = node%d" % i]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    if os.path.exists(ready):
        os.unlink(ready)
    env = dict(os.environ, HPFRIENDS_PLUGIN_DIR=PLUGINS)
    procs.start([DAEMON, "-f", "-c", conf, "--ready-file", ready],
                os.path.join(d, "node%d.log" % i), env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if os.path.exists(ready):
            for line in open(ready):
                parts = line.split()
                if parts[0] == "tcp":
                    return int(parts[2])
        time.sleep(0.05)
    sys.exit("cluster_bench: node%d not ready (see %s)" % (i, d))


def bench(scenario, pub_port, sub_ports, a):
    argv = [BENCH, "-s", scenario, "-d", str(a.duration), "--host", HOST, "--port",
            str(pub_port), "--json"]
    if scenario == "fanout":
        argv += ["--window", str(a.window)]
    else:
        argv += ["--rate", str(a.rate)]
    for p in sub_ports:
        argv += ["--sub-port", str(p)]
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    try:
        doc = json.loads(out.stdout.decode())
    except ValueError:
        return {"error": "bench output: %r %r" % (out.stdout[-300:], out.stderr[-300:])}
    return doc["scenarios"][0]


SETUPS = ("single", "single+nats", "three", "hop")


def run_setup(setup, d, a):
    procs = Procs()
    try:
        nats_urls = start_nats(procs, d) if setup != "single" else None
        n = 1 if setup.startswith("single") else 3
        ports = [start_node(procs, d, i, nats_urls) for i in range(n)]
        subs = {"single": ports[:1], "single+nats": ports[:1], "three": ports,
                "hop": ports[1:2]}[setup]
        return {s: bench(s, ports[0], subs, a) for s in ("fanout", "latency")}
    finally:
        procs.stop_all()


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.median(values), (min(values), max(values))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--window", type=int, default=1000,
                    help="fanout: at most N messages in flight to the slowest subscriber: "
                    "a cluster has no backpressure from remote nodes to the publisher, so "
                    "an open loop (0) measures how fast it drops")
    ap.add_argument("--rate", type=int, default=2000, help="latency: messages per second")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json")
    ap.add_argument("--setup", action="append", choices=SETUPS)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="hpf-cluster-bench-")
    r = subprocess.run([BENCH, "--write-authdb", os.path.join(d, "auth.db")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        sys.exit("cluster_bench: --write-authdb failed: %s" % r.stdout.decode())
    results = {s: [] for s in (a.setup or SETUPS)}
    for run in range(a.runs):
        for s in results:
            print("# run %d: %s" % (run + 1, s), file=sys.stderr, flush=True)
            results[s].append(run_setup(s, d, a))
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print("%d runs x %.0f s each, medians (min-max); %d CPUs, load average now %s; "
          "fanout --window %d, latency --rate %d" % (a.runs, a.duration, os.cpu_count(), load,
                                                     a.window, a.rate))
    print("%-12s %-8s %14s %10s %10s %12s %8s" % ("setup", "scenario", "deliveries/s",
                                                 "p50 us", "p99 us", "drops", "errors"))
    for s, runs in results.items():
        for sc in ("fanout", "latency"):
            rows = [x[sc] for x in runs]
            dps = med([x.get("deliveries_per_s") for x in rows])
            p50 = med([x.get("latency_p50_us") for x in rows])
            p99 = med([x.get("latency_p99_us") for x in rows])
            drops = med([x.get("drops") for x in rows])
            errs = sum(1 for x in rows if x.get("error"))

            def fmt(m, f="%.0f"):
                if m[0] is None:
                    return "-"
                return (f % m[0]) + (" (" + f % m[1][0] + "-" + f % m[1][1] + ")"
                                     if m[1][0] != m[1][1] else "")
            print("%-12s %-8s %14s %10s %10s %12s %8d" % (s, sc, fmt(dps), fmt(p50), fmt(p99),
                                                         fmt(drops), errs))
            for x in rows:
                if x.get("error"):
                    print("#   error: %s" % x["error"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.keep:
        print("# kept %s" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
