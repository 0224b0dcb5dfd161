#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Cluster test: three hpfriendsd nodes as one broker over NATS (issue #9).

Real processes over real TCP: a NATS cluster of three nats-server processes
(routes between them on 127.0.0.1), the MongoDB-wire test server holding
the one graph and authkey store every node reads, and three hpfriendsd
nodes with `[cluster] plugin = cluster_nats`, each listing all three NATS
servers.  Clients are spread over the nodes.

Checks:
  - the worked example of DESIGN.md section 3 across nodes: who receives
    and who does not, every delivery exactly once (subscribers on the
    publisher's own node included), per-publisher order, payloads bytes-
    exact, also on a channel whose name is no valid NATS subject;
  - a graph change made with hpfriendsctl through one node's config reaches
    the others within reload_interval;
  - access = channels across nodes;
  - one nats-server killed: the node that used it reconnects to another
    and traffic flows again, exactly once;
  - one hpfriendsd node killed: its subscribers (hpfeeds-cli with
    --failover, i.e. the client library's reconnect) come back on another
    node and resubscribe; subscribers on the surviving nodes lose nothing
    published on surviving nodes, and see nothing twice;
  - every NATS server down: each node keeps serving its local clients,
    counts and logs what it could not forward, and rejoins by itself when
    NATS is back;
  - NATS over TLS with client certificates (a CA, server and client
    certificates made with the openssl CLI at test time): two nodes
    exchange messages through a nats-server that requires TLS and verifies
    clients; a node that does not trust the server's CA, one without a
    client certificate, one expecting another server name and one given a
    tls:// URL of a server without TLS stay out of the cluster, say why in
    their logs and serve their local clients.

A missing nats-server, openssl, node or MongoDB-wire server is a failure,
never a skip.  Environment as tests/system/hpftest.py, plus HPF_NATS_SERVER (the
nats-server binary; default: nats-server on PATH) and HPFEEDS_CLI.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "system"))
os.environ.setdefault("HPF_TEST_BACKEND", "mongodb")
import hpftest as t  # noqa: E402

CLI = os.environ.get("HPFEEDS_CLI") or os.path.join(t.BUILDDIR, "sdk", "cli", "hpfeeds-cli")
CHAN = "dionaea.captures"
# Dots and NATS wildcards: no valid NATS subject as it is.  (hpfriendsctl
# takes printable ASCII channel names without spaces or commas.)
ODD = "odd.chan.*>%"
USERS = ("jojo", "mark", "alice", "eve")
# DESIGN.md section 3: who reads what each user publishes on CHAN.
READERS = {
    "jojo": {"jojo", "mark", "alice"},
    "mark": {"mark", "alice"},
    "alice": {"alice"},
    "eve": {"eve"},
}
NODES = 3
RELOAD = 1  # reload_interval of the nodes, seconds
FLOW_TIMEOUT = 15.0  # NATS interest to settle, a reconnect to happen
NATS_READY_TIMEOUT = 10.0
PER_PUBLISHER = 5
# NATS users: the nodes' own, and one more that may publish on the prefix
# too (a compromised or foreign client).
NATS_USER, NATS_PASS = "hpfnode", "node-pass"
INTRUDER, INTRUDER_PASS = "intruder", "intruder-pass"


free_port = t.free_port  # outside the ephemeral range: see tests/interop/ports.py


# ------------------------------------------------------------------ NATS

class NatsCluster:
    """Three nats-server processes, routed to each other on 127.0.0.1."""

    def __init__(self, runner):
        self.dir = runner.subdir("nats")
        self.bin = os.environ.get("HPF_NATS_SERVER") or shutil.which("nats-server")
        t.expect(self.bin, "nats-server not found on PATH (apt-get install nats-server, or set "
                           "HPF_NATS_SERVER)")
        self.ports = [free_port() for _ in range(NODES)]
        self.routes = [free_port() for _ in range(NODES)]
        self.monitor = [free_port() for _ in range(NODES)]
        self.procs = [None] * NODES

    def urls(self):
        return ["nats://%s:%d" % (t.HOST, p) for p in self.ports]

    def start(self, i):
        others = ",".join("nats://%s:%d" % (t.HOST, self.routes[j])
                          for j in range(NODES) if j != i)
        conf = os.path.join(self.dir, "nats%d.conf" % i)
        with open(conf, "w") as f:
            # max_payload above the broker's default max_frame (1 MiB + 5).
            f.write("max_payload: 2097152\n")
            f.write('authorization { users = [\n'
                    '  {user: "%s", password: "%s", permissions: {publish: "hpfriends.>", '
                    'subscribe: "hpfriends.>"}}\n'
                    '  {user: "%s", password: "%s", permissions: {publish: "hpfriends.>", '
                    'subscribe: "_INBOX.>"}}\n'
                    '] }\n' % (NATS_USER, NATS_PASS, INTRUDER, INTRUDER_PASS))
        log = open(os.path.join(self.dir, "nats%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(
            [self.bin, "-c", conf, "-a", t.HOST, "-p", str(self.ports[i]),
             "-m", str(self.monitor[i]), "-n", "nats%d" % i,
             "--cluster_name", "hpftest", "--cluster", "nats://%s:%d" % (t.HOST, self.routes[i]),
             "--routes", others],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()

    def start_all(self):
        for i in range(NODES):
            self.start(i)
        self.wait_routes(list(range(NODES)))

    def varz(self, i, what="routez"):
        with urllib.request.urlopen("http://%s:%d/%s" % (t.HOST, self.monitor[i], what),
                                    timeout=2) as resp:
            return json.loads(resp.read().decode())

    def wait_routes(self, alive):
        """Until every live server has a route to every other live one."""
        want = len(alive) - 1

        def ok():
            try:
                return all(self.varz(i)["num_routes"] >= want for i in alive)
            except (OSError, ValueError, KeyError):
                return False
        t.expect(t.poll(ok, NATS_READY_TIMEOUT, 0.05),
                 "NATS servers %s: not all routed to each other after %.0f s"
                 % (alive, NATS_READY_TIMEOUT))

    def server_of(self, node_name):
        """Index of the server that holds the connection named node_name."""
        for i in range(NODES):
            if not self.alive(i):
                continue
            try:
                for c in self.varz(i, "connz").get("connections") or []:
                    if c.get("name") == node_name:
                        return i
            except (OSError, ValueError):
                pass
        return None

    def alive(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

    def kill(self, i):
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()

    def stop_all(self):
        for i in range(NODES):
            self.kill(i)


_nats = None


def nats(r):
    global _nats
    if _nats is None:
        _nats = NatsCluster(r)
        _nats.start_all()
    return _nats


def _stop_nats_at_exit():
    if _nats is not None:
        _nats.stop_all()


import atexit  # noqa: E402
atexit.register(_stop_nats_at_exit)


# ------------------------------------------------------------ the nodes

_data_ready = False


def shared_dir(r):
    return r.subdir("shared")


def node_conf(r, i, access="graph", cluster_extra=None, tag="n"):
    d = r.subdir("%s%d" % (tag, i))
    # One storage for all nodes: the same (directory, db) names the same
    # MongoDB database.
    keys = t.storage_keys(shared_dir(r), "cluster.db", "mongodb")
    lines = ["[broker]", "name = node%d" % i, "listen = tcp:%s:0" % t.HOST,
             "access = %s" % access, "reload_interval = %d" % RELOAD,
             "exporter = %s:0" % t.HOST, "", "[storage]"]
    lines += ["%s = %s" % kv for kv in keys.items()]
    cl = {"plugin": "cluster_nats", "servers": ",".join(nats(r).urls()), "node": "node%d" % i,
          "reconnect_wait": "0.2", "user": NATS_USER, "password": NATS_PASS}
    cl.update(cluster_extra or {})
    lines += ["", "[cluster]"] + ["%s = %s" % kv for kv in cl.items()] + [""]
    path = os.path.join(d, "node%d.conf" % i)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def setup_data(r, conf):
    global _data_ready
    if _data_ready:
        return
    for u in USERS + ("probe",):
        t.ctl_ok(conf, "user", "add", u)
        t.ctl_ok(conf, "authkey", "add", "--owner", u, "--ident", "%s-key" % u,
                 "--secret", "%s-secret" % u, "--publish", "%s,%s" % (CHAN, ODD),
                 "--subscribe", "%s,%s" % (CHAN, ODD))
    # jojo's second key may publish on ODD only.
    t.ctl_ok(conf, "authkey", "add", "--owner", "jojo", "--ident", "narrow-key", "--secret",
             "narrow-secret", "--publish", ODD, "--subscribe", ODD)
    t.ctl_ok(conf, "group", "add", "partners", "--owner", "mark")
    t.ctl_ok(conf, "group", "member", "add", "partners", "alice")
    t.ctl_ok(conf, "group", "add", "everyone", "--owner", "probe")
    for u in USERS:
        t.ctl_ok(conf, "group", "member", "add", "everyone", u)
    for ch in (CHAN, ODD):
        t.ctl_ok(conf, "share", "add", "--from", "jojo", "--to", "mark", "--channel", ch)
        t.ctl_ok(conf, "share", "add", "--from", "mark", "--to", "@partners", "--channel", ch,
                 "--type", "shares_all")
        # probe's messages reach everybody: the test's own markers.
        t.ctl_ok(conf, "share", "add", "--from", "probe", "--to", "@everyone", "--channel", ch)
    _data_ready = True


def start_nodes(r, access="graph", cluster_extra=None, tag="n"):
    nats(r)
    confs = [node_conf(r, i, access, cluster_extra, tag) for i in range(NODES)]
    setup_data(r, confs[0])
    nodes = [t.Broker(r, "node%d" % i, conf=confs[i]).start() for i in range(NODES)]
    for n in nodes:
        n.exporter = exporter_port(n)
    return nodes, confs


def stop_nodes(r, nodes, label):
    """SIGTERM each node: it must exit 0 (under ASan: no leak, no error)."""
    codes = [n.stop() for n in nodes]
    r.check("%s: every node stops cleanly on SIGTERM (exit 0), cluster plugin and libnats "
            "included" % label, codes == [0] * len(nodes), "exit codes %r" % codes)


def exporter_port(b):
    with open(b.ready) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "http":
                return int(parts[2])
    raise t.CheckFailed("%s: no exporter port in %s" % (b.name, b.ready))


def metric(b, name):
    with urllib.request.urlopen("http://%s:%d/metrics" % (t.HOST, b.exporter), timeout=5) as rsp:
        for line in rsp.read().decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
    return None


def log_text(b):
    with open(b.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


# ------------------------------------------------------------- traffic

# Markers of this test, and the interop client's sync tokens.
MARK_PREFIXES = (b"warm:", b"end:", b"sync-")


def user_of(ident):
    return ident.decode().rsplit("-key", 1)[0]


class Crowd:
    """peers[(user, node)]: one subscriber per user per node on chan, and a
    probe publisher per node.  Files messages; markers kept apart."""

    def __init__(self, nodes, chan, users=USERS):
        self.nodes = nodes
        self.chan = chan
        self.peers = {}
        for u in users:
            for i, n in enumerate(nodes):
                p = n.connect("%s-key" % u, "%s-secret" % u)
                p.subscribe(chan)
                self.peers[(u, i)] = p
        self.probes = [n.connect("probe-key", "probe-secret") for n in nodes]
        self.seq = 0

    def live(self):
        return {k: p for k, p in self.peers.items() if self.nodes[k[1]].alive()}

    def marks(self, p, prefix):
        return {m[2] for m in p.inbox if m[2].startswith(prefix)}

    def wait_marks(self, prefix, from_nodes, timeout=FLOW_TIMEOUT, resend=False):
        """Until every live peer saw the marker prefix:<node> of each of
        from_nodes (published by that node's probe; with resend, again each
        round, for interest that is still settling).  Returns the peers
        still missing some."""
        deadline = time.monotonic() + timeout
        want = {b"%s%d" % (prefix, i) for i in from_nodes}
        while True:
            if resend or not getattr(self, "_sent_" + prefix.decode(), False):
                for i in from_nodes:
                    self.probes[i].publish(self.chan, b"%s%d" % (prefix, i))
                setattr(self, "_sent_" + prefix.decode(), True)
            peers = self.live()
            t.drain_all(peers.values(), 0.2)
            missing = [k for k, p in peers.items() if not want <= self.marks(p, prefix)]
            if not missing or time.monotonic() >= deadline:
                return missing

    def clear(self):
        for p in self.peers.values():
            p.inbox = []
        for k in list(vars(self)):
            if k.startswith("_sent_"):
                delattr(self, k)

    def messages(self, p):
        """(publisher user, payload) of every non-marker message, in order."""
        return [(user_of(m[0]), m[2]) for m in p.inbox
                if not m[2].startswith(MARK_PREFIXES) and m[1] == self.chan.encode()]


def payload(user, node, k):
    # Every byte value, so a mangled payload cannot go unnoticed.
    return ("%s@%d#%d|" % (user, node, k)).encode() + bytes(range(256)) + b"\r\n\x00end"


def exchange(r, label, crowd, publishers, readers_of, from_nodes):
    """Each (user, node) in publishers publishes PER_PUBLISHER messages
    through its own subscriber connection; then every live peer must hold
    exactly what readers_of says, once each and in order."""
    crowd.clear()
    missing = crowd.wait_marks(b"warm:", from_nodes, resend=True)
    t.expect(not missing, "%s: NATS interest did not settle within %.0f s; no warm-up marker "
             "at %s" % (label, FLOW_TIMEOUT, missing))
    crowd.clear()
    sent = {}
    for (u, i) in publishers:
        p = crowd.peers[(u, i)]
        sent[(u, i)] = [payload(u, i, k) for k in range(PER_PUBLISHER)]
        for pl in sent[(u, i)]:
            p.publish(crowd.chan, pl)
        p.sync(crowd.chan)  # node i has handled all of them
    missing = crowd.wait_marks(b"end:", from_nodes)
    t.expect(not missing, "%s: end markers missing at %s" % (label, missing))
    bad = []
    for (v, j), p in crowd.live().items():
        got = crowd.messages(p)
        want_set = {(u, pl) for (u, i), pls in sent.items() if readers_of(u, v)
                    for pl in pls}
        if sorted(got) != sorted(want_set):
            extra = [x[1][:20] for x in got if x not in want_set]
            lost = [x[1][:20] for x in want_set if x not in got]
            dup = len(got) - len(set(got))
            bad.append("%s@node%d: %d got, %d wanted; lost %r, unexpected %r, %d duplicates"
                       % (v, j, len(got), len(want_set), lost[:3], extra[:3], dup))
            continue
        for key, pls in sent.items():
            seq = [x[1] for x in got if x[1] in set(pls)]
            if seq and seq != pls:
                bad.append("%s@node%d: %s@node%d's messages out of order" % ((v, j) + key))
    return bad, sum(len(v) for v in sent.values())


# ------------------------------------------------------------- sections

def graph_across_nodes(r):
    nodes, confs = start_nodes(r)
    for chan in (CHAN, ODD):
        crowd = Crowd(nodes, chan)
        publishers = [(u, k % NODES) for k, u in enumerate(USERS)]
        bad, n = exchange(r, "graph", crowd, publishers,
                          lambda u, v: v in READERS[u], range(NODES))
        r.check("graph mode, channel %r: %d messages from 4 publishers spread over 3 nodes "
                "reach exactly the readers of DESIGN.md section 3 on every node (jojo: jojo, "
                "mark, alice; mark: mark, alice; alice and eve: themselves), each once, in "
                "order, bytes-exact" % (chan, n), not bad, "; ".join(bad))
    counts = {}

    def forwarded_all():
        counts["pub"] = metric(nodes[0], "hpfriends_publishes_total")
        counts["fwd"] = metric(nodes[0], "hpfriends_cluster_forwarded_total")
        return counts["pub"] is not None and counts["pub"] == counts["fwd"]
    # The sender thread counts once it handed a message to libnats: poll.
    r.check("node0 forwarded each local publish to NATS once (forwarded == publishes)",
            t.poll(forwarded_all, 3), repr(counts))
    inj = metric(nodes[1], "hpfriends_cluster_injected_total")
    r.check("node1 fanned out messages from other nodes (injected > 0)",
            inj is not None and inj > 0, "injected %r" % inj)

    # A graph change through node2's config reaches node0 and node1.
    t.ctl_ok(confs[2], "share", "add", "--from", "eve", "--to", "alice", "--channel", CHAN)
    deadline = time.monotonic() + RELOAD + 3
    crowd = Crowd(nodes, CHAN)
    ok = False
    while not ok and time.monotonic() < deadline:
        time.sleep(RELOAD / 2)
        bad, _ = exchange(r, "after share add", crowd, [("eve", 0)],
                          lambda u, v: v in READERS[u] | ({"alice"} if u == "eve" else set()),
                          range(NODES))
        ok = not bad
    r.check("share eve -> alice added with hpfriendsctl via node2's config: eve's messages "
            "published on node0 reach alice on all three nodes within reload_interval + 3 s",
            ok, "; ".join(bad))
    t.ctl_ok(confs[2], "share", "del", "--from", "eve", "--to", "alice", "--channel", CHAN)
    stop_nodes(r, nodes, "graph")


def channels_across_nodes(r):
    nodes, _ = start_nodes(r, access="channels", tag="c")
    crowd = Crowd(nodes, CHAN)
    publishers = [(u, k % NODES) for k, u in enumerate(USERS)]
    bad, n = exchange(r, "channels", crowd, publishers, lambda u, v: True, range(NODES))
    r.check("channels mode: %d messages from 4 publishers on 3 nodes reach all 12 subscribers "
            "on every node, each once, in order" % n, not bad, "; ".join(bad))
    stop_nodes(r, nodes, "channels")


def kill_nats_server(r):
    nodes, _ = start_nodes(r, tag="k")
    nc = nats(r)
    crowd = Crowd(nodes, CHAN)
    publishers = [(u, k % NODES) for k, u in enumerate(USERS)]
    bad, _ = exchange(r, "before", crowd, publishers, lambda u, v: v in READERS[u],
                      range(NODES))
    t.expect(not bad, "before the kill: " + "; ".join(bad))
    victim = nc.server_of("node0")
    t.expect(victim is not None, "no NATS server lists a connection named node0")
    nc.kill(victim)
    print("# killed nats%d, node0's server" % victim)
    ok = t.poll(lambda: nc.server_of("node0") not in (None, victim), FLOW_TIMEOUT)
    r.check("node0 reconnects to another NATS server by itself after nats%d was killed" % victim,
            ok, "server of node0: %r" % nc.server_of("node0"))
    bad, n = exchange(r, "after", crowd, publishers, lambda u, v: v in READERS[u],
                      range(NODES))
    r.check("with nats%d dead, %d messages from all three nodes still reach exactly their "
            "readers on every node, once each" % (victim, n), not bad, "; ".join(bad))
    nc.start(victim)
    nc.wait_routes(list(range(NODES)))
    stop_nodes(r, nodes, "after the NATS server kill")


class CliSub:
    """hpfeeds-cli sub --reconnect --json --failover ...: the client
    library's reconnect, in its own process."""

    def __init__(self, r, ident, secret, chan, first, others):
        argv = [CLI, "sub", "--host", t.HOST, "--port", str(first.port), "-i", ident, "-s",
                secret, "-c", chan, "--json", "--reconnect", "--verbose"]
        for o in others:
            argv += ["--failover", "%s:%d" % (t.HOST, o.port)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines, self.err = [], []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err),
                         daemon=True).start()
        r.cli_subs.append(self)

    def _read(self, f, into):
        for line in f:
            with self.lock:
                into.append(line.decode("utf-8", "replace").rstrip("\n"))

    def announced(self, broker):
        with self.lock:
            return any("(broker %s)" % broker in x for x in self.err)

    def payloads(self):
        out = []
        with self.lock:
            lines = list(self.lines)
        for x in lines:
            d = json.loads(x)
            pl = d["payload"].encode("utf-8") if "payload" in d else None
            if pl is None:
                import base64
                pl = base64.b64decode(d["payload_b64"])
            out.append(pl)
        return out

    def stop(self):
        """SIGTERM; returns the exit status (None: it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


def kill_broker_node(r):
    nodes, _ = start_nodes(r, tag="b")
    # Surviving subscribers: every user on every node (Python peers).
    crowd = Crowd(nodes, CHAN)
    # The victim's subscribers with failover: alice and mark on node2.
    subs = {u: CliSub(r, "%s-key" % u, "%s-secret" % u, CHAN, nodes[2], nodes[:2])
            for u in ("alice", "mark")}
    t.expect(t.poll(lambda: all(s.announced("node2") for s in subs.values()), 10),
             "hpfeeds-cli subscribers did not come up on node2: %r"
             % {u: s.err for u, s in subs.items()})
    missing = crowd.wait_marks(b"warm:", range(NODES), resend=True)
    t.expect(not missing, "warm-up: %r" % missing)
    crowd.clear()

    # jojo publishes on node0 without pause, from its own connection, while
    # node2 dies and its subscribers move.
    conn = t.hp.Client(t.HOST, nodes[0].port, "jojo-key", "jojo-secret", timeout=t.IO_TIMEOUT)
    conn.connect()
    conn.subscribe(CHAN)  # for the sync below; its socket buffers what comes
    stop = threading.Event()
    sent = []

    def publish_loop():
        k = 0
        while not stop.is_set():
            pl = payload("jojo", 0, k)
            conn.publish(CHAN, pl)
            sent.append(pl)
            k += 1
            time.sleep(0.005)
    th = threading.Thread(target=publish_loop, daemon=True)
    th.start()
    try:
        time.sleep(0.3)
        nodes[2].kill()
        print("# killed node2 (SIGKILL) after %d messages" % len(sent))
        came_back = t.poll(lambda: all(s.announced("node0") or s.announced("node1")
                                       for s in subs.values()), FLOW_TIMEOUT)
        r.check("the killed node's hpfeeds-cli subscribers reconnect to a surviving node and "
                "resubscribe (client library failover)", came_back,
                "; ".join("%s: %s" % (u, s.err[-3:]) for u, s in subs.items()))
        time.sleep(0.5)
    finally:
        stop.set()
        th.join()
    # node0 has handled every publish of the loop once this comes back; the
    # end markers published after it follow them through NATS.
    conn.sync(CHAN, timeout=FLOW_TIMEOUT)
    conn.close()
    missing = crowd.wait_marks(b"end:", (0, 1))
    t.expect(not missing, "end markers: %r" % missing)
    t.expect(t.poll(lambda: all(b"end:0" in s.payloads() for s in subs.values()),
                    FLOW_TIMEOUT), "end marker did not reach the reconnected subscribers")
    print("# jojo published %d messages on node0 during the node2 kill" % len(sent))
    bad = []
    for (v, j), p in crowd.live().items():
        got = [m[2] for m in p.inbox if not m[2].startswith(MARK_PREFIXES)
               and user_of(m[0]) == "jojo"]
        want = sent if v in READERS["jojo"] else []
        if got != want:
            bad.append("%s@node%d: %d of %d, %d distinct" % (v, j, len(got), len(want),
                                                              len(set(got))))
    r.check("subscribers on the surviving nodes got all %d messages jojo published on node0 "
            "while node2 was killed, once each and in order (non-readers none)" % len(sent),
            not bad, "; ".join(bad))
    bad = []
    for u, s in subs.items():
        got = [x for x in s.payloads() if not x.startswith(MARK_PREFIXES)]
        idx = [sent.index(x) if x in sent else -1 for x in got]
        gaps = [(a, b) for a, b in zip(idx, idx[1:]) if b != a + 1]
        # Before the kill, through node2: a run from where they started;
        # then what was published while they had no node is gone (hpfeeds
        # has no replay); from their resubscription on: an unbroken run,
        # once each, in order, to the last message.
        print("# %s (failed over): %d of %d received; gap %r" % (u, len(got), len(sent), gaps))
        if -1 in idx or not idx or idx[-1] != len(sent) - 1 or len(gaps) > 1 or \
                any(b <= a for a, b in gaps):
            bad.append("%s: %d received (first %r, last %r of %d; breaks %r)"
                       % (u, len(got), idx[:1], idx[-1:], len(sent), gaps[:5]))
    r.check("the failed-over subscribers (alice, mark) got, from their resubscription on, "
            "every message jojo published, once each, in order (one gap at most: the "
            "failover itself)", not bad, "; ".join(bad))
    codes = {u: s.stop() for u, s in subs.items()}
    r.check("the failed-over hpfeeds-cli subscribers exit 0 on SIGTERM", set(codes.values()) == {0},
            repr(codes) + " " + "; ".join("%s: %s" % (u, s.err[-5:]) for u, s in subs.items()))
    stop_nodes(r, nodes[:2], "after the node kill")


def nats_down(r):
    # A small reconnect buffer, so that a few publishes overflow it.
    nodes, _ = start_nodes(r, cluster_extra={"reconnect_buffer": "4K"}, tag="d")
    nc = nats(r)
    crowd = Crowd(nodes, CHAN)
    bad, _ = exchange(r, "before", crowd, [("jojo", 0)], lambda u, v: v in READERS[u],
                      range(NODES))
    t.expect(not bad, "before NATS went down: " + "; ".join(bad))
    nc.stop_all()
    ok = t.poll(lambda: all(metric(n, "hpfriends_cluster_connected") == 0 for n in nodes),
                FLOW_TIMEOUT)
    r.check("all NATS servers killed: every node notices (hpfriends_cluster_connected 0)", ok)
    # Local service goes on: jojo on node0 to mark and alice on node0.
    crowd.clear()
    pub = crowd.peers[("jojo", 0)]
    local = [payload("jojo", 0, 1000 + k) + b"x" * 1000 for k in range(20)]
    for pl in local:
        pub.publish(CHAN, pl)
    pub.sync(CHAN)
    t.drain_all([crowd.peers[("mark", 0)], crowd.peers[("alice", 0)]], 0.5)
    got = {v: crowd.messages(crowd.peers[(v, 0)]) for v in ("mark", "alice", "eve")}
    r.check("NATS down: node0 still delivers its local publishes to its local readers "
            "(mark, alice: 20 each; eve: none)",
            [x[1] for x in got["mark"]] == local and [x[1] for x in got["alice"]] == local
            and not got["eve"], repr({k: len(v) for k, v in got.items()}))
    failed = metric(nodes[0], "hpfriends_cluster_forward_failed_total")
    r.check("what node0 could not forward is counted (20 x 1.3 KB into a 4 KB reconnect "
            "buffer: forward_failed > 0) and logged", (failed or 0) > 0 and
            "could not forward" in log_text(nodes[0]),
            "forward_failed %r" % failed)
    # A node started while no NATS server answers serves its clients too.
    late = t.Broker(r, "late", conf=node_conf(r, 3, tag="d")).start()
    late.exporter = exporter_port(late)
    lp = late.connect("jojo-key", "jojo-secret")
    lp.subscribe(CHAN)
    lp.sync(CHAN)
    r.check("a node started while NATS is down comes up and serves its local clients",
            metric(late, "hpfriends_cluster_connected") == 0)
    for i in range(NODES):
        nc.start(i)
    nc.wait_routes(list(range(NODES)))
    ok = t.poll(lambda: all(metric(n, "hpfriends_cluster_connected") == 1
                            for n in nodes + [late]), FLOW_TIMEOUT)
    r.check("NATS back: every node reconnects by itself (the late one connects)", ok)
    got = []

    def late_gets():
        crowd.peers[("jojo", 0)].publish(CHAN, b"warm:late")
        lp.drain(0.2)
        got[:] = [m for m in lp.inbox if m[2] == b"warm:late"]
        return got
    r.check("the late node receives what node0 forwards once NATS is there",
            t.poll(late_gets, FLOW_TIMEOUT, 0.05))
    bad, n = exchange(r, "after", crowd, [(u, k % NODES) for k, u in enumerate(USERS)],
                      lambda u, v: v in READERS[u], range(NODES))
    r.check("and cross-node traffic resumes: %d messages reach exactly their readers on every "
            "node, once each" % n, not bad, "; ".join(bad))
    stop_nodes(r, nodes + [late], "after NATS came back")


class RawNats:
    """A bare NATS protocol client: what a foreign or hostile NATS client
    could send on the brokers' subjects."""

    def __init__(self, url, user, password):
        host, port = url.split("//")[1].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.buf = b""
        t.expect(self._line().startswith(b"INFO "), "no INFO from nats-server")
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                          b'"name":"hostile","user":"%s","pass":"%s"}\r\nPING\r\n'
                          % (user.encode(), password.encode()))
        t.expect(self._line() == b"PONG", "no PONG from nats-server")

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            t.expect(data, "nats-server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def pub(self, subject, payload, headers=None):
        if headers is None:
            self.sock.sendall(b"PUB %s %d\r\n%s\r\n" % (subject, len(payload), payload))
            return
        hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % kv for kv in headers) + b"\r\n"
        self.sock.sendall(b"HPUB %s %d %d\r\n%s%s\r\n"
                          % (subject, len(hdr), len(hdr) + len(payload), hdr, payload))

    def flush(self):
        self.sock.sendall(b"PING\r\n")
        while self._line() != b"PONG":
            pass

    def close(self):
        self.sock.close()


def subject_of(chan, prefix=b"hpfriends"):
    return prefix + b".x" + chan.encode().hex().encode()


def hostile_nats(r):
    nodes, _ = start_nodes(r, tag="h")
    crowd = Crowd(nodes, CHAN)
    missing = crowd.wait_marks(b"warm:", range(NODES), resend=True)
    t.expect(not missing, "warm-up: %r" % missing)
    crowd.clear()
    raw = RawNats(nats(r).urls()[0], INTRUDER, INTRUDER_PASS)
    subj = subject_of(CHAN)
    bad = [
        None,                                            # no headers at all
        [(b"Hpf-Ident", b"jojo-key")],                   # no owner
        [(b"Hpf-Ident", b"%zz"), (b"Hpf-Owner", b"jojo")],  # bad escape
        [(b"Hpf-Ident", b"jojo-key"), (b"Hpf-Owner", b"%00")],  # NUL
        [(b"Hpf-Ident", b"jojo-key"), (b"Hpf-Owner", b"")],     # empty owner
    ]
    for h in bad:
        raw.pub(subj, b"bad", h)
    # An ident no hpfeeds frame can carry (s8: at most 255 bytes).
    raw.pub(subj, b"long", [(b"Hpf-Ident", b"i" * 300), (b"Hpf-Owner", b"jojo")])
    # Claiming to come from node1 (no instance id): not an echo, so every
    # node delivers it, and node1 reports another node using its name.
    raw.pub(subj, b"as-node1", [(b"Hpf-Ident", b"jojo-key"), (b"Hpf-Owner", b"jojo"),
                                (b"Hpf-Origin", b"node1")])
    # Well-formed and true to storage's authkeys: delivered to the readers
    # of the key's owner.
    raw.pub(subj, b"as-jojo", [(b"Hpf-Ident", b"jojo-key"), (b"Hpf-Owner", b"jojo")])
    # Forged: jojo's ident with eve's owner, and an ident storage does not
    # know.  Refused by every node.
    raw.pub(subj, b"as-eve", [(b"Hpf-Ident", b"jojo-key"), (b"Hpf-Owner", b"eve")])
    raw.pub(subj, b"ghost", [(b"Hpf-Ident", b"ghost-key"), (b"Hpf-Owner", b"jojo")])
    # A real key and its owner, on a channel that key may not publish on.
    raw.pub(subj, b"narrow", [(b"Hpf-Ident", b"narrow-key"), (b"Hpf-Owner", b"jojo")])
    raw.pub(subj, b"", [(b"Hpf-Ident", b"mark-key"), (b"Hpf-Owner", b"mark")])
    raw.flush()
    raw.close()
    missing = crowd.wait_marks(b"end:", range(NODES))
    t.expect(not missing, "end markers: %r" % missing)
    wrong = []
    for (v, j), p in crowd.live().items():
        got = sorted(m[2] for m in p.inbox if not m[2].startswith(MARK_PREFIXES))
        want = []
        if v in READERS["jojo"]:
            want += [b"as-jojo", b"as-node1"]
        if v in READERS["mark"]:
            want += [b""]
        if got != sorted(want):
            wrong.append("%s@node%d: got %r, want %r" % (v, j, got, sorted(want)))
    r.check("messages injected on NATS by a foreign client: the malformed ones and the forged "
            "ones (jojo-key with owner eve, an unknown ident, a key off its publish list) reach "
            "nobody; those true to "
            "storage's authkeys exactly the readers of the key's owner (also one that names "
            "node1 as its origin)", not wrong, "; ".join(wrong))
    same = [metric(n, "hpfriends_cluster_same_node_name_total") for n in nodes]
    r.check("node1 alone counts the message that named it as origin under another instance "
            "(same_node_name 0, 1, 0) and logs an error about it",
            same == [0, 1, 0] and "another node uses the name node1" in log_text(nodes[1])
            and "another node uses the name" not in log_text(nodes[0]), repr(same))
    counts = {i: (metric(n, "hpfriends_cluster_received_bad_total"),
                  metric(n, "hpfriends_cluster_inject_drops_total"),
                  metric(n, "hpfriends_cluster_refused_total")) for i, n in enumerate(nodes)}
    r.check("each node counted the 5 malformed messages (received_bad), the one it could "
            "not encode (inject_drops) and the 3 forged ones (refused), and still runs",
            all(c == (5, 1, 3) for c in counts.values()) and all(n.alive() for n in nodes),
            repr(counts))
    # Rate-limited: the first refusal (as-eve) is logged, with its reason.
    r.check("the first refusal is logged with its reason on every node",
            all("refused a message from NATS on channel %s as jojo-key (owner eve): owner is "
                "not the ident's owner" % CHAN in log_text(n) for n in nodes))
    stop_nodes(r, nodes, "after hostile NATS traffic")


def same_name(r):
    """Two nodes configured with one name: both keep working (no echo
    suppression on the name), and both say so."""
    conf = [node_conf(r, i, cluster_extra={"node": "twin"}, tag="s") for i in range(2)]
    setup_data(r, conf[0])
    nodes = [t.Broker(r, "twin%d" % i, conf=conf[i]).start() for i in range(2)]
    for n in nodes:
        n.exporter = exporter_port(n)
    crowd = Crowd(nodes, CHAN)
    bad, n = exchange(r, "same name", crowd, [("jojo", 0), ("mark", 1)],
                      lambda u, v: v in READERS[u], range(2))
    r.check("two nodes both named twin still exchange messages: %d reach exactly their "
            "readers on both, once each" % n, not bad, "; ".join(bad))
    counts = [metric(x, "hpfriends_cluster_same_node_name_total") for x in nodes]
    logged = ["another node uses the name twin" in log_text(x) for x in nodes]
    r.check("each counts the other's messages (same_node_name > 0) and logs the clash "
            "as an error once", all((c or 0) > 0 for c in counts) and all(logged) and
            all(log_text(x).count("another node uses the name") == 1 for x in nodes),
            "counts %r, logged %r" % (counts, logged))
    stop_nodes(r, nodes, "same name")


def nats_interest(r):
    """The NATS side of interest: a node holds a NATS subscription for a
    channel exactly while it has local subscribers (nats-server's
    /connz?subs=1 lists the subscriptions of the node's connection)."""
    nc = nats(r)
    conf = node_conf(r, 0, cluster_extra={"node": "watched"}, tag="i")
    setup_data(r, conf)
    node = t.Broker(r, "watched", conf=conf).start()
    node.exporter = exporter_port(node)
    subj = subject_of(CHAN).decode()

    def nats_subs():
        i = nc.server_of("watched")
        if i is None:
            return None
        for c in nc.varz(i, "connz?subs=1").get("connections") or []:
            if c.get("name") == "watched":
                return set(c.get("subscriptions_list") or [])
        return None
    t.expect(t.poll(lambda: nats_subs() is not None, FLOW_TIMEOUT),
             "no NATS server lists a connection named watched")
    before = nats_subs()
    r.check("no local subscriber: the node has no NATS subscription on %s" % subj,
            subj not in before, repr(before))
    a = node.connect("jojo-key", "jojo-secret")
    a.subscribe(CHAN)
    a.sync(CHAN)
    r.check("the first local SUBSCRIBE adds the NATS subscription",
            t.poll(lambda: subj in nats_subs(), FLOW_TIMEOUT), repr(nats_subs()))
    b = node.connect("mark-key", "mark-secret")
    b.subscribe(CHAN)
    b.sync(CHAN)
    a.subscribe(ODD)
    a.unsubscribe(CHAN)
    a.sync(ODD)  # the node handled the UNSUBSCRIBE
    time.sleep(1)
    r.check("one of two local subscribers unsubscribes: the NATS subscription stays",
            subj in nats_subs(), repr(nats_subs()))
    b.close()
    r.check("the last local subscriber disconnects: the NATS subscription goes",
            t.poll(lambda: subj not in nats_subs(), FLOW_TIMEOUT), repr(nats_subs()))
    a.subscribe(CHAN)
    a.sync(CHAN)
    t.expect(t.poll(lambda: subj in nats_subs(), FLOW_TIMEOUT), "resubscribe: %r" % nats_subs())
    # jojo-key loses the right to subscribe to CHAN: on reload the session's
    # subscription is dropped, and with it the node's interest.
    t.ctl_ok(conf, "authkey", "set", "jojo-key", "--subscribe", ODD)
    try:
        r.check("the last local subscriber's permission withdrawn (authkey set, reload): the "
                "NATS subscription goes", t.poll(lambda: subj not in nats_subs(),
                                                  RELOAD + FLOW_TIMEOUT), repr(nats_subs()))
    finally:
        t.ctl_ok(conf, "authkey", "set", "jojo-key", "--subscribe", "%s,%s" % (CHAN, ODD))
    stop_nodes(r, [node], "interest")


def max_payload_check(r):
    """NATS max_payload (2 MiB here) against the brokers' max_frame: quiet
    when it fits, an error naming both when it does not."""
    nodes = []
    for name, frame in (("fits", None), ("toobig", 4 * 1024 * 1024)):
        conf = node_conf(r, 0, cluster_extra={"node": name}, tag="mp-" + name)
        if frame:
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace("[broker]\n", "[broker]\nmax_frame = %d\n" % frame, 1))
        setup_data(r, conf)
        n = t.Broker(r, name, conf=conf).start()
        n.exporter = exporter_port(n)
        nodes.append(n)
    for n in nodes:
        t.expect(t.poll(lambda: metric(n, "hpfriends_cluster_connected") == 1, FLOW_TIMEOUT),
                 "%s did not connect" % n.name)
    warned = t.poll(lambda: "the transport takes messages of at most 2097152 bytes, but "
                    "max_frame is 4194304" in log_text(nodes[1]), 8)
    r.check("max_frame 4 MiB over NATS max_payload 2 MiB: the node logs an error naming both",
            warned, log_text(nodes[1])[-600:])
    r.check("max_frame at its default (1 MiB + 5): no such error",
            "the transport takes messages" not in log_text(nodes[0]))
    stop_nodes(r, nodes, "max_payload check")


# ------------------------------------------------------------------ TLS

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = hpfriends test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
subjectAltName = IP:127.0.0.1
extendedKeyUsage = serverAuth
[client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
"""


def make_pki(d):
    """With the openssl CLI, into d: a CA, an unrelated second CA, a server
    certificate for 127.0.0.1 (IP address SAN) and a client certificate,
    both signed by the first CA.  Returns the file paths by name."""
    exe = os.environ.get("OPENSSL") or shutil.which("openssl")
    t.expect(exe, "openssl not found on PATH (apt-get install openssl, or set OPENSSL)")
    cnf = os.path.join(d, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(OPENSSL_CNF)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        p = subprocess.run([exe] + list(args), cwd=d, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        t.expect(p.returncode == 0, "openssl %s failed: %s"
                 % (" ".join(args), p.stdout.decode("utf-8", "replace")[-400:]))
    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-config", cnf, "-extensions", "ca", *key, "-keyout", ca + ".key",
            "-out", ca + ".pem", "-days", "2", "-subj", "/CN=hpfriends test %s" % ca)
    for serial, who in ((1, "server"), (2, "client")):
        run("req", "-new", "-config", cnf, *key, "-keyout", who + ".key", "-out", who + ".csr",
            "-subj", "/CN=hpfriends test %s" % who)
        run("x509", "-req", "-in", who + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", str(serial), "-days", "2", "-extfile", cnf, "-extensions", who,
            "-out", who + ".pem")
    return {n: os.path.join(d, n) for n in ("ca.pem", "other-ca.pem", "server.pem",
                                             "server.key", "client.pem", "client.key")}


class TlsNats:
    """One nats-server that requires TLS and verifies client certificates
    (verify: true), with the users of NatsCluster."""

    def __init__(self, r, pki):
        self.dir = r.subdir("nats-tls")
        self.bin = os.environ.get("HPF_NATS_SERVER") or shutil.which("nats-server")
        t.expect(self.bin, "nats-server not found on PATH")
        self.port, self.monitor = free_port(), free_port()
        conf = os.path.join(self.dir, "nats-tls.conf")
        with open(conf, "w") as f:
            f.write("max_payload: 2097152\n")
            f.write('tls {\n  cert_file: "%s"\n  key_file: "%s"\n  ca_file: "%s"\n'
                    '  verify: true\n  timeout: 2\n}\n'
                    % (pki["server.pem"], pki["server.key"], pki["ca.pem"]))
            f.write('authorization { users = [\n'
                    '  {user: "%s", password: "%s", permissions: {publish: "hpfriends.>", '
                    'subscribe: "hpfriends.>"}}\n'
                    '] }\n' % (NATS_USER, NATS_PASS))
        self.log_path = os.path.join(self.dir, "nats-tls.log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "-c", conf, "-a", t.HOST, "-p", str(self.port), "-m", str(self.monitor),
             "-n", "nats-tls"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()

        def up():
            try:
                return self.connz() is not None
            except (OSError, ValueError):
                return False
        t.expect(t.poll(up, NATS_READY_TIMEOUT, 0.05),
                 "the TLS nats-server did not come up: " + self.log_text()[-400:])

    def url(self):
        return "tls://%s:%d" % (t.HOST, self.port)

    def connz(self):
        with urllib.request.urlopen("http://%s:%d/connz" % (t.HOST, self.monitor),
                                    timeout=2) as resp:
            return json.loads(resp.read().decode()).get("connections") or []

    def tls_version_of(self, name):
        for c in self.connz():
            if c.get("name") == name:
                return c.get("tls_version")
        return None

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def nats_tls(r):
    pki = make_pki(r.subdir("pki"))
    srv = TlsNats(r, pki)
    try:
        _nats_tls(r, srv, pki)
    finally:
        srv.stop()


def _nats_tls(r, srv, pki):
    good = {"servers": srv.url(), "tls_ca": pki["ca.pem"], "tls_cert": pki["client.pem"],
            "tls_key": pki["client.key"]}
    # name: (extra [cluster] keys, what its log must say, why it fails)
    bad = {
        "untrusting": (dict(good, tls_ca=pki["other-ca.pem"]),
                       "unable to get local issuer certificate",
                       "tls_ca an unrelated CA"),
        "certless": ({"servers": srv.url(), "tls_ca": pki["ca.pem"]},
                     "no tls_cert and tls_key are set",
                     "no client certificate"),
        "misnamed": (dict(good, tls_hostname="nats.invalid"),
                     "hostname mismatch:expected=nats.invalid",
                     "tls_hostname names another server"),
        # libnats alone would talk in clear to a tls:// URL without TLS.
        "downgraded": (dict(good, servers="tls://%s:%d" % (t.HOST, nats(r).ports[0])),
                       "the server offers no TLS",
                       "a tls:// URL to a server without TLS"),
    }
    nodes = []
    for i in range(2):
        conf = node_conf(r, i, cluster_extra=dict(good, node="tls%d" % i), tag="tls")
        setup_data(r, conf)
        nodes.append(t.Broker(r, "tls%d" % i, conf=conf).start())
    for k, (name, (extra, _, _)) in enumerate(bad.items()):
        conf = node_conf(r, 2 + k, cluster_extra=dict(extra, node=name), tag="tls")
        nodes.append(t.Broker(r, name, conf=conf).start())
    for n in nodes:
        n.exporter = exporter_port(n)
    versions = {}

    def both_tls():
        versions.update({n.name: srv.tls_version_of(n.name) for n in nodes[:2]})
        return all(versions.values())
    r.check("tls0 and tls1 (servers = %s, tls_ca, tls_cert, tls_key) connect to a nats-server "
            "that requires TLS and verifies client certificates: it lists both connections "
            "with a TLS version" % srv.url(), t.poll(both_tls, FLOW_TIMEOUT), repr(versions))
    crowd = Crowd(nodes[:2], CHAN)
    bad_msgs, count = exchange(r, "TLS", crowd, [("jojo", 0), ("mark", 1), ("alice", 0)],
                               lambda u, v: v in READERS[u], range(2))
    r.check("over TLS: %d messages published on both nodes reach exactly their entitled "
            "readers on the other node (and their own), each once, in order, bytes-exact"
            % count, not bad_msgs, "; ".join(bad_msgs))

    for k, (name, (_, said, why)) in enumerate(bad.items()):
        n = nodes[2 + k]
        logged = t.poll(lambda: said in log_text(n), FLOW_TIMEOUT)
        tail = [x for x in log_text(n).splitlines() if "cannot connect to NATS" in x][:1]
        r.check("%s (%s): not connected, and its log says why (%r)" % (name, why, said),
                logged and metric(n, "hpfriends_cluster_connected") == 0,
                "; ".join(tail) or log_text(n)[-600:])
        sub = n.connect("mark-key", "mark-secret")
        sub.subscribe(CHAN)
        sub.sync(CHAN)
        pub = n.connect("jojo-key", "jojo-secret")
        pub.subscribe(CHAN)  # for its sync
        pl = payload("jojo", 2 + k, 0)
        pub.publish(CHAN, pl)
        pub.sync(CHAN)
        sub.drain(0.5)
        got = [m[2] for m in sub.inbox if m[1] == CHAN.encode()]
        failed = metric(n, "hpfriends_cluster_forward_failed_total")
        r.check("%s still serves its local clients (jojo's message reaches mark on the same "
                "node, once, bytes-exact) and counts it as not forwarded" % name,
                got == [pl] and (failed or 0) >= 1,
                "got %d messages, forward_failed %r" % (len(got), failed))
    r.check("the TLS nats-server logs that it refused the node without a client certificate",
            t.poll(lambda: "client didn't provide a certificate" in srv.log_text(), 5),
            srv.log_text()[-600:])
    stop_nodes(r, nodes, "TLS")


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise t.CheckFailed("no VmRSS for pid %d" % pid)


STALL_MSGS = 300000
STALL_RSS_BOUND_MIB = 64  # unbounded, this run grew by ~235 MiB
LONG_CHAN = "stall." + "c" * 200
SYNC_CHAN = "stall.sync"


def stalled_nats(r):
    """Every NATS server stopped (SIGSTOP: a hung or partitioned server, no
    RST): a publisher's many small messages must not grow the node's
    memory, what is not forwarded is counted, and SIGTERM still works."""
    nc = nats(r)
    conf = node_conf(r, 0, cluster_extra={"queue_size": "256K", "reconnect_buffer": "1M"},
                     tag="st")
    setup_data(r, conf)
    # The publisher reads only its sync tokens (SYNC_CHAN), not the flood.
    t.ctl_ok(conf, "authkey", "add", "--owner", "probe", "--ident", "stall-key", "--secret",
             "stall-secret", "--publish", "%s,%s" % (LONG_CHAN, SYNC_CHAN),
             "--subscribe", SYNC_CHAN)
    # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
    # default) before reuse, which would be RSS that says nothing about the
    # node; keep it small for this node.  Other builds ignore the variable.
    asan = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
        "quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
    try:
        node = t.Broker(r, "stall0", conf=conf).start()
    finally:
        if asan is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = asan
    node.exporter = exporter_port(node)
    t.expect(t.poll(lambda: metric(node, "hpfriends_cluster_connected") == 1, FLOW_TIMEOUT),
             "stall0 did not connect to NATS")
    pub = node.connect("stall-key", "stall-secret")
    pub.subscribe(SYNC_CHAN)
    pub.sync(SYNC_CHAN)
    pid = node.proc.pid
    for i in range(NODES):
        nc.procs[i].send_signal(signal.SIGSTOP)
    try:
        base = vm_rss_kib(pid)
        frame = t.hp.encode_publish(b"stall-key", LONG_CHAN.encode(), b"")
        peak = base
        batch = 5000
        for k in range(STALL_MSGS // batch):
            pub.client.send(frame * batch)
            if k % 6 == 0:
                peak = max(peak, vm_rss_kib(pid))
        pub.sync(SYNC_CHAN, timeout=60)  # the node has handled all of them
        time.sleep(1)
        peak = max(peak, vm_rss_kib(pid))
        failed = metric(node, "hpfriends_cluster_forward_failed_total") or 0
        print("# stalled NATS: RSS %d KiB before, %d KiB at most; forward_failed %d"
              % (base, peak, failed))
        r.check("NATS stalled (SIGSTOP), queue_size 256K, %d empty messages on a 206-byte "
                "channel: the node's RSS grows by less than %d MiB"
                % (STALL_MSGS, STALL_RSS_BOUND_MIB),
                peak - base < STALL_RSS_BOUND_MIB * 1024,
                "VmRSS %d KiB -> %d KiB" % (base, peak))
        r.check("and what could not be queued or sent is counted (forward_failed > 100,000)",
                failed > 100000, "forward_failed %r" % failed)
        t0 = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        try:
            code = node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - t0
        r.check("SIGTERM while NATS is stalled: the node exits 0 within 10 s",
                code == 0, "exit %r after %.1f s" % (code, took))
        print("# exited %r after %.1f s" % (code, took))
    finally:
        for i in range(NODES):
            if nc.alive(i):
                nc.procs[i].send_signal(signal.SIGCONT)
    node.stop()


def preflight(r):
    nc = nats(r)
    r.check("three nats-server processes up and routed to each other (%s)"
            % ", ".join(nc.urls()), all(nc.alive(i) for i in range(NODES)))
    t.expect(os.access(CLI, os.X_OK), "hpfeeds-cli not found: " + CLI)
    # hpfriendsd -t: [cluster] mistakes name the section and the key.
    d = r.subdir("config")
    creds = {"user": NATS_USER, "password": NATS_PASS}
    cases = [
        ({"servers": "http://127.0.0.1:4222"}, "servers"),
        ({}, "servers"),
        ({"servers": nc.urls()[0], "bogus": "1"}, "bogus"),
        ({"servers": nc.urls()[0], "subject_prefix": "a..b"}, "subject_prefix"),
        ({"servers": nc.urls()[0], "reconnect_buffer": "lots"}, "reconnect_buffer"),
        ({"servers": nc.urls()[0], "password": "x"}, "password"),
        ({"servers": nc.urls()[0]}, "no NATS credentials"),
        ({"servers": nc.urls()[0], "allow_anonymous": "maybe"}, "allow_anonymous"),
        # TLS: a tls:// URL or a tls_* key with tls = false, files that are
        # missing or not PEM, half a key pair, servers on several hosts with
        # no tls_hostname.
        (dict(creds, servers="tls://%s:%d" % (t.HOST, nc.ports[0]), tls="false"),
         "tls: false, but a tls:// URL"),
        (dict(creds, servers=nc.urls()[0], tls="false", tls_hostname="nats.example"),
         "tls: false, but tls_hostname"),
        (dict(creds, servers=nc.urls()[0], tls_ca="no-such-ca.pem"), "tls_ca: "),
        (dict(creds, servers=nc.urls()[0], tls_ca="bad.conf"), "tls_ca: "),
        (dict(creds, servers=nc.urls()[0], tls_cert="bad.conf"), "tls_key: set tls_cert"),
        (dict(creds, servers="tls://a.example:4222,tls://b.example:4222"), "tls_hostname: "),
        (dict(creds, servers=nc.urls()[0], tls="maybe"), "tls: expected"),
    ]
    for keys, named in cases:
        conf = os.path.join(d, "bad.conf")
        lines = ["[broker]", "name = bad", "[storage]", "plugin = sqlite", "path = bad.db",
                 "[cluster]", "plugin = cluster_nats"] + ["%s = %s" % kv for kv in keys.items()]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = subprocess.run([t.DAEMON, "-t", "-c", conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode("utf-8", "replace")
        r.check("hpfriendsd -t refuses [cluster] %r, naming cluster and %s" % (keys, named),
                p.returncode != 0 and "cluster" in out and named in out, "rc %d: %s"
                % (p.returncode, out.strip()))
    # Without credentials only when the operator says so; and the NATS
    # servers of this test turn an anonymous client away.
    anon = {"servers": nc.urls()[0], "allow_anonymous": "true"}
    conf = os.path.join(d, "anon.conf")
    with open(conf, "w") as f:
        f.write("\n".join(["[broker]", "name = anon", "[storage]", "plugin = sqlite",
                           "path = anon.db", "[cluster]", "plugin = cluster_nats"]
                          + ["%s = %s" % kv for kv in anon.items()]) + "\n")
    p = subprocess.run([t.DAEMON, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    r.check("hpfriendsd -t accepts [cluster] without credentials given allow_anonymous = true",
            p.returncode == 0, "rc %d: %s" % (p.returncode, p.stdout.decode("utf-8", "replace")))
    sock = socket.create_connection((t.HOST, nc.ports[0]), timeout=5)
    sock.recv(65536)  # INFO
    sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
    time.sleep(0.3)
    reply = sock.recv(65536)
    sock.close()
    r.check("the test's nats-server refuses an anonymous client (authorization is on)",
            b"Authorization Violation" in reply, repr(reply[:200]))


if __name__ == "__main__":
    # Sanitizer builds: what libnats itself leaks is not ours (lsan.supp says why).
    supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lsan.supp")
    lsan = os.environ.get("LSAN_OPTIONS")
    os.environ["LSAN_OPTIONS"] = (lsan + ":" if lsan else "") + "suppressions=" + supp
    _orig_close_all = t.Runner.close_all

    def close_all(self):
        for s in getattr(self, "cli_subs", []):
            s.stop()
        self.cli_subs = []
        _orig_close_all(self)
    t.Runner.close_all = close_all
    t.Runner.cli_subs = []
    t.main("cluster", [
        ("NATS cluster", preflight),
        ("graph mode across three nodes", graph_across_nodes),
        ("channels mode across three nodes", channels_across_nodes),
        ("one nats-server killed", kill_nats_server),
        ("one hpfriendsd node killed", kill_broker_node),
        ("NATS entirely down, then back", nats_down),
        ("malformed and foreign messages on NATS", hostile_nats),
        ("two nodes with one name", same_name),
        ("NATS subscriptions follow local subscribers", nats_interest),
        ("NATS max_payload against max_frame", max_payload_check),
        ("NATS over TLS with client certificates", nats_tls),
        ("NATS stalled: bounded memory, prompt stop", stalled_nats),
    ], backend_specific=False)
