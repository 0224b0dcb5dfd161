#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The installed plugin SDK, end to end.  Run after
#   ./configure --prefix=PREFIX && make install
# as: sh tests/sinks/sdk_check.sh PREFIX
#
# Builds sdk/example-sink out of tree with its plain Makefile against
# PREFIX/lib/pkgconfig only, installs it into the plugindir named by
# hpfriends-plugin.pc, runs PREFIX/sbin/hpfriendsd (HPFRIENDS_PLUGIN_DIR
# unset, so the installed default plugin directory is used) with
# `[sink:stats] plugin = example`, publishes, SIGHUPs, SIGTERMs, and checks
# the summary file.  Prints one line per check and "N passed, N failed";
# exits non-zero on any failure.  Needs python3, pkg-config, make, cc.
set -eu
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 PREFIX   (a prefix hpfriends was installed into)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(cd "$1" && pwd)
unset HPFRIENDS_PLUGIN_DIR PKG_CONFIG_PATH HPFRIENDSD HPF_BUILDDIR
exec python3 "$here/test_example_sink.py" --installed "$prefix"
