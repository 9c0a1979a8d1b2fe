#!/usr/bin/env bash
# bench_live.sh: the live job through a separate broker (tansu from
# scripts/kafka-broker.sh, on LIVE_PORT). Called by scripts/bench.sh (or alone).
#
# 1. Sustained throughput: LIVE_SIZE simulated trades (5 symbols, the Parquet file
#    bench.sh caches) are produced into a 4-partition topic first; then `marketflow run`
#    (every feature set, -w LIVE_WORKERS) reads the backlog. Reported: trades/s from the
#    job's start until its progress line shows every record read, and the job's CPU
#    (user + system, /proc) per 100k trades/s over that span.
# 2. Idle CPU: the same job, caught up (its last windows written: 3 seconds in a row
#    at most 2% of a core each) and receiving nothing, over LIVE_IDLE_S seconds.
# 3. Latency: a fresh job on a fresh topic while `produce --speed LIVE_SPEED` feeds it a
#    LIVE_MINUTES-minute simulated market in event-time order; the job's stop line gives
#    p50/p99 of the delay from the watermark passing a window's end to the brokers'
#    acknowledgement of the window's rows (target p99 under 10 ms). Run twice: with the
#    15 feature topics created first with 1 partition (Kafka's default num.partitions),
#    and auto-created by tansu (4 partitions). librdkafka sends one produce request per
#    partition and tansu answers them one after another, so the partition count of the
#    feature topics shows in the delay.
# 4. Lateness: sections 1 and 3 (auto-created topics) again with
#    `time.allowed_lateness = "30s"` and nothing late: what keeping the history for
#    restatements costs (target: within 10% of the run with "0s").
# Writes the markdown table to $BENCH_DIR/results-live.md.
#
# Environment: BENCH_DIR (.bench), BENCH_SEED (42), LIVE_SIZE (1000000), LIVE_WORKERS
# (2), LIVE_IDLE_S (10), LIVE_MINUTES (10), LIVE_SPEED (20), LIVE_PORT (19094),
# BENCH_SKIP_BUILD=1 to use target/release/marketflow as it is.
set -euo pipefail

# shellcheck source=scripts/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

LIVE_SIZE=${LIVE_SIZE:-1000000}
LIVE_WORKERS=${LIVE_WORKERS:-2}
LIVE_IDLE_S=${LIVE_IDLE_S:-10}
LIVE_MINUTES=${LIVE_MINUTES:-10}
LIVE_SPEED=${LIVE_SPEED:-20}
LIVE_PORT=${LIVE_PORT:-19094}
TICKS=$(getconf CLK_TCK)

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin marketflow
fi
input=$(bench_input "$LIVE_SIZE" simulate-live.log)
LOGS=$BENCH_DIR/logs
WORK=$BENCH_DIR/live
rm -rf "$WORK"
mkdir -p "$WORK" "$LOGS"

brokers=$(scripts/kafka-broker.sh start --port "$LIVE_PORT")
JOB_PID=
cleanup() {
    [ -n "$JOB_PID" ] && kill -KILL "$JOB_PID" 2>/dev/null || true
    scripts/kafka-broker.sh stop --port "$LIVE_PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# config NAME TOPIC [LATENESS]: a live config reading TOPIC, writing under $WORK/NAME.
config() {
    cat >"$WORK/$1.toml" <<EOF
[kafka]
brokers = "$brokers"
[[sources]]
name = "$1"
kind = "trades"
topic = "$2"
[time]
max_out_of_orderness = "2s"
idle_timeout = "2s"
allowed_lateness = "${3:-0s}"
[features]
resolutions = ["1s", "1m", "5m"]
rolling_window = 60
benchmark = "BTCUSDT"
[sinks.kafka]
topic_prefix = "$1.feature."
[sinks.parquet]
output = "file://$WORK/$1-out"
[progress]
interval = "1s"
EOF
    printf '%s\n' "$WORK/$1.toml"
}


# records_read LOG: the largest `read=` of the job's progress lines so far.
records_read() {
    { grep -o 'read=[0-9]*' "$1" || true; } | cut -d= -f2 | sort -n | tail -n 1
}

stop_job() { # SIGTERM, then wait for a clean exit
    kill -TERM "$JOB_PID"
    wait "$JOB_PID" || die "the job exited $? on SIGTERM (see $2)"
    JOB_PID=
}

# ---- 1. throughput -----------------------------------------------------------------
# throughput NAME LATENESS: the backlog read by a job with that allowed lateness; sets
# produce_s, wall, rate, cpu_s and cores_per_100k, and leaves the job running.
throughput() {
    local name=$1 cfg log t0 t1 read busy_ticks
    cfg=$(config "$name" "bench.$name" "$2")
    scripts/kafka-broker.sh topic "bench.$name" 4 --port "$LIVE_PORT" >/dev/null
    say "producing $LIVE_SIZE trades into bench.$name"
    t0=$(now)
    "$MF" --config "$cfg" produce --input "$input" --topic "bench.$name" --speed 0 \
        >"$LOGS/live-produce.log" 2>&1 || { tail -n 20 "$LOGS/live-produce.log" >&2; die "produce failed"; }
    produce_s=$(calc %.2f "$(now) - $t0")
    say "live job on the backlog (-w $LIVE_WORKERS, allowed_lateness $2)"
    log=$LOGS/live-throughput-$name.log
    t0=$(now)
    "$MF" --config "$cfg" run -w "$LIVE_WORKERS" >"$log" 2>&1 &
    JOB_PID=$!
    while :; do
        kill -0 "$JOB_PID" 2>/dev/null || { tail -n 20 "$log" >&2; die "the job died"; }
        read=$(records_read "$log")
        [ "${read:-0}" -ge "$LIVE_SIZE" ] && break
        sleep 0.2
    done
    t1=$(now)
    busy_ticks=$(cpu_ticks "$JOB_PID")
    wall=$(calc %.2f "$t1 - $t0")
    rate=$(calc %.0f "$LIVE_SIZE / $wall")
    cpu_s=$(calc %.2f "$busy_ticks / $TICKS")
    cores_per_100k=$(calc %.2f "$cpu_s * 100000 / $LIVE_SIZE")
}
throughput late30 30s
late_rate=$rate late_wall=$wall late_cpu=$cpu_s
stop_job "$LOGS/live-throughput-late30.log"
throughput thr 0s
log=$LOGS/live-throughput-thr.log

# ---- 2. idle -----------------------------------------------------------------------
# Let the sources go idle (time.idle_timeout) and the last windows and Parquet
# partitions flush: wait (at most 40 s) for 3 seconds in a row in which the job used
# at most 2% of a core each.
quiet=0
for _ in $(seq 40); do
    q0=$(cpu_ticks "$JOB_PID")
    sleep 1
    if [ $(($(cpu_ticks "$JOB_PID") - q0)) -le $((TICKS / 50)) ]; then
        quiet=$((quiet + 1))
    else
        quiet=0
    fi
    [ "$quiet" -ge 3 ] && break
done
i0=$(cpu_ticks "$JOB_PID")
sleep "$LIVE_IDLE_S"
i1=$(cpu_ticks "$JOB_PID")
idle_pct=$(calc %.2f "($i1 - $i0) * 100 / $TICKS / $LIVE_IDLE_S")
stop_job "$log"

# ---- 3. latency --------------------------------------------------------------------
"$MF" simulate --symbols 5 --minutes "$LIVE_MINUTES" --seed "$BENCH_SEED" \
    --output "$WORK/lat.parquet" >"$LOGS/live-simulate.log" 2>&1 ||
    { tail -n 20 "$LOGS/live-simulate.log" >&2; die "simulate failed"; }
# latency NAME FEATURE_PARTITIONS: one paced run on topic bench.NAME; with
# FEATURE_PARTITIONS > 0 the 15 feature topics are created first with that many
# partitions, otherwise tansu auto-creates them (with 4 partitions) on first produce.
# Sets p50, p99, pmax, samples and by_set from the job's stop line.
latency() {
    local name=$1 parts=$2 cfg log line set res
    cfg=$(config "$name" "bench.$name" "${3:-0s}")
    scripts/kafka-broker.sh topic "bench.$name" 4 --port "$LIVE_PORT" >/dev/null
    if [ "$parts" -gt 0 ]; then
        for set in bars indicators correlation beta alerts; do
            for res in 1s 1m 5m; do
                scripts/kafka-broker.sh topic "$name.feature.$set.$res" "$parts" \
                    --port "$LIVE_PORT" >/dev/null
            done
        done
    fi
    log=$LOGS/live-$name.log
    "$MF" --config "$cfg" run -w "$LIVE_WORKERS" >"$log" 2>&1 &
    JOB_PID=$!
    say "paced feed: $LIVE_MINUTES simulated minutes at ${LIVE_SPEED}x ($name)"
    "$MF" --config "$cfg" produce --input "$WORK/lat.parquet" --topic "bench.$name" \
        --speed "$LIVE_SPEED" >"$LOGS/live-produce-$name.log" 2>&1 ||
        { tail -n 20 "$LOGS/live-produce-$name.log" >&2; die "paced produce failed"; }
    sleep 4 # idleness releases the last windows
    stop_job "$log"
    line=$(grep 'live job stopped' "$log" | tail -n 1)
    p50=$(field latency_p50_ms)
    p99=$(field latency_p99_ms)
    pmax=$(field latency_max_ms)
    samples=$(field latency_samples)
    by_set=$(field latency_p50_p99_ms_by_set)
}
field() { printf '%s\n' "$line" | grep -o "$1=[^ ]*" | cut -d= -f2 | tr -d '"'; }
latency lat1 1
lat1="$p50 / $p99 / $pmax ms ($samples rows)"
lat1_sets=${by_set//,/, }
latency late30lat 0 30s
lat30="$p50 / $p99 / $pmax ms ($samples rows)"
latency lat 0

{
    echo "### Live job through tansu (-w $LIVE_WORKERS, every feature set)"
    echo
    echo "| measure | value |"
    echo "|---|---|"
    echo "| produce $LIVE_SIZE trades into the broker | $produce_s s |"
    echo "| sustained end-to-end trades/s (backlog of $LIVE_SIZE, $wall s) | $rate |"
    echo "| job CPU over that span | $cpu_s s |"
    echo "| CPU cores per 100k trades/s | $cores_per_100k |"
    echo "| idle CPU (caught up, ${LIVE_IDLE_S} s) | ${idle_pct}% of a core |"
    echo "| watermark-to-topic delay p50 / p99 / max, feature topics of 1 partition | $lat1 |"
    echo "| the same per set, p50/p99 ms | $lat1_sets |"
    echo "| watermark-to-topic delay p50 / p99 / max, feature topics auto-created (4 partitions) | $p50 / $p99 / $pmax ms ($samples rows) |"
    echo "| the same per set, p50/p99 ms | ${by_set//,/, } |"
    echo "| with \`allowed_lateness = \"30s\"\`, nothing late: trades/s (backlog, $late_wall s) / CPU | $late_rate / $late_cpu s |"
    echo "| with \`allowed_lateness = \"30s\"\`: delay p50 / p99 / max, auto-created topics | $lat30 |"
} | tee "$BENCH_DIR/results-live.md"
