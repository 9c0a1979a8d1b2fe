#!/usr/bin/env bash
# bench_wide_live.sh: shape W (issue "Wide universes") and shape E (issue "Cost follows
# the data") through a separate broker (tansu, in-memory, on WIDE_PORT): the live job
# at WIDE_LIVE_SYMBOLS simulated symbols, 1s bars, every set, W = 60, -w 2.
#
# 1. Backlog: the whole input of WIDE_LIVE_MINUTES minutes is produced into a
#    4-partition topic first; then `marketflow run` reads it as fast as it can, in the
#    `pairs` and the `matrix` layout. Reported: the wall seconds from the job's start to
#    the end of its work (the first of 3 quiet seconds, at most 10% of a core each, after
#    every record was read; see wait_quiet), its CPU seconds, peak RSS (VmHWM), the multiple of real
#    time, and the rows sent to Kafka. A fresh broker per run (its storage is memory).
# 2. Real time (shape E): WIDE_PACED_MINUTES simulated minutes produced at speed 1 while
#    the job runs (`pairs`); reported: the job's CPU as a share of a core, its peak RSS,
#    and the watermark-to-topic delay p50 / p99 per set from its stop line.
# The table goes to $BENCH_DIR/results-wide-live.md.
#
# Environment: BENCH_DIR (.bench), BENCH_SEED (42), WIDE_LIVE_SYMBOLS ("200 500"),
# WIDE_LIVE_MINUTES (10), WIDE_PACED_SYMBOLS (200), WIDE_PACED_MINUTES (3),
# WIDE_PORT (19095), BENCH_SKIP_BUILD=1 to use the built binary.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

WIDE_LIVE_SYMBOLS=${WIDE_LIVE_SYMBOLS:-"200 500"}
WIDE_LIVE_MINUTES=${WIDE_LIVE_MINUTES:-10}
WIDE_PACED_SYMBOLS=${WIDE_PACED_SYMBOLS:-200}
WIDE_PACED_MINUTES=${WIDE_PACED_MINUTES:-3}
WIDE_LAYOUTS=${WIDE_LAYOUTS:-"pairs matrix"}
WIDE_PORT=${WIDE_PORT:-19095}
TICKS=$(getconf CLK_TCK)

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin marketflow
fi
WORK=$BENCH_DIR/wide-live
LOGS=$BENCH_DIR/logs
mkdir -p "$BENCH_DIR/data" "$LOGS"

JOB_PID=
cleanup() {
    [ -n "$JOB_PID" ] && kill -KILL "$JOB_PID" 2>/dev/null || true
    scripts/kafka-broker.sh stop --port "$WIDE_PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT

peak_mb() { awk '/^VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }
# records_read LOG: records the job read so far (accepted and rejected by the sources).
records_read() {
    { grep -o 'read=[0-9]* source_rejects=[0-9]*' "$1" || true; } | tr -c '0-9\n' ' ' |
        awk '{ print $1 + $2 }' | sort -n | tail -n 1
}
field() { printf '%s\n' "$line" | grep -o "$1=[^ ]*" | cut -d= -f2 | tr -d '"'; }

# fresh_broker: a new broker (its memory freed), printing its address.
fresh_broker() {
    scripts/kafka-broker.sh stop --port "$WIDE_PORT" >/dev/null 2>&1 || true
    scripts/kafka-broker.sh start --port "$WIDE_PORT"
}

# config NAME BROKERS LAYOUT: a live config reading topic wide.NAME.
config() {
    rm -rf "$WORK/$1-out"
    cat >"$WORK/$1.toml" <<EOF
[kafka]
brokers = "$2"
[[sources]]
name = "$1"
kind = "trades"
topic = "wide.$1"
[time]
max_out_of_orderness = "2s"
idle_timeout = "2s"
[features]
resolutions = ["1s"]
rolling_window = 60
benchmark = "BTCUSDT"
risk = true
correlation_layout = "$3"
[sinks.kafka]
topic_prefix = "$1.feature."
[sinks.parquet]
output = "file://$WORK/$1-out"
[progress]
interval = "1s"
EOF
    printf '%s\n' "$WORK/$1.toml"
}

# wait_quiet PID: returns once the job used at most 10% of a core in each of 3 seconds
# in a row (at most 120 s); prints the time the quiet spell began. (Caught up, a job
# of 500 symbols with a progress line a second uses 3-6% of a core: the line's delay
# percentiles, the metrics, librdkafka's threads.)
wait_quiet() {
    local quiet=0 q0 start
    for _ in $(seq 120); do
        q0=$(cpu_ticks "$1")
        [ "$quiet" -eq 0 ] && start=$(now)
        sleep 1
        if [ $(($(cpu_ticks "$1") - q0)) -le $((TICKS / 10)) ]; then
            quiet=$((quiet + 1))
        else
            quiet=0
        fi
        [ "$quiet" -ge 3 ] && break
    done
    printf '%s\n' "$start"
}

stop_job() {
    kill -TERM "$JOB_PID"
    wait "$JOB_PID" || die "the job exited $? on SIGTERM (see $1)"
    JOB_PID=
}

rm -rf "$WORK"
mkdir -p "$WORK"
ROWS=()
for n in $WIDE_LIVE_SYMBOLS; do
    in=$(wide_input "$n" "$WIDE_LIVE_MINUTES" wide-sim.log)
    total=$("$BENCH_DIR/venv/bin/python" -c "import pyarrow.parquet as pq, sys; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)" "$in")
    for layout in $WIDE_LAYOUTS; do
        name=s$n-$layout
        brokers=$(fresh_broker)
        cfg=$(config "$name" "$brokers" "$layout")
        scripts/kafka-broker.sh topic "wide.$name" 4 --port "$WIDE_PORT" >/dev/null
        say "W live backlog: $n symbols, $WIDE_LIVE_MINUTES min, $layout (producing $total trades)"
        "$MF" --config "$cfg" produce --input "$in" --topic "wide.$name" --speed 0 \
            >"$LOGS/wide-live-produce.log" 2>&1 || { tail -n 20 "$LOGS/wide-live-produce.log" >&2; die "produce failed"; }
        log=$LOGS/wide-live-$name.log
        t0=$(now)
        "$MF" --config "$cfg" run -w 2 >"$log" 2>&1 &
        JOB_PID=$!
        while :; do
            kill -0 "$JOB_PID" 2>/dev/null || { tail -n 20 "$log" >&2; die "the job died"; }
            read=$(records_read "$log")
            [ "${read:-0}" -ge "$total" ] && break
            sleep 0.5
        done
        t1=$(wait_quiet "$JOB_PID")
        cpu=$(calc %.2f "$(cpu_ticks "$JOB_PID") / $TICKS")
        rss=$(peak_mb "$JOB_PID")
        stop_job "$log"
        wall=$(calc %.2f "$t1 - $t0")
        kafka_rows=$(for w in 0 1; do grep "worker=$w " "$log" | grep -o 'rows_out={[^}]*}' | tail -n 1; done |
            grep -o 'kafka:[^,}]*' | awk -F': ' '{ s += $2 } END { print s + 0 }')
        ROWS+=("| $n | $WIDE_LIVE_MINUTES | $layout | $wall | $cpu | $rss | $(calc %.0f "$WIDE_LIVE_MINUTES * 60 / $wall")x | $kafka_rows |")
        say "${ROWS[-1]}"
    done
done

# ---- real time (shape E) --------------------------------------------------------------
paced=
if [ "$WIDE_PACED_MINUTES" != 0 ]; then
    in=$(wide_input "$WIDE_PACED_SYMBOLS" "$WIDE_PACED_MINUTES" wide-sim.log)
    name=paced
    brokers=$(fresh_broker)
    cfg=$(config "$name" "$brokers" pairs)
    scripts/kafka-broker.sh topic "wide.$name" 4 --port "$WIDE_PORT" >/dev/null
    log=$LOGS/wide-live-paced.log
    "$MF" --config "$cfg" run -w 2 >"$log" 2>&1 &
    JOB_PID=$!
    sleep 2
    say "E: $WIDE_PACED_SYMBOLS symbols in real time for $WIDE_PACED_MINUTES minutes"
    c0=$(cpu_ticks "$JOB_PID")
    t0=$(now)
    "$MF" --config "$cfg" produce --input "$in" --topic "wide.$name" --speed 1 \
        >"$LOGS/wide-live-produce-paced.log" 2>&1 || { tail -n 20 "$LOGS/wide-live-produce-paced.log" >&2; die "paced produce failed"; }
    paced_cpu=$(calc %.0f "($(cpu_ticks "$JOB_PID") - $c0) * 100 / $TICKS / ($(now) - $t0)")
    sleep 4 # idleness releases the last windows
    paced_rss=$(peak_mb "$JOB_PID")
    stop_job "$log"
    line=$(grep 'live job stopped' "$log" | tail -n 1)
    paced="Real time (shape E): $WIDE_PACED_SYMBOLS symbols, $WIDE_PACED_MINUTES minutes at speed 1, pairs:
job CPU ${paced_cpu}% of a core, peak RSS $paced_rss MB, watermark-to-topic delay
p50 / p99 $(field latency_p50_ms) / $(field latency_p99_ms) ms ($(field latency_samples) rows); per set: $(field latency_p50_p99_ms_by_set | sed 's/,/, /g')"
fi

{
    echo "## Shape W live: wide universes at 1s through tansu (-w 2, every set, W = 60)"
    echo
    echo "Seed $BENCH_SEED, $(nproc) cores, $(date -u +%Y-%m-%d). Backlog: the whole input in the"
    echo "topic first; wall = job start to the end of its work; real time = input span / wall."
    echo
    echo "| symbols | minutes | layout | wall s | CPU s | peak RSS MB | real time | rows to Kafka |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    if [ -n "$paced" ]; then printf '\n%s\n' "$paced"; fi
} | tee "$BENCH_DIR/results-wide-live.md"
