#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: export/import between the storage backends
(DESIGN.md section 4: "import/export (JSON, to move between backends)").

One data set with everything the export carries (users, one an admin;
groups with several members; shares of both types to users and to groups,
on several channels; accepted offers; authkeys with several channels, with
empty lists, with an owner that is not its ident) is made with the same
hpfriendsctl commands in sqlite, file, mongodb and postgresql.  Then:
  - each backend's export holds exactly that data set, and the four
    exports are byte-identical;
  - for all 16 (from, to) pairs: the export of FROM imported into a fresh
    TO, exported again, is byte-identical to FROM's export;
  - readers (with their paths) agree on every backend, for every user and
    channel of the data set.

Runs its own MongoDB-wire and PostgreSQL test servers; a missing node or a
server that does not start is a failure.
"""

import itertools
import json
import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402

# --backend mysql (test_roundtrip-mysql) adds that backend to the round trip.
BACKENDS = t.BACKENDS + tuple(b for b in (t.BACKEND,) if b not in t.BACKENDS)
CH = ["sensor.alpha", "sensor.beta", "sensor.gamma"]
USERS = [("ann", False), ("boss", True), ("cid", False), ("dee", False), ("eli", False),
         ("fay", False)]
GROUPS = {"red": ("ann", ["cid", "dee"]), "blue": ("boss", ["ann", "eli", "fay"])}
# (from, to (@group), channel, type)
SHARES = [
    ("ann", "cid", CH[0], "shares"),
    ("ann", "@blue", CH[0], "shares_all"),
    ("cid", "@red", CH[1], "shares"),
    ("dee", "fay", CH[1], "shares_all"),
    ("eli", "@red", CH[2], "shares_all"),
    ("boss", "ann", CH[2], "shares"),
    ("fay", "ann", CH[0], "shares"),
]
# (user, from, channel): offers accepted
ACCEPTS = [("cid", "ann", CH[0]), ("eli", "ann", CH[0]), ("fay", "dee", CH[1]),
           ("dee", "cid", CH[1])]
# (owner, ident, secret, publish, subscribe)
KEYS = [
    ("ann", "ann-sensor", "s-ann-1", [CH[0], CH[1], CH[2]], [CH[0], CH[2]]),
    ("ann", "ann-reader", "s-ann-2", [], [CH[0], CH[1]]),
    ("boss", "boss-key", "s-boss", [CH[2]], []),
    ("cid", "cid-key", "s-cid", [CH[1], CH[0]], [CH[1]]),
    ("fay", "fay.key_1", "s-fay", [CH[1]], [CH[0], CH[1], CH[2]]),
]


def build(conf):
    for u, admin in USERS:
        t.ctl_ok(conf, "user", "add", u, *(["--admin"] if admin else []))
    for g, (owner, members) in GROUPS.items():
        t.ctl_ok(conf, "group", "add", g, "--owner", owner)
        for m in members:
            t.ctl_ok(conf, "group", "member", "add", g, m)
    for f, to, c, typ in SHARES:
        t.ctl_ok(conf, "share", "add", "--from", f, "--to", to, "--channel", c, "--type", typ)
    for u, f, c in ACCEPTS:
        t.ctl_ok(conf, "share", "accept", "--user", u, "--from", f, "--channel", c)
    for owner, ident, secret, pub, sub in KEYS:
        args = ["authkey", "add", "--owner", owner, "--ident", ident, "--secret", secret]
        if pub:
            args += ["--publish", ",".join(pub)]
        if sub:
            args += ["--subscribe", ",".join(sub)]
        t.ctl_ok(conf, *args)


def content(text):
    """The data set an export describes, order-free; None if it is not one."""
    try:
        doc = json.loads(text)
        users = sorted((u["name"], u["admin"]) for u in doc["users"])
        groups = sorted((g["name"], g["owner"], tuple(sorted(g["members"])))
                        for g in doc["groups"])
        shares = sorted((s["from"], "@" + s["to_group"] if "to_group" in s else s["to_user"],
                         s["channel"], s["type"]) for s in doc["shares"])
        accepts = sorted((a["user"], a["from"], a["channel"]) for a in doc["accepts"])
        keys = sorted((k["owner"], k["ident"], k["secret"], tuple(sorted(k["publish"])),
                       tuple(sorted(k["subscribe"]))) for k in doc["authkeys"])
    except (ValueError, KeyError, TypeError) as e:
        print("# not an export: %s: %s" % (type(e).__name__, e))
        return None
    return users, groups, shares, accepts, keys


def expected():
    return (sorted(USERS),
            sorted((g, o, tuple(sorted(m))) for g, (o, m) in GROUPS.items()),
            sorted(SHARES),
            sorted(ACCEPTS),
            sorted((o, i, s, tuple(sorted(p)), tuple(sorted(sub))) for o, i, s, p, sub in KEYS))


def readers_table(conf):
    out = {}
    for (u, _), c in itertools.product(USERS, CH):
        res = t.ctl(conf, "readers", "--user", u, "--channel", c)
        t.expect(res.rc == 0, "readers --user %s --channel %s: %r" % (u, c, res))
        out[(u, c)] = sorted(res.lines())
    return out


def first_difference(a, b):
    for n, (x, y) in enumerate(zip(a.splitlines(), b.splitlines()), 1):
        if x != y:
            return "line %d: %r vs %r" % (n, x, y)
    return "lengths %d vs %d" % (len(a), len(b))


# ------------------------------------------------------------------ sections

def roundtrip(r):
    exports, files, sources = {}, {}, {}
    for be in BACKENDS:
        d = r.subdir("src-" + be)
        conf = t.write_config(d, {"access": "graph"}, backend=be)
        build(conf)
        res = t.ctl(conf, "export")
        r.check("%s: export exits 0, nothing on stderr" % be, res.rc == 0 and res.err == "",
                repr(res))
        exports[be], sources[be] = res.out, conf
        files[be] = os.path.join(d, "export.json")
        with open(files[be], "w") as f:
            f.write(res.out)
        got = content(res.out)
        r.check("%s: the export holds exactly the data set (%d users, %d groups, %d shares, "
                "%d accepts, %d authkeys)" % (be, len(USERS), len(GROUPS), len(SHARES),
                                              len(ACCEPTS), len(KEYS)),
                got == expected(), "got %r\nwant %r" % (got, expected()))

    for be in BACKENDS[1:]:
        r.check("the same commands export byte-identically from %s and %s" % (BACKENDS[0], be),
                exports[be] == exports[BACKENDS[0]],
                first_difference(exports[BACKENDS[0]], exports[be]))

    for src, dst in itertools.product(BACKENDS, BACKENDS):
        d = r.subdir("%s-to-%s" % (src, dst))
        conf = t.write_config(d, {"access": "graph"}, backend=dst)
        res = t.ctl(conf, "import", files[src])
        ok = res.rc == 0 and res.err == "" and res.out == ""
        again = t.ctl(conf, "export") if ok else None
        r.check("%s -> %s: import into a fresh %s, export again: byte-identical to %s's "
                "export" % (src, dst, dst, src),
                ok and again.rc == 0 and again.out == exports[src],
                ("import: %r" % res) if not ok else
                ("export: %r" % again if again.rc != 0 else
                 first_difference(exports[src], again.out)))

    tables = {be: readers_table(sources[be]) for be in BACKENDS}
    for be in BACKENDS[1:]:
        diff = [k for k in tables[BACKENDS[0]] if tables[be][k] != tables[BACKENDS[0]][k]]
        r.check("readers (with paths) for %d (user, channel) pairs: %s agrees with %s"
                % (len(tables[be]), be, BACKENDS[0]), not diff,
                "; ".join("%s on %s: %r vs %r" % (k[0], k[1], tables[BACKENDS[0]][k],
                                                   tables[be][k]) for k in diff))


if __name__ == "__main__":
    t.main("roundtrip", [("export/import between sqlite, file, mongodb and postgresql", roundtrip)],
           backend_specific=False)
