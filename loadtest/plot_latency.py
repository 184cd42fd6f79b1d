#!/usr/bin/python3
"""Plots qsl-loadtest JSON results: output tokens/s, TTFT p50/p99 and TPOT p50 against load, one
line per run (label), so qsl and a peer (llama-server, ...) can be compared on one figure.

usage: loadtest/plot_latency.py RESULT.json [RESULT.json ...] -o latency.png
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        run = json.load(f)
    if not run.get("levels"):
        sys.exit(f"{path}: no levels (is it qsl-loadtest --json output?)")
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="qsl-loadtest --json files")
    ap.add_argument("-o", "--output", default="latency.png", help="PNG to write")
    args = ap.parse_args()
    # Files with the same label (one per level, as loadtest/peer_compare.sh writes) form one line.
    runs, by_label = [], {}
    for p in args.results:
        run = load(p)
        key = run.get("label") or p
        if key in by_label:
            by_label[key]["levels"] += run["levels"]
        else:
            run["label"] = key
            by_label[key] = run
            runs.append(run)

    panels = [
        ("output tokens/s", lambda l: l["output_throughput"]),
        ("TTFT p50 / p99 (ms)", None),
        ("TPOT p50 (ms)", lambda l: l["tpot_ms"]["p50"]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for run in runs:
        label = run["label"]
        levels = sorted(run["levels"], key=lambda l: l["value"])
        x = [l["value"] for l in levels]
        for ax, (title, value) in zip(axes, panels):
            if value is None:
                line, = ax.plot(x, [l["ttft_ms"]["p50"] for l in levels], "o-", label=f"{label} p50")
                ax.plot(x, [l["ttft_ms"]["p99"] for l in levels], "s--", color=line.get_color(),
                        label=f"{label} p99")
            else:
                ax.plot(x, [value(l) for l in levels], "o-", label=label)
    mode = runs[0]["levels"][0]["mode"]
    for ax, (title, _) in zip(axes, panels):
        ax.set_title(title)
        ax.set_xlabel("concurrent streams" if mode == "concurrency" else "requests/s")
        ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
