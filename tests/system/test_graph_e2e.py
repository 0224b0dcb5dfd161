#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: who receives what (DESIGN.md section 3), end to end.

The worked example (jojo -shares-> mark -shares_all-> @partners, alice in
partners, eve alone) is set up with hpfriendsctl, a real hpfriendsd runs on
it, every user has one connection that subscribes to and publishes on
dionaea.captures, and each user's message must reach exactly the readers
the rule gives: checked both ways (who got it, who did not).  Then the same
data under access = channels (everyone gets everything), and under
require_accept = true, where the offers count only once accepted, live.
"""

import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402

CHAN = "dionaea.captures"
USERS = ["jojo", "mark", "alice", "eve"]
RELOAD = 1  # reload_interval for the live parts

WORKED = {
    "jojo": ["alice", "jojo", "mark"],
    "mark": ["alice", "mark"],
    "alice": ["alice"],
    "eve": ["eve"],
}


def ident(user):
    return user + "-key"


def setup_worked_example(conf):
    """Users, group, shares and one authkey per user; returns the secrets.
    jojo's secret is the one hpfriendsctl generates and prints."""
    for u in USERS:
        t.ctl_ok(conf, "user", "add", u)
    t.ctl_ok(conf, "group", "add", "partners", "--owner", "mark")
    t.ctl_ok(conf, "group", "member", "add", "partners", "alice")
    t.ctl_ok(conf, "share", "add", "--from", "jojo", "--to", "mark", "--channel", CHAN,
             "--type", "shares")
    t.ctl_ok(conf, "share", "add", "--from", "mark", "--to", "@partners", "--channel", CHAN,
             "--type", "shares_all")
    secrets = {}
    for u in USERS:
        args = ["authkey", "add", "--owner", u, "--ident", ident(u),
                "--publish", CHAN, "--subscribe", CHAN]
        if u != "jojo":
            secrets[u] = u + "-secret"
            args += ["--secret", secrets[u]]
        res = t.ctl_ok(conf, *args)
        if u == "jojo":
            lines = res.lines()
            t.expect(len(lines) == 1 and lines[0].strip(),
                     "authkey add without --secret printed %r" % res.out)
            secrets[u] = lines[0].strip()
    return secrets


def connect_all(broker, secrets):
    peers = {}
    for u in USERS:
        p = broker.connect(ident(u), secrets[u])
        p.subscribe(CHAN)
        peers[u] = p
    for p in peers.values():
        p.sync(CHAN)  # authenticated, subscribed
    for p in peers.values():
        p.take()
    return peers


def settle(peers):
    """Everything queued so far is read (then dropped)."""
    for p in peers.values():
        p.sync(CHAN)
    for p in peers.values():
        p.take()


def reach_round(r, peers, tag, want, label):
    """Each user publishes one message; check its readers are exactly
    want[user], and that what arrived is the frame as published, once."""
    msgs = {u: t.unique("%s-%s" % (tag, u)) for u in USERS}
    for u in USERS:
        peers[u].publish(CHAN, msgs[u])
        # Its own token coming back means the broker has fanned out the
        # message to every reader's queue.
        peers[u].sync(CHAN)
    for u in USERS:
        peers[u].sync(CHAN)  # collects everything queued for u before now
    t.drain_all(peers.values(), 0.2)  # and nothing trails behind
    by_payload = {msgs[u]: u for u in USERS}
    frames_ok, problems = True, []
    got = {u: [] for u in USERS}
    for v in USERS:
        seen = []
        for (i, ch, payload) in peers[v].take():
            pub = by_payload.get(payload)
            if pub is None:
                problems.append("%s got an unexpected message %r" % (v, payload))
                continue
            if (i, ch) != (ident(pub).encode(), CHAN.encode()):
                frames_ok = False
                problems.append("%s got %s's message as ident=%r channel=%r" % (v, pub, i, ch))
            if payload in seen:
                problems.append("%s got %s's message twice" % (v, pub))
            seen.append(payload)
            got[pub].append(v)
    for u in USERS:
        readers = sorted(set(got[u]))
        others = sorted(set(USERS) - set(want[u]))
        r.check("%s: %s's message reaches %s and not %s" % (
            label, u, ",".join(want[u]), ",".join(others) or "-"),
            readers == want[u], "reached %s" % (",".join(readers) or "nobody"))
    r.check("%s: frames delivered unchanged, once each, nothing else" % label,
            frames_ok and not problems, "; ".join(problems))


def probe_reaches(pub, sub):
    """pub publishes a fresh message; does sub get it?"""
    m = t.unique("probe")
    pub.publish(CHAN, m)
    pub.sync(CHAN)
    sub.sync(CHAN)
    return m in sub.payloads()


# ------------------------------------------------------------------ sections

def graph_mode(r):
    d = r.subdir("graph")
    conf = t.write_config(d, {"access": "graph"})
    secrets = setup_worked_example(conf)
    b = t.Broker(r, "graph-broker", conf=conf).start()
    peers = connect_all(b, secrets)
    reach_round(r, peers, "graph", WORKED, "graph")
    r.check("graph: broker still running", b.alive())


def channels_mode(r):
    d = r.subdir("channels")
    conf = t.write_config(d, {"access": "channels"})
    secrets = setup_worked_example(conf)
    b = t.Broker(r, "channels-broker", conf=conf).start()
    peers = connect_all(b, secrets)
    everyone = sorted(USERS)
    reach_round(r, peers, "channels", {u: everyone for u in USERS}, "channels")
    r.check("channels: broker still running", b.alive())


def require_accept(r):
    d = r.subdir("accept")
    conf = t.write_config(d, {"access": "graph", "require_accept": True,
                              "reload_interval": RELOAD})
    secrets = setup_worked_example(conf)
    b = t.Broker(r, "accept-broker", conf=conf).start()
    peers = connect_all(b, secrets)
    alone = {u: [u] for u in USERS}
    reach_round(r, peers, "unaccepted", alone, "require_accept, nothing accepted")

    t.ctl_ok(conf, "share", "accept", "--user", "alice", "--from", "mark", "--channel", CHAN)
    ok = t.poll(lambda: probe_reaches(peers["mark"], peers["alice"]), RELOAD + 3)
    r.check("require_accept: after alice accepts mark, mark's messages reach alice "
            "within %d s (same connections)" % (RELOAD + 3), ok)
    settle(peers)
    reach_round(r, peers, "alice-accepted",
                {"jojo": ["jojo"], "mark": ["alice", "mark"], "alice": ["alice"],
                 "eve": ["eve"]},
                "require_accept, alice accepted mark")

    t.ctl_ok(conf, "share", "accept", "--user", "mark", "--from", "jojo", "--channel", CHAN)
    ok = t.poll(lambda: probe_reaches(peers["jojo"], peers["mark"]), RELOAD + 3)
    r.check("require_accept: after mark accepts jojo, jojo's messages reach mark "
            "within %d s (same connections)" % (RELOAD + 3), ok)
    settle(peers)
    reach_round(r, peers, "all-accepted", WORKED, "require_accept, both accepted")

    t.ctl_ok(conf, "share", "reject", "--user", "alice", "--from", "mark", "--channel", CHAN)
    ok = t.poll(lambda: not probe_reaches(peers["mark"], peers["alice"]), RELOAD + 3)
    r.check("require_accept: after alice rejects mark, mark's messages stop reaching alice "
            "within %d s" % (RELOAD + 3), ok)
    settle(peers)
    reach_round(r, peers, "alice-rejected",
                {"jojo": ["jojo", "mark"], "mark": ["mark"], "alice": ["alice"],
                 "eve": ["eve"]},
                "require_accept, alice rejected mark again")
    r.check("require_accept: broker still running", b.alive())


if __name__ == "__main__":
    t.main("graph-e2e", [
        ("worked example, access = graph", graph_mode),
        ("worked example, access = channels", channels_mode),
        ("worked example, require_accept = true", require_accept),
    ])
