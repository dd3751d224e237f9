"""From stored uint8 grayscale images to model inputs, on the device.

The study's preprocessing: grayscale repeated to 3 channels and scaled to [-1, 1]; or, as an
option, ImageNet's per-channel mean and standard deviation.
"""
from __future__ import annotations

import jax.numpy as jnp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


SCALINGS = ("symmetric", "imagenet")     # how uint8 pixels become model inputs


def to_model_input(images, scaling: str = "symmetric"):
    """uint8 [..., H, W, 1] -> float32 [..., H, W, 3].

    ``"symmetric"``: x / 127.5 - 1, in [-1, 1] (the study's). ``"imagenet"``: (x / 255 - mean)
    / std per channel.
    """
    x = jnp.asarray(images).astype(jnp.float32)
    if x.shape[-1] != 1:
        raise ValueError(f"expected grayscale images [..., H, W, 1], got shape {x.shape}")
    return from_symmetric(jnp.repeat(x, 3, axis=-1) / 127.5 - 1.0, scaling)


def from_symmetric(x, scaling: str):
    """Inputs scaled to [-1, 1], float32 [..., H, W, 3], in ``scaling`` (the same pixels)."""
    if scaling == "symmetric":
        return x
    if scaling == "imagenet":
        return ((x + 1.0) / 2.0 - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
    raise ValueError(f"scaling must be 'symmetric' or 'imagenet', got {scaling!r}")
