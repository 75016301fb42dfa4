#!/usr/bin/python3
"""Draw an `lzn-profile -o json` report as PNGs:

    PREFIX-density.png  per layer, the active fraction per token (mean bar,
                        p10..p90 range, max marker) and the neurons that
                        never fired, % of d_ff;
    PREFIX-union.png    per layer, the union of active neurons over a call of
                        w tokens against w, with the curve independent sets
                        of the same per-token density would give,
                        1 - (1 - p)^w, dotted.

    lzn-profile -m models/tiny-opt -f TEXT --plots DIR   (runs this script)
    /usr/bin/python3 tools/plot/plot_profile.py REPORT.json PREFIX

Needs python3-matplotlib (a tool, never a run-time dependency); exits 3 when
it is missing, which lzn-profile reports.
"""
import json
import sys

EXIT_NO_MATPLOTLIB = 3


def plot_density(plt, report, out):
    layers = report["layers"]
    x = [r["layer"] for r in layers]
    mean = [100 * r["active_fraction_mean"] for r in layers]
    lo = [100 * (r["active_fraction_mean"] - r["active_fraction_p10"]) for r in layers]
    hi = [100 * (r["active_fraction_p90"] - r["active_fraction_mean"]) for r in layers]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.4
    ax.bar([i - width / 2 for i in x], mean, width, yerr=[lo, hi], capsize=4,
           label="active per token, mean (bars: p10..p90)")
    ax.plot([i - width / 2 for i in x], [100 * r["active_fraction_max"] for r in layers],
            linestyle="none", marker="v", color="black", label="active per token, max")
    ax.bar([i + width / 2 for i in x], [100 * r["never_fired_fraction"] for r in layers], width,
           color="tab:gray", label="never fired")
    ax.set_xticks(x)
    ax.set_xlabel("layer")
    ax.set_ylabel("% of MLP neurons (d_ff)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(f"{report['model']}: MLP density per layer ({report['tokens']} tokens)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def plot_union(plt, report, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in report["layers"]:
        pts = sorted((u["window"], u["union_fraction"], u["independent_fraction"]) for u in r["union"])
        w = [p[0] for p in pts]
        line, = ax.plot(w, [100 * p[1] for p in pts], marker="o", label=f"layer {r['layer']}")
        ax.plot(w, [100 * p[2] for p in pts], linestyle=":", color=line.get_color())
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens per call (batch or prefill chunk)")
    ax.set_ylabel("union of active neurons, % of rows")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{report['model']}: measured union (solid) vs independent sets (dotted)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: plot_profile.py REPORT.json PREFIX\n")
        return 2
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("plot_profile.py: matplotlib is missing (Debian: python3-matplotlib)\n")
        return EXIT_NO_MATPLOTLIB
    with open(argv[1], encoding="utf-8") as f:
        report = json.load(f)
    plot_density(plt, report, argv[2] + "-density.png")
    plot_union(plt, report, argv[2] + "-union.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
