#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The generated systemd units and the installed sample config.

systemd-analyze verify must print nothing for conf/hpfriendsd.service and
an instance of conf/hpfriendsd@.service (any warning fails).  verify checks
that ExecStart's program exists, so the runner verifies copies whose
ExecStart names the built daemon instead of the install path (the only
change); --man=no, as the man pages are not installed here.  The units must
keep what the service relies on (Type=notify, the reload signal, the user,
the sandbox) and carry configure's paths, and systemd-analyze security must
rate them at most MAX_EXPOSURE.  The installed sample config
(conf/hpfriendsd.conf.sample) must pass `hpfriendsd --test`, with its user
and database path pointed at ones that exist here.
"""

import os
import re
import shutil
import subprocess

import hpftest as T

UNITS = ("hpfriendsd.service", "hpfriendsd@.service")
MAX_EXPOSURE = 2.0
REQUIRED = [
    "Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "User=hpfriends", "Group=hpfriends",
    "StateDirectory=hpfriends", "LogsDirectory=hpfriends", "ProtectSystem=strict",
    "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet=",
    "SystemCallFilter=@system-service", "WatchdogSec=", "LimitNOFILE=",
]


def analyze(*args):
    tool = shutil.which("systemd-analyze")
    T.expect(tool, "systemd-analyze not found (apt-get install systemd)")
    p = subprocess.run([tool] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def built_copy(r, unit, instance=None):
    """The unit with ExecStart pointing at the built daemon, in a directory of its own."""
    src = os.path.join(T.BUILDDIR, "conf", unit)
    T.expect(os.path.exists(src), "%s not built (make)" % src)
    with open(src) as f:
        text = f.read()
    exec_start = re.search(r"^ExecStart=(\S+)", text, re.M)
    T.expect(exec_start, "%s: no ExecStart=" % unit)
    copy = text.replace("ExecStart=" + exec_start.group(1), "ExecStart=" + T.DAEMON)
    d = r.subdir("units")
    name = unit.replace("@.", "@%s." % instance) if instance else unit
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(copy)
    return path, text


def test_verify(r):
    for unit in UNITS:
        path, text = built_copy(r, unit, "demo" if "@" in unit else None)
        rc, out = analyze("verify", "--man=no", path)
        r.check("systemd-analyze verify %s: no warning" % os.path.basename(path),
                rc == 0 and not out.strip(), "status %d: %s" % (rc, out.strip()))
        missing = [k for k in REQUIRED if not re.search(r"^" + re.escape(k), text, re.M)]
        r.check("%s keeps %s" % (unit, ", ".join(k.split("=")[0] for k in REQUIRED)),
                not missing, "missing %r" % missing)
        left = re.findall(r"@[A-Za-z_]+@", text)
        r.check("%s: every @path@ substituted" % unit, not left, repr(left))
        conf = "%i.conf" if "@" in unit else "hpfriendsd.conf"
        r.check("%s: ExecStart runs in the foreground with its config" % unit,
                re.search(r"^ExecStart=\S+/hpfriendsd --foreground -c \S+/hpfriends/%s$"
                          % re.escape(conf), text, re.M), text)
        rc, out = analyze("security", "--offline=true", path)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
        T.expect(m, "systemd-analyze security: %s" % out[-500:])
        print("# %s: exposure %s" % (unit, m.group(1)))
        r.check("%s: exposure %s <= %.1f" % (unit, m.group(1), MAX_EXPOSURE),
                float(m.group(1)) <= MAX_EXPOSURE, out)


def test_sample(r):
    src = os.path.join(T.BUILDDIR, "conf", "hpfriendsd.conf.sample")
    T.expect(os.path.exists(src), "%s not built (make)" % src)
    with open(src) as f:
        text = f.read()
    r.check("the sample runs as user hpfriends", re.search(r"^user = hpfriends$", text, re.M))
    db = re.search(r"^path = (\S+)$", text, re.M)
    r.check("the sample's database lives in .../lib/hpfriends/",
            db and db.group(1).endswith("/lib/hpfriends/hpfriends.db"), db and db.group(1))
    d = r.subdir("sample")
    text = re.sub(r"^user = hpfriends$", "user = nobody", text, flags=re.M)
    text = re.sub(r"^path = \S+$", "path = " + os.path.join(d, "hpfriends.db"), text, flags=re.M)
    path = os.path.join(d, "hpfriendsd.conf")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([T.DAEMON, "--test", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    r.check("the sample passes hpfriendsd --test", p.returncode == 0,
            p.stdout.decode(errors="replace"))


if __name__ == "__main__":
    T.main("units", [("systemd-analyze verify", test_verify), ("sample config", test_sample)],
           backend_specific=False)
