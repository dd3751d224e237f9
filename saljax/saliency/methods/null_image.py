"""Null map: the image itself (its gray level, (x + 1) / 2 of the channel mean), [B, H, W].

A control, not an explanation: it ignores the model, so a criterion it passes cannot tell a
method that follows the model from one that does not (Adebayo et al. 2018's edge-detector
argument)."""
import jax.numpy as jnp

from saljax.saliency.method import Method

METHOD = Method(
    name="null_image",
    hparams={},
    finish=lambda passes, hp: (jnp.mean(passes.images, axis=-1) + 1.0) / 2.0,
    spatial=True,
)
