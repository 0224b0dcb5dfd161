#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Start a demo broker on 127.0.0.1:10000 with the sharing example of the
# design: jojo shares dionaea.captures with mark, mark re-shares everything
# he reads there with the group "partners", of which alice is a member; eve
# shares with nobody.  Run through `make demo`, which sets BUILDDIR/SRCDIR.
set -eu
: "${BUILDDIR:?}" "${SRCDIR:?}"
export HPFRIENDS_PLUGIN_DIR="$BUILDDIR/plugins/.libs"
conf="$SRCDIR/conf/demo.conf"
ctl() { "$BUILDDIR/core/hpfriendsctl" -c "$conf" "$@"; }
mkdir -p "$SRCDIR/demo"

if [ ! -s "$SRCDIR/demo/hpfriends.db" ]; then
    for u in jojo mark alice eve; do
        ctl user add "$u"
        ctl authkey add --owner "$u" --ident "$u-sensor" --secret "$u-secret" \
            --publish dionaea.captures,cowrie.sessions \
            --subscribe dionaea.captures,cowrie.sessions
    done
    ctl group add partners --owner mark
    ctl group member add partners alice
    ctl share add --from jojo --to mark --channel dionaea.captures --type shares
    ctl share add --from mark --to @partners --channel dionaea.captures --type shares_all
fi

echo "Demo data in $SRCDIR/demo/hpfriends.db"
echo
echo "Authkeys (ident, owner, channels):"
ctl authkey list
echo "(each secret is <user>-secret, e.g. jojo-sensor / jojo-secret)"
echo
echo "Shares:"
ctl share list
echo
echo "Who reads jojo's dionaea.captures:"
ctl readers --user jojo --channel dionaea.captures
echo
echo "Broker listening on 127.0.0.1:10000; Ctrl-C stops it."
exec "$BUILDDIR/core/hpfriendsd" -f -c "$conf"
