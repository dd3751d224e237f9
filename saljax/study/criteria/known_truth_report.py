"""Known truth's part of ``report.md`` and its figures (the maps' region scores per arm, the
dose-response and the ROAD curves), from its ``summary.json`` entry alone."""
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
    lines += _arms(kt) + _maps(kt) + _dose(kt)
    lines += ["", "### Faithfulness (ROAD)", "",
              f"On the first {kt.get('road_images', kt['images'])} of those images: the "
              "explained class's probability as the most (MoRF) or least (LeRF) relevant pixels "
              "of each map are removed by noisy linear imputation (ties in a random order; "
              f"worst relative residual of the imputation's solve: "
              f"{kt.get('infill_residual', float('nan')):.1e}).", "",
              "![road](figures/road.png)", "",
              "| map | area between LeRF and MoRF (95% CI) | MoRF at the last fraction | "
              "LeRF at the last fraction |", "|---|---|---|---|"]
    for m, r in kt["road"].items():
        lines.append(f"| {m} | {ci(r['area'])} | {fmt(r['morf_prob'][-1])} | "
                     f"{fmt(r['lerf_prob'][-1])} |")
    return lines


def _maybe(c) -> str:
    return ci(c) if c else "n/a"


def _arms(kt) -> list[str]:
    """Is each arm what it was trained to be? Its reliance over its models, and in words."""
    arms = kt.get("arms", {})
    if not arms:
        return []
    lines = ["", "### What each arm uses", "",
             "Over each arm's models (95% CI over models and images). An arm is a shortcut "
             "model when the marker added to negatives turns at least 80% positive and the "
             "models follow the marker on at least 80% of the conflict set; it uses the lesion "
             "when removing the lesion flips at least half of the predictions.", "",
             "| arm | marker strength in training | lesion removed: flipped | marker removed: "
             "flipped | marker added: turned positive | conflict set: follows the marker | "
             "shortcut model | uses |", "|---|---|---|---|---|---|---|---|"]
    for arm, e in arms.items():
        strength = "independent" if e["strength"] is None else fmt(e["strength"], 2)
        lines.append(f"| {arm} | {strength} | {_maybe(e.get('lesion_flip'))} | "
                     f"{_maybe(e.get('marker_flip'))} | {_maybe(e.get('turned_positive'))} | "
                     f"{_maybe(e.get('conflict_follows_marker'))} | "
                     f"{'yes' if e['shortcut_model'] else 'no'} | {e['uses']} |")
    for arm, e in arms.items():
        if e["strength"] is not None and not e["shortcut_model"]:
            lines += ["", f"**The {arm} arm did not become a shortcut model** (turned positive "
                      f"{_maybe(e.get('turned_positive'))}, follows the marker "
                      f"{_maybe(e.get('conflict_follows_marker'))}): whether its maps show the "
                      "marker says nothing about maps of a model that uses one."]
    return lines


def _maps(kt) -> list[str]:
    """Per arm, each method's scores against the lesion and the marker, and whether the map
    reveals what the arm's models use."""
    scores, reveals = kt.get("scores", {}), kt.get("reveals", {})
    if not scores:
        return []
    lines = ["", "### Do the maps show it?", "", "![shortcut](figures/shortcut.png)", "",
             "Each map against the lesion and the marker (images with a marker), 95% CI: AUROC "
             "(chance 0.5 at any region size), the mass ratio (the map's share of mass in the "
             "region over the region's share of the image; chance 1) and the pointing game "
             "(the map's peak inside the region). A map reveals what its model uses when its "
             "AUROC against that region is surely above 0.5 and surely above its AUROC "
             "against the other (paired by image; Holm over the methods). AUPRC over "
             "prevalence and the study's AUPRC per image are in `region_scores.csv`."]
    for arm in kt.get("arms", {}):
        uses = kt["arms"][arm]["uses"]
        lines += ["", f"**{arm} arm** (uses: {uses})", "",
                  "| map | AUROC lesion | AUROC marker | mass ratio lesion | mass ratio marker "
                  "| pointing lesion | pointing marker | reveals what it uses |",
                  "|---|---|---|---|---|---|---|---|"]
        for method, per_arm in scores.items():
            if arm not in per_arm or method == "average_marker_mask":
                continue
            r = per_arm[arm]
            answer = (reveals.get(arm, {}).get(method) or {}).get("reveals")
            lines.append(f"| {method} | {ci(r['lesion']['auroc'])} | {ci(r['marker']['auroc'])} "
                         f"| {ci(r['lesion']['mass_ratio'])} | {ci(r['marker']['mass_ratio'])} "
                         f"| {fmt(r['lesion']['pointing']['mean'])} | "
                         f"{fmt(r['marker']['pointing']['mean'])} | {answer or 'n/a'} |")
        base = scores.get("average_marker_mask", {}).get(arm)
        if base:
            lines.append(f"| average marker mask | | {ci(base['marker']['auroc'])} | | "
                         f"{ci(base['marker']['mass_ratio'])} | | "
                         f"{fmt(base['marker']['pointing']['mean'])} | |")
    return lines


def _dose(kt) -> list[str]:
    rows = kt.get("dose_response") or []
    if not rows:
        return []
    methods = list(rows[0]["maps"])
    lines = ["", "### Dose-response: the marker's strength", "",
             "![dose](figures/dose_response.png)", "",
             "Per shortcut arm: how much its models use the marker, and each map's marker AUROC "
             "(how much it points at the marker).", "",
             "| strength | turned positive | follows the marker | "
             + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for r in rows:
        lines.append(f"| {fmt(r['strength'], 2)} | {_maybe(r['turned_positive'])} | "
                     f"{_maybe(r['conflict_follows_marker'])} | " + " | ".join(
                         fmt(r["maps"][m]["marker_auroc"]["mean"]) for m in methods) + " |")
    return lines


def figures(summary, figure) -> None:
    kt = summary.get("known_truth")
    if kt:
        shortcut_figure(kt, figure("shortcut"))
        road_figure(kt, figure("road"))
        if kt.get("dose_response"):
            dose_figure(kt, figure("dose_response"))


def shortcut_figure(known_truth, path):
    """Each method's AUROC against the lesion and against the marker (95% CI), per arm; the
    dashed line is chance (0.5)."""
    scores = {m: v for m, v in known_truth["scores"].items() if m != "average_marker_mask"}
    methods = list(scores)
    arms = list(known_truth["arms"])
    fig, axes = plt.subplots(1, len(arms), figsize=(6 * len(arms), 3.6), squeeze=False)
    for ax, arm in zip(axes[0], arms):
        x = np.arange(len(methods))
        for k, target in enumerate(("lesion", "marker")):
            rows = [scores[m][arm][target]["auroc"] for m in methods]
            mean = np.array([r["mean"] for r in rows], float)
            err = np.abs(np.array([[r["ci_low"], r["ci_high"]] for r in rows], float).T - mean)
            ax.bar(x + (k - 0.5) * 0.38, mean, 0.38, yerr=err, capsize=2,
                   label=f"AUROC vs {target}")
        ax.axhline(0.5, color="gray", ls="--", label="chance")
        ax.set_xticks(x, methods, rotation=60, fontsize=7)
        ax.set_ylim(0, 1.18)
        ax.set_title(f"{arm} arm (uses: {known_truth['arms'][arm]['uses']})", fontsize=9)
        ax.legend(fontsize=7, ncol=3, loc="upper center")
    save(fig, path)


def dose_figure(known_truth, path):
    """Per method, the map's marker AUROC against how often the models follow the marker, one
    point per shortcut arm (the marker's strength beside it)."""
    rows = known_truth["dose_response"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    follows = [r["conflict_follows_marker"]["mean"] if r["conflict_follows_marker"] else np.nan
               for r in rows]
    for k, method in enumerate(rows[0]["maps"]):
        ax.plot(follows, [r["maps"][method]["marker_auroc"]["mean"] for r in rows],
                marker="o", ms=3, color=plt.cm.tab20(k % 20), label=method)
    for f, r in zip(follows, rows):
        ax.annotate(f"{r['strength']:.2f}", (f, 0.02), fontsize=7, ha="center")
    ax.axhline(0.5, color="gray", ls="--")
    ax.set_xlabel("model follows the marker (conflict set)")
    ax.set_ylabel("map's AUROC against the marker")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6, ncol=2)
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
