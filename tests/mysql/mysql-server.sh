#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# A private MariaDB server for the tests, from Debian's mariadb-server.
#
#   mysql-server.sh start DIR [PORT [WATCH_PID]]   prints "ready PORT" when it takes connections
#   mysql-server.sh stop DIR                       SIGTERM, SIGKILL after 30 s
#   mysql-server.sh kill DIR                       SIGKILL, as a crash would
#
# The first start of DIR installs a data directory there (mariadb-install-db),
# makes a test CA and a server certificate for 127.0.0.1 (DIR/ca.pem), and
# creates two users with real password authentication: hpftest (password
# "hpf:t@st/pw%1", chosen to need %-escapes in a URI) and hpftls (the same
# password, REQUIRE SSL).  Later starts reuse the data.  PORT 0 or none
# picks a free port; a restart passes the old one.  With WATCH_PID, the
# server is killed when that process is gone (a test that crashed leaves no
# server behind).
#
# The server listens on 127.0.0.1 only, and on DIR/sock for the set-up.
# As root it runs with --user=root (mariadbd refuses root otherwise): the
# data directory is a private temporary one, so a separate system user
# would only add a chown.
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|kill DIR [PORT [WATCH_PID]]" >&2; exit 2; }
PASSWORD='hpf:t@st/pw%1'

server_pid() { [ -s "$dir/pid" ] && cat "$dir/pid"; }

wait_gone() { # pid seconds
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -le $(($2 * 20)) ] || return 1
        sleep 0.05
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

as_root() { [ "$(id -u)" -eq 0 ] && echo --user=root || true; }

make_certs() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=hpftest-ca \
        -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
        -keyout "$dir/server-key.pem" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
        -CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null
}

install_db() {
    mkdir -p "$dir"
    make_certs
    mariadb-install-db --no-defaults --datadir="$dir/data" $(as_root) \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        --innodb-log-file-size=8M > "$dir/install.log" 2>&1 ||
        { cat "$dir/install.log" >&2; exit 1; }
    touch "$dir/installed"
}

first_setup() {
    mariadb --no-defaults --socket="$dir/sock" -uroot <<SQL
CREATE USER 'hpftest'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
CREATE USER 'hpftest'@'localhost' IDENTIFIED BY '$PASSWORD';
GRANT ALL ON *.* TO 'hpftest'@'127.0.0.1';
GRANT ALL ON *.* TO 'hpftest'@'localhost';
CREATE USER 'hpftls'@'127.0.0.1' IDENTIFIED BY '$PASSWORD' REQUIRE SSL;
GRANT ALL ON *.* TO 'hpftls'@'127.0.0.1';
SQL
    touch "$dir/users"
}

start() {
    port=${3:-0}
    watch=${4:-}
    [ -f "$dir/installed" ] || install_db
    [ "$port" != 0 ] || port=$(free_port)
    rm -f "$dir/pid"
    mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/sock" --port="$port" \
        --bind-address=127.0.0.1 $(as_root) --pid-file="$dir/pid" --log-error="$dir/error.log" \
        --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=32M \
        --innodb-log-file-size=8M --innodb-flush-log-at-trx-commit=2 --max-connections=200 \
        --ssl-ca="$dir/ca.pem" --ssl-cert="$dir/server.pem" --ssl-key="$dir/server-key.pem" \
        < /dev/null > /dev/null 2>&1 &
    i=0
    until mariadb-admin --no-defaults --socket="$dir/sock" -uroot --connect-timeout=1 ping \
            > /dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 600 ] || ! kill -0 $! 2>/dev/null; then
            echo "mysql-server.sh: mariadbd did not start; $dir/error.log says:" >&2
            tail -20 "$dir/error.log" >&2 2>/dev/null || true
            kill -9 $! 2>/dev/null || true
            exit 1
        fi
        sleep 0.05
    done
    [ -f "$dir/users" ] || first_setup
    if [ -n "$watch" ]; then
        pid=$(server_pid)
        (while kill -0 "$watch" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
         kill -9 "$pid" 2>/dev/null || true) < /dev/null > /dev/null 2>&1 &
    fi
    echo "ready $port"
}

case $cmd in
start) start "$@" ;;
stop)
    pid=$(server_pid) || exit 0
    kill -TERM "$pid" 2>/dev/null || exit 0
    wait_gone "$pid" 30 || { kill -9 "$pid" 2>/dev/null; wait_gone "$pid" 5 || true; }
    ;;
kill)
    pid=$(server_pid) || exit 0
    kill -9 "$pid" 2>/dev/null || exit 0
    wait_gone "$pid" 10 || true
    ;;
*) echo "usage: $0 start|stop|kill DIR [PORT [WATCH_PID]]" >&2; exit 2 ;;
esac
