#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: per-authkey traffic counters.

One key publishes N = 25 messages of known sizes, another receives them;
SIGTERM makes the broker save the counters to storage and exit 0; then
`hpfriendsctl authkey show` must report, for both keys, the message counts
and byte counts.  Bytes are payload bytes, published and received alike:
the same message must count the same on both sides.
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402

CHAN = "cnt.data"
SYNC = "cnt.sync"
N = 25
SIZES = [(i * 37) % 500 + i for i in range(N)]  # 0 .. ~520 bytes, varied
PUB, SUB = "pub-key", "sub-key"


def show(conf, ident):
    res = t.ctl(conf, "authkey", "show", ident)
    t.expect(res.rc == 0, "authkey show %s: %r" % (ident, res))
    pub = re.search(r"^published: (\d+) messages, (\d+) bytes$", res.out, re.M)
    rcv = re.search(r"^received: (\d+) messages, (\d+) bytes$", res.out, re.M)
    t.expect(pub and rcv, "authkey show %s: no counter lines in %r" % (ident, res.out))
    return (int(pub.group(1)), int(pub.group(2))), (int(rcv.group(1)), int(rcv.group(2)))


def frame_len(ident, chan, payload_len):
    return 5 + 1 + len(ident) + 1 + len(chan) + payload_len


def counters(r):
    d = r.subdir("counters")
    conf = t.write_config(d, {"access": "channels"})
    t.ctl_ok(conf, "user", "add", "pubuser")
    t.ctl_ok(conf, "user", "add", "subuser")
    t.ctl_ok(conf, "authkey", "add", "--owner", "pubuser", "--ident", PUB, "--secret", "p",
             "--publish", CHAN)
    t.ctl_ok(conf, "authkey", "add", "--owner", "subuser", "--ident", SUB, "--secret", "s",
             "--publish", SYNC, "--subscribe", CHAN + "," + SYNC)
    r.check("counters start at zero",
            show(conf, PUB) == ((0, 0), (0, 0)) and show(conf, SUB) == ((0, 0), (0, 0)))

    b = t.Broker(r, "counters-broker", conf=conf).start()
    sub = b.connect(SUB, "s")
    sub.subscribe(CHAN)
    sub.subscribe(SYNC)
    # The subscriber's one sync token is traffic of its own: it publishes it
    # on SYNC and receives it back.
    token_len = len(sub.sync(SYNC))
    pub = b.connect(PUB, "p")
    payloads = [bytes([65 + i % 26]) * n for i, n in enumerate(SIZES)]
    for p in payloads:
        pub.publish(CHAN, p)
    t.poll(lambda: sub.drain(0.1) or len(sub.inbox) >= N, 10, pace=0)
    got = [m[2] for m in sub.take()]
    r.check("the subscriber received all %d messages, in order" % N, got == payloads,
            "got %d messages" % len(got))

    rc = b.stop()
    r.check("SIGTERM: the broker exits 0", rc == 0, "status %r" % rc)

    total = sum(SIZES)
    (pm, pb), (rm, rb) = show(conf, PUB)
    r.equal("%s published: %d messages" % (PUB, N), pm, N)
    r.equal("%s published: %d bytes (the payload bytes)" % (PUB, total), pb, total)
    r.equal("%s received: 0 messages, 0 bytes" % PUB, (rm, rb), (0, 0))

    (pm, pb), (rm, rb) = show(conf, SUB)
    r.equal("%s published: 1 message, %d bytes (its sync token)" % (SUB, token_len), (pm, pb),
            (1, token_len))
    r.equal("%s received: %d messages" % (SUB, N + 1), rm, N + 1)
    want_rb = total + token_len
    frames = sum(frame_len(PUB, CHAN, n) for n in SIZES) + frame_len(SUB, SYNC, token_len)
    if rb == frames and rb != want_rb:
        print("# received bytes %d = whole PUBLISH frames (header, ident, channel, payload); "
              "payload bytes would be %d, and published bytes count payload only" % (rb, want_rb))
    r.equal("%s received: %d bytes (payload bytes, as counted for published)"
            % (SUB, want_rb), rb, want_rb)

    # Counters accumulate over broker runs.
    b2 = t.Broker(r, "counters-broker-2", conf=conf).start()
    sub2 = b2.connect(SUB, "s")
    sub2.subscribe(CHAN)
    sub2.subscribe(SYNC)
    sub2.sync(SYNC)
    pub = b2.connect(PUB, "p")
    pub.publish(CHAN, b"x" * 10)
    t.poll(lambda: sub2.drain(0.1) or b"x" * 10 in sub2.payloads(), 10, pace=0)
    t.expect(b"x" * 10 in sub2.payloads(), "second run: the message did not arrive")
    rc = b2.stop()
    r.check("second run: SIGTERM exit 0", rc == 0, "status %r" % rc)
    (pm, pb), _ = show(conf, PUB)
    r.equal("counters add up over two broker runs (published %d messages, %d bytes)"
            % (N + 1, total + 10), (pm, pb), (N + 1, total + 10))


if __name__ == "__main__":
    t.main("counters", [("per-authkey traffic counters", counters)])
