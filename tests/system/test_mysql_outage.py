#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: the MariaDB server goes away under a live broker, and comes
back (DESIGN.md section 4: blocking backends never run on the event loop;
storage_mysql: while the server is away every call fails within about
timeout_ms, logged at most once a minute, and the next call after it is
back connects again).

Each section: a broker with mysql storage, access = graph,
reload_interval = 1, timeout_ms = 1000; alice and bob share CHAN with each
other and are connected.

outage -- the MariaDB test server is stopped (SIGTERM, a clean shutdown):
  - the broker logs the failure, and stays up;
  - alice and bob keep delivering to each other, throughout;
  - a NEW AUTH (carol) fails closed: ERROR "Authentication failed for
    carol-key", connection closed;
  - hpfriendsctl fails with an error and changes nothing.
  The server is started again on the same port with its data; then:
  - the data is what it was (export equal to the one taken before);
  - new AUTHs work again within RECOVER_DEADLINE;
  - alice and bob were never disconnected and still deliver to each other;
  - the log shows the storage failure and the reload failure once each
    (rate-limited to once a minute) and each recovery once;
  - a change made with hpfriendsctl reaches the broker again.
retrying client -- the server is killed (SIGKILL, as a crash) and a sensor
  keeps reconnecting through the outage, more often than
  auth_failures_before_backoff: every attempt gets the normal
  "Authentication failed", and it gets in within RECOVER_DEADLINE once the
  server is back.
hang -- the server is SIGSTOPped, so calls wait for the socket timeout
  instead of failing at once: alice and bob deliver throughout while
  carol's AUTH waits, which then fails closed; after SIGCONT AUTHs work.
"""

import os
import re
import signal
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
# storage_mysql connects again at the next call; one reload interval, plus margin.
RECOVER_DEADLINE = RELOAD + TIMEOUT_MS / 1000 + 4
LIVE_DEADLINE = RELOAD + 3
RETRY_PACE = 0.5          # a client polling for recovery tries this often
RETRIES = 12              # AUTHs of a client retrying through the outage (> the
                          # default auth_failures_before_backoff, 10)
# A stopped (not dead) server: calls wait for the socket timeout,
# max(10 s, 5 x timeout_ms); allow two of them in a row (the reload that
# was running, then the lookup itself), plus margin for a loaded machine
# (3 s was seen to be too little with the whole suite and a fuzzer running).
HANG_AUTH_DEADLINE = 2 * max(10, 5 * TIMEOUT_MS / 1000) + 8
# storage_mysql's own lines (rate-limited: once a minute) ...
FAIL_RE = re.compile(r"^.*mysql at \S+: .* failed: .*$", re.M)
BACK_RE = re.compile(r"^.*mysql at \S+: working again$", re.M)
# ... and the broker's reload lines (rate-limited: once a minute).
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
    alice.sync(CHAN)  # bob's message was fanned out before bob's token came back
    got = (ma in bob.payloads(), mb in alice.payloads())
    alice.take()
    bob.take()
    return got


def setup(r, name, broker_keys=None):
    """Config (mysql, reload_interval 1, timeout_ms 1000) and data: users
    alice, bob, carol, dave with a key each, alice and bob sharing CHAN with
    each other.  Returns (conf, the export of that data, in a file)."""
    d = r.subdir(name)
    keys = {"access": "graph", "reload_interval": RELOAD}
    keys.update(broker_keys or {})
    conf = t.write_config(d, keys, backend="mysql", storage={"timeout_ms": TIMEOUT_MS})
    for u in ("alice", "bob", "carol", "dave"):
        t.ctl_ok(conf, "user", "add", u)
        t.ctl_ok(conf, "authkey", "add", "--owner", u, "--ident", ident(u), "--secret", secret(u),
                 "--publish", CHAN, "--subscribe", CHAN)
    t.ctl_ok(conf, "share", "add", "--from", "alice", "--to", "bob", "--channel", CHAN)
    t.ctl_ok(conf, "share", "add", "--from", "bob", "--to", "alice", "--channel", CHAN)
    saved = os.path.join(d, "before-outage.json")
    t.ctl_ok(conf, "export", saved)
    return conf, saved


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


def restart(r, srv, port, conf, saved, label):
    """The server again, on its port and with its data: the export taken
    before the outage is what the store holds."""
    try:
        srv.start(port)
        restarted = True
    except t.CheckFailed as e:
        restarted = False
        print("# %s" % e)
    r.check("%s: the MariaDB test server restarts on the same port %d" % (label, port),
            restarted and srv.port == port, "port %r" % srv.port)
    t.expect(restarted, "no server to recover to")
    res = t.ctl(conf, "export")
    with open(saved) as f:
        before = f.read()
    r.check("%s: the data survived the outage (export equals the one taken before)" % label,
            res.rc == 0 and res.out == before, repr(res))


def outage(r):
    srv = t.mysql_server()
    conf, saved = setup(r, "outage")
    b, alice, bob = start_pair(r, "outage-broker", conf, "before the outage")
    log_before = b.new_log()

    # ---- the outage
    port = srv.port
    srv.stop()
    t0 = time.monotonic()
    r.check("the MariaDB test server stopped (SIGTERM)", not srv.running())
    log = [log_before]

    def logged_failure():
        log.append(b.new_log())
        return FAIL_RE.search("".join(log[1:])) is not None
    ok = t.poll(logged_failure, NOTICE_DEADLINE)
    print("# failure logged after %.2f s" % (time.monotonic() - t0))
    r.check("the broker logs the storage failure within %.0f s" % NOTICE_DEADLINE, ok,
            "log since the stop: %r" % "".join(log[1:]))
    r.equal("during the outage: alice and bob still deliver to each other",
            exchange(alice, bob), (True, True))

    carol = b.connect(ident("carol"), secret("carol"))  # AUTH sent, answer pending
    during = exchange(alice, bob)
    errors, closed = carol.wait_error_and_close(AUTH_DEADLINE)
    r.check("during the outage: a new AUTH (carol-key) fails closed with "
            "'Authentication failed for carol-key' within %.0f s" % AUTH_DEADLINE,
            errors == ["Authentication failed for carol-key"] and closed,
            "errors=%r closed=%s" % (errors, closed))
    r.equal("with that AUTH in flight, alice and bob delivered", during, (True, True))

    rounds, bad = 0, []
    while time.monotonic() - t0 < OUTAGE_MIN or rounds < 2:
        got = exchange(alice, bob)
        rounds += 1
        if got != (True, True):
            bad.append((rounds, got))
        time.sleep(0.25)  # paces the rounds over several reload polls
    r.check("during %.0f+ s of outage (%d rounds, reload every %d s): every message between "
            "alice and bob delivered" % (OUTAGE_MIN, rounds, RELOAD), not bad,
            "failed rounds (round, (alice->bob, bob->alice)): %r" % bad)
    r.check("during the outage: the broker is still running", b.alive())
    res = t.ctl(conf, "user", "add", "zed")
    r.check("during the outage: hpfriendsctl user add fails with exit status 1 and a reason",
            res.rc == 1 and "mysql" in res.err, repr(res))
    outage_len = time.monotonic() - t0

    # ---- recovery: same port, same data
    restart(r, srv, port, conf, saved, "recovery")
    t1 = time.monotonic()
    ok = t.poll(lambda: h.auth_works(b, ident("carol"), secret("carol"), CHAN), RECOVER_DEADLINE,
                pace=RETRY_PACE)
    print("# new AUTH accepted %.2f s after the restart" % (time.monotonic() - t1))
    r.check("after the restart: a new AUTH (carol-key) works again within %.0f s"
            % RECOVER_DEADLINE, ok)
    r.check("alice's and bob's sessions were never dropped", not alice.closed and not bob.closed)
    r.equal("after the restart: alice and bob, on their original connections, deliver to "
            "each other", exchange(alice, bob), (True, True))

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
    r.check("rate-limited: over the %.0f s outage (a reload poll every %d s) the storage "
            "failure and the reload failure are logged once each, and each recovery once"
            % (outage_len, RELOAD), all(len(v) == 1 for v in lines.values()),
            "; ".join("%s: %r" % kv for kv in lines.items()))

    # Reloading works again: a change made now reaches the live sessions.
    t.ctl_ok(conf, "share", "del", "--from", "alice", "--to", "bob", "--channel", CHAN)
    ok = t.poll(lambda: exchange(alice, bob) == (False, True), LIVE_DEADLINE)
    r.check("after recovery, share del alice->bob reaches the broker within %d s "
            "(bob stops getting alice's messages, alice still gets bob's)" % LIVE_DEADLINE, ok)
    rc = b.stop()
    r.check("SIGTERM: the broker exits 0", rc == 0, "status %r" % rc)


def retrying_client(r):
    """A sensor keeps reconnecting through the outage, as hpfeeds clients
    do (every few seconds; here back to back).  Each attempt must get the
    normal answer, and once the server is back the sensor must get in
    within RECOVER_DEADLINE: refusals caused by the storage being down are
    not a wrong secret, and must not lock the address out."""
    srv = t.mysql_server()
    conf, saved = setup(r, "retry")
    b, alice, bob = start_pair(r, "retry-broker", conf, "retrying client, before the outage")
    port = srv.port
    srv.kill()
    answers = []
    for _ in range(RETRIES):
        errors, closed = [], False
        try:
            errors, closed = h.auth_refused(b, ident("dave"), secret("dave"), AUTH_DEADLINE)
        except hp.BrokerError as e:  # an ERROR instead of INFO: refused at connect
            errors, closed = ["at connect: %s" % e], True
        answers.append((tuple(errors), closed))
    want = (("Authentication failed for dave-key",), True)
    odd = sorted(set(a for a in answers if a != want))
    r.check("retrying client: during the outage each of %d AUTHs by dave-key gets "
            "'Authentication failed for dave-key' (not an auth-failure back-off)" % RETRIES,
            not odd, "other answers (errors, closed): %r" % odd)
    r.equal("retrying client: alice and bob still deliver to each other", exchange(alice, bob),
            (True, True))
    restart(r, srv, port, conf, saved, "retrying client")
    t1 = time.monotonic()
    ok = t.poll(lambda: h.auth_works(b, ident("dave"), secret("dave"), CHAN), RECOVER_DEADLINE,
                pace=RETRY_PACE)
    print("# dave accepted: %s, %.2f s after the restart" % (ok, time.monotonic() - t1))
    r.check("retrying client: after the server is back, dave-key (which kept retrying) gets "
            "in within %.0f s" % RECOVER_DEADLINE, ok)
    errors = None
    if not ok:
        try:
            errors, _ = h.auth_refused(b, ident("carol"), secret("carol"), AUTH_DEADLINE)
        except hp.BrokerError as e:
            errors = ["at connect: %s" % e]
        print("# a first AUTH by carol-key from the same address now gets: %r" % errors)
    r.check("retrying client: alice's and bob's sessions were never dropped",
            not alice.closed and not bob.closed and b.alive())
    rc = b.stop()
    r.check("retrying client: SIGTERM, the broker exits 0", rc == 0, "status %r" % rc)


def hang(r):
    """The server does not die but stops answering (SIGSTOP): connections
    stay open and every storage call waits for libmariadb's read timeout
    (storage_mysql sets it to max(10 s, 5 x timeout_ms)).  Meanwhile the
    event loop must not wait with it."""
    srv = t.mysql_server()
    # The auth-failure back-off is off here: retrying_client is about it.
    conf, _ = setup(r, "hang", {"auth_failures_before_backoff": 0})
    b, alice, bob = start_pair(r, "hang-broker", conf, "hang: before")

    pid = srv.pid()
    t.expect(pid is not None, "no server pid")
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        carol = b.connect(ident("carol"), secret("carol"))  # its lookup hangs
        rounds, bad = 0, []
        while time.monotonic() - t0 < OUTAGE_MIN or rounds < 2:
            got = exchange(alice, bob)
            rounds += 1
            if got != (True, True):
                bad.append((rounds, got))
            time.sleep(0.25)  # paces the rounds over several reload polls
        r.check("hang: for %.0f+ s while carol's AUTH and the reloads wait on the stopped "
                "server, alice and bob deliver every message (%d rounds)" % (OUTAGE_MIN, rounds),
                not bad, "failed rounds: %r" % bad)
        errors, closed = carol.wait_error_and_close(HANG_AUTH_DEADLINE)
        took = time.monotonic() - t0
        print("# carol's AUTH answered after %.2f s" % took)
        r.check("hang: the pending AUTH fails closed ('Authentication failed for carol-key') "
                "within %.0f s" % HANG_AUTH_DEADLINE,
                errors == ["Authentication failed for carol-key"] and closed,
                "errors=%r closed=%s after %.1f s" % (errors, closed, took))
        r.check("hang: the broker is still running", b.alive())
    finally:
        os.kill(pid, signal.SIGCONT)
    ok = t.poll(lambda: h.auth_works(b, ident("carol"), secret("carol"), CHAN), RECOVER_DEADLINE,
                pace=RETRY_PACE)
    r.check("hang: once the server answers again (SIGCONT), a new AUTH works within %.0f s"
            % RECOVER_DEADLINE, ok)
    r.equal("hang: alice and bob, on their original connections, still deliver to each other",
            exchange(alice, bob), (True, True))
    rc = b.stop()
    r.check("hang: SIGTERM, the broker exits 0", rc == 0, "status %r" % rc)


if __name__ == "__main__":
    t.main("mysql-outage", [("MariaDB outage under a live broker", outage),
                            ("a client retrying through a MariaDB outage", retrying_client),
                            ("MariaDB server hanging under a live broker", hang)],
           backend_specific=False)
