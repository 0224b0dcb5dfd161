#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The man pages: every page built from doc/*.scd lints clean, the pages
name each other under SEE ALSO, every long option that hpfriendsd,
hpfriendsctl and hpfeeds-cli list in --help is in their pages, and every
config key the broker accepts is documented in hpfriendsd.conf(5) and in the
sample conf/hpfriendsd.conf.

Lint: `mandoc -T lint -W warning` must print nothing and exit 0 for every
page.  (-W style is not used: it flags every roff input line over 80 bytes,
and scdoc's font escapes make many; it has nothing to say otherwise.)

Keys: `hpfriendsd --list-config-keys` prints what the parsers accept, read
from the tables they use (the [broker], [web] and [auth] key tables, the
plugin sections' `plugin`, the keys the core takes out of every sink
section) and the config_keys of every plugin in the plugin directory, which
the loader holds each section against.  So a key added to a parser or a
plugin without documentation fails here.  The list is checked for a minimum
(known keys and plugins, every module of the plugin directory), and the two
sink keys core/sinks.c handles by name are held against that file's
source, since they live in no table there.  Keys documented but not
accepted fail too (stale documentation), for the plugins built here.
"""
import os
import re
import subprocess
import sys

PAGES = ["hpfriendsd.8", "hpfriendsctl.8", "hpfriendsd.conf.5", "hpfeeds-cli.1",
         "hpfriends-plugin.7"]
KIND_OF_SECTION = {"storage": "storage", "cluster": "cluster", "auth:NAME": "auth",
                   "sink:NAME": "sink"}
# What the dump must hold at least (present in every build).
MIN_SECTION_KEYS = {"broker": 20, "web": 7, "auth": 1, "sink:NAME": 3}
MUST_PLUGINS = {"storage_sqlite", "storage_file", "auth_storage", "sink_file", "sink_syslog"}

failures = []
NOT_BUILT = object()


def fail(msg):
    failures.append(msg)


def dirs():
    src = os.path.abspath(os.environ.get("HPF_SRCDIR")
                          or os.path.join(os.path.dirname(__file__), "..", ".."))
    build = os.path.abspath(os.environ.get("HPF_BUILDDIR") or src)
    return src, build


def find_page(src, build, page):
    for d in (build, src):
        p = os.path.join(d, "doc", page)
        if os.path.exists(p):
            return p
    return None


def lint(src, build):
    scd = sorted(f[:-4] for f in os.listdir(os.path.join(src, "doc")) if f.endswith(".scd"))
    if scd != sorted(PAGES):
        fail("doc/*.scd are %s, expected %s" % (scd, sorted(PAGES)))
    for page in PAGES:
        path = find_page(src, build, page)
        if not path:
            fail("%s: not built" % page)
            continue
        r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", path],
                           capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or out:
            fail("%s: mandoc -T lint -W warning (exit %d):\n%s" % (page, r.returncode, out))
        else:
            print("lint ok: %s" % page)


def see_also(src):
    for page in PAGES:
        path = os.path.join(src, "doc", page + ".scd")
        if not os.path.exists(path):
            continue  # lint() said so
        with open(path, encoding="utf-8") as f:
            text = f.read()
        m = re.search(r"^# SEE ALSO\n(.*?)(?=^# |\Z)", text, re.M | re.S)
        if not m:
            fail("%s: no SEE ALSO section" % page)
            continue
        named = set(re.findall(r"\*([a-z.-]+)\*\((\d)\)", m.group(1)))
        for other in PAGES:
            if other == page:
                continue
            name, sect = other.rsplit(".", 1)
            if (name, sect) not in named:
                fail("%s: SEE ALSO does not name %s(%s)" % (page, name, sect))


def options_documented(src, build):
    """Every long option a program's --help lists is in its page."""
    runs = [("hpfriendsd.8", ["core/hpfriendsd", "--help"]),
            ("hpfriendsctl.8", ["core/hpfriendsctl", "--help"]),
            ("hpfeeds-cli.1", ["sdk/cli/hpfeeds-cli", "pub", "--help"]),
            ("hpfeeds-cli.1", ["sdk/cli/hpfeeds-cli", "sub", "--help"])]
    for page, argv in runs:
        r = subprocess.run([os.path.join(build, argv[0])] + argv[1:], capture_output=True,
                           text=True)
        opts = set(re.findall(r"^\s+(?:-\w, )?--([a-z][a-z-]*)", r.stdout, re.M))
        if r.returncode != 0 or len(opts) < 5:
            fail("%s: exit %d, %d options found" % (" ".join(argv), r.returncode, len(opts)))
            continue
        path = os.path.join(src, "doc", page + ".scd")
        if not os.path.exists(path):
            continue  # lint() said so
        with open(path, encoding="utf-8") as f:
            text = f.read().replace("\\", "")
        for o in sorted(opts):
            if not re.search(r"--%s\b" % re.escape(o), text):
                fail("%s: option --%s (%s) is not documented" % (page, o, " ".join(argv)))


def accepted_keys(build):
    """(core, plugins): core = {section: set(keys)}, plugins = {name: set(keys)}."""
    exe = os.path.join(build, "core", "hpfriendsd")
    r = subprocess.run([exe, "--list-config-keys"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("hpfriendsd --list-config-keys exited %d: %s" % (r.returncode, r.stderr.strip()))
    core, plugins = {}, {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == "plugin":
            plugins.setdefault(f[1], set())
        elif len(f) == 3 and f[0] == "key":
            (plugins if f[1] in plugins else core).setdefault(f[1], set()).add(f[2])
        else:
            fail("--list-config-keys: unexpected line %r" % line)
    for section, n in MIN_SECTION_KEYS.items():
        if len(core.get(section, ())) < n:
            fail("--list-config-keys: [%s] has %d keys, expected at least %d"
                 % (section, len(core.get(section, ())), n))
    for p in sorted(MUST_PLUGINS - set(plugins)):
        fail("--list-config-keys: plugin %s missing" % p)
    plugin_dir = os.environ.get("HPFRIENDS_PLUGIN_DIR") or os.path.join(build, "plugins", ".libs")
    for so in sorted(os.listdir(plugin_dir)):
        if so.endswith(".so") and so[:-3] not in plugins:
            fail("--list-config-keys: %s in %s not listed" % (so, plugin_dir))
    return core, plugins


def sink_core_keys_in_source(src, core):
    """core/sinks.c takes some keys out of every sink section by name."""
    with open(os.path.join(src, "core", "sinks.c"), encoding="utf-8") as f:
        text = f.read()
    found = set(re.findall(r'strcmp\(k, "([a-z_]+)"\)', text))
    if len(found) < 2:
        fail("core/sinks.c: found %d sink keys by pattern, expected at least 2" % len(found))
    missing = found - core.get("sink:NAME", set())
    if missing:
        fail("core/sinks.c handles %s, which --list-config-keys does not list"
             % ", ".join(sorted(missing)))


def resolve_plugin(section, name, plugins):
    """The descriptor name a section's `plugin = NAME` loads, as the loader finds it."""
    kind = KIND_OF_SECTION.get(section)
    for cand in (("%s_%s" % (kind, name)) if kind else None, name):
        if cand and cand in plugins:
            return cand
    return None


def norm_section(s):
    if s.startswith("sink:"):
        return "sink:NAME"
    if s.startswith("auth:"):
        return "auth:NAME"
    return s


def documented(lines, section_re, plugin_re, key_re, core, plugins):
    """{(section, key)} and {(plugin, key)} from a document, by its layout."""
    sect_keys, plug_keys, unresolved = set(), set(), set()
    section = plugin = None
    for line in lines:
        m = section_re.match(line)
        if m:
            section, plugin = norm_section(m.group(1)), None
            continue
        m = plugin_re.match(line)
        if m and section:
            name = m.group(1)
            plugin = resolve_plugin(section, name, plugins)
            if not plugin:
                unresolved.add("%s plugin = %s" % (section, name))
                plugin = NOT_BUILT
        m = key_re.match(line)
        if m and section:
            key = m.group(1).replace("\\", "")
            if plugin is NOT_BUILT and key != "plugin":
                continue  # a plugin not built here: nothing to hold its keys against
            sect_keys.add((section, key))
            # The core's own keys of the section may sit among the plugin's.
            if plugin and plugin is not NOT_BUILT and key not in core.get(section, ()):
                plug_keys.add((plugin, key))
    return sect_keys, plug_keys, unresolved


def check_doc(label, docs, core, plugins):
    sect_keys, plug_keys, unresolved = docs
    n = 0
    for section, keys in sorted(core.items()):
        for key in sorted(keys):
            n += 1
            if (section, key) not in sect_keys:
                fail("%s: [%s] %s is not documented" % (label, section, key))
    for plugin, keys in sorted(plugins.items()):
        for key in sorted(keys):
            n += 1
            if (plugin, key) not in plug_keys:
                fail("%s: %s key %s is not documented" % (label, plugin, key))
    for section, key in sorted(sect_keys):
        in_plugin = any((p, key) in plug_keys for p in plugins)
        if key not in core.get(section, set()) and not in_plugin and section in core:
            fail("%s: [%s] %s is documented but not accepted" % (label, section, key))
    for plugin, key in sorted(plug_keys):
        if key not in plugins.get(plugin, set()):
            fail("%s: %s key %s is documented but not accepted" % (label, plugin, key))
    for u in sorted(unresolved):
        print("%s: %s: plugin not built here, its keys not checked" % (label, u))
    print("%s: %d accepted keys checked" % (label, n))


def main():
    src, build = dirs()
    lint(src, build)
    see_also(src)
    options_documented(src, build)
    core, plugins = accepted_keys(build)
    sink_core_keys_in_source(src, core)

    with open(os.path.join(src, "doc", "hpfriendsd.conf.5.scd"), encoding="utf-8") as f:
        page = f.read().splitlines()
    check_doc("hpfriendsd.conf(5)",
              documented(page, re.compile(r"^# \[([a-z]+(?::NAME)?)\]"),
                         re.compile(r"^## plugin = (\S+)"),
                         re.compile(r"^\*([a-z0-9_\\]+)\* = "), core, plugins),
              core, plugins)

    with open(os.path.join(src, "conf", "hpfriendsd.conf"), encoding="utf-8") as f:
        sample = f.read().splitlines()
    check_doc("conf/hpfriendsd.conf",
              documented(sample, re.compile(r"^#? ?\[([a-z]+(?::[A-Za-z0-9_.-]+)?)\]\s*$"),
                         re.compile(r"^#?\s*plugin\s*=\s*(\S+)\s*$"),
                         re.compile(r"^#?\s*([a-z][a-z0-9_]*)\s*=(?:\s|$)"), core, plugins),
              core, plugins)

    for line in failures:
        print("FAIL", line)
    print("manpages: %d problems" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
