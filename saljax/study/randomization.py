"""Criterion 2, sensitivity to weight randomization (Adebayo et al.'s model randomization test).

For every model, method and randomization setting: SSIM of the level's grayscale map to the
trained model's, and Spearman rank correlation with and without absolute values of the signed
maps, per image. The pass line of a method is the mean SSIM between its trained maps of
different images (random pairs): maps no more alike than that carry no trace of the trained
model. As the study defined it (Arun et al.: a map "reaches degradation if it goes below its
randomization baseline"), a method passes (``verdict = "pass"``) when the mean SSIM of some
cascading level, across images and replicate models, falls below its pass line; it "fails" when
the maps of every level, down to the fully randomized model, still resemble the trained ones
more than two unrelated images' maps do. The summary also says whether the final level is
below the line.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from saljax import metrics


@functools.partial(jax.jit, static_argnames="ssim_items")
def _similarity(ga, gb, sa, sb, ssim_items):
    return {"ssim": metrics.ssim(ga, gb, **dict(ssim_items)),
            "spearman": metrics.spearman(sa, sb),
            "spearman_abs": metrics.spearman(sa, sb, absolute=True)}


def similarity(gray_a, gray_b, signed_a, signed_b, ssim_kwargs: dict, chunk: int = 64) -> dict:
    """``{"ssim", "spearman", "spearman_abs"}`` per image: [N] each."""
    fn = functools.partial(_similarity, ssim_items=tuple(sorted(ssim_kwargs.items())))
    out = {"ssim": [], "spearman": [], "spearman_abs": []}
    for s in range(0, len(gray_a), chunk):
        part = fn(*(jnp.asarray(x[s:s + chunk], jnp.float32)
                    for x in (gray_a, gray_b, signed_a, signed_b)))
        for k in out:
            out[k].append(np.asarray(part[k]))
    return {k: np.concatenate(v) for k, v in out.items()}


@functools.partial(jax.jit, static_argnames=("n_pairs", "ssim_items"))
def _pass_line(gray, key, n_pairs, ssim_items):
    return jnp.nanmean(metrics.random_pair_ssim(gray, key, n_pairs, **dict(ssim_items)))


def pass_line(gray, key, n_pairs: int, ssim_kwargs: dict) -> float:
    """Mean SSIM between maps of different images of one model ([N, H, W] maps)."""
    return float(_pass_line(jnp.asarray(gray), key, n_pairs, tuple(sorted(ssim_kwargs.items()))))


def verdict(level_ssim_means, line: float) -> str:
    """"pass" when any cascading level's mean SSIM (trained model excluded) is below ``line``."""
    levels = np.asarray(level_ssim_means, np.float64)
    levels = levels[np.isfinite(levels)]
    if not levels.size or not np.isfinite(line):
        return "undetermined"
    return "pass" if levels.min() < line else "fail"
