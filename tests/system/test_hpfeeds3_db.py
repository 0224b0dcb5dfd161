#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: an existing hpfeeds3 SQLite auth database, used in place
(DESIGN.md sections 4 and 6).

The database is made the way hpfeeds3 makes it (authkeys, logs, stats; the
channel lists as JSON text arrays).  hpfriendsctl --auth lists its keys; the
broker started hpfeeds3-style (--bind, --auth, no config file; channels
mode) serves pub/sub with them; afterwards the authkeys rows are exactly
as they were and our own hpf_* tables sit beside them.
"""

import json
import os
import sqlite3
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402
import hp3common as h  # noqa: E402

C1, C2, ROWS = h.C1, h.C2, h.ROWS


def make_db(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE authkeys (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT, "
                "ident TEXT, secret TEXT, pubchans TEXT, subchans TEXT)")
    con.execute("CREATE TABLE logs (id integer primary key autoincrement, data TEXT)")
    con.execute("CREATE TABLE stats (id integer primary key autoincrement, ak TEXT, uid TEXT, "
                "data TEXT)")
    for owner, ident, secret, pub, sub in ROWS:
        con.execute("INSERT INTO authkeys (owner, ident, secret, pubchans, subchans) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (owner, ident, secret, json.dumps(pub), json.dumps(sub)))
    con.commit()
    con.close()


def read_db(path):
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT id, owner, ident, secret, pubchans, subchans FROM authkeys "
                           "ORDER BY id").fetchall()
        tables = [x[0] for x in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        cols = [x[1] for x in con.execute("PRAGMA table_info(authkeys)")]
    finally:
        con.close()
    return rows, tables, cols


def hpfeeds3_db(r):
    d = r.subdir("hp3")
    db = os.path.join(d, "hpfeeds.db")
    make_db(db)
    rows_before, _, cols_before = read_db(db)

    res = t.ctl_raw(["--auth", db], "authkey", "list")
    want = h.list_lines(ROWS)
    r.check("hpfriendsctl --auth DB authkey list: all 3 hpfeeds3 keys, with their channels",
            res.rc == 0 and sorted(res.lines()) == want, repr(res))
    res = t.ctl_raw(["--auth", db], "authkey", "show", "key-b")
    r.check("hpfriendsctl --auth DB authkey show key-b",
            res.rc == 0 and "owner: owner-b\n" in res.out and "secret: secret-b\n" in res.out
            and "publish: %s,%s\n" % (C1, C2) in res.out, repr(res))

    b = t.Broker(r, "hp3-broker", args=["--bind", "%s:0" % t.HOST, "--auth", db], cwd=d).start()
    h.pubsub_checks(r, b)
    rc = b.stop()
    r.check("broker exits 0 on SIGTERM", rc == 0, "status %r" % rc)

    rows_after, tables, cols_after = read_db(db)
    r.check("the authkeys table still has all 3 rows, unchanged", rows_after == rows_before,
            "before %r after %r" % (rows_before, rows_after))
    r.check("the authkeys table has the same columns", cols_after == cols_before,
            "before %r after %r" % (cols_before, cols_after))
    r.check("hpfeeds3's logs and stats tables are still there",
            "logs" in tables and "stats" in tables, repr(tables))
    ours = [x for x in tables if x.startswith("hpf_")]
    r.check("new hpf_* tables exist beside them", len(ours) > 0, repr(tables))
    print("# tables: %s" % ", ".join(tables))
    r.check("no other tables were added (only hpf_* and sqlite's own)",
            all(x in ("authkeys", "logs", "stats") or x.startswith("hpf_")
                or x.startswith("sqlite_") for x in tables), repr(tables))


def broker_first(r):
    """The broker, not hpfriendsctl, is the first to open a pristine file."""
    d = r.subdir("hp3-broker-first")
    db = os.path.join(d, "hpfeeds.db")
    make_db(db)
    rows_before, _, _ = read_db(db)
    b = t.Broker(r, "hp3-first", args=["--bind", "%s:0" % t.HOST, "--auth", db], cwd=d).start()
    h.two_owner_exchange(r, b, "broker first on a pristine hpfeeds3 file")
    rc = b.stop()
    r.check("broker first: exits 0 on SIGTERM", rc == 0, "status %r" % rc)
    rows_after, tables, _ = read_db(db)
    r.check("broker first: authkeys rows unchanged", rows_after == rows_before,
            "before %r after %r" % (rows_before, rows_after))
    r.check("broker first: hpf_* tables created",
            any(x.startswith("hpf_") for x in tables), repr(tables))
    res = t.ctl_raw(["--auth", db], "authkey", "list")
    r.check("broker first: hpfriendsctl --auth DB authkey list afterwards lists all 3",
            res.rc == 0 and sorted(x.split("\t")[0] for x in res.lines())
            == ["key-a", "key-b", "key-c"], repr(res))


if __name__ == "__main__":
    t.main("hpfeeds3-db", [
        ("hpfeeds3 database upgraded in place", hpfeeds3_db),
        ("hpfeeds3 database opened by the broker first", broker_first),
    ], backend_specific=False)
