#!/usr/bin/env bash
# The one test command (README "Testing"): installs what the tests need on a brand-new
# machine, then checks formatting, clippy (-D warnings) and runs every test in release
# mode (unit, oracle, doc and end-to-end tests against the real binary and Parquet files).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
# The metrics end-to-end test scrapes the jobs with a real Prometheus server.
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

# Everything the tests need is installed here; the tests themselves install nothing.
echo "== python venv (pandas cross-check)"
scripts/pyenv.sh
echo "== tansu (the live end-to-end tests' broker)"
scripts/kafka-broker.sh install
echo "== rustfmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --release --workspace --all-targets -- -D warnings
echo "== kafka broker (tansu, for the live end-to-end tests)"
KAFKA_BROKER_PORT=19093 scripts/kafka-broker.sh start
trap 'KAFKA_BROKER_PORT=19093 scripts/kafka-broker.sh stop >/dev/null 2>&1 || true' EXIT
echo "== tests"
cargo test --release --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
passed=$(grep -Eo '[0-9]+ passed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "all suites: $passed passed, $failed failed"
