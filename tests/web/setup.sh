#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Installs playwright-core and axe-core (pinned in package-lock.json) into
# tests/web/node_modules, once: does nothing when both are there.  The
# browser is Debian's chromium (apt-get install chromium), never a download.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tests/web/setup.sh: node and npm are needed" >&2
    exit 1
fi
if [ -f "$here/node_modules/playwright-core/package.json" ] &&
   [ -f "$here/node_modules/axe-core/axe.min.js" ]; then
    exit 0
fi
cd "$here"
# No browser downloads: the test uses /usr/bin/chromium.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
