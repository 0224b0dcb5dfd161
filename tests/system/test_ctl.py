#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""System test: hpfriendsctl, every sub-command, its output, its errors and
exit codes (0 ok, 1 one-line error on stderr, 2 usage error), readers with
their paths for the worked example of DESIGN.md section 3, graph --dot
rendered by Graphviz, and export/import round trips.

Graphviz's `dot` is required: without it the rendering check fails.
"""

import json
import os
import pwd
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpftest as t  # noqa: E402

CHAN = "dionaea.captures"


def new_conf(r, name, broker=None):
    return t.write_config(r.subdir(name), broker or {"access": "graph"})


def worked_example(conf, keys=True):
    for u in ("jojo", "mark", "alice", "eve"):
        t.ctl_ok(conf, "user", "add", u)
    t.ctl_ok(conf, "group", "add", "partners", "--owner", "mark")
    t.ctl_ok(conf, "group", "member", "add", "partners", "alice")
    t.ctl_ok(conf, "share", "add", "--from", "jojo", "--to", "mark", "--channel", CHAN)
    t.ctl_ok(conf, "share", "add", "--from", "mark", "--to", "@partners", "--channel", CHAN,
             "--type", "shares_all")
    if keys:
        for u in ("jojo", "mark", "alice", "eve"):
            t.ctl_ok(conf, "authkey", "add", "--owner", u, "--ident", u + "-key",
                     "--secret", u + "-secret", "--publish", CHAN, "--subscribe", CHAN)


def clean_ok(r, name, res, out=None):
    """Exit 0, nothing on stderr, and (when given) exactly this stdout."""
    ok = res.rc == 0 and res.err == "" and (out is None or res.out == out)
    return r.check(name, ok, repr(res))


def one_line_error(r, name, res):
    lines = res.err.splitlines()
    return r.check(name + " -> exit 1, one-line error",
                   res.rc == 1 and len(lines) == 1 and lines[0].startswith("hpfriendsctl: ")
                   and res.out == "", repr(res))


def usage_error(r, name, res):
    return r.check(name + " -> exit 2 (usage)", res.rc == 2 and res.err.strip() != "",
                   repr(res))


def sorted_lines(res):
    return sorted(res.lines())


# ------------------------------------------------------------------ sections

def users_groups(r):
    conf = new_conf(r, "users")
    c = lambda *a: t.ctl(conf, *a)  # noqa: E731
    for u in ("jojo", "mark", "alice", "eve"):
        clean_ok(r, "user add %s" % u, c("user", "add", u), "")
    clean_ok(r, "user add boss --admin", c("user", "add", "boss", "--admin"), "")
    res = c("user", "list")
    r.check("user list: one line per user, admins marked",
            res.rc == 0 and sorted_lines(res) == ["alice", "boss\tadmin", "eve", "jojo", "mark"],
            repr(res))
    clean_ok(r, "user del boss", c("user", "del", "boss"), "")
    res = c("user", "list")
    r.check("user list after user del: boss is gone",
            res.rc == 0 and sorted_lines(res) == ["alice", "eve", "jojo", "mark"], repr(res))

    clean_ok(r, "group add partners --owner mark",
             c("group", "add", "partners", "--owner", "mark"), "")
    clean_ok(r, "group member add partners alice",
             c("group", "member", "add", "partners", "alice"), "")
    clean_ok(r, "group member add partners eve",
             c("group", "member", "add", "partners", "eve"), "")
    res = c("group", "list")
    m = re.fullmatch(r"partners\towner=mark\tmembers=([^\t]*)\n", res.out)
    r.check("group list: partners\\towner=mark\\tmembers=alice,eve",
            res.rc == 0 and m is not None and sorted(m.group(1).split(",")) == ["alice", "eve"],
            repr(res))
    clean_ok(r, "group member del partners eve",
             c("group", "member", "del", "partners", "eve"), "")
    clean_ok(r, "group list after member del",
             c("group", "list"), "partners\towner=mark\tmembers=alice\n")
    clean_ok(r, "group add scratch --owner jojo", c("group", "add", "scratch", "--owner", "jojo"))
    clean_ok(r, "group del scratch", c("group", "del", "scratch"), "")
    clean_ok(r, "group list after group del: only partners",
             c("group", "list"), "partners\towner=mark\tmembers=alice\n")


def shares(r):
    conf = new_conf(r, "shares")
    c = lambda *a: t.ctl(conf, *a)  # noqa: E731
    worked_example(conf, keys=False)
    l1 = "jojo\tmark\t%s\tshares" % CHAN
    l2 = "mark\t@partners\t%s\tshares_all" % CHAN
    res = c("share", "list")
    r.check("share list: FROM\\tTO\\tCHANNEL\\tTYPE, groups as @NAME",
            res.rc == 0 and sorted_lines(res) == sorted([l1, l2]), repr(res))
    res = c("share", "list", "--user", "jojo")
    r.check("share list --user jojo: only jojo's outgoing share, with mark's answer",
            res.rc == 0 and res.lines() == [l1 + "\tmark=pending"], repr(res))
    res = c("share", "list", "--user", "alice")
    r.check("share list --user alice: the group share reaching her, pending",
            res.rc == 0 and res.lines() == [l2 + "\tpending"], repr(res))
    clean_ok(r, "share accept --user alice --from mark",
             c("share", "accept", "--user", "alice", "--from", "mark", "--channel", CHAN), "")
    res = c("share", "list", "--user", "alice")
    r.check("share list --user alice after accept: accepted",
            res.rc == 0 and res.lines() == [l2 + "\taccepted"], repr(res))
    clean_ok(r, "share accept again (already accepted) is fine",
             c("share", "accept", "--user", "alice", "--from", "mark", "--channel", CHAN), "")
    clean_ok(r, "share reject --user alice --from mark",
             c("share", "reject", "--user", "alice", "--from", "mark", "--channel", CHAN), "")
    res = c("share", "list", "--user", "alice")
    r.check("share list --user alice after reject: pending",
            res.rc == 0 and res.lines() == [l2 + "\tpending"], repr(res))
    # Declining: a state of its own; accept and decline replace each other,
    # reject goes back to pending from either.
    answer = lambda verb: c("share", verb, "--user", "alice", "--from", "mark",  # noqa: E731
                            "--channel", CHAN)
    for verb, state in (("decline", "declined"), ("decline", "declined"),
                        ("accept", "accepted"), ("decline", "declined"),
                        ("reject", "pending")):
        clean_ok(r, "share %s --user alice --from mark" % verb, answer(verb), "")
        res = c("share", "list", "--user", "alice")
        r.check("share list --user alice after %s: %s" % (verb, state),
                res.rc == 0 and res.lines() == [l2 + "\t" + state], repr(res))
        res = c("share", "list", "--user", "mark")
        r.check("share list --user mark (the sender) after %s: alice=%s" % (verb, state),
                res.rc == 0 and l2 + "\talice=" + state in res.lines(), repr(res))
    # A widening needs new consent; a narrowing keeps it.
    lm = "jojo\tmark\t%s\t" % CHAN
    t.ctl_ok(conf, "share", "accept", "--user", "mark", "--from", "jojo", "--channel", CHAN)
    clean_ok(r, "share add --type shares_all over shares: says so, drops the acceptance",
             c("share", "add", "--from", "jojo", "--to", "mark", "--channel", CHAN,
               "--type", "shares_all"),
             "changed from shares to shares_all; 1 acceptance dropped: "
             "recipients must accept again\n")
    res = c("share", "list", "--user", "mark")
    r.check("after the widening mark has not accepted",
            res.rc == 0 and lm + "shares_all\tpending" in res.lines(), repr(res))
    t.ctl_ok(conf, "share", "accept", "--user", "mark", "--from", "jojo", "--channel", CHAN)
    clean_ok(r, "share add --type shares over shares_all: says so",
             c("share", "add", "--from", "jojo", "--to", "mark", "--channel", CHAN),
             "changed from shares_all to shares\n")
    res = c("share", "list", "--user", "mark")
    r.check("after the narrowing mark's acceptance stays",
            res.rc == 0 and lm + "shares\taccepted" in res.lines(), repr(res))
    clean_ok(r, "share add of the same type again: silent",
             c("share", "add", "--from", "jojo", "--to", "mark", "--channel", CHAN), "")
    clean_ok(r, "share del --from jojo --to mark",
             c("share", "del", "--from", "jojo", "--to", "mark", "--channel", CHAN), "")
    res = c("share", "list")
    r.check("share list after share del: only mark's", res.rc == 0 and res.lines() == [l2],
            repr(res))
    clean_ok(r, "share del --from mark --to @partners",
             c("share", "del", "--from", "mark", "--to", "@partners", "--channel", CHAN), "")
    clean_ok(r, "share list when there are none: empty", c("share", "list"), "")


def authkeys(r):
    conf = new_conf(r, "authkeys")
    c = lambda *a: t.ctl(conf, *a)  # noqa: E731
    t.ctl_ok(conf, "user", "add", "jojo")
    t.ctl_ok(conf, "user", "add", "mark")
    res = c("authkey", "add", "--owner", "jojo", "--ident", "jojo-k",
            "--publish", "a.one,a.two", "--subscribe", "a.one")
    gen = res.out.strip()
    r.check("authkey add without --secret prints the generated secret (one line)",
            res.rc == 0 and res.err == "" and len(res.lines()) == 1
            and re.fullmatch(r"\S{16,}", gen) is not None, repr(res))
    res2 = c("authkey", "add", "--owner", "jojo", "--ident", "jojo-k2")
    r.check("two generated secrets differ",
            res2.rc == 0 and res2.out.strip() not in ("", gen), repr(res2))
    clean_ok(r, "authkey add --secret S prints nothing",
             c("authkey", "add", "--owner", "mark", "--ident", "mark-k", "--secret", "s3cret",
               "--publish", "a.one", "--subscribe", "a.one,a.two"), "")
    want = sorted(["jojo-k\towner=jojo\tpublish=a.one,a.two\tsubscribe=a.one",
                   "jojo-k2\towner=jojo\tpublish=\tsubscribe=",
                   "mark-k\towner=mark\tpublish=a.one\tsubscribe=a.one,a.two"])
    clean_ok(r, "authkey add: spaces around list names are ignored",
             c("authkey", "add", "--owner", "mark", "--ident", "mark-sp", "--secret", "s",
               "--publish", " a.one , a.two ", "--subscribe", " "), "")
    res = c("authkey", "show", "mark-sp")
    r.check("the list is a.one and a.two, the blank one empty",
            res.rc == 0 and "\npublish: a.one,a.two\nsubscribe: \n" in res.out, repr(res))
    clean_ok(r, "authkey del mark-sp", c("authkey", "del", "mark-sp"), "")
    clean_ok(r, "authkey add: --publish and --subscribe repeated add up",
             c("authkey", "add", "--owner", "mark", "--ident", "mark-rep", "--secret", "s",
               "--publish", "a.one", "--publish", "a.two,a.three", "--subscribe", "a.one",
               "--subscribe", "a.two"), "")
    res = c("authkey", "show", "mark-rep")
    r.check("the lists hold every occurrence's channels",
            res.rc == 0 and "\npublish: a.one,a.two,a.three\nsubscribe: a.one,a.two\n" in res.out,
            repr(res))
    clean_ok(r, "authkey del mark-rep", c("authkey", "del", "mark-rep"), "")
    for opt, a, b in (("--owner", "jojo", "mark"), ("--ident", "x1", "x2"),
                      ("--secret", "s1", "s2")):
        res = c("authkey", "add", "--owner", "mark", "--ident", "mark-twice", opt, a, opt, b)
        usage_error(r, "authkey add with %s twice" % opt, res)
        r.check("... and the error names it", "%s given more than once" % opt in res.err,
                repr(res))
    one_line_error(r, "no key was made by the refused adds", c("authkey", "show", "mark-twice"))
    res = c("authkey", "list")
    r.check("authkey list: IDENT\\towner=\\tpublish=\\tsubscribe=",
            res.rc == 0 and sorted_lines(res) == want, repr(res))
    res = c("authkey", "list", "--owner", "mark")
    r.check("authkey list --owner mark: only mark's",
            res.rc == 0 and res.lines() == [want[2]], repr(res))
    clean_ok(r, "authkey show jojo-k: fields, the generated secret, zero counters",
             c("authkey", "show", "jojo-k"),
             "ident: jojo-k\nowner: jojo\nsecret: %s\npublish: a.one,a.two\nsubscribe: a.one\n"
             "published: 0 messages, 0 bytes\nreceived: 0 messages, 0 bytes\n" % gen)
    clean_ok(r, "authkey show IDENT as --ident too",
             c("authkey", "show", "--ident", "mark-k"),
             "ident: mark-k\nowner: mark\nsecret: s3cret\npublish: a.one\nsubscribe: a.one,a.two\n"
             "published: 0 messages, 0 bytes\nreceived: 0 messages, 0 bytes\n")
    clean_ok(r, "authkey del mark-k", c("authkey", "del", "mark-k"), "")
    res = c("authkey", "list")
    r.check("authkey list after del: mark-k gone",
            res.rc == 0 and sorted_lines(res) == want[:2], repr(res))
    one_line_error(r, "authkey show of the deleted key", c("authkey", "show", "mark-k"))


def errors(r):
    conf = new_conf(r, "errors")
    c = lambda *a: t.ctl(conf, *a)  # noqa: E731
    worked_example(conf)
    before = t.ctl_ok(conf, "export").out

    one_line_error(r, "user add jojo (duplicate user)", c("user", "add", "jojo"))
    one_line_error(r, "group add partners (duplicate group)",
                   c("group", "add", "partners", "--owner", "mark"))
    one_line_error(r, "user add 'a b' (bad name)", c("user", "add", "a b"))
    for what, res in (("user add @partners", c("user", "add", "@partners")),
                      ("group add @x", c("group", "add", "@x", "--owner", "mark"))):
        one_line_error(r, what + " ('@' first marks a group)", res)
        r.check(what + ": the error says why", "starts with '@'" in res.err, repr(res))
    one_line_error(r, "share add --channel 'a b' (bad channel name)",
                   c("share", "add", "--from", "jojo", "--to", "mark", "--channel", "a b"))
    one_line_error(r, "authkey add --publish 'a b' (bad channel name)",
                   c("authkey", "add", "--owner", "jojo", "--ident", "x", "--publish", "a b"))
    one_line_error(r, "authkey add --subscribe 'a b' (bad channel name)",
                   c("authkey", "add", "--owner", "jojo", "--ident", "x", "--subscribe", "a b"))
    # One rule for channel lists (the console's fields read the same way).
    for lst in ("new.chan; other chan,third", "a,,b", "a,"):
        res = c("authkey", "add", "--owner", "jojo", "--ident", "x", "--publish", lst)
        one_line_error(r, "authkey add --publish %r (not a channel list)" % lst, res)
        r.check("--publish %r: the error states the list rule" % lst,
                "channel names separated by commas" in res.err, repr(res))
    res = c("authkey", "set", "jojo-key", "--subscribe", "new.chan; other chan,third")
    one_line_error(r, "authkey set --subscribe with a space inside a name", res)
    one_line_error(r, "share add --from jojo --to jojo (share to oneself)",
                   c("share", "add", "--from", "jojo", "--to", "jojo", "--channel", CHAN))
    one_line_error(r, "share add --from nobody (unknown user)",
                   c("share", "add", "--from", "nobody", "--to", "mark", "--channel", CHAN))
    one_line_error(r, "share add --to nobody (unknown user)",
                   c("share", "add", "--from", "jojo", "--to", "nobody", "--channel", CHAN))
    one_line_error(r, "share add --to @nogroup (unknown group)",
                   c("share", "add", "--from", "jojo", "--to", "@nogroup", "--channel", CHAN))
    one_line_error(r, "group add --owner nobody (unknown user)",
                   c("group", "add", "g2", "--owner", "nobody"))
    one_line_error(r, "group member add partners nobody (unknown user)",
                   c("group", "member", "add", "partners", "nobody"))
    one_line_error(r, "group member add nogroup alice (unknown group)",
                   c("group", "member", "add", "nogroup", "alice"))
    one_line_error(r, "authkey add --owner nobody (unknown user)",
                   c("authkey", "add", "--owner", "nobody", "--ident", "x"))
    one_line_error(r, "authkey add of an existing ident (duplicate)",
                   c("authkey", "add", "--owner", "eve", "--ident", "jojo-key", "--secret", "z"))
    one_line_error(r, "share accept without an offer",
                   c("share", "accept", "--user", "eve", "--from", "jojo", "--channel", CHAN))
    one_line_error(r, "share accept of an offer on another channel",
                   c("share", "accept", "--user", "mark", "--from", "jojo", "--channel", "x.y"))
    one_line_error(r, "share reject without an offer",
                   c("share", "reject", "--user", "eve", "--from", "jojo", "--channel", CHAN))
    one_line_error(r, "share decline without an offer",
                   c("share", "decline", "--user", "eve", "--from", "jojo", "--channel", CHAN))
    one_line_error(r, "readers --user nobody (unknown user)",
                   c("readers", "--user", "nobody", "--channel", CHAN))
    one_line_error(r, "user del nobody (missing)", c("user", "del", "nobody"))
    one_line_error(r, "group del nogroup (missing)", c("group", "del", "nogroup"))
    one_line_error(r, "group member del partners eve (not a member)",
                   c("group", "member", "del", "partners", "eve"))
    one_line_error(r, "share del of a share that does not exist",
                   c("share", "del", "--from", "jojo", "--to", "eve", "--channel", CHAN))
    one_line_error(r, "authkey del nokey (missing)", c("authkey", "del", "nokey"))
    one_line_error(r, "authkey show nokey (missing)", c("authkey", "show", "nokey"))
    one_line_error(r, "import of a file that does not exist",
                   c("import", os.path.join(r.tmp, "no-such-file.json")))
    after = t.ctl_ok(conf, "export").out
    r.check("failed commands changed nothing (export identical)", after == before)

    usage_error(r, "share add without --channel",
                c("share", "add", "--from", "jojo", "--to", "mark"))
    usage_error(r, "share add without --from", c("share", "add", "--to", "mark", "--channel", CHAN))
    usage_error(r, "share add without --to", c("share", "add", "--from", "jojo", "--channel", CHAN))
    usage_error(r, "share add --type bogus",
                c("share", "add", "--from", "jojo", "--to", "eve", "--channel", CHAN,
                  "--type", "bogus"))
    usage_error(r, "share del without --to", c("share", "del", "--from", "jojo", "--channel", CHAN))
    usage_error(r, "share accept without --user",
                c("share", "accept", "--from", "jojo", "--channel", CHAN))
    usage_error(r, "group add without --owner", c("group", "add", "g3"))
    usage_error(r, "authkey add without --ident", c("authkey", "add", "--owner", "jojo"))
    usage_error(r, "authkey add without --owner", c("authkey", "add", "--ident", "k9"))
    usage_error(r, "readers without --channel", c("readers", "--user", "jojo"))
    usage_error(r, "readers without --user", c("readers", "--channel", CHAN))
    usage_error(r, "graph without --dot", c("graph"))
    usage_error(r, "user add without a name", c("user", "add"))
    usage_error(r, "user frob (unknown verb)", c("user", "frob"))
    usage_error(r, "frobnicate (unknown command)", c("frobnicate"))
    usage_error(r, "no command at all", c())
    usage_error(r, "an unknown option", c("user", "list", "--bogus-option"))
    usage_error(r, "no storage named (no -c, no --auth)", t.ctl_raw([], "user", "list"))
    after = t.ctl_ok(conf, "export").out
    r.check("usage errors changed nothing (export identical)", after == before)
    res = t.ctl_raw(["--help"])
    r.check("--help: exit 0 and the command list",
            res.rc == 0 and all(w in res.out for w in
                                ("user add", "group member", "share accept", "authkey add",
                                 "readers", "graph --dot", "export", "import")), repr(res))


def readers(r):
    conf = new_conf(r, "readers")
    worked_example(conf)
    want = {
        "jojo": {"mark": "jojo -shares-> mark",
                 "alice": "jojo -shares-> mark -shares_all-> @partners"},
        "mark": {"alice": "mark -shares_all-> @partners"},
        "alice": {},
        "eve": {},
    }

    def parse(res):
        rows = [line.split("\t") for line in res.lines()]
        if res.rc != 0 or any(len(x) != 2 for x in rows):
            return None
        users = [x[0] for x in rows]
        if len(set(users)) != len(users):
            return None
        return dict(rows)

    for user, paths in want.items():
        res = t.ctl(conf, "readers", "--user", user, "--channel", CHAN)
        got = parse(res)
        ok = got is not None and sorted(got) == sorted(list(paths) + [user]) and all(
            got[u] == p for u, p in paths.items())
        r.check("readers --user %s: %s, with paths %s" % (
            user, ",".join(sorted(list(paths) + [user])),
            "; ".join("%s<TAB>%s" % kv for kv in paths.items()) or "-"), ok, repr(res))
    res = t.ctl(conf, "readers", "--user", "jojo", "--channel", "other.chan")
    got = parse(res)
    r.check("readers on a channel without shares: the publisher only",
            got is not None and list(got) == ["jojo"], repr(res))

    # The same storage through a require_accept config: offers count once accepted.
    acc = t.write_config(os.path.dirname(conf), {"access": "graph", "require_accept": True},
                         name="accept.conf")
    res = t.ctl(acc, "readers", "--user", "jojo", "--channel", CHAN)
    got = parse(res)
    r.check("readers with require_accept, nothing accepted: jojo only",
            got is not None and list(got) == ["jojo"], repr(res))
    t.ctl_ok(acc, "share", "accept", "--user", "mark", "--from", "jojo", "--channel", CHAN)
    res = t.ctl(acc, "readers", "--user", "jojo", "--channel", CHAN)
    got = parse(res)
    r.check("readers with require_accept, mark accepted jojo: jojo, mark",
            got is not None and sorted(got) == ["jojo", "mark"]
            and got["mark"] == want["jojo"]["mark"], repr(res))
    t.ctl_ok(acc, "share", "accept", "--user", "alice", "--from", "mark", "--channel", CHAN)
    res = t.ctl(acc, "readers", "--user", "jojo", "--channel", CHAN)
    got = parse(res)
    r.check("readers with require_accept, both accepted: as the worked example",
            got is not None and sorted(got) == ["alice", "jojo", "mark"]
            and all(got[u] == p for u, p in want["jojo"].items()), repr(res))


def graph_dot(r):
    conf = new_conf(r, "dot")
    worked_example(conf)
    res = t.ctl(conf, "graph", "--dot")
    r.check("graph --dot: exit 0, a digraph naming every user and the group",
            res.rc == 0 and res.out.lstrip().startswith("digraph")
            and all(n in res.out for n in ("jojo", "mark", "alice", "eve", "partners"))
            and CHAN in res.out, repr(res))
    dot = shutil.which("dot")
    if not r.check("Graphviz 'dot' is installed (needed to render graph --dot)", dot is not None,
                   "install the graphviz package (apt-get install -y graphviz)"):
        return
    d = os.path.dirname(conf)
    src = os.path.join(d, "graph.dot")
    png = os.path.join(d, "out.png")
    with open(src, "w") as f:
        f.write(res.out)
    p = subprocess.run([dot, "-Tpng", "-o", png, src], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    head = b""
    if os.path.exists(png):
        with open(png, "rb") as f:
            head = f.read(8)
    r.check("graph --dot renders with dot -Tpng (exit 0, a PNG, no warnings)",
            p.returncode == 0 and head == b"\x89PNG\r\n\x1a\n" and p.stderr == b"",
            "dot exit %d, stderr %r, head %r" % (p.returncode, p.stderr, head))


def export_import(r):
    conf = new_conf(r, "export-src")
    worked_example(conf)
    t.ctl_ok(conf, "user", "add", "boss", "--admin")
    t.ctl_ok(conf, "share", "accept", "--user", "mark", "--from", "jojo", "--channel", CHAN)
    t.ctl_ok(conf, "share", "decline", "--user", "alice", "--from", "mark", "--channel", CHAN)
    res = t.ctl(conf, "export")
    exported = res.out
    r.check("export holds the decline apart from the acceptances",
            res.rc == 0 and json.loads(exported).get("declines") ==
            [{"user": "alice", "from": "mark", "channel": CHAN}] and
            json.loads(exported).get("accepts") ==
            [{"user": "mark", "from": "jojo", "channel": CHAN}], exported)
    r.check("export to stdout: exit 0, a JSON document",
            res.rc == 0 and exported.lstrip().startswith("{") and "partners" in exported,
            repr(res))
    efile = os.path.join(os.path.dirname(conf), "export.json")
    clean_ok(r, "export FILE: exit 0, nothing on stdout", t.ctl(conf, "export", efile), "")
    with open(efile) as f:
        r.check("export FILE writes the same bytes as export to stdout", f.read() == exported)

    conf2 = new_conf(r, "export-dst")
    clean_ok(r, "import FILE into a fresh database", t.ctl(conf2, "import", efile), "")
    again = t.ctl_ok(conf2, "export").out
    r.check("export -> import into a fresh DB -> export: byte-identical", again == exported,
            "differs:\n%s\n---\n%s" % (exported, again))

    conf3 = new_conf(r, "export-stdin")
    t.ctl_ok(conf3, "user", "add", "zed")
    clean_ok(r, "import - (from stdin) over other data",
             t.ctl(conf3, "import", "-", input=exported.encode()), "")
    again = t.ctl_ok(conf3, "export").out
    r.check("import replaces the previous data: export byte-identical to the source",
            again == exported, "differs:\n%s\n---\n%s" % (exported, again))

    d2 = os.path.dirname(conf2)
    bad_inputs = {
        "malformed JSON": "{ \"format\": \"hpfriends-export\", this is not json",
        "truncated export": exported[: len(exported) // 2],
        "JSON of the wrong shape": "[1, 2, 3]\n",
    }
    for kind, entry in (("users", {"name": "@partners"}),
                        ("groups", {"name": "@x", "owner": "mark", "members": []})):
        doc = json.loads(exported)
        doc[kind].append(entry)
        bad_inputs["a %s name starting with '@'" % kind[:-1]] = json.dumps(doc)
    for what, text in bad_inputs.items():
        path = os.path.join(d2, "bad.json")
        with open(path, "w") as f:
            f.write(text)
        res = t.ctl(conf2, "import", path)
        one_line_error(r, "import of %s" % what, res)
        now = t.ctl_ok(conf2, "export").out
        r.check("after the failed import of %s the previous data is intact "
                "(export identical)" % what, now == exported)
    res = t.ctl(conf2, "import", "-", input=b"{not json")
    one_line_error(r, "import - of malformed JSON", res)
    r.check("after the failed import - the previous data is intact",
            t.ctl_ok(conf2, "export").out == exported)


def audit(r):
    conf = new_conf(r, "audit")
    c = lambda *a: t.ctl(conf, *a)  # noqa: E731
    me = "hpfriendsctl (unix user %s)" % pwd.getpwuid(os.geteuid()).pw_name
    worked_example(conf)
    t.ctl_ok(conf, "user", "passwd", "jojo", input=b"a-console-password\n")
    t.ctl_ok(conf, "authkey", "set", "jojo-key", "--secret", "a-new-secret")
    t.ctl_ok(conf, "user", "admin", "mark", "yes")
    t.ctl_ok(conf, "share", "del", "--from", "jojo", "--to", "mark", "--channel", CHAN)
    r.check("a refused change (user add jojo again) exits 1", c("user", "add", "jojo").rc == 1)

    res = c("audit", "--limit", "1000")
    rows = [line.split("\t") for line in res.lines()]
    r.check("audit: exit 0, ID\tTIME\tACTOR\tACTION\tOBJECT\tDETAIL a line",
            res.rc == 0 and res.err == "" and rows and all(len(x) == 6 for x in rows), repr(res))
    actions = [x[3] for x in rows]
    want = ["share del", "user admin", "authkey set", "user password"] + ["authkey add"] * 4 + \
        ["share set", "share set", "member add", "group add"] + ["user add"] * 4
    r.check("audit: every change, newest first, the refused one not recorded",
            actions == want, "got %r" % actions)
    ids = [int(x[0]) for x in rows]
    r.check("audit: ids fall", ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids))
    r.check("audit: the actor is hpfriendsctl with the unix user",
            all(x[2] == me for x in rows), repr(rows[0]))
    r.check("audit: times are UTC ISO 8601",
            all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", x[1]) for x in rows))
    r.check("audit: objects and details say what changed",
            rows[0][4] == "jojo -> mark on " + CHAN and rows[1][5] == "made an admin"
            and "secret changed" in rows[2][5] and rows[3][5] == "console password set"
            and rows[10][4] == "alice in @partners", repr(rows[:4]))
    secrets = ("jojo-secret", "a-new-secret", "a-console-password", "pbkdf2")
    r.check("audit: no secret, password or password hash in any record",
            not any(s in res.out for s in secrets), res.out)

    res = c("audit", "--user", "mark")
    r.check("audit --user mark: the records about mark's objects only",
            res.rc == 0 and [x.split("\t")[3:5] for x in res.lines()] == [
                ["user admin", "mark"], ["authkey add", "mark-key"],
                ["share set", "mark -> @partners on " + CHAN], ["member add", "alice in @partners"],
                ["group add", "@partners"], ["user add", "mark"]], repr(res))
    res = c("audit", "--limit", "2")
    r.check("audit --limit 2: the newest two", res.lines() == ["\t".join(x) for x in rows[:2]],
            repr(res))
    res = c("audit", "--limit", "2", "--before", rows[1][0])
    r.check("audit --before ID: the page after it",
            res.lines() == ["\t".join(x) for x in rows[2:4]], repr(res))
    res = c("audit", "--actor", "someone else")
    clean_ok(r, "audit --actor: no records of another actor", res, "")
    one_line_error(r, "audit --limit 0", c("audit", "--limit", "0"))
    one_line_error(r, "audit --limit 1001", c("audit", "--limit", "1001"))
    usage_error(r, "audit with a word", c("audit", "everything"))

    efile = os.path.join(os.path.dirname(conf), "audit-export.json")
    t.ctl_ok(conf, "export", efile)
    t.ctl_ok(conf, "import", efile)
    res = c("audit", "--limit", "1")
    row = res.out.rstrip("\n").split("\t")
    r.check("import: one summary record, the trail kept",
            row[3:5] == ["import", "everything"] and "4 users" in row[5]
            and len(c("audit", "--limit", "1000").lines()) == len(rows) + 1, repr(res))

    small = new_conf(r, "audit-keep", {"access": "graph", "audit_keep": 3})
    for u in ("u1", "u2", "u3", "u4", "u5"):
        t.ctl_ok(small, "user", "add", u)
    res = t.ctl(small, "audit")
    r.check("[broker] audit_keep = 3: only the newest three records stay",
            [x.split("\t")[4] for x in res.lines()] == ["u5", "u4", "u3"], repr(res))


if __name__ == "__main__":
    t.main("ctl", [
        ("users and groups", users_groups),
        ("shares and acceptances", shares),
        ("authkeys", authkeys),
        ("errors and exit codes", errors),
        ("readers of the worked example", readers),
        ("graph --dot", graph_dot),
        ("export and import", export_import),
        ("audit trail", audit),
    ])
