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
# The three runs are repeated SCALING_ROUNDS times, interleaved (1x1, 1x2, 2x1, 1x1,
# ...), so that a slow spell of a shared machine hits every configuration alike; the
# table gives every wall time and the ratios use the medians.
# Writes the markdown table to $BENCH_DIR/results-scaling.md.
#
# Environment: BENCH_DIR (.bench), BENCH_SEED (42), SCALING_SIZE (10000000),
# SCALING_ROUNDS (3),
# SCALING_PORT (23101: the two processes listen on it and the next port),
# BENCH_SKIP_BUILD=1 to use target/release/marketflow as it is.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

SCALING_SIZE=${SCALING_SIZE:-10000000}
SCALING_PORT=${SCALING_PORT:-23101}
SCALING_ROUNDS=${SCALING_ROUNDS:-3}

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
risk = true
zscore_alert = 3.0
EOF
HOSTS=$BENCH_DIR/scaling.hosts
printf '127.0.0.1:%d\n127.0.0.1:%d\n' "$SCALING_PORT" $((SCALING_PORT + 1)) >"$HOSTS"

declare -A WALLS RSS CPUS
# run NAME PROCESSES WORKERS: one backfill; every process under GNU time; the wall time
# is the launch-to-last-exit time, the RSS the largest process's, the CPU seconds the
# sum over processes. Appends the wall time to WALLS[NAME] and the CPU seconds to
# CPUS[NAME], and keeps the largest RSS in RSS[NAME].
run() {
    local name=$1 n=$2 w=$3 out=$BENCH_DIR/out/scaling-$1 p start end wall rss=0 r cpu=0 pids=()
    rm -rf "$out"
    start=$(date +%s.%N)
    for ((p = 0; p < n; p++)); do
        local args=(backfill --config "$CONFIG" --input "$input" --output "$out" -w "$w")
        [ "$n" -gt 1 ] && args+=(-n "$n" -p "$p" -h "$HOSTS")
        "$TIME" -f '%M %U %S' -o "$BENCH_DIR/logs/scaling-$name-p$p.time" \
            "$MF" "${args[@]}" >"$BENCH_DIR/logs/scaling-$name-p$p.log" 2>&1 &
        pids+=($!)
    done
    for p in "${!pids[@]}"; do
        wait "${pids[$p]}" || { tail -n 30 "$BENCH_DIR/logs/scaling-$name-p$p.log" >&2; die "$name: process $p failed"; }
    done
    end=$(date +%s.%N)
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    for ((p = 0; p < n; p++)); do
        read -r r u s < <(tail -n 1 "$BENCH_DIR/logs/scaling-$name-p$p.time")
        [ "$r" -gt "$rss" ] && rss=$r
        cpu=$(awk -v c="$cpu" -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", c + u + s }')
    done
    WALLS[$name]="${WALLS[$name]:-} $wall"
    CPUS[$name]="${CPUS[$name]:-} $cpu"
    [ "$rss" -gt "${RSS[$name]:-0}" ] && RSS[$name]=$rss
    say "$name ($n processes x $w workers): $wall s, $cpu CPU s, peak RSS $((rss / 1024)) MB"
}

checksums() { # OUT: "set=checksum" lines of the run's manifest
    local m
    m=$(ls "$1"/_runs/*.json 2>/dev/null | head -n 1)
    [ -n "$m" ] || die "no manifest under $1/_runs"
    grep -q '"status": *"succeeded"' "$m" || die "run under $1 did not succeed ($m)"
    tr -d ' \n' <"$m" | grep -Eo '"[a-z]+":\{"rows":[0-9]+,"partitions":[0-9]+,"bytes":[0-9]+,"checksum":"sha256:[0-9a-f]+"' | sort
}
# same_as_ref NAME: the run's files must equal the first 1x1 run's.
same_as_ref() {
    [ "$(checksums "$BENCH_DIR/out/scaling-$1")" = "$ref" ] ||
        die "CORRECTNESS CHECK FAILED: $1 wrote different Parquet files than 1x1"
}
for ((round = 1; round <= SCALING_ROUNDS; round++)); do
    say "round $round of $SCALING_ROUNDS"
    run 1x1 1 1
    if [ "$round" = 1 ]; then
        ref=$(checksums "$BENCH_DIR/out/scaling-1x1")
        [ -n "$ref" ] || die "the 1x1 manifest lists no feature set"
    fi
    same_as_ref 1x1
    run 1x2 1 2
    same_as_ref 1x2
    run 2x1 2 1
    same_as_ref 2x1
done
say "every 1x1, 1x2 and 2x1 run wrote byte-identical Parquet files ($(echo "$ref" | wc -l) feature sets)"

# median <<<"A B C": the median of space-separated numbers, 2 decimals.
median() {
    tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
        printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
declare -A MEDIAN MEDIAN_CPU
ROWS=()
for name in 1x1 1x2 2x1; do
    MEDIAN[$name]=$(median <<<"${WALLS[$name]}")
    MEDIAN_CPU[$name]=$(median <<<"${CPUS[$name]}")
    tps=$(awk -v n="$SCALING_SIZE" -v s="${MEDIAN[$name]}" 'BEGIN { printf "%.0f", n / s }')
    ROWS+=("| ${name/x/ x } | ${MEDIAN[$name]} | ${WALLS[$name]# } | ${MEDIAN_CPU[$name]} | $tps | $((RSS[$name] / 1024)) |")
done

{
    echo "## Scaling: backfill on processes x workers (every feature set, 5 symbols)"
    echo
    echo "$SCALING_SIZE trades, Parquet in and out, seed $BENCH_SEED, $(nproc) cores, $(date -u +%Y-%m-%d); 2 x 1 = two processes on localhost exchanging over TCP. $SCALING_ROUNDS interleaved rounds; every run wrote byte-identical files. Ratios of the median wall times."
    echo
    echo "| processes x workers | median wall s | every run, s | median CPU s (all processes) | trades/s (median) | peak RSS MB (largest process) |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    awk -v a="${MEDIAN[1x1]}" -v b="${MEDIAN[1x2]}" -v c="${MEDIAN[2x1]}" \
        -v ca="${MEDIAN_CPU[1x1]}" -v cb="${MEDIAN_CPU[1x2]}" -v cc="${MEDIAN_CPU[2x1]}" 'BEGIN {
        printf "- 1x2 / 1x1 throughput: %.2fx (target at least 1.7x)\n", a / b
        printf "- 2x1 / 1x2 throughput: %.2fx (target within 15%%, i.e. at least 0.85x)\n", b / c
        printf "- CPU seconds, 1x2 / 1x1: %.2fx (target at most 1.15x); 2x1 / 1x1: %.2fx (target at most 1.3x)\n", cb / ca, cc / ca
    }'
} | tee "$BENCH_DIR/results-scaling.md"
