#!/usr/bin/env bash
# bench_lib.sh: helpers shared by the scripts/bench_*.sh scripts (sourced, not run):
# the repository root as working directory, BENCH_DIR and BENCH_SEED defaults,
# messages, arithmetic and CPU ticks, and the cached simulated Parquet inputs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_DIR=${BENCH_DIR:-$ROOT/.bench}
BENCH_SEED=${BENCH_SEED:-42}
SYMBOLS=5
TRADES_PER_MINUTE=6000 # the simulator's total rate for 5 symbols: 100 trades/s
MF=$ROOT/target/release/marketflow
TIME=/usr/bin/time

say() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; } # calc FORMAT EXPRESSION
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime, clock ticks
die() { printf '%s: ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

[ -x "$TIME" ] || die "GNU time is missing (scripts/bench.sh installs it)"

# bench_input SIZE LOG: prints the path of the cached input of SIZE trades (5 symbols,
# seed BENCH_SEED), simulating it first when missing, and warms the page cache.
bench_input() {
    local size=$1 log=$2 input minutes
    input=$BENCH_DIR/data/trades-s$SYMBOLS-n$size-seed$BENCH_SEED.parquet
    mkdir -p "$BENCH_DIR/data" "$BENCH_DIR/out" "$BENCH_DIR/logs"
    if [ ! -s "$input" ]; then
        minutes=$(((size + TRADES_PER_MINUTE - 1) / TRADES_PER_MINUTE))
        say "simulating $size trades"
        "$MF" simulate --symbols $SYMBOLS --minutes "$minutes" --seed "$BENCH_SEED" \
            --output "$input.tmp.parquet" >"$BENCH_DIR/logs/$log" 2>&1 ||
            { tail -n 30 "$BENCH_DIR/logs/$log" >&2; die "simulate failed"; }
        mv "$input.tmp.parquet" "$input"
    fi
    cat "$input" >/dev/null
    printf '%s\n' "$input"
}

# wide_input N MINUTES LOG: prints the path of the cached simulated input of N symbols
# over MINUTES minutes (seed BENCH_SEED), simulating it first when missing.
wide_input() {
    local f=$BENCH_DIR/data/wide-s$1-m$2-seed$BENCH_SEED.parquet
    mkdir -p "$BENCH_DIR/data" "$BENCH_DIR/logs"
    if [ ! -s "$f" ]; then
        say "simulating $1 symbols x $2 minutes"
        "$MF" simulate --symbols "$1" --minutes "$2" --seed "$BENCH_SEED" \
            --output "$f.tmp.parquet" >"$BENCH_DIR/logs/$3" 2>&1 ||
            { tail -n 20 "$BENCH_DIR/logs/$3" >&2; die "simulate failed"; }
        mv "$f.tmp.parquet" "$f"
    fi
    printf '%s\n' "$f"
}
