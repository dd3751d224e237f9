"""A study's figures (PNG, in ``<workdir>/figures``), like the study's: cascading-randomization
curves with each method's pass line; repeatability / reproducibility box plots with the
segmentation baseline; utility (AUPRC) distributions with the average-mask and segmentation
baselines; a grid of example maps over the image with the lesion outline, across methods and
randomization levels.
"""
from __future__ import annotations

import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from saljax import files  # noqa: E402

RESERVED = ("study", "baselines", "known_truth")


def save(fig, path: str, **layout) -> None:
    """Lay ``fig`` out (``tight_layout(**layout)``), write it atomically as a 110 dpi PNG and
    close it."""
    fig.tight_layout(**layout)
    files.save_figure(fig, path, dpi=110)
    plt.close(fig)


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def methods_of(summary) -> list:
    """The methods a summary has entries for, in its order."""
    if "methods" in summary["study"]:
        return list(summary["study"]["methods"])
    return [k for k in summary if k not in RESERVED]


def cascading_figure(summary, path):
    methods = methods_of(summary)
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
    save(fig, path)


# the baselines' rows in utility.csv / agreement.csv ("method" column): the average mask, and
# the localization network (a U-Net segments, a RetinaNet detects)
BASELINE_ROWS = ("average_mask", "segmentation", "detection")
NAMES = {"unet": "U-Net", "retinanet": "RetinaNet"}


def _baseline_label(rows) -> str:
    """The localization baseline's name from its rows' ``model`` (``unet_0``, ...)."""
    model = next(r.get("model", r.get("model_a", "")) for r in rows
                 if r["method"] in ("segmentation", "detection"))
    return f"{NAMES.get(model.rsplit('_', 1)[0], model)}\n(baseline)"


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
            labels.append(_baseline_label(rows))
        if any(len(d) for d in data):
            ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
            ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=60, fontsize=7)
        ax.set_title(crit)
        ax.set_ylabel("SSIM between models' maps")
    save(fig, path)


def utility_figure(rows, path):
    methods = [m for m in dict.fromkeys(r["method"] for r in rows)
               if m not in BASELINE_ROWS]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    data, labels, colors = [], [], []
    for m in methods:
        for state, c in (("trained", "tab:blue"), ("randomized", "tab:gray")):
            data.append([float(r["auprc"]) for r in rows if r["method"] == m and
                         r["state"] == state and r["auprc"] not in ("nan", "")])
            labels.append(f"{m}\n{state}")
            colors.append(c)
    for m in BASELINE_ROWS:
        vals = [float(r["auprc"]) for r in rows if r["method"] == m]
        if vals:
            data.append(vals)
            labels.append("average mask\n(baseline)" if m == "average_mask"
                          else _baseline_label(rows))
            colors.append("tab:orange")
    parts = ax.boxplot([d if d else [np.nan] for d in data], showfliers=False,
                       patch_artist=True)
    for patch, c in zip(parts["boxes"], colors):
        patch.set_facecolor(c)
        patch.set_alpha(0.5)
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=70, fontsize=6)
    ax.set_ylabel("AUPRC against the lesion")
    ax.set_title("Localization utility per image")
    save(fig, path)


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


def examples_figure(path_npz, path):
    """One study image's maps, a row per method, a column per cascading level named as the
    tables name it (the deepest block re-drawn; older examples.npz files without level names:
    the setting's name)."""
    with np.load(path_npz, allow_pickle=False) as f:
        image, mask, maps = f["image"], f["mask"], f["maps"]
        methods = list(f["methods"])
        columns = list(f["levels"] if "levels" in f else f["settings"])
    height = 1.3 * len(methods) + 0.4          # 0.4 in at the top for the title
    fig, axes = plt.subplots(len(methods), len(columns), figsize=(1.3 * len(columns), height),
                             squeeze=False)
    for i, m in enumerate(methods):
        for j, s in enumerate(columns):
            ax = axes[i, j]
            ax.imshow(image, cmap="gray")
            ax.imshow(maps[i, j], cmap="inferno", alpha=0.55, vmin=0, vmax=1)
            if mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(s, fontsize=6)
            if j == 0:
                ax.set_ylabel(m, fontsize=6)
    fig.suptitle("Cascading randomization: each column re-draws the blocks from the logits "
                 "down to the one named", fontsize=7)
    save(fig, path, pad=0.2, rect=(0, 0, 1, 1 - 0.4 / height))
