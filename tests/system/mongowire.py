# SPDX-License-Identifier: BSD-3-Clause
"""Just enough of the MongoDB wire protocol, in plain Python 3 (standard
library only), for the system tests to write and read documents the way
another program (MHN's web application, a mongo shell) would: straight into
a collection, without going through hpfriendsctl or libmongoc.

Written from the public BSON 1.1 and OP_MSG descriptions.  Covers the types
the tests meet: double, string, document, array, binary, ObjectId, boolean,
UTC datetime, null, int32, int64.  Commands go out as OP_MSG (opcode 2013)
with one kind-0 section; "$db" names the database.

    with Connection("127.0.0.1", port) as c:
        c.insert("mhn", "auth_key", [{"identifier": "k", ...}])
        docs = c.find("mhn", "auth_key")
        c.delete("mhn", "auth_key", {"identifier": "k"})
"""

import os
import socket
import struct
import threading
import time

OP_MSG = 2013


class ObjectId(bytes):
    """12 raw bytes; new() makes one the way drivers do (seconds, random,
    counter)."""

    _lock = threading.Lock()
    _counter = int.from_bytes(os.urandom(3), "big")
    _random = os.urandom(5)

    @classmethod
    def new(cls):
        with cls._lock:
            cls._counter = (cls._counter + 1) & 0xFFFFFF
            n = cls._counter
        return cls(struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + cls._random
                   + n.to_bytes(3, "big"))

    def __repr__(self):
        return "ObjectId(%s)" % self.hex()


class Int64(int):
    """An integer to be written as BSON int64 even when it is small."""


class WireError(Exception):
    """The server answered ok: 0, or something that is not a reply."""


# ------------------------------------------------------------------ BSON

def _cstring(s):
    b = s.encode("utf-8")
    if b"\x00" in b:
        raise ValueError("NUL in a BSON key")
    return b + b"\x00"


def _element(key, v):
    k = _cstring(key)
    if isinstance(v, bool):
        return b"\x08" + k + (b"\x01" if v else b"\x00")
    if isinstance(v, ObjectId):
        return b"\x07" + k + bytes(v)
    if isinstance(v, Int64):
        return b"\x12" + k + struct.pack("<q", v)
    if isinstance(v, int):
        if -2**31 <= v < 2**31:
            return b"\x10" + k + struct.pack("<i", v)
        return b"\x12" + k + struct.pack("<q", v)
    if isinstance(v, float):
        return b"\x01" + k + struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return b"\x02" + k + struct.pack("<i", len(b) + 1) + b + b"\x00"
    if isinstance(v, dict):
        return b"\x03" + k + encode(v)
    if isinstance(v, (list, tuple)):
        return b"\x04" + k + encode({str(i): x for i, x in enumerate(v)})
    if isinstance(v, bytes):
        return b"\x05" + k + struct.pack("<i", len(v)) + b"\x00" + v
    if v is None:
        return b"\x0a" + k
    raise TypeError("no BSON encoding for %r" % type(v))


def encode(doc):
    """dict (insertion order kept) -> BSON bytes."""
    body = b"".join(_element(k, v) for k, v in doc.items())
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _read_cstring(data, pos):
    end = data.index(b"\x00", pos)
    return data[pos:end].decode("utf-8"), end + 1


def decode(data, pos=0):
    """BSON bytes at pos -> (dict, position after it)."""
    (size,) = struct.unpack_from("<i", data, pos)
    end = pos + size
    if size < 5 or end > len(data) or data[end - 1] != 0:
        raise WireError("bad BSON document length %d" % size)
    pos += 4
    out = {}
    while pos < end - 1:
        t = data[pos]
        key, pos = _read_cstring(data, pos + 1)
        if t == 0x01:
            (v,) = struct.unpack_from("<d", data, pos)
            pos += 8
        elif t == 0x02:
            (n,) = struct.unpack_from("<i", data, pos)
            v = data[pos + 4:pos + 4 + n - 1].decode("utf-8")
            pos += 4 + n
        elif t in (0x03, 0x04):
            v, pos = decode(data, pos)
            if t == 0x04:
                v = [v[str(i)] for i in range(len(v))]
        elif t == 0x05:
            (n,) = struct.unpack_from("<i", data, pos)
            v = bytes(data[pos + 5:pos + 5 + n])
            pos += 5 + n
        elif t == 0x07:
            v = ObjectId(data[pos:pos + 12])
            pos += 12
        elif t == 0x08:
            v = data[pos] != 0
            pos += 1
        elif t == 0x09:
            (v,) = struct.unpack_from("<q", data, pos)
            pos += 8
        elif t == 0x0A:
            v = None
        elif t == 0x10:
            (v,) = struct.unpack_from("<i", data, pos)
            pos += 4
        elif t in (0x11, 0x12):
            (v,) = struct.unpack_from("<q", data, pos)
            v = Int64(v)
            pos += 8
        else:
            raise WireError("BSON type 0x%02x (key %r) not handled" % (t, key))
        out[key] = v
    return out, end


# ---------------------------------------------------------------- OP_MSG

class Connection:
    """One blocking connection; every call has the timeout given here."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.request_id = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise WireError("server closed the connection")
            buf += chunk
        return bytes(buf)

    def command(self, db, cmd):
        """Run cmd (a dict; its first key is the command name) in db; the
        reply document.  ok != 1 raises WireError."""
        body = dict(cmd)
        body["$db"] = db
        self.request_id += 1
        payload = struct.pack("<I", 0) + b"\x00" + encode(body)
        self.sock.sendall(struct.pack("<iiii", 16 + len(payload), self.request_id, 0, OP_MSG)
                          + payload)
        length, _, response_to, opcode = struct.unpack("<iiii", self._recv_exact(16))
        data = self._recv_exact(length - 16)
        if opcode != OP_MSG or response_to != self.request_id:
            raise WireError("reply opcode %d to request %d (want %d to %d)"
                            % (opcode, response_to, OP_MSG, self.request_id))
        if data[4] != 0:
            raise WireError("reply section kind %d" % data[4])
        reply, _ = decode(data, 5)
        if reply.get("ok") != 1:
            raise WireError("%s: %r" % (next(iter(cmd)), reply))
        return reply

    def insert(self, db, coll, docs):
        """Insert docs (an _id ObjectId is added to those without one, as
        drivers do); returns them as inserted."""
        docs = [d if "_id" in d else dict(_id=ObjectId.new(), **d) for d in docs]
        reply = self.command(db, {"insert": coll, "documents": docs, "ordered": True})
        if reply.get("n") != len(docs) or reply.get("writeErrors"):
            raise WireError("insert into %s.%s: %r" % (db, coll, reply))
        return docs

    def find(self, db, coll, filt=None, sort=None):
        """Every matching document (one batch, then getMore until done)."""
        cmd = {"find": coll, "filter": filt or {}, "batchSize": 1000}
        if sort:
            cmd["sort"] = sort
        cursor = self.command(db, cmd)["cursor"]
        docs = list(cursor["firstBatch"])
        while cursor.get("id"):
            cursor = self.command(db, {"getMore": Int64(cursor["id"]), "collection": coll,
                                       "batchSize": 1000})["cursor"]
            docs += cursor["nextBatch"]
        return docs

    def delete(self, db, coll, filt):
        """Delete every document matching filt; returns how many went."""
        reply = self.command(db, {"delete": coll, "deletes": [{"q": filt, "limit": 0}],
                                  "ordered": True})
        if reply.get("writeErrors"):
            raise WireError("delete from %s.%s: %r" % (db, coll, reply))
        return reply.get("n")

    def collections(self, db):
        reply = self.command(db, {"listCollections": 1, "nameOnly": True})
        return sorted(c["name"] for c in reply["cursor"]["firstBatch"])
