"""Independent pandas reference for every feature set (README "Feature definitions"),
compared with a marketflow backfill's Parquet output value by value (1e-9 relative,
absolute below 1).

Usage:
  crosscheck.py --input FILE --output OUT_DIR --resolutions 1s,1m --window 60 \
      --benchmark BTCUSDT --zscore 3.0 [--kind trades|candles] [--risk]

With `--kind trades` (the default) FILE is a canonical trades file (CSV, optionally
gzip, or Parquet); with `--kind candles` a canonical candles CSV or Parquet (ts_ms = bar
open time, symbol, open, high, low, close, volume): the candles are the bars at their
own resolution (several per window when a resolution is a multiple of theirs), with
quote_volume, vwap, trades, buy_volume and sell_volume null. The reference is
computed with pandas only: bars by groupby, the dense grid by
reindex + ffill, returns by log, correlation by `rolling(W).corr`, beta by
`rolling(W).cov(ddof=0) / rolling(W).var(ddof=0)`, EMAs and RSI by
`ewm(adjust=False)`; the Bollinger std is a two-pass std per window (see
`indicators`). The `risk` set is compared whenever OUT_DIR has a `risk/` folder, and
`--risk` (the config had `features.risk = true`) makes a missing folder an error; its
reference and the exact-arithmetic arbiter of its mismatches are in risk.py and
exact.py. Exits 1 and prints the first mismatches when anything differs.
"""

import argparse
import glob
import os
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import risk as risk_ref  # noqa: E402

UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def res_ms(label):
    for unit in ("ms", "s", "m", "h", "d"):
        if label.endswith(unit) and label[: -len(unit)].isdigit():
            return int(label[: -len(unit)]) * UNITS[unit]
    raise ValueError(f"bad resolution {label}")


def load_trades(path):
    if path.endswith(".parquet"):
        df = pq.read_table(path).to_pandas()
    else:
        df = pd.read_csv(path, dtype={"symbol": str})
    df["is_buyer_maker"] = df["is_buyer_maker"].map(
        lambda v: str(v).strip().lower() in ("true", "1")
    )
    df["order"] = np.arange(len(df))
    df["exchange"] = df["exchange"] if "exchange" in df else ""
    # Duplicates by (exchange, symbol, trade_id): the first in input order is kept.
    if "trade_id" in df:
        df = df.drop_duplicates(["exchange", "symbol", "trade_id"], keep="first")
    else:
        df["trade_id"] = -1
    return df.sort_values(["symbol", "ts_ms", "trade_id", "order"], kind="stable")


def load_candles(path):
    """Canonical candles (ts_ms = bar open time, symbol, open, high, low, close, volume)."""
    if path.endswith(".parquet"):
        df = pq.read_table(path).to_pandas()
    else:
        prices = ("open", "high", "low", "close", "volume")
        df = pd.read_csv(path, dtype={"symbol": str, **{c: str for c in prices}})
        for c in prices:  # Python's float(): correctly rounded, as marketflow parses
            df[c] = df[c].map(float).astype("float64")
    df["order"] = np.arange(len(df))
    return df.sort_values(["symbol", "ts_ms", "order"], kind="stable")


def candle_bars(candles, r):
    """Bars of resolution r from candles of resolution r (or a divisor of r): open of
    the first candle, close of the last, high max, low min, volume sum; the trade-level
    columns are unknown (null)."""
    t = candles.copy()
    t["window_start"] = (t["ts_ms"] // r) * r
    g = t.groupby(["symbol", "window_start"], sort=True)
    out = g.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
    ).reset_index()
    for col in ("quote_volume", "trades", "buy_volume", "vwap", "sell_volume"):
        out[col] = np.nan
    out["window_end"] = out["window_start"] + r
    return out


def load_bars(path, kind):
    """A function resolution -> bars, for a trades or candles input."""
    if kind == "candles":
        candles = load_candles(path)
        return lambda r: candle_bars(candles, r)
    trades = load_trades(path)
    return lambda r: bars(trades, r)


def load_grid(path, kind, r):
    """{symbol: grid frame} of an input at resolution r (exact.py's command line)."""
    return grid(load_bars(path, kind)(r), r)


def bars(trades, r):
    t = trades.copy()
    t["window_start"] = (t["ts_ms"] // r) * r
    t["quote"] = t["price"] * t["qty"]
    t["buy"] = np.where(t["is_buyer_maker"], 0.0, t["qty"])
    g = t.groupby(["symbol", "window_start"], sort=True)
    out = g.agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("qty", "sum"),
        quote_volume=("quote", "sum"),
        trades=("price", "size"),
        buy_volume=("buy", "sum"),
    ).reset_index()
    out["vwap"] = out["quote_volume"] / out["volume"]
    out["sell_volume"] = out["volume"] - out["buy_volume"]
    out["window_end"] = out["window_start"] + r
    return out


def grid(b, r):
    """Per symbol: the dense close grid from its first bar to the last bar of the input.
    A bar without trades takes the previous close, volume 0 and high = low = close."""
    last = b["window_start"].max()
    series = {}
    for sym, g in b.groupby("symbol"):
        idx = np.arange(g["window_start"].min(), last + 1, r)
        s = g.set_index("window_start").reindex(idx)
        close = s["close"].ffill()
        volume = s["volume"].fillna(0.0)
        high = s["high"].fillna(close)
        low = s["low"].fillna(close)
        frame = pd.DataFrame({"close": close, "volume": volume, "high": high, "low": low})
        frame.index = idx + r  # window_end
        frame["ret"] = np.log(frame["close"] / frame["close"].shift(1))
        series[sym] = frame
    return series


def constant(x, w):
    """True where the last w values exist and are all equal (exactly zero variance)."""
    full = x.notna().rolling(w).sum() == w
    return full & (x.rolling(w).max() == x.rolling(w).min())


def indicators(sym, frame, w, zthr, label):
    close, ret, vol = frame["close"], frame["ret"], frame["volume"]
    ema12 = close.ewm(span=12, adjust=False).mean()
    ema26 = close.ewm(span=26, adjust=False).mean()
    macd = ema12 - ema26
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    loss = (-delta).clip(lower=0).ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    rsi = pd.Series(np.where(loss == 0, 100.0, 100 - 100 / (1 + gain / loss)), index=close.index)
    rsi[gain.isna()] = np.nan
    sma20 = close.rolling(20).mean()
    # Two-pass std per window: pandas' online rolling variance drifts at price
    # magnitudes (a std of 7e-5 on 20 identical closes of 61668.7), the exact one is 0.
    std20 = close.rolling(20).apply(lambda x: x.std(ddof=0), raw=True)
    rv = ret.rolling(w).std(ddof=0)
    z = (ret - ret.rolling(w).mean()) / rv
    z[constant(ret, w)] = np.nan
    rows = pd.DataFrame(
        {
            "symbol": sym,
            "resolution": label,
            "window_end": frame.index,
            "close": close.values,
            "ret": ret.values,
            "sma_20": sma20.values,
            "ema_12": ema12.values,
            "ema_26": ema26.values,
            "macd": macd.values,
            "macd_signal": macd.ewm(span=9, adjust=False).mean().values,
            "rsi_14": rsi.values,
            "bb_mid": sma20.values,
            "bb_upper": (sma20 + 2 * std20).values,
            "bb_lower": (sma20 - 2 * std20).values,
            "realized_vol": rv.values,
            "zscore": z.values,
        }
    )
    alerts = []
    for t, v in z.items():
        if pd.notna(v) and abs(v) > zthr:
            alerts.append((sym, label, t, "zscore", v, zthr))
    prev_mean = vol.shift(1).rolling(w).mean()
    for t, v in vol.items():
        m = prev_mean[t]
        if pd.notna(m) and v > 5 * m:
            alerts.append((sym, label, t, "volume_spike", v, 5 * m))
    return rows, alerts


def rolling_pairs(series, w, bench, label):
    rets = pd.DataFrame({s: f["ret"] for s, f in series.items()}).sort_index()
    syms = sorted(rets.columns, key=lambda s: s.encode())
    full = {s: rets[s].notna().rolling(w).sum() == w for s in syms}
    const = {s: constant(rets[s], w) for s in syms}
    mean = {s: rets[s].rolling(w).mean() for s in syms}
    corr_rows, beta_rows = [], []
    for i, a in enumerate(syms):
        for b in syms[i + 1 :]:
            both = full[a] & full[b]
            c = rets[a].rolling(w).corr(rets[b])
            c[const[a] | const[b]] = np.nan
            for t in rets.index[both.values]:
                corr_rows.append((label, t, a, b, c[t], w))
    if bench in rets:
        var_b = rets[bench].rolling(w).var(ddof=0)
        for s in syms:
            if s == bench:
                continue
            both = full[s] & full[bench]
            cov = rets[s].rolling(w).cov(rets[bench], ddof=0)
            beta = cov / var_b
            beta[const[bench]] = np.nan
            alpha = mean[s] - beta * mean[bench]
            r2 = rets[s].rolling(w).corr(rets[bench]) ** 2
            r2[const[s] | const[bench]] = np.nan
            for t in rets.index[both.values]:
                beta_rows.append((s, bench, label, t, beta[t], alpha[t], r2[t], w))
    corr = pd.DataFrame(
        corr_rows, columns=["resolution", "window_end", "symbol_a", "symbol_b", "corr", "n"]
    )
    beta = pd.DataFrame(
        beta_rows,
        columns=["symbol", "benchmark", "resolution", "window_end", "beta", "alpha", "r2", "n"],
    )
    return corr, beta


def reference(make_bars, resolutions, w, bench, zthr, frames=None):
    """Every set's reference rows; make_bars(r) gives the bars of resolution r. When
    `frames` is a dict it receives {(label, symbol): grid frame} (for the risk arbiter)."""
    sets = {k: [] for k in ("bars", "indicators", "correlation", "beta", "alerts", "risk")}
    for label in resolutions:
        r = res_ms(label)
        b = make_bars(r)
        b["resolution"] = label
        sets["bars"].append(b)
        series = grid(b, r)
        alerts = []
        for sym, frame in series.items():
            rows, al = indicators(sym, frame, w, zthr, label)
            sets["indicators"].append(rows)
            sets["risk"].append(risk_ref.risk(sym, frame, w, label, r))
            if frames is not None:
                frames[(label, sym)] = frame
            alerts.extend(al)
        sets["alerts"].append(
            pd.DataFrame(
                alerts,
                columns=["symbol", "resolution", "window_end", "kind", "value", "threshold"],
            )
        )
        corr, beta = rolling_pairs(series, w, bench, label)
        sets["correlation"].append(corr)
        sets["beta"].append(beta)
    return {k: pd.concat(v, ignore_index=True) for k, v in sets.items()}


KEYS = {
    "bars": ["symbol", "resolution", "window_end"],
    "indicators": ["symbol", "resolution", "window_end"],
    "correlation": ["resolution", "window_end", "symbol_a", "symbol_b"],
    "beta": ["symbol", "resolution", "window_end"],
    "alerts": ["symbol", "resolution", "window_end", "kind"],
}


def read_output(out, name):
    files = sorted(glob.glob(os.path.join(out, name, "**", "*.parquet"), recursive=True))
    if not files:
        return None
    df = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    for col in ("window_start", "window_end"):
        if col in df:
            df[col] = df[col].astype("datetime64[ms, UTC]").astype("int64")
    return df


def compare(name, ours, ref):
    keys = KEYS[name]
    problems = []
    if ours is None:
        ours = pd.DataFrame(columns=ref.columns)
    ours_k = ours.set_index(keys).sort_index()
    ref_k = ref.set_index(keys).sort_index()
    problems.extend(risk_ref.key_problems(name, ref_k, ours_k))
    common = ref_k.index.intersection(ours_k.index)
    worst = 0.0
    for col in ref_k.columns:
        if col not in ours_k.columns:
            problems.append(f"{name}: column {col} missing")
            continue
        a = ours_k.loc[common, col]
        b = ref_k.loc[common, col]
        if not (pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b)):
            bad = a.astype(str) != b.astype(str)
        else:
            a = a.astype("float64").replace([np.inf, -np.inf], np.nan)
            b = b.astype("float64").replace([np.inf, -np.inf], np.nan)
            null_diff = a.isna() != b.isna()
            err = (a - b).abs() / np.maximum(1.0, b.abs())
            worst = max(worst, float(err.max(skipna=True) or 0.0) if len(err) else 0.0)
            bad = null_diff | (err > 1e-9)
        for k in list(a.index[bad.values][:5]):
            problems.append(f"{name}.{col} at {k}: marketflow {a[k]!r}, pandas {b[k]!r}")
        if bad.sum() > 5:
            problems.append(f"{name}.{col}: {int(bad.sum())} values differ")
    print(f"{name}: {len(common)} rows compared, worst relative error {worst:.3e}")
    return problems


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--resolutions", required=True)
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--zscore", type=float, required=True)
    p.add_argument("--kind", choices=["trades", "candles"], default="trades")
    p.add_argument(
        "--risk", action="store_true",
        help="the config had features.risk = true: the risk set must be there",
    )
    args = p.parse_args()
    resolutions = args.resolutions.split(",")
    frames = {}
    ref = reference(
        load_bars(args.input, args.kind), resolutions, args.window, args.benchmark,
        args.zscore, frames,
    )
    problems = []
    for name in KEYS:
        if len(ref[name]) == 0:
            problems.append(f"{name}: the reference has no rows (test data too small?)")
        problems += compare(name, read_output(args.output, name), ref[name])
    ours = read_output(args.output, "risk")
    if ours is None and args.risk:
        problems.append(f"risk: no Parquet files under {os.path.join(args.output, 'risk')}")
    if ours is not None or args.risk:
        if len(ref["risk"]) == 0:
            problems.append("risk: the reference has no rows (test data too small?)")
        problems += risk_ref.compare(
            ours, ref["risk"], frames, args.window, {l: res_ms(l) for l in resolutions}
        )
    if problems:
        print("\n".join(problems[:60]))
        sys.exit(1)
    print("every value matches pandas")


if __name__ == "__main__":
    main()
