#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""TLS end to end: hpfeeds-cli (the C client library) against the real
broker's TLS listener.

A throw-away PKI is made with the openssl command at start: two unrelated
CAs, and server certificates for 127.0.0.1 (IP SAN) from each, plus one for
another address.  The broker runs with hpfeeds3's flags (a plain --bind
tcp:..., a TLS --bind with --tlscert/--tlskey), and the checks are:

  - pub and sub over TLS with --cafile: the messages arrive;
  - a CA that did not issue the certificate, the system trust store (which
    does not know the test CA), a missing CA file, TLS to the plain port,
    a certificate for another address: each fails with a clear message,
    exit 1, and delivers nothing;
  - SIGHUP with a new certificate: the live TLS session is kept (it still
    receives), new sessions get the new certificate.

Prints one line per check and "N passed, M failed"; exits 1 on any failure.
Environment: HPF_BUILDDIR, HPFRIENDSD, HPFEEDS_CLI as for test_interop.py.
"""

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_interop as ti  # noqa: E402

HOST = "127.0.0.1"
CHAN = ti.CHAN
STEP_TIMEOUT = 20.0


CheckFailed = ti.CheckFailed  # ti.wait_subscribed raises it too


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    expect(r.returncode == 0, "openssl %s failed: %s" % (args[0], r.stdout.decode(errors="replace")))


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=hpfriends test " + name, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_server_cert(d, name, ca, san):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=critical,CA:FALSE\n" % san)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=hpfriends test broker",
            cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext",
            cwd=d)


class TlsBroker:
    def __init__(self, tmp):
        self.tmp = tmp
        self.proc = None
        self.tcp_port = None
        self.tls_port = None
        self.exporter_port = None
        self.cert = os.path.join(tmp, "broker-cert.pem")
        self.key = os.path.join(tmp, "broker-key.pem")
        self.log_path = os.path.join(tmp, "hpfriendsd.log")
        self.log = None

    def install_cert(self, name):
        # Copied, then renamed over: the broker never reads a half-written file.
        for src, dst in ((name + ".pem", self.cert), (name + ".key", self.key)):
            shutil.copyfile(os.path.join(self.tmp, src), dst + ".new")
            os.replace(dst + ".new", dst)

    def start(self):
        db = os.path.join(self.tmp, "auth.db")
        ready = os.path.join(self.tmp, "ready")
        ti.make_auth_db(db)
        expect(os.access(ti.DAEMON, os.X_OK), "broker not found: " + ti.DAEMON)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [ti.DAEMON, "-f", "--bind", "tcp:%s:0" % HOST, "--bind", "%s:0" % HOST,
             "--tlscert", self.cert, "--tlskey", self.key, "--auth", db, "--ready-file", ready,
             "--exporter", "%s:0" % HOST],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.tmp)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            expect(self.proc.poll() is None,
                   "broker exited with status %s before it was ready" % self.proc.returncode)
            try:
                with open(ready) as f:
                    for line in f:
                        kind, _, port = line.split()
                        if kind == "tcp":
                            self.tcp_port = int(port)
                        elif kind == "tls":
                            self.tls_port = int(port)
                        elif kind == "http":
                            self.exporter_port = int(port)
            except FileNotFoundError:
                pass
            if self.tcp_port and self.tls_port and self.exporter_port:
                return
            time.sleep(0.02)
        raise CheckFailed("the broker did not report a tcp, a tls and an exporter listener")

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
        return rc


def cli(broker, mode, ident, *extra, port=None, host=HOST):
    args = [ti.CLI, mode, "--host", host, "--port", str(port or broker.tls_port),
            "--ident", ident, "--secret", ti.KEYS[ident][0], "--channel", CHAN]
    return args + list(extra)


def run(args, stdin=b""):
    return subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=STEP_TIMEOUT)


class Sub:
    """hpfeeds-cli sub in the background; lines() collects its stdout."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args + ["--verbose"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = queue.Queue()
        self.err = queue.Queue()
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line)
        q.put(None)

    def ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.err.get(timeout=0.1)
            except queue.Empty:
                continue
            expect(line is not None, "hpfeeds-cli sub exited early: "
                   + b"".join(seen).decode(errors="replace"))
            seen.append(line)
            if b"subscribed to" in line:
                return
        raise CheckFailed("hpfeeds-cli sub did not report its subscription")

    def expect_line(self, want, timeout=10.0):
        try:
            line = self.out.get(timeout=timeout)
        except queue.Empty:
            raise CheckFailed("subscriber got nothing within %.0f s (wanted %r)" % (timeout, want))
        expect(line == want, "subscriber got %r, wanted %r" % (line, want))

    def expect_nothing(self, seconds):
        try:
            line = self.out.get(timeout=seconds)
        except queue.Empty:
            return
        raise CheckFailed("subscriber got %r, wanted nothing" % line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def expect_fail(r, *needles):
    err = r.stderr.decode(errors="replace")
    expect(r.returncode == 1, "exit %d, wanted 1 (stderr: %s)" % (r.returncode, err.strip()))
    for n in needles:
        expect(n in err, "stderr lacks %r: %s" % (n, err.strip()))
    return err.strip()


def main():
    tmp = tempfile.mkdtemp(prefix="hpf-tls-")
    passed = failed = 0
    broker = TlsBroker(tmp)
    sub = None
    ca1 = os.path.join(tmp, "ca1.pem")
    ca2 = os.path.join(tmp, "ca2.pem")

    def report(ok, name, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print("ok - " + name)
        else:
            failed += 1
            print("not ok - %s: %s" % (name, detail))
        sys.stdout.flush()

    def check(name, fn):
        try:
            detail = fn()
            report(True, name + (": " + detail if detail else ""))
        except CheckFailed as e:
            report(False, name, e)
        except Exception as e:  # noqa: BLE001
            report(False, name, "%s: %s" % (type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)

    def pki():
        make_ca(tmp, "ca1")
        make_ca(tmp, "ca2")
        make_server_cert(tmp, "srv1", "ca1", "IP:127.0.0.1")
        make_server_cert(tmp, "srv1-other-ip", "ca1", "IP:127.0.0.2,DNS:other.invalid")
        make_server_cert(tmp, "srv2", "ca2", "IP:127.0.0.1")
        broker.install_cert("srv1")
        broker.start()

    def sub_and_pub():
        nonlocal sub
        sub = Sub(cli(broker, "sub", "dave", "--tls", "--cafile", ca1))
        sub.ready()
        ti.wait_subscribed(broker.exporter_port, "dave", [CHAN])
        r = run(cli(broker, "pub", "carol", "--tls", "--cafile", ca1, "over tls 1", "over tls 2"))
        expect(r.returncode == 0, "pub exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
        sub.expect_line(b"%s carol over tls 1\n" % CHAN.encode())
        sub.expect_line(b"%s carol over tls 2\n" % CHAN.encode())
        # stdin lines, and --cafile alone implies --tls
        r = run(cli(broker, "pub", "carol", "--cafile", ca1), stdin=b"line a\nline b\n")
        expect(r.returncode == 0, "pub (stdin) exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
        sub.expect_line(b"%s carol line a\n" % CHAN.encode())
        sub.expect_line(b"%s carol line b\n" % CHAN.encode())

    def plain_to_tls_sub():
        r = run(cli(broker, "pub", "carol", "plain port", port=broker.tcp_port))
        expect(r.returncode == 0, "plain pub exit %d" % r.returncode)
        sub.expect_line(b"%s carol plain port\n" % CHAN.encode())

    def wrong_ca():
        r = run(cli(broker, "pub", "carol", "--tls", "--cafile", ca2, "must not arrive"))
        return expect_fail(r, "certificate verify failed", "127.0.0.1:%d" % broker.tls_port)

    def system_store():
        r = run(cli(broker, "pub", "carol", "--tls", "must not arrive"))
        return expect_fail(r, "certificate verify failed")

    def missing_cafile():
        r = run(cli(broker, "pub", "carol", "--tls", "--cafile", os.path.join(tmp, "nope.pem"), "x"))
        return expect_fail(r, "cannot load CA certificates from")

    def not_a_ca_file():
        r = run(cli(broker, "pub", "carol", "--cafile", os.path.join(tmp, "srv1.ext"), "x"))
        return expect_fail(r, "cannot load CA certificates from")

    def tls_to_plain_port():
        r = run(cli(broker, "pub", "carol", "--tls", "--cafile", ca1, "must not arrive",
                    port=broker.tcp_port))
        return expect_fail(r, "TLS handshake with")

    def plain_to_tls_port():
        r = run(cli(broker, "pub", "carol", "must not arrive") + ["--verbose"])
        expect(r.returncode != 0, "a plain client on the TLS port succeeded")

    def nothing_leaked():
        sub.expect_nothing(0.5)

    def reload_other_ip():
        broker.install_cert("srv1-other-ip")
        broker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "TLS certificate and key reloaded" not in broker.log_text():
            expect(time.monotonic() < deadline, "no reload message in the broker log")
            time.sleep(0.05)
        r = run(cli(broker, "pub", "carol", "--cafile", ca1, "must not arrive"))
        return expect_fail(r, "certificate verify failed", "IP address mismatch")

    def live_session_kept():
        # the TLS subscriber from before the reload still receives
        r = run(cli(broker, "pub", "carol", "after reload", port=broker.tcp_port))
        expect(r.returncode == 0, "plain pub exit %d" % r.returncode)
        sub.expect_line(b"%s carol after reload\n" % CHAN.encode())
        expect(sub.proc.poll() is None, "the TLS subscriber exited")

    def reload_new_ca():
        broker.install_cert("srv2")
        before = broker.log_text().count("TLS certificate and key reloaded")
        broker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while broker.log_text().count("TLS certificate and key reloaded") <= before:
            expect(time.monotonic() < deadline, "no second reload message in the broker log")
            time.sleep(0.05)
        r = run(cli(broker, "pub", "carol", "--cafile", ca1, "must not arrive"))
        expect_fail(r, "certificate verify failed")
        r = run(cli(broker, "pub", "carol", "--cafile", ca2, "new ca"))
        expect(r.returncode == 0, "pub with the new CA: exit %d: %s"
               % (r.returncode, r.stderr.decode(errors="replace")))
        sub.expect_line(b"%s carol new ca\n" % CHAN.encode())
        sub.expect_nothing(0.3)

    def clean_stop():
        rc = sub.stop()
        expect(rc == 0, "hpfeeds-cli sub exit %s on SIGTERM" % rc)
        rc = broker.stop()
        expect(rc == 0, "broker exit %s on SIGTERM" % rc)

    try:
        check("test PKI made, broker up with --tlscert/--tlskey", pki)
        if broker.tls_port:
            for name, fn in [
                ("pub and sub over TLS, verified with --cafile", sub_and_pub),
                ("plain TCP publisher reaches the TLS subscriber", plain_to_tls_sub),
                ("a CA that did not issue the certificate is refused", wrong_ca),
                ("without --cafile the system store is used (test CA unknown there)", system_store),
                ("a missing --cafile is an error", missing_cafile),
                ("a --cafile without certificates is an error", not_a_ca_file),
                ("--tls to the plain TCP port fails the handshake", tls_to_plain_port),
                ("a plain client on the TLS port gets nowhere", plain_to_tls_port),
                ("refused publishers delivered nothing", nothing_leaked),
                ("SIGHUP: certificate for another address is refused (IP check)", reload_other_ip),
                ("SIGHUP: the live TLS session is kept", live_session_kept),
                ("SIGHUP: certificate from a new CA, old CA refused", reload_new_ca),
                ("subscriber and broker stop cleanly", clean_stop),
            ]:
                if sub is None and fn not in (sub_and_pub, wrong_ca, system_store, missing_cafile,
                                              not_a_ca_file, tls_to_plain_port, plain_to_tls_port):
                    report(False, name, "no subscriber")
                    continue
                check(name, fn)
    finally:
        if sub is not None:
            sub.stop()
        broker.stop()
        if failed:
            try:
                for line in broker.log_text().splitlines()[-40:]:
                    print("# broker: " + line)
            except OSError:
                pass
        if not os.environ.get("HPF_IT_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
