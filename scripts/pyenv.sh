#!/usr/bin/env bash
# pyenv.sh: creates (once) the local Python venv the tests' pandas cross-check uses,
# `.venv/` at the repository root, with pinned pandas, numpy, pyarrow, polars and DuckDB
# (the lake readers test), and prints
# the path of its python. Idempotent: a marker file records the installed pins.
# `scripts/pyenv.sh --check` installs nothing: it prints the path when the venv is
# complete, else says so and exits 1 (the tests use it; scripts/test.sh installs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MARKETFLOW_VENV:-$ROOT/.venv}
PINS="pandas==3.1.1 numpy==2.3.5 pyarrow==26.0.1 polars==2.1.0 duckdb==2.0.1"
MARKER="$VENV/.marketflow-pins"

if [ -x "$VENV/bin/python" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$PINS" ]; then
  echo "$VENV/bin/python"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "pyenv.sh: no complete venv at $VENV (pins: $PINS); run scripts/pyenv.sh or scripts/test.sh" >&2
  exit 1
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing python3-venv" >&2
  apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
fi
python3 -m venv "$VENV" >&2
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS >&2
echo "$PINS" > "$MARKER"
echo "$VENV/bin/python"
