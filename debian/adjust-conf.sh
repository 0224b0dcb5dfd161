#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Makes the sample config a working Debian one: its storage path, relative
# to the config's own directory in the sample, becomes the state directory
# the package creates (/var/lib/hpfriends; /etc stays read-only to the
# broker).  Fails the build when the sample no longer has the line it edits,
# so a changed sample is looked at rather than shipped pointing into /etc.
set -eu
conf=$1
db=/var/lib/hpfriends/hpfriends.db
sed -i "s|^path = hpfriends\\.db\$|path = $db|" "$conf"
if ! grep -qx "path = $db" "$conf"; then
    echo "adjust-conf.sh: $conf has no 'path = $db' line; update debian/adjust-conf.sh" >&2
    exit 1
fi
