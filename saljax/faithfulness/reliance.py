"""Reliance: what the model really uses. The explained class's probability and logit before
and after a known region (the lesion, the marker) is removed by in-distribution infill
(:mod:`saljax.saliency.infill`): a model that relies on the region changes its prediction."""
from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp

from saljax.faithfulness.forward import logits
from saljax.saliency.infill import NOISE, RESIDUAL_LIMIT, infill


@functools.partial(jax.jit, static_argnames=("method", "noise", "match"))
def _removed(images, regions, key, method, noise, match):
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda x, m, k: infill(method, x, m, k, noise, match))(images, regions,
                                                                          keys)


@jax.jit
def _compare(before, after, targets):
    t = jnp.where(targets < 0, jnp.argmax(before, -1), targets).astype(jnp.int32)
    pick = lambda z: jnp.take_along_axis(z, t[:, None], 1)[:, 0]
    return {"logit": pick(before), "logit_removed": pick(after),
            "prob": pick(jax.nn.softmax(before)), "prob_removed": pick(jax.nn.softmax(after)),
            "flipped": jnp.argmax(before, -1) != jnp.argmax(after, -1)}


def reliance(model, variables, images, regions, targets=None, *, infill_method="noisy_linear",
             key=None, noise: float = NOISE, match: bool = False) -> dict:
    """Per image, the explained class's logit and probability with and without ``regions``,
    and whether the prediction flips when they are removed.

    ``images`` [B, H, W, C] model inputs, ``regions`` bool [B, H, W] (True: removed),
    ``targets`` [B] (None: the predicted class); ``infill_method``: ``"noisy_linear"`` (ROAD's,
    noise from ``key`` of sd ``noise`` or matched to the image's with ``match``) or ``"blur"``.
    Returns ``{"logit", "logit_removed", "prob", "prob_removed", "flipped", "residual"}``, each
    [B] (``residual``: the imputation solve's relative residual; one above
    ``infill.RESIDUAL_LIMIT`` warns). The infill and the comparison are jitted; the
    model runs through :func:`saljax.faithfulness.forward.logits` (one program per model).
    """
    images = jnp.asarray(images, jnp.float32)
    regions = jnp.asarray(regions, bool)
    if regions.shape != images.shape[:3]:
        raise ValueError(f"regions must be [B, H, W] = {images.shape[:3]}, got {regions.shape}")
    key = jax.random.key(0) if key is None else key
    targets = (jnp.full(images.shape[0], -1, jnp.int32) if targets is None
               else jnp.asarray(targets, jnp.int32))
    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    removed, residual = _removed(images, regions, key, infill_method, float(noise), bool(match))
    if float(jnp.max(residual)) > RESIDUAL_LIMIT:
        warnings.warn(f"reliance: the imputation's linear solve did not converge (worst "
                      f"relative residual {float(jnp.max(residual)):.2g} > {RESIDUAL_LIMIT})")
    return {**_compare(logits(model, v, images), logits(model, v, removed), targets),
            "residual": residual}


@jax.jit
def _pasted(images, regions, donors):
    return jnp.where(regions[..., None], donors, images)


def sufficiency(model, variables, images, regions, donors, positive: int = 1) -> dict:
    """Whether a region alone makes the model predict ``positive``: each image [B, H, W, C]
    with ``donors``' pixels pasted inside ``regions`` [B, H, W] (e.g. a marker copied, at its
    place, from an image that carries one, into a negative that does not). Returns, each [B]:
    ``prob`` and ``prob_added`` (the ``positive`` class's probability before and after),
    ``positive`` and ``positive_added`` (whether it is predicted). A model that relies on the
    region alone turns every image positive: its sufficiency (the mean of ``positive_added``
    over images predicted negative before) is 1, whatever removing the region does."""
    images = jnp.asarray(images, jnp.float32)
    regions = jnp.asarray(regions, bool)
    if regions.shape != images.shape[:3] or donors.shape != images.shape:
        raise ValueError(f"regions must be [B, H, W] and donors [B, H, W, C] for images "
                         f"{images.shape}, got {regions.shape} and {donors.shape}")
    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    before = logits(model, v, images)
    after = logits(model, v, _pasted(images, regions, jnp.asarray(donors, jnp.float32)))
    prob = lambda z: jax.nn.softmax(z)[:, positive]
    return {"prob": prob(before), "prob_added": prob(after),
            "positive": jnp.argmax(before, -1) == positive,
            "positive_added": jnp.argmax(after, -1) == positive}
