#!/usr/bin/env bash
# bench.sh: end-to-end throughput and memory of `marketflow backfill` against polars.
#
# For each input size in BENCH_SIZES (default "1000000 10000000" trades: 5 symbols,
# seed BENCH_SEED, a Parquet file made by `marketflow simulate` and cached in
# .bench/data/ by size and seed), runs one after the other:
#   marketflow backfill -w 1, marketflow backfill -w 2   (bars 1s, 1m, 5m; see below)
#   scripts/bench_polars.py                              (the same bars with polars'
#                                                        streaming engine, all cores)
# each end to end: read the Parquet trades, compute, write Parquet bars in the same
# layout. GNU time measures wall seconds and peak RSS. Prints a markdown table
#   | input | engine | workers | wall s | trades/s | peak RSS MB |
# with the ratios marketflow/polars throughput and RSS(largest)/RSS(smallest input),
# and saves it to .bench/results.md.
#
# Correctness: on the 1M input (else the first size) polars' bars are compared with
# every marketflow run's output (same rows, floats within 1e-9 relative); the script
# fails loudly if they differ.
#
# marketflow runs with a config that keeps only the bars (correlation and indicators
# off, resolutions 1s/1m/5m), the work polars does too.
#
# Usable from a clean machine: builds the release binary (cargo), creates the venv
# .bench/venv with polars and pyarrow, installs GNU time with apt-get if missing.
#
# Environment:
#   BENCH_SIZES="1000000 10000000"  trades per input (quick run: BENCH_SIZES=100000)
#   BENCH_SEED=42                   simulation seed
#   BENCH_WORKERS="1 2"             marketflow -w values
#   BENCH_REPEAT=1                  runs per measurement; the fastest one is reported
#   BENCH_DIR=.bench                work directory (data, outputs, logs, venv)
#   BENCH_PIP="polars==2.1.0 pyarrow==26.0.1"   what the venv installs
#   BENCH_SKIP_BUILD=1              use target/release/marketflow as it is
#   BENCH_BARS_ONLY=1               stop after the bars table; otherwise the script then
#                                   runs scripts/bench_features.sh (every feature set vs
#                                   polars, the correlation operator at N = 100 / 500),
#                                   scripts/bench_shapes.sh (every set on the shapes A-D:
#                                   dense, long and sparse, wide, daily equities),
#                                   scripts/bench_wide.sh (shape W: 200 symbols at 1s,
#                                   both correlation layouts, RSS against the span),
#                                   scripts/bench_wide_live.sh (shapes W and E live: 200
#                                   and 500 symbols at 1s through tansu, a backlog and
#                                   real time) and scripts/bench_scaling.sh (1x1, 1x2, 2x1 processes x
#                                   workers, SCALING_ROUNDS interleaved rounds) and
#                                   scripts/bench_live.sh (the live job through
#                                   the tansu broker: trades/s, CPU, idle CPU, watermark-to-
#                                   topic delay) and scripts/bench_checkpoint.sh (checkpoint
#                                   size and time, restart to caught up after kill -9 with
#                                   100 symbols, W = 60 at 1m) and scripts/bench_book.sh (the
#                                   book operator alone, a simulated depth backfill vs the
#                                   Python rebuild) and scripts/bench_restate.sh (the
#                                   cost of a restatement at 500 symbols) and joins all
#                                   tables in results-all.md
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_SIZES=${BENCH_SIZES:-"1000000 10000000"}
BENCH_SEED=${BENCH_SEED:-42}
BENCH_WORKERS=${BENCH_WORKERS:-"1 2"}
BENCH_REPEAT=${BENCH_REPEAT:-1}
BENCH_DIR=${BENCH_DIR:-$ROOT/.bench}
BENCH_PIP=${BENCH_PIP:-"polars==2.1.0 pyarrow==26.0.1"}
SYMBOLS=5
TRADES_PER_MINUTE=6000 # the simulator's total rate for 5 symbols: 100 trades/s
MF=$ROOT/target/release/marketflow
PY=$BENCH_DIR/venv/bin/python
TIME=/usr/bin/time

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench.sh: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) for: $*"; fi
}

apt_install() {
    say "apt-get install $*"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---- tools -------------------------------------------------------------------------
if [ ! -x "$TIME" ]; then
    apt_install time
    [ -x "$TIME" ] || die "GNU time is still missing at $TIME"
fi

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"
    say "building the release binary"
    cargo build --release --bin marketflow && cargo build --release -p operators --example book_bench
fi
[ -x "$MF" ] || die "$MF is missing (build it with: cargo build --release)"

if ! { [ -x "$PY" ] && "$PY" -c 'import polars, pyarrow' 2>/dev/null; }; then
    say "creating $BENCH_DIR/venv with $BENCH_PIP"
    command -v python3 >/dev/null || apt_install python3
    if ! python3 -m venv "$BENCH_DIR/venv" 2>/dev/null; then
        rm -rf "$BENCH_DIR/venv"
        apt_install python3-venv
        python3 -m venv "$BENCH_DIR/venv"
    fi
    # shellcheck disable=SC2086 # BENCH_PIP is a list of requirements
    "$PY" -m pip install --quiet --disable-pip-version-check $BENCH_PIP
    "$PY" -c 'import polars, pyarrow' || die "polars / pyarrow did not install"
fi

mkdir -p "$BENCH_DIR/data" "$BENCH_DIR/out" "$BENCH_DIR/logs"
CONFIG=$BENCH_DIR/bars.toml
cat >"$CONFIG" <<'EOF'
# bench.sh: bars only, the work the polars competitor does too.
[features]
resolutions = ["1s", "1m", "5m"]
correlation = false
beta = false
indicators = false
risk = false
EOF

# ---- helpers -----------------------------------------------------------------------
label() { # 1000000 -> 1M, 100000 -> 100k
    awk -v n="$1" 'BEGIN {
        if (n >= 1e6 && n % 1e6 == 0) printf "%dM", n / 1e6;
        else if (n >= 1e3 && n % 1e3 == 0) printf "%dk", n / 1e3;
        else printf "%d", n }'
}

# timed LOG CMD...: runs CMD BENCH_REPEAT times; sets WALL (s) and RSS_KB of the fastest.
timed() {
    local log=$1 tf i wall rss
    shift
    tf=$(mktemp)
    WALL=""
    RSS_KB=""
    for ((i = 0; i < BENCH_REPEAT; i++)); do
        if ! "$TIME" -f '%e %M' -o "$tf" "$@" >"$log" 2>&1; then
            printf 'bench.sh: FAILED: %s\n--- last lines of %s ---\n' "$*" "$log" >&2
            tail -n 30 "$log" >&2
            rm -f "$tf"
            exit 1
        fi
        read -r wall rss < <(tail -n 1 "$tf")
        if [ -z "$WALL" ] || awk -v a="$wall" -v b="$WALL" 'BEGIN { exit !(a < b) }'; then
            WALL=$wall
            RSS_KB=$rss
        fi
    done
    rm -f "$tf"
}

ROWS=()    # markdown rows
RESULTS=() # "size engine workers wall rss_kb trades" for the ratios
record() { # size label trades engine workers
    local tps mb
    tps=$(awk -v n="$3" -v s="$WALL" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
    mb=$(awk -v k="$RSS_KB" 'BEGIN { printf "%.0f", k / 1024 }')
    ROWS+=("| $2 ($3) | $4 | $5 | $WALL | $tps | $mb |")
    RESULTS+=("$1 $4 $5 $WALL $RSS_KB $3")
    say "$2 $4, workers $5: ${WALL} s, ${tps} trades/s, ${mb} MB"
}

# ---- runs --------------------------------------------------------------------------
read -r -a SIZES <<<"$BENCH_SIZES"
[ "${#SIZES[@]}" -gt 0 ] || die "BENCH_SIZES is empty"
CHECK_SIZE=${SIZES[0]}
for s in "${SIZES[@]}"; do
    if ! [[ $s =~ ^[1-9][0-9]*$ ]]; then die "bad size in BENCH_SIZES: $s"; fi
    [ "$s" = 1000000 ] && CHECK_SIZE=$s
done
THREADS=$(nproc)

for size in "${SIZES[@]}"; do
    name=$(label "$size")
    input=$BENCH_DIR/data/trades-s$SYMBOLS-n$size-seed$BENCH_SEED.parquet
    if [ ! -s "$input" ]; then
        minutes=$(((size + TRADES_PER_MINUTE - 1) / TRADES_PER_MINUTE))
        say "simulating $name trades ($SYMBOLS symbols, $minutes minutes, seed $BENCH_SEED)"
        tmp=$BENCH_DIR/data/.tmp-$$.parquet
        "$MF" simulate --symbols "$SYMBOLS" --minutes "$minutes" --seed "$BENCH_SEED" \
            --output "$tmp" >"$BENCH_DIR/logs/simulate-$name.log" 2>&1 ||
            { tail -n 30 "$BENCH_DIR/logs/simulate-$name.log" >&2; die "simulate failed"; }
        mv "$tmp" "$input"
    fi
    trades=$("$PY" -c 'import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)' "$input")
    cat "$input" >/dev/null # the same warm page cache for every engine

    for w in $BENCH_WORKERS; do
        out=$BENCH_DIR/out/$name-marketflow-w$w
        rm -rf "$out"
        timed "$BENCH_DIR/logs/$name-marketflow-w$w.log" \
            "$MF" backfill --config "$CONFIG" --input "$input" --output "$out" -w "$w"
        record "$size" "$name" "$trades" marketflow "$w"
        [ -d "$out/bars" ] || die "marketflow wrote no bars under $out (see $BENCH_DIR/logs/$name-marketflow-w$w.log)"
    done

    out=$BENCH_DIR/out/$name-polars
    rm -rf "$out"
    timed "$BENCH_DIR/logs/$name-polars.log" "$PY" scripts/bench_polars.py --input "$input" --output "$out"
    record "$size" "$name" "$trades" polars "all ($THREADS)"

    if [ "$size" = "$CHECK_SIZE" ]; then
        for w in $BENCH_WORKERS; do
            say "checking polars' $name bars against marketflow -w $w"
            if ! "$PY" scripts/bench_polars.py --input "$input" --check "$BENCH_DIR/out/$name-marketflow-w$w"; then
                die "CORRECTNESS CHECK FAILED: marketflow -w $w and polars disagree on the $name bars"
            fi
        done
    fi
done

# ---- report ------------------------------------------------------------------------
report() {
    echo "## marketflow backfill vs polars: bars 1s/1m/5m, end to end (Parquet in and out)"
    echo
    echo "$SYMBOLS symbols, seed $BENCH_SEED, $THREADS cores ($(uname -m)), $("$PY" -c 'import polars; print("polars", polars.__version__)'), $(date -u +%Y-%m-%d)."
    echo
    echo "| input | engine | workers | wall s | trades/s | peak RSS MB |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    printf '%s\n' "${RESULTS[@]}" | awk '
        function label(n) {
            if (n >= 1e6 && n % 1e6 == 0) return sprintf("%dM", n / 1e6)
            if (n >= 1e3 && n % 1e3 == 0) return sprintf("%dk", n / 1e3)
            return n
        }
        {
            size = $1; engine = $2; wall = $(NF - 2); rss = $(NF - 1); n = $NF
            workers = (engine == "polars") ? "" : $3
            key = engine (workers == "" ? "" : " -w " workers)
            tps[size, key] = (wall > 0) ? n / wall : 0
            mem[size, key] = rss
            if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
            if (!(size in seens)) { seens[size] = 1; sizes[++ns] = size }
        }
        END {
            print "Throughput marketflow / polars (higher is better for marketflow):"
            print ""
            for (i = 1; i <= ns; i++) {
                s = sizes[i]; line = ""
                for (k = 1; k <= nk; k++) {
                    if (keys[k] == "polars" || tps[s, "polars"] == 0) continue
                    line = line sprintf("%s %s %.2fx", (line == "" ? "" : ","), keys[k], tps[s, keys[k]] / tps[s, "polars"])
                }
                print "- " label(s) ":" line
            }
            if (ns > 1) {
                lo = sizes[1]; hi = sizes[1]
                for (i = 2; i <= ns; i++) { if (sizes[i] + 0 < lo + 0) lo = sizes[i]; if (sizes[i] + 0 > hi + 0) hi = sizes[i] }
                print ""
                printf "Peak RSS(%s) / RSS(%s) (1.0 = memory independent of input size):\n\n", label(hi), label(lo)
                line = ""
                for (k = 1; k <= nk; k++) {
                    if (mem[lo, keys[k]] > 0) line = line sprintf("%s %s %.2fx", (line == "" ? "" : ","), keys[k], mem[hi, keys[k]] / mem[lo, keys[k]])
                }
                print "-" line
            }
        }'
}

report | tee "$BENCH_DIR/results.md"
say "saved $BENCH_DIR/results.md; logs in $BENCH_DIR/logs, outputs in $BENCH_DIR/out"

# ---- the other benchmarks ----------------------------------------------------------
# Full feature set vs polars and the correlation operator alone (issue 3), scaling over
# processes x workers (issue 5), the live job (issue 4), checkpoints (issue 6);
# BENCH_BARS_ONLY=1 skips them.
if [ "${BENCH_BARS_ONLY:-0}" != 1 ]; then
    export BENCH_DIR BENCH_SEED
    scripts/bench_features.sh
    BENCH_SKIP_BUILD=1 scripts/bench_shapes.sh
    BENCH_SKIP_BUILD=1 scripts/bench_wide.sh
    BENCH_SKIP_BUILD=1 scripts/bench_wide_live.sh
    BENCH_SKIP_BUILD=1 scripts/bench_scaling.sh
    BENCH_SKIP_BUILD=1 scripts/bench_live.sh
    BENCH_SKIP_BUILD=1 scripts/bench_checkpoint.sh
    BENCH_SKIP_BUILD=1 scripts/bench_book.sh
    scripts/bench_restate.sh
    cat "$BENCH_DIR/results.md" "$BENCH_DIR/results-features.md" "$BENCH_DIR/results-shapes.md" "$BENCH_DIR/results-wide.md" \
        "$BENCH_DIR/results-wide-live.md" "$BENCH_DIR/results-scaling.md" \
        "$BENCH_DIR/results-live.md" "$BENCH_DIR/results-checkpoint.md" "$BENCH_DIR/results-book.md" \
        "$BENCH_DIR/results-restate.md" >"$BENCH_DIR/results-all.md"
    say "all tables: $BENCH_DIR/results-all.md"
fi
