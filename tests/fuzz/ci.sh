#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ci.sh [SECONDS_PER_TARGET] [BUILD_DIR]
#
# The fuzzing step of .ci/run: every libFuzzer target of tests/fuzz/, built
# with clang under ASan + UBSan, runs for SECONDS_PER_TARGET (default 60) on
# its committed corpus, one after the other (run-fuzzers.sh does the build
# and the runs; BUILD_DIR is its HPF_FUZZ_BUILDDIR, default ./_fuzz).
#
# Fails (exit 1) when a target crashed, leaked, timed out or ran out of
# memory (run-fuzzers.sh prints the minimized input as hex), and also when
# a target did not run for the whole time or executed nothing, so a run
# that silently stopped early is not taken for a clean one.  Exit 2 when
# the build failed.  Ends with one line per target: executions, seconds,
# executions per second.
set -u

seconds=${1:-60}
case $seconds in '' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET] [BUILD_DIR]" >&2
    exit 2
    ;;
esac
builddir=${2:-$PWD/_fuzz}
here=$(cd "$(dirname "$0")" && pwd)
targets="fuzz_wire fuzz_session fuzz_config fuzz_import fuzz_file_storage fuzz_console
    fuzz_nats_codec fuzz_mongo_read"

rc=0
HPF_FUZZ_BUILDDIR=$builddir HPF_FUZZ_TARGETS=$targets HPF_FUZZ_JOBS=1 \
    bash "$here/run-fuzzers.sh" "$seconds" || rc=$?
[ "$rc" -eq 2 ] && exit 2

echo ""
echo "==== fuzz executions per target ===="
for t in $targets; do
    log=$builddir/run/$t/log
    # libFuzzer's last words after -max_total_time: "Done N runs in S second(s)"
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" 2>/dev/null | tail -n 1)
    runs=$(printf '%s' "$done_line" | sed -n 's/^Done \([0-9]*\) runs.*/\1/p')
    secs=$(printf '%s' "$done_line" | sed -n 's/.* in \([0-9]*\) second.*/\1/p')
    if [ -z "$runs" ] || [ -z "$secs" ]; then
        echo "$t: FAILED: no 'Done N runs in S seconds' line in $log"
        rc=1
        continue
    fi
    if [ "$runs" -eq 0 ] || [ "$secs" -lt "$seconds" ]; then
        echo "$t: FAILED: $runs executions in $secs s (wanted $seconds s)"
        rc=1
        continue
    fi
    echo "$t: $runs executions in $secs s ($((runs / secs))/s)"
done
[ "$rc" -eq 0 ] && echo "fuzzing: every target ran ${seconds} s without a finding"
exit "$rc"
