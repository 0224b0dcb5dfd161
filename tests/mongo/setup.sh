#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Installs the MongoDB-wire test server's npm packages (CongoDB) into
# tests/mongo/node_modules, once: does nothing when they are there.
# Needs node and npm (Debian 12 machines here come with Node.js 20 and npm).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tests/mongo/setup.sh: node and npm are needed (apt-get install nodejs npm)" >&2
    exit 1
fi
if [ -f "$here/node_modules/@push.rocks/smartmongo/package.json" ]; then
    exit 0
fi
cd "$here"
# package-lock.json pins every version; ci installs exactly those.
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund
else
    npm install --no-audit --no-fund
fi
