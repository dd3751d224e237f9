"""Input augmentations that methods wrap around the gradient (as in ExplainableAI.jl): noise for
SmoothGrad, straight paths for Integrated Gradients, blur paths for Blur IG.

Each gives the k-th model input of image i as a pure function of (i, k), so the chunked engine
can generate inputs inside the chunk instead of materialising all of them.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


# ----------------------------------------------------------------------------- SmoothGrad noise
def noise_scale(images, stdev_spread: float):
    """PAIR's noise sd per image: ``stdev_spread * (max - min)`` of that image. [B]."""
    return stdev_spread * (jnp.max(images, axis=(1, 2, 3)) - jnp.min(images, axis=(1, 2, 3)))


def noise_sample(key, images, scale, i, k, offset=0):
    """The k-th noise tensor of image i: ``scale[i] * N(0, 1)`` from
    ``fold_in(fold_in(key, offset + i), k)``, ``offset`` being the batch's position in a larger
    batch split over devices.

    Depends only on (key, global image index, k), never on chunking or on devices. [H, W, C].
    """
    sub = jax.random.fold_in(jax.random.fold_in(key, offset + i), k)
    return scale[i] * jax.random.normal(sub, images.shape[1:], jnp.float32)


def smoothgrad_noise(key, images, nsamples: int, stdev_spread: float = 0.15):
    """Every noise tensor SmoothGrad adds, [B, nsamples, H, W, C] (for tests and inspection)."""
    scale = noise_scale(images, stdev_spread)
    i, k = jnp.meshgrid(jnp.arange(images.shape[0]), jnp.arange(nsamples), indexing="ij")
    f = jax.vmap(jax.vmap(lambda i, k: noise_sample(key, images, scale, i, k)))
    return f(i, k)


# ----------------------------------------------------------------------------- straight paths
def baseline_array(baseline, images):
    """A scalar, [H, W, C] or [B, H, W, C] baseline broadcast to ``images``' shape."""
    b = jnp.asarray(baseline, jnp.float32)
    if b.ndim not in (0, 3, 4) or jnp.broadcast_shapes(b.shape, images.shape) != images.shape:
        raise ValueError(f"baseline of shape {b.shape} does not fit images of shape "
                         f"{images.shape}: give a scalar, [H, W, C] or [B, H, W, C]")
    return jnp.broadcast_to(b, images.shape)


def path_alphas(steps: int):
    """PAIR's IG path: ``linspace(0, 1, steps)``, both endpoints included."""
    return jnp.linspace(0.0, 1.0, steps, dtype=jnp.float32)


# ----------------------------------------------------------------------------- blur paths
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
