"""Exact-arithmetic recomputation of the `risk` set (README "Risk and trend"), the arbiter of
the pandas cross-check: where marketflow and pandas differ beyond 1e-9, the value
computed here decides.

Inputs are the float64 values of the dense grid (close, high, low, volume), converted
exactly with `Fraction(x)`; a return is the float64 `math.log(c / p)` (the float
division, then the platform libm log, as Rust's `f64::ln` computes it), also taken
exactly. Everything after that is exact rational arithmetic:
- sums (mean, variance, sma, volume mean, cvar) from exact prefix sums of Fractions;
- the 5% quantile on the sorted exact returns with h = (W-1)/20 exactly;
- drawdowns as exact ratios;
- atr_14 as the exact Wilder recursion with alpha = 1/14 (Fractions all the way);
- square roots (sharpe, sortino) with `decimal` at 60 significant digits, the only
  rounding before the final conversion to float64 (`float(Fraction)` rounds correctly).
Nullness is exact too: sharpe is null iff the W returns are all equal (variance exactly
0), sortino iff none is negative, volume_ratio iff the 20 volumes are all 0, trend
until sma_200 exists; trend is decided on the exact sma values, except at a near tie
(close vs sma_50 or sma_50 vs sma_200 within 1e-9, flagged `_trend_tie`), where
the cross-check accepts a label consistent with the side's own close and smas.

Library use: `ExactSeries(close, high, low, volume, w, r_ms).row(i)` gives the row at
grid position i (0-based from the symbol's first grid bar) as a dict of floats /
None / str. Command line (one row, and marketflow's row when --output is given):
  exact.py --input FILE [--kind trades|candles] --resolution 1m --window 60 \
      --symbol BTCUSDT --window-end 1723161600000 [--output OUT_DIR]
"""

import argparse
import decimal
import math
import os
import sys
from fractions import Fraction

YEAR_MS = 365 * 24 * 3600 * 1000
COLUMNS = [
    "close", "ret", "var_95", "cvar_95", "sharpe", "sortino", "drawdown", "max_drawdown",
    "atr_14", "sma_50", "sma_200", "trend", "volume_ma_20", "volume_ratio",
]

_CTX = decimal.Context(prec=60)


def _sqrt(x):
    """sqrt of a non-negative Fraction, to 60 significant digits, as a Fraction."""
    d = _CTX.divide(decimal.Decimal(x.numerator), decimal.Decimal(x.denominator))
    return Fraction(_CTX.sqrt(d))


def _prefix(values):
    out = [Fraction(0)]
    for v in values:
        out.append(out[-1] + v)
    return out


def _f(x):
    return None if x is None else float(x)


class ExactSeries:
    """The exact risk values of one symbol's dense grid."""

    def __init__(self, close, high, low, volume, w, r_ms):
        close = [float(x) for x in close]
        self.n = len(close)
        self.w = w
        self.c = [Fraction(x) for x in close]
        self.h = [Fraction(float(x)) for x in high]
        self.l = [Fraction(float(x)) for x in low]
        self.v = [Fraction(float(x)) for x in volume]
        self.ret = [None] + [
            Fraction(math.log(close[k] / close[k - 1])) for k in range(1, self.n)
        ]
        self.sqrt_p = _sqrt(Fraction(YEAR_MS, r_ms))
        r = [Fraction(0)] + self.ret[1:]
        self.s_r = _prefix(r)
        self.s_r2 = _prefix(x * x for x in r)
        self.s_neg2 = _prefix(min(x, 0) ** 2 for x in r)
        self.s_negcount = _prefix(1 if x < 0 else 0 for x in r)
        self.s_c = _prefix(self.c)
        self.s_v = _prefix(self.v)
        self.s_vnz = _prefix(1 if x != 0 else 0 for x in self.v)
        self._atr = None

    def atr(self):
        """Exact Wilder ATR at every grid position (None before the 14th TR)."""
        if self._atr is None:
            out = [None] * self.n
            avg = None
            a = Fraction(1, 14)
            for k in range(1, self.n):
                p = self.c[k - 1]
                tr = max(self.h[k] - self.l[k], abs(self.h[k] - p), abs(self.l[k] - p))
                avg = tr if avg is None else avg + a * (tr - avg)
                if k >= 14:
                    out[k] = avg
            self._atr = out
        return self._atr

    def _mean(self, s, i, n):
        return (s[i + 1] - s[i + 1 - n]) / n

    def row(self, i):
        """The risk row at grid position i (requires i >= W), exact then rounded."""
        w = self.w
        if i < w or i >= self.n:
            raise IndexError(f"grid position {i} has no risk row (W = {w}, n = {self.n})")
        x = sorted(self.ret[i - w + 1 : i + 1])
        h = Fraction(w - 1, 20)
        lo = math.floor(h)
        q = x[lo] if lo + 1 >= w else x[lo] + (h - lo) * (x[lo + 1] - x[lo])
        tail = [v for v in x if v <= q]
        cvar = -sum(tail, Fraction(0)) / len(tail)

        s1 = self.s_r[i + 1] - self.s_r[i + 1 - w]
        s2 = self.s_r2[i + 1] - self.s_r2[i + 1 - w]
        mean = s1 / w
        var = (s2 - s1 * s1 / w) / (w - 1)
        sharpe = None if var == 0 else mean / _sqrt(var) * self.sqrt_p
        neg2 = (self.s_neg2[i + 1] - self.s_neg2[i + 1 - w]) / w
        negs = self.s_negcount[i + 1] - self.s_negcount[i + 1 - w]
        sortino = None if negs == 0 or neg2 == 0 else mean / _sqrt(neg2) * self.sqrt_p

        closes = self.c[i - w : i + 1]
        run, worst = closes[0], Fraction(0)
        for c in closes:
            run = max(run, c)
            worst = min(worst, c / run - 1)
        drawdown = closes[-1] / max(closes) - 1

        ci = self.c[i]
        sma50 = self._mean(self.s_c, i, 50) if i >= 49 else None
        sma200 = self._mean(self.s_c, i, 200) if i >= 199 else None
        trend = None
        if sma200 is not None:
            if ci > sma50 > sma200:
                trend = "up"
            elif ci < sma50 < sma200:
                trend = "down"
            else:
                trend = "sideways"
        vma = vratio = None
        if i >= 19:
            vma = self._mean(self.s_v, i, 20)
            nonzero = self.s_vnz[i + 1] - self.s_vnz[i + 1 - 20]
            vratio = None if nonzero == 0 else self.v[i] / vma
        return {
            "close": float(ci),
            "ret": float(self.ret[i]),
            "var_95": float(-q),
            "cvar_95": float(cvar),
            "sharpe": _f(sharpe),
            "sortino": _f(sortino),
            "drawdown": float(drawdown),
            "max_drawdown": float(worst),
            "atr_14": _f(self.atr()[i]),
            "sma_50": _f(sma50),
            "sma_200": _f(sma200),
            "trend": trend,
            "volume_ma_20": _f(vma),
            "volume_ratio": _f(vratio),
            # a near tie: close vs sma_50 or sma_50 vs sma_200 within 1e-9 (the
            # comparison's tolerance), where the label is ill-conditioned
            "_trend_tie": sma200 is not None
            and (_close(ci, sma50) or _close(sma50, sma200)),
        }


def _close(a, b, tol=Fraction(1, 10**9)):
    return abs(a - b) <= tol * max(1, abs(b))


def trend_of(c, s50, s200):
    """The trend label of float (or exact) values; None when sma_200 is null."""
    if s200 is None or s50 is None or c is None:
        return None
    if c > s50 > s200:
        return "up"
    if c < s50 < s200:
        return "down"
    return "sideways"


def from_frame(frame, w, r_ms):
    """ExactSeries of a grid frame (columns close, high, low, volume) of crosscheck.py."""
    return ExactSeries(
        frame["close"].to_numpy(), frame["high"].to_numpy(), frame["low"].to_numpy(),
        frame["volume"].to_numpy(), w, r_ms,
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import crosscheck  # noqa: E402  (the same bars and grid as the cross-check)

    p = argparse.ArgumentParser(description="exact risk row of one (symbol, window_end)")
    p.add_argument("--input", required=True)
    p.add_argument("--kind", default="trades", choices=["trades", "candles"])
    p.add_argument("--resolution", required=True)
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--symbol", required=True)
    p.add_argument("--window-end", type=int, required=True)
    p.add_argument("--output", help="a marketflow output dir: print its row too")
    args = p.parse_args()
    r = crosscheck.res_ms(args.resolution)
    frame = crosscheck.load_grid(args.input, args.kind, r)[args.symbol]
    i = frame.index.get_loc(args.window_end)
    row = from_frame(frame, args.window, r).row(i)
    ours = None
    if args.output:
        out = crosscheck.read_output(args.output, "risk")
        if out is not None:
            sel = out[
                (out["symbol"] == args.symbol)
                & (out["resolution"].astype(str) == args.resolution)
                & (out["window_end"] == args.window_end)
            ]
            ours = sel.iloc[0] if len(sel) else None
    for col in COLUMNS:
        line = f"{col:>13} exact {row[col]!r}"
        if ours is not None:
            v = ours[col]
            v = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            v = v if v is None or col == "trend" else float(v)
            line += f"   marketflow {v!r}"
        print(line)


if __name__ == "__main__":
    main()
