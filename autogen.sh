#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Prepare a fresh checkout for ./configure.  On Debian, installs the build
# dependencies first when some are missing (needs root).
set -e
cd "$(dirname "$0")"

PKGS="autoconf automake libtool pkg-config make gcc libevent-dev libglib2.0-dev \
libjson-glib-dev libssl-dev libsqlite3-dev libmongoc-dev libbson-dev libcunit1-dev \
sqlite3 python3 graphviz rsyslog libnats-dev nats-server chromium libpq-dev postgresql"
# the man pages: scdoc builds them, mandoc lints them in make check
PKGS="$PKGS scdoc mandoc"
# Running as a service: sd_notify (libsystemd); systemd-analyze and logrotate
# for the tests of the units and the logrotate snippet.
PKGS="$PKGS libsystemd-dev systemd logrotate"
# the networked sinks and the servers their tests start
PKGS="$PKGS libmosquitto-dev mosquitto libhiredis-dev redis-server libcurl4-openssl-dev"

# storage_mysql and its tests (a private mariadbd)
PKGS="$PKGS libmariadb-dev mariadb-server"

if [ -x /usr/bin/dpkg-query ] && [ "${HPF_NO_APT:-}" != 1 ]; then
    missing=""
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "autogen.sh: missing Debian packages:$missing (run as root to install)" >&2
            exit 1
        fi
        echo "autogen.sh: installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
    fi
fi

# The MongoDB-wire server the storage tests start (npm packages, once).
if [ -f tests/mongo/setup.sh ] && [ "${HPF_NO_NPM:-}" != 1 ]; then
    sh tests/mongo/setup.sh ||
        echo "autogen.sh: warning: tests/mongo/setup.sh failed; the mongodb storage tests will fail" >&2
fi
# playwright-core for the console's browser test (Debian's chromium is the browser).
if [ -f tests/web/setup.sh ] && [ "${HPF_NO_NPM:-}" != 1 ]; then
    sh tests/web/setup.sh ||
        echo "autogen.sh: warning: tests/web/setup.sh failed; the console's browser test will fail" >&2
fi

mkdir -p m4 build-aux
autoreconf --install --force
