#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""hpfriendsd's sd_notify messages, as systemd would receive them.

The runner plays the service manager: it owns a datagram socket, starts the
broker with NOTIFY_SOCKET (and WATCHDOG_USEC) pointing at it, and checks
what arrives, from whom (SCM_CREDENTIALS) and in which order: READY=1 with a
STATUS= line only once the broker accepts connections; WATCHDOG=1 at about
half the watchdog period; on SIGHUP RELOADING=1 with a MONOTONIC_USEC= taken
after the signal was sent, then READY=1 once the reload is done; on SIGTERM
STOPPING=1, then a clean exit.  A start that fails sends a STATUS= line with
the reason and no READY=1.  Only built with libsystemd (configure
--with-systemd); without NOTIFY_SOCKET every other test runs the broker.
"""

import os
import signal
import socket
import struct
import subprocess
import time

import hpftest as T

WATCHDOG_USEC = 400000
RECV_TIMEOUT = 10.0


class Manager:
    """The receiving end of NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def recv(self, timeout=RECV_TIMEOUT):
        """(fields dict, sender pid, time received), or None after timeout."""
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, kind, blob in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", blob[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
        return fields, pid, time.monotonic()

    def next_not_watchdog(self, timeout=RECV_TIMEOUT):
        """The next message other than a bare WATCHDOG=1 ping."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.01, deadline - time.monotonic()))
            if m is None or set(m[0]) != {"WATCHDOG"}:
                return m

    def close(self):
        self.sock.close()


def start(r, name, conf, manager, watchdog=True):
    env = dict(os.environ, NOTIFY_SOCKET=manager.path)
    env.pop("WATCHDOG_PID", None)
    if watchdog:
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    else:
        env.pop("WATCHDOG_USEC", None)
    d = os.path.dirname(conf)
    log = open(os.path.join(d, name + ".log"), "ab")
    p = subprocess.Popen([T.DAEMON, "-f", "-c", conf], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, env=env, cwd=d)
    log.close()
    return p


def test_sequence(r):
    d = r.subdir("notify")
    m = Manager(os.path.join(d, "notify.sock"))
    port = T.free_port()
    conf = T.write_config(d, broker={"listen": "tcp:%s:%d" % (T.HOST, port)}, backend="sqlite")
    p = start(r, "broker", conf, m)
    try:
        first = m.next_not_watchdog()
        T.expect(first is not None, "no message within %.0f s" % RECV_TIMEOUT)
        fields, pid, _ = first
        r.equal("the first message is READY=1", fields.get("READY"), "1")
        r.equal("... sent by the broker's process", pid, p.pid)
        r.check("... with a STATUS= line naming the listener",
                "tcp:127.0.0.1:%d" % port in fields.get("STATUS", ""), repr(fields))
        with socket.create_connection((T.HOST, port), timeout=5) as s:
            s.settimeout(5)
            r.check("... once it accepts connections (INFO arrives)", len(s.recv(5)) == 5)

        pings = []
        t0 = time.monotonic()
        while len(pings) < 4 and time.monotonic() - t0 < 5:
            msg = m.recv(2)
            if msg and msg[0] == {"WATCHDOG": "1"}:
                pings.append(msg[2])
        r.check("WATCHDOG=1 pings arrive", len(pings) == 4, "%d in 5 s" % len(pings))
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        r.check("... about every half period (%.0f ms)" % (WATCHDOG_USEC / 2000.0),
                gaps and max(gaps) < WATCHDOG_USEC / 1e6, "gaps %r s" % gaps)

        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        p.send_signal(signal.SIGHUP)
        reloading = m.next_not_watchdog()
        after = time.clock_gettime(time.CLOCK_MONOTONIC)
        T.expect(reloading is not None, "nothing after SIGHUP")
        r.equal("SIGHUP: RELOADING=1 first", reloading[0].get("RELOADING"), "1")
        usec = int(reloading[0].get("MONOTONIC_USEC", "0"))
        r.check("... with MONOTONIC_USEC= of the reload",
                before * 1e6 <= usec <= after * 1e6, "%d not in [%d, %d]"
                % (usec, before * 1e6, after * 1e6))
        ready = m.next_not_watchdog()
        T.expect(ready is not None, "no READY=1 after RELOADING=1")
        r.equal("... then READY=1 once reloaded", ready[0].get("READY"), "1")
        r.check("... with a STATUS= line", "data version" in ready[0].get("STATUS", ""),
                repr(ready[0]))

        p.send_signal(signal.SIGTERM)
        stopping = m.next_not_watchdog()
        T.expect(stopping is not None, "nothing after SIGTERM")
        r.equal("SIGTERM: STOPPING=1", stopping[0].get("STOPPING"), "1")
        r.equal("... and a clean exit", p.wait(T.STOP_TIMEOUT), 0)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        m.close()


def test_failed_start(r):
    d = r.subdir("notify-fail")
    m = Manager(os.path.join(d, "notify.sock"))
    held = socket.socket()
    held.bind((T.HOST, 0))
    held.listen(1)
    conf = T.write_config(d, broker={"listen": "tcp:%s:%d" % (T.HOST, held.getsockname()[1])},
                          backend="sqlite")
    p = start(r, "broker", conf, m, watchdog=False)
    try:
        rc = p.wait(T.STOP_TIMEOUT)
        msgs = []
        while True:
            msg = m.recv(0.2)
            if msg is None:
                break
            msgs.append(msg[0])
        r.check("a failed start exits non-zero", rc != 0, "status %r" % rc)
        r.check("... sends no READY=1", not any("READY" in f for f in msgs), repr(msgs))
        r.check("... and says why in STATUS=",
                any(f.get("STATUS", "").startswith("failed: ") for f in msgs), repr(msgs))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        held.close()
        m.close()


if __name__ == "__main__":
    T.main("sd_notify", [("notify sequence", test_sequence),
                         ("failed start", test_failed_start)], backend_specific=False)
