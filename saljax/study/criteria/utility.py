"""Criterion 1, localization utility: how well each map finds the ground-truth lesion.

Per image: AUPRC (the study's trapezoid and average precision), pointing game and mass accuracy
of the grayscale map against the mask, for the trained and the fully randomized models. The
baselines are scored the same way: the average training mask (one map for every image) and the
localization baseline's maps (a U-Net's lesion probability, a RetinaNet's detection scores).
Skipped when the dataset has no lesion masks or boxes.

saljax's verdict (``verdict_block``): pass when the trained maps' AUPRC is surely above the
average mask's on the same images, fail when surely below (bootstrap over replicate models and
images, paired by image; Holm over methods); the study's: the mean above the average mask's.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from saljax import metrics
from saljax.study import statistics, verdict as verdicts
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.render import baseline_label, ci, fmt, methods_of, plt, save

SKIPPED = "the dataset has no lesion masks or boxes: there is nothing to localize"

COLUMNS = ("auprc", "average_precision", "pointing_game", "mass_accuracy")


@jax.jit
def _scores(maps, masks):
    return {"auprc": metrics.auprc(maps, masks),
            "average_precision": metrics.auprc(maps, masks, method="average_precision"),
            "pointing_game": metrics.pointing_game(maps, masks),
            "mass_accuracy": metrics.mass_accuracy(maps, masks)}


def score_maps(maps, masks, chunk: int = 64) -> dict:
    """``{column: [N] float}`` for maps [N, H, W] (or one map [H, W] for all) and masks
    [N, H, W], in chunks of ``chunk`` images to bound memory."""
    maps = np.asarray(maps, np.float32)
    masks = np.asarray(masks, bool)
    if maps.ndim == 2:
        maps = np.broadcast_to(maps, masks.shape)
    out = {k: [] for k in COLUMNS}
    for s in range(0, len(masks), chunk):
        part = _scores(jnp.asarray(maps[s:s + chunk]), jnp.asarray(masks[s:s + chunk]))
        for k in COLUMNS:
            out[k].append(np.asarray(part[k]))
    return {k: np.concatenate(v) for k, v in out.items()}


@dataclasses.dataclass
class UtilityResults:
    """Per-image scores ``{column: [N]}`` of each (method, model id, state) and of each
    baseline (``average_mask``, ``<localizer>_seed<k>``: the localization baseline's
    replicates), for the study images ``ids``; ``localizer``: the baseline's record."""
    ids: tuple
    scores: dict
    baselines: dict
    localizer: object

    def rows(self) -> list[dict]:
        """utility.csv: one row per method, model, state and image; then the baselines."""
        name, kind = self.localizer.name, self.localizer.kind
        keys = list(self.scores) + [("average_mask", "baseline", "trained")] + [
            (kind, f"{name}_{k}", "trained") for k in range(len(self.baselines) - 1)]
        values = list(self.scores.values()) + list(self.baselines.values())
        return [{"method": method, "model": model, "state": state, "image": str(i),
                 **{c: float(v[c][j]) for c in COLUMNS}}
                for (method, model, state), v in zip(keys, values) for j, i in enumerate(self.ids)]

    def per_image(self, column: str, method: str, state: str, model_ids) -> np.ndarray:
        """``column`` of ``method`` in ``state`` per image, averaged over ``model_ids``."""
        return statistics.mean_over_models([self.scores[(method, m, state)][column]
                                            for m in model_ids])


def evaluate(study) -> UtilityResults | None:
    """Score the trained and the fully randomized (the deepest cascading level's) maps of
    every fully studied classifier and method on all study images, and the baselines: the
    average training mask and each localization baseline's map; None without lesion masks."""
    images = study.data.images
    if not images.has_masks:
        return None
    n, store, scores = len(images), study.store, {}
    for m in tqdm(study.full, desc="utility", disable=not study.progress, mininterval=2.0):
        final = study.deepest(m.id)
        for method in study.methods:
            for state, setting in (("trained", "trained"), ("randomized", final)):
                scores[(method, m.id, state)] = score_maps(
                    store.gray(m.id, setting, method, n), images.masks)
    training_masks = study.data.training_masks()
    avg = (np.asarray(metrics.average_mask(training_masks)) if len(training_masks)
           else np.zeros(images.masks.shape[1:]))
    baselines = {"average_mask": score_maps(avg, images.masks)}
    for k, seg in enumerate(study.localizer_maps):
        baselines[f"{study.localizer.name}_seed{k}"] = score_maps(seg, images.masks)
    return UtilityResults(images.ids, scores, baselines, study.localizer)


def summarize(results: UtilityResults, method: str, model_ids, boot: dict) -> dict:
    """The ``utility`` entry of ``method`` in summary.json: AUPRC (mean, bootstrap CI), average
    precision, pointing game and mass accuracy per state, each a mean over images of the
    per-image means over models; Wilcoxon tests against the baselines."""
    entry = {"auprc_mean": {}, "auprc": {}, "average_precision_mean": {},
             "pointing_game_mean": {}, "mass_accuracy_mean": {}}
    for state in ("trained", "randomized"):
        v = results.per_image("auprc", method, state, model_ids)
        entry["auprc_mean"][state] = float(np.nanmean(v))
        entry["auprc"][state] = statistics.summarize(v, **boot)
        for col in ("average_precision", "pointing_game", "mass_accuracy"):
            w = results.per_image(col, method, state, model_ids)
            entry[f"{col}_mean"][state] = float(np.nanmean(w))
    v = results.per_image("auprc", method, "trained", model_ids)
    entry["wilcoxon_vs_average_mask"] = statistics.wilcoxon(
        v, results.baselines["average_mask"]["auprc"])
    first = f"{results.localizer.name}_seed0"
    if first in results.baselines:
        entry["wilcoxon_vs_localization"] = statistics.wilcoxon(
            v, results.baselines[first]["auprc"])
    return entry


def summarize_baselines(results: UtilityResults, boot: dict) -> dict:
    """Each baseline's columns: mean, sd and bootstrap CI over the images."""
    return {k: {c: statistics.summarize(v[c], **boot) for c in COLUMNS}
            for k, v in results.baselines.items()}


def _summarize(results, study, summary) -> Entry:
    """Skipped (no masks): the note up top and in every method's entry."""
    if results is None:
        return Entry(study={"utility_skipped": SKIPPED}, baselines={"utility": None},
                     methods={m: {"utility": {"skipped": SKIPPED}} for m in study.methods})
    ids = [m.id for m in study.full]
    entries = {m: summarize(results, m, ids, study.boot) for m in study.methods}
    base = results.baselines["average_mask"]["auprc"]
    found = {m: statistics.difference(
        np.stack([results.scores[(m, i, "trained")]["auprc"] for i in ids]), paired=base,
        **study.boot) for m in study.methods}
    blocks = verdicts.judge(found, "utility (AUPRC)", "above", study.config.verdicts.alpha,
                            VERDICT, {m: verdicts.study_rule(t["value"]["mean"],
                                                             t["line"]["mean"], "above")
                                      for m, t in found.items()})
    for m, b in blocks.items():
        entries[m]["verdict_block"] = b
    return Entry(study={"utility_skipped": None},
                 baselines={"utility": summarize_baselines(results, study.boot)},
                 methods={m: {"utility": e} for m, e in entries.items()})


VERDICT = ("pass when the trained maps' AUPRC is above the average training mask's on the same "
           "images, fail when below (bootstrap over models and images; Holm over methods)")


def section(summary, methods) -> list[str]:
    if summary["study"].get("utility_skipped"):
        return ["", "## Localization utility", "",
                f"Localization utility was skipped: {summary['study']['utility_skipped']}."]
    b = summary["baselines"]
    name = b.get("localization_model", "U-Net")
    note = f"Baselines: average-mask AUPRC {fmt(b['utility']['average_mask']['auprc']['mean'])}"
    own = [k for k in b["utility"] if k != "average_mask"]
    if own:
        note += (f"; {name} (localization baseline) AUPRC "
                 f"{fmt(np.mean([b['utility'][k]['auprc']['mean'] for k in own]))}")
    lines = ["", "## Localization utility", "", note + ".", "",
             "![utility](figures/utility.png)", "",
             "| method | AUPRC trained (95% CI) | AUPRC randomized | average precision | "
             "pointing game | mass accuracy | Wilcoxon p vs average mask |",
             "|---|---|---|---|---|---|---|"]
    for m in methods:
        u = summary[m]["utility"]
        lines.append(f"| {m} | {ci(u['auprc']['trained'])} | "
                     f"{fmt(u['auprc_mean']['randomized'])} | "
                     f"{fmt(u['average_precision_mean']['trained'])} | "
                     f"{fmt(u['pointing_game_mean']['trained'])} | "
                     f"{fmt(u['mass_accuracy_mean']['trained'])} | "
                     f"{fmt(u['wilcoxon_vs_average_mask']['p'], 4)} |")
    return lines


def figures(summary, read, figure) -> None:
    """Per-image AUPRC of each method, trained and randomized, beside the baselines'."""
    if summary["study"].get("utility_skipped"):
        return
    rows, methods = read("utility.csv"), methods_of(summary)
    base_rows = [r for r in rows if r["method"] not in methods]   # the baselines' rows
    fig, ax = plt.subplots(figsize=(11, 3.8))
    data, labels, colors = [], [], []
    for m in methods:
        for state, c in (("trained", "tab:blue"), ("randomized", "tab:gray")):
            data.append([float(r["auprc"]) for r in rows if r["method"] == m and
                         r["state"] == state and r["auprc"] not in ("nan", "")])
            labels.append(f"{m}\n{state}")
            colors.append(c)
    for m in dict.fromkeys(r["method"] for r in base_rows):
        data.append([float(r["auprc"]) for r in base_rows if r["method"] == m])
        labels.append("average mask\n(baseline)" if m == "average_mask"
                      else baseline_label(summary))
        colors.append("tab:orange")
    parts = ax.boxplot([d if d else [np.nan] for d in data], showfliers=False,
                       patch_artist=True)
    for patch, c in zip(parts["boxes"], colors):
        patch.set_facecolor(c)
        patch.set_alpha(0.5)
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=70, fontsize=6)
    ax.set_ylabel("AUPRC against the lesion")
    ax.set_title("Localization utility per image")
    save(fig, figure("utility"))


def overview(summary, method) -> dict:
    u = summary[method]["utility"].get("auprc_mean")
    return {} if not u else {"AUPRC trained": fmt(u["trained"]),
                             "AUPRC randomized": fmt(u["randomized"])}


CRITERION = Criterion(
    name="utility", evaluate=evaluate,
    tables=lambda r: {} if r is None else {"utility.csv": r.rows()},
    summarize=_summarize, section=section, overview=overview, figures=figures)
