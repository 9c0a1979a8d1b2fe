#!/usr/bin/env python3
"""The polars competitor of `marketflow backfill` with the full feature set, for
scripts/bench_features.sh.

Reads canonical trades (Parquet), computes at ONE resolution (default 1m) the features
exactly as marketflow defines them (README "Feature definitions"): bars, the dense close
grid (forward fill from each symbol's first bar to the last bar of the input), log returns,
indicators (sma_20, ema_12/26 and macd/signal with ewm adjust=False, rsi_14 Wilder,
Bollinger with population std, realized_vol and zscore over W), alerts (zscore and
volume_spike), the correlation of every pair a < b over W and beta / alpha / r2 against
the benchmark, and the risk set (README "Risk and trend": var_95 / cvar_95, sharpe,
sortino, drawdown / max_drawdown over the W+1 closes, atr_14 Wilder, sma_50 / sma_200
and trend, volume_ma_20 / volume_ratio; --no-risk leaves it out); writes each set as
one zstd Parquet file OUT/<set>.parquet (fewer files than marketflow's hourly
partitions: in polars' favour).

risk is written the way a polars user would: polars rolling expressions per symbol,
and, for the two windows polars has no rolling function for (cvar_95, max_drawdown),
numpy sliding_window_view over the whole grid at once (vectorized, no per-row Python).

--check DIR compares every set with marketflow's output under DIR (same rows, floats
within 1e-9 relative, absolute below 1, strings such as risk's trend equal, nulls at
the same places) and exits 1 on a difference.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

YEAR_MS = 365 * 24 * 3600 * 1000
UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def res_ms(label: str) -> int:
    for unit in ("ms", "s", "m", "h", "d"):
        if label.endswith(unit) and label[: -len(unit)].isdigit():
            return int(label[: -len(unit)]) * UNITS_MS[unit]
    raise SystemExit(f"bad resolution {label}")


def bars(path: str, r: int, plain: bool = False) -> pl.DataFrame:
    """Bars from trades. By default as a feed needs them: duplicate trade ids dropped
    (the first kept) and open / close by (time, trade id, row) whatever the file order.
    With `plain`, the script a user writes for a clean, time-sorted file: no dedup,
    open / close the first and last trade of the bar in file order."""
    t = pl.scan_parquet(path)
    if not plain:
        t = t.with_row_index("row").unique(["symbol", "trade_id"], keep="first", maintain_order=True)
    t = t.with_columns(window_start=(pl.col("ts_ms") // r) * r)
    price, qty = pl.col("price"), pl.col("qty")
    if plain:
        first, last = price.first(), price.last()
    else:
        order = pl.struct("ts_ms", "trade_id", "row")
        first, last = price.sort_by(order).first(), price.sort_by(order).last()
    return (
        t.group_by("symbol", "window_start")
        .agg(
            open=first,
            high=price.max(),
            low=price.min(),
            close=last,
            volume=qty.sum(),
            quote_volume=(price * qty).sum(),
            trades=pl.len(),
            buy_volume=qty.filter(~pl.col("is_buyer_maker")).sum(),
        )
        .with_columns(
            vwap=pl.col("quote_volume") / pl.col("volume"),
            sell_volume=pl.col("volume") - pl.col("buy_volume"),
            window_end=pl.col("window_start") + r,
        )
        .collect(engine="streaming")
    )


def candle_bars(path: str, r: int) -> pl.DataFrame:
    """Bars from canonical candles (ts_ms = open time, symbol, open, high, low, close,
    volume) of resolution r or a divisor of it; the trade-level columns are null."""
    t = pl.scan_parquet(path) if path.endswith(".parquet") else pl.scan_csv(path)
    null = pl.lit(None, dtype=pl.Float64)
    return (
        t.with_columns(window_start=(pl.col("ts_ms") // r) * r)
        .sort("symbol", "ts_ms")
        .group_by("symbol", "window_start")
        .agg(
            open=pl.col("open").first(),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            close=pl.col("close").last(),
            volume=pl.col("volume").sum(),
        )
        .with_columns(
            quote_volume=null,
            vwap=null,
            trades=pl.lit(None, dtype=pl.Int64),
            buy_volume=null,
            sell_volume=null,
            window_end=pl.col("window_start") + r,
        )
        .collect(engine="streaming")
    )


def grid(b: pl.DataFrame, r: int) -> pl.DataFrame:
    """The dense grid, sorted by symbol and time: close (forward filled), high / low
    (the close for a bar without trades), volume (0 without trades) and the log return."""
    last = b["window_start"].max()
    starts = b.group_by("symbol").agg(first=pl.col("window_start").min())
    frame = (
        starts.with_columns(window_start=pl.int_ranges("first", last + 1, r))
        .explode("window_start")
        .drop("first")
        .join(b.select("symbol", "window_start", "high", "low", "close", "volume"),
              on=["symbol", "window_start"], how="left")
        .sort("symbol", "window_start")
        .with_columns(
            close=pl.col("close").forward_fill().over("symbol"),
            volume=pl.col("volume").fill_null(0.0),
            window_end=pl.col("window_start") + r,
        )
        # a bar without trades: high = low = close (the previous close)
        .with_columns(high=pl.col("high").fill_null(pl.col("close")), low=pl.col("low").fill_null(pl.col("close")))
    )
    return frame.with_columns(ret=(pl.col("close") / pl.col("close").shift(1)).log().over("symbol"))


def indicators(g: pl.DataFrame, w: int, zthr: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    c, ret = pl.col("close"), pl.col("ret")
    delta = c.diff()
    gain = delta.clip(lower_bound=0).ewm_mean(alpha=1 / 14, adjust=False, min_samples=14)
    loss = (-delta).clip(lower_bound=0).ewm_mean(alpha=1 / 14, adjust=False, min_samples=14)
    ind = g.with_columns(
        sma_20=c.rolling_mean(20).over("symbol"),
        ema_12=c.ewm_mean(span=12, adjust=False).over("symbol"),
        ema_26=c.ewm_mean(span=26, adjust=False).over("symbol"),
        std20=c.rolling_std(20, ddof=0).over("symbol"),
        gain=gain.over("symbol"),
        loss=loss.over("symbol"),
        realized_vol=ret.rolling_std(w, ddof=0).over("symbol"),
        mean_w=ret.rolling_mean(w).over("symbol"),
        prev_vol=pl.col("volume").shift(1).rolling_mean(w).over("symbol"),
    ).with_columns(
        macd=pl.col("ema_12") - pl.col("ema_26"),
        rsi_14=pl.when(pl.col("loss") == 0)
        .then(100.0)
        .otherwise(100 - 100 / (1 + pl.col("gain") / pl.col("loss"))),
        bb_mid=pl.col("sma_20"),
        bb_upper=pl.col("sma_20") + 2 * pl.col("std20"),
        bb_lower=pl.col("sma_20") - 2 * pl.col("std20"),
        zscore=pl.when(pl.col("realized_vol") > 0)
        .then((ret - pl.col("mean_w")) / pl.col("realized_vol"))
        .otherwise(None),
    ).with_columns(macd_signal=pl.col("macd").ewm_mean(span=9, adjust=False).over("symbol"))
    z = ind.filter(pl.col("zscore").abs() > zthr).select(
        "symbol", "window_end", kind=pl.lit("zscore"), value="zscore", threshold=pl.lit(zthr)
    )
    v = ind.filter(pl.col("volume") > 5 * pl.col("prev_vol")).select(
        "symbol", "window_end", kind=pl.lit("volume_spike"), value="volume", threshold=5 * pl.col("prev_vol")
    )
    cols = ["symbol", "window_end", "close", "ret", "sma_20", "ema_12", "ema_26", "macd", "macd_signal",
            "rsi_14", "bb_mid", "bb_upper", "bb_lower", "realized_vol", "zscore"]
    return ind.select(cols), pl.concat([z, v])


def pairs(g: pl.DataFrame, w: int, bench: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    wide = g.pivot(on="symbol", index="window_end", values="ret").sort("window_end")
    syms = sorted((s for s in wide.columns if s != "window_end"), key=str.encode)
    full = {s: pl.col(s).is_not_null().cast(pl.Int32).rolling_sum(w) == w for s in syms}
    var = {s: pl.col(s).rolling_var(w, ddof=0) for s in syms}
    corr_frames, beta_frames = [], []
    for i, a in enumerate(syms):
        for b in syms[i + 1 :]:
            corr = pl.rolling_corr(pl.col(a), pl.col(b), window_size=w)
            corr_frames.append(
                wide.select(
                    "window_end",
                    ok=full[a] & full[b],
                    symbol_a=pl.lit(a),
                    symbol_b=pl.lit(b),
                    corr=pl.when((var[a] > 0) & (var[b] > 0)).then(corr).otherwise(None),
                ).filter("ok").drop("ok")
            )
    if bench in syms:
        for s in syms:
            if s == bench:
                continue
            cov = pl.rolling_cov(pl.col(s), pl.col(bench), window_size=w, ddof=0)
            beta = pl.when(var[bench] > 0).then(cov / var[bench]).otherwise(None)
            corr = pl.rolling_corr(pl.col(s), pl.col(bench), window_size=w)
            beta_frames.append(
                wide.select(
                    "window_end",
                    ok=full[s] & full[bench],
                    symbol=pl.lit(s),
                    beta=beta,
                    alpha=pl.col(s).rolling_mean(w) - beta * pl.col(bench).rolling_mean(w),
                    r2=pl.when((var[s] > 0) & (var[bench] > 0)).then(corr * corr).otherwise(None),
                ).filter("ok").drop("ok")
            )
    corr = pl.concat(corr_frames) if corr_frames else pl.DataFrame()
    beta = pl.concat(beta_frames) if beta_frames else pl.DataFrame()
    return corr, beta


def risk(g: pl.DataFrame, w: int, r: int) -> pl.DataFrame:
    """The risk set on the dense grid `g` (sorted by symbol, window_start)."""
    c, ret, vol = pl.col("close"), pl.col("ret"), pl.col("volume")
    sqrt_p = (YEAR_MS / r) ** 0.5
    prev = c.shift(1)
    # TR from a symbol's second bar (max_horizontal would skip the null prev of the first)
    tr = pl.when(prev.is_not_null()).then(
        pl.max_horizontal(pl.col("high") - pl.col("low"), (pl.col("high") - prev).abs(), (pl.col("low") - prev).abs())
    )
    f = g.with_columns(
        pos=pl.int_range(pl.len()).over("symbol"),
        var_95=-ret.rolling_quantile(0.05, interpolation="linear", window_size=w).over("symbol"),
        mean_w=ret.rolling_mean(w).over("symbol"),
        std_w=ret.rolling_std(w, ddof=1).over("symbol"),
        # all W returns equal: variance exactly 0, sharpe null (not a drifted 1e-10 std)
        flat=(ret.rolling_max(w) == ret.rolling_min(w)).over("symbol"),
        down_dev=(ret.clip(upper_bound=0) ** 2).rolling_mean(w).sqrt().over("symbol"),
        negatives=(ret < 0).cast(pl.Int32).rolling_sum(w).over("symbol"),
        drawdown=(c / c.rolling_max(w + 1) - 1).over("symbol"),
        atr_14=tr.ewm_mean(alpha=1 / 14, adjust=False, min_samples=14).over("symbol"),
        sma_50=c.rolling_mean(50).over("symbol"),
        sma_200=c.rolling_mean(200).over("symbol"),
        volume_ma_20=vol.rolling_mean(20).over("symbol"),
        traded_20=(vol != 0).cast(pl.Int32).rolling_sum(20).over("symbol"),
    ).with_columns(
        sharpe=pl.when(~pl.col("flat") & (pl.col("std_w") > 0)).then(pl.col("mean_w") / pl.col("std_w") * sqrt_p),
        sortino=pl.when((pl.col("negatives") > 0) & (pl.col("down_dev") > 0))
        .then(pl.col("mean_w") / pl.col("down_dev") * sqrt_p),
        trend=pl.when(pl.col("sma_200").is_null())
        .then(None)
        .when((c > pl.col("sma_50")) & (pl.col("sma_50") > pl.col("sma_200")))
        .then(pl.lit("up"))
        .when((c < pl.col("sma_50")) & (pl.col("sma_50") < pl.col("sma_200")))
        .then(pl.lit("down"))
        .otherwise(pl.lit("sideways")),
        volume_ratio=pl.when((pl.col("traded_20") > 0) & (pl.col("volume_ma_20") != 0))
        .then(vol / pl.col("volume_ma_20")),
    )
    # cvar_95 and max_drawdown: numpy windows over the whole grid at once. A window
    # ending at a kept row (position >= W) lies inside that row's symbol.
    n = len(f)
    keep = (f["pos"] >= w).to_numpy()
    cvar = np.full(n, np.nan)
    max_dd = np.full(n, np.nan)
    if n > w:
        rets = f["ret"].fill_null(np.nan).to_numpy()
        wins = sliding_window_view(rets, w)  # window k ends at row k + w - 1
        q = -f["var_95"].fill_null(np.nan).to_numpy()[w - 1 :]
        with np.errstate(invalid="ignore", divide="ignore"):
            tail = wins <= q[:, None]
            cvar[w - 1 :] = -np.where(tail, wins, 0.0).sum(axis=1) / tail.sum(axis=1)
        closes = f["close"].to_numpy()
        wins = sliding_window_view(closes, w + 1)  # window k ends at row k + w
        max_dd[w:] = (wins / np.maximum.accumulate(wins, axis=1)).min(axis=1) - 1
    cols = ["symbol", "window_end", "close", "ret", "var_95", "cvar_95", "sharpe", "sortino", "drawdown",
            "max_drawdown", "atr_14", "sma_50", "sma_200", "trend", "volume_ma_20", "volume_ratio"]
    return (
        f.with_columns(cvar_95=pl.Series(cvar, nan_to_null=True), max_drawdown=pl.Series(max_dd, nan_to_null=True))
        .filter(pl.Series(keep))
        .select(cols)
    )


KEYS = {
    "bars": ["symbol", "window_end"],
    "indicators": ["symbol", "window_end"],
    "correlation": ["symbol_a", "symbol_b", "window_end"],
    "beta": ["symbol", "window_end"],
    "alerts": ["symbol", "window_end", "kind"],
    "risk": ["symbol", "window_end"],
}


def exact_trend_losses(differ: pl.DataFrame, grid: pl.DataFrame) -> int:
    """How many of the differing trend labels marketflow got wrong, by exact arithmetic
    (Python fractions of the grid closes): polars' rolling means drift on flat stretches,
    where the close equals its moving averages."""
    from fractions import Fraction

    wrong = 0
    for row in differ.iter_rows(named=True):
        closes = (
            grid.filter((pl.col("symbol") == row["symbol"]) & (pl.col("window_end") <= row["window_end"]))
            .sort("window_end")["close"]
            .tail(200)
            .to_list()
        )
        c = Fraction(closes[-1])
        s50 = sum(map(Fraction, closes[-50:])) / 50
        s200 = sum(map(Fraction, closes)) / 200
        exact = "up" if c > s50 > s200 else "down" if c < s50 < s200 else "sideways"
        wrong += exact != row["trend_mf"]
    return wrong


def check(sets: dict[str, pl.DataFrame], out: str, grid: pl.DataFrame) -> list[str]:
    problems = []
    for name, ours in sets.items():
        files = sorted(glob.glob(os.path.join(out, name, "**", "*.parquet"), recursive=True))
        theirs = pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in files]) if files else None
        if theirs is None:
            problems.append(f"{name}: no marketflow output")
            continue
        theirs = theirs.with_columns(pl.col("window_end").dt.epoch("ms"))
        if len(theirs) != len(ours):
            problems.append(f"{name}: marketflow {len(theirs)} rows, polars {len(ours)}")
        j = ours.join(theirs, on=KEYS[name], how="inner", suffix="_mf")
        if len(j) != len(ours):
            problems.append(f"{name}: {len(ours) - len(j)} polars rows have no marketflow row")
        for col in ours.columns:
            if col in KEYS[name] or f"{col}_mf" not in j.columns:
                continue
            a, b = j[col], j[f"{col}_mf"]
            if ours[col].dtype == pl.String:  # risk's trend: equal labels, nulls alike
                differ = j.filter(~a.eq_missing(b))
                wrong = exact_trend_losses(differ, grid) if col == "trend" else len(differ)
                if wrong:
                    problems.append(f"{name}.{col}: {len(differ)} values differ, marketflow wrong on {wrong}")
                elif len(differ):
                    print(f"{name}.{col}: {len(differ)} near-ties differ; exact arithmetic sides with marketflow on all",
                          file=sys.stderr)
                continue
            if not ours[col].dtype.is_float():
                continue
            nulls = (a.is_null() != b.is_null()).sum()
            err = (a - b).abs() / b.abs().clip(lower_bound=1.0)
            worst = err.max() or 0.0
            if nulls or worst > 1e-9:
                problems.append(f"{name}.{col}: {nulls} null mismatches, worst error {worst:.2e}")
    return problems


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--resolution", default="1m")
    p.add_argument("--kind", choices=["trades", "candles"], default="trades")
    p.add_argument("--plain", action="store_true",
                   help="no dedup, open/close in file order: the plain script for a clean, time-sorted file")
    p.add_argument("--window", type=int, default=60)
    p.add_argument("--benchmark", default="BTCUSDT")
    p.add_argument("--zscore", type=float, default=3.0)
    p.add_argument("--no-risk", action="store_true", help="leave the risk set out (marketflow with risk = false)")
    p.add_argument("--check", metavar="DIR")
    args = p.parse_args()
    started = time.time()
    r = res_ms(args.resolution)
    b = candle_bars(args.input, r) if args.kind == "candles" else bars(args.input, r, args.plain)
    g = grid(b, r)
    ind, alerts = indicators(g, args.window, args.zscore)
    corr, beta = pairs(g, args.window, args.benchmark)
    sets = {
        "bars": b.drop("window_start").sort("symbol", "window_end"),
        "indicators": ind.sort("symbol", "window_end"),
        "correlation": corr.sort("symbol_a", "symbol_b", "window_end"),
        "beta": beta.sort("symbol", "window_end"),
        "alerts": alerts.sort("symbol", "window_end", "kind"),
    }
    if not args.no_risk:
        sets["risk"] = risk(g, args.window, r)  # already sorted by symbol, window_end
    os.makedirs(args.output, exist_ok=True)
    for name, df in sets.items():
        df.write_parquet(os.path.join(args.output, f"{name}.parquet"), compression="zstd", compression_level=1)
    print(f"polars features: {sum(len(d) for d in sets.values())} rows in {time.time() - started:.2f}s", file=sys.stderr)
    if args.check:
        problems = check(sets, args.check, g)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            sys.exit(1)
        print("polars and marketflow features agree", file=sys.stderr)


if __name__ == "__main__":
    main()
