#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and reports the
# executions each one did. Exits non-zero if any target crashes (the input
# that did it is left under fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [SECONDS]        default 20 seconds per target
#   FUZZ_TARGETS="unmask" scripts/fuzz.sh 60
#   FUZZ_NIGHTLY=0 scripts/fuzz.sh       use stable + RUSTC_BOOTSTRAP=1 even if nightly exists
#   FUZZ_SANITIZER=none scripts/fuzz.sh  skip AddressSanitizer
#   FUZZ_JOBS=1 scripts/fuzz.sh      one target at a time (default: one per core)
#
# Toolchain: nightly if rustup has one; otherwise the stable toolchain with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Zsanitizer). If the AddressSanitizer
# build fails, the targets are built with --sanitizer none instead: libFuzzer's
# coverage guidance still works, memory errors are just not caught.
set -euo pipefail

SECONDS_PER_TARGET="${1:-20}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
    echo "usage: $0 [SECONDS]   (seconds per target, default 20)" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGETS="${FUZZ_TARGETS:-parse_frame handshake unmask command publisher_frame redis_message transport protobuf proxy_wire fossil tags_filter client_codec}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

CARGO=(cargo)
if [ "${FUZZ_NIGHTLY:-1}" != 0 ] && command -v rustup >/dev/null 2>&1 &&
    rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    CARGO=(cargo +nightly)
    echo "== toolchain: $(rustc +nightly -V)"
else
    export RUSTC_BOOTSTRAP=1
    echo "== toolchain: $(rustc -V) with RUSTC_BOOTSTRAP=1"
fi

SANITIZER=()
if [ "${FUZZ_SANITIZER:-address}" = none ]; then
    SANITIZER=(--sanitizer none)
    "${CARGO[@]}" fuzz build --fuzz-dir fuzz "${SANITIZER[@]}"
elif ! "${CARGO[@]}" fuzz build --fuzz-dir fuzz >/tmp/ringcast-fuzz-build.log 2>&1; then
    echo "== AddressSanitizer build failed (last lines below); building with --sanitizer none"
    tail -n 5 /tmp/ringcast-fuzz-build.log | sed 's/^/   /'
    SANITIZER=(--sanitizer none)
    "${CARGO[@]}" fuzz build --fuzz-dir fuzz "${SANITIZER[@]}"
fi

# Per-target libFuzzer options: the handshake bound is 8 KiB, so let inputs
# grow past it; command frames carry several lines (and tokens), so give them
# room for a few.
max_len() {
    case "$1" in
        handshake) echo 12000 ;;
        command) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

# libFuzzer runs one thread per target: the targets run side by side, as
# many at a time as there are cores, each for its full time.
JOBS="${FUZZ_JOBS:-$(nproc)}"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || JOBS=1
mkdir -p fuzz/logs
fuzz_one() {
    local t=$1 corpus="fuzz/corpus/$1" log="fuzz/logs/$1.log" seeds=() rc
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    set +e
    "${CARGO[@]}" fuzz run --fuzz-dir fuzz "${SANITIZER[@]}" "$t" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$t")" -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    echo "$rc" >"fuzz/logs/$t.rc"
}
echo "== ${SECONDS_PER_TARGET}s per target, $JOBS at a time: $TARGETS"
running=0
for t in $TARGETS; do
    rm -f "fuzz/logs/$t.rc"
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_one "$t" &
    running=$((running + 1))
done
wait

declare -A RUNS RESULT
failed=0
for t in $TARGETS; do
    log="fuzz/logs/$t.log"
    rc=$(cat "fuzz/logs/$t.rc" 2>/dev/null || echo "?")
    RUNS[$t]="$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -n 1 || true)"
    if [ -z "${RUNS[$t]}" ]; then
        RUNS[$t]="$(grep -Eo '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1 || true)"
    fi
    if [ "$rc" = 0 ]; then
        RESULT[$t]=ok
    else
        RESULT[$t]="FAILED (exit $rc)"
        failed=1
        echo "-- $t failed (full log: $log):"
        if grep -qE 'panicked at|^SUMMARY|ERROR: |Test unit written' "$log"; then
            grep -E 'panicked at|^SUMMARY|ERROR: |Test unit written' -A2 "$log" | head -n 40 | sed 's/^/   /' || true
        else
            tail -n 15 "$log" | sed 's/^/   /'
        fi
    fi
done

echo
echo "== summary (${SECONDS_PER_TARGET}s per target${SANITIZER[*]:+, ${SANITIZER[*]}})"
for t in $TARGETS; do
    printf '%-16s %-18s %s execs, corpus %s files\n' "$t" "${RESULT[$t]}" "${RUNS[$t]:-?}" \
        "$(find "fuzz/corpus/$t" -type f | wc -l)"
done
exit $failed
