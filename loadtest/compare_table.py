#!/usr/bin/python3
"""Medians over repeated loadtest/peer_compare.sh runs, as one Markdown table: per load level,
qsl's and llama-server's output tokens/s, TTFT p50/p99 and TPOT p50, and qsl's throughput as a
multiple of llama-server's. Each run is one OUT_DIR holding qsl-c<N>.json and llama-c<N>.json.

usage: loadtest/compare_table.py OUT_DIR [OUT_DIR ...]
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys


def level_of(path, server):
    """The one level in a qsl-loadtest --json file, as a flat dict of the columns we report."""
    with open(path) as f:
        run = json.load(f)
    levels = run.get("levels") or []
    if len(levels) != 1:
        sys.exit(f"{path}: expected one level, found {len(levels)}")
    lv = levels[0]
    if lv["errors"]:
        print(f"warning: {path}: {lv['errors']} failed requests", file=sys.stderr)
    return {
        f"{server}_tok": lv["output_throughput"],
        f"{server}_ttft50": lv["ttft_ms"]["p50"],
        f"{server}_ttft99": lv["ttft_ms"]["p99"],
        f"{server}_tpot50": lv["tpot_ms"]["p50"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="peer_compare.sh output folders")
    args = ap.parse_args()
    by_level = {}  # streams -> list of per-run dicts
    for d in args.runs:
        for q in glob.glob(os.path.join(d, "qsl-c*.json")):
            c = int(re.search(r"qsl-c(\d+)\.json$", q).group(1))
            llama = os.path.join(d, f"llama-c{c}.json")
            if not os.path.exists(llama):
                sys.exit(f"{d}: {os.path.basename(q)} has no llama-c{c}.json beside it")
            row = level_of(q, "qsl") | level_of(llama, "llama")
            row["ratio"] = row["qsl_tok"] / row["llama_tok"]
            by_level.setdefault(c, []).append(row)
    if not by_level:
        sys.exit("no qsl-c*.json in the given folders")
    print(f"Medians over {len(args.runs)} run(s).\n")
    print("| streams | qsl out tok/s | llama-server out tok/s | qsl / llama (median of runs) "
          "| qsl TTFT p50 / p99 ms | llama-server TTFT p50 / p99 ms | qsl TPOT p50 ms "
          "| llama-server TPOT p50 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in sorted(by_level):
        rows = by_level[c]
        m = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"| {c} | {m['qsl_tok']:.0f} | {m['llama_tok']:.0f} | {m['ratio']:.2f}x "
              f"| {m['qsl_ttft50']:.1f} / {m['qsl_ttft99']:.1f} "
              f"| {m['llama_ttft50']:.1f} / {m['llama_ttft99']:.1f} "
              f"| {m['qsl_tpot50']:.2f} | {m['llama_tpot50']:.2f} |")


if __name__ == "__main__":
    main()
