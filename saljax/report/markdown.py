"""``report.md``: the summary table, then one section per criterion with its figure."""
from __future__ import annotations

import numpy as np

from saljax.report.figures import methods_of


def fmt(x, digits=3):
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
    models = ", ".join(f"{m['id']} ({fmt(m.get('val_auc'))})" for m in s["models"])
    utility = ("Utility skipped" if s.get("utility_skipped")
               else f"Utility on {s['images_utility']} test positives")
    lines = [f"# Saliency trustworthiness study: {s['dataset']} at {s['size']} px", "",
             f"Models (validation AUC): {models}. {utility}; randomization and agreement on "
             f"{s['images_eval']}. Verdict rule: {s['verdict_rule']}.", "",
             "## Summary", "",
             "| method | AUPRC trained | AUPRC randomized | final cascading SSIM | pass line | "
             "below the line from | verdict | repeatability SSIM | reproducibility SSIM |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        e = summary[m]
        u, r = e["utility"].get("auprc_mean", {}), e["randomization"]
        lines.append(f"| {m} | {fmt(u.get('trained'))} | {fmt(u.get('randomized'))} | "
                     f"{fmt(r['cascading_ssim_mean'][-1])} | {fmt(r['pass_line'])} | "
                     f"{_first_below(r)} | {r['verdict']} | "
                     f"{fmt(e['repeatability']['ssim_mean'])} | "
                     f"{fmt(e['reproducibility']['ssim_mean'])} |")
    b = summary["baselines"]
    if not b["utility"]:
        return lines + ["", f"Localization utility was skipped: {s['utility_skipped']}."]
    lines += ["", "Baselines: average-mask AUPRC "
              f"{fmt(b['utility']['average_mask']['auprc']['mean'])}"]
    name = b.get("localization_model", "U-Net")
    segs = [k for k in b["utility"] if k != "average_mask"]
    if segs:
        lines[-1] += (f"; {name} (localization baseline) AUPRC "
                      f"{fmt(np.mean([b['utility'][k]['auprc']['mean'] for k in segs]))}")
    repeat = b.get("localization_repeatability") or b.get("segmentation_repeatability")
    if repeat:
        lines[-1] += f"; {name} replicate SSIM {fmt(repeat['mean'])}"
    lines[-1] += "."
    return lines


def _utility_section(summary, methods) -> list[str]:
    if summary["study"].get("utility_skipped"):
        return ["", "## Localization utility", "",
                f"Skipped: {summary['study']['utility_skipped']}."]
    lines = ["", "## Localization utility", "", "![utility](figures/utility.png)", "",
             "| method | AUPRC trained (95% CI) | average precision | pointing game | "
             "mass accuracy | Wilcoxon p vs average mask |", "|---|---|---|---|---|---|"]
    for m in methods:
        u = summary[m]["utility"]
        a = u["auprc"]["trained"]
        lines.append(f"| {m} | {fmt(a['mean'])} ({fmt(a['ci_low'])}-{fmt(a['ci_high'])}) | "
                     f"{fmt(u['average_precision_mean']['trained'])} | "
                     f"{fmt(u['pointing_game_mean']['trained'])} | "
                     f"{fmt(u['mass_accuracy_mean']['trained'])} | "
                     f"{fmt(u['wilcoxon_vs_average_mask']['p'], 4)} |")
    return lines


def _randomization_section(summary, methods) -> list[str]:
    first = summary[methods[0]]["randomization"]
    lines = ["", "## Sensitivity to weight randomization", "",
             "![cascading](figures/cascading.png)", "",
             "| method | " + " | ".join(first["level_blocks"]) + " |",
             "|---|" + "---|" * len(first["levels"])]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(
            fmt(v) for v in summary[m]["randomization"]["cascading_ssim_mean"]) + " |")
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
                         f"{fmt(c['mean'])} ({fmt(c['ci_low'])}-{fmt(c['ci_high'])})")
        lines.append(f"| {m} | {cells[0]} | {cells[1]} |")
    return lines


def _label_section(summary, methods) -> list[str]:
    """The MIDL comparison, when the study trained models on permuted labels."""
    if "label_randomization" not in summary[methods[0]]:
        return []
    lines = ["", "## Label randomization (MIDL 2020)", "",
             "SSIM between the maps of models trained on permuted labels and of the true-label "
             "models, on the same images; a method passes when it is below the random-pair "
             "pass line.", "",
             "| method | SSIM to the true-label maps (95% CI) | pass line | verdict |",
             "|---|---|---|---|"]
    for m in methods:
        e = summary[m]["label_randomization"]
        c = e["ssim"]
        lines.append(f"| {m} | {fmt(c['mean'])} ({fmt(c['ci_low'])}-{fmt(c['ci_high'])}) | "
                     f"{fmt(e['pass_line'])} | {e['verdict']} |")
    return lines


def _known_truth_section(summary) -> list[str]:
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
                f, p = d["flip_fraction"], d["prob_drop"]
                lines.append(f"| {model} | {e['arm']} | {region} | {how} | {fmt(f['mean'])} | "
                             f"{fmt(p['mean'])} ({fmt(p['ci_low'])}-{fmt(p['ci_high'])}) |")
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
        a = r["area"]
        lines.append(f"| {m} | {fmt(a['mean'])} ({fmt(a['ci_low'])}-{fmt(a['ci_high'])}) | "
                     f"{fmt(r['morf_prob'][-1])} | {fmt(r['lerf_prob'][-1])} |")
    return lines


def markdown(summary) -> str:
    """``report.md``: the summary table, then one section per criterion with its figure."""
    methods = methods_of(summary)
    lines = (_summary_section(summary, methods) + _utility_section(summary, methods)
             + _randomization_section(summary, methods) + _agreement_section(summary, methods)
             + _label_section(summary, methods) + _known_truth_section(summary)
             + ["", "## Example maps", "", "![examples](figures/examples.png)", ""])
    return "\n".join(lines)
