"""Class activation maps from a block's activation A and gradient dY/dA: GradCAM, GradCAM++.

Both return [B, H, W] float32: ReLU of the weighted channel sum, divided by its maximum (when
positive) and resized bilinearly to the input size, as PAIR's ``GradCam`` does: with
scikit-image's half-pixel resize (``resize="skimage"``, PAIR 0.2) or TF1's
``tf.image.resize_bilinear`` (``resize="tf1"``, PAIR 0.0.5, which the study used).
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np


@functools.lru_cache(maxsize=64)
def _linear_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of ``skimage.transform.resize(order=1)`` along one axis.

    Half-pixel centres (input coordinate ``(o + 0.5) * n_in / n_out - 0.5``) and skimage's default
    ``mode="reflect"`` (mirror about the edge pixels); upsampling, so no anti-aliasing.
    """
    m = np.zeros((n_out, n_in), np.float64)
    coord = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    lo = np.floor(coord).astype(int)
    frac = coord - lo

    def mirror(i):
        if n_in == 1:
            return np.zeros_like(i)
        period = 2 * (n_in - 1)
        i = np.abs(i) % period
        return np.where(i >= n_in, period - i, i)

    rows = np.arange(n_out)
    np.add.at(m, (rows, mirror(lo)), 1 - frac)
    np.add.at(m, (rows, mirror(lo + 1)), frac)
    return m


@functools.lru_cache(maxsize=64)
def _tf1_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of TF1's ``resize_bilinear`` (``align_corners=False``, no half-pixel
    centres): output o samples input coordinate ``o * n_in / n_out``, the upper neighbour clamped
    to the last pixel."""
    m = np.zeros((n_out, n_in), np.float64)
    coord = np.arange(n_out) * n_in / n_out
    lo = np.floor(coord).astype(int)
    frac = coord - lo
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1 - frac)
    np.add.at(m, (rows, np.minimum(lo + 1, n_in - 1)), frac)
    return m


RESIZES = {"skimage": _linear_resize_matrix, "tf1": _tf1_resize_matrix}


def resize_bilinear(maps, size, method: str = "skimage"):
    """[B, h, w] -> [B, H, W], bilinear: skimage's (half-pixel) or TF1's legacy resize (two small
    matrix products)."""
    h, w = maps.shape[1:]
    matrix = RESIZES[method]
    rh = jnp.asarray(matrix(h, size[0]), jnp.float32)
    rw = jnp.asarray(matrix(w, size[1]), jnp.float32)
    return jnp.einsum("oh,bhw,pw->bop", rh, maps, rw)


def _normalize_and_resize(cam, size, resize):
    cam = jnp.maximum(cam, 0.0)
    peak = jnp.max(cam, axis=(1, 2), keepdims=True)
    cam = jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1.0), cam)
    return resize_bilinear(cam, size, resize)


def gradcam(activation, gradient, size, resize: str = "skimage"):
    """GradCAM (Selvaraju et al.): channel weights = spatial mean of the gradient."""
    a, g = activation.astype(jnp.float32), gradient.astype(jnp.float32)
    weights = jnp.mean(g, axis=(1, 2), keepdims=True)
    return _normalize_and_resize(jnp.sum(weights * a, axis=-1), size, resize)


def gradcam_plus_plus(activation, gradient, size, resize: str = "skimage"):
    """GradCAM++ (Chattopadhay et al., 2018), closed form for an exponentiated score:
    alpha = g^2 / (2 g^2 + sum_ij(A) g^3), weights = sum_ij alpha relu(g)."""
    a, g = activation.astype(jnp.float32), gradient.astype(jnp.float32)
    g2, g3 = g * g, g * g * g
    denom = 2 * g2 + jnp.sum(a, axis=(1, 2), keepdims=True) * g3
    alpha = jnp.where(denom != 0, g2 / jnp.where(denom != 0, denom, 1.0), 0.0)
    weights = jnp.sum(alpha * jnp.maximum(g, 0), axis=(1, 2), keepdims=True)
    return _normalize_and_resize(jnp.sum(weights * a, axis=-1), size, resize)
