#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The licence is stated: LICENSE is the BSD-3-Clause text and every source
file of the tree carries an SPDX line near its top.

Third-party files are the one exception, and only as listed in a VENDORED
file of their folder (web/VENDORED): each such file must match the sha256
written there (so neither an edit to it nor a file of our own can hide
behind the list), have its licence file beside it, and be under a licence
that lets it ship with BSD-3-Clause code.

Walks the source tree (git-independent, so it holds in a dist tarball too)
and lists every file that lacks the line, rather than stopping at the first.
"""
import hashlib
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
# Licences a vendored file may have: permissive, compatible with shipping
# under BSD-3-Clause.
VENDOR_LICENCES = {"MIT", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Apache-2.0"}


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


def vendored(top, failures):
    """Paths listed in any VENDORED file, after checking each entry."""
    listed = set()
    for d in DIRS:
        for root, dirs, files in os.walk(os.path.join(top, d)):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith(".")]
            if "VENDORED" in files:
                listed |= vendored_in(top, os.path.join(root, "VENDORED"), failures)
    return listed


def vendored_in(top, listing, failures):
    listed = set()
    where = os.path.relpath(listing, top)
    with open(listing, encoding="utf-8") as f:
        lines = [l.split() for l in f if l.strip() and not l.startswith("#")]
    for n, fields in enumerate(lines, 1):
        if len(fields) != 5:
            failures.append("%s: entry %d is not 'file package@version licence licfile sha256'"
                            % (where, n))
            continue
        name, package, licence, licfile, digest = fields
        path = os.path.join(os.path.dirname(listing), name)
        if "@" not in package:
            failures.append("%s: %s: no pinned version in %r" % (where, name, package))
        if licence not in VENDOR_LICENCES:
            failures.append("%s: %s: licence %s is not one of %s"
                            % (where, name, licence, sorted(VENDOR_LICENCES)))
        if not os.path.isfile(os.path.join(os.path.dirname(listing), licfile)):
            failures.append("%s: %s: licence file %s is missing" % (where, name, licfile))
        if not os.path.isfile(path):
            failures.append("%s: %s is listed but missing" % (where, name))
            continue
        with open(path, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != digest:
            failures.append("%s: %s has sha256 %s, not the %s listed" % (where, name, got, digest))
        listed.add(os.path.abspath(path))
    return listed


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
    third_party = vendored(top, failures)
    for path in sources(top):
        if os.path.abspath(path) in third_party:
            continue
        count += 1
        with open(path, encoding="utf-8", errors="replace") as f:
            head = "".join(f.readline() for _ in range(5))
        if TAG not in head:
            failures.append("%s: no '%s' in its first 5 lines" % (os.path.relpath(path, top), TAG))
    if count < 100:
        failures.append("only %d source files found under %s: wrong tree?" % (count, top))
    for line in failures:
        print("FAIL", line)
    print("license: %d source files checked, %d vendored files, %d problems"
          % (count, len(third_party), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
