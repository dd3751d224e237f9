"""Known truth's part of ``report.md`` and its figures (the shortcut bars and ROAD curves),
from its ``summary.json`` entry alone."""
from __future__ import annotations

import numpy as np

from saljax.study.criteria.render import ci, fmt, plt, save


def section(summary) -> list[str]:
    """Reliance, the shortcut arm and ROAD, when the study measured them (synthetic data)."""
    kt = summary.get("known_truth")
    if not kt:
        return []
    lines = ["", "## Known truth", "",
             f"On {kt['images']} synthetic test positives, where the lesion and the marker are "
             "known to the pixel.", "", "### What the models use (reliance)", "",
             "The lesion or the marker removed by in-distribution infill: the share of "
             "predictions that flip and the mean drop of the explained class's probability "
             "(95% CI).", "",
             "| model | arm | region | infill | flipped | probability drop |",
             "|---|---|---|---|---|---|"]
    for model, e in kt["reliance"].items():
        for region in ("lesion", "marker"):
            for how, d in e.get(region, {}).items():
                lines.append(f"| {model} | {e['arm']} | {region} | {how} | "
                             f"{fmt(d['flip_fraction']['mean'])} | {ci(d['prob_drop'])} |")
    suff = {model: e for model, e in kt["reliance"].items() if "marker_sufficiency" in e}
    if suff:
        lines += ["", "Sufficiency: the marker pasted into test negatives without one (from a "
                  "study image that carries it, at its place): the share turned positive. "
                  "Conflict set: those images (marker without lesion) and the study's positives "
                  "without a marker (lesion without marker): the share of predictions that "
                  "follow the marker (95% CI). Removal alone misses a model that uses the "
                  "marker or the lesion.", "",
                  "| model | arm | negatives | already positive | turned positive (of the "
                  "rest) | follows the marker (conflict set) |", "|---|---|---|---|---|---|"]
        for model, e in suff.items():
            s = e["marker_sufficiency"]
            lines.append(f"| {model} | {e['arm']} | {s['negatives']} | "
                         f"{fmt(s['negatives_positive_before'])} | {ci(s['turned_positive'])} | "
                         f"{ci(s['conflict_follows_marker'])} |")
    s = kt["shortcut"]
    arms = list(s["marker_baseline_auprc"])
    lines += ["", "### Do the maps show it? Lesion and marker AUPRC", "",
              "![shortcut](figures/shortcut.png)", "",
              "Average marker mask AUPRC: " + ", ".join(
                  f"{a} {fmt(s['marker_baseline_auprc'][a])}" for a in arms) + ". A map reveals "
              "the marker when its marker AUPRC is above its lesion AUPRC and the baseline.", "",
              "| method | " + " | ".join(f"{a}: lesion | {a}: marker | {a}: reveals marker"
                                        for a in arms) + " |",
              "|---|" + "---|---|---|" * len(arms)]
    for m in [k for k in s if k != "marker_baseline_auprc"]:
        lines.append(f"| {m} | " + " | ".join(
            f"{fmt(s[m][a]['lesion_auprc'])} | {fmt(s[m][a]['marker_auprc'])} | "
            f"{'yes' if s[m][a]['reveals_marker'] else 'no'}" for a in arms) + " |")
    lines += ["", "### Faithfulness (ROAD)", "",
              f"On the first {kt.get('road_images', kt['images'])} of those images: the "
              "explained class's probability as the most (MoRF) or least (LeRF) relevant pixels "
              "of each map are removed by noisy linear imputation.", "",
              "![road](figures/road.png)", "",
              "| map | area between LeRF and MoRF (95% CI) | MoRF at the last fraction | "
              "LeRF at the last fraction |", "|---|---|---|---|"]
    for m, r in kt["road"].items():
        lines.append(f"| {m} | {ci(r['area'])} | {fmt(r['morf_prob'][-1])} | "
                     f"{fmt(r['lerf_prob'][-1])} |")
    return lines


def figures(summary, figure) -> None:
    if summary.get("known_truth"):
        shortcut_figure(summary["known_truth"], figure("shortcut"))
        road_figure(summary["known_truth"], figure("road"))


def shortcut_figure(known_truth, path):
    """Each method's AUPRC against the lesion and against the marker, per arm (normal and
    shortcut models), with the average marker mask's AUPRC."""
    s = known_truth["shortcut"]
    methods = [m for m in s if m != "marker_baseline_auprc"]
    arms = list(s["marker_baseline_auprc"])
    fig, axes = plt.subplots(1, len(arms), figsize=(6 * len(arms), 3.6), squeeze=False)
    for ax, arm in zip(axes[0], arms):
        x = np.arange(len(methods))
        for k, target in enumerate(("lesion", "marker")):
            ax.bar(x + (k - 0.5) * 0.38, [s[m][arm][f"{target}_auprc"] for m in methods], 0.38,
                   label=f"AUPRC vs {target}")
        ax.axhline(s["marker_baseline_auprc"][arm], color="tab:orange", ls="--",
                   label="average marker mask")
        ax.set_xticks(x, methods, rotation=60, fontsize=7)
        ax.set_title(f"{arm} arm", fontsize=9)
        ax.legend(fontsize=7)
    save(fig, path)


def road_figure(known_truth, path):
    """ROAD: the explained class's probability as the most (MoRF, solid) or least (LeRF,
    dashed) relevant pixels are removed, per method, with the random and occlusion maps."""
    road = known_truth["road"]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for k, (method, r) in enumerate(road.items()):
        color = "black" if method == "random" else plt.cm.tab10(k % 10)
        ax.plot(r["fractions"], r["morf_prob"], color=color, marker="o", ms=3,
                label=f"{method} ({r['area']['mean']:.2f})")
        ax.plot(r["fractions"], r["lerf_prob"], color=color, ls="--", marker="s", ms=3)
    ax.set_xlabel("fraction of pixels removed (noisy linear imputation)")
    ax.set_ylabel("probability of the explained class")
    ax.set_title("ROAD: MoRF (solid) and LeRF (dashed); legend: area between the curves",
                 fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    save(fig, path)
