"""Criteria 3 and 4: repeatability (replicate models of one architecture) and reproducibility
(models of different architectures), as SSIM between the trained models' grayscale maps of the
same image, over all pairs of models. The baseline is the same comparison between replicate
segmentation models' probability maps.
"""
from __future__ import annotations

import functools

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from saljax import metrics


def model_pairs(models: list[dict]) -> dict:
    """``{"repeatability": [(a, b)], "reproducibility": [(a, b)]}`` of model ids: same
    architecture (different seeds) and different architectures."""
    out = {"repeatability": [], "reproducibility": []}
    for a, b in itertools.combinations(models, 2):
        kind = "repeatability" if a["arch"] == b["arch"] else "reproducibility"
        out[kind].append((a["id"], b["id"]))
    return out


@functools.partial(jax.jit, static_argnames="ssim_items")
def _ssim(a, b, ssim_items):
    return metrics.ssim(a, b, **dict(ssim_items))


def pair_ssim(maps_a, maps_b, ssim_kwargs: dict, chunk: int = 64) -> np.ndarray:
    """SSIM per image between two models' maps [N, H, W]: [N]."""
    fn = functools.partial(_ssim, ssim_items=tuple(sorted(ssim_kwargs.items())))
    return np.concatenate([np.asarray(fn(jnp.asarray(maps_a[s:s + chunk]),
                                         jnp.asarray(maps_b[s:s + chunk])))
                           for s in range(0, len(maps_a), chunk)])
