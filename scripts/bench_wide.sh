#!/usr/bin/env bash
# bench_wide.sh: shape W of issue "Wide universes", backfill part: WIDE_SYMBOLS
# simulated symbols at 1s bars for WIDE_MINUTES minutes of input, every feature set,
# -w 2, with the correlation in the `pairs` and the `matrix` layout. GNU time gives
# wall seconds, CPU seconds and peak RSS; the table adds windows (1s bars) per second,
# the multiple of real time, and the bytes of the correlation set per window, and is
# saved to $BENCH_DIR/results-wide.md. Called by scripts/bench.sh (or alone).
#
# Environment: BENCH_DIR (.bench), BENCH_SEED (42), WIDE_SYMBOLS ("200"),
# WIDE_MINUTES ("20 60"), BENCH_SKIP_BUILD=1 to use the built binary.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

WIDE_SYMBOLS=${WIDE_SYMBOLS:-"200"}
WIDE_MINUTES=${WIDE_MINUTES:-"20 60"}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin marketflow
fi
mkdir -p "$BENCH_DIR/data" "$BENCH_DIR/logs" "$BENCH_DIR/out"

ROWS=()
for n in $WIDE_SYMBOLS; do
    for m in $WIDE_MINUTES; do
        input=$(wide_input "$n" "$m" wide-sim.log)
        cat "$input" >/dev/null
        for layout in pairs matrix; do
            config=$BENCH_DIR/wide-$layout.toml
            printf '[features]\nresolutions = ["1s"]\nrolling_window = 60\nbenchmark = "BTCUSDT"\nrisk = true\ncorrelation_layout = "%s"\n' \
                "$layout" >"$config"
            out=$BENCH_DIR/out/wide
            log=$BENCH_DIR/logs/wide-s$n-m$m-$layout.log
            rm -rf "$out"
            say "W: $n symbols, $m min, $layout"
            "$TIME" -f 'TIME %e %U %S %M' "$MF" --config "$config" backfill --input "$input" \
                --output "$out" -w 2 >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "backfill failed"; }
            read -r wall user sys rss < <(grep '^TIME' "$log" | tail -n 1 | cut -d' ' -f2-)
            windows=$((m * 60))
            rows=$(grep -o 'rows_out=[0-9]*' "$log" | tail -n 1 | cut -d= -f2)
            bytes=$(du -sb "$out/correlation" | cut -f1)
            ROWS+=("$(awk -v n="$n" -v m="$m" -v l="$layout" -v w="$wall" -v u="$user" -v s="$sys" \
                -v r="$rss" -v win="$windows" -v rows="$rows" -v b="$bytes" 'BEGIN {
                printf "| %d | %d | %s | %.2f | %.2f | %d | %.0f | %.0fx | %s | %.0f |", n, m, l, w, u + s,
                    r / 1024, win / w, win / w, rows, b / win }')")
            rm -rf "$out"
        done
    done
done

{
    echo "## Shape W: wide universes at 1s, backfill, -w 2 (every set, W = 60)"
    echo
    echo "Seed $BENCH_SEED, $(nproc) cores, $(date -u +%Y-%m-%d). Windows are 1s bars; real time"
    echo "is the input's span over the wall time; bytes per window are the correlation set's."
    echo
    echo "| symbols | minutes | layout | wall s | CPU s | peak RSS MB | windows/s | real time | rows out | corr bytes/window |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$BENCH_DIR/results-wide.md"
