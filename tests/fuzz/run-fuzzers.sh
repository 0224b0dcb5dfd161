#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# run-fuzzers.sh [SECONDS_PER_TARGET]
#
# Build the libFuzzer targets of tests/fuzz/ with clang under ASan + UBSan,
# run each for SECONDS_PER_TARGET (default 60) on a copy of its committed
# corpus (tests/fuzz/corpus/<target>/), and report per target: executions,
# coverage, and any crash, leak, timeout or out-of-memory, with the input
# minimized and printed as hex.  Exit status: 0 when every target ran its
# time cleanly, 1 when one found something, 2 when the build failed.
#
# fuzz_mongo_read needs libmongoc (configure's BUILD_MONGODB): without it
# the build has no such target and the run stops with exit 2.
#
# Usable from a fresh clone, after `./autogen.sh && ./configure` (in the
# source tree or out of it), as `make fuzz [FUZZ_SECONDS=N]` or directly:
#     tests/fuzz/run-fuzzers.sh 60
#
# How: libFuzzer may only be linked into the fuzz programs, and the normal
# build is gcc, so the targets get a build tree of their own, configured
# with clang and "-fsanitize=fuzzer-no-link,address,undefined" for
# everything (core, plugins) and linked with -fsanitize=fuzzer
# (tests/fuzz/local.mk declares them as EXTRA_PROGRAMS, built only on
# request: `make fuzz-programs`).  That tree is $HPF_FUZZ_BUILDDIR
# (default ./build-fuzz, which `make fuzz` puts in the build directory):
#     obj/    the clang build (kept: the next run only rebuilds what changed)
#     src/    a copy of the sources, only when the source tree is configured
#             in place: automake refuses a second, out-of-tree configure of
#             such a tree, so the git-known files (committed or not, minus
#             ignored ones) are copied and autoreconf'd
#     run/<target>/  the corpus copy, the log, crash artifacts
# The committed corpus only changes when asked: HPF_FUZZ_MERGE=1 merges
# what a run found into it (libFuzzer -merge=1: only inputs adding coverage).
#
# Environment:
#     HPF_FUZZ_BUILDDIR  where the clang build and runs go (default ./build-fuzz)
#     HPF_FUZZ_TARGETS   targets to run (default: all of them)
#     HPF_FUZZ_JOBS      targets run at once (default 1)
#     HPF_FUZZ_MERGE=1   merge new coverage into tests/fuzz/corpus/
#     HPF_FUZZ_RUNS=N    run each target for N executions (libFuzzer -runs=N)
#                        instead of SECONDS_PER_TARGET: `make fuzz-long`
#     CC, FUZZ_CFLAGS    compiler (clang) and its flags for the fuzz build
#     ASAN_OPTIONS, UBSAN_OPTIONS  passed on (defaults set when unset)
set -u

seconds=${1:-60}
case $seconds in '' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
    ;;
esac
case ${HPF_FUZZ_RUNS-1} in '' | *[!0-9]*)
    echo "$0: HPF_FUZZ_RUNS must be a number of executions" >&2
    exit 2
    ;;
esac

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
all_targets="fuzz_wire fuzz_session fuzz_config fuzz_import fuzz_file_storage fuzz_console
    fuzz_nats_codec fuzz_mongo_read"
targets=${HPF_FUZZ_TARGETS:-$all_targets}
jobs=${HPF_FUZZ_JOBS:-1}
fuzzdir=${HPF_FUZZ_BUILDDIR:-$PWD/build-fuzz}
mkdir -p "$fuzzdir" && fuzzdir=$(cd "$fuzzdir" && pwd)
obj=$fuzzdir/obj
export CC=${CC:-clang}
cflags=${FUZZ_CFLAGS:--g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all}
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)

say() { printf '%s\n' "$*"; }
hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }

# ---- the sources the clang build is configured from ----
if [ -f "$srcdir/config.status" ]; then
    # Configured in place: build from a clean copy.
    if ! git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        say "run-fuzzers: $srcdir is configured in place and is not a git checkout;" >&2
        say "run-fuzzers: run 'make distclean' there and build out of tree instead" >&2
        exit 2
    fi
    src=$fuzzdir/src
    mkdir -p "$src"
    # tar keeps modification times, so unchanged files are not rebuilt next time.
    (cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
        tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$src" -xf - || {
        say "run-fuzzers: copying the sources to $src failed" >&2
        exit 2
    }
    if [ ! -x "$src/configure" ]; then
        say "run-fuzzers: autoreconf in $src"
        (cd "$src" && HPF_NO_APT=1 ./autogen.sh) >"$fuzzdir/autogen.log" 2>&1 || {
            tail -n 30 "$fuzzdir/autogen.log" >&2
            exit 2
        }
    fi
else
    src=$srcdir
    if [ ! -x "$src/configure" ]; then
        say "run-fuzzers: $src has no configure script: run ./autogen.sh first" >&2
        exit 2
    fi
fi

# ---- the clang build ----
mkdir -p "$obj"
# Trees configured before fuzz_mongo_read existed left the MongoDB plugin out.
if [ -f "$obj/config.status" ] && grep -q -- '--disable-mongodb' "$obj/config.status"; then
    rm -f "$obj/config.status"
fi
if [ ! -f "$obj/config.status" ]; then
    say "run-fuzzers: configuring the clang fuzz build in $obj"
    (cd "$obj" && "$src/configure" CC="$CC" CFLAGS="$cflags" \
        LDFLAGS="-fsanitize=address,undefined") \
        >"$fuzzdir/configure.log" 2>&1 || {
        tail -n 30 "$fuzzdir/configure.log" >&2
        say "run-fuzzers: configure failed (log: $fuzzdir/configure.log)" >&2
        exit 2
    }
fi
say "run-fuzzers: building the fuzz programs (log: $fuzzdir/build.log)"
make -C "$obj" -j"$ncpu" fuzz-programs >"$fuzzdir/build.log" 2>&1 || {
    tail -n 40 "$fuzzdir/build.log" >&2
    say "run-fuzzers: build failed" >&2
    exit 2
}

# ---- running ----
# Scratch files of the targets (SQLite, JSON files) on tmpfs when there is one.
scratch_parent=/dev/shm
[ -d "$scratch_parent" ] && [ -w "$scratch_parent" ] || scratch_parent=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch_parent/hpf-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export HPFRIENDS_PLUGIN_DIR=$obj/plugins/.libs

# Run one target; its verdict goes to run/<target>/verdict.
run_one() {
    local t=$1 bin=$obj/tests/fuzz/$1 work=$fuzzdir/run/$1
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts" "$scratch/$t"
    if [ -d "$srcdir/tests/fuzz/corpus/$t" ]; then
        cp -pR "$srcdir/tests/fuzz/corpus/$t/." "$work/corpus/"
    fi
    local rc=0 limit=-max_total_time=$seconds
    [ -n "${HPF_FUZZ_RUNS:-}" ] && limit=-runs=$HPF_FUZZ_RUNS
    (cd "$work" && TMPDIR="$scratch/$t" "$bin" "$limit" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
        "$work/corpus") >"$work/log" 2>&1 || rc=$?
    echo "$rc" >"$work/rc"
}

budget="$seconds s"
[ -n "${HPF_FUZZ_RUNS:-}" ] && budget="$HPF_FUZZ_RUNS executions"
failed=0
set -- $targets
while [ $# -gt 0 ]; do
    batch=""
    for _ in $(seq 1 "$jobs"); do
        [ $# -gt 0 ] || break
        batch="$batch $1"
        shift
    done
    say "run-fuzzers: running$batch for $budget each"
    for t in $batch; do
        if [ ! -x "$obj/tests/fuzz/$t" ]; then
            say "run-fuzzers: no such target: $t" >&2
            exit 2
        fi
        run_one "$t" &
    done
    wait
done

say ""
say "==== fuzz results ($budget per target, ASan+UBSan) ===="
for t in $targets; do
    work=$fuzzdir/run/$t
    rc=$(cat "$work/rc" 2>/dev/null || echo '?')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" | tail -n 1)
    [ -n "$runs" ] || runs=$(printf '%s' "$done_line" | sed -n 's/^#\([0-9]*\).*/\1/p')
    cov=$(printf '%s' "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s' "$done_line" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(printf '%s' "$done_line" | sed -n 's/.*corp: \([^ ]*\).*/\1/p')
    found=$(ls "$work/artifacts" 2>/dev/null | grep -E '^(crash|leak|timeout|oom)-' || true)
    if [ "$rc" = 0 ] && [ -z "$found" ]; then
        say "$t: OK: ${runs:-?} runs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
    else
        failed=1
        say "$t: FAILED (exit $rc): ${runs:-?} runs before it stopped"
        say "---- $t: end of the log ($work/log) ----"
        grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED|RELOAD)' "$work/log" | tail -n 60
        for a in $found; do
            f=$work/artifacts/$a
            # Minimize crashes and leaks (timeouts and OOMs are kept as found).
            case $a in crash-* | leak-*)
                (cd "$work" && TMPDIR="$scratch/$t" "$obj/tests/fuzz/$t" -minimize_crash=1 \
                    -max_total_time=30 -timeout=10 -rss_limit_mb=2048 \
                    -exact_artifact_path="$f.min" "$f") >"$work/minimize.log" 2>&1
                ;;
            esac
            [ -s "$f.min" ] && f=$f.min
            say "---- $t: input $(basename "$f") ($(wc -c <"$f") bytes), hex:"
            hex "$f"
            echo
        done
    fi
    if [ "${HPF_FUZZ_MERGE:-0}" = 1 ] && [ -d "$srcdir/tests/fuzz/corpus/$t" ]; then
        (cd "$work" && TMPDIR="$scratch/$t" "$obj/tests/fuzz/$t" -merge=1 -timeout=10 \
            "$srcdir/tests/fuzz/corpus/$t" "$work/corpus") >"$work/merge.log" 2>&1 &&
            say "$t: merged into tests/fuzz/corpus/$t: $(grep -o 'MERGE-OUTER: [0-9]* new files' "$work/merge.log")"
    fi
done
say "(logs and artifacts: $fuzzdir/run/)"
exit "$failed"
