#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Time `hpfriendsctl import` of generated data sets per storage backend.

For each size N the data set holds N users (every 97th an admin), N/10
groups of 4 members, N user-to-user shares plus N/10 shares to groups,
N/2 accepts and N authkeys.  Each import goes into a fresh, empty store.

Usage (from a build directory, after `make`):
  tests/bench/import_bench.py [--sizes 1000,5000,20000] [--backends file,sqlite]
                              [--repeat 1] [--keep DIR] [--mongo-uri mongodb://HOST:PORT]

The mongodb backend needs --mongo-uri (a running server, e.g. the test
server: tests/mongo/mongo-server.sh start DIR); each run gets a database of
its own.

Prints one line per (backend, size): the best of --repeat runs, in seconds.
Not part of `make check`: the numbers depend on the machine.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def dataset(n, tag="u"):
    def user(i):
        return "%s%06d" % (tag, i % n)

    users = [{"name": user(i), "admin": i % 97 == 0} for i in range(n)]
    groups = [{"name": "%sg%05d" % (tag, i), "owner": user(i),
               "members": [user(i * 7 + j) for j in range(4)]} for i in range(n // 10)]
    shares = [{"from": user(i), "to_user": user(i + 1), "channel": "ch%d" % (i % 40),
               "type": "shares" if i % 3 else "shares_all"} for i in range(n)]
    shares += [{"from": user(i), "to_group": "%sg%05d" % (tag, i // 10),
                "channel": "grp%d" % (i % 7), "type": "shares"} for i in range(0, n, 10)]
    accepts = [{"user": user(i + 1), "from": user(i), "channel": "ch%d" % (i % 40)}
               for i in range(0, n, 2)]
    keys = [{"ident": "%sk%06d" % (tag, i), "owner": user(i),
             "secret": "secret-%s-%06d" % (tag, i), "publish": ["ch%d" % (i % 40)],
             "subscribe": ["ch%d" % (i % 40), "ch%d" % ((i + 1) % 40)]} for i in range(n)]
    return {"format": "hpfriends-export", "version": 1, "users": users, "groups": groups,
            "shares": shares, "accepts": accepts, "authkeys": keys}


def storage_section(backend, directory, mongo_uri=None):
    if backend == "file":
        return "plugin = file\npath = %s\n" % os.path.join(directory, "hpfriends.json")
    if backend == "sqlite":
        return "plugin = sqlite\npath = %s\n" % os.path.join(directory, "hpfriends.db")
    if backend == "mongodb":
        if not mongo_uri:
            raise SystemExit("import_bench: the mongodb backend needs --mongo-uri")
        return "plugin = mongodb\nuri = %s/%s\n" % (mongo_uri.rstrip("/"),
                                                   "bench_" + os.path.basename(directory)
                                                   .replace("-", "_"))
    raise SystemExit("import_bench: unknown backend %r (file, sqlite or mongodb)" % backend)


def ctl(ctl_path, conf, *args):
    t0 = time.monotonic()
    p = subprocess.run([ctl_path, "-c", conf] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("import_bench: hpfriendsctl %s failed (%d): %s" %
                         (" ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument("--backends", default="file,sqlite")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", help="write data sets and stores here and keep them")
    ap.add_argument("--mongo-uri", help="mongodb://HOST:PORT for the mongodb backend")
    ap.add_argument("--ctl", default=os.path.join(os.getcwd(), "core", "hpfriendsctl"),
                    help="hpfriendsctl to run (default: ./core/hpfriendsctl)")
    args = ap.parse_args()
    if not os.path.exists(args.ctl):
        alt = os.path.join(os.getcwd(), "hpfriendsctl")
        args.ctl = alt if os.path.exists(alt) else args.ctl
    os.environ.setdefault("HPFRIENDS_PLUGIN_DIR", os.path.join(os.getcwd(), "plugins", ".libs"))
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.keep or tempfile.mkdtemp(prefix="hpf-import-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        files = {}
        for n in sizes:
            files[n] = os.path.join(work, "dataset-%d.json" % n)
            with open(files[n], "w") as f:
                json.dump(dataset(n), f)
        print("# backend size seconds (best of %d)" % args.repeat)
        for backend in args.backends.split(","):
            for n in sizes:
                best = None
                for r in range(args.repeat):
                    d = os.path.join(work, "%s-%d-%d" % (backend, n, r))
                    shutil.rmtree(d, ignore_errors=True)
                    os.makedirs(d)
                    conf = os.path.join(d, "hpfriends.conf")
                    with open(conf, "w") as f:
                        f.write("[broker]\nname = bench\nlisten = tcp:127.0.0.1:0\n\n"
                                "[storage]\n" + storage_section(backend, d, args.mongo_uri))
                    secs = ctl(args.ctl, conf, "import", files[n])
                    best = secs if best is None else min(best, secs)
                print("%-7s %6d %8.2f" % (backend, n, best), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
