"""Independent reference for the order-book sets `book` and `quotes` (README "Order
books") and its comparison with marketflow's Parquet output.

It reads the same input files marketflow read (JSON lines of Binance payloads, each
optionally prefixed by `<local_recv_ns> `, plain or gzip), rebuilds every symbol's
book from scratch with exact decimals (Python `Decimal` / `Fraction`), and computes
every row from the definitions:

- records of a symbol apply in file order; an applied record is stamped
  max(its event time, the book's time so far); the book at t is the book after every
  record stamped before t;
- Binance sequence rule (spot U/u, futures pu), diffs held until a snapshot and replayed,
  gaps and crossed books invalid until the next snapshot;
- one row per window [ws, we) while the book is valid at we, from the window where it
  first becomes valid to the window holding the greatest event time of the input;
  tw_spread_bps and ofi are null when the book is invalid at any moment of the window.

Values are compared with 1e-9 relative tolerance (absolute below 1), nulls exactly,
and the dead letters `sequence_gap` / `crossed_book` by count. Exit 1 on mismatch.
"""

import argparse
import bisect
import glob
import gzip
import json
import os
import sys
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pyarrow.dataset as ds

RES = {"1s": 1000, "1m": 60000, "5m": 300000, "1h": 3600000}


def open_text(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path, "rt")


def records(paths):
    """Book records per symbol in input order, and the greatest event time."""
    per_symbol = defaultdict(list)
    max_ts = None
    for path in paths:
        file_symbol, waiting = None, []
        with open_text(path) as f:
            first = f.readline()
            if first.startswith("exchange,symbol,timestamp,local_timestamp,is_snapshot"):
                ts = tardis(f, per_symbol)
                max_ts = ts if max_ts is None else max(max_ts, ts)
                continue
            f.seek(0)
            for line in f:
                line = line.strip()
                if not line:
                    continue
                recv = None
                if line[0].isdigit():
                    ns, line = line.split(" ", 1)
                    recv = int(ns) // 1_000_000
                msg = json.loads(line)
                if "data" in msg:
                    msg = msg["data"]
                e = msg.get("e")
                if e in ("trade", "aggTrade"):
                    ts = msg["T"]
                    max_ts = ts if max_ts is None else max(max_ts, ts)
                    continue
                ts = msg.get("E", recv)
                if e == "depthUpdate":
                    rec = dict(kind="diff", ts=ts, U=msg["U"], u=msg["u"], pu=msg.get("pu"),
                               b=msg["b"], a=msg["a"])
                    sym = msg["s"]
                elif "lastUpdateId" in msg:
                    rec = dict(kind="snap", ts=ts, id=msg["lastUpdateId"], b=msg["bids"], a=msg["asks"])
                    sym = None
                else:
                    rec = dict(kind="ticker", ts=ts, b=[[msg["b"], msg["B"]]], a=[[msg["a"], msg["A"]]])
                    sym = msg["s"]
                max_ts = ts if max_ts is None else max(max_ts, ts)
                if sym is None:
                    if file_symbol is None:
                        waiting.append(rec)
                        continue
                    sym = file_symbol
                elif file_symbol is None:
                    file_symbol = sym
                    per_symbol[sym].extend(waiting)
                    waiting = []
                per_symbol[sym].append(rec)
    return per_symbol, max_ts


def tardis(f, per_symbol):
    """Tardis incremental_book_L2 rows: consecutive rows of one symbol, time and
    snapshot flag are one record. Returns the greatest event time."""
    last, max_ts = None, None
    for line in f:
        line = line.strip()
        if not line:
            continue
        _, sym, ts_us, _, snap, side, price, amount = line.split(",")
        ts = int(ts_us) // 1000
        max_ts = ts if max_ts is None else max(max_ts, ts)
        kind = "tsnap" if snap == "true" else "tlevels"
        key = (sym, ts, kind)
        if key != last:
            per_symbol[sym].append(dict(kind=kind, ts=ts, b=[], a=[]))
            last = key
        per_symbol[sym][-1]["b" if side == "bid" else "a"].append([price, amount])
    return max_ts


def lv(levels):
    return [(Decimal(p), Decimal(q)) for p, q in levels]


class Book:
    """A level-2 book with the sequence rule."""

    def __init__(self):
        self.bids, self.asks = {}, {}
        self.state = "waiting"  # waiting | snap | synced
        self.last = None
        self.held = []
        self.crossed = False
        self._best = None

    def best(self):
        """Best bid and ask prices (None for an empty side), cached between changes."""
        if self._best is None:
            self._best = (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)
        return self._best

    def top(self):
        if self.state == "waiting" or self.crossed:
            return None
        b, a = self.best()
        if b is None or a is None or b >= a:
            return None
        return (b, self.bids[b], a, self.asks[a])

    def set(self, rec):
        for is_bid, side, levels in ((True, self.bids, rec["b"]), (False, self.asks, rec["a"])):
            for p, q in lv(levels):
                if q > 0:
                    side[p] = q
                    if self._best is not None:
                        b, a = self._best
                        if is_bid and (b is None or p > b):
                            self._best = (p, a)
                        elif not is_bid and (a is None or p < a):
                            self._best = (b, p)
                elif p in side:
                    del side[p]
                    if self._best is not None and p in self._best:
                        self._best = None

    def check_crossed(self, rejects):
        b, a = self.best()
        if b is not None and a is not None and b >= a and not self.crossed:
            rejects["crossed_book"] += 1
            self.crossed = True
            self.state = "waiting"


def stamp_events(recs, rejects):
    """Applies one symbol's records: yields (stamp, book, update_e or None) after each
    applied change (book is the live object; consume before the next)."""
    book = Book()
    clock = None

    def stamp(ts):
        nonlocal clock
        clock = ts if clock is None else max(clock, ts)
        return clock

    def diff(rec):
        if book.state == "waiting":
            book.held.append(rec)
            return
        futures = rec["pu"] is not None
        if book.state == "snap":
            lid = book.last
            if (rec["u"] < lid) if futures else (rec["u"] <= lid):
                return
            ok = (rec["U"] <= lid <= rec["u"]) if futures else (rec["U"] <= lid + 1 <= rec["u"])
        else:
            ok = (rec["pu"] == book.last) if futures else (rec["U"] == book.last + 1)
        s = stamp(rec["ts"])
        if not ok:
            rejects["sequence_gap"] += 1
            book.state = "waiting"
            yield s, None
            return
        before = book.top()
        book.set(rec)
        book.state, book.last = "synced", rec["u"]
        book.check_crossed(rejects)
        after = book.top()
        e = 0
        if before and after:
            b0, qb0, a0, qa0 = before
            b, qb, a, qa = after
            e = (qb if b >= b0 else 0) - (qb0 if b <= b0 else 0) - (qa if a <= a0 else 0) + (qa0 if a >= a0 else 0)
        yield s, e

    prev_tsnap = False
    for rec in recs:
        if rec["kind"] == "tsnap":
            s = stamp(rec["ts"])
            if not prev_tsnap:
                book.bids, book.asks, book.crossed, book._best = {}, {}, False, None
            book.set(rec)
            book.state = "tardis"
            book.check_crossed(rejects)
            book.state = "tardis"
            prev_tsnap = True
            yield s, book, None
            continue
        if rec["kind"] == "tlevels":
            prev_tsnap = False
            if book.state != "tardis":
                rejects["sequence_gap"] += 1
                continue
            s = stamp(rec["ts"])
            before = book.top()
            book.set(rec)
            book.check_crossed(rejects)
            book.state = "tardis"
            after = book.top()
            e = 0
            if before and after:
                b0, qb0, a0, qa0 = before
                b, qb, a, qa = after
                e = (qb if b >= b0 else 0) - (qb0 if b <= b0 else 0) - (qa if a <= a0 else 0) + (qa0 if a >= a0 else 0)
            yield s, book, e
            continue
        prev_tsnap = False
        if rec["kind"] == "snap":
            s = stamp(rec["ts"])
            book.bids, book.asks, book.crossed, book._best = {}, {}, False, None
            book.set(rec)
            book.state, book.last = "snap", rec["id"]
            book.check_crossed(rejects)
            yield s, book, None
            held, book.held = book.held, []
            for h in held:
                for s2, e in diff(h):
                    yield s2, book, e
        elif rec["kind"] == "diff":
            for s, e in diff(rec):
                yield s, book, e
    rejects["sequence_gap"] += len(book.held)


def quote_events(recs, rejects):
    clock = None
    q = {"top": None}
    for rec in recs:
        if rec["kind"] != "ticker":
            continue
        clock = rec["ts"] if clock is None else max(clock, rec["ts"])
        (b, qb), (a, qa) = lv(rec["b"])[0], lv(rec["a"])[0]
        if b >= a:
            rejects["crossed_book"] += 1
            q["top"] = None
        else:
            q["top"] = (b, qb, a, qa)
        yield clock, q, 0


def spread_bps(top):
    b, _, a, _ = top
    return Fraction(10000) * Fraction(a - b) / (Fraction(b + a) / 2)


def micro(top):
    b, qb, a, qa = top
    return Fraction(b * qa + a * qb) / Fraction(qb + qa)


def imb(x, y):
    return Fraction(0) if x + y == 0 else Fraction(x - y) / Fraction(x + y)


def book_values(book):
    top = book.top()
    b, qb, a, qa = top
    bids = sorted(book.bids.items(), reverse=True)
    asks = sorted(book.asks.items())
    mid = Fraction(b + a) / 2
    vals = dict(bid_px=b, bid_qty=qb, ask_px=a, ask_qty=qa, mid=mid, spread=a - b,
                spread_bps=spread_bps(top), microprice=micro(top))
    for k in (1, 5, 10):
        vals[f"imbalance_{k}"] = imb(sum(q for _, q in bids[:k]), sum(q for _, q in asks[:k]))
    vals["depth_bid_10bps"] = sum((q for p, q in bids if p >= mid * Fraction(999, 1000)), Decimal(0))
    vals["depth_ask_10bps"] = sum((q for p, q in asks if p <= mid * Fraction(1001, 1000)), Decimal(0))
    return vals


def quote_values(q):
    top = q["top"]
    b, qb, a, qa = top
    return dict(bid_px=b, bid_qty=qb, ask_px=a, ask_qty=qa, mid=Fraction(b + a) / 2,
                spread_bps=spread_bps(top), microprice=micro(top), imbalance_1=imb(qb, qa))


def obj_top(o):
    return o.top() if isinstance(o, Book) else o["top"]


def reference(paths, resolutions):
    per_symbol, max_ts = records(paths)
    rejects = defaultdict(int)
    book_rows, quote_rows = defaultdict(list), defaultdict(list)
    finest = min(RES[label] for label in resolutions)
    book_ev, quote_ev = {}, {}
    for symbol, recs in per_symbol.items():
        # The first pass finds the stamps; the second keeps the book's values only after
        # the last event before each window end (every resolution's ends are the finest's).
        stamps = [s for s, _, _ in stamp_events(recs, defaultdict(int))]
        book_ev[symbol] = list(materialise(stamp_events(recs, rejects), book_values, stamps, finest))
        qstamps = [s for s, _, _ in quote_events(recs, defaultdict(int))]
        quote_ev[symbol] = list(materialise(quote_events(recs, rejects), quote_values, qstamps, finest))
    for symbol in per_symbol:
        for label in resolutions:
            r = RES[label]
            last_end = (max_ts // r) * r + r
            book_rows[label] += series_from(book_ev[symbol], r, last_end, symbol, True)
            quote_rows[label] += series_from(quote_ev[symbol], r, last_end, symbol, False)
    return book_rows, quote_rows, rejects


def materialise(events, values, stamps, finest):
    """Freezes each event's book as (stamp, valid, spread, values, e): books are
    mutated in place, so the summary is taken right after each event; the full values
    only where a window end of the finest resolution follows (the next stamp is in a
    later window, or there is none)."""
    for k, (s, o, e) in enumerate(events):
        top = obj_top(o)
        needed = k + 1 == len(stamps) or stamps[k + 1] // finest > s // finest
        vals = values(o) if top and needed else None
        yield s, top is not None, (spread_bps(top) if top else None), vals, e


def series_from(events, r, last_end, symbol, with_ofi):
    """Rows of one symbol at resolution r from frozen events, by the definitions: the
    book at t is the state after the last event stamped before t."""
    rows = []
    if not events:
        return rows
    first_valid = next((s for s, ok, *_ in events if ok), None)
    if first_valid is None:
        return rows
    stamps = [ev[0] for ev in events]
    end = (first_valid // r) * r + r
    while end <= last_end:
        start = end - r
        k = bisect.bisect_left(stamps, end) - 1  # last event stamped before end
        if k >= 0 and events[k][1]:
            s, ok, sp, vals, _ = events[k]
            # moments in [start, end): state at start, then after each group in window
            k0 = bisect.bisect_left(stamps, start) - 1
            invalid = k0 < 0 or not events[k0][1]
            tw = Fraction(0)
            t_prev = start
            sp_prev = events[k0][2] if k0 >= 0 else None
            updates, ofi = 0, 0
            i = k0 + 1
            while i <= k:
                # group of equal stamps
                j = i
                while j + 1 <= k and stamps[j + 1] == stamps[i]:
                    j += 1
                s_i = stamps[i]
                if s_i > t_prev:
                    if sp_prev is None:
                        invalid = True
                    else:
                        tw += sp_prev * (s_i - t_prev)
                t_prev = s_i
                for m in range(i, j + 1):
                    if events[m][4] is not None:
                        updates += 1
                        ofi += events[m][4]
                sp_prev = events[j][2]
                if not events[j][1]:
                    invalid = True
                i = j + 1
            if sp_prev is None:
                invalid = True
            else:
                tw += sp_prev * (end - t_prev)
            row = dict(symbol=symbol, window_end=end, updates=updates, **vals)
            row["tw_spread_bps"] = None if invalid else tw / r
            if with_ofi:
                row["ofi"] = None if invalid else ofi
            rows.append(row)
        end += r
    return rows


def read_set(out, name):
    path = os.path.join(out, name)
    if not os.path.isdir(path):
        return []
    t = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    return t.to_pylist()


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def compare(name, got_rows, want_rows, columns):
    bad = 0
    got = {(str(r["symbol"]), int(r["window_end"].timestamp() * 1000)): r for r in got_rows}
    want = {(w["symbol"], w["window_end"]): w for w in want_rows}
    if set(got) != set(want):
        missing, extra = sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]
        print(f"{name}: {len(got)} rows, want {len(want)}; missing {missing}, extra {extra}")
        bad += 1
    for key in sorted(set(got) & set(want)):
        g, w = got[key], want[key]
        for c in columns:
            wv = None if w[c] is None else float(w[c])
            if not close(g[c], wv):
                if bad < 20:
                    print(f"{name} {key} {c}: got {g[c]} want {wv}")
                bad += 1
    return bad, len(want)


BOOK_COLS = ["bid_px", "bid_qty", "ask_px", "ask_qty", "mid", "spread", "spread_bps", "microprice",
             "imbalance_1", "imbalance_5", "imbalance_10", "depth_bid_10bps", "depth_ask_10bps",
             "tw_spread_bps", "ofi", "updates"]
QUOTE_COLS = ["bid_px", "bid_qty", "ask_px", "ask_qty", "mid", "spread_bps", "microprice",
              "imbalance_1", "tw_spread_bps", "updates"]


def make_tardis(captures, out):
    """Writes a Tardis incremental_book_L2 CSV from simulated captures: each symbol's
    snapshots as snapshot rows, its diffs as level rows (times in µs), and a crossing
    bid every 500th diff, for the reader and operator tests."""
    per_symbol, _ = records(captures)
    rows = []
    for sym, recs in per_symbol.items():
        n = 0
        for rec in recs:
            if rec["kind"] not in ("snap", "diff"):
                continue
            snap = rec["kind"] == "snap"
            t = rec["ts"] * 1000 + 7
            levels = [("bid", p, q) for p, q in rec["b"]] + [("ask", p, q) for p, q in rec["a"]]
            n += not snap
            if not snap and n % 500 == 0 and rec["a"]:
                levels.append(("bid", rec["a"][0][0], "1"))
            for side, p, q in levels:
                rows.append((t, len(rows), f"binance,{sym},{t},{t + 1000},{'true' if snap else 'false'},{side},{p},{q}"))
    rows.sort()
    with open(out, "w") as f:
        f.write("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n")
        for _, _, line in rows:
            f.write(line + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-tardis", metavar="OUT")
    ap.add_argument("--input", nargs="+", required=True)
    ap.add_argument("--output")
    ap.add_argument("--resolutions", default="1s")
    args = ap.parse_args()
    paths = sorted(p for g in args.input for p in glob.glob(g))
    if args.make_tardis:
        make_tardis(paths, args.make_tardis)
        return
    resolutions = args.resolutions.split(",")
    book_rows, quote_rows, rejects = reference(paths, resolutions)
    bad = 0
    for name, want, cols in (("book", book_rows, BOOK_COLS), ("quotes", quote_rows, QUOTE_COLS)):
        got_all = read_set(args.output, name)
        for label in resolutions:
            got = [r for r in got_all if r["resolution"] == label]
            b, n = compare(f"{name}/{label}", got, want[label], cols)
            print(f"{name}/{label}: {n} rows compared, {b} mismatches")
            bad += b
    got_rejects = defaultdict(int)
    for path in glob.glob(os.path.join(args.output, "_rejects", "**", "*.jsonl"), recursive=True):
        with open(path) as f:
            for line in f:
                got_rejects[json.loads(line)["reason"]] += 1
    for reason in ("sequence_gap", "crossed_book"):
        if got_rejects[reason] != rejects[reason]:
            print(f"rejects {reason}: got {got_rejects[reason]} want {rejects[reason]}")
            bad += 1
    print(f"dead letters: {dict(rejects)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
