#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: an existing hpfeeds3 `auth_keys` table in MariaDB, used in
place by storage_mysql (issue 18: hpfeeds3's `--auth database+mysql://`
reads `SELECT * FROM auth_keys` by position: id, identifier, secret, and the
channel lists as JSON text).

The table is made as an operator following hpfeeds3 makes it (the server's
default character set and collation, an id first) and filled with three
keys.  Then:
  - hpfriendsctl authkey list shows them (each key owned by its ident:
    the table has no owner);
  - a broker in channels mode on that database serves pub/sub with them,
    and an ident differing only in case is refused;
  - hpfriendsctl writes users, a share and a key of its own: the key lands
    in auth_keys where hpfeeds3 reads it (positions 1 to 4);
  - afterwards the three original rows and the table's definition are
    exactly as they were, and our own tables (hpf_*) sit beside it.
The same data through hpfeeds-broker's command line, unchanged:
`--bind H:P --auth database+mysql://...` (and database+mysql+pymysql://)
for hpfriendsd, `--auth` for hpfriendsctl.
"""

import json
import os
import re
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402
import hp3common as h  # noqa: E402

C1, ROWS = h.C1, h.ROWS
# latin1, as many hpfeeds3/MHN databases were made (the server's old default).
TABLE = ("CREATE TABLE auth_keys (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY, "
         "identifier VARCHAR(255), secret VARCHAR(255), publish TEXT, subscribe TEXT) "
         "DEFAULT CHARSET=latin1")


def quote(v):
    return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"


def definition(srv, db):
    text = srv.sql(db, "SHOW CREATE TABLE auth_keys")
    return re.sub(r" AUTO_INCREMENT=\d+", "", text)


def hpfeeds3_mysql(r):
    srv = t.mysql_server()
    d = r.subdir("hp3")
    uri = t.mysql_uri(d)
    db = uri.rsplit("/", 1)[1]
    srv.sql(db, TABLE)
    for _, ident, secret, pub, sub in ROWS:
        srv.sql(db, "INSERT INTO auth_keys (identifier, secret, publish, subscribe) VALUES "
                "(%s, %s, %s, %s)" % (quote(ident), quote(secret), quote(json.dumps(pub)),
                                      quote(json.dumps(sub))))
    rows_before = srv.sql(db, "SELECT * FROM auth_keys ORDER BY id")
    def_before = definition(srv, db)

    conf = t.write_config(d, {"access": "channels"}, backend="mysql")
    res = t.ctl(conf, "authkey", "list")
    r.check("hpfriendsctl authkey list: all 3 hpfeeds3 keys, with their channels, owned by "
            "their idents", res.rc == 0 and sorted(res.lines()) == h.list_lines(ROWS, True),
            repr(res))

    b = t.Broker(r, "hp3-broker", conf=conf).start()
    h.pubsub_checks(r, b)
    errors, closed = h.auth_refused(b, "KEY-A", "secret-a")
    r.check("the ident compares exactly: KEY-A is not key-a (the column's collation ignores "
            "case)", errors == ["Authentication failed for KEY-A"] and closed,
            "errors=%r closed=%s" % (errors, closed))
    # An ident latin1 cannot hold is a failed AUTH like any other (it counts
    # towards the address's back-off), not a storage outage logged each time.
    for ident in ("s\u017fensor", "x\u200b1"):
        errors, closed = h.auth_refused(b, ident, "secret-a")
        r.check("an ident the latin1 column cannot hold: Authentication failed (%r)" % ident,
                len(errors) == 1 and errors[0].startswith("Authentication failed for ")
                and closed,
                "errors=%r closed=%s" % (errors, closed))
    with open(b.log_path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    r.check("... and no storage failure or recovery is logged for it",
            "authkey lookup failed" not in log and "working again" not in log, log[-2000:])
    rc = b.stop()
    r.check("broker exits 0 on SIGTERM", rc == 0, "status %r" % rc)

    for args in (("user", "add", "alice"), ("user", "add", "bob"),
                 ("authkey", "add", "--owner", "alice", "--ident", "alice-key", "--secret",
                  "alice-secret", "--publish", C1, "--subscribe", C1),
                 ("share", "add", "--from", "alice", "--to", "bob", "--channel", C1)):
        t.ctl_ok(conf, *args)
    ours = srv.sql(db, "SELECT * FROM auth_keys WHERE identifier = 'alice-key'").split("\t")
    r.check("our key in auth_keys, where hpfeeds3 reads it: positions 1-4 are identifier, "
            "secret, publish and subscribe as JSON lists",
            len(ours) == 5 and ours[1:4] == ["alice-key", "alice-secret", json.dumps([C1])]
            and json.loads(ours[4]) == [C1], repr(ours))
    res = t.ctl(conf, "authkey", "show", "alice-key")
    r.check("hpfriendsctl authkey show alice-key: owner alice",
            res.rc == 0 and "owner: alice\n" in res.out, repr(res))
    t.ctl_ok(conf, "authkey", "del", "alice-key")

    rows_after = srv.sql(db, "SELECT * FROM auth_keys ORDER BY id")
    r.equal("the 3 hpfeeds3 rows are unchanged", rows_after, rows_before)
    r.equal("the auth_keys definition is unchanged (columns, indexes, character set)",
            definition(srv, db), def_before)
    tables = srv.sql(db, "SHOW TABLES").split()
    print("# tables: %s" % ", ".join(tables))
    r.check("hpf_* tables beside auth_keys, nothing else added",
            "auth_keys" in tables and "hpf_users" in tables
            and all(x == "auth_keys" or x.startswith("hpf_") for x in tables), repr(tables))


def hpfeeds3_command_line(r):
    """hpfeeds-broker's own command line for this store, unchanged:
    --auth database+mysql://USER:PASSWORD@HOST:PORT/DB (and the
    SQLAlchemy driver form database+mysql+pymysql://), no config file."""
    srv = t.mysql_server()
    d = r.subdir("hp3-cmdline")
    uri = t.mysql_uri(d)
    db = uri.rsplit("/", 1)[1]
    srv.sql(db, TABLE)
    for _, ident, secret, pub, sub in ROWS:
        srv.sql(db, "INSERT INTO auth_keys (identifier, secret, publish, subscribe) VALUES "
                "(%s, %s, %s, %s)" % (quote(ident), quote(secret), quote(json.dumps(pub)),
                                      quote(json.dumps(sub))))
    rows_before = srv.sql(db, "SELECT * FROM auth_keys ORDER BY id")
    auth = "database+" + uri
    res = t.ctl_raw(["--auth", auth], "authkey", "list")
    r.check("hpfriendsctl --auth database+mysql://...: all 3 keys",
            res.rc == 0 and sorted(res.lines()) == h.list_lines(ROWS, True), repr(res))
    r.check("the password is not printed", t.MYSQL_PASSWORD not in res.out + res.err
            and t.MYSQL_PASSWORD_URI not in res.out + res.err, repr(res))
    for form in (auth, auth.replace("database+mysql://", "database+mysql+pymysql://")):
        b = t.Broker(r, "hp3-cmdline", args=["--bind", "%s:0" % t.HOST, "--auth", form],
                     cwd=d).start()
        h.two_owner_exchange(r, b, "hpfriendsd --bind H:P --auth %s"
                             % form.split("://")[0] + "://...")
        rc = b.stop()
        r.check("%s://...: broker exits 0 on SIGTERM" % form.split("://")[0], rc == 0,
                "status %r" % rc)
    r.equal("after both runs the 3 hpfeeds3 rows are unchanged",
            srv.sql(db, "SELECT * FROM auth_keys ORDER BY id"), rows_before)
    r.check("no file was created in the working directory",
            sorted(f for f in os.listdir(d) if not f.startswith("hp3-cmdline")) == [],
            repr(os.listdir(d)))


if __name__ == "__main__":
    t.main("hpfeeds3-mysql", [("hpfeeds3 auth_keys table in MariaDB, used in place",
                               hpfeeds3_mysql),
                              ("hpfeeds3's command line: --auth database+mysql://...",
                               hpfeeds3_command_line)], backend_specific=False)
