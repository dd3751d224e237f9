"""``report.md`` and its figures, from a study's result files alone (``summary.json``, the
per-image CSVs and ``examples.npz``): never from study internals, so any finished workdir, copied
anywhere, can be re-reported with ``saljax report --workdir DIR``.

Figures (PNG, in ``<workdir>/figures``), like the study's: cascading-randomization curves with
each method's pass line; repeatability / reproducibility box plots with the segmentation
baseline; utility (AUPRC) distributions with the average-mask and segmentation baselines; a grid
of example maps over the image with the lesion outline, across methods and randomization levels.
"""
from __future__ import annotations

import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from saljax import files  # noqa: E402

RESERVED = ("study", "baselines")


def _read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _methods(summary):
    return [k for k in summary if k not in RESERVED]


def cascading_figure(summary, path):
    methods = _methods(summary)
    cols = min(4, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False,
                             sharey=True)
    for ax, m in zip(axes.flat, methods):
        r = summary[m]["randomization"]
        x = np.arange(len(r["cascading_ssim_mean"]))
        ax.errorbar(x, r["cascading_ssim_mean"], yerr=r["cascading_ssim_sd_across_models"],
                    marker="o", ms=3, label="SSIM")
        ax.plot(x, r["cascading_spearman_abs_mean"], marker="s", ms=3, alpha=0.7,
                label="Spearman |.|")
        ax.axhline(r["pass_line"], color="red", ls="--", lw=1, label="pass line")
        ax.set_xticks(x, r["level_blocks"], rotation=70, fontsize=6)
        ax.set_title(f"{m} ({r['verdict']})", fontsize=8)
        ax.set_ylim(-0.2, 1.05)
    for ax in axes.flat[len(methods):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("Cascading randomization: similarity to the trained model's map")
    fig.tight_layout()
    files.save_figure(fig, path, dpi=110)
    plt.close(fig)


def agreement_figure(rows, path):
    methods = sorted({r["method"] for r in rows if r["criterion"] != "baseline"},
                     key=[r["method"] for r in rows].index)
    base = [float(r["ssim"]) for r in rows if r["criterion"] == "baseline"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, crit in zip(axes, ("repeatability", "reproducibility")):
        data = [[float(r["ssim"]) for r in rows if r["criterion"] == crit and r["method"] == m]
                for m in methods]
        labels = list(methods)
        if base:
            data.append(base)
            labels.append("segmentation\n(baseline)")
        if any(len(d) for d in data):
            ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
            ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=60, fontsize=7)
        ax.set_title(crit)
        ax.set_ylabel("SSIM between models' maps")
    fig.tight_layout()
    files.save_figure(fig, path, dpi=110)
    plt.close(fig)


def utility_figure(rows, path):
    methods = [m for m in dict.fromkeys(r["method"] for r in rows)
               if m not in ("average_mask", "segmentation")]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    data, labels, colors = [], [], []
    for m in methods:
        for state, c in (("trained", "tab:blue"), ("randomized", "tab:gray")):
            data.append([float(r["auprc"]) for r in rows if r["method"] == m and
                         r["state"] == state and r["auprc"] not in ("nan", "")])
            labels.append(f"{m}\n{state}")
            colors.append(c)
    for m in ("average_mask", "segmentation"):
        vals = [float(r["auprc"]) for r in rows if r["method"] == m]
        if vals:
            data.append(vals)
            labels.append(m.replace("_", " ") + "\n(baseline)")
            colors.append("tab:orange")
    parts = ax.boxplot([d if d else [np.nan] for d in data], showfliers=False,
                       patch_artist=True)
    for patch, c in zip(parts["boxes"], colors):
        patch.set_facecolor(c)
        patch.set_alpha(0.5)
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=70, fontsize=6)
    ax.set_ylabel("AUPRC against the lesion")
    ax.set_title("Localization utility per image")
    fig.tight_layout()
    files.save_figure(fig, path, dpi=110)
    plt.close(fig)


def examples_figure(path_npz, path):
    with np.load(path_npz, allow_pickle=False) as f:
        image, mask, maps = f["image"], f["mask"], f["maps"]
        methods, settings = list(f["methods"]), list(f["settings"])
    fig, axes = plt.subplots(len(methods), len(settings),
                             figsize=(1.3 * len(settings), 1.3 * len(methods)), squeeze=False)
    for i, m in enumerate(methods):
        for j, s in enumerate(settings):
            ax = axes[i, j]
            ax.imshow(image, cmap="gray")
            ax.imshow(maps[i, j], cmap="inferno", alpha=0.55, vmin=0, vmax=1)
            ax.contour(mask.astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(s.replace("cascading_", "casc "), fontsize=6)
            if j == 0:
                ax.set_ylabel(m, fontsize=6)
    fig.tight_layout(pad=0.2)
    files.save_figure(fig, path, dpi=110)
    plt.close(fig)


def _fmt(x, digits=3):
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else \
        f"{x:.{digits}f}"


def _first_below(r) -> str:
    """The first randomized block whose mean SSIM is below the pass line, or a dash."""
    lvl = r.get("first_level_below_pass_line")
    if lvl is None:
        return "-"
    return r["level_blocks"][r["levels"].index(lvl)]


def _summary_section(summary, methods) -> list[str]:
    s = summary["study"]
    lines = [f"# Saliency trustworthiness study: {s['dataset']} at {s['size']} px", "",
             f"Models: {', '.join(m['id'] for m in s['models'])}. Utility on "
             f"{s['images_utility']} test positives; randomization and agreement on "
             f"{s['images_eval']}. Verdict rule: {s['verdict_rule']}.", "",
             "## Summary", "",
             "| method | AUPRC trained | AUPRC randomized | final cascading SSIM | pass line | "
             "below the line from | verdict | repeatability SSIM | reproducibility SSIM |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        e = summary[m]
        u, r = e["utility"], e["randomization"]
        lines.append(f"| {m} | {_fmt(u['auprc_mean']['trained'])} | "
                     f"{_fmt(u['auprc_mean']['randomized'])} | "
                     f"{_fmt(r['cascading_ssim_mean'][-1])} | {_fmt(r['pass_line'])} | "
                     f"{_first_below(r)} | {r['verdict']} | "
                     f"{_fmt(e['repeatability']['ssim_mean'])} | "
                     f"{_fmt(e['reproducibility']['ssim_mean'])} |")
    b = summary["baselines"]
    lines += ["", "Baselines: average-mask AUPRC "
              f"{_fmt(b['utility']['average_mask']['auprc']['mean'])}"]
    segs = [k for k in b["utility"] if k.startswith("unet")]
    if segs:
        lines[-1] += (f"; segmentation U-Net AUPRC "
                      f"{_fmt(np.mean([b['utility'][k]['auprc']['mean'] for k in segs]))}")
    if b.get("segmentation_repeatability"):
        lines[-1] += (f"; U-Net replicate SSIM "
                      f"{_fmt(b['segmentation_repeatability']['mean'])}")
    lines[-1] += "."
    return lines


def _utility_section(summary, methods) -> list[str]:
    lines = ["", "## Localization utility", "", "![utility](figures/utility.png)", "",
             "| method | AUPRC trained (95% CI) | average precision | pointing game | "
             "mass accuracy | Wilcoxon p vs average mask |", "|---|---|---|---|---|---|"]
    for m in methods:
        u = summary[m]["utility"]
        a = u["auprc"]["trained"]
        lines.append(f"| {m} | {_fmt(a['mean'])} ({_fmt(a['ci_low'])}-{_fmt(a['ci_high'])}) | "
                     f"{_fmt(u['average_precision_mean']['trained'])} | "
                     f"{_fmt(u['pointing_game_mean']['trained'])} | "
                     f"{_fmt(u['mass_accuracy_mean']['trained'])} | "
                     f"{_fmt(u['wilcoxon_vs_average_mask']['p'], 4)} |")
    return lines


def _randomization_section(summary, methods) -> list[str]:
    first = summary[methods[0]]["randomization"]
    lines = ["", "## Sensitivity to weight randomization", "",
             "![cascading](figures/cascading.png)", "",
             "| method | " + " | ".join(first["level_blocks"]) + " |",
             "|---|" + "---|" * len(first["levels"])]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(
            _fmt(v) for v in summary[m]["randomization"]["cascading_ssim_mean"]) + " |")
    return lines


def _agreement_section(summary, methods) -> list[str]:
    lines = ["", "## Repeatability and reproducibility", "",
             "![agreement](figures/agreement.png)", "",
             "| method | repeatability SSIM (95% CI) | reproducibility SSIM (95% CI) |",
             "|---|---|---|"]
    for m in methods:
        cells = []
        for crit in ("repeatability", "reproducibility"):
            c = summary[m][crit].get("ssim")
            cells.append("n/a" if not c else
                         f"{_fmt(c['mean'])} ({_fmt(c['ci_low'])}-{_fmt(c['ci_high'])})")
        lines.append(f"| {m} | {cells[0]} | {cells[1]} |")
    return lines


def markdown(summary) -> str:
    """``report.md``: the summary table, then one section per criterion with its figure."""
    methods = _methods(summary)
    lines = (_summary_section(summary, methods) + _utility_section(summary, methods)
             + _randomization_section(summary, methods) + _agreement_section(summary, methods)
             + ["", "## Example maps", "", "![examples](figures/examples.png)", ""])
    return "\n".join(lines)


def write(workdir: str) -> str:
    """Write ``figures/*.png`` and ``report.md`` into ``workdir``; returns the report's path."""
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    figs = os.path.join(workdir, "figures")
    os.makedirs(figs, exist_ok=True)
    cascading_figure(summary, os.path.join(figs, "cascading.png"))
    agreement_figure(_read_csv(os.path.join(workdir, "agreement.csv")),
                     os.path.join(figs, "agreement.png"))
    utility_figure(_read_csv(os.path.join(workdir, "utility.csv")),
                   os.path.join(figs, "utility.png"))
    if os.path.exists(os.path.join(workdir, "examples.npz")):
        examples_figure(os.path.join(workdir, "examples.npz"), os.path.join(figs, "examples.png"))
    path = os.path.join(workdir, "report.md")
    files.write_text(path, markdown(summary))
    return path
