#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: an existing MHN MongoDB auth database, used in place
(DESIGN.md sections 4 and 6).

The documents are written the way MHN writes them, straight into the
collection auth_key over the MongoDB wire (tests/system/mongowire.py, not
hpfriendsctl, not libmongoc): {identifier, secret, publish: [..],
subscribe: [..]}, no owner, ObjectId _id.  hpfriendsctl --auth mongodb://...
lists them (owner = identifier); the broker started hpfeeds3-style (--bind,
--auth mongodb://..., channels mode) serves pub/sub with them; documents
inserted and deleted behind its back (as MHN's web UI does) reach the
running broker; afterwards every MHN document is exactly as it was (_id and
field order included) and our collections are hpf_* beside auth_key.

Runs its own MongoDB-wire test server (tests/mongo/server.mjs); a missing
node or a server that does not start is a failure.
"""

import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402
import hp3common as h  # noqa: E402
import mongowire as mw  # noqa: E402

C1, C2, ROWS = h.C1, h.C2, h.ROWS
LIVE_DEADLINE = 2 + 3  # hpfeeds3-style start: default reload_interval (2 s) + 3
COLL = "auth_key"


def mhn_doc(row):
    _, ident, secret, pub, sub = row
    # MHN's field order: identifier, secret, publish, subscribe (no owner).
    return {"identifier": ident, "secret": secret, "publish": pub, "subscribe": sub}


def connect():
    return mw.Connection(t.HOST, t.mongo_server().port, timeout=t.IO_TIMEOUT)


def insert(db, rows):
    with connect() as c:
        return c.insert(db, COLL, [mhn_doc(x) for x in rows])


def read_back(db):
    with connect() as c:
        return c.find(db, COLL, sort={"_id": 1}), c.collections(db)


def check_db_after(r, label, db, want_docs):
    docs, colls = read_back(db)
    want = sorted(want_docs, key=lambda x: bytes(x["_id"]))
    r.check("%s: every MHN auth_key document is exactly as written (_id, fields, order)"
            % label, [list(x.items()) for x in docs] == [list(x.items()) for x in want],
            "want %r, got %r" % (want, docs))
    ours = [x for x in colls if x != COLL]
    print("# collections: %s" % ", ".join(colls))
    r.check("%s: our collections are hpf_* beside auth_key, nothing else" % label,
            COLL in colls and ours and all(x.startswith("hpf_") for x in ours), repr(colls))


# ------------------------------------------------------------------ sections

def mhn_db(r):
    db = t.mongo_db_name(r.tmp, "mhn")
    docs = insert(db, ROWS)
    uri = "mongodb://%s:%d/%s" % (t.HOST, t.mongo_server().port, db)
    d = r.subdir("mhn")

    res = t.ctl_raw(["--auth", uri], "authkey", "list")
    r.check("hpfriendsctl --auth mongodb://.../DB authkey list: all 3 MHN keys, owner = "
            "identifier, with their channels",
            res.rc == 0 and sorted(res.lines()) == h.list_lines(ROWS, owner_is_ident=True),
            repr(res))
    res = t.ctl_raw(["--auth", uri], "authkey", "show", "key-b")
    r.check("hpfriendsctl --auth mongodb://.../DB authkey show key-b",
            res.rc == 0 and "owner: key-b\n" in res.out and "secret: secret-b\n" in res.out
            and "publish: %s,%s\n" % (C1, C2) in res.out, repr(res))

    b = t.Broker(r, "mhn-broker", args=["--bind", "%s:0" % t.HOST, "--auth", uri],
                 cwd=d).start()
    a, bb = h.pubsub_checks(r, b)
    # libmongoc's constructor would put counters in /dev/shm/mongoc-PID, left
    # behind by a killed broker; hpfriendsd turns that off before loading it.
    shm = "/dev/shm/mongoc-%d" % b.proc.pid
    r.check("the broker keeps no libmongoc counters in shared memory (%s)" % shm,
            not os.path.exists(shm))

    # MHN's web UI adds a sensor: a new document, written behind our back.
    new = ("", "key-d", "secret-d", [C1], [C1])
    h.added_key_checks(r, b, "MHN inserts it", lambda: docs.extend(insert(db, [new])),
                       "key-d inserted into auth_key MHN-style", LIVE_DEADLINE)

    # ... and removes one: the live session goes.
    with connect() as c:
        n = c.delete(db, COLL, {"identifier": "key-a"})
    t.expect(n == 1, "delete of key-a's document removed %r documents" % n)
    docs = [x for x in docs if x["identifier"] != "key-a"]
    h.removed_key_checks(r, b, a, bb, "key-a's document deleted behind the broker's back",
                         LIVE_DEADLINE)

    rc = b.stop()
    r.check("broker exits 0 on SIGTERM", rc == 0, "status %r" % rc)
    check_db_after(r, "after the broker ran", db, docs)
    res = t.ctl_raw(["--auth", uri], "authkey", "list")
    r.check("hpfriendsctl --auth mongodb://.../DB authkey list afterwards: key-b, key-c, key-d",
            res.rc == 0 and sorted(res.lines()) == h.list_lines(
                [x for x in ROWS if x[1] != "key-a"] + [new], owner_is_ident=True), repr(res))


def broker_first(r):
    """The broker, not hpfriendsctl, is the first to open the MHN database."""
    db = t.mongo_db_name(r.tmp, "mhn-first")
    docs = insert(db, ROWS)
    uri = "mongodb://%s:%d/%s" % (t.HOST, t.mongo_server().port, db)
    b = t.Broker(r, "mhn-first", args=["--bind", "%s:0" % t.HOST, "--auth", uri]).start()
    h.two_owner_exchange(r, b, "broker first on a pristine MHN database")
    rc = b.stop()
    r.check("broker first: exits 0 on SIGTERM", rc == 0, "status %r" % rc)
    check_db_after(r, "broker first", db, docs)
    res = t.ctl_raw(["--auth", uri], "authkey", "list")
    r.check("broker first: hpfriendsctl --auth mongodb://.../DB authkey list afterwards "
            "lists all 3", res.rc == 0
            and sorted(res.lines()) == h.list_lines(ROWS, owner_is_ident=True), repr(res))


if __name__ == "__main__":
    t.main("mhn-mongodb", [
        ("MHN auth_key documents used in place", mhn_db),
        ("MHN database opened by the broker first", broker_first),
    ], backend_specific=False)
