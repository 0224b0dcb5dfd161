#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: an existing hpfeeds3 JSON auth file, used in place
(DESIGN.md sections 4 and 6).

users.json is written the way hpfeeds3 reads it:
  { "<ident>": {"owner": .., "secret": .., "pubchans": [..], "subchans": [..]} }
hpfriendsctl --auth users.json lists its keys; the broker started
hpfeeds3-style (--bind, --auth users.json, no config file; channels mode)
serves pub/sub with them; keys added and removed by editing the file by
hand reach the running broker; afterwards every hpfeeds3 entry is exactly as
it was, and whatever we added is one more entry that hpfeeds3 itself would
still accept (an object with owner, secret and two lists) and that no
client can log in as (its name is longer than an ident can be).
"""

import fcntl
import json
import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402
import hp3common as h  # noqa: E402

C1, C2, ROWS = h.C1, h.C2, h.ROWS
LIVE_DEADLINE = 2 + 3  # hpfeeds3-style start: default reload_interval (2 s) + 3


def entries(rows):
    return {i: {"owner": o, "secret": s, "pubchans": p, "subchans": sub}
            for o, i, s, p, sub in rows}


def make_file(path, rows=ROWS):
    with open(path, "w") as f:
        json.dump(entries(rows), f, indent=4)
        f.write("\n")


def read_file(path):
    with open(path) as f:
        return json.load(f)


def edit_by_hand(path, change):
    """Rewrite the file as a careful script would: under the writers'
    flock, to a temporary file renamed over it.  change(doc) edits the
    parsed document in place."""
    with open(path, "r+") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        try:
            doc = read_file(path)
            change(doc)
            tmp = path + ".edit"
            with open(tmp, "w") as f:
                json.dump(doc, f, indent=4)
                f.write("\n")
            os.rename(tmp, path)
        finally:
            fcntl.flock(lockf, fcntl.LOCK_UN)


def hpfeeds3_valid(doc):
    """hpfeeds3's json authenticator takes the file only if every value is
    an object with owner, secret, and pubchans/subchans lists."""
    bad = [k for k, v in doc.items()
           if not (isinstance(v, dict) and "owner" in v and "secret" in v
                   and isinstance(v.get("pubchans"), list)
                   and isinstance(v.get("subchans"), list))]
    return bad


def check_file_after(r, label, path, want_entries):
    doc = read_file(path)
    ours = {k: v for k, v in doc.items() if k not in want_entries}
    r.check("%s: every hpfeeds3 entry is exactly as it was" % label,
            all(doc.get(k) == v for k, v in want_entries.items()),
            "want %r, file %r" % (want_entries, {k: doc.get(k) for k in want_entries}))
    r.check("%s: at most one entry was added, and no client can log in as it "
            "(name longer than 255 bytes)" % label,
            len(ours) <= 1 and all(len(k.encode()) > 255 for k in ours),
            "added entries %r" % [k[:60] for k in ours])
    bad = hpfeeds3_valid(doc)
    r.check("%s: hpfeeds3 would still load the file (every entry has owner, secret, "
            "pubchans and subchans lists)" % label, not bad,
            "entries hpfeeds3 refuses: %r" % [k[:60] for k in bad])


# ------------------------------------------------------------------ sections

def users_json(r):
    d = r.subdir("json")
    path = os.path.join(d, "users.json")
    make_file(path)

    res = t.ctl_raw(["--auth", path], "authkey", "list")
    r.check("hpfriendsctl --auth users.json authkey list: all 3 hpfeeds3 keys, with their "
            "channels", res.rc == 0 and sorted(res.lines()) == h.list_lines(ROWS), repr(res))
    res = t.ctl_raw(["--auth", path], "authkey", "show", "key-b")
    r.check("hpfriendsctl --auth users.json authkey show key-b",
            res.rc == 0 and "owner: owner-b\n" in res.out and "secret: secret-b\n" in res.out
            and "publish: %s,%s\n" % (C1, C2) in res.out, repr(res))

    b = t.Broker(r, "json-broker", args=["--bind", "%s:0" % t.HOST, "--auth", "users.json"],
                 cwd=d).start()
    a, bb = h.pubsub_checks(r, b)

    # A key added by editing the file reaches the running broker.
    new = ("owner-d", "key-d", "secret-d", [C1], [C1])
    h.added_key_checks(r, b, "it is in the file",
                       lambda: edit_by_hand(path, lambda doc: doc.update(entries([new]))),
                       "key-d added to users.json by hand", LIVE_DEADLINE)

    # A key removed by editing the file: its live session is closed.
    edit_by_hand(path, lambda doc: doc.pop("key-a"))
    h.removed_key_checks(r, b, a, bb, "key-a removed from users.json by hand", LIVE_DEADLINE)

    rc = b.stop()
    r.check("broker exits 0 on SIGTERM", rc == 0, "status %r" % rc)
    want = entries([row for row in ROWS if row[1] != "key-a"] + [new])
    check_file_after(r, "after the broker ran", path, want)
    res = t.ctl_raw(["--auth", path], "authkey", "list")
    r.check("hpfriendsctl --auth users.json authkey list afterwards: key-b, key-c, key-d",
            res.rc == 0 and sorted(res.lines()) == h.list_lines(
                [row for row in ROWS if row[1] != "key-a"] + [new]), repr(res))


def broker_first(r):
    """The broker, not hpfriendsctl, is the first to open a pristine file."""
    d = r.subdir("json-broker-first")
    path = os.path.join(d, "users.json")
    make_file(path)
    b = t.Broker(r, "json-first", args=["--bind", "%s:0" % t.HOST, "--auth", "users.json"],
                 cwd=d).start()
    h.two_owner_exchange(r, b, "broker first on a pristine users.json")
    rc = b.stop()
    r.check("broker first: exits 0 on SIGTERM", rc == 0, "status %r" % rc)
    check_file_after(r, "broker first", path, entries(ROWS))
    res = t.ctl_raw(["--auth", path], "authkey", "list")
    r.check("broker first: hpfriendsctl --auth users.json authkey list afterwards lists all 3",
            res.rc == 0 and sorted(res.lines()) == h.list_lines(ROWS), repr(res))


if __name__ == "__main__":
    t.main("hpfeeds3-json", [
        ("hpfeeds3 users.json used in place", users_json),
        ("hpfeeds3 users.json opened by the broker first", broker_first),
    ], backend_specific=False)
