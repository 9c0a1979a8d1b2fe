#!/usr/bin/env bash
# bench_checkpoint.sh: checkpoints of the live job with 100 symbols, W = 60 at 1m bars,
# through a separate broker (tansu from scripts/kafka-broker.sh, on CKPT_PORT). Called by
# scripts/bench.sh (or alone).
#
# The input is CKPT_HOURS hours of 1m candles of CKPT_SYMBOLS random-walk symbols (the
# candle input feeds the bar-level features directly, so the rolling state of 100 symbols
# is reached without producing 8M trades a simulated hour). Every feature set is on,
# with a correlation matrix of 4,950 pairs.
# 1. Cold start on all but the last half hour: the time until the cut of the last full
#    hour is durable (its offsets recorded: everything before it is in Parquet and on
#    the feature topics), and the size and write time of that checkpoint.
# 2. kill -9; the last half hour arrives; restart: the time until the final hour's cut
#    is durable (restore, replay from the restored cut, catching up), and the restore's
#    size and read time. Restart time depends on the replay since the last cut (at most
#    checkpoint.interval), not on the job's age.
# Writes the markdown table to $BENCH_DIR/results-checkpoint.md.
#
# Environment: BENCH_DIR (.bench), CKPT_SYMBOLS (100), CKPT_HOURS (6), CKPT_WORKERS (2),
# CKPT_PORT (19095), BENCH_SKIP_BUILD=1 to use target/release/marketflow as it is.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

CKPT_SYMBOLS=${CKPT_SYMBOLS:-100}
CKPT_HOURS=${CKPT_HOURS:-6}
CKPT_WORKERS=${CKPT_WORKERS:-2}
CKPT_PORT=${CKPT_PORT:-19095}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin marketflow
fi
LOGS=$BENCH_DIR/logs
WORK=$BENCH_DIR/checkpoint
rm -rf "$WORK"
mkdir -p "$WORK" "$LOGS"
: >"$LOGS/ckpt-produce.log"

brokers=$(scripts/kafka-broker.sh start --port "$CKPT_PORT")
JOB_PID=
cleanup() {
    [ -n "$JOB_PID" ] && kill -KILL "$JOB_PID" 2>/dev/null || true
    scripts/kafka-broker.sh stop --port "$CKPT_PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT

hhmm() { date -u -d "@$(($1 / 1000))" +%H:%M; }

# ---- input: 1m candles, one random walk per symbol ------------------------------------
# Two parts: all but the last half hour, then the last half hour and one more minute (so
# the watermark passes the end of the last hour).
first_minutes=$((CKPT_HOURS * 60 - 30))
say "writing $CKPT_HOURS h of 1m candles for $CKPT_SYMBOLS symbols"
awk -v n="$CKPT_SYMBOLS" -v minutes=$((CKPT_HOURS * 60 + 1)) -v split_at="$first_minutes" \
    -v a="$WORK/candles-a.csv" -v b="$WORK/candles-b.csv" 'BEGIN {
    srand(42)
    header = "ts_ms,symbol,open,high,low,close,volume"
    print header > a
    print header > b
    t0 = 1704067200000
    for (s = 0; s < n; s++) p[s] = 10 + s
    for (m = 0; m < minutes; m++) {
        out = m < split_at ? a : b
        f = rand() - 0.5
        for (s = 0; s < n; s++) {
            o = p[s]; c = o * exp(0.002 * f + 0.002 * (rand() - 0.5)); p[s] = c
            h = (o > c ? o : c) * 1.001; l = (o < c ? o : c) * 0.999
            printf "%.0f,S%03d,%.6f,%.6f,%.6f,%.6f,%.3f\n", t0 + m * 60000, s, o, h, l, c, 1 + 10 * rand() > out
        }
    }
}'
records=$(((CKPT_HOURS * 60 + 1) * CKPT_SYMBOLS))
t0_ms=1704067200000
hour_ms=3600000
# The cut each phase ends with: its offsets are recorded once everything before it is
# durable in every sink (Parquet and all feature topics).
cut_a=$((t0_ms + (CKPT_HOURS - 1) * hour_ms))
cut_b=$((t0_ms + CKPT_HOURS * hour_ms))

cfg=$WORK/ckpt.toml
cat >"$cfg" <<CONFIG
[kafka]
brokers = "$brokers"
[[sources]]
name = "ckpt"
kind = "candles"
topic = "bench.ckpt"
[time]
max_out_of_orderness = "0s"
idle_timeout = "2s"
[features]
resolutions = ["1m"]
rolling_window = 60
benchmark = "S000"
[sinks.kafka]
topic_prefix = "ckpt.feature."
[sinks.parquet]
output = "file://$WORK/out"
[progress]
interval = "1s"
CONFIG
scripts/kafka-broker.sh topic bench.ckpt 2 --port "$CKPT_PORT" >/dev/null

produce() {
    "$MF" --config "$cfg" produce --input "$1" --topic bench.ckpt --speed 0 \
        >>"$LOGS/ckpt-produce.log" 2>&1 ||
        { tail -n 20 "$LOGS/ckpt-produce.log" >&2; die "produce failed"; }
}

# run_until_cut LOG CUT: starts the job; returns once it recorded the offsets of CUT
# for both partitions.
run_until_cut() {
    local log=$1 cut=$2
    "$MF" --config "$cfg" --log-format text run -w "$CKPT_WORKERS" >"$log" 2>&1 &
    JOB_PID=$!
    until [ "$(grep -c "checkpoint offsets written cut=$cut " "$log")" -ge 2 ]; do
        kill -0 "$JOB_PID" 2>/dev/null || { tail -n 20 "$log" >&2; die "the job died"; }
        sleep 0.05
    done
}

produce "$WORK/candles-a.csv"
say "cold start on $((first_minutes * CKPT_SYMBOLS)) candles (-w $CKPT_WORKERS)"
log1=$LOGS/ckpt-cold.log
t0=$(now)
run_until_cut "$log1" "$cut_a"
cold_s=$(calc %.2f "$(now) - $t0")
kill -KILL "$JOB_PID"
wait "$JOB_PID" 2>/dev/null || true
JOB_PID=

# Size and write time of that cut (every state file of every worker).
state_lines=$(grep "checkpoint state written cut=$cut_a " "$log1")
files=$(printf '%s\n' "$state_lines" | wc -l)
sum_of() { printf '%s\n' "$state_lines" | grep -o " $1=[0-9]*" | cut -d= -f2 | awk '{s+=$1} END {print s}'; }
max_of() { printf '%s\n' "$state_lines" | grep -o " $1=[0-9]*" | cut -d= -f2 | sort -n | tail -n 1; }
bytes=$(sum_of bytes)
write_ms=$(sum_of ms)
write_max=$(max_of ms)
disk=$(du -sk "$WORK/out/_checkpoints/$(printf '%015d' "$cut_a")" | cut -f1)

say "kill -9; the last half hour arrives; restart"
produce "$WORK/candles-b.csv"
log2=$LOGS/ckpt-restart.log
t0=$(now)
run_until_cut "$log2" "$cut_b"
restart_s=$(calc %.2f "$(now) - $t0")
kill -TERM "$JOB_PID"
wait "$JOB_PID" || die "the restarted job exited $? on SIGTERM (see $log2)"
JOB_PID=
restored=$(grep 'checkpoint restored' "$log2" | tail -n 1)
[ -n "$restored" ] || die "the restart did not restore a checkpoint (see $log2)"
r_cut=$(printf '%s\n' "$restored" | grep -o ' cut=[0-9]*' | cut -d= -f2)
r_bytes=$(printf '%s\n' "$restored" | grep -o ' bytes=[0-9]*' | cut -d= -f2)
r_ms=$(printf '%s\n' "$restored" | grep -o ' ms=[0-9]*' | cut -d= -f2)

{
    echo "### Checkpoints: $CKPT_SYMBOLS symbols, W = 60 at 1m bars, every feature set (-w $CKPT_WORKERS)"
    echo
    echo "| measure | value |"
    echo "|---|---|"
    echo "| input | $CKPT_HOURS h of 1m candles, $records records |"
    echo "| checkpoint at $(hhmm "$cut_a"): state files / bytes | $files / $bytes (${disk} KiB on disk with offsets) |"
    echo "| checkpoint write time, sum / slowest file | $write_ms / $write_max ms |"
    echo "| cold start on $((first_minutes / 60)).5 h of backlog until the $(hhmm "$cut_a") cut is durable | $cold_s s |"
    echo "| kill -9, restart (restored the $(hhmm "$r_cut") cut) until the $(hhmm "$cut_b") cut is durable | $restart_s s |"
    echo "| restore: bytes read / time | $r_bytes / $r_ms ms |"
} | tee "$BENCH_DIR/results-checkpoint.md"
