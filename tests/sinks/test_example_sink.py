#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The SDK's example sink (sdk/example-sink), built out of tree with its own
plain Makefile and loaded into a real broker.

Two modes:

  test_example_sink.py
      (make check) builds against the source tree's headers
      (HPF_CFLAGS=-I$HPF_SRCDIR/include), loads the module by path
      (`plugin = /tmp/.../sink_example.so`).

  test_example_sink.py --installed PREFIX
      (tests/sinks/sdk_check.sh, after `make install` into PREFIX) builds
      against PREFIX/lib/pkgconfig only, `make install`s into the plugindir
      the .pc file names, and runs PREFIX/sbin/hpfriendsd with
      HPFRIENDS_PLUGIN_DIR unset and `plugin = example`, so the installed
      default plugin directory is what finds it.

Either way: messages on three channels (one filtered out by the broker's
`channels` key), SIGHUP writes a checkpoint, SIGTERM the final summary, and
the summary lines `channel count bytes` are compared exactly.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinktest as st  # noqa: E402

PUB, SECRET, SYNC = "pub", "pub-secret", "sync"
KEYS = {PUB: (SECRET, ["ex.a", "ex.b", "ex.c", SYNC], [SYNC])}
FIRST = [("ex.a", b"12345"), ("ex.a", b""), ("ex.b", b"\x00" * 10), ("ex.c", b"filtered"),
         ("ex.a", b"xyz")]
SECOND = [("ex.b", b"abcd"), ("ex.c", b"filtered too"), ("ex.a", b"1")]


def summary_of(msgs):
    totals = {}
    for ch, p in msgs:
        if ch == "ex.c":
            continue
        n, b = totals.get(ch, (0, 0))
        totals[ch] = (n + 1, b + len(p))
    return ["%s %d %d" % (ch, n, b) for ch, (n, b) in sorted(totals.items())]


def read_summary(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return None


def run_cmd(c, what, cmd, cwd, env):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    out = p.stdout.decode("utf-8", "replace").strip()
    c.check("%s (%s)" % (what, " ".join(cmd)), p.returncode == 0, out)
    if p.returncode:
        raise st.CheckFailed("%s failed" % what)
    return out


def example_source(prefix):
    """The installed copy of the example when there is one, else the source tree's."""
    if prefix:
        installed = os.path.join(prefix, "share", "doc", "hpfriends", "example-sink")
        if os.path.exists(os.path.join(installed, "example_sink.c")):
            return installed
    return os.path.join(st.SRCDIR, "sdk", "example-sink")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--installed", metavar="PREFIX",
                    help="test the SDK and broker installed in PREFIX")
    args = ap.parse_args()
    prefix = os.path.abspath(args.installed) if args.installed else None

    c = st.Checks("example_sink")
    tmp = st.TempDir("hpf-example-sink-")
    try:
        c.run("example sink", scenario, c, tmp, prefix)
    finally:
        tmp.cleanup()
    return c.finish()


def scenario(c, tmp, prefix):
    src = example_source(prefix)
    build = tmp.join("example-sink")
    os.mkdir(build)
    for name in ("example_sink.c", "Makefile"):
        shutil.copy(os.path.join(src, name), build)
    print("# example sources from %s" % src)

    env = dict(os.environ)
    # Not the outer make's flags and variables (make check runs this).
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(var, None)
    if prefix:
        # The staged prefix and nothing else: no system .pc dirs, no build tree.
        env.pop("PKG_CONFIG_PATH", None)
        env["PKG_CONFIG_LIBDIR"] = os.path.join(prefix, "lib", "pkgconfig")
        env.pop("HPFRIENDS_PLUGIN_DIR", None)
        cflags = run_cmd(c, "pkg-config finds hpfriends-plugin in the prefix",
                         ["pkg-config", "--cflags", "hpfriends-plugin"], build, env)
        c.check("pkg-config --cflags points into the prefix",
                ("-I%s/include" % prefix) in cflags, cflags)
        plugindir = run_cmd(c, "pkg-config names the plugindir",
                            ["pkg-config", "--variable=plugindir", "hpfriends-plugin"], build,
                            env)
        c.check("plugindir is PREFIX/lib/hpfriends/plugins",
                plugindir == os.path.join(prefix, "lib", "hpfriends", "plugins"), plugindir)
        run_cmd(c, "the example builds against the installed SDK", ["make"], build, env)
        run_cmd(c, "make install puts it in the plugindir", ["make", "install"], build, env)
        installed = os.path.join(plugindir, "sink_example.so")
        c.check("installed as %s" % installed, os.path.exists(installed))
        plugin = "example"
        daemon = os.path.join(prefix, "sbin", "hpfriendsd")
    else:
        run_cmd(c, "the example builds with its own Makefile",
                ["make", "HPF_CFLAGS=-I%s" % os.path.join(st.SRCDIR, "include")], build, env)
        plugin = os.path.join(build, "sink_example.so")
        daemon = None

    exported = subprocess.run(["nm", "-D", "--defined-only", os.path.join(build, "sink_example.so")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    syms = [ln.split()[-1] for ln in exported.stdout.decode().splitlines() if " T " in ln]
    c.check("the module exports hpf_plugin_entry and no other function", syms == ["hpf_plugin_entry"],
            repr(syms))

    st.make_auth_db(tmp.join("auth.db"), KEYS)
    summary = tmp.join("summary.txt")
    sinks = "[sink:stats]\nplugin = %s\nsummary = summary.txt\nchannels = ex.a;ex.b\n" % plugin
    broker = st.Broker(tmp, sinks, daemon=daemon, env=env).start()
    try:
        c.check("start() writes an empty summary", read_summary(summary) == [],
                repr(read_summary(summary)))
        pub = broker.client(PUB, SECRET)
        pub.subscribe(SYNC)
        for ch, p in FIRST:
            pub.publish(ch, p)
        pub.sync(SYNC)
        broker.kill(signal.SIGHUP)
        want = summary_of(FIRST)
        st.wait_for(lambda: read_summary(summary) == want)
        got = read_summary(summary)
        c.check("SIGHUP writes a checkpoint: %r" % want, got == want, repr(got))
        for ch, p in SECOND:
            pub.publish(ch, p)
        pub.sync(SYNC)
        pub.close()
        rc = broker.stop(signal.SIGTERM)
        c.check("SIGTERM: the broker exits 0", rc == 0, "status %r: %s" % (rc, broker.log_tail()))
        want = summary_of(FIRST + SECOND)
        c.check("shutdown writes the final summary: %r" % want, read_summary(summary) == want,
                repr(read_summary(summary)))
        c.check("no stray temporary file", not os.path.exists(summary + ".tmp"))
    finally:
        broker.stop(signal.SIGKILL)

    # A missing `summary` key is a config error naming the section and the key.
    bad = st.Broker(tmp, "[sink:stats]\nplugin = %s\n" % plugin, name="bad", daemon=daemon,
                    env=env)
    p = subprocess.run([broker.daemon, "-t", "-c", bad.conf], cwd=tmp.path, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    c.check("without `summary`, hpfriendsd -t fails naming [sink:stats] and summary",
            p.returncode != 0 and "sink:stats" in out and "summary" in out, out.strip())


if __name__ == "__main__":
    sys.exit(main())
