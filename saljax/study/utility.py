"""Criterion 1, localization utility: how well each map finds the ground-truth lesion.

Per image: AUPRC (the study's trapezoid and average precision), pointing game and mass accuracy
of the grayscale map against the mask, for the trained and the fully randomized models. The
baselines are scored the same way: the average training mask (one map for every image) and the
segmentation model's probability map.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from saljax import metrics

COLUMNS = ("auprc", "average_precision", "pointing_game", "mass_accuracy")


@jax.jit
def _scores(maps, masks):
    return {"auprc": metrics.auprc(maps, masks),
            "average_precision": metrics.auprc(maps, masks, method="average_precision"),
            "pointing_game": metrics.pointing_game(maps, masks),
            "mass_accuracy": metrics.mass_accuracy(maps, masks)}


def scores(maps, masks, chunk: int = 64) -> dict:
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


def rows(method: str, model_id: str, state: str, ids, values: dict) -> list[dict]:
    """Per-image CSV rows."""
    return [{"method": method, "model": model_id, "state": state, "image": str(i),
             **{k: float(values[k][j]) for k in COLUMNS}} for j, i in enumerate(ids)]
