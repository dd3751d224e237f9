"""Null map: a centred Gaussian blob, sd a quarter of the shorter side, the same for every
image and model, [B, H, W]. A control for criteria a centre bias alone can pass."""
import jax.numpy as jnp

from saljax.saliency.method import Method


def blob(batch: int, h: int, w: int):
    sd = min(h, w) / 4.0
    y = (jnp.arange(h) - (h - 1) / 2.0)[:, None]
    x = (jnp.arange(w) - (w - 1) / 2.0)[None, :]
    return jnp.broadcast_to(jnp.exp(-(x * x + y * y) / (2 * sd * sd)), (batch, h, w))


METHOD = Method(
    name="null_blob",
    hparams={},
    finish=lambda passes, hp: blob(*passes.images.shape[:3]),
    spatial=True,
)
