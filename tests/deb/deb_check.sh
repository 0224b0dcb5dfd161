#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The Debian packages end to end, as an operator meets them: builds them
# with dpkg-buildpackage from a clean clone of this tree's HEAD, lints them,
# installs them with apt-get, runs the packaged hpfriendsd from its unit's
# ExecStart line as the unit's user (no systemd needed), publishes and
# subscribes through it with the packaged hpfeeds-cli using authkeys made
# by the packaged hpfriendsctl, stops it with SIGTERM, builds against the
# -dev packages, then purges everything and lists what purge left.
#
# Needs root and a machine where hpfriends is not installed (purge deletes
# /var/lib/hpfriends).  Run by .ci/run after the test suite, not by make
# check.  Prints PASS/FAIL lines and a summary; exits 1 on any failure.
#
#   tests/deb/deb_check.sh            build, check, purge
#   KEEP=1 tests/deb/deb_check.sh     keep the work directory afterwards
set -uo pipefail

# The packaged broker is started with --pid-file: written, locked, removed
# on SIGTERM (set to 0 to test a build without it).
CHECK_PID_FILE=1

top=$(cd "$(dirname "$0")/../.." && pwd)
# Every package debian/control builds (the stanzas not commented out).
PKGS=$(sed -n 's/^Package: //p' "$top/debian/control" | tr '\n' ' ')
PKGS=${PKGS% }
CHANNEL=deb.check
TIMEOUT=30 # seconds any single wait may take

start=$SECONDS
fails=0
installed=0
daemon_pid=
tmp=

pass() { echo "PASS: $*"; }
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
note() { echo "  $*"; }

cleanup() {
    [ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null
    # A run that stopped half-way still leaves the machine as it found it.
    if [ "$installed" = 1 ]; then
        echo "deb_check: purging after an early stop"
        apt-get purge -y -qq -o DPkg::Lock::Timeout=300 $PKGS >/dev/null 2>&1
        remove_user
    fi
    if [ -n "$tmp" ]; then
        if [ "${KEEP:-0}" = 1 ] || [ "$fails" -ne 0 ]; then
            echo "deb_check: work directory kept: $tmp"
        else
            rm -rf "$tmp"
        fi
    fi
}
trap cleanup EXIT

# The check's own clean-up, so that the next run creates the user anew
# (only a user this run's install created).
remove_user() {
    [ "${user_existed:-1}" = 0 ] || return 0
    deluser --system --quiet hpfriends >/dev/null 2>&1
    getent group hpfriends >/dev/null && delgroup --system --quiet hpfriends >/dev/null 2>&1
    return 0
}

# finish: the summary line, and the exit status.
finish() {
    local took=$((SECONDS - start))
    echo "deb_check: $fails failure(s), took ${took}s"
    [ "$fails" -eq 0 ] && exit 0
    exit 1
}

# fatal MESSAGE: a failure after which the later steps cannot say anything.
fatal() {
    fail "$*"
    finish
}

preconditions() {
    [ "$(id -u)" -eq 0 ] || fatal "needs root (installs and purges packages)"
    local tool
    for tool in git dpkg-buildpackage lintian apt-get setpriv cc make; do
        command -v "$tool" >/dev/null || fatal "$tool not found"
    done
    if [ "$(dpkg-query -W -f='${db:Status-Status}' hpfriends 2>/dev/null)" = installed ]; then
        fatal "hpfriends is installed here already; this check purges it (and /var/lib/hpfriends): purge it first"
    fi
    user_existed=0
    getent passwd hpfriends >/dev/null && user_existed=1
    tmp=$(mktemp -d /tmp/deb_check.XXXXXX) || fatal "mktemp"
    chmod 0755 "$tmp" # the broker's user reads its ready file below it
    # What exists before, so that purge is judged on what the packages did.
    leftovers >"$tmp/before.list"
}

# leftovers: paths named after the project outside the work directory.
leftovers() {
    find /etc /var /lib /usr /run -xdev \( -name '*hpfriends*' -o -name '*hpfeeds*' \) \
        2>/dev/null | grep -v "^$tmp" | grep -v '^/var/cache/apt/' | sort
}

build() {
    local t0=$SECONDS
    git clone -q "$top" "$tmp/src" || fatal "git clone $top"
    echo "deb_check: building $(git -C "$tmp/src" log -1 --format='%h %s' | cut -c1-72)"
    if ! (cd "$tmp/src" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -b -us -uc) >"$tmp/build.log" 2>&1; then
        tail -n 60 "$tmp/build.log"
        fatal "dpkg-buildpackage -b -us -uc (log above; full: $tmp/build.log)"
    fi
    changes=$(ls "$tmp"/*.changes)
    pass "dpkg-buildpackage -b -us -uc ($((SECONDS - t0))s)"
    local p
    for p in $PKGS; do
        [ -f "$(deb_of "$p")" ] || fail "package $p was not built"
    done
}

deb_of() { ls "$tmp/$1"_*.deb 2>/dev/null | head -n 1; }

run_lintian() {
    local t0=$SECONDS out rc
    lintian --fail-on error -I "$changes" >"$tmp/lintian.log" 2>&1
    rc=$?
    out=$(grep -v 'root privileges is not recommended' "$tmp/lintian.log")
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/  lintian: /'
    local e w
    e=$(printf '%s\n' "$out" | grep -c '^E: ')
    w=$(printf '%s\n' "$out" | grep -c '^W: ')
    if [ "$rc" -eq 0 ] && [ "$e" -eq 0 ]; then
        pass "lintian: 0 errors, $w warnings ($((SECONDS - t0))s)"
    else
        fail "lintian: $e errors (exit $rc)"
    fi
}

# The table the issue asks for: size and Depends of every package.
measure() {
    echo "deb_check: packages (Installed-Size, .deb size, Depends)"
    local p deb
    for p in $PKGS; do
        deb=$(deb_of "$p")
        [ -n "$deb" ] || continue
        printf '  %-22s %5s KiB installed, %4s KiB .deb\n' "$p" \
            "$(dpkg-deb -f "$deb" Installed-Size)" "$(du -k "$deb" | cut -f1)"
        printf '  %-22s Depends: %s\n' "" "$(dpkg-deb -f "$deb" Depends)"
    done
    local heavy
    heavy=$(dpkg-deb -f "$(deb_of hpfriends)" Depends | tr ',' '\n' |
        grep -E 'mongoc|bson|nats|libpq|mariadb|mysql|mosquitto|hiredis|curl')
    if [ -z "$heavy" ]; then
        pass "hpfriends depends on none of libmongoc, libnats, libpq, libmariadb, libmosquitto, hiredis, libcurl"
    else
        fail "hpfriends depends on: $heavy"
    fi
}

install_debs() {
    local debs=() p
    for p in $PKGS; do
        debs+=("$(deb_of "$p")")
    done
    installed=1
    if apt-get install -y -q -o DPkg::Lock::Timeout=300 "${debs[@]}" >"$tmp/install.log" 2>&1; then
        pass "apt-get install ./*.deb (without systemd running: $([ -d /run/systemd/system ] && echo no || echo yes))"
    else
        tail -n 30 "$tmp/install.log"
        fatal "apt-get install ./*.deb"
    fi
}

# expect_stat PATH OWNER:GROUP MODE
expect_stat() {
    local got
    got=$(stat -c '%U:%G %a' "$1" 2>/dev/null)
    if [ "$got" = "$2 $3" ]; then
        pass "$1 is $2, mode $3"
    else
        fail "$1: expected $2 mode $3, got '${got:-missing}'"
    fi
}

check_installed() {
    local pw
    pw=$(getent passwd hpfriends)
    if [ -n "$pw" ] && [ "$(echo "$pw" | cut -d: -f3)" -lt 1000 ]; then
        pass "system user: $pw"
    else
        fail "no system user hpfriends ('$pw')"
    fi
    expect_stat /var/lib/hpfriends hpfriends:hpfriends 750
    expect_stat /var/log/hpfriends hpfriends:hpfriends 750
    expect_stat /etc/hpfriends/hpfriendsd.conf root:hpfriends 640
    local conffiles
    conffiles=$(dpkg-query -W -f='${Conffiles}' hpfriends)
    if printf '%s\n' "$conffiles" | grep -q '^ /etc/hpfriends/hpfriendsd.conf '; then
        pass "/etc/hpfriends/hpfriendsd.conf is a conffile"
    else
        fail "/etc/hpfriends/hpfriendsd.conf is not a conffile"
    fi
    if [ -L /etc/systemd/system/multi-user.target.wants/hpfriendsd.service ]; then
        pass "hpfriendsd.service enabled (multi-user.target.wants)"
    else
        fail "hpfriendsd.service not enabled by the postinst"
    fi
    if as_broker /usr/sbin/hpfriendsd -t -c /etc/hpfriends/hpfriendsd.conf >"$tmp/t.log" 2>&1; then
        pass "hpfriendsd -t accepts the packaged config"
    else
        fail "hpfriendsd -t -c /etc/hpfriends/hpfriendsd.conf: $(tail -n 3 "$tmp/t.log")"
    fi
    check_plugin_packages
}

# The plugins of hpfriends-mongodb and hpfriends-nats are where the packaged
# daemon looks for them: a config naming each one passes `hpfriendsd -t`.
check_plugin_packages() {
    printf '[storage]\nplugin = mongodb\nuri = mongodb://127.0.0.1:9/deb\n' >"$tmp/mongo.conf"
    printf '[storage]\nplugin = sqlite\npath = %s/nats.db\n[cluster]\nplugin = cluster_nats\n%s\n' \
        "$tmp" 'servers = nats://127.0.0.1:9
node = deb
allow_anonymous = true' >"$tmp/nats.conf"
    local c
    for c in mongo nats; do
        if /usr/sbin/hpfriendsd -t -c "$tmp/$c.conf" >"$tmp/$c.log" 2>&1; then
            pass "packaged $c plugin loads (hpfriendsd -t)"
        else
            fail "hpfriendsd -t with the $c plugin: $(tail -n 3 "$tmp/$c.log")"
        fi
    done
}

# as_broker CMD...: runs CMD as the unit's user, with a clean environment
# and no capabilities, in /, as systemd would.
as_broker() {
    (cd / && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        setpriv --reuid="$unit_user" --regid="$unit_group" --init-groups --inh-caps=-all "$@")
}

read_unit() {
    local unit=/lib/systemd/system/hpfriendsd.service
    [ -f "$unit" ] || fatal "$unit not installed"
    unit_user=$(sed -n 's/^User=//p' "$unit" | tail -n 1)
    unit_group=$(sed -n 's/^Group=//p' "$unit" | tail -n 1)
    unit_group=${unit_group:-$unit_user}
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit" | tail -n 1)
    exec_start=${exec_start#[-@:+!]} # systemd's prefixes
    if [ "$unit_user" = hpfriends ] && [ -n "$exec_start" ]; then
        pass "unit: User=$unit_user ExecStart=$exec_start"
    else
        fatal "unit: User='$unit_user' ExecStart='$exec_start'"
    fi
    case $exec_start in
    *%*) fatal "ExecStart has systemd specifiers; this check cannot run it" ;;
    esac
}

make_keys() {
    local ctl=(as_broker /usr/bin/hpfriendsctl -c /etc/hpfriends/hpfriendsd.conf)
    "${ctl[@]}" user add sensorop >>"$tmp/ctl.log" 2>&1 &&
        "${ctl[@]}" user add analyst >>"$tmp/ctl.log" 2>&1 &&
        "${ctl[@]}" share add --from sensorop --to analyst --channel "$CHANNEL" \
            >>"$tmp/ctl.log" 2>&1 &&
        pub_secret=$("${ctl[@]}" authkey add --owner sensorop --ident deb-sensor \
            --publish "$CHANNEL" 2>>"$tmp/ctl.log") &&
        sub_secret=$("${ctl[@]}" authkey add --owner analyst --ident deb-sink \
            --subscribe "$CHANNEL" 2>>"$tmp/ctl.log")
    if [ $? -eq 0 ] && [ -n "$pub_secret" ] && [ -n "$sub_secret" ]; then
        pass "hpfriendsctl (as hpfriends): two users, a share, two authkeys with generated secrets"
    else
        cat "$tmp/ctl.log"
        fatal "hpfriendsctl could not set up the graph"
    fi
    local owner
    owner=$(stat -c %U:%G /var/lib/hpfriends/hpfriends.db 2>/dev/null)
    [ "$owner" = hpfriends:hpfriends ] && pass "the database is hpfriends's own" ||
        fail "/var/lib/hpfriends/hpfriends.db owned by '${owner:-missing}'"
}

start_daemon() {
    local args
    mkdir -p "$tmp/run" && chown "$unit_user:$unit_group" "$tmp/run"
    set +u
    eval "args=($exec_start)"
    set -u
    args+=(--ready-file "$tmp/run/ready")
    [ "$CHECK_PID_FILE" = 1 ] && args+=(--pid-file "$tmp/run/hpfriendsd.pid")
    # One subshell that execs: $! is the daemon itself (as_broker, a
    # function, would put a shell between).
    (cd / && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        setpriv --reuid="$unit_user" --regid="$unit_group" --init-groups --inh-caps=-all \
        "${args[@]}") >"$tmp/daemon.log" 2>&1 &
    daemon_pid=$!
    local i
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        [ -s "$tmp/run/ready" ] && break
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    port=$(awk '$1 == "tcp" { print $3; exit }' "$tmp/run/ready" 2>/dev/null)
    if [ -n "$port" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        pass "packaged hpfriendsd listening on 127.0.0.1:$port (pid $daemon_pid)"
    else
        tail -n 20 "$tmp/daemon.log"
        fatal "packaged hpfriendsd did not come up"
    fi
}

check_process() {
    local want got
    want=$(id -u hpfriends)
    got=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$daemon_pid/status")
    if [ "$got" = "$want $want $want $want" ]; then
        pass "process uid is hpfriends ($want) for real, effective, saved and fs uid"
    else
        fail "process uids: '$got', expected $want"
    fi
    got=$(awk '/^CapEff:/ { print $2 }' "/proc/$daemon_pid/status")
    [ "$got" = 0000000000000000 ] && pass "process has no effective capabilities" ||
        fail "process capabilities: $got"
    if [ "$CHECK_PID_FILE" = 1 ]; then
        got=$(cat "$tmp/run/hpfriendsd.pid" 2>/dev/null)
        [ "$got" = "$daemon_pid" ] && pass "pid file holds $got" ||
            fail "pid file holds '$got', expected $daemon_pid"
    else
        note "pid file: not checked (CHECK_PID_FILE=0 until --pid-file exists)"
    fi
}

# A subscriber as analyst; sensorop publishes until it has its message
# (a publish that raced ahead of the SUBSCRIBE is simply repeated).
pub_sub() {
    local cli=/usr/bin/hpfeeds-cli i
    "$cli" sub --port "$port" --ident deb-sink --secret "$sub_secret" --channel "$CHANNEL" \
        --count 1 --timeout "$TIMEOUT" --verbose >"$tmp/sub.out" 2>"$tmp/sub.err" &
    local sub_pid=$!
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        grep -q 'subscribed to' "$tmp/sub.err" && break
        kill -0 "$sub_pid" 2>/dev/null || break
        sleep 0.1
    done
    for ((i = 0; i < TIMEOUT * 2; i++)); do
        kill -0 "$sub_pid" 2>/dev/null || break
        "$cli" pub --port "$port" --ident deb-sensor --secret "$pub_secret" \
            --channel "$CHANNEL" "hello from the package $i" >>"$tmp/pub.log" 2>&1
        sleep 0.5
    done
    wait "$sub_pid"
    local rc=$?
    if [ "$rc" -eq 0 ] && grep -q "^$CHANNEL deb-sensor hello from the package" "$tmp/sub.out"; then
        pass "hpfeeds-cli: deb-sink received '$(head -n 1 "$tmp/sub.out")' through the share"
    else
        fail "hpfeeds-cli sub exit $rc: out '$(cat "$tmp/sub.out")' err '$(tail -n 3 "$tmp/sub.err")' pub '$(tail -n 3 "$tmp/pub.log")'"
    fi
}

stop_daemon() {
    kill -TERM "$daemon_pid"
    local i
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$daemon_pid" 2>/dev/null; then
        fail "hpfriendsd still running ${TIMEOUT}s after SIGTERM"
        kill -KILL "$daemon_pid"
    fi
    wait "$daemon_pid"
    local rc=$?
    daemon_pid=
    if [ "$rc" -eq 0 ]; then
        pass "SIGTERM: hpfriendsd exited with status 0"
    else
        tail -n 20 "$tmp/daemon.log"
        fail "SIGTERM: hpfriendsd exited with status $rc"
    fi
    if [ "$CHECK_PID_FILE" = 1 ]; then
        [ -e "$tmp/run/hpfriendsd.pid" ] && fail "pid file left after exit" ||
            pass "pid file removed on exit"
    fi
}

# The -dev packages as a third party uses them: the example sink against
# hpfriends-plugin.pc, a client program against hpfeeds-client.pc, both with
# the system's pkg-config path only (not /usr/local).
check_dev() {
    local pc ma
    ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
    pc="env PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/usr/lib/$ma/pkgconfig:/usr/share/pkgconfig pkg-config"
    cp -r /usr/share/doc/hpfriends-dev/examples/example-sink "$tmp/sink"
    if make -s -C "$tmp/sink" PKG_CONFIG="$pc" >"$tmp/sink.log" 2>&1 && [ -f "$tmp/sink/sink_example.so" ]; then
        pass "hpfriends-dev: the example sink builds against hpfriends-plugin.pc"
    else
        fail "hpfriends-dev: example sink: $(tail -n 5 "$tmp/sink.log")"
    fi
    printf '#include <hpfeeds-client.h>\n#include <stdio.h>\nint main(void)\n{\n    puts(hpfc_strerror(0));\n    return 0;\n}\n' >"$tmp/client.c"
    local libs=
    # shellcheck disable=SC2046
    cc -o "$tmp/client" "$tmp/client.c" $($pc --cflags --libs hpfeeds-client) >"$tmp/client.log" 2>&1 &&
        "$tmp/client" >>"$tmp/client.log" 2>&1 && libs=$(ldd "$tmp/client")
    # (ldd into a variable: grep -q closing the pipe early would fail it)
    if printf '%s\n' "$libs" | grep -Eq '=> /(usr/)?lib/[^ ]+/libhpfeeds-client\.so\.0 '; then
        pass "libhpfeeds-client-dev: a program builds with hpfeeds-client.pc and runs on libhpfeeds-client.so.0"
    else
        fail "libhpfeeds-client-dev: $(tail -n 5 "$tmp/client.log") ${libs:-no ldd output}"
    fi
}

purge() {
    if apt-get purge -y -q -o DPkg::Lock::Timeout=300 $PKGS >"$tmp/purge.log" 2>&1; then
        installed=0
        pass "apt-get purge $PKGS"
    else
        tail -n 20 "$tmp/purge.log"
        fatal "apt-get purge"
    fi
    local p st left
    for p in $PKGS; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
        [ -z "$st" ] || [ "$st" = not-installed ] || fail "$p is '$st' after purge"
    done
    leftovers >"$tmp/after.list"
    left=$(comm -13 "$tmp/before.list" "$tmp/after.list")
    if [ -z "$left" ]; then
        pass "purge removed every file and directory (config, unit, enable link, /var/lib/hpfriends, /var/log/hpfriends)"
    else
        fail "purge left files behind:"
        echo "$left" | sed 's/^/    /'
    fi
    if getent passwd hpfriends >/dev/null; then
        note "purge leaves (by design): the system user and group hpfriends ($(id hpfriends))"
        remove_user
    else
        fail "purge removed the hpfriends user (Debian keeps system users)"
    fi
}

preconditions
build
run_lintian
measure
install_debs
read_unit
check_installed
make_keys
start_daemon
check_process
pub_sub
stop_daemon
check_dev
purge
finish
