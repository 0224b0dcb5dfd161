#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Start or stop the MongoDB-wire test server (server.mjs) from a shell.
#
#   tests/mongo/mongo-server.sh start STATEDIR [PORT]   prints the port
#   tests/mongo/mongo-server.sh stop STATEDIR
#
# STATEDIR keeps server.pid, server.port and server.log.  PORT 0 or none
# takes a free port.  Run tests/mongo/setup.sh first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop STATEDIR [PORT]" >&2; exit 2; }
case $cmd in
start)
    mkdir -p "$dir"
    : > "$dir/server.log"
    node "$here/server.mjs" --port "${3:-0}" > "$dir/server.log" 2>&1 < /dev/null &
    echo $! > "$dir/server.pid"
    i=0
    while [ $i -lt 150 ]; do
        if port=$(sed -n 's/^ready \([0-9][0-9]*\)$/\1/p' "$dir/server.log") && [ -n "$port" ]; then
            echo "$port" > "$dir/server.port"
            echo "$port"
            exit 0
        fi
        if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
            echo "mongo test server exited:" >&2
            cat "$dir/server.log" >&2
            exit 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    echo "mongo test server not ready after 15 s" >&2
    kill "$(cat "$dir/server.pid")" 2>/dev/null || true
    exit 1
    ;;
stop)
    if [ -f "$dir/server.pid" ]; then
        kill "$(cat "$dir/server.pid")" 2>/dev/null || true
        rm -f "$dir/server.pid" "$dir/server.port"
    fi
    ;;
*)
    echo "usage: $0 start|stop STATEDIR [PORT]" >&2
    exit 2
    ;;
esac
