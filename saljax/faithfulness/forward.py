"""The model's logits of many images in fixed-size chunks: one compiled forward program per
model and image size serves reliance, ROAD and every batch size they produce."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

CHUNK = 16   # images per forward call


@functools.partial(jax.jit, static_argnames="model")
def _logits(model, variables, images):
    return model.apply(variables, images)


def logits(model, variables, images, chunk: int = CHUNK):
    """[N, classes] float32 logits of ``images`` [N, H, W, C], ``chunk`` at a time (the last
    chunk padded, so every call has one shape)."""
    n = images.shape[0]
    x = jnp.pad(images, ((0, -n % chunk),) + ((0, 0),) * (images.ndim - 1))
    return jnp.concatenate([_logits(model, variables, x[s:s + chunk])
                            for s in range(0, x.shape[0], chunk)])[:n]
