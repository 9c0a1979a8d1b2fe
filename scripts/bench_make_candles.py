#!/usr/bin/env python3
"""Writes seeded simulated candles for the benchmark shapes of scripts/bench_shapes.sh:
canonical candles Parquet (ts_ms = bar open time, symbol, open, high, low, close,
volume), sorted by time then symbol, one row group per million rows.

Usage: bench_make_candles.py --symbols N --bars B --interval-ms MS --output FILE [--seed S]

Correlated geometric Brownian motion (a common factor plus each symbol's own noise),
prices on a 0.01 tick, lognormal volumes; every symbol trades every bar (equities'
daily bars with weekends left in: a dense grid).
"""

import argparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--symbols", type=int, required=True)
    p.add_argument("--bars", type=int, required=True)
    p.add_argument("--interval-ms", type=int, required=True)
    p.add_argument("--t0", type=int, default=1_420_070_400_000)  # 2015-01-01
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", required=True)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    n, s = a.bars, a.symbols
    vol = 0.02 * np.sqrt(a.interval_ms / 86_400_000)
    factor = rng.normal(0, vol, size=(n, 1))
    rets = 0.6 * factor + 0.8 * rng.normal(0, vol, size=(n, s))
    start = rng.uniform(10, 500, size=s)
    close = np.round(start * np.exp(np.cumsum(rets, axis=0)), 2).clip(0.01)
    open_ = np.vstack([start.round(2), close[:-1]])
    spread = np.abs(rng.normal(0, vol, size=(n, s))) * close
    high = np.round(np.maximum(open_, close) + spread, 2)
    low = np.round(np.minimum(open_, close) - spread, 2).clip(0.01)
    volume = np.round(rng.lognormal(10, 1, size=(n, s)), 0)
    ts = a.t0 + np.arange(n, dtype=np.int64) * a.interval_ms
    names = np.array([f"S{i:04d}" for i in range(s)])
    table = pa.table({
        "ts_ms": np.repeat(ts, s),
        "symbol": np.tile(names, n),
        "open": open_.ravel(),
        "high": high.ravel(),
        "low": low.ravel(),
        "close": close.ravel(),
        "volume": volume.ravel(),
    })
    pq.write_table(table, a.output, row_group_size=1 << 20, compression="zstd")


if __name__ == "__main__":
    main()
