"""How well a map localizes a ground-truth mask, batched over leading axes.

Maps [..., H, W] float, masks [..., H, W] bool (broadcast against each other); results float32
[...]. Every pixel is a sample, the map its score, the mask its label.

Degenerate inputs give documented results, never a silent number:

* empty mask: every metric is NaN (no positive pixel to find);
* full mask: AUPRC and AP are 1, ROC-AUC is NaN (no negative pixel), IoU/Dice as computed;
* constant map: one threshold, as sklearn: AUPRC (trapezoid) = (1 + prevalence) / 2,
  AP = prevalence, ROC-AUC = 0.5; pointing game = the mask's share of the image;
* NaN anywhere in a map: NaN.

A boolean map with a float mask is an error (the arguments are swapped). Each function is
jitted (options static), so a direct call runs compiled.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from saljax.metrics.reduce import pairwise_sum, sort_order


def _check_order(name, maps, masks):
    if jnp.asarray(maps).dtype == jnp.bool_ and jnp.issubdtype(jnp.asarray(masks).dtype,
                                                               jnp.floating):
        raise ValueError(f"{name}(maps, masks): the map is boolean and the mask is float; are "
                         "the arguments swapped?")


def _prepare(maps, masks, name="metric"):
    _check_order(name, maps, masks)
    maps, masks = jnp.broadcast_arrays(jnp.asarray(maps, jnp.float32), jnp.asarray(masks))
    lead = maps.shape[:-2]
    return (maps.reshape(lead + (-1,)), masks.reshape(lead + (-1,)).astype(bool), lead)


def _curve(scores, labels):
    """Cumulative (tps, fps) at each distinct threshold, highest score first.

    Returns ``(tps, fps, is_end, prev_tps, prev_fps)`` over sorted positions: ``is_end`` marks the
    last position of each group of equal scores (where sklearn evaluates its curve), ``prev_*`` the
    counts at the previous group's end (0 before the first)."""
    n = scores.shape[-1]
    axis = scores.ndim - 1
    perm = sort_order(-scores)
    s = jnp.take_along_axis(-scores, perm, -1)
    y = jnp.take_along_axis(labels.astype(jnp.float32), perm, -1)
    tps = jnp.cumsum(y, axis=-1)  # exact: integers below 2^24
    pos = jnp.arange(n, dtype=jnp.float32)
    fps = pos + 1 - tps
    is_end = jnp.concatenate([s[..., 1:] != s[..., :-1], jnp.ones_like(s[..., :1], bool)], -1)
    # counts at the previous group end: shift the running "last end" by one position
    end_tps = jnp.where(is_end, tps, -1.0)
    end_fps = jnp.where(is_end, fps, -1.0)
    prev_tps = jnp.concatenate([jnp.zeros_like(tps[..., :1]),
                                lax.cummax(end_tps, axis=axis)[..., :-1]], -1)
    prev_fps = jnp.concatenate([jnp.zeros_like(fps[..., :1]),
                                lax.cummax(end_fps, axis=axis)[..., :-1]], -1)
    return tps, fps, is_end, jnp.maximum(prev_tps, 0), jnp.maximum(prev_fps, 0)


def _guard(value, scores, labels, need_negatives=False):
    pos = jnp.sum(labels, axis=-1)
    bad = jnp.isnan(scores).any(-1) | (pos == 0)
    if need_negatives:
        bad = bad | (pos == labels.shape[-1])
    return jnp.where(bad, jnp.nan, value)


@functools.partial(jax.jit, static_argnames="method")
def auprc(maps, masks, method: str = "trapezoid"):
    """Area under the precision-recall curve of the map's pixels against the mask.

    ``"trapezoid"``: sklearn's ``auc(recall, precision)`` over ``precision_recall_curve`` (the
    study's number, which interpolates linearly from the (recall 0, precision 1) end point);
    ``"average_precision"``: sklearn's ``average_precision_score`` (step-wise).
    """
    scores, labels, lead = _prepare(maps, masks, "auprc")
    tps, fps, is_end, ptps, pfps = _curve(scores, labels)
    total = tps[..., -1:]
    safe = jnp.maximum(total, 1.0)
    recall, prev_recall = tps / safe, ptps / safe
    precision = tps / (tps + fps)
    prev_precision = jnp.where(ptps + pfps > 0, ptps / jnp.maximum(ptps + pfps, 1.0), 1.0)
    if method == "trapezoid":
        area = (recall - prev_recall) * (precision + prev_precision) / 2
    elif method == "average_precision":
        area = (recall - prev_recall) * precision
    else:
        raise ValueError(f"method must be 'trapezoid' or 'average_precision', got {method!r}")
    value = pairwise_sum(jnp.where(is_end, area, 0.0))
    return _guard(value, scores, labels)


@jax.jit
def roc_auc(maps, masks):
    """Area under the ROC curve (sklearn's ``roc_auc_score``, ties counted half)."""
    scores, labels, lead = _prepare(maps, masks, "roc_auc")
    tps, fps, is_end, ptps, pfps = _curve(scores, labels)
    p = jnp.maximum(tps[..., -1:], 1.0)
    n = jnp.maximum(fps[..., -1:], 1.0)
    area = (fps - pfps) / n * (tps + ptps) / p / 2
    value = pairwise_sum(jnp.where(is_end, area, 0.0))
    return _guard(value, scores, labels, need_negatives=True)


def _dilate(masks, radius: int):
    """Grow boolean masks [..., H, W] by a disk of ``radius`` pixels."""
    if radius <= 0:
        return masks
    r = jnp.arange(-radius, radius + 1)
    disk = (r[:, None] ** 2 + r[None, :] ** 2 <= radius ** 2).astype(jnp.float32)
    h, w = masks.shape[-2:]
    m = masks.reshape((-1, 1, h, w)).astype(jnp.float32)
    grown = lax.conv_general_dilated(m, disk[None, None], (1, 1), "SAME")
    return (grown > 0.5).reshape(masks.shape)


@functools.partial(jax.jit, static_argnames="tolerance_px")
def pointing_game(maps, masks, tolerance_px: int = 0):
    """Does the map's maximum fall inside the mask (grown by ``tolerance_px``)? 1.0 or 0.0.

    With several maximal pixels, the share of them inside (a constant map: the mask's area).
    """
    _check_order("pointing_game", maps, masks)
    maps = jnp.asarray(maps, jnp.float32)
    masks = jnp.asarray(masks).astype(bool)
    maps, masks = jnp.broadcast_arrays(maps, masks)
    grown = _dilate(masks, tolerance_px)
    peak = maps == jnp.max(maps, axis=(-2, -1), keepdims=True)
    hits = jnp.sum(peak & grown, axis=(-2, -1)) / jnp.maximum(jnp.sum(peak, axis=(-2, -1)), 1)
    bad = jnp.isnan(maps).any((-2, -1)) | ~masks.any((-2, -1))
    return jnp.where(bad, jnp.nan, hits.astype(jnp.float32))


@jax.jit
def mass_accuracy(maps, masks):
    """Share of the map's absolute mass inside the mask (NaN for an all-zero map)."""
    scores, labels, _ = _prepare(maps, masks, "mass_accuracy")
    mass = jnp.abs(scores)
    total = pairwise_sum(mass)
    inside = pairwise_sum(jnp.where(labels, mass, 0.0))
    value = jnp.where(total > 0, inside / jnp.where(total > 0, total, 1.0), jnp.nan)
    return _guard(value, scores, labels)


@jax.jit
def auprc_lift(maps, masks):
    """Average precision (sklearn's ``average_precision_score``) over the mask's prevalence
    (its share of the pixels), so that regions of different sizes (a small marker, a larger
    lesion) start from the same floor: about 1 for a map no better than chance. For a region
    of few pixels a random map's average precision sits above the prevalence (9 pixels of 576:
    a lift of about 1.6), so compare small regions by AUROC, whose chance level is 0.5 at any
    size."""
    _check_order("auprc_lift", maps, masks)
    prevalence = jnp.mean(jnp.asarray(masks).astype(jnp.float32), axis=(-2, -1))
    return auprc(maps, masks, method="average_precision") / prevalence


@jax.jit
def mass_ratio(maps, masks):
    """The map's share of absolute mass inside the mask over the mask's share of the pixels:
    1 for mass spread evenly, above 1 where the map concentrates on the region (NaN for an
    all-zero map or an empty mask)."""
    _check_order("mass_ratio", maps, masks)
    share = jnp.mean(jnp.asarray(masks).astype(jnp.float32), axis=(-2, -1))
    return mass_accuracy(maps, masks) / share


@functools.partial(jax.jit, static_argnames=("threshold", "top_fraction"))
def binarize(maps, *, threshold=None, top_fraction=None):
    """The map's pixels at or above ``threshold``, or its ``top_fraction`` highest pixels (ties
    at the cut included). Exactly one of the two."""
    if (threshold is None) == (top_fraction is None):
        raise ValueError("give exactly one of threshold and top_fraction")
    maps = jnp.asarray(maps, jnp.float32)
    if threshold is not None:
        return maps >= threshold
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    flat = maps.reshape(maps.shape[:-2] + (-1,))
    k = max(1, int(round(top_fraction * flat.shape[-1])))
    cut = lax.top_k(flat, k)[0][..., -1]
    return maps >= cut[..., None, None]


@functools.partial(jax.jit, static_argnames=("threshold", "top_fraction"))
def iou(maps, masks, *, threshold=None, top_fraction=None):
    """Intersection over union of the binarized map and the mask (NaN if both are empty)."""
    _check_order("iou", maps, masks)
    region = binarize(maps, threshold=threshold, top_fraction=top_fraction)
    masks = jnp.asarray(masks).astype(bool)
    inter = jnp.sum(region & masks, axis=(-2, -1))
    union = jnp.sum(region | masks, axis=(-2, -1))
    value = jnp.where(union > 0, inter / jnp.maximum(union, 1), jnp.nan).astype(jnp.float32)
    return jnp.where(jnp.isnan(jnp.asarray(maps, jnp.float32)).any((-2, -1)), jnp.nan, value)


@functools.partial(jax.jit, static_argnames=("threshold", "top_fraction"))
def dice(maps, masks, *, threshold=None, top_fraction=None):
    """Dice coefficient 2|A and M| / (|A| + |M|) of the binarized map A and the mask M."""
    _check_order("dice", maps, masks)
    region = binarize(maps, threshold=threshold, top_fraction=top_fraction)
    masks = jnp.asarray(masks).astype(bool)
    inter = jnp.sum(region & masks, axis=(-2, -1))
    size = jnp.sum(region, axis=(-2, -1)) + jnp.sum(masks, axis=(-2, -1))
    value = jnp.where(size > 0, 2 * inter / jnp.maximum(size, 1), jnp.nan).astype(jnp.float32)
    return jnp.where(jnp.isnan(jnp.asarray(maps, jnp.float32)).any((-2, -1)), jnp.nan, value)
