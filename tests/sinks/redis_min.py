# SPDX-License-Identifier: BSD-3-Clause
"""A minimal Redis client (RESP, binary-safe) for the sink tests and the
benchmark (Debian's python3 has no redis package), and Debian's
redis-server started on 127.0.0.1 with no persistence in a temporary
directory.
"""

import os
import shutil
import socket
import subprocess
import time

HOST = "127.0.0.1"


class RedisError(Exception):
    pass


class Client:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError("unexpected reply %r" % line)

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def xrange(self, key):
        """[(id, {field: value})] of a whole stream."""
        return [(eid, dict(zip(kv[::2], kv[1::2])))
                for eid, kv in self.command("XRANGE", key, "-", "+")]

    def close(self):
        self.sock.close()


class Server:
    """redis-server --port PORT --bind 127.0.0.1 --save '' --dir TMP."""

    def __init__(self, tmp, port, extra=()):
        exe = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or \
            "/usr/bin/redis-server"
        self.exe = exe if os.access(exe, os.X_OK) else None
        self.tmp = tmp
        self.port = port
        self.extra = list(extra)
        self.proc = None

    def start(self, timeout=15.0):
        if not self.exe:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        out = open(os.path.join(self.tmp, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", HOST, "--save", "",
             "--appendonly", "no", "--dir", self.tmp, "--daemonize", "no"] + self.extra,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with status %d" % self.proc.returncode)
            try:
                c = Client(self.port, timeout=1)
                ok = c.command("PING") == b"PONG"
                c.close()
                if ok:
                    return self
            except (OSError, RedisError):
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server not answering after %.0f s" % timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
