#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The plugin ABI check, as a [sink:NAME] section sees it.

tests/sinks/abi_sink.c is built four times (tests/sinks/local.mk): for this
broker's ABI, the previous minor, the next major and the next minor.  The
broker must load the first two (a plugin built against an older 1.x keeps
working), and refuse the other two, both at `hpfriendsd -t` and at a real
start, with a message naming the section, the plugin, its file and both
versions.
The versions expected are read from include/hpfriends/plugin.h.
"""

import os
import re
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinktest as st  # noqa: E402

KEYS = {"pub": ("pub-secret", ["abi"], [])}


def header_abi():
    text = open(os.path.join(st.SRCDIR, "include", "hpfriends", "plugin.h")).read()
    major = int(re.search(r"#define HPF_ABI_MAJOR (\d+)", text).group(1))
    minor = int(re.search(r"#define HPF_ABI_MINOR (\d+)", text).group(1))
    return major, minor


def module(name):
    return os.path.join(st.BUILDDIR, "tests", "sinks", ".libs", name + ".so")


def main():
    c = st.Checks("sink_abi")
    tmp = st.TempDir("hpf-sink-abi-")
    try:
        major, minor = header_abi()
        ours = "%d.%d" % (major, minor)
        st.make_auth_db(tmp.join("auth.db"), KEYS)

        ok_so = module("abi_sink_ok")
        c.check("test modules built (%s)" % os.path.dirname(ok_so), os.path.exists(ok_so))
        b = st.Broker(tmp, "[sink:x]\nplugin = %s\n" % ok_so, name="ok")
        rc, out = st.run_daemon_once(["-t", "-c", b.conf], tmp)
        c.check("ABI %s sink (same build, right version) passes -t" % ours, rc == 0, out.strip())

        def started():
            b.start()
            return b.stop(signal.SIGTERM)
        try:
            rc = started()
            c.check("ABI %s sink loads and runs; SIGTERM exits 0" % ours, rc == 0,
                    "status %r" % rc)
        except st.CheckFailed as e:
            c.check("ABI %s sink loads and runs; SIGTERM exits 0" % ours, False, str(e))

        # Built against the previous minor: still loaded (the 1.x promise).
        if minor > 0:
            old = "%d.%d" % (major, minor - 1)
            prev = st.Broker(tmp, "[sink:x]\nplugin = %s\n" % module("abi_sink_prev_minor"),
                             name="prev")
            rc, out = st.run_daemon_once(["-t", "-c", prev.conf], tmp)
            c.check("ABI %s sink passes -t in a %s broker" % (old, ours), rc == 0, out.strip())
            try:
                prev.start()
                rc = prev.stop(signal.SIGTERM)
                c.check("ABI %s sink loads and runs in a %s broker; SIGTERM exits 0"
                        % (old, ours), rc == 0, "status %r" % rc)
            except st.CheckFailed as e:
                c.check("ABI %s sink loads and runs in a %s broker" % (old, ours), False, str(e))

        for name, theirs in (("abi_sink_next_major", "%d.%d" % (major + 1, minor)),
                             ("abi_sink_next_minor", "%d.%d" % (major, minor + 1))):
            so = module(name)
            conf = st.Broker(tmp, "[sink:x]\nplugin = %s\n" % so, name=name)
            rc, out = st.run_daemon_once(["-t", "-c", conf.conf], tmp)
            named = (theirs in out and ours in out and "abi_sink" in out and so in out and
                     "[sink:x]" in out)
            c.check("ABI %s sink refused by -t (exit %d), naming [sink:x], the plugin, its file, "
                    "%s and %s" % (theirs, rc, theirs, ours), rc != 0 and named, out.strip())
            ready = tmp.join(name + ".ready")
            rc, out = st.run_daemon_once(["-f", "-c", conf.conf, "--ready-file", ready], tmp)
            c.check("ABI %s sink refused at start: exit %d, never ready, both versions named"
                    % (theirs, rc), rc != 0 and not os.path.exists(ready) and theirs in out and
                    ours in out, out.strip())
    finally:
        tmp.cleanup()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
