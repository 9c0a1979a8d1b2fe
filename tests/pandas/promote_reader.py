"""Keeps reading a marketflow lake with pyarrow while promotions run, and records what
each read saw: for every feature set, one Hive-partitioned dataset scan of
`<lake>/<set>/` (as a user would read it), and the rows it returned per partition
directory (from the fragment each batch of the same scan came from).
Usage: promote_reader.py --lake LAKE --sets bars,risk --stop STOPFILE --out OUT.jsonl
Each line of OUT is {"read": i, "counts": {"bars/resolution=1s/dt=.../hour=23": n}} or
{"read": i, "error": "..."}; it stops after the first full read once STOPFILE exists.
"""
import argparse
import collections
import json
import os

import pyarrow.dataset as ds


def read_once(lake, sets):
    counts = collections.Counter()
    for name in sets:
        root = os.path.join(lake, name)
        if not os.path.isdir(root):
            continue
        dataset = ds.dataset(root, format="parquet", partitioning="hive")
        for tagged in dataset.scanner().scan_batches():
            part = os.path.relpath(os.path.dirname(tagged.fragment.path), lake)
            counts[part] += tagged.record_batch.num_rows
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True)
    ap.add_argument("--sets", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sets = args.sets.split(",")
    with open(args.out, "w") as out:
        i = 0
        while True:
            stopping = os.path.exists(args.stop)
            try:
                line = {"read": i, "counts": read_once(args.lake, sets)}
            except Exception as e:  # a reader error is a finding, not a crash
                line = {"read": i, "error": f"{type(e).__name__}: {e}"}
            out.write(json.dumps(line) + "\n")
            out.flush()
            i += 1
            if stopping:
                break


if __name__ == "__main__":
    main()
