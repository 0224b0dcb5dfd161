#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# A private PostgreSQL server for the tests: Debian's postgresql binaries,
# a cluster in a new temporary directory, listening on 127.0.0.1 only on a
# free port, its unix socket in that directory, trust authentication for
# the superuser `postgres`.  PostgreSQL refuses to run as root: as root the
# server runs as the system user `postgres` (Debian's package makes it),
# else `nobody`; as anyone else, as that user.
#
#   pg-server.sh start [--tls] [--owner PID]   prints "ready PORT DIR"
#   pg-server.sh stop DIR      fast shutdown; the data stays (an outage)
#   pg-server.sh resume DIR    start again, same port and data
#   pg-server.sh destroy DIR   stop at once and remove DIR
#
# --tls: a self-signed certificate for 127.0.0.1/localhost, ssl = on; the
# certificate is DIR/ca.crt (for sslrootcert=); DIR/other.crt is one that
# did not sign it.  --owner PID: a watcher
# destroys the server when process PID is gone (a test that crashed).
# PG_BINDIR overrides where initdb/pg_ctl are (default: the newest
# /usr/lib/postgresql/N/bin, preferring 15).
set -eu

die() { echo "pg-server.sh: $*" >&2; exit 1; }

bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
    if [ -x /usr/lib/postgresql/15/bin/initdb ]; then echo /usr/lib/postgresql/15/bin; return; fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || die "no PostgreSQL server binaries (apt-get install postgresql)"
    echo "$d"
}

BIN=$(bindir)
[ -x "$BIN/initdb" ] && [ -x "$BIN/pg_ctl" ] || die "$BIN has no initdb/pg_ctl (apt-get install postgresql)"

# Run a command as the server's user.
if [ "$(id -u)" -eq 0 ]; then
    if getent passwd postgres >/dev/null; then RUNAS=postgres; else RUNAS=nobody; fi
    as_user() { runuser -u "$RUNAS" -- "$@"; }
else
    RUNAS=$(id -un)
    as_user() { "$@"; }
fi

port_free() {
    # nothing accepts on it (bash-less: ask python3 when there, else assume free)
    if command -v python3 >/dev/null 2>&1; then
        python3 -c "import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(('127.0.0.1', int(sys.argv[1])))
except OSError: sys.exit(1)" "$1"
    fi
}

make_cert() {
    dir=$1
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$dir/data/server.key" -out "$dir/data/server.crt" >/dev/null 2>&1 ||
        die "openssl could not make a test certificate"
    cp "$dir/data/server.crt" "$dir/ca.crt"
    # a root that did not sign the server's certificate, for the refusal tests
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
        -keyout /dev/null -out "$dir/other.crt" >/dev/null 2>&1 ||
        die "openssl could not make a second test certificate"
    chown "$RUNAS" "$dir/data/server.key" "$dir/data/server.crt"
    chmod 600 "$dir/data/server.key"
    chmod 644 "$dir/ca.crt" "$dir/other.crt"
    echo "ssl = on" >>"$dir/data/postgresql.conf"
}

start_on() {
    as_user "$BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 start >/dev/null 2>&1
}

cmd_start() {
    tls=0 owner=""
    while [ $# -gt 0 ]; do
        case $1 in
        --tls) tls=1 ;;
        --owner) owner=$2; shift ;;
        *) die "start: unknown option $1" ;;
        esac
        shift
    done
    dir=$(mktemp -d "${TMPDIR:-/tmp}/hpf-pg-XXXXXX")
    chmod 755 "$dir"
    [ "$RUNAS" = "$(id -un)" ] || chown "$RUNAS" "$dir"
    as_user "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C -N \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; die "initdb failed"; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 40
log_min_messages = warning
CONF
    [ "$tls" = 0 ] || make_cert "$dir"
    tries=0
    while :; do
        tries=$((tries + 1))
        port=$(( ($(od -An -N2 -tu2 /dev/urandom) % 30000) + 20000 ))
        port_free "$port" || continue
        echo "port = $port" >>"$dir/data/postgresql.conf"
        if start_on "$dir"; then break; fi
        [ $tries -lt 8 ] || { cat "$dir/server.log" >&2; rm -rf "$dir"; die "the server did not start"; }
    done
    echo "$port" >"$dir/port"
    if [ -n "$owner" ]; then
        setsid sh -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" destroy "$3"' \
            watcher "$owner" "$0" "$dir" </dev/null >/dev/null 2>&1 &
    fi
    echo "ready $port $dir"
}

check_dir() {
    [ -n "${1:-}" ] && [ -f "$1/port" ] && [ -d "$1/data" ] || die "$1 is not a pg-server.sh directory"
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop)
    check_dir "${2:-}"
    as_user "$BIN/pg_ctl" -D "$2/data" -m fast -w -t 60 stop >/dev/null ;;
resume)
    check_dir "${2:-}"
    start_on "$2" || { tail -n 20 "$2/server.log" >&2; die "the server did not start again"; } ;;
destroy)
    check_dir "${2:-}"
    as_user "$BIN/pg_ctl" -D "$2/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
    rm -rf "$2" ;;
*) die "usage: pg-server.sh start [--tls] [--owner PID] | stop DIR | resume DIR | destroy DIR" ;;
esac
