#!/usr/bin/python3
"""Draw `lzn-bench union -o json` as a PNG: per layer, the fraction of MLP
neurons a call over w tokens must read (the union of their active sets)
against w, next to the curve independent sets of the same per-token density
would give, 1 - (1 - p)^w.  The gap between the two is what temporal locality
of activations buys a batch or a prefill.

    lzn-bench union --model models/tiny-opt --text FILE -o json > union.json
    /usr/bin/python3 tools/plot/plot_union.py union.json union.png

Needs python3-matplotlib (a tool, never a run-time dependency).
"""
import json
import sys


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: plot_union.py UNION.json OUT.png\n")
        return 2
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(argv[1], encoding="utf-8") as f:
        rows = json.load(f)
    layers = sorted({r["layer"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for layer in layers:
        pts = sorted((r["window"], r["union_pct"], r["independent_pct"])
                     for r in rows if r["layer"] == layer)
        w = [p[0] for p in pts]
        line, = ax.plot(w, [p[1] for p in pts], marker="o",
                        label=f"layer {layer}")
        ax.plot(w, [p[2] for p in pts], linestyle=":", color=line.get_color())
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens per call (batch or prefill chunk)")
    ax.set_ylabel("union of active neurons, % of rows")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.set_title("measured union (solid) vs independent sets (dotted)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
