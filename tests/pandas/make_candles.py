"""Writes a seeded simulated market as a canonical candles CSV
(ts_ms = bar open time, symbol, open, high, low, close, volume), for the pandas
cross-check of candle inputs.

Usage:
  make_candles.py --interval 1m|1d --output FILE.csv [--seed 7]

Correlated geometric Brownian motion with a BTC factor, prices on exchange ticks
(so repeated closes and zero returns occur), lognormal volumes with occasional
spikes. Edge cases, by interval (1m: about 2 days; 1d: about 600 days; 5 symbols):
- SOLUSDT starts late; ETHUSDT stops before the end (the grid runs on to the end);
- about 1% of the candles are missing at random, and XRPUSDT has one gap of 25 bars
  (a volume mean of 0 over 20 bars: volume_ratio null);
- DOGEUSDT has a flat stretch longer than the rolling window (open = high = low =
  close, some candles with volume 0): constant windows, sharpe / sortino / zscore /
  correlation null.
Same seed, same bytes.
"""

import argparse
import math

import numpy as np

SYMBOLS = [
    # symbol, start price, tick, volume scale, beta to the BTC factor
    ("BTCUSDT", 61668.7, 0.1, 2.0, 1.0),
    ("ETHUSDT", 2683.8, 0.01, 40.0, 1.1),
    ("SOLUSDT", 143.27, 0.001, 900.0, 1.3),
    ("DOGEUSDT", 0.10431, 0.00001, 1.5e6, 1.2),
    ("XRPUSDT", 0.5712, 0.0001, 2.0e5, 0.9),
]

PLANS = {
    # bars, bar ms, first open time, per-bar vol, late start, early stop, long gap, flat
    "1m": dict(n=2880, ms=60_000, t0=1_709_251_200_000, vol=0.0008,
               late=600, stop=10, gap=(1500, 1525), flat=(1000, 1100)),
    "1d": dict(n=600, ms=86_400_000, t0=1_654_041_600_000, vol=0.03,
               late=150, stop=3, gap=(400, 425), flat=(250, 295)),
}


def decimals(tick):
    return max(0, -int(math.floor(math.log10(tick) + 1e-9)))


def simulate(interval, seed):
    plan = PLANS[interval]
    rng = np.random.default_rng(seed)
    n, vol = plan["n"], plan["vol"]
    factor = rng.standard_normal(n)
    rows = []
    for j, (sym, p0, tick, vscale, beta) in enumerate(SYMBOLS):
        d = decimals(tick)
        own = rng.standard_normal(n)
        z = (beta * factor + 0.6 * own) / math.sqrt(beta * beta + 0.36)
        start = plan["late"] if sym == "SOLUSDT" else 0
        stop = n - plan["stop"] if sym == "ETHUSDT" else n
        p = round(p0 / tick) * tick
        for i in range(n):
            step = vol * z[i] + (0.006 * rng.standard_normal() if rng.random() < 0.003 else 0.0)
            o = p
            c = round(o * math.exp(step) / tick) * tick
            c = max(c, tick)
            wick = abs(rng.normal(0, vol / 2, 2))
            h = math.ceil(max(o, c) * (1 + wick[0]) / tick - 1e-9) * tick
            lo = max(math.floor(min(o, c) * (1 - wick[1]) / tick + 1e-9) * tick, tick)
            v = float(rng.lognormal(0, 0.8)) * vscale * (8 if rng.random() < 0.01 else 1)
            skip = rng.random() < 0.01
            if sym == "DOGEUSDT" and plan["flat"][0] <= i < plan["flat"][1]:
                c = h = lo = o
                v = 0.0 if rng.random() < 0.3 else v
                skip = False
            p = c
            if i < start or i >= stop or skip and i > start:
                continue
            if sym == "XRPUSDT" and plan["gap"][0] <= i < plan["gap"][1]:
                continue
            ts = plan["t0"] + i * plan["ms"]
            rows.append(
                (ts, j, f"{ts},{sym},{o:.{d}f},{h:.{d}f},{lo:.{d}f},{c:.{d}f},{v:.4f}")
            )
    rows.sort()
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--interval", choices=sorted(PLANS), required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    rows = simulate(args.interval, args.seed)
    with open(args.output, "w", newline="\n") as f:
        f.write("ts_ms,symbol,open,high,low,close,volume\n")
        for _, _, line in rows:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
