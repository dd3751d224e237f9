"""Several studies side by side (``saljax report --compare runs/rsna runs/siim``): the paper's
figures with one panel per study, and a table of every method against all four criteria.

Criteria, each cell pass/fail with its numbers: **utility**, the trained maps' mean AUPRC above
the average mask's; **randomization**, the study's verdict (some cascading level's mean SSIM
below the pass line); **repeatability** and **reproducibility**, the mean SSIM at least the
localization model's replicate SSIM (the baseline).
"""
from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from saljax import files  # noqa: E402
from saljax.study.criteria.render import fmt, methods_of, read_csv, save  # noqa: E402
from saljax.study.workdir import Workdir  # noqa: E402


def _load(workdir: str) -> dict:
    where = Workdir(workdir)
    path = where.summary
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir}: no summary.json (run the study first)")
    with open(path) as f:
        summary = json.load(f)
    run = os.path.basename(os.path.normpath(workdir))
    return {"workdir": workdir, "summary": summary,
            "utility": read_csv(where.file("utility.csv")),
            "name": f"{summary['study']['dataset']} ({run})"}


def _baseline_ssim(summary):
    b = (summary["baselines"].get("localization_repeatability")
         or summary["baselines"].get("segmentation_repeatability"))   # before the RetinaNet
    return None if not b else b["mean"]


def criteria(summary) -> dict:
    """``{method: {criterion: (verdict, text)}}`` for the four criteria (module docstring)."""
    skipped = summary["study"].get("utility_skipped")
    base_auprc = (None if skipped else
                  summary["baselines"]["utility"]["average_mask"]["auprc"]["mean"])
    base_ssim = _baseline_ssim(summary)
    out = {}
    for m in methods_of(summary):
        e = summary[m]
        r = e["randomization"]
        lowest = min(r["cascading_ssim_mean"][1:]) if len(r["cascading_ssim_mean"]) > 1 else None
        if skipped:
            cells = {"utility": ("n/a", "skipped")}
        else:
            a = e["utility"]["auprc_mean"]["trained"]
            cells = {"utility": ("pass" if a > base_auprc else "fail",
                                 f"{fmt(a)} vs {fmt(base_auprc)}")}
        cells["randomization"] = (r["verdict"], f"{fmt(lowest)} vs {fmt(r['pass_line'])}")
        for crit in ("repeatability", "reproducibility"):
            v = e[crit]["ssim_mean"]
            if v is None or base_ssim is None:
                cells[crit] = ("n/a", fmt(v))
            else:
                cells[crit] = ("pass" if v >= base_ssim else "fail",
                               f"{fmt(v)} vs {fmt(base_ssim)}")
        out[m] = cells
    return out


def table(studies) -> str:
    """Markdown: one row per study and method, one column per criterion."""
    crits = ("utility", "randomization", "repeatability", "reproducibility")
    lines = ["| study | method | " + " | ".join(crits) + " |", "|---|---|" + "---|" * len(crits)]
    for s in studies:
        for m, cells in criteria(s["summary"]).items():
            lines.append(f"| {s['name']} | {m} | "
                         + " | ".join(f"{cells[c][0]} ({cells[c][1]})" for c in crits) + " |")
    return "\n".join(lines)


def _panels(n):
    fig, axes = plt.subplots(1, n, figsize=(6.5 * n, 4.2), squeeze=False)
    return fig, axes[0]


def utility_figure(studies, path):
    """Per study: each method's per-image AUPRC of the trained maps, with the average-mask and
    localization-model lines."""
    fig, axes = _panels(len(studies))
    for ax, s in zip(axes, studies):
        methods = methods_of(s["summary"])
        if s["summary"]["study"].get("utility_skipped"):
            ax.text(0.5, 0.5, "utility skipped:\nno lesion masks", ha="center", va="center")
            ax.set_title(s["name"], fontsize=9)
            continue
        data = [[float(r["auprc"]) for r in s["utility"] if r["method"] == m
                 and r["state"] == "trained" and r["auprc"] not in ("nan", "")] for m in methods]
        ax.boxplot([d if d else [np.nan] for d in data], showfliers=False)
        ax.set_xticks(np.arange(1, len(methods) + 1), methods, rotation=60, fontsize=7)
        base = s["summary"]["baselines"]["utility"]
        ax.axhline(base["average_mask"]["auprc"]["mean"], color="tab:orange", ls="--",
                   label="average mask")
        segs = [v["auprc"]["mean"] for k, v in base.items() if k != "average_mask"]
        if segs:
            ax.axhline(float(np.mean(segs)), color="tab:green", ls="-.",
                       label="localization model")
        ax.set_title(s["name"], fontsize=9)
        ax.set_ylabel("AUPRC against the lesion")
        ax.legend(fontsize=7)
    save(fig, path)


def cascading_figure(studies, path):
    """Per study: every method's cascading curve (SSIM to the trained map) and its pass line."""
    fig, axes = _panels(len(studies))
    for ax, s in zip(axes, studies):
        summary = s["summary"]
        for k, m in enumerate(methods_of(summary)):
            r = summary[m]["randomization"]
            color = plt.cm.tab10(k % 10)
            ax.plot(np.arange(len(r["levels"])), r["cascading_ssim_mean"], marker="o", ms=3,
                    color=color, label=m)
            ax.axhline(r["pass_line"], color=color, ls=":", lw=1)
        r = summary[methods_of(summary)[0]]["randomization"]
        ax.set_xticks(np.arange(len(r["levels"])), r["level_blocks"], rotation=70, fontsize=7)
        ax.set_ylim(-0.2, 1.05)
        ax.set_title(f"{s['name']}: cascading randomization (dotted: pass lines)", fontsize=9)
        ax.set_ylabel("SSIM to the trained model's map")
        ax.legend(fontsize=6, ncol=2)
    save(fig, path)


def agreement_figure(studies, path):
    """Per study: repeatability and reproducibility SSIM per method, with the localization
    model's replicate SSIM (the baseline) and the 0.5 reference line."""
    fig, axes = _panels(len(studies))
    for ax, s in zip(axes, studies):
        summary = s["summary"]
        methods = methods_of(summary)
        x = np.arange(len(methods))
        for k, crit in enumerate(("repeatability", "reproducibility")):
            v = [summary[m][crit]["ssim_mean"] for m in methods]
            ax.bar(x + (k - 0.5) * 0.38, [np.nan if a is None else a for a in v], 0.38,
                   label=crit)
        base = _baseline_ssim(summary)
        if base is not None:
            ax.axhline(base, color="tab:green", ls="-.", label="localization model")
        ax.axhline(0.5, color="gray", ls="--", lw=1, label="0.5")
        ax.set_xticks(x, methods, rotation=60, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(s["name"], fontsize=9)
        ax.set_ylabel("SSIM between models' maps")
        ax.legend(fontsize=7)
    save(fig, path)


def compare(workdirs, out: str) -> str:
    """Write ``compare.md`` and ``figures/compare_{utility,cascading,agreement}.png`` into
    ``out``; returns the markdown's path."""
    studies = [_load(w) for w in workdirs]
    figs = os.path.join(out, "figures")
    os.makedirs(figs, exist_ok=True)
    utility_figure(studies, os.path.join(figs, "compare_utility.png"))
    cascading_figure(studies, os.path.join(figs, "compare_cascading.png"))
    agreement_figure(studies, os.path.join(figs, "compare_agreement.png"))
    text = "\n".join([
        "# Saliency trustworthiness: " + " vs ".join(s["name"] for s in studies), "",
        "Every method against the four criteria (pass/fail, the method's number vs the line it "
        "must cross): utility, the trained maps' mean AUPRC above the average mask's; "
        "randomization, some cascading level's mean SSIM below the random-pair pass line; "
        "repeatability and reproducibility, the mean SSIM at least the localization model's "
        "replicate SSIM.", "", table(studies), "",
        "![utility](figures/compare_utility.png)", "",
        "![cascading](figures/compare_cascading.png)", "",
        "![agreement](figures/compare_agreement.png)", ""])
    path = os.path.join(out, "compare.md")
    files.write_text(path, text)
    return path
