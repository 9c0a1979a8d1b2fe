#!/usr/bin/env bash
# Starts one marketflow process per hostfile line, with the right `-n -p -h`:
#   scripts/launch.sh HOSTFILE -- marketflow ARGS...
# Local lines (localhost, 127.x, ::1, this machine's names and addresses) start
# directly; remote ones over ssh, with the same binary path and working directory
# (every machine needs the binary, the config, the hostfile and the inputs at the
# same paths). Each process's log lines are prefixed `[pN] `. Ctrl-C, or the
# failure of any process, stops all of them; the exit code is the first failure's
# (0 when all succeed). A malformed hostfile or bad usage exits 2.
# A remote process is stopped when its ssh connection closes (this script holds the
# connection's stdin open until it exits).
# Env: LAUNCH_SSH (default `ssh -o BatchMode=yes`), LAUNCH_GRACE (seconds between
# SIGTERM and SIGKILL when stopping, default 5), LAUNCH_SSH_ALL=1 (start local lines
# over ssh too, for example to test the ssh path).
set -euo pipefail

usage() {
    echo "usage: $0 HOSTFILE -- marketflow ARGS..." >&2
    exit 2
}

[[ $# -ge 3 && $2 == "--" ]] || usage
hostfile=$1
shift 2
[[ -f $hostfile && -r $hostfile ]] || { echo "launch.sh: hostfile $hostfile: cannot read" >&2; exit 2; }
hostfile=$(cd "$(dirname "$hostfile")" && pwd)/$(basename "$hostfile")

# The hostfile: one host:port a line; blank lines and `#` comments skipped.
hosts=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line ]] && continue
    if [[ ! $line =~ ^(.+):([0-9]+)$ ]] || ((10#${BASH_REMATCH[2]} < 1 || 10#${BASH_REMATCH[2]} > 65535)); then
        echo "launch.sh: hostfile $hostfile line $lineno: \`$line\` is not host:port" >&2
        exit 2
    fi
    for seen in "${hosts[@]+"${hosts[@]}"}"; do
        if [[ $seen == "$line" ]]; then
            echo "launch.sh: hostfile $hostfile line $lineno: \`$line\` appears twice" >&2
            exit 2
        fi
    done
    hosts+=("$line")
done <"$hostfile"
n=${#hosts[@]}
((n > 0)) || { echo "launch.sh: hostfile $hostfile lists no address" >&2; exit 2; }

# The command, with an absolute binary path (remote machines use the same path).
cmd=("$@")
if [[ ${cmd[0]} == */* ]]; then
    cmd[0]=$(cd "$(dirname "${cmd[0]}")" && pwd)/$(basename "${cmd[0]}")
elif resolved=$(command -v "${cmd[0]}"); then
    cmd[0]=$resolved
else
    echo "launch.sh: ${cmd[0]}: command not found" >&2
    exit 2
fi
for a in "${cmd[@]:1}"; do
    case $a in
    -n | -p | -h | --processes | --process | --hostfile | --processes=* | --process=* | --hostfile=*)
        echo "launch.sh: do not pass $a; launch.sh sets -n -p -h from the hostfile" >&2
        exit 2
        ;;
    esac
done

local_names=" localhost localhost.localdomain ::1 [::1] $(hostname) $(hostname -f 2>/dev/null || true) $(hostname -I 2>/dev/null || true) "
is_local() {
    local host=$1
    [[ ${LAUNCH_SSH_ALL:-0} != 1 ]] || return 1
    [[ $host == 127.* || $local_names == *" $host "* ]]
}

read -r -a ssh_cmd <<<"${LAUNCH_SSH:-ssh -o BatchMode=yes}"
grace=${LAUNCH_GRACE:-5}
workdir=$(pwd)
pids=()
stopping=0

# The stdin of every ssh: a fifo this script keeps open (fd 3), so that it reaches EOF,
# and the remote process is stopped, when the script ends however it ends.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/keepalive"
exec 3<>"$tmp/keepalive"

stop_all() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 $((grace * 10))); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

on_signal() {
    echo "launch.sh: stopping all processes" >&2
    stopping=1
    stop_all
    exit 130
}
trap on_signal INT TERM

for ((i = 0; i < n; i++)); do
    host=${hosts[$i]%:*}
    args=("${cmd[@]}" -n "$n" -p "$i" -h "$hostfile")
    prefix="[p$i] "
    if is_local "$host"; then
        "${args[@]}" 3>&- > >(exec sed -u "s/^/$prefix/" 3>&-) 2> >(exec sed -u "s/^/$prefix/" >&2 3>&-) &
    else
        # The remote command dies when the ssh connection closes (stdin reaches EOF).
        # (fd 4 keeps the connection's stdin: background lists start on /dev/null.)
        remote="cd $(printf '%q' "$workdir") || exit 1; exec 4<&0; "
        remote+="$(printf '%q ' "${args[@]}") </dev/null 4<&- & p=\$!; "
        remote+="{ while read -r _; do :; done; kill \$p; } <&4 >/dev/null 2>&1 & c=\$!; "
        remote+="wait \$p; rc=\$?; kill \$c 2>/dev/null; exit \$rc"
        host=${host#[}
        "${ssh_cmd[@]}" "${host%]}" "$remote" <"$tmp/keepalive" 3>&- \
            > >(exec sed -u "s/^/$prefix/" 3>&-) 2> >(exec sed -u "s/^/$prefix/" >&2 3>&-) &
    fi
    pids+=($!)
    echo "launch.sh: started process $i (${hosts[$i]}) pid $!" >&2
done

# Wait for every process; the first failure stops the others and gives the exit code.
first_failure=0
running=("${pids[@]}")
while ((${#running[@]} > 0)); do
    done_pid=
    set +e
    wait -n -p done_pid "${running[@]}"
    rc=$?
    set -e
    if [[ -z ${done_pid:-} ]]; then
        # bash already collected the status: find the process that is gone.
        for pid in "${running[@]}"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                set +e
                wait "$pid" 2>/dev/null
                rc=$?
                set -e
                done_pid=$pid
                break
            fi
        done
        [[ -n $done_pid ]] || { sleep 0.1; continue; }
    fi
    still=()
    for pid in "${running[@]}"; do [[ $pid == "$done_pid" ]] || still+=("$pid"); done
    running=("${still[@]+"${still[@]}"}")
    for ((i = 0; i < n; i++)); do [[ ${pids[$i]} == "$done_pid" ]] && break; done
    if ((rc != 0 && first_failure == 0 && !stopping)); then
        echo "launch.sh: process $i (${hosts[$i]}) exited with code $rc; stopping the others" >&2
        first_failure=$rc
        stopping=1
        stop_all
    fi
done
wait 2>/dev/null || true
exit "$first_failure"
