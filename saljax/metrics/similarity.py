"""Similarity between saliency maps: SSIM, Spearman and Pearson, batched over leading axes.

All take maps [..., H, W] (any leading batch shape, broadcast against each other), compute in
float32 and return float32 [...]. A NaN anywhere in a map makes its result NaN. Each is jitted
(options static), so a direct call runs compiled, not op by op.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from saljax.metrics.reduce import average_ranks, sorted_average_ranks, pairwise_mean, pairwise_sum

def _gaussian_kernel(sigma: float, truncate: float = 3.5):
    radius = int(truncate * sigma + 0.5)
    d = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (d / sigma) ** 2)
    return k / jnp.sum(k)


def _filter_valid(x, kernel):
    """Separable correlation of [N, H, W] with a 1-D kernel of k taps, VALID (interior pixels
    only): [N, H - k + 1, W - k + 1]. Written as k shifted, weighted slices per axis, which XLA
    fuses into one elementwise pass; a one-channel convolution is several times slower on the
    CPU backend."""
    k = kernel.shape[0]
    h, w = x.shape[-2:]
    y = sum(kernel[i] * x[:, i:h - k + 1 + i, :] for i in range(k))
    return sum(kernel[i] * y[:, :, i:w - k + 1 + i] for i in range(k))


@functools.partial(jax.jit, static_argnames=("data_range", "win_size", "gaussian_weights",
                                             "sigma", "use_sample_covariance", "k1", "k2"))
def ssim(a, b, *, data_range, win_size: int | None = 7, gaussian_weights: bool = False,
         sigma: float = 1.5, use_sample_covariance: bool = True, k1: float = 0.01,
         k2: float = 0.03):
    """Mean SSIM of 2-D maps, equal to ``skimage.metrics.structural_similarity``.

    Local statistics over a ``win_size`` uniform window (or a Gaussian of ``sigma`` truncated at
    3.5 sd, window 11 for sigma 1.5, as skimage with ``gaussian_weights=True``), averaged over
    the pixels at least half a window from the border (skimage crops the rest).

    ``data_range`` (the maps' value range, e.g. 1.0 for maps in [0, 1]) is required, as in
    skimage for float images. The reference study ran skimage's ``compare_ssim`` on float maps
    without it, which then assumed the float dtype range [-1, 1], i.e. ``data_range=2``: pass
    ``data_range=2.0`` to reproduce its numbers. Constant maps are defined (C1, C2 > 0).
    """
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range)
            and data_range > 0):
        raise ValueError(f"ssim: data_range must be a positive number (the maps' value range, "
                         f"e.g. 1.0 for maps in [0, 1]), got {data_range!r}")
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    a, b = jnp.broadcast_arrays(a, b)
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    if gaussian_weights:
        kernel = _gaussian_kernel(sigma)
        win = kernel.shape[0]
    else:
        win = 7 if win_size is None else int(win_size)
        if win % 2 == 0 or win < 3:
            raise ValueError(f"win_size must be odd and >= 3, got {win}")
        kernel = jnp.full((win,), 1.0 / win, jnp.float32)
    if min(h, w) < win:
        raise ValueError(f"SSIM with a {win}x{win} window needs maps of at least {win}x{win}, "
                         f"got {h}x{w}")
    a2, b2 = a.reshape(-1, h, w), b.reshape(-1, h, w)
    # Centred on each map's mean, the local (co)variances E[xy] - E[x]E[y] lose no digits to
    # cancellation (a map against itself gives 1 exactly, a constant map too); the five local
    # means in one filtering pass.
    ma, mb = a2.mean((1, 2), keepdims=True), b2.mean((1, 2), keepdims=True)
    a2, b2 = a2 - ma, b2 - mb
    cx, cy, uxx, uyy, uxy = jnp.split(
        _filter_valid(jnp.concatenate([a2, b2, a2 * a2, b2 * b2, a2 * b2]), kernel), 5)
    np_ = win ** 2
    cov_norm = np_ / (np_ - 1) if use_sample_covariance else 1.0
    vx = cov_norm * (uxx - cx * cx)
    vy = cov_norm * (uyy - cy * cy)
    vxy = cov_norm * (uxy - cx * cy)
    ux, uy = cx + ma, cy + mb
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return pairwise_mean(s.reshape(s.shape[0], -1)).reshape(lead)

def _correlate(x, y):
    """Pearson correlation along the last axis of already flattened float32 arrays."""
    xm = x - pairwise_mean(x)[..., None]
    ym = y - pairwise_mean(y)[..., None]
    num = pairwise_sum(xm * ym)
    den = jnp.sqrt(pairwise_sum(xm * xm) * pairwise_sum(ym * ym))
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.nan)

def _flat(a, b):
    a, b = jnp.broadcast_arrays(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    return a.reshape(a.shape[:-2] + (-1,)), b.reshape(b.shape[:-2] + (-1,))

@jax.jit
def pearson(a, b):
    """Pearson correlation of the flattened maps (NaN if either map is constant)."""
    x, y = _flat(a, b)
    nan = jnp.isnan(x).any(-1) | jnp.isnan(y).any(-1)
    return jnp.where(nan, jnp.nan, _correlate(x, y))

@functools.partial(jax.jit, static_argnames="absolute")
def spearman(a, b, *, absolute: bool = False):
    """Spearman rank correlation of the flattened maps, ties given average ranks, equal to
    ``scipy.stats.spearmanr``. ``absolute=True`` ranks |a| and |b| (Adebayo et al.'s variant,
    which ignores the sign some methods attach to evidence). NaN if either map is constant."""
    x, y = _flat(a, b)
    nan = jnp.isnan(x).any(-1) | jnp.isnan(y).any(-1)
    if absolute:
        x, y = jnp.abs(x), jnp.abs(y)
    # x's ranks stay in x's sorted order; y's, put back in pixel order, are gathered into it
    # (one scatter instead of two).
    px, rx = sorted_average_ranks(x)
    ry = jnp.take_along_axis(average_ranks(y), px, -1)
    # Centred ranks are exact half-integers; scale to O(1) before multiplying.
    n = x.shape[-1]
    rx = (rx - (n + 1) / 2) / n
    ry = (ry - (n + 1) / 2) / n
    num = pairwise_sum(rx * ry)
    den = jnp.sqrt(pairwise_sum(rx * rx) * pairwise_sum(ry * ry))
    rho = jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.nan)
    return jnp.where(nan, jnp.nan, rho)
