#!/usr/bin/env bash
# bench_shapes.sh: every feature set, end to end, on workload shapes of different
# density and width, marketflow against polars computing the same rows (checked equal)
# and writing them to Parquet in the same run. Called by scripts/bench.sh (or alone).
#
# Shapes (SHAPES="A B C D"):
#   A  dense: SHAPES_SIZE simulated trades (5 symbols, about 28 h), 1m bars, every set;
#   B  long and sparse: the same trades with their times stretched over 69 days (20
#      trades a minute per symbol), 1m bars, every set;
#   C  wide: 100 symbols, 2 days of 1m candles (`--kind candles`), 1m, every set;
#   D  equities: 100 symbols, 10 years of daily candles, `resolutions = ["1d"]`,
#      every set.
# Each shape runs `marketflow backfill` with -w 1 and -w 2, then
# scripts/bench_features_polars.py (all cores; on the trade shapes twice: with the
# dedup a feed needs, and --plain, the script for a clean, time-sorted file, which
# the simulated input is); GNU time gives wall seconds, CPU
# seconds (user + sys) and peak RSS. W = 60 everywhere. Prints a markdown table (also
# saved to $BENCH_DIR/results-shapes.md) with input rows per second, rows out, files
# written and the ratios: polars wall / marketflow wall, and CPU of -w 2 / -w 1.
#
# Environment: BENCH_DIR (.bench), BENCH_SEED (42), SHAPES ("A B C D"),
# SHAPES_SIZE (10000000), BENCH_SKIP_BUILD=1 to use the built binary.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

SHAPES=${SHAPES:-"A B C D"}
SHAPES_SIZE=${SHAPES_SIZE:-10000000}
PY=$BENCH_DIR/venv/bin/python

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin marketflow
fi
if ! { [ -x "$PY" ] && "$PY" -c 'import polars, pyarrow, numpy' 2>/dev/null; }; then
    python3 -m venv "$BENCH_DIR/venv"
    "$PY" -m pip install --quiet --disable-pip-version-check polars==2.1.0 pyarrow==26.0.1 numpy==2.4.6
fi

# shape_input SHAPE: prints "path kind resolution" of the shape's cached input.
shape_input() {
    local d=$BENCH_DIR/data dense out
    mkdir -p "$d"
    case $1 in
    A) echo "$(bench_input "$SHAPES_SIZE" simulate-shapes.log) trades 1m" ;;
    B)
        dense=$(bench_input "$SHAPES_SIZE" simulate-shapes.log)
        out=$d/trades-s5-n$SHAPES_SIZE-seed$BENCH_SEED-69d.parquet
        if [ ! -s "$out" ]; then
            say "stretching $dense over 69 days"
            "$PY" - "$dense" "$out.tmp" <<'PYEOF'
import sys, polars as pl
src, dst = sys.argv[1], sys.argv[2]
t = pl.scan_parquet(src)
lo, hi = t.select(lo=pl.col("ts_ms").min(), hi=pl.col("ts_ms").max()).collect().row(0)
k = 69 * 86_400_000 // (hi - lo + 1)
t.with_columns(ts_ms=lo + (pl.col("ts_ms") - lo) * k).sink_parquet(dst, row_group_size=1 << 20)
PYEOF
            mv "$out.tmp" "$out"
        fi
        echo "$out trades 1m"
        ;;
    C | D)
        local bars ms res
        if [ "$1" = C ]; then bars=2880 ms=60000 res=1m; else bars=3650 ms=86400000 res=1d; fi
        out=$d/candles-s100-b$bars-i$ms-seed$BENCH_SEED.parquet
        if [ ! -s "$out" ]; then
            say "simulating 100 symbols x $bars candles of $res"
            "$PY" scripts/bench_make_candles.py --symbols 100 --bars $bars --interval-ms $ms \
                --seed "$BENCH_SEED" --output "$out.tmp"
            mv "$out.tmp" "$out"
        fi
        echo "$out candles $res"
        ;;
    *) die "unknown shape $1" ;;
    esac
}

ROWS=()
RATIOS=()
measure() { # log cmd... -> sets WALL CPU RSS
    local log=$1 tf
    shift
    tf=$(mktemp)
    "$TIME" -f '%e %U %S %M' -o "$tf" "$@" >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "$* failed"; }
    read -r WALL user sys RSS < <(tail -n 1 "$tf")
    rm -f "$tf"
    CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    RSS=$((RSS / 1024))
}

for shape in $SHAPES; do
    read -r input kind res < <(shape_input "$shape")
    rows_in=$("$PY" -c 'import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)' "$input")
    config=$BENCH_DIR/shape-$shape.toml
    printf '[features]\nresolutions = ["%s"]\nrolling_window = 60\nbenchmark = "%s"\nrisk = true\n' \
        "$res" "$([ "$kind" = candles ] && echo S0000 || echo BTCUSDT)" >"$config"
    declare -A W=() C=()
    for w in 1 2; do
        out=$BENCH_DIR/out/shape-$shape-w$w
        rm -rf "$out"
        measure "$BENCH_DIR/logs/shape-$shape-w$w.log" \
            "$MF" backfill --config "$config" --input "$input" --output "$out" --kind "$kind" -w $w
        W[$w]=$WALL C[$w]=$CPU
        files=$(find "$out" -name '*.parquet' | wc -l)
        rows_out=$(grep -o 'rows_out=[0-9]*' "$BENCH_DIR/logs/shape-$shape-w$w.log" | tail -n 1 | cut -d= -f2)
        rate=$(awk -v n="$rows_in" -v s="$WALL" 'BEGIN { printf "%.0f", n / s }')
        ROWS+=("| $shape | marketflow -w $w | $WALL | $CPU | $rate | $RSS | $rows_out | $files |")
        say "shape $shape -w $w: $WALL s, $CPU CPU s, $RSS MB, $files files"
    done
    out=$BENCH_DIR/out/shape-$shape-polars
    rm -rf "$out"
    bench=$([ "$kind" = candles ] && echo S0000 || echo BTCUSDT)
    measure "$BENCH_DIR/logs/shape-$shape-polars.log" "$PY" scripts/bench_features_polars.py \
        --input "$input" --output "$out" --kind "$kind" --resolution "$res" --benchmark "$bench"
    rate=$(awk -v n="$rows_in" -v s="$WALL" 'BEGIN { printf "%.0f", n / s }')
    ROWS+=("| $shape | polars (all cores) | $WALL | $CPU | $rate | $RSS | | 6 |")
    say "shape $shape polars: $WALL s, $CPU CPU s, $RSS MB"
    "$PY" scripts/bench_features_polars.py --input "$input" --output "$out" --kind "$kind" \
        --resolution "$res" --benchmark "$bench" --check "$BENCH_DIR/out/shape-$shape-w2" ||
        die "CORRECTNESS CHECK FAILED on shape $shape: polars and marketflow disagree"
    RATIOS+=("$(awk -v s="$shape" -v p="$WALL" -v a="${W[1]}" -v b="${W[2]}" -v c1="${C[1]}" -v c2="${C[2]}" \
        'BEGIN { printf "- %s: marketflow -w 1 is %.2fx polars, -w 2 is %.2fx; CPU of -w 2 / -w 1: %.2f", s, p / a, p / b, c2 / c1 }')")
    if [ "$kind" = trades ]; then
        # The plain script a user writes for a clean, time-sorted file (no dedup).
        out=$BENCH_DIR/out/shape-$shape-polars-plain
        rm -rf "$out"
        measure "$BENCH_DIR/logs/shape-$shape-polars-plain.log" "$PY" scripts/bench_features_polars.py \
            --input "$input" --output "$out" --resolution "$res" --benchmark "$bench" --plain
        rate=$(awk -v n="$rows_in" -v s="$WALL" 'BEGIN { printf "%.0f", n / s }')
        ROWS+=("| $shape | polars plain, no dedup (all cores) | $WALL | $CPU | $rate | $RSS | | 6 |")
        say "shape $shape polars plain: $WALL s, $CPU CPU s, $RSS MB"
        "$PY" scripts/bench_features_polars.py --input "$input" --output "$out" --resolution "$res" \
            --benchmark "$bench" --plain --check "$BENCH_DIR/out/shape-$shape-w2" ||
            die "CORRECTNESS CHECK FAILED on shape $shape: plain polars and marketflow disagree"
        RATIOS+=("$(awk -v s="$shape" -v p="$WALL" -v a="${W[1]}" -v b="${W[2]}" \
            'BEGIN { printf "- %s against the plain polars script: marketflow -w 1 is %.2fx, -w 2 is %.2fx", s, p / a, p / b }')")
    fi
    unset W C
done

{
    echo "## Workload shapes: every feature set, marketflow backfill vs polars (W = 60)"
    echo
    echo "Seed $BENCH_SEED, $(nproc) cores, $(date -u +%Y-%m-%d). A: $SHAPES_SIZE trades, 5 symbols, ~28 h, 1m;"
    echo "B: the same trades over 69 days, 1m; C: 100 symbols, 2 days of 1m candles; D: 100 symbols,"
    echo "10 years of daily candles, 1d. Rows in/s counts input rows (trades or candles)."
    echo
    echo "| shape | engine | wall s | CPU s | rows in/s | peak RSS MB | rows out | files |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    printf '%s\n' "${RATIOS[@]}"
} | tee "$BENCH_DIR/results-shapes.md"
