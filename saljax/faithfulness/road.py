"""ROAD (Rong et al., ICML 2022): remove the most relevant (MoRF) or least relevant (LeRF)
pixels of a map, impute them in distribution (noisy linear imputation), and watch the model.

A faithful map points at what the model uses: removing its most relevant pixels first drops the
explained class's probability at once (MoRF), removing its least relevant first leaves it
(LeRF). The area between the two curves (mean over fractions of LeRF - MoRF) is positive for a
faithful map and near zero for a random one.

As ROAD does: the map is ranked as given (``ranking="signed"``, higher is more relevant;
``"absolute"`` ranks its magnitude), ties broken at random from the key (never in raster
order, which would remove a map's flat areas top-down), and the imputed pixels get ROAD's noise
(:mod:`saljax.saliency.infill`). Every imputation's linear solve is checked: ``residual``
records the worst, and a solve above ``infill.RESIDUAL_LIMIT`` warns.
"""
from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from saljax.faithfulness.forward import logits as forward_logits
from saljax.saliency.infill import NOISE, RESIDUAL_LIMIT, imputation

ORDERS = ("morf", "lerf")
RANKINGS = ("signed", "absolute")


def removal_masks(saliency, fractions, key=None):
    """[F, 2, H, W] bool: for each fraction, the most (MoRF) and least (LeRF) relevant pixels of
    one map [H, W]; ties broken in a random order drawn from ``key`` (None: by pixel index)."""
    flat = saliency.reshape(-1)
    n = flat.shape[0]
    perm = jnp.arange(n) if key is None else jax.random.permutation(key, n)
    order = perm[jnp.argsort(-flat[perm], stable=True)]         # most relevant first
    rank_desc = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    k = jnp.round(jnp.asarray(fractions, jnp.float32) * n).astype(jnp.int32)
    morf = rank_desc[None] < k[:, None]
    lerf = rank_desc[None] >= (n - k)[:, None]
    return jnp.stack([morf, lerf], axis=1).reshape((len(fractions), 2) + saliency.shape)


@functools.partial(jax.jit, static_argnames=("fractions", "noise", "match"))
def _removed(images, maps, key, fractions, noise, match):
    """[B * F * 2, H, W, C]: each image with each fraction's MoRF and LeRF pixels imputed, and
    each solve's residual [B, F * 2]."""
    def one(image, saliency, k):
        tie, k = jax.random.split(k)
        masks = removal_masks(saliency, fractions, tie).reshape((-1,) + saliency.shape)
        keys = jax.random.split(k, masks.shape[0])
        return jax.vmap(lambda m, kk: imputation(image, m, kk, noise, match))(masks, keys)

    keys = jax.random.split(key, images.shape[0])
    out, residual = jax.vmap(one)(images, maps, keys)
    return out.reshape((-1,) + images.shape[1:]), residual


@functools.partial(jax.jit, static_argnames="fractions")
def _curves(logits, targets, fractions):
    logits = logits.reshape((targets.shape[0], len(fractions), 2, -1))
    prob = jnp.take_along_axis(jax.nn.softmax(logits), targets[:, None, None, None], -1)[..., 0]
    return prob, jnp.argmax(logits, -1) == targets[:, None, None]


def _road(model, variables, images, maps, targets, key, fractions, noise, match):
    removed, residual = _removed(images, maps, key, fractions, noise, match)
    return _curves(forward_logits(model, variables, removed), targets, fractions) + (
        residual,)


def road(model, variables, images, maps, targets=None, *, fractions=(0.1, 0.3, 0.5, 0.7, 0.9),
         key=None, noise: float = NOISE, match: bool = False, ranking: str = "signed",
         max_images: int = 16) -> dict:
    """ROAD curves of ``maps`` [B, H, W] (any scores: higher is more relevant; with ``ranking=
    "absolute"`` their magnitude) on ``images`` [B, H, W, C] for the explained class
    ``targets`` [B] (None: the predicted class). ``key`` draws the tie-breaking order and the
    imputation noise (sd ``noise`` in input units, or matched to the image with ``match``).

    Returns, per order (``"morf"``, ``"lerf"``), ``prob`` (the explained class's probability)
    and ``correct`` (the prediction is still the explained class), each [B, F]; ``prob_full``
    [B] on the intact images; ``area`` [B], the mean over fractions of LeRF - MoRF
    probability; ``residual`` [B], the worst relative residual of the image's linear solves.
    ``max_images`` images are imputed and passed through the model at a time.
    """
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, got {ranking!r}")
    images = jnp.asarray(images, jnp.float32)
    maps = jnp.asarray(maps, jnp.float32)
    if maps.shape != images.shape[:3]:
        raise ValueError(f"maps must be [B, H, W] = {images.shape[:3]}, got {maps.shape}")
    if not bool(jnp.all(jnp.isfinite(maps))):
        raise ValueError("maps must be finite: a NaN or infinite score cannot be ranked")
    if ranking == "absolute":
        maps = jnp.abs(maps)
    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    logits = forward_logits(model, v, images)
    targets = (jnp.argmax(logits, -1) if targets is None else jnp.asarray(targets)).astype(
        jnp.int32)
    key = jax.random.key(0) if key is None else key
    fractions = tuple(float(f) for f in fractions)
    parts = [_road(model, v, images[s:s + max_images], maps[s:s + max_images],
                   targets[s:s + max_images], jax.random.fold_in(key, s), fractions,
                   float(noise), bool(match))
             for s in range(0, images.shape[0], max_images)]
    prob = np.concatenate([np.asarray(p) for p, _, _ in parts])
    correct = np.concatenate([np.asarray(c) for _, c, _ in parts])
    residual = np.concatenate([np.asarray(r).max(-1) for _, _, r in parts])
    out = {o: {"prob": prob[:, :, i], "correct": correct[:, :, i]} for i, o in enumerate(ORDERS)}
    out["prob_full"] = np.asarray(jnp.take_along_axis(jax.nn.softmax(logits), targets[:, None],
                                                      1)[:, 0])
    out["area"] = (out["lerf"]["prob"] - out["morf"]["prob"]).mean(axis=1)
    out["fractions"] = fractions
    out["residual"] = residual
    if residual.max() > RESIDUAL_LIMIT:
        warnings.warn(f"ROAD: the imputation's linear solve did not converge on "
                      f"{int((residual > RESIDUAL_LIMIT).sum())} of {len(residual)} images "
                      f"(worst relative residual {residual.max():.2g} > {RESIDUAL_LIMIT})")
    return out
