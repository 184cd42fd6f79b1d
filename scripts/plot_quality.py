#!/usr/bin/python3
"""Renders scripts/quality_table.sh's results: the markdown table between the quality-table
markers of docs/quality.md, and the plot of perplexity against bits per weight (SVG).

usage: plot_quality.py RESULTS_TSV QUALITY_MD PLOT_SVG
"""
import csv
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)

BEGIN, END = "<!-- quality-table:begin -->", "<!-- quality-table:end -->"


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or rows[0]["label"] != "fp32":
        sys.exit(f"{path}: expected the fp32 row first")
    for r in rows:
        for key in ("bits", "ppl", "ppl_kv_int8"):
            if not r[key]:
                sys.exit(f"{path}: row {r['label']!r} has no {key}")
            r[key] = float(r[key])
        r["bytes"] = int(r["bytes"])
    return rows


def table(rows):
    base = rows[0]["ppl"]
    lines = [
        "| configuration | bits / weight | file | dev ppl | vs fp32 | int8 KV ppl | int8 KV extra |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rel = 100.0 * (r["ppl"] / base - 1.0)
        extra = 100.0 * (r["ppl_kv_int8"] / r["ppl"] - 1.0)
        bits = "16 (bf16)" if r["label"] == "fp32" else f"{r['bits']:.3f}"
        lines.append(
            f"| {r['label']} | {bits} | {r['bytes'] / 2**20:.2f} MiB | {r['ppl']:.4f} | "
            f"{rel:+.2f}% | {r['ppl_kv_int8']:.4f} | {extra:+.3f}% |"
        )
    lines += ["", "Commands (run from the repository root; `qsl` is `build/tools/qsl`):", ""]
    for r in rows:
        cmd = r["quantize"] + "\n" if r["quantize"] else ""
        lines += [f"- {r['label']}:", "  ```", *[f"  {c}" for c in (cmd + r["eval"]).split("\n")], "  ```"]
    return "\n".join(lines)


def splice(md_path, text):
    with open(md_path) as f:
        md = f.read()
    if BEGIN not in md or END not in md:
        sys.exit(f"{md_path}: missing the {BEGIN} / {END} markers")
    head, rest = md.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(md_path, "w") as f:
        f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def plot(rows, svg_path):
    matplotlib.rcParams["svg.hashsalt"] = "qsl"  # stable ids: the committed SVG diffs cleanly
    fig, ax = plt.subplots(figsize=(8, 5))
    base = rows[0]["ppl"]
    # Rows at the same bits per weight (every W4A8 g128 method) are spread sideways, in table
    # order, and labelled in place.
    same = {}
    for r in rows:
        same.setdefault(round(r["bits"], 3), []).append(r)
    for group in same.values():
        for i, r in enumerate(group):
            x = r["bits"] + 0.6 * (i - (len(group) - 1) / 2)
            marker = "*" if r["label"] == "fp32" else ("s" if r["label"].startswith("W8") else "o")
            (line,) = ax.plot(x, r["ppl"], marker, markersize=8)
            ax.plot(x, r["ppl_kv_int8"], marker, markersize=13, mfc="none", color=line.get_color())
            label = r["label"].replace("W4A8 g128 ", "").replace("W8A8 ", "")
            label = label.replace(" + SmoothQuant", "\n+ SQ").replace("SmoothQuant", "SQ")
            above = i % 2 == 0  # neighbours alternate above and below
            ax.annotate(label, (x, r["ppl"]), textcoords="offset points",
                        xytext=(0, 10 if above else -12), va="bottom" if above else "top",
                        ha="center", fontsize=7)
    for pct, style in ((1, ":"), (5, "--")):
        ax.axhline(base * (1 + pct / 100), color="grey", lw=0.8, ls=style)
        ax.text(17.2, base * (1 + pct / 100), f"fp32 +{pct}%", va="bottom", ha="right",
                fontsize=8, color="grey")
    ax.set_xlim(2.8, 17.4)
    ax.set_xticks([4, 5, 8, 16])
    ax.set_xlabel("bits per linear weight (scales and zeros included; lm_head W8)")
    ax.set_ylabel("data/dev.txt perplexity")
    ax.set_title("qsl-tiny-llama: perplexity against bits per weight\n"
                 "(filled: fp32 KV rows, ring: int8 paged KV; W4A8 g128 rows spread sideways)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(svg_path, metadata={"Date": None})


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rows = read_rows(sys.argv[1])
    splice(sys.argv[2], table(rows))
    plot(rows, sys.argv[3])


if __name__ == "__main__":
    main()
