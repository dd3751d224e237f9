"""Occlusion (Zeiler & Fergus) as PAIR computes it, every patch position batched on the device."""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from saljax.saliency import infill


def positions(h: int, w: int, size: int, stride: int) -> tuple[int, int]:
    """Number of window positions along each axis (windows lie fully inside the image)."""
    if size > min(h, w):
        raise ValueError(f"occlusion window of {size} px does not fit {h}x{w} images")
    return (h - size) // stride + 1, (w - size) // stride + 1


def occluded(image, k, *, size: int, stride: int, value: float, n_cols: int,
             fill: str = "constant"):
    """The image with window k (row-major over positions) set to ``value``, or with
    ``fill="blur"`` replaced in distribution by its surroundings' local mean
    (:func:`saljax.saliency.infill.blur`, sd ``size`` / 2). [H, W, C]."""
    row, col = (k // n_cols) * stride, (k % n_cols) * stride
    yy = jnp.arange(image.shape[0])[:, None]
    xx = jnp.arange(image.shape[1])[None, :]
    inside = (yy >= row) & (yy < row + size) & (xx >= col) & (xx < col + size)
    if fill == "blur":
        return infill.blur(image, inside, sigma=size / 2)
    return jnp.where(inside[..., None], jnp.asarray(value, image.dtype), image)


def scores_to_map(drops, shape, *, size: int, stride: int):
    """Sum each window's score drop over the pixels it covers: [B, nH, nW] -> [B, H, W]."""
    b, nh, nw = drops.shape
    h, w = shape
    grid = jnp.zeros((b, h - size + 1, w - size + 1), jnp.float32)
    grid = grid.at[:, ::stride, ::stride].set(drops)
    return lax.reduce_window(grid, 0.0, lax.add, (1, size, size), (1, 1, 1),
                             ((0, 0), (size - 1, size - 1), (size - 1, size - 1)))
