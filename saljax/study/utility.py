"""Criterion 1, localization utility: how well each map finds the ground-truth lesion.

Per image: AUPRC (the study's trapezoid and average precision), pointing game and mass accuracy
of the grayscale map against the mask, for the trained and the fully randomized models. The
baselines are scored the same way: the average training mask (one map for every image) and the
segmentation model's probability map.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from saljax import metrics
from saljax.models.registry import LOCALIZERS
from saljax.study import statistics

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
    baseline (``average_mask``, ``<localizer>_seed<k>``: the U-Nets' or RetinaNets'), for
    the study images ``ids``."""
    ids: tuple
    scores: dict
    baselines: dict
    localizer: str = "unet"

    def rows(self) -> list[dict]:
        """utility.csv: one row per method, model, state and image; then the baselines."""
        kind = LOCALIZERS[self.localizer][0]
        keys = list(self.scores) + [("average_mask", "baseline", "trained")] + [
            (kind, f"{self.localizer}_{k}", "trained") for k in range(len(self.baselines) - 1)]
        values = list(self.scores.values()) + list(self.baselines.values())
        return [{"method": method, "model": model, "state": state, "image": str(i),
                 **{c: float(v[c][j]) for c in COLUMNS}}
                for (method, model, state), v in zip(keys, values) for j, i in enumerate(self.ids)]

    def per_image(self, column: str, method: str, state: str, model_ids) -> np.ndarray:
        """``column`` of ``method`` in ``state`` per image, averaged over ``model_ids``."""
        return statistics.mean_over_models([self.scores[(method, m, state)][column]
                                            for m in model_ids])


def evaluate(store, classifiers, methods, final_setting: dict, images, training_masks,
             localizer_maps, localizer: str = "unet", progress: bool = True) -> UtilityResults:
    """Score the trained and the fully randomized (``final_setting[model id]``) maps of every
    classifier and method on all study images, and the baselines: the average training mask
    and each localization model's map (``localizer``: ``unet`` or ``retinanet``)."""
    n = len(images)
    scores = {}
    for m in tqdm(classifiers, desc="utility", disable=not progress, mininterval=2.0):
        for method in methods:
            for state, setting in (("trained", "trained"), ("randomized", final_setting[m.id])):
                scores[(method, m.id, state)] = score_maps(
                    store.gray(m.id, setting, method, n), images.masks)
    avg = (np.asarray(metrics.average_mask(training_masks)) if len(training_masks)
           else np.zeros(images.masks.shape[1:]))
    baselines = {"average_mask": score_maps(avg, images.masks)}
    for k, seg in enumerate(localizer_maps):
        baselines[f"{localizer}_seed{k}"] = score_maps(seg, images.masks)
    return UtilityResults(images.ids, scores, baselines, localizer)


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
    first = f"{results.localizer}_seed0"
    if first in results.baselines:
        entry["wilcoxon_vs_localization"] = statistics.wilcoxon(
            v, results.baselines[first]["auprc"])
    return entry


def summarize_baselines(results: UtilityResults, boot: dict) -> dict:
    """Each baseline's columns: mean, sd and bootstrap CI over the images."""
    return {k: {c: statistics.summarize(v[c], **boot) for c in COLUMNS}
            for k, v in results.baselines.items()}
