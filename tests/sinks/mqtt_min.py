# SPDX-License-Identifier: BSD-3-Clause
"""A minimal MQTT 3.1.1 subscriber for the sink tests and the benchmark
(Debian's python3 has no MQTT package): CONNECT (clean or persistent
session), SUBSCRIBE at QoS 1, PUBLISH in at QoS 0 or 1 (acknowledged), and a
mosquitto started on 127.0.0.1 with a private config and persistence so a
persistent session survives a restart.
"""

import os
import pwd
import shutil
import socket
import struct
import subprocess
import threading
import time

HOST = "127.0.0.1"


def _remaining_length(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


class Subscriber:
    """Collects (topic, payload, qos) of every PUBLISH, in arrival order, on a thread."""

    def __init__(self, port, client_id, clean=True, username=None, password=None):
        self.port = port
        self.client_id = client_id
        self.clean = clean
        self.username = username
        self.password = password
        self.messages = []
        self.lock = threading.Lock()
        self.sock = None
        self.thread = None
        self.rbuf = bytearray()

    def connect(self, topics, timeout=5.0):
        s = socket.create_connection((HOST, self.port), timeout=timeout)
        flags = 0x02 if self.clean else 0x00
        payload = _str(self.client_id)
        if self.username is not None:
            flags |= 0x80
            payload += _str(self.username)
        if self.password is not None:
            flags |= 0x40
            payload += _str(self.password)
        var = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", 0)
        body = var + payload
        s.sendall(b"\x10" + _remaining_length(len(body)) + body)
        ack = self._read_packet(s)
        if not ack or ack[0] != 0x20 or ack[1][1] != 0:
            raise ConnectionError("mqtt CONNACK refused: %r" % (ack,))
        body = struct.pack("!H", 1) + b"".join(_str(t) + b"\x01" for t in topics)
        s.sendall(b"\x82" + _remaining_length(len(body)) + body)
        ack = self._read_packet(s)
        if not ack or ack[0] != 0x90:
            raise ConnectionError("mqtt SUBACK missing: %r" % (ack,))
        s.settimeout(None)
        self.sock = s
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _recv_exact(self, s, n):
        """n bytes from s through a buffer of our own (one recv per 64 KiB, not per packet)."""
        while len(self.rbuf) < n:
            chunk = s.recv(65536)
            if not chunk:
                return None
            self.rbuf += chunk
        data = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return data

    def _read_packet(self, s):
        head = self._recv_exact(s, 1)
        if head is None:
            return None
        mult, n = 1, 0
        while True:
            b = self._recv_exact(s, 1)
            if b is None:
                return None
            n += (b[0] & 0x7F) * mult
            mult *= 128
            if not b[0] & 0x80:
                break
        body = self._recv_exact(s, n) if n else b""
        return None if body is None else (head[0], body)

    def _run(self):
        s = self.sock
        while True:
            try:
                pkt = self._read_packet(s)
            except OSError:
                pkt = None
            if pkt is None:
                return
            kind, body = pkt
            if kind & 0xF0 != 0x30:
                continue
            qos = (kind >> 1) & 3
            tlen = struct.unpack("!H", body[:2])[0]
            topic = body[2:2 + tlen].decode("utf-8", "replace")
            at = 2 + tlen
            if qos:
                pid = body[at:at + 2]
                at += 2
                try:
                    s.sendall(b"\x40\x02" + pid)
                except OSError:
                    return
            with self.lock:
                self.messages.append((topic, body[at:], qos))

    def received(self, prefix=""):
        with self.lock:
            return [m for m in self.messages if m[0].startswith(prefix)]

    def close(self):
        if self.sock:
            try:
                self.sock.sendall(b"\xe0\x00")  # DISCONNECT
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        if self.thread:
            self.thread.join(5)
            self.thread = None


MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {tmp}/
persistence_file mosquitto.db
queue_qos0_messages true
max_queued_messages 0
log_dest file {tmp}/mosquitto.log
user {user}
"""


class Mosquitto:
    """Debian's mosquitto on 127.0.0.1:port with a private config in tmp."""

    def __init__(self, tmp, port, extra="", users=None):
        exe = os.environ.get("MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.exe = exe if os.access(exe, os.X_OK) else None
        self.tmp = tmp
        self.port = port
        self.conf = os.path.join(tmp, "mosquitto.conf")
        with open(self.conf, "w") as f:
            # As root mosquitto would switch to user mosquitto, who cannot write tmp.
            user = pwd.getpwuid(os.getuid()).pw_name
            conf = MOSQUITTO_CONF.format(port=port, tmp=tmp, user=user)
            if users:  # password_file: anonymous clients refused
                conf = conf.replace("allow_anonymous true", "allow_anonymous false")
                conf += "password_file %s/passwd\n" % tmp
            f.write(conf + extra)
        self.proc = None
        if users:
            passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for i, (name, secret) in enumerate(sorted(users.items())):
                subprocess.run([passwd, "-b"] + (["-c"] if i == 0 else []) +
                               [os.path.join(tmp, "passwd"), name, secret], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(os.path.join(tmp, "passwd"), 0o600)

    def start(self, timeout=15.0):
        if not self.exe:
            raise RuntimeError("mosquitto not found (apt-get install mosquitto)")
        out = open(os.path.join(self.tmp, "mosquitto.out"), "ab")
        self.proc = subprocess.Popen([self.exe, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with status %d: %s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto not listening after %.0f s" % timeout)

    def stop(self):
        """SIGTERM: mosquitto saves its persistence file and exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n=10):
        try:
            with open(os.path.join(self.tmp, "mosquitto.log"), errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return "(no log)"
