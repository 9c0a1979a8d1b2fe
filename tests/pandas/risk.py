"""pandas reference for the `risk` set (README "Risk and trend") and its comparison with
marketflow's output, arbitrated by exact arithmetic (exact.py).

Choice: the reference is plain pandas, the calls a quant would write
(`rolling(W).quantile(0.05)`, `rolling(W).mean()` / `.std(ddof=1)`, `ewm(alpha=1/14,
adjust=False, min_periods=14)`, `rolling(50).mean()`, ...), NOT a hardened
reimplementation. pandas' online rolling mean/std add and remove values, so on long or
flat series they drift from the exact window value (up to ~1e-7 relative for a sharpe
whose std is tiny next to earlier windows). Therefore, where marketflow and pandas
differ beyond 1e-9 (relative, absolute below 1), `exact.ExactSeries` recomputes the
row with Fractions over the exact float64 inputs and decides: the check passes only
where marketflow is within 1e-9 of the exact value (and has the exact nullness and,
for trend, the exact label). Each arbitrated mismatch is reported with the side the
exact value supports.

Nullness in the reference is decided by exact tests, not by the drifting values:
sharpe is null where the W returns are all equal (rolling max == min), sortino where
none is negative (a rolling count), volume_ratio where the 20 volumes are all 0.

Self-test (no marketflow needed): `python tests/pandas/risk.py --selftest` builds a
random market with gaps, flat stretches, a late starter and zero-volume bars, and
compares every pandas value with the exact recomputation; it then runs the arbitrated
comparison with the exact values as a stand-in for marketflow (must pass: where
pandas drifted, the arbiter sides with them) and with planted errors (must fail).

trend: the exact label decides, except at a near tie (close vs sma_50 or sma_50 vs
sma_200 within 1e-9 exactly), where the label is ill-conditioned: there a side passes
when its label is the one its own close / sma_50 / sma_200 give (those values must
match the exact ones to 1e-9 anyway). The simulated 1m candles have two such rows.
"""

import math
import sys

import numpy as np
import pandas as pd

import exact

YEAR_MS = 365 * 24 * 3600 * 1000
KEYS = ["symbol", "resolution", "window_end"]
NUMERIC = [
    "close", "ret", "var_95", "cvar_95", "sharpe", "sortino", "drawdown", "max_drawdown",
    "atr_14", "sma_50", "sma_200", "volume_ma_20", "volume_ratio",
]
COLUMNS = KEYS + NUMERIC[:11] + ["trend"] + NUMERIC[11:]


def risk(sym, frame, w, label, r):
    """Risk rows of one symbol's dense grid (columns close, high, low, volume, ret;
    index window_end), one per grid bar from position W on."""
    close, high, low, vol, ret = (frame[c] for c in ("close", "high", "low", "volume", "ret"))
    if len(frame) <= w:
        return pd.DataFrame(columns=COLUMNS + ["position"])
    sqrt_p = math.sqrt(YEAR_MS / r)
    full = ret.notna().rolling(w).sum() == w

    q = ret.rolling(w).quantile(0.05)  # linear interpolation
    windows = np.lib.stride_tricks.sliding_window_view(ret.to_numpy(), w)
    qa = q.to_numpy()[w - 1 :]
    tail = windows <= qa[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        cvar = -np.where(tail, windows, 0.0).sum(axis=1) / tail.sum(axis=1)
    cvar = pd.Series(np.concatenate([np.full(w - 1, np.nan), cvar]), index=ret.index)

    mean = ret.rolling(w).mean()
    std = ret.rolling(w).std(ddof=1)
    sharpe = mean / std * sqrt_p
    sharpe[(ret.rolling(w).max() == ret.rolling(w).min()) | (std == 0)] = np.nan
    dd = np.sqrt((ret.clip(upper=0) ** 2).rolling(w).mean())
    sortino = mean / dd * sqrt_p
    sortino[((ret < 0).rolling(w).sum() == 0) | (dd == 0)] = np.nan

    drawdown = close / close.rolling(w + 1).max() - 1
    max_dd = close.rolling(w + 1).apply(
        lambda x: (x / np.maximum.accumulate(x)).min() - 1, raw=True
    )

    prev = close.shift(1)
    tr = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    tr[prev.isna()] = np.nan  # TR from the second grid bar
    atr = tr.ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()

    sma50 = close.rolling(50).mean()
    sma200 = close.rolling(200).mean()
    trend = pd.Series(
        np.select(
            [(close > sma50) & (sma50 > sma200), (close < sma50) & (sma50 < sma200)],
            ["up", "down"],
            "sideways",
        ),
        index=close.index,
        dtype=object,
    )
    trend[sma200.isna()] = None

    vma = vol.rolling(20).mean()
    ratio = vol / vma
    ratio[((vol != 0).rolling(20).sum() == 0) | (vma == 0)] = np.nan

    rows = pd.DataFrame(
        {
            "symbol": sym,
            "resolution": label,
            "window_end": frame.index,
            "close": close.values,
            "ret": ret.values,
            "var_95": (-q).values,
            "cvar_95": cvar.values,
            "sharpe": sharpe.values,
            "sortino": sortino.values,
            "drawdown": drawdown.values,
            "max_drawdown": max_dd.values,
            "atr_14": atr.values,
            "sma_50": sma50.values,
            "sma_200": sma200.values,
            "trend": trend.values,
            "volume_ma_20": vma.values,
            "volume_ratio": ratio.values,
        }
    )
    rows["position"] = np.arange(len(rows))
    return rows[full.values].reset_index(drop=True)


def err(a, b):
    """The cross-check's error: |a - b| / max(1, |b|); inf when exactly one is null."""
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (
        isinstance(b, float) and math.isnan(b)
    ):
        na = a is None or (isinstance(a, float) and math.isnan(a))
        nb = b is None or (isinstance(b, float) and math.isnan(b))
        return 0.0 if na and nb else math.inf
    return abs(a - b) / max(1.0, abs(b))


def _num(v):
    if v is None or v is pd.NA:
        return None
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v


def _label(v):
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def _own_trend(row):
    """The label a row's own close, sma_50 and sma_200 give."""
    return exact.trend_of(_num(row["close"]), _num(row["sma_50"]), _num(row["sma_200"]))



def key_problems(name, ref_k, ours_k):
    """Rows of the reference missing from ours and rows of ours it lacks (by index)."""
    problems = []
    missing = ref_k.index.difference(ours_k.index)
    extra = ours_k.index.difference(ref_k.index)
    for k in list(missing[:5]):
        problems.append(f"{name}: row {k} missing from marketflow")
    for k in list(extra[:5]):
        problems.append(f"{name}: unexpected row {k} in marketflow")
    if len(missing) or len(extra):
        problems.append(f"{name}: {len(missing)} rows missing, {len(extra)} extra")
    return problems

def compare(ours, ref, frames, w, res_ms, tol=1e-9, max_exact=20000):
    """Compares marketflow's risk rows `ours` with the pandas reference `ref`.

    frames: {(resolution label, symbol): grid frame} for the exact arbiter.
    Returns a list of problems (empty when every value passes)."""
    name = "risk"
    problems = []
    if ours is None:
        ours = pd.DataFrame(columns=COLUMNS)
    ours = ours.copy()
    ours["resolution"] = ours["resolution"].astype(str)
    ref = ref.copy()
    ref["resolution"] = ref["resolution"].astype(str)
    ours_k = ours.set_index(KEYS).sort_index()
    ref_k = ref.set_index(KEYS).sort_index()
    if ours_k.index.has_duplicates:
        problems.append(f"{name}: {int(ours_k.index.duplicated().sum())} duplicate keys")
        ours_k = ours_k[~ours_k.index.duplicated()]
    problems.extend(key_problems(name, ref_k, ours_k))
    common = ref_k.index.intersection(ours_k.index)
    worst = 0.0
    suspects = {}  # key -> [columns]
    for col in NUMERIC + ["trend"]:
        if col not in ours_k.columns:
            problems.append(f"{name}: column {col} missing")
            continue
        a = ours_k.loc[common, col]
        b = ref_k.loc[common, col]
        if col == "trend":
            an = a.map(_label).fillna("<null>")
            bn = b.map(_label).fillna("<null>")
            bad = an != bn
        else:
            a = pd.to_numeric(a, errors="coerce").astype("float64").replace(
                [np.inf, -np.inf], np.nan
            )
            b = b.astype("float64").replace([np.inf, -np.inf], np.nan)
            e = (a - b).abs() / np.maximum(1.0, b.abs())
            if len(e):
                worst = max(worst, float(e.max(skipna=True) or 0.0))
            bad = (a.isna() != b.isna()) | (e > tol)
        for k in common[bad.values]:
            suspects.setdefault(k, []).append(col)
    print(f"{name}: {len(common)} rows compared, worst relative error vs pandas {worst:.3e}")

    # Arbitration by exact arithmetic.
    series = {}
    verdicts = {"marketflow": 0, "pandas": 0, "both": 0, "neither": 0}
    failures = []
    checked = 0
    for k in sorted(suspects, key=lambda k: (k[1], k[0], k[2])):
        if checked >= max_exact:
            problems.append(
                f"{name}: {len(suspects) - checked} more suspect rows not arbitrated"
            )
            break
        checked += 1
        sym, label, t = k
        if (label, sym) not in series:
            series[(label, sym)] = exact.from_frame(frames[(label, sym)], w, res_ms[label])
        pos = int(ref_k.loc[k, "position"])
        ex = series[(label, sym)].row(pos)
        for col in suspects[k]:
            if col == "trend":
                mf, pd_, xv = _label(ours_k.loc[k, col]), _label(ref_k.loc[k, col]), ex[col]
                tie = ex["_trend_tie"]
                ok_mf = mf == xv or tie and mf == _own_trend(ours_k.loc[k])
                ok_pd = pd_ == xv or tie and pd_ == _own_trend(ref_k.loc[k])
            else:
                mf, pd_, xv = _num(ours_k.loc[k, col]), _num(ref_k.loc[k, col]), ex[col]
                e_mf, e_pd = err(mf, xv), err(pd_, xv)
                ok_mf, ok_pd = e_mf <= tol, e_pd <= tol
            side = (
                "both" if ok_mf and ok_pd else
                "marketflow" if ok_mf else
                "pandas" if ok_pd else "neither"
            )
            verdicts[side] += 1
            line = (
                f"{name}.{col} at {k}: marketflow {mf!r}, pandas {pd_!r}, exact {xv!r}"
                f" -> exact supports {side}"
            )
            if ok_mf:
                if verdicts[side] <= 5:
                    print("  arbitrated: " + line)
            else:
                failures.append(line)
    if suspects:
        print(
            f"{name}: {sum(len(v) for v in suspects.values())} values beyond {tol:g} vs pandas"
            f" in {len(suspects)} rows; exact arithmetic supports: "
            + ", ".join(f"{s} {n}" for s, n in verdicts.items())
        )
    problems += failures[:30]
    if len(failures) > 30:
        problems.append(f"{name}: {len(failures)} values differ from the exact value")
    return problems


# --- self-test -------------------------------------------------------------------------


def _random_bars(rng, n, r, syms):
    """Bars (symbol, window_start, open, high, low, close, volume) with gaps, flat
    stretches (constant price, some with zero volume), a late starter and an early
    finisher, at price magnitudes where online rolling sums drift."""
    rows = []
    base = {s: p for s, p in zip(syms, [61668.7, 2.5, 0.00012345, 350.0])}
    for j, s in enumerate(syms):
        p = base[s]
        start = 0 if j != 1 else 137  # a late starter
        stop = n if j != 2 else n - 40  # an early finisher: grid runs on to the end
        vol = 0.0002 if j != 3 else 0.02
        for i in range(start, stop):
            flat = (300 <= i < 420 and j == 0) or (900 <= i < 935 and j == 3)
            if rng.random() < 0.05 and i > start:  # gap: no bar
                continue
            if 1500 <= i < 1530 and j == 0:  # a long gap: volume mean 0
                continue
            calm = 1260 <= i < 1400 and j == 3  # after a crash: tiny moves, tiny std
            if flat:
                o = h = l = c = p
                v = 0.0 if rng.random() < 0.5 else float(rng.integers(1, 50)) / 8
            elif calm:
                o = p
                c = p + 0.01 * int(rng.integers(-1, 2)) * (rng.random() < 0.3)
                h, l = max(o, c), min(o, c)
                v = float(rng.integers(1, 50)) / 8
                v = 0.0 if rng.random() < 0.5 else float(rng.integers(1, 50)) / 8
            else:
                o = p
                big = 1200 <= i < 1260 and j == 3
                c = p * math.exp((0.05 if big else vol) * rng.standard_normal())
                if rng.random() < 0.1:
                    c = p  # a bar that closes where it opened (zero return)
                h = max(o, c) * (1 + abs(rng.normal(0, vol / 3)))
                l = min(o, c) * (1 - abs(rng.normal(0, vol / 3)))
                v = float(rng.lognormal(0, 1)) * (10 if rng.random() < 0.02 else 1)
            rows.append((s, i * r, o, h, l, c, v))
            p = c
    return pd.DataFrame(
        rows, columns=["symbol", "window_start", "open", "high", "low", "close", "volume"]
    )


def against_exact(series, ref, w, r, label):
    """Every pandas risk value of `ref` against the exact recomputation. Returns
    (exact rows as a DataFrame, ok): not ok when a nullness differs or a value is more
    than 1e-6 off (a reference bug, not drift)."""
    exact_rows = []
    drift = {c: 0 for c in NUMERIC + ["trend"]}
    worst = {c: 0.0 for c in NUMERIC}
    null_problems = []
    for s, f in series.items():
        part = ref[ref["symbol"] == s]
        if not len(part):
            continue
        ex = exact.from_frame(f, w, r)
        for row in part.itertuples(index=False):
            row = row._asdict()
            x = ex.row(int(row["position"]))
            exact_rows.append({"symbol": s, "resolution": label,
                               "window_end": row["window_end"],
                               **{c: x[c] for c in NUMERIC + ["trend"]}})
            for c in NUMERIC:
                pv, xv = _num(row[c]), x[c]
                if (pv is None) != (xv is None):
                    null_problems.append(f"{s} {row['window_end']} {c}: pandas {pv} exact {xv}")
                    continue
                if pv is None:
                    continue
                e = err(pv, xv)
                worst[c] = max(worst[c], e)
                if e > 1e-9:
                    drift[c] += 1
            if _label(row["trend"]) != x["trend"] and not (
                x["_trend_tie"] and _label(row["trend"]) == _own_trend(row)
            ):
                drift["trend"] += 1
    ex_df = pd.DataFrame(exact_rows)
    print(f"pandas vs exact over {len(ex_df)} rows, worst error per column:")
    for c in NUMERIC:
        print(f"  {c:>13} {worst[c]:.2e}  ({drift[c]} beyond 1e-9)")
    print(f"  {'trend':>13} {drift['trend']} labels differ (beyond near ties)")
    nulls = {c: int(ex_df[c].isna().sum()) for c in ("sharpe", "sortino", "volume_ratio", "atr_14", "sma_50", "sma_200")}
    print(f"  exact nulls: {nulls}")
    ok = True
    if null_problems:
        ok = False
        print("NULLNESS differs:\n  " + "\n  ".join(null_problems[:10]))
    if drift["trend"]:
        ok = False
        print("FAIL: pandas trend labels differ from the exact ones")
    for c in NUMERIC:
        if worst[c] > 1e-6:
            ok = False
            print(f"FAIL: pandas {c} is {worst[c]:.1e} off the exact value: a reference bug")
    return ex_df, ok


def selftest(seed=11, n=2200, w=60, r=60_000):
    """One self-test run (see the module doc); True when it passed."""
    import crosscheck

    rng = np.random.default_rng(seed)
    syms = ["BTC", "ALT", "MICRO", "ETH"]
    b = _random_bars(rng, n, r, syms)
    series = crosscheck.grid(b, r)
    label = {60_000: "1m", 86_400_000: "1d"}.get(r, f"{r}ms")
    ref = pd.concat([risk(s, f, w, label, r) for s, f in series.items()], ignore_index=True)
    frames = {(label, s): f for s, f in series.items()}
    print(f"selftest: {len(ref)} rows, {len(syms)} symbols, W = {w}, {n} bars of {label}")

    # 1. every pandas value against the exact recomputation
    ex_df, ok = against_exact(series, ref, w, r, label)
    nulls = {c: int(ex_df[c].isna().sum()) for c in ("sharpe", "sortino", "volume_ratio")}
    if nulls["sharpe"] == 0 or nulls["sortino"] == 0 or nulls["volume_ratio"] == 0:
        ok = False
        print("FAIL: the self-test data has no constant/zero-volume windows")

    # 2. the arbitrated comparison
    def run(name, ours, expect_pass):
        nonlocal ok
        print(f"-- compare with {name} as marketflow")
        probs = compare(ours, ref, frames, w, {label: r})
        passed = not probs
        for p in probs[:4]:
            print("   " + p)
        if passed != expect_pass:
            ok = False
            print(f"FAIL: expected {'pass' if expect_pass else 'failure'}")

    run("the exact values", ex_df, True)
    bad = ex_df.copy()
    i = len(bad) // 2
    bad.loc[i, "sharpe"] = bad.loc[i, "sharpe"] * (1 + 1e-7)
    run("exact values with one sharpe off by 1e-7", bad, False)
    bad = ex_df.copy()
    flat = bad["sharpe"].isna() & bad["var_95"].notna()
    bad.loc[flat, "sharpe"] = 1e9  # a std that drifted off 0 instead of null
    run("exact values with non-null sharpe on constant windows", bad, False)
    bad = ex_df.copy()
    j = bad.index[bad["trend"] == "up"][0]
    bad.loc[j, "trend"] = "sideways"
    run("exact values with one trend label wrong", bad, False)
    print("selftest " + ("passed" if ok else "FAILED"))
    return ok


if __name__ == "__main__":
    if "--against-exact" in sys.argv:
        # pandas vs exact on every risk row of a real input:
        # risk.py --against-exact FILE KIND RESOLUTION WINDOW
        import crosscheck

        path, kind, label, w = sys.argv[sys.argv.index("--against-exact") + 1 :][:4]
        r, w = crosscheck.res_ms(label), int(w)
        series = crosscheck.load_grid(path, kind, r)
        ref = pd.concat([risk(s, f, w, label, r) for s, f in series.items()], ignore_index=True)
        sys.exit(0 if against_exact(series, ref, w, r, label)[1] else 1)
    if "--selftest" in sys.argv:
        ok = selftest()
        # short window and daily bars: atr_14 and volume_ma_20 null in the first rows
        ok = selftest(seed=5, n=700, w=10, r=86_400_000) and ok
        sys.exit(0 if ok else 1)
    print(__doc__)
    sys.exit(2)
