#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""kill -9 in the middle of `hpfriendsctl import`: the storage keeps the
previous consistent state (sqlite and file backends).

The store first holds a small data set (its export is "before").  Then a
large import (thousands of users, groups, shares and authkeys) is killed
with SIGKILL:

  - at named points inside the write, through the test-only crash points
    of the storage plugins (plugins/common/crash_point.h; the variable
    HPF_TEST_CRASH_AT exists for this test only): half-way through the
    SQLite transaction, just before its COMMIT; half-way through writing
    the JSON file's temporary copy, just before renaming it into place,
    just after.  Each kill must leave exactly "before" (or, for the kill
    after the rename, exactly the new data: the change was made);
  - from outside, at delays spread over the import's measured duration:
    the state must be "before" or the complete new data, and the new data
    whenever the import had exited 0.

After every kill: `hpfriendsctl export` is compared byte for byte, SQLite
passes PRAGMA integrity_check, the JSON file parses; and at the end a full
import and a re-import of "before" still work on the store the kills left.

The file backend's temporary copy that a kill leaves behind must be gone
after the next open of the store (the export above) or the next write, with
one warning naming it, and the data must be the previous consistent one.

Usage: test_kill_import.py --backend sqlite|file
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402

N_USERS = 3000
IMPORT_TIMEOUT = 300


def dataset(n, tag):
    users = [{"name": "%s%05d" % (tag, i), "admin": i % 97 == 0} for i in range(n)]
    groups = [{"name": "%sg%04d" % (tag, i), "owner": "%s%05d" % (tag, i),
               "members": ["%s%05d" % (tag, (i * 7 + j) % n) for j in range(4)]}
              for i in range(n // 10)]
    shares = [{"from": "%s%05d" % (tag, i), "to_user": "%s%05d" % (tag, (i + 1) % n),
               "channel": "ch%d" % (i % 40), "type": "shares" if i % 3 else "shares_all"}
              for i in range(n)]
    shares += [{"from": "%s%05d" % (tag, i), "to_group": "%sg%04d" % (tag, i // 10),
                "channel": "grp%d" % (i % 7), "type": "shares"} for i in range(0, n, 10)]
    keys = [{"ident": "%sk%05d" % (tag, i), "owner": "%s%05d" % (tag, i),
             "secret": "secret-%s-%05d" % (tag, i), "publish": ["ch%d" % (i % 40)],
             "subscribe": ["ch%d" % (i % 40), "ch%d" % ((i + 1) % 40)]} for i in range(n)]
    return {"format": "hpfriends-export", "version": 1, "users": users, "groups": groups,
            "shares": shares, "accepts": [], "authkeys": keys}


class Store:
    def __init__(self, r, name):
        self.dir = r.subdir(name)
        self.conf = t.write_config(self.dir)
        keys = t.storage_keys(self.dir)
        self.path = os.path.join(self.dir, keys["path"])

    def export(self):
        res = t.ctl_ok(self.conf, "export")
        self.last_err = res.err
        return res.out

    def import_(self, path):
        return t.ctl(self.conf, "import", path)

    def leftovers(self):
        """Evidence of a write cut short: SQLite's WAL with frames in it, or
        the JSON file's temporary copy."""
        if t.BACKEND == "sqlite":
            wal = self.path + "-wal"
            return ["%s (%d bytes)" % (os.path.basename(wal), os.path.getsize(wal))] \
                if os.path.exists(wal) and os.path.getsize(wal) > 0 else []
        base = "." + os.path.basename(self.path) + ".tmp-"
        return [n for n in os.listdir(self.dir) if n.startswith(base)]

    def intact(self):
        """(ok, detail): the database or file itself is sound."""
        if t.BACKEND == "sqlite":
            con = sqlite3.connect(self.path)
            try:
                res = con.execute("PRAGMA integrity_check").fetchall()
            finally:
                con.close()
            return res == [("ok",)], repr(res)
        try:
            with open(self.path, "rb") as f:
                json.load(f)
            return True, ""
        except (OSError, ValueError) as e:
            return False, str(e)


def run_import(store, path, crash_at=None, kill_after=None):
    """hpfriendsctl import; crash_at sets HPF_TEST_CRASH_AT, kill_after
    sends SIGKILL after that many seconds.  Returns (returncode, seconds)."""
    env = dict(os.environ)
    env.pop("HPF_TEST_CRASH_AT", None)
    if crash_at:
        env["HPF_TEST_CRASH_AT"] = crash_at
    t0 = time.monotonic()
    p = subprocess.Popen([t.CTL, "-c", store.conf, "import", path], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        if kill_after is not None:
            try:
                p.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
        p.wait(timeout=IMPORT_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err = p.stderr.read().decode("utf-8", "replace")
        p.stderr.close()
    if p.returncode not in (0, -signal.SIGKILL):
        raise t.CheckFailed("import exited %d: %s" % (p.returncode, err.strip()))
    return p.returncode, time.monotonic() - t0


def kill_tests(r):
    before_path = os.path.join(r.tmp, "before.json")
    big_path = os.path.join(r.tmp, "big.json")
    with open(before_path, "w") as f:
        json.dump(dataset(40, "old"), f)
    with open(big_path, "w") as f:
        json.dump(dataset(N_USERS, "new"), f)

    # What a complete import gives, and how long it takes, on a store of
    # its own.
    ref = Store(r, "reference")
    rc, _ = run_import(ref, before_path)
    t.expect(rc == 0, "reference: import of the small data set failed")
    rc, full_s = run_import(ref, big_path)
    t.expect(rc == 0, "reference: import of the large data set failed")
    # the shorter of two runs, so that one slow moment of a busy machine
    # does not push the kills below past the end of the import
    rc, again_s = run_import(ref, big_path)
    t.expect(rc == 0, "reference: second import of the large data set failed")
    full_s = min(full_s, again_s)
    after = ref.export()
    print("# a complete import of %d users takes %.2f s" % (N_USERS, full_s), flush=True)

    st = Store(r, "victim")
    rc, _ = run_import(st, before_path)
    t.expect(rc == 0, "import of the small data set failed")
    before = st.export()
    r.check("the two data sets export differently", before != after)

    def verify(name, allowed):
        ok, detail = st.intact()
        r.check("%s: the %s is intact" % (name, "database" if t.BACKEND == "sqlite" else "file"),
                ok, detail)
        got = st.export()
        which = "before" if got == before else "after" if got == after else "neither"
        r.check("%s: export is exactly %s" % (name, " or ".join(allowed)), which in allowed,
                "export is %s (%d bytes)" % (which, len(got)))
        return which

    points = {
        "sqlite": [("sqlite-apply-half", "before"), ("sqlite-before-commit", "before")],
        "file": [("file-tmp-half", "before"), ("file-before-rename", "before"),
                 ("file-after-rename", "after")],
    }[t.BACKEND]
    for point, want in points:
        rc, secs = run_import(st, big_path, crash_at=point)
        r.check("crash point %s: the import was killed (SIGKILL)" % point,
                rc == -signal.SIGKILL, "exit %d" % rc)
        left = st.leftovers()
        print("# %s: killed after %.2f s; left behind: %s" % (point, secs, ", ".join(left) or
                                                              "nothing"), flush=True)
        if want == "before" and t.BACKEND == "file":
            # (SQLite may hold the whole uncommitted transaction in its page
            # cache, so an empty WAL proves nothing either way.)
            r.check("crash point %s: killed inside the write (it left a temporary file)" % point,
                    left)
        which = verify("crash point " + point, [want])
        if t.BACKEND == "file":
            check_tidied(r, "crash point %s: the next open" % point, st, left)
        if which == "after":
            rc, _ = run_import(st, before_path)
            t.expect(rc == 0 and st.export() == before, "restoring the small data set failed")

    # From outside, at delays spread over the import's duration.
    kills = mid = 0
    for frac in (0.2, 0.45, 0.7, 0.95):
        delay = full_s * frac
        rc, secs = run_import(st, big_path, kill_after=delay)
        name = "SIGKILL after %.2f s (%.0f%% of an import)" % (delay, frac * 100)
        left = st.leftovers()
        which = verify(name, ["after"] if rc == 0 else ["before", "after"])
        if t.BACKEND == "file":
            check_tidied(r, name + ": the next open", st, left)
        print("# %s: %s, store holds %s" % (name, "exited 0 first" if rc == 0 else "killed",
                                           which), flush=True)
        if rc != 0:
            kills += 1
            mid += which == "before"
        if which == "after":
            rc, _ = run_import(st, before_path)
            t.expect(rc == 0 and st.export() == before, "restoring the small data set failed")
    r.check("SIGKILL from outside cut at least one import short (%d kills, %d before the "
            "commit)" % (kills, mid), mid >= 1)

    if t.BACKEND == "file":
        # Killed again, and the next command is a write, not an open.
        rc, _ = run_import(st, big_path, crash_at="file-before-rename")
        left = st.leftovers()
        t.expect(rc == -signal.SIGKILL and left, "file-before-rename left no temporary file")
        res = t.ctl(st.conf, "user", "add", "tidy-writer")
        r.check("after a kill, the next write succeeds", res.rc == 0, res.err)
        st.last_err = res.err
        check_tidied(r, "after a kill, the next write", st, left)
        res = t.ctl(st.conf, "user", "del", "tidy-writer")
        r.check("and the data before the kill is intact",
                res.rc == 0 and st.export() == before)

    # The store the kills left works normally.
    rc, _ = run_import(st, big_path)
    r.check("a complete import after the kills", rc == 0 and st.export() == after)
    rc, _ = run_import(st, before_path)
    r.check("and back to the small data set", rc == 0 and st.export() == before)
    ok, detail = st.intact()
    r.check("the store is intact at the end", ok, detail)
    r.check("no temporary file at the end", not st.leftovers(), ", ".join(st.leftovers()))


def check_tidied(r, name, st, left):
    """After a kill left the temporary files `left`, the command just run
    (its stderr in st.last_err) removed them and said so in one line."""
    now = st.leftovers()
    r.check("%s removed the temporary file left behind" % name, not now, ", ".join(now))
    if left:
        lines = [ln for ln in st.last_err.splitlines()
                 if "left by an interrupted write: " in ln]
        r.check("%s logged it once, by name" % name,
                len(lines) == 1 and all(n in lines[0] for n in left), st.last_err.strip())


if __name__ == "__main__":
    if t.BACKEND not in ("sqlite", "file"):
        print("FAIL - test_kill_import covers sqlite and file, not %s" % t.BACKEND)
        print("0 passed, 1 failed")
        sys.exit(1)
    t.main("kill_import", [("kill -9 during import", kill_tests)])
