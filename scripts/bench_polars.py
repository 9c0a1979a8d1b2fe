#!/usr/bin/env python3
"""The polars competitor of `marketflow backfill` for scripts/bench.sh.

Reads canonical trades (Parquet: ts_ms, symbol, price, qty, is_buyer_maker, trade_id),
computes the bars (README "Feature definitions") for each resolution and writes them as
Parquet in marketflow's layout: OUT/bars/resolution=<r>/dt=YYYY-MM-DD/hour=HH/part-00000.parquet
(Hive partitions by window end, zstd level 1, files sorted by symbol and window end, columns
and types as marketflow's `bars` files).

Semantics, exactly as marketflow's: window_start = floor(ts_ms / R) * R,
window_end = window_start + R; open / close = price of the first / last trade by
(ts_ms, trade_id, input order); high, low; volume = sum(qty); quote_volume =
sum(price * qty); vwap = quote_volume / volume; trades = count; buy_volume = sum(qty)
of taker buys (is_buyer_maker false); sell_volume = volume - buy_volume (summed
directly over taker sells, the same number without the cancellation).

How: the smallest resolution is aggregated from the trades with polars' streaming
engine (all cores; open / close with min_by / max_by on the (ts_ms, trade_id, row)
key); larger resolutions that are multiples of it are rolled up from those bars,
the way marketflow may build larger bars from smaller ones.

--check DIR compares the bars with marketflow's output under DIR/bars: the same rows,
integers and timestamps equal, floats within 1e-9 relative (absolute below 1). It
exits 1 and prints the differences when they differ.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

COLUMNS = [
    "symbol", "resolution", "window_start", "window_end", "open", "high", "low", "close",
    "volume", "quote_volume", "vwap", "trades", "buy_volume", "sell_volume",
]
FLOATS = ["open", "high", "low", "close", "volume", "quote_volume", "vwap", "buy_volume", "sell_volume"]
UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
TS = pl.Datetime("ms", "UTC")
ZSTD_LEVEL = 1  # marketflow's Parquet sink uses zstd level 1 (parquet-rs' default)


def parse_resolution(text: str) -> int:
    """'1s' -> 1000 (milliseconds)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text.strip())
    if not m or int(m.group(1)) == 0:
        raise SystemExit(f"bench_polars.py: bad resolution `{text}` (e.g. 1s, 1m, 5m, 1h)")
    return int(m.group(1)) * UNITS_MS[m.group(2)]


def bars_from_trades(trades: pl.LazyFrame, r: int) -> pl.LazyFrame:
    """Bars of resolution r ms straight from trades (window_start as Int64 ms)."""
    price, qty, maker = pl.col("price"), pl.col("qty"), pl.col("is_buyer_maker")
    order = pl.struct("ts_ms", "trade_id", "row")  # (ts_ms, trade_id, input order)
    return (
        trades.with_row_index("row")
        .with_columns(window_start=pl.col("ts_ms") // r * r)
        .group_by("symbol", "window_start")
        .agg(
            open=price.min_by(order),
            high=price.max(),
            low=price.min(),
            close=price.max_by(order),
            volume=qty.sum(),
            quote_volume=(price * qty).sum(),
            trades=pl.len().cast(pl.Int64),
            buy_volume=qty.filter(~maker).sum(),
            sell_volume=qty.filter(maker).sum(),
        )
    )


def bars_from_bars(bars: pl.LazyFrame, r: int) -> pl.LazyFrame:
    """Bars of resolution r ms rolled up from bars of a resolution that divides r."""
    ws = pl.col("window_start")
    return (
        bars.with_columns(window_start=ws // r * r, sub_start=ws)
        .group_by("symbol", "window_start")
        .agg(
            open=pl.col("open").min_by("sub_start"),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            close=pl.col("close").max_by("sub_start"),
            volume=pl.col("volume").sum(),
            quote_volume=pl.col("quote_volume").sum(),
            trades=pl.col("trades").sum(),
            buy_volume=pl.col("buy_volume").sum(),
            sell_volume=pl.col("sell_volume").sum(),
        )
    )


def finish(bars: pl.LazyFrame, name: str, r: int) -> pl.LazyFrame:
    """Adds resolution, window_end and vwap; timestamps as timestamp[ms, UTC]."""
    return bars.select(
        pl.col("symbol"),
        pl.lit(name).alias("resolution"),
        pl.col("window_start").cast(TS),
        (pl.col("window_start") + r).cast(TS).alias("window_end"),
        "open", "high", "low", "close", "volume", "quote_volume",
        (pl.col("quote_volume") / pl.col("volume")).alias("vwap"),
        "trades", "buy_volume", "sell_volume",
    )


def compute(input_path: str, resolutions: list[str]) -> pl.DataFrame:
    """All bars of all resolutions, one DataFrame in COLUMNS order."""
    trades = pl.scan_parquet(input_path).select(
        "ts_ms", "symbol", "price", "qty", "is_buyer_maker", "trade_id"
    )
    res = sorted((parse_resolution(n), n) for n in resolutions)
    smallest_ms = res[0][0]
    base = bars_from_trades(trades, smallest_ms).collect(engine="streaming").lazy()
    parts = []
    for r, name in res:
        if r == smallest_ms:
            bars = base
        elif r % smallest_ms == 0:
            bars = bars_from_bars(base, r)
        else:
            bars = bars_from_trades(trades, r)
        parts.append(finish(bars, name, r))
    return pl.concat(pl.collect_all(parts))


def write(bars: pl.DataFrame, out: Path) -> int:
    """Writes marketflow's partition layout; returns the number of files."""
    keyed = bars.with_columns(
        dt=pl.col("window_end").dt.strftime("%Y-%m-%d"),
        hour=pl.col("window_end").dt.strftime("%H"),
    )
    parts = keyed.partition_by(["resolution", "dt", "hour"], as_dict=True)

    def write_one(item):
        (res, dt, hour), part = item
        d = out / "bars" / f"resolution={res}" / f"dt={dt}" / f"hour={hour}"
        d.mkdir(parents=True, exist_ok=True)
        part.drop("dt", "hour").sort("symbol", "window_end").write_parquet(
            d / "part-00000.parquet", compression="zstd", compression_level=ZSTD_LEVEL
        )

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(write_one, parts.items()))
    return len(parts)


def check(ours: pl.DataFrame, mf_dir: Path, limit: int = 10) -> bool:
    """Compares our bars with marketflow's under mf_dir/bars; prints differences."""
    files = sorted((mf_dir / "bars").glob("resolution=*/dt=*/hour=*/*.parquet"))
    if not files:
        print(f"check: FAILED: no Parquet files under {mf_dir / 'bars'}", file=sys.stderr)
        return False
    theirs = pl.read_parquet(files, hive_partitioning=False)
    key = ["resolution", "symbol", "window_start"]

    def norm(df: pl.DataFrame) -> pl.DataFrame:
        return df.select(COLUMNS).with_columns(
            pl.col("window_start", "window_end").cast(TS).dt.epoch("ms"),
            pl.col("trades").cast(pl.Int64),
            pl.col(FLOATS).cast(pl.Float64),
        )

    a, b = norm(ours), norm(theirs)
    ok = True
    for name, df in (("polars", a), ("marketflow", b)):
        dups = df.height - df.select(key).n_unique()
        if dups:
            print(f"check: {name} has {dups} duplicate bar keys", file=sys.stderr)
            ok = False
    joined = a.join(b, on=key, how="full", suffix="_mf", coalesce=True)
    only_pl = joined.filter(pl.col("window_end_mf").is_null())
    only_mf = joined.filter(pl.col("window_end").is_null())
    for name, rows in (("only in polars", only_pl), ("only in marketflow", only_mf)):
        if rows.height:
            ok = False
            print(f"check: {rows.height} bars {name}, e.g.\n{rows.select(key).head(limit)}", file=sys.stderr)
    both = joined.filter(pl.col("window_end").is_not_null() & pl.col("window_end_mf").is_not_null())
    bad = [pl.col("window_end") != pl.col("window_end_mf"), pl.col("trades") != pl.col("trades_mf")]
    for c in FLOATS:
        x, y = pl.col(c), pl.col(f"{c}_mf")
        tol = 1e-9 * pl.max_horizontal(x.abs(), y.abs(), pl.lit(1.0))
        bad.append(~((x - y).abs() <= tol) & ~(x.is_nan() & y.is_nan()))
    for expr, c in zip(bad, ["window_end", "trades"] + FLOATS):
        rows = both.filter(expr)
        if rows.height:
            ok = False
            print(
                f"check: {rows.height} bars differ in {c}, e.g.\n"
                f"{rows.select(key + [c, c + '_mf']).head(limit)}",
                file=sys.stderr,
            )
    if ok:
        print(f"check: OK: {a.height} bars equal to marketflow's (floats within 1e-9 relative)")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="canonical trades Parquet file")
    ap.add_argument("--output", help="output root (bars/ is written under it)")
    ap.add_argument("--resolutions", default="1s,1m,5m", help="comma-separated (default 1s,1m,5m)")
    ap.add_argument("--check", metavar="DIR", help="compare with marketflow's output root DIR")
    args = ap.parse_args()
    if not args.output and not args.check:
        ap.error("give --output, --check, or both")

    start = time.perf_counter()
    bars = compute(args.input, [r for r in args.resolutions.split(",") if r.strip()])
    files = 0
    if args.output:
        files = write(bars, Path(args.output))
    secs = time.perf_counter() - start
    print(
        f"polars {pl.__version__}: {bars.height} bars, {files} files in {secs:.2f} s "
        f"({pl.thread_pool_size()} threads)"
    )
    if args.check and not check(bars, Path(args.check)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
