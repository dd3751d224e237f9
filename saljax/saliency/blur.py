"""Blur IG's path (Xu et al., 2020): Gaussian blurs of an image with a traced sigma, as
``scipy.ndimage.gaussian_filter`` computes them, and their sigma-slopes without cancellation."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def blur_sigmas(max_sigma: float, steps: int, sqrt: bool = False) -> np.ndarray:
    """Blur IG's sigmas ``i * max_sigma / steps`` (or their square roots), i = 0..steps."""
    s = np.arange(steps + 1, dtype=np.float64) * max_sigma / steps
    return np.sqrt(s) if sqrt else s


def max_radius(max_sigma: float, truncate: float = 4.0) -> int:
    """The widest kernel radius any sigma <= ``max_sigma`` uses (static, for shapes)."""
    return int(truncate * max_sigma + 0.5)


def _kernel_terms(sigma, d, truncate):
    """exp(-d^2 / 2 sigma^2) on the window |d| <= int(truncate * sigma + 0.5), else 0."""
    safe = jnp.where(sigma > 0, sigma, 1.0)
    inside = jnp.abs(d) <= jnp.floor(truncate * sigma + 0.5)
    return jnp.where(inside, jnp.exp(-0.5 * (d / safe) ** 2), 0.0), inside


def _offsets(n: int):
    return jnp.arange(n, dtype=jnp.float32)[None, :] - jnp.arange(n, dtype=jnp.float32)[:, None]


def blur_matrix(sigma, n: int, radius_cap: int, truncate: float = 4.0):
    """[n, n] Gaussian blur along one axis, as ``scipy.ndimage.gaussian_filter1d`` with
    ``mode="constant"`` (zeros outside): weights exp(-d^2 / 2 sigma^2) for |d| <= int(truncate *
    sigma + 0.5), normalised over that whole window, which may be wider than the image.
    ``sigma`` may be traced (at most the sigma behind ``radius_cap``); 0 is the identity."""
    sigma = jnp.asarray(sigma, jnp.float32)
    window = jnp.arange(-radius_cap, radius_cap + 1, dtype=jnp.float32)
    total = jnp.sum(_kernel_terms(sigma, window, truncate)[0])
    return jnp.where(sigma > 0, _kernel_terms(sigma, _offsets(n), truncate)[0] / total,
                     jnp.eye(n, dtype=jnp.float32))


def blur_matrix_step(sigma, step, n: int, radius_cap: int, truncate: float = 4.0):
    """``blur_matrix(sigma + step) - blur_matrix(sigma)`` without cancellation (sigma > 0).

    Subtracting two nearly equal float32 matrices loses about as many digits as ``step`` is
    small; here each weight's change is ``e * expm1(da)`` with ``da`` formed analytically, and
    the normaliser's change is a sum of terms of one sign.
    """
    sigma = jnp.asarray(sigma, jnp.float32)
    s2 = sigma + step

    def parts(d):
        e1, in1 = _kernel_terms(sigma, d, truncate)
        e2, in2 = _kernel_terms(s2, d, truncate)
        # e2 = e1 * exp(da), da = d^2/2 (1/s^2 - 1/s2^2) = d^2 step (2 s + step) / (2 s^2 s2^2) >= 0
        da = d * d * step * (2 * sigma + step) / (2 * sigma ** 2 * s2 ** 2)
        full = jnp.exp(-0.5 * (d / s2) ** 2)
        change = jnp.where(in1, e1 * jnp.expm1(da), jnp.where(in2, full, 0.0))
        return e1, e2, change

    window = jnp.arange(-radius_cap, radius_cap + 1, dtype=jnp.float32)
    _, _, dz = parts(window)
    z1 = jnp.sum(_kernel_terms(sigma, window, truncate)[0])
    z2 = z1 + jnp.sum(dz)
    e1, _, de = parts(_offsets(n))
    # e2 / z2 - e1 / z1 = (de * z1 - e1 * dz) / (z1 * z2)
    return (de * z1 - e1 * jnp.sum(dz)) / (z1 * z2)


def gaussian_blur(image, sigma, radius_cap: int):
    """Blur an [H, W, C] image spatially with ``blur_matrix`` (channels untouched)."""
    h, w = image.shape[:2]
    return jnp.einsum("ij,jkc,lk->ilc", blur_matrix(sigma, h, radius_cap), image,
                      blur_matrix(sigma, w, radius_cap))


def gaussian_blur_slope(image, sigma, step, radius_cap: int):
    """``(gaussian_blur(image, sigma + step) - gaussian_blur(image, sigma)) / step``, computed
    as (dA) X B2^T + A1 X (dB)^T so that no two nearly equal images are subtracted."""
    h, w = image.shape[:2]
    a1, b1 = blur_matrix(sigma, h, radius_cap), blur_matrix(sigma, w, radius_cap)
    b2 = blur_matrix(sigma + step, w, radius_cap)
    if_sigma = sigma > 0
    da = jnp.where(if_sigma, blur_matrix_step(sigma, step, h, radius_cap),
                   blur_matrix(step, h, radius_cap) - a1)
    db = jnp.where(if_sigma, blur_matrix_step(sigma, step, w, radius_cap),
                   blur_matrix(step, w, radius_cap) - b1)
    out = (jnp.einsum("ij,jkc,lk->ilc", da, image, b2)
           + jnp.einsum("ij,jkc,lk->ilc", a1, image, db))
    return out / step
