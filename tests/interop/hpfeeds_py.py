# SPDX-License-Identifier: BSD-3-Clause
"""A small, blocking hpfeeds client in plain Python 3 (standard library only).

Written from the protocol description (DESIGN.md section 2), independently of
the C code, so that the broker and the C client library can be checked
against a second implementation.

Frame layout: u32 big-endian total length (including the 5 header bytes),
u8 opcode, payload.  s8 = u8 length + bytes; "rest" = up to the frame end.

    op 0 ERROR        message: rest
    op 1 INFO         broker name: s8, nonce: rest
    op 2 AUTH         ident: s8, SHA-1(nonce + secret): 20 bytes
    op 3 PUBLISH      ident: s8, channel: s8, payload: rest
    op 4 SUBSCRIBE    ident: s8, channel: rest
    op 5 UNSUBSCRIBE  ident: s8, channel: rest
"""

import hashlib
import socket
import struct
import time

OP_ERROR = 0
OP_INFO = 1
OP_AUTH = 2
OP_PUBLISH = 3
OP_SUBSCRIBE = 4
OP_UNSUBSCRIBE = 5

HEADER = struct.Struct("!IB")
MAX_FRAME = 16 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not hpfeeds."""


class BrokerError(Exception):
    """The broker sent an ERROR frame; str(e) is its text."""


class Closed(Exception):
    """The broker closed the connection."""


def _to_bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8")


def _s8(value):
    value = _to_bytes(value)
    if len(value) > 255:
        raise ValueError("s8 string longer than 255 bytes")
    return bytes([len(value)]) + value


def encode(op, body):
    """One frame: header plus body."""
    return HEADER.pack(HEADER.size + len(body), op) + body


def auth_hash(nonce, secret):
    return hashlib.sha1(_to_bytes(nonce) + _to_bytes(secret)).digest()


def encode_auth(ident, nonce, secret):
    return encode(OP_AUTH, _s8(ident) + auth_hash(nonce, secret))


def encode_publish(ident, channel, payload):
    return encode(OP_PUBLISH, _s8(ident) + _s8(channel) + _to_bytes(payload))


def encode_subscribe(ident, channel, op=OP_SUBSCRIBE):
    return encode(op, _s8(ident) + _to_bytes(channel))


def _take_s8(body, pos):
    if pos >= len(body):
        raise ProtocolError("s8 string starts past the frame end")
    n = body[pos]
    end = pos + 1 + n
    if end > len(body):
        raise ProtocolError("s8 string runs past the frame end")
    return body[pos + 1:end], end


def decode_body(op, body):
    """The fields of one frame's body, as a tuple of bytes."""
    if op == OP_ERROR:
        return (body,)
    if op in (OP_INFO, OP_AUTH):
        name, pos = _take_s8(body, 0)
        return (name, body[pos:])
    if op == OP_PUBLISH:
        ident, pos = _take_s8(body, 0)
        channel, pos = _take_s8(body, pos)
        return (ident, channel, body[pos:])
    if op in (OP_SUBSCRIBE, OP_UNSUBSCRIBE):
        ident, pos = _take_s8(body, 0)
        return (ident, body[pos:])
    raise ProtocolError("unknown opcode %d" % op)


class Client:
    """One connection.  connect() reads INFO and sends AUTH; the broker says
    nothing on success, so a rejection shows up as an ERROR frame on the next
    read (BrokerError) followed by Closed."""

    def __init__(self, host, port, ident, secret, timeout=5.0):
        self.host = host
        self.port = port
        self.ident = _to_bytes(ident)
        self.secret = _to_bytes(secret)
        self.timeout = timeout
        self.sock = None
        self.buf = bytearray()
        self.broker_name = None
        self.nonce = None

    # -- connection --

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        op, fields = self.read_frame(self.timeout)
        if op == OP_ERROR:
            raise BrokerError(fields[0].decode("utf-8", "replace"))
        if op != OP_INFO:
            raise ProtocolError("first frame was op %d, not INFO" % op)
        self.broker_name, self.nonce = fields
        self.send(encode_auth(self.ident, self.nonce, self.secret))
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- frames out --

    def send(self, data):
        self.sock.sendall(data)

    def publish(self, channel, payload):
        self.send(encode_publish(self.ident, channel, payload))

    def subscribe(self, channel):
        self.send(encode_subscribe(self.ident, channel, OP_SUBSCRIBE))

    def unsubscribe(self, channel):
        self.send(encode_subscribe(self.ident, channel, OP_UNSUBSCRIBE))

    # -- frames in --

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no frame from the broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no frame from the broker in time") from None
        if not chunk:
            raise Closed("connection closed by the broker")
        self.buf += chunk

    def read_frame(self, timeout=None):
        """(op, fields) of the next frame; raises TimeoutError, Closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < HEADER.size:
            self._fill(deadline)
        length, op = HEADER.unpack_from(self.buf, 0)
        if length < HEADER.size or length > MAX_FRAME:
            raise ProtocolError("bad frame length %d" % length)
        while len(self.buf) < length:
            self._fill(deadline)
        body = bytes(self.buf[HEADER.size:length])
        del self.buf[:length]
        return op, decode_body(op, body)

    def next_message(self, timeout=None):
        """(ident, channel, payload) of the next PUBLISH, as bytes.
        An ERROR frame raises BrokerError."""
        while True:
            op, fields = self.read_frame(timeout)
            if op == OP_PUBLISH:
                return fields
            if op == OP_ERROR:
                raise BrokerError(fields[0].decode("utf-8", "replace"))
            raise ProtocolError("unexpected op %d from the broker" % op)

    def sync(self, channel, timeout=None):
        """Make sure the broker has processed everything sent so far, this
        connection's subscriptions included: publish a token on channel
        (which this client must be allowed to publish on and be subscribed
        to) and wait until it comes back.  Returns the messages that arrived
        before the token."""
        token = b"sync-" + hashlib.sha1(str(time.monotonic_ns()).encode()).hexdigest().encode()
        self.publish(channel, token)
        earlier = []
        while True:
            msg = self.next_message(timeout)
            if msg[0] == self.ident and msg[1] == _to_bytes(channel) and msg[2] == token:
                return earlier
            earlier.append(msg)
