"""Reads every feature set of a marketflow lake back as ONE Hive-partitioned dataset with
pyarrow, polars and DuckDB, and checks that:
- the three readers see the same rows, as many as the run manifest says were written;
- every row sits in the partition of its window end (`dt=YYYY-MM-DD/hour=HH` hourly,
  `dt=YYYY-MM-DD` with a null hour daily, `dt=YYYY-MM` with a null hour monthly; a
  window ending at midnight belongs to the new day);
- a filter on the partition key `dt` prunes files (pyarrow lists fewer fragments) and
  selects the same rows in all three readers.
Usage: readers.py --output OUT --manifest RUN.json --day YYYY-MM-DD
"""
import argparse
import json
import os

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--day", required=True)
    args = ap.parse_args()
    manifest = json.load(open(args.manifest))
    sets = manifest["feature_sets"]
    checked = 0
    for name, info in sorted(sets.items()):
        root = os.path.join(args.output, name)
        if not os.path.isdir(root):
            assert info["rows"] == 0, f"{name}: no files but {info['rows']} rows"
            continue
        glob = f"{root}/**/*.parquet"
        dataset = ds.dataset(root, partitioning="hive")
        table = dataset.to_table().to_pandas()
        n_pl = pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item()
        n_dd = duckdb.sql(
            f"select count(*) from read_parquet('{glob}', hive_partitioning=1)"
        ).fetchall()[0][0]
        assert len(table) == n_pl == n_dd == info["rows"], (
            f"{name}: pyarrow {len(table)}, polars {n_pl}, duckdb {n_dd}, manifest {info['rows']}"
        )

        # Every row in the partition of its window end.
        end = pd.to_datetime(table["window_end"], utc=True)
        hourly = table["hour"].notna()
        day = end.dt.strftime("%Y-%m-%d")
        month = end.dt.strftime("%Y-%m")
        is_month = table["dt"].astype(str).str.len() == 7
        want_dt = day.where(~is_month, month)
        bad = (table["dt"].astype(str) != want_dt) | (
            hourly & (table["hour"].astype("Int64") != end.dt.hour.astype("Int64"))
        )
        assert not bad.any(), f"{name}: rows outside their partition:\n{table[bad].head()}"
        # Hourly partitions are exactly the resolutions under a minute.
        res_ms = pd.to_timedelta(table["resolution"]).dt.total_seconds() * 1000
        assert (hourly == (res_ms < 60_000)).all(), f"{name}: hourly partitions are for sub-minute bars"
        assert (is_month == (res_ms >= 300_000)).all(), f"{name}: monthly from 5m up"

        # Pruning by dt.
        flt = ds.field("dt") == args.day
        all_frags = len(list(dataset.get_fragments()))
        kept_frags = len(list(dataset.get_fragments(filter=flt)))
        n_pa = dataset.count_rows(filter=flt)
        n_pl = (
            pl.scan_parquet(glob, hive_partitioning=True)
            .filter(pl.col("dt").cast(pl.String) == args.day)
            .select(pl.len())
            .collect()
            .item()
        )
        n_dd = duckdb.sql(
            f"select count(*) from read_parquet('{glob}', hive_partitioning=1) "
            f"where cast(dt as varchar) = '{args.day}'"
        ).fetchall()[0][0]
        want = int(((table["dt"].astype(str) == args.day)).sum())
        assert n_pa == n_pl == n_dd == want, (
            f"{name} dt={args.day}: pyarrow {n_pa}, polars {n_pl}, duckdb {n_dd}, want {want}"
        )
        if want:
            assert kept_frags < all_frags, f"{name}: dt filter kept all {all_frags} files"
        print(
            f"{name}: {len(table)} rows in {all_frags} files; dt={args.day}: {want} rows in {kept_frags} files"
        )
        checked += 1
    assert checked >= 3, f"only {checked} sets checked"


if __name__ == "__main__":
    main()
