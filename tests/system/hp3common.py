# SPDX-License-Identifier: BSD-3-Clause
"""What the three "existing hpfeeds auth data, used in place" runners share
(test_hpfeeds3_db: SQLite, test_hpfeeds3_json: JSON file, test_mhn_mongodb:
MongoDB as MHN fills it): the same three keys, and the same channels-mode
pub/sub checks against a broker started hpfeeds3-style on them."""

import time

import hpftest as t

C1, C2 = "hp3.one", "hp3.two"
# (owner, ident, secret, pubchans, subchans)
ROWS = [
    ("owner-a", "key-a", "secret-a", [C1], [C1]),
    ("owner-b", "key-b", "secret-b", [C1, C2], [C1]),
    ("owner-c", "key-c", "secret-c", [], [C1, C2]),
]


def list_lines(rows, owner_is_ident=False):
    """`authkey list` lines for rows, sorted."""
    return sorted("%s\towner=%s\tpublish=%s\tsubscribe=%s"
                  % (i, i if owner_is_ident else o, ",".join(p), ",".join(s))
                  for o, i, _, p, s in rows)


def wait_subscribed(sub, pub, chan, timeout=t.IO_TIMEOUT):
    """sub cannot publish, so it cannot sync itself: pub sends markers on
    chan until one arrives at sub (bounded)."""
    def once():
        m = t.unique("marker")
        pub.publish(chan, m)
        pub.sync(C1)
        sub.drain(0.2)
        return any(p.startswith(b"marker-") for p in sub.payloads())
    ok = t.poll(once, timeout, pace=0)
    sub.take()
    return ok


def pubsub_checks(r, b, label=""):
    """key-a, key-b, key-c on broker b in channels mode: who gets what, and
    key-c's empty publish list.  Leaves the broker running."""
    a = b.connect("key-a", "secret-a")
    a.subscribe(C1)
    a.sync(C1)
    bb = b.connect("key-b", "secret-b")
    bb.subscribe(C1)
    bb.sync(C1)
    c = b.connect("key-c", "secret-c")
    c.subscribe(C2)
    c.subscribe(C1)  # frames are handled in order: C1 live implies C2 live
    r.check("%skey-c (subscribe only) is subscribed" % label, wait_subscribed(c, a, C1))
    for p in (a, bb, c):
        p.take()

    m1, m2 = t.unique("from-a"), t.unique("from-b")
    a.publish(C1, m1)
    bb.publish(C2, m2)
    a.sync(C1)
    bb.sync(C1)
    t.poll(lambda: c.drain(0.1) or (m1 in c.payloads() and m2 in c.payloads()), t.IO_TIMEOUT,
           pace=0)
    got_c = c.payloads()
    r.check("%schannels mode: key-a's message on %s reaches key-a, key-b and key-c "
            "(three owners, no shares)" % (label, C1),
            m1 in a.payloads() and m1 in bb.payloads() and m1 in got_c,
            "a=%r b=%r c=%r" % (a.payloads(), bb.payloads(), got_c))
    r.check("%skey-b's message on %s reaches key-c only (the only subscriber)" % (label, C2),
            m2 in got_c and m2 not in a.payloads() and m2 not in bb.payloads())
    c.publish(C1, b"not allowed")
    errors, closed = c.wait_error_and_close(t.IO_TIMEOUT)
    r.check("%skey-c's empty publish list is honoured: PUBLISH denied" % label,
            errors == ["Authkey not allowed to pub here. ident=key-c, chan=%s" % C1] and closed,
            "errors=%r closed=%s" % (errors, closed))
    return a, bb


def two_owner_exchange(r, b, label):
    """The short form: key-b's message on C1 reaches key-a."""
    a = b.connect("key-a", "secret-a")
    a.subscribe(C1)
    a.sync(C1)
    bb = b.connect("key-b", "secret-b")
    bb.subscribe(C1)
    bb.sync(C1)
    a.take()
    m = t.unique("first")
    bb.publish(C1, m)
    bb.sync(C1)
    a.sync(C1)
    r.check("%s: pub/sub between two owners works" % label, m in a.payloads(),
            repr(a.payloads()))
    return a, bb


def auth_refused(b, ident, secret, timeout=t.IO_TIMEOUT):
    """Connect with (ident, secret): (ERROR texts, closed?)."""
    p = b.connect(ident, secret)
    return p.wait_error_and_close(timeout)


def auth_works(b, ident, secret, chan):
    """A fresh connection authenticates and its subscription delivers:
    True, or False when the broker refused it.  Bounded."""
    p = None
    try:
        p = b.connect(ident, secret)
        p.subscribe(chan)
        p.sync(chan)
        return True
    except Exception:  # noqa: BLE001 - ERROR, close or timeout: not (yet) accepted
        return False
    finally:
        if p is not None:
            p.close()


def added_key_checks(r, b, before, add, what, deadline):
    """key-d (secret-d) is refused until add() puts it into the auth data
    (before and what say how), then it authenticates and its subscription
    to C1 delivers within deadline seconds."""
    errors, closed = auth_refused(b, "key-d", "secret-d")
    r.check("before %s, key-d is refused (Authentication failed for key-d)" % before,
            errors == ["Authentication failed for key-d"] and closed,
            "errors=%r closed=%s" % (errors, closed))
    add()
    t0 = time.monotonic()
    ok = t.poll(lambda: auth_works(b, "key-d", "secret-d", C1), deadline)
    print("# took %.2f s" % (time.monotonic() - t0))
    r.check("%s: it authenticates and pub/subs within %d s" % (what, deadline), ok)


def removed_key_checks(r, b, a, bb, what, deadline):
    """key-a's entry has just been removed from the auth data (what says
    how) while a, a session of key-a, is live: a gets ERROR and is closed
    within deadline seconds, a new key-a connection is refused, and bb
    (key-b) keeps working."""
    errors, closed = a.wait_error_and_close(deadline)
    r.check("%s: its live session gets ERROR and is closed within %d s" % (what, deadline),
            bool(errors) and closed, "errors=%r closed=%s" % (errors, closed))
    errors, closed = auth_refused(b, "key-a", "secret-a")
    r.check("and a new connection as key-a is refused (Authentication failed for key-a)",
            errors == ["Authentication failed for key-a"] and closed,
            "errors=%r closed=%s" % (errors, closed))
    r.check("key-b's session is unaffected by the changes", bb.still_works(C1))
