#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: the PostgreSQL server goes away under a live broker, and
comes back (storage_postgresql: a server that is down fails calls within
about timeout_ms, logged at most once a minute; authentication fails
closed and mutations fail while it is away; it is used again once back).

Each section: a broker with postgresql storage, access = graph,
reload_interval = 1, timeout_ms = 1000; alice and bob share CHAN with each
other and are connected.  The private test server (tests/pg/pg-server.sh)
is stopped with a fast shutdown (its connections are closed) and started
again on the same port with its data.

outage -- during it: the broker logs the failure and stays up; alice and
  bob keep delivering to each other; a NEW AUTH (carol) fails closed;
  hpfriendsctl's mutation fails with an error naming the server.  After
  it: new AUTHs work again within RECOVER_DEADLINE without any import
  (the data survived); the sessions were never dropped; the failure and
  the recovery are logged once each; a change made with hpfriendsctl
  reaches the broker again.
retrying client -- a sensor reconnecting through the outage, more often
  than auth_failures_before_backoff, gets the normal "Authentication
  failed" each time and gets in once the server is back.
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402
import hp3common as h  # noqa: E402

hp = t.hp

CHAN = "outage.chan"
RELOAD = 1
TIMEOUT_MS = 1000
OUTAGE_MIN = 4.0          # seconds the outage lasts at least (several reload polls)
NOTICE_DEADLINE = RELOAD + TIMEOUT_MS / 1000 + 3   # broker logs the failure
AUTH_DEADLINE = TIMEOUT_MS / 1000 + t.IO_TIMEOUT   # a new AUTH gets its answer
# storage_postgresql tries a failed server again at most once a second; then
# one reload interval, plus margin.
RECOVER_DEADLINE = 1 + RELOAD + TIMEOUT_MS / 1000 + 6
LIVE_DEADLINE = RELOAD + 3
RETRY_PACE = 0.5
RETRIES = 12              # > the default auth_failures_before_backoff (10)
FAIL_RE = re.compile(r"^.*postgresql at \S+: .* failed: .*$", re.M)
BACK_RE = re.compile(r"^.*postgresql at \S+: working again$", re.M)
RELOAD_FAIL_RE = re.compile(r"^.*storage: reload failed: .*$", re.M)
RELOAD_BACK_RE = re.compile(r"^.*storage: reload works again$", re.M)


def ident(u):
    return u + "-key"


def secret(u):
    return u + "-secret"


def exchange(alice, bob):
    """alice -> bob and bob -> alice, each a fresh message: both arrived?"""
    ma, mb = t.unique("a2b"), t.unique("b2a")
    alice.publish(CHAN, ma)
    bob.publish(CHAN, mb)
    alice.sync(CHAN)
    bob.sync(CHAN)
    alice.sync(CHAN)
    got = (ma in bob.payloads(), mb in alice.payloads())
    alice.take()
    bob.take()
    return got


def setup(r, name, broker_keys=None):
    d = r.subdir(name)
    keys = {"access": "graph", "reload_interval": RELOAD}
    keys.update(broker_keys or {})
    conf = t.write_config(d, keys, backend="postgresql", storage={"timeout_ms": TIMEOUT_MS})
    for u in ("alice", "bob", "carol", "dave"):
        t.ctl_ok(conf, "user", "add", u)
        t.ctl_ok(conf, "authkey", "add", "--owner", u, "--ident", ident(u), "--secret", secret(u),
                 "--publish", CHAN, "--subscribe", CHAN)
    t.ctl_ok(conf, "share", "add", "--from", "alice", "--to", "bob", "--channel", CHAN)
    t.ctl_ok(conf, "share", "add", "--from", "bob", "--to", "alice", "--channel", CHAN)
    return conf


def start_pair(r, name, conf, label):
    b = t.Broker(r, name, conf=conf).start()
    alice = b.connect(ident("alice"), secret("alice"))
    bob = b.connect(ident("bob"), secret("bob"))
    for p in (alice, bob):
        p.subscribe(CHAN)
        p.sync(CHAN)
    r.equal("%s: alice and bob deliver to each other" % label, exchange(alice, bob),
            (True, True))
    return b, alice, bob


def during(r, b, conf, alice, bob, t0):
    """Checks while the server is down."""
    r.equal("during the outage: alice and bob still deliver to each other",
            exchange(alice, bob), (True, True))
    carol = b.connect(ident("carol"), secret("carol"))
    errors, closed = carol.wait_error_and_close(AUTH_DEADLINE)
    r.check("during the outage: a new AUTH (carol-key) fails closed with "
            "'Authentication failed for carol-key' within %.0f s" % AUTH_DEADLINE,
            errors == ["Authentication failed for carol-key"] and closed,
            "errors=%r closed=%s" % (errors, closed))
    res = t.ctl(conf, "user", "add", "zed")
    r.check("during the outage: hpfriendsctl user add fails, naming the server",
            res.rc != 0 and "postgresql at" in res.err, repr(res))
    rounds, bad = 0, []
    while time.monotonic() - t0 < OUTAGE_MIN or rounds < 2:
        got = exchange(alice, bob)
        rounds += 1
        if got != (True, True):
            bad.append((rounds, got))
        time.sleep(0.25)  # paces the rounds over several reload polls
    r.check("during %.0f+ s of outage (%d rounds): every message between alice and bob "
            "delivered" % (OUTAGE_MIN, rounds), not bad, "failed rounds: %r" % bad)
    r.check("during the outage: the broker is still running", b.alive())


def outage(r):
    srv = t.pg_server()
    conf = setup(r, "outage")
    b, alice, bob = start_pair(r, "outage-broker", conf, "before the outage")
    log = [b.new_log()]
    srv.stop()
    t0 = time.monotonic()

    def logged_failure():
        log.append(b.new_log())
        return FAIL_RE.search("".join(log[1:])) is not None
    ok = t.poll(logged_failure, NOTICE_DEADLINE)
    print("# failure logged after %.2f s" % (time.monotonic() - t0))
    r.check("the broker logs the storage failure within %.0f s" % NOTICE_DEADLINE, ok,
            "log since the stop: %r" % "".join(log[1:]))
    during(r, b, conf, alice, bob, t0)
    outage_len = time.monotonic() - t0

    srv.resume()
    t1 = time.monotonic()
    ok = t.poll(lambda: h.auth_works(b, ident("carol"), secret("carol"), CHAN), RECOVER_DEADLINE,
                pace=RETRY_PACE)
    print("# new AUTH accepted %.2f s after the server was back" % (time.monotonic() - t1))
    r.check("after the restart: a new AUTH (carol-key) works again within %.0f s, no import "
            "needed" % RECOVER_DEADLINE, ok)
    r.check("alice's and bob's sessions were never dropped", not alice.closed and not bob.closed)
    r.equal("after the restart: alice and bob deliver to each other", exchange(alice, bob),
            (True, True))

    def logged_back():
        log.append(b.new_log())
        text = "".join(log[1:])
        return BACK_RE.search(text) and RELOAD_BACK_RE.search(text)
    ok = t.poll(logged_back, LIVE_DEADLINE)
    text = "".join(log[1:])
    r.check("the broker logs the recovery (storage 'working again', 'reload works again')",
            ok, "log since the stop: %r" % text)
    lines = {what: rx.findall(text) for what, rx in (
        ("storage failure", FAIL_RE), ("reload failure", RELOAD_FAIL_RE),
        ("storage recovery", BACK_RE), ("reload recovery", RELOAD_BACK_RE))}
    print("# outage of %.1f s, log lines: %s" % (
        outage_len, ", ".join("%s %d" % (k, len(v)) for k, v in lines.items())))
    r.check("rate-limited: the storage failure and the reload failure are logged once each, "
            "and each recovery once", all(len(v) == 1 for v in lines.values()),
            "; ".join("%s: %r" % kv for kv in lines.items()))

    t.ctl_ok(conf, "share", "del", "--from", "alice", "--to", "bob", "--channel", CHAN)
    ok = t.poll(lambda: exchange(alice, bob) == (False, True), LIVE_DEADLINE)
    r.check("after recovery, share del alice->bob reaches the broker within %d s" % LIVE_DEADLINE,
            ok)
    rc = b.stop()
    r.check("SIGTERM: the broker exits 0", rc == 0, "status %r" % rc)


def retrying_client(r):
    srv = t.pg_server()
    conf = setup(r, "retry")
    b, alice, bob = start_pair(r, "retry-broker", conf, "retrying client, before the outage")
    srv.stop()
    answers = []
    for _ in range(RETRIES):
        try:
            errors, closed = h.auth_refused(b, ident("dave"), secret("dave"), AUTH_DEADLINE)
        except hp.BrokerError as e:
            errors, closed = ["at connect: %s" % e], True
        answers.append((tuple(errors), closed))
    want = (("Authentication failed for dave-key",), True)
    odd = sorted(set(a for a in answers if a != want))
    r.check("retrying client: during the outage each of %d AUTHs by dave-key gets "
            "'Authentication failed for dave-key'" % RETRIES, not odd,
            "other answers: %r" % odd)
    srv.resume()
    ok = t.poll(lambda: h.auth_works(b, ident("dave"), secret("dave"), CHAN), RECOVER_DEADLINE,
                pace=RETRY_PACE)
    r.check("retrying client: after the server is back, dave-key gets in within %.0f s"
            % RECOVER_DEADLINE, ok)
    r.check("retrying client: alice's and bob's sessions were never dropped",
            not alice.closed and not bob.closed and b.alive())
    rc = b.stop()
    r.check("retrying client: SIGTERM, the broker exits 0", rc == 0, "status %r" % rc)


if __name__ == "__main__":
    t.main("pg-outage", [("PostgreSQL outage under a live broker", outage),
                         ("a client retrying through a PostgreSQL outage", retrying_client)],
           backend_specific=False)
