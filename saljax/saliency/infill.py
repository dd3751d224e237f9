"""Removing image regions in distribution: pixels are replaced by what their surroundings
predict, never by a constant (a constant patch is itself out of distribution).

* :func:`noisy_linear` is ROAD's noisy linear imputation (Rong et al., ICML 2022): every removed
  pixel is the weighted mean of its 8 neighbours (1/6 for the 4 direct ones, 1/12 for the
  diagonal ones, renormalised at the border), a sparse linear system solved here matrix-free by
  conjugate gradients under ``jit``/``vmap``, then Gaussian noise of sd ``noise`` is added to the
  removed pixels;
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


def noisy_linear(image, mask, key=None, noise: float = 0.01, tol: float = 1e-6,
                 maxiter: int = 2000):
    """ROAD's noisy linear imputation of the pixels where ``mask`` is set. [H, W, C] float32.

    Solves ``s_p x_p - sum_{q removed} w_pq x_q = sum_{q kept} w_pq image_q`` for the removed
    pixels p (``s_p``: the weights of p's in-image neighbours), i.e. each removed pixel is the
    weighted mean of its neighbours, kept or imputed. With ``key``, noise of sd ``noise`` is
    added to the imputed pixels.
    """
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
    out = kept * image + removed * solution
    if key is not None and noise > 0:
        out = out + removed * noise * jax.random.normal(key, image.shape, jnp.float32)
    return out


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


def infill(name: str, image, mask, key=None):
    """``name`` ("noisy_linear" or "blur") applied to one image: [H, W, C]."""
    if name not in INFILLS:
        raise ValueError(f"infill must be one of {', '.join(INFILLS)}, got {name!r}")
    return noisy_linear(image, mask, key) if name == "noisy_linear" else blur(image, mask)
