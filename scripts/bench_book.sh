#!/usr/bin/env bash
# bench_book.sh: the order-book benchmarks of issue "Order books". (1) The book
# operator alone (operators/examples/book_bench.rs): diffs and level updates per
# second on one worker at BOOK_LEVELS levels a side. (2) End to end: a simulated
# depth capture of BOOK_SYMBOLS symbols over BOOK_MINUTES minutes (a diff every 100 ms
# and bookTickers per symbol, with injected gaps), backfilled with every set at 1s/1m
# on -w 2, against the independent Python rebuild of the book and quotes sets
# (tests/pandas/book.py, which also checks every value). GNU time gives wall seconds
# and peak RSS; the table is saved to $BENCH_DIR/results-book.md. Called by
# scripts/bench.sh (or alone).
#
# Environment: BENCH_DIR (.bench), BENCH_SEED (42), BOOK_LEVELS (1000), BOOK_DIFFS
# (2000000), BOOK_SYMBOLS (20), BOOK_MINUTES (60; 1440 for a day), BENCH_SKIP_BUILD=1
# to use the built binaries, BOOK_SKIP_PYTHON=1 to skip the Python side.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

BOOK_LEVELS=${BOOK_LEVELS:-1000}
BOOK_DIFFS=${BOOK_DIFFS:-2000000}
BOOK_SYMBOLS=${BOOK_SYMBOLS:-20}
BOOK_MINUTES=${BOOK_MINUTES:-60}
PY=${PY:-$ROOT/.venv/bin/python}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin marketflow && cargo build --release -p operators --example book_bench
fi
mkdir -p "$BENCH_DIR/data" "$BENCH_DIR/logs" "$BENCH_DIR/out"

say "book operator alone: $BOOK_DIFFS diffs, $BOOK_LEVELS levels a side"
op_line=$("$ROOT/target/release/examples/book_bench" --levels "$BOOK_LEVELS" --diffs "$BOOK_DIFFS")
echo "$op_line" >"$BENCH_DIR/logs/book-operator.log"

books=$BENCH_DIR/data/books-s$BOOK_SYMBOLS-m$BOOK_MINUTES-seed$BENCH_SEED
if [ ! -d "$books" ]; then
    say "simulating $BOOK_SYMBOLS books x $BOOK_MINUTES minutes"
    "$MF" simulate --symbols "$BOOK_SYMBOLS" --minutes "$BOOK_MINUTES" --seed "$BENCH_SEED" \
        --book "$books.tmp" --book-gaps 0.0005 >"$BENCH_DIR/logs/book-sim.log" 2>&1 ||
        { tail -n 20 "$BENCH_DIR/logs/book-sim.log" >&2; die "simulate failed"; }
    mv "$books.tmp" "$books"
fi
cat "$books"/*.gz >/dev/null
records=$(grep -o 'records=[0-9]*' "$BENCH_DIR/logs/book-sim.log" | tail -n 1 | cut -d= -f2 || echo "?")
config=$BENCH_DIR/book.toml
printf '[features]\nresolutions = ["1s", "1m"]\n' >"$config"
out=$BENCH_DIR/out/book
log=$BENCH_DIR/logs/book-marketflow.log
rm -rf "$out"
say "backfill of the simulated books, -w 2"
"$TIME" -f 'TIME %e %U %S %M' "$MF" --config "$config" backfill --input "$books/*.gz" \
    --output "$out" -w 2 >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "backfill failed"; }
read -r wall user sys rss < <(grep '^TIME' "$log" | tail -n 1 | cut -d' ' -f2-)
py_cell="skipped"
if [ "${BOOK_SKIP_PYTHON:-0}" != 1 ]; then
    say "Python rebuild of the same sets (and the value check)"
    plog=$BENCH_DIR/logs/book-python.log
    "$TIME" -f 'TIME %e %U %S %M' "$PY" tests/pandas/book.py --input "$books/*.gz" \
        --output "$out" --resolutions 1s,1m >"$plog" 2>&1 || { tail -n 20 "$plog" >&2; die "values differ"; }
    read -r pwall _ _ prss < <(grep '^TIME' "$plog" | tail -n 1 | cut -d' ' -f2-)
    py_cell=$(awk -v w="$pwall" -v r="$prss" -v m="$wall" 'BEGIN { printf "%.1f s, %d MB (%.0fx marketflow)", w, r / 1024, w / m }')
fi

{
    echo "## Order books (scripts/bench_book.sh)"
    echo
    echo "Seed $BENCH_SEED, $(nproc) cores, $(date -u +%Y-%m-%d)."
    echo
    echo "Operator alone (1 worker): \`$op_line\`"
    echo
    echo "| symbols | minutes | records | marketflow -w 2 wall s | CPU s | peak RSS MB | records/s | Python rebuild |"
    echo "|---|---|---|---|---|---|---|---|"
    awk -v n="$BOOK_SYMBOLS" -v m="$BOOK_MINUTES" -v rec="$records" -v w="$wall" -v u="$user" -v s="$sys" \
        -v r="$rss" -v py="$py_cell" 'BEGIN {
        printf "| %d | %d | %s | %.2f | %.2f | %d | %.0f | %s |\n", n, m, rec, w, u + s, r / 1024, rec / w, py }'
} | tee "$BENCH_DIR/results-book.md"
