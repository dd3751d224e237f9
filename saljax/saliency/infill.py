"""Removing image regions in distribution: pixels are replaced by what their surroundings
predict, never by a constant (a constant patch is itself out of distribution).

* :func:`noisy_linear` is ROAD's noisy linear imputation (Rong et al., ICML 2022): every removed
  pixel is the weighted mean of its 8 neighbours (1/6 for the 4 direct ones, 1/12 for the
  diagonal ones, renormalised at the border), a sparse linear system solved here matrix-free by
  conjugate gradients under ``jit``/``vmap`` (its residual returned by :func:`imputation`), then
  Gaussian noise is added to the removed pixels: one field for all channels, of ROAD's sd (0.01
  of a [0, 1] image, 0.02 here) or matched to the image's own :func:`noise_level`;
* :func:`blur` is normalised convolution: a Gaussian blur of the kept pixels divided by the blur
  of the kept-pixel indicator (the surroundings' local mean).

Images [H, W, C] float32, masks [H, W] (True or 1: removed); batched by ``vmap``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg

# (dy, dx) -> weight: ROAD's neighbourhood
NEIGHBOURS = ((-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6), (0, 1, 1 / 6),
              (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12))


def _shift(x, dy: int, dx: int):
    """``x[i + dy, j + dx]`` at (i, j), zero outside the image: [H, W, ...]."""
    h, w = x.shape[:2]
    pad = [(max(-dy, 0), max(dy, 0)), (max(-dx, 0), max(dx, 0))] + [(0, 0)] * (x.ndim - 2)
    p = jnp.pad(x, pad)
    return p[max(dy, 0):max(dy, 0) + h, max(dx, 0):max(dx, 0) + w]


def _neighbour_sum(x, valid):
    """Sum over the 8 neighbours of ``weight * x`` where ``valid``: [H, W, ...]."""
    return sum(w * _shift(x * valid, dy, dx) for dy, dx, w in NEIGHBOURS)


# ROAD adds N(0, 0.01) to imputed pixels of images in [0, 1]; model inputs here span [-1, 1]
NOISE = 0.02
# the solve's relative residual |A x - b| / |b| above which an imputation counts as unconverged
RESIDUAL_LIMIT = 1e-3


def imputation(image, mask, key=None, noise: float = NOISE, match: bool = False,
               tol: float = 1e-6, maxiter: int = 2000):
    """:func:`noisy_linear` and the linear solve's relative residual ``|A x - b| / |b|``
    (a scalar; 0 when nothing is removed): ``(image [H, W, C], residual)``."""
    image = image.astype(jnp.float32)
    removed = jnp.asarray(mask, bool)[..., None].astype(jnp.float32)
    kept = 1.0 - removed
    inside = jnp.ones(image.shape[:2] + (1,), jnp.float32)
    s = _neighbour_sum(inside, inside)                      # in-image neighbour weight per pixel

    def operator(x):   # on the removed pixels (zero elsewhere): symmetric positive definite
        return removed * (s * x - _neighbour_sum(x, removed)) + kept * x

    rhs = removed * _neighbour_sum(image, kept)
    mean = jnp.sum(kept * image, axis=(0, 1)) / jnp.maximum(jnp.sum(kept), 1.0)
    start = removed * mean                                  # the kept pixels' mean, per channel
    solution, _ = cg(operator, rhs, x0=start, tol=tol, maxiter=maxiter)
    solution = removed * solution
    residual = jnp.linalg.norm(operator(solution) - rhs) / jnp.maximum(
        jnp.linalg.norm(rhs), 1e-12)
    out = kept * image + solution
    if key is not None and (noise > 0 or match):
        sd = noise_level(image, mask) / jnp.sqrt(1.0 + _SQUARED_WEIGHTS) if match else noise
        field = jax.random.normal(key, image.shape[:2] + (1,), jnp.float32)  # one for all channels
        out = out + removed * sd * field
    return out, jnp.where(jnp.any(removed > 0), residual, 0.0)


def noisy_linear(image, mask, key=None, noise: float = NOISE, match: bool = False,
                 tol: float = 1e-6, maxiter: int = 2000):
    """ROAD's noisy linear imputation of the pixels where ``mask`` is set. [H, W, C] float32.

    Solves ``s_p x_p - sum_{q removed} w_pq x_q = sum_{q kept} w_pq image_q`` for the removed
    pixels p (``s_p``: the weights of p's in-image neighbours), i.e. each removed pixel is the
    weighted mean of its neighbours, kept or imputed. With ``key``, Gaussian noise is added to
    the imputed pixels: one field shared by every channel (the gray channels stay identical),
    of sd ``noise`` (model-input units: the default is ROAD's 0.01 of a [0, 1] image), or with
    ``match`` of the sd that makes the imputed pixels' :func:`noise_level` equal the kept
    surroundings'. :func:`imputation` also returns the solve's residual.
    """
    return imputation(image, mask, key, noise, match, tol, maxiter)[0]


# sum of the squared normalised neighbour weights: iid noise of sd t has a neighbour-mean
# residual of sd t * sqrt(1 + this)
_SQUARED_WEIGHTS = sum((w / sum(v for *_, v in NEIGHBOURS)) ** 2 for *_, w in NEIGHBOURS)


def noise_level(image, region, band: float = 4.0):
    """The pixel noise of ``image`` [H, W, C] in the kept pixels around ``region`` [H, W]
    (within about ``band`` px of it; every kept pixel if there are none): the robust sd
    (1.4826 x the median absolute value) of each pixel minus the weighted mean of its 8
    neighbours, on the first channel. A scalar; 0 when nothing is kept."""
    region = jnp.asarray(region, bool)
    x = image[..., :1].astype(jnp.float32)
    inside = jnp.ones(x.shape, jnp.float32)
    residual = (x - _neighbour_sum(x, inside) / _neighbour_sum(inside, inside))[..., 0]
    interior = jnp.zeros(region.shape, bool).at[1:-1, 1:-1].set(True)
    kept = ~region & interior
    near = _blur(region[..., None].astype(jnp.float32), _gaussian_1d(band))[..., 0] > 1e-2
    pick = jnp.where(jnp.any(kept & near), kept & near, kept)
    level = 1.4826 * jnp.nanmedian(jnp.where(pick, jnp.abs(residual), jnp.nan))
    return jnp.where(jnp.any(pick), level, 0.0)


def _gaussian_1d(sigma: float):
    radius = max(1, int(3 * sigma + 0.5))
    d = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (d / sigma) ** 2)
    return k / jnp.sum(k)


def _blur(x, kernel):
    """Separable Gaussian blur of [H, W, C] with zeros outside the image."""
    r = kernel.shape[0] // 2
    h, w = x.shape[:2]
    xp = jnp.pad(x, ((r, r), (0, 0), (0, 0)))
    x = sum(kernel[i] * xp[i:i + h] for i in range(kernel.shape[0]))
    xp = jnp.pad(x, ((0, 0), (r, r), (0, 0)))
    return sum(kernel[i] * xp[:, i:i + w] for i in range(kernel.shape[0]))


def blur(image, mask, sigma: float = 8.0):
    """The removed pixels replaced by the Gaussian-weighted (sd ``sigma`` px) mean of the kept
    pixels around them (normalised convolution). [H, W, C] float32."""
    image = image.astype(jnp.float32)
    removed = jnp.asarray(mask, bool)[..., None].astype(jnp.float32)
    kept = 1.0 - removed
    kernel = _gaussian_1d(sigma)
    num, den = _blur(image * kept, kernel), _blur(kept, kernel)
    local = num / jnp.maximum(den, 1e-12)
    return kept * image + removed * jnp.where(den > 1e-12, local, jnp.mean(image))


INFILLS = {"noisy_linear": noisy_linear, "blur": blur}


def infill(name: str, image, mask, key=None, noise: float = NOISE, match: bool = False):
    """``name`` ("noisy_linear", with ``noise`` or ``match``, or "blur") applied to one image,
    [H, W, C], and the solve's residual (0 for the blur)."""
    if name not in INFILLS:
        raise ValueError(f"infill must be one of {', '.join(INFILLS)}, got {name!r}")
    if name == "noisy_linear":
        return imputation(image, mask, key, noise, match)
    return blur(image, mask), jnp.zeros((), jnp.float32)
