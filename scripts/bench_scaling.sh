#!/usr/bin/env bash
# bench_scaling.sh: one backfill on 1 process x 1 worker, 1 process x 2 workers and
# 2 processes x 1 worker (over a localhost hostfile, the two processes exchanging data
# through TCP), on the same SCALING_SIZE simulated trades (5 symbols, Parquet, the file
# bench.sh caches). Called by scripts/bench.sh (or alone).
#
# The job computes every feature set (bars 1s/1m/5m, indicators, alerts, correlation
# and beta vs BTCUSDT, W = 60). GNU time gives wall seconds and peak RSS per process.
# The three runs must produce the same Parquet bytes: the per-set checksums of their
# `_runs/*.json` manifests are compared and the script fails loudly when they differ.
# Targets (issue 5): 2x1 within 15% of 1x2, and 1x2 at least 1.7x of 1x1.
# Writes the markdown table to $BENCH_DIR/results-scaling.md.
#
# Environment: BENCH_DIR (.bench), BENCH_SEED (42), SCALING_SIZE (10000000),
# SCALING_PORT (23101: the two processes listen on it and the next port),
# BENCH_SKIP_BUILD=1 to use target/release/marketflow as it is.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

SCALING_SIZE=${SCALING_SIZE:-10000000}
SCALING_PORT=${SCALING_PORT:-23101}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin marketflow
fi
input=$(bench_input "$SCALING_SIZE" simulate-scaling.log)

CONFIG=$BENCH_DIR/scaling.toml
cat >"$CONFIG" <<'EOF'
# bench_scaling.sh: every feature set.
[features]
resolutions = ["1s", "1m", "5m"]
rolling_window = 60
benchmark = "BTCUSDT"
correlation = true
indicators = true
zscore_alert = 3.0
EOF
HOSTS=$BENCH_DIR/scaling.hosts
printf '127.0.0.1:%d\n127.0.0.1:%d\n' "$SCALING_PORT" $((SCALING_PORT + 1)) >"$HOSTS"

ROWS=()
declare -A WALLS
# run NAME PROCESSES WORKERS: one backfill; every process under GNU time; the wall time
# is the launch-to-last-exit time, the RSS the largest process's.
run() {
    local name=$1 n=$2 w=$3 out=$BENCH_DIR/out/scaling-$1 p start end wall rss=0 r pids=()
    rm -rf "$out"
    start=$(date +%s.%N)
    for ((p = 0; p < n; p++)); do
        local args=(backfill --config "$CONFIG" --input "$input" --output "$out" -w "$w")
        [ "$n" -gt 1 ] && args+=(-n "$n" -p "$p" -h "$HOSTS")
        "$TIME" -f '%M' -o "$BENCH_DIR/logs/scaling-$name-p$p.time" \
            "$MF" "${args[@]}" >"$BENCH_DIR/logs/scaling-$name-p$p.log" 2>&1 &
        pids+=($!)
    done
    for p in "${!pids[@]}"; do
        wait "${pids[$p]}" || { tail -n 30 "$BENCH_DIR/logs/scaling-$name-p$p.log" >&2; die "$name: process $p failed"; }
    done
    end=$(date +%s.%N)
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    for ((p = 0; p < n; p++)); do
        r=$(tail -n 1 "$BENCH_DIR/logs/scaling-$name-p$p.time")
        [ "$r" -gt "$rss" ] && rss=$r
    done
    WALLS[$name]=$wall
    local tps
    tps=$(awk -v n="$SCALING_SIZE" -v s="$wall" 'BEGIN { printf "%.0f", n / s }')
    ROWS+=("| $n x $w | $wall | $tps | $((rss / 1024)) |")
    say "$name ($n processes x $w workers): $wall s, $tps trades/s, peak RSS $((rss / 1024)) MB"
}

run 1x1 1 1
run 1x2 1 2
run 2x1 2 1

checksums() { # OUT: "set=checksum" lines of the run's manifest
    local m
    m=$(ls "$1"/_runs/*.json 2>/dev/null | head -n 1)
    [ -n "$m" ] || die "no manifest under $1/_runs"
    grep -q '"status": *"succeeded"' "$m" || die "run under $1 did not succeed ($m)"
    tr -d ' \n' <"$m" | grep -Eo '"[a-z]+":\{"rows":[0-9]+,"partitions":[0-9]+,"bytes":[0-9]+,"checksum":"sha256:[0-9a-f]+"' | sort
}
ref=$(checksums "$BENCH_DIR/out/scaling-1x1")
[ -n "$ref" ] || die "the 1x1 manifest lists no feature set"
for name in 1x2 2x1; do
    [ "$(checksums "$BENCH_DIR/out/scaling-$name")" = "$ref" ] ||
        die "CORRECTNESS CHECK FAILED: $name wrote different Parquet files than 1x1"
done
say "1x1, 1x2 and 2x1 wrote byte-identical Parquet files ($(echo "$ref" | wc -l) feature sets)"

{
    echo "## Scaling: backfill on processes x workers (every feature set, 5 symbols)"
    echo
    echo "$SCALING_SIZE trades, Parquet in and out, seed $BENCH_SEED, $(nproc) cores, $(date -u +%Y-%m-%d); 2 x 1 = two processes on localhost exchanging over TCP. All three runs wrote byte-identical files."
    echo
    echo "| processes x workers | wall s | trades/s | peak RSS MB (largest process) |"
    echo "|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    awk -v a="${WALLS[1x1]}" -v b="${WALLS[1x2]}" -v c="${WALLS[2x1]}" 'BEGIN {
        printf "- 1x2 / 1x1 throughput: %.2fx (target at least 1.7x)\n", a / b
        printf "- 2x1 / 1x2 throughput: %.2fx (target within 15%%, i.e. at least 0.85x)\n", b / c
    }'
} | tee "$BENCH_DIR/results-scaling.md"
