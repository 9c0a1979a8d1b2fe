#!/usr/bin/env bash
# bench_features.sh: every feature set end to end against polars, and the rolling
# correlation and risk operators alone at many symbols. Called by scripts/bench.sh (or
# alone).
#
# 1. Every feature set: `marketflow backfill` with 1m bars, W = 60, computing bars,
#    indicators, alerts, the correlation matrix, beta vs BTCUSDT and risk (VaR / CVaR,
#    Sharpe / Sortino, drawdowns, ATR, sma_50 / sma_200 and trend, volume ratio), on
#    FEATURES_SIZE simulated trades (5 symbols, Parquet, the same cached file as
#    bench.sh) with -w 1 and -w 2, then scripts/bench_features_polars.py computing the
#    same six sets from the same file (all cores); GNU time gives wall seconds and peak
#    RSS; polars' rows are checked against marketflow's (the script fails loudly when
#    they differ). FEATURES_RISK=0 leaves risk out on both sides (the five sets before
#    risk existed).
# 2. The co-moments operator alone (operators/examples/corr_bench.rs): N = 100 and 500
#    symbols, W = 60, on 1 and 2 workers: p50 / p99 wall ms per grid bar (from the bar's
#    input to all its correlation and beta rows), the state size and peak RSS.
# 3. The risk operator alone (corr_bench --operator risk): N = 500 symbols, W = 250,
#    W + 300 grid bars, on 1 and 2 workers: p50 / p99 wall ms per grid bar (from the
#    bar's input to all its risk rows), the state size and peak RSS.
# Writes the markdown tables to $BENCH_DIR/results-features.md.
#
# Environment: BENCH_DIR (.bench), BENCH_SEED (42), FEATURES_SIZE (10000000),
# FEATURES_RISK (1), CORR_SYMBOLS ("100 500"), CORR_BARS (300), RISK_SYMBOLS ("500"),
# RISK_WINDOW (250), BENCH_SKIP_BUILD=1 to use the built binaries. An empty
# CORR_SYMBOLS or RISK_SYMBOLS skips that part.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

FEATURES_SIZE=${FEATURES_SIZE:-10000000}
CORR_SYMBOLS=${CORR_SYMBOLS-"100 500"}
CORR_BARS=${CORR_BARS:-300}
RISK_SYMBOLS=${RISK_SYMBOLS-"500"}
RISK_WINDOW=${RISK_WINDOW:-250}
FEATURES_RISK=${FEATURES_RISK:-1}
CORR=$ROOT/target/release/examples/corr_bench
PY=$BENCH_DIR/venv/bin/python

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin marketflow
    cargo build --release -p operators --example corr_bench
fi
if ! { [ -x "$PY" ] && "$PY" -c 'import polars, pyarrow, numpy' 2>/dev/null; }; then
    python3 -m venv "$BENCH_DIR/venv"
    "$PY" -m pip install --quiet --disable-pip-version-check polars==2.1.0 pyarrow==26.0.1 numpy==2.4.6
fi
input=$(bench_input "$FEATURES_SIZE" simulate-features.log)
trades=$("$PY" -c 'import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)' "$input")

case $FEATURES_RISK in
1) RISK=true POLARS_ARGS=() SETS="bars, indicators, alerts, correlation, beta, risk" ;;
0) RISK=false POLARS_ARGS=(--no-risk) SETS="bars, indicators, alerts, correlation, beta; no risk" ;;
*) die "FEATURES_RISK must be 0 or 1" ;;
esac
CONFIG=$BENCH_DIR/features.toml
cat >"$CONFIG" <<EOF
# bench_features.sh: every feature set at 1m, W = 60 (risk = $RISK).
[features]
resolutions = ["1m"]
rolling_window = 60
benchmark = "BTCUSDT"
correlation = true
indicators = true
zscore_alert = 3.0
risk = $RISK
EOF

ROWS=()
run() { # name log cmd...
    local name=$1 log=$2 tf wall rss tps
    shift 2
    tf=$(mktemp)
    "$TIME" -f '%e %M' -o "$tf" "$@" >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "$name failed"; }
    read -r wall rss < <(tail -n 1 "$tf")
    rm -f "$tf"
    tps=$(awk -v n="$trades" -v s="$wall" 'BEGIN { printf "%.0f", n / s }')
    ROWS+=("| $name | $wall | $tps | $((rss / 1024)) |")
    say "$name: $wall s, $tps trades/s, $((rss / 1024)) MB"
    LAST_WALL=$wall
}

declare -A WALLS
for w in 1 2; do
    out=$BENCH_DIR/out/features-marketflow-w$w
    rm -rf "$out"
    run "marketflow -w $w" "$BENCH_DIR/logs/features-marketflow-w$w.log" \
        "$MF" backfill --config "$CONFIG" --input "$input" --output "$out" -w $w
    WALLS["marketflow -w $w"]=$LAST_WALL
done
out=$BENCH_DIR/out/features-polars
rm -rf "$out"
run "polars (all cores)" "$BENCH_DIR/logs/features-polars.log" \
    "$PY" scripts/bench_features_polars.py --input "$input" --output "$out" ${POLARS_ARGS[@]+"${POLARS_ARGS[@]}"}
WALLS[polars]=$LAST_WALL
say "checking polars' features against marketflow -w 2"
"$PY" scripts/bench_features_polars.py --input "$input" --output "$out" ${POLARS_ARGS[@]+"${POLARS_ARGS[@]}"} \
    --check "$BENCH_DIR/out/features-marketflow-w2" ||
    die "CORRECTNESS CHECK FAILED: polars and marketflow disagree"

CORR_ROWS=()
for n in $CORR_SYMBOLS; do
    for w in 1 2; do
        line=$("$CORR" --symbols "$n" --bars "$CORR_BARS" --window 60 -w "$w")
        say "$line"
        CORR_ROWS+=("$(echo "$line" | awk '{
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "| %s | %s | %s | %s | %s | %s | %s |", v["symbols"], v["workers"], v["pairs"], v["p50_ms"], v["p99_ms"], v["state_mb"], v["peak_rss_mb"]
        }')")
    done
done

RISK_ROWS=()
for n in $RISK_SYMBOLS; do
    for w in 1 2; do
        line=$("$CORR" --operator risk --symbols "$n" --bars $((RISK_WINDOW + 300)) --window "$RISK_WINDOW" -w "$w")
        say "$line"
        RISK_ROWS+=("$(echo "$line" | awk '{
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "| %s | %s | %s | %s | %s | %s |", v["symbols"], v["workers"], v["p50_ms"], v["p99_ms"], v["state_mb"], v["peak_rss_mb"]
        }')")
    done
done

{
    echo "## Every feature set ($SETS): marketflow backfill vs polars (1m bars, W = 60, 5 symbols)"
    echo
    echo "$trades trades, Parquet in and out, seed $BENCH_SEED, $(nproc) cores, $(date -u +%Y-%m-%d)."
    echo
    echo "| engine | wall s | trades/s | peak RSS MB |"
    echo "|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    for w in 1 2; do
        awk -v a="${WALLS["marketflow -w $w"]}" -v b="${WALLS[polars]}" -v w=$w \
            'BEGIN { printf "- marketflow -w %d is %.2fx polars\n", w, b / a }'
    done
    if [ ${#CORR_ROWS[@]} -gt 0 ]; then
        echo
        echo "## Rolling correlation + beta operator alone (W = 60, one grid bar at a time)"
        echo
        echo "| symbols | workers | pairs | p50 ms/bar | p99 ms/bar | state MB | peak RSS MB |"
        echo "|---|---|---|---|---|---|---|"
        printf '%s\n' "${CORR_ROWS[@]}"
    fi
    if [ ${#RISK_ROWS[@]} -gt 0 ]; then
        echo
        echo "## Risk operator alone (W = $RISK_WINDOW, one grid bar at a time)"
        echo
        echo "$((RISK_WINDOW + 300)) grid bars per symbol."
        echo
        echo "| symbols | workers | p50 ms/bar | p99 ms/bar | state MB | peak RSS MB |"
        echo "|---|---|---|---|---|---|"
        printf '%s\n' "${RISK_ROWS[@]}"
    fi
} | tee "$BENCH_DIR/results-features.md"
