#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The licence is stated: LICENSE is the BSD-3-Clause text and every source
file of the tree carries an SPDX line near its top.

Walks the source tree (git-independent, so it holds in a dist tarball too)
and lists every file that lacks the line, rather than stopping at the first.
"""
import os
import sys

TAG = "SPDX-License-Identifier: BSD-3-Clause"
SRC_EXT = {".c", ".h", ".py", ".sh", ".mk", ".js", ".mjs", ".css", ".html", ".am",
           ".ac", ".conf", ".in", ".service", ".scd"}
TOP_FILES = ["configure.ac", "Makefile.am", "autogen.sh", ".ci/run"]
DIRS = ["core", "plugins", "include", "sdk", "tests", "web", "conf", "debian", "doc"]
SKIP_DIRS = {"node_modules", "corpus", ".deps", ".libs", "autom4te.cache"}
# Generated at build time in an in-tree build; not sources.
SKIP_NAMES = {"Makefile.in"}


def sources(top):
    for name in TOP_FILES:
        path = os.path.join(top, name)
        if os.path.exists(path):
            yield path
    for d in DIRS:
        for root, dirs, files in os.walk(os.path.join(top, d)):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith(".")]
            for f in files:
                if f in SKIP_NAMES or os.path.splitext(f)[1] not in SRC_EXT:
                    continue
                yield os.path.join(root, f)


def main():
    top = os.environ.get("HPF_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    top = os.path.abspath(top)
    failures = []
    with open(os.path.join(top, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    for phrase in ("Redistribution and use in source and binary forms",
                   "Neither the name of the copyright holder nor the names of its",
                   "contributors may be used to endorse or promote products"):
        if phrase not in text:
            failures.append("LICENSE: not the BSD-3-Clause text (missing %r)" % phrase)
    count = 0
    for path in sources(top):
        count += 1
        with open(path, encoding="utf-8", errors="replace") as f:
            head = "".join(f.readline() for _ in range(5))
        if TAG not in head:
            failures.append("%s: no '%s' in its first 5 lines" % (os.path.relpath(path, top), TAG))
    if count < 100:
        failures.append("only %d source files found under %s: wrong tree?" % (count, top))
    for line in failures:
        print("FAIL", line)
    print("license: %d source files checked, %d problems" % (count, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
