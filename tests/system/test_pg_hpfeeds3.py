#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: hpfeeds3's PostgreSQL auth store, used in place by
storage_postgresql.

The table is made the way hpfeeds3's documentation makes it (a sequence,
`auth_keys(id, identifier varchar(36), secret varchar(36), publish json,
subscribe json)`), and filled with INSERTs as its operators do.  Then:
  - hpfriendsctl lists those keys (each key's owner is its identifier,
    as in hpfeeds3);
  - a broker in channels mode serves pub/sub with them;
  - hpfriends writes data of its own (users, a group, shares, a key of
    its own), and hpfeeds3's rows are byte-for-byte what they were, the
    table's columns, indexes and triggers too; ours are hpf_* tables;
  - hpfeeds3's own query (`SELECT * from auth_keys WHERE identifier = ...`)
    reads the key hpfriends added, in the columns hpfeeds3 unpacks;
  - a key an operator INSERTs while the broker runs is served within a
    few seconds (version polling).
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402
import hp3common as h  # noqa: E402

C1, ROWS = h.C1, h.ROWS
DB = "hpf_hpfeeds3"
RELOAD = 1

DDL = """CREATE SEQUENCE auth_keys_seq;
CREATE TABLE auth_keys (
  id int NOT NULL DEFAULT NEXTVAL ('auth_keys_seq'),
  identifier varchar(36) DEFAULT NULL,
  secret varchar(36) DEFAULT NULL,
  publish json DEFAULT NULL,
  subscribe json DEFAULT NULL,
  PRIMARY KEY (id)
)"""

ROWS_SQL = ("SELECT id, identifier, secret, publish::text, subscribe::text FROM auth_keys "
            "WHERE id <= %d ORDER BY id" % len(ROWS))
LAYOUT_SQL = ("SELECT column_name, data_type, character_maximum_length, column_default "
              "FROM information_schema.columns WHERE table_name = 'auth_keys' "
              "ORDER BY ordinal_position")
EXTRAS_SQL = ("SELECT (SELECT count(*) FROM pg_indexes WHERE tablename = 'auth_keys'), "
              "(SELECT count(*) FROM pg_trigger WHERE tgrelid = 'auth_keys'::regclass)")


def sql_text(v):
    return "'" + v.replace("'", "''") + "'"


def insert_sql(ident, secret, pub, sub):
    return ("INSERT INTO auth_keys (identifier, secret, publish, subscribe) VALUES "
            "(%s, %s, %s, %s)" % (sql_text(ident), sql_text(secret), sql_text(json.dumps(pub)),
                                  sql_text(json.dumps(sub))))


def hpfeeds3_pg(r):
    srv = t.pg_server()
    uri = srv.uri(DB)
    srv.psql(DB, DDL)
    for _, ident, secret, pub, sub in ROWS:
        srv.psql(DB, insert_sql(ident, secret, pub, sub))
    rows_before = srv.psql(DB, ROWS_SQL)
    layout_before = srv.psql(DB, LAYOUT_SQL)
    extras_before = srv.psql(DB, EXTRAS_SQL)

    d = r.subdir("hp3pg")
    conf = t.write_config(d, {"access": "channels", "reload_interval": RELOAD},
                          backend="postgresql", storage={"uri": uri})
    res = t.ctl(conf, "authkey", "list")
    r.check("hpfriendsctl authkey list: all %d hpfeeds3 keys, owned by their identifiers"
            % len(ROWS), res.rc == 0 and sorted(res.lines()) == h.list_lines(ROWS, True),
            repr(res))

    b = t.Broker(r, "hp3pg-broker", conf=conf).start()
    h.pubsub_checks(r, b)

    # hpfriends' own data beside hpfeeds3's
    for cmd in (["user", "add", "key-a"], ["user", "add", "key-b"], ["user", "add", "ann"],
                ["group", "add", "team", "--owner", "ann"],
                ["group", "member", "add", "team", "key-a"],
                ["share", "add", "--from", "key-b", "--to", "ann", "--channel", C1],
                ["authkey", "add", "--owner", "ann", "--ident", "ann-key", "--secret", "ann-s",
                 "--publish", C1, "--subscribe", C1],
                ["authkey", "set", "ann-key", "--secret", "ann-s2"]):
        res = t.ctl(conf, *cmd)
        r.check("hpfriendsctl %s" % " ".join(cmd), res.rc == 0, repr(res))
    r.check("the key hpfriends added authenticates",
            t.poll(lambda: h.auth_works(b, "ann-key", "ann-s2", C1), RELOAD + 5))

    r.equal("hpfeeds3's auth_keys rows are byte-for-byte what they were",
            srv.psql(DB, ROWS_SQL), rows_before)
    r.equal("auth_keys has the same columns, types and defaults",
            srv.psql(DB, LAYOUT_SQL), layout_before)
    r.equal("no index or trigger was added to auth_keys", srv.psql(DB, EXTRAS_SQL), extras_before)
    tables = srv.psql(DB, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                          "ORDER BY tablename").split()
    print("# tables: %s" % ", ".join(tables))
    r.check("our tables are hpf_* beside auth_keys, nothing else",
            "auth_keys" in tables and any(x.startswith("hpf_") for x in tables)
            and all(x == "auth_keys" or x.startswith("hpf_") for x in tables), repr(tables))
    row = srv.psql(DB, "SELECT * from auth_keys WHERE identifier = 'ann-key' LIMIT 1")
    cols = row.rstrip("\n").split("|")
    r.check("hpfeeds3's own query reads hpfriends' key: identifier, secret, publish, subscribe "
            "in columns 1-4", len(cols) == 5 and cols[1:] == [
                "ann-key", "ann-s2", json.dumps([C1]).replace(" ", ""),
                json.dumps([C1]).replace(" ", "")], repr(row))

    def add():
        srv.psql(DB, insert_sql("key-d", "secret-d", [C1], [C1]))
    h.added_key_checks(r, b, "an operator INSERTs it", add,
                       "key-d INSERTed into auth_keys by hand", RELOAD + 5)
    rc = b.stop()
    r.check("broker exits 0 on SIGTERM", rc == 0, "status %r" % rc)


if __name__ == "__main__":
    t.main("pg-hpfeeds3", [("hpfeeds3's PostgreSQL auth_keys used in place", hpfeeds3_pg)],
           backend_specific=False)
