#!/usr/bin/env bash
# bench_restate.sh: what a restatement costs (operators/examples/restate_bench.rs).
# RESTATE_SYMBOLS symbols of 1s bars through the dense grid, indicators, risk and the
# co-moments (correlation pairs and beta, W = 60) on -w 2 with allowed lateness 30 s;
# every 5th bar also restates the benchmark's bar from RESTATE_BACK bars ago (a late
# trade). Reported per restatement: the extra wall ms of that bar over a plain one, and
# the rows sent again. Then the same stream with lateness 0 (nothing kept, nothing
# restated), whose plain bar against the plain bar with lateness 30 s is what keeping
# the history costs. Called by scripts/bench.sh (or alone).
# Writes the markdown table to $BENCH_DIR/results-restate.md.
#
# Environment: BENCH_DIR (.bench), RESTATE_SYMBOLS ("500"), RESTATE_BACK ("10 25"),
# RESTATE_BARS (200), BENCH_SKIP_BUILD=1 to use the built example.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

RESTATE_SYMBOLS=${RESTATE_SYMBOLS:-500}
RESTATE_BACK=${RESTATE_BACK:-"10 25"}
RESTATE_BARS=${RESTATE_BARS:-200}
BIN=$ROOT/target/release/examples/restate_bench

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p operators --example restate_bench
fi
field() { printf '%s\n' "$1" | grep -o "$2=[^ ]*" | cut -d= -f2; }

rows=()
for n in $RESTATE_SYMBOLS; do
    say "restate_bench: $n symbols, lateness 0 s"
    base=$("$BIN" --symbols "$n" --window 60 --lateness-s 0 --bars "$RESTATE_BARS" -w 2)
    plain0=$(field "$base" plain_p50_ms)
    for back in $RESTATE_BACK; do
        say "restate_bench: $n symbols, lateness 30 s, late trade $back bars back"
        line=$("$BIN" --symbols "$n" --window 60 --lateness-s 30 --back "$back" \
            --bars "$RESTATE_BARS" -w 2)
        rows+=("| $n | $back s | $(field "$line" plain_p50_ms) ms (lateness 0 s: $plain0 ms) | $(field "$line" restated_p50_ms) ms | $(field "$line" cost_ms) ms | $(field "$line" rows_resent) | $(field "$line" rows_per_bar) |")
    done
done
{
    echo "### Restatements (\`scripts/bench_restate.sh\`, 1s bars, W = 60, lateness 30 s, -w 2)"
    echo
    echo "| symbols | late trade behind | bar p50, nothing late | bar p50 with the restatement | cost | rows sent again | rows per bar |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} | tee "$BENCH_DIR/results-restate.md"
