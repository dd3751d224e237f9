"""A small Flax U-Net: the study's segmentation baseline for localization and agreement.

``UNet(width=w)`` maps NHWC images [B, H, W, 3] to per-pixel lesion logits [B, H, W] (float32).
Three resolutions of two 3x3 conv + BatchNorm + ReLU each, max-pool down, upsample with skip
connections (nearest-neighbour upsampling then a 2x2 conv); the sides are padded to a multiple
of 8 and cropped back, so any size >= 16 px works. Channels are ``16 * width`` at the top,
doubling per level.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from saljax.models.layers import Layers, channels, check_images


class _Stage(nn.Module):
    """Two 3x3 conv + BatchNorm + ReLU."""
    features: int
    layers: Layers

    @nn.compact
    def __call__(self, x, train):
        for i in range(2):
            x = self.layers.conv_bn(self.features, 3, train=train, conv_name=f"conv{i}",
                                    bn_name=f"bn{i}")(x)
            x = self.layers.act(x)
        return x


class UNet(nn.Module):
    width: float = 1.0
    num_classes: int = 1          # output channels; the study uses one (lesion vs background)
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32

    name_in_registry = "unet"
    min_size = 16
    depth = 3

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_images(x, "UNet", self.min_size)
        h, w = x.shape[1:3]
        m = 1 << self.depth
        x = jnp.pad(x, ((0, 0), (0, -h % m), (0, -w % m), (0, 0)), mode="edge")
        x = x.astype(self.dtype)
        layers = Layers(dtype=self.dtype, bn_momentum=self.bn_momentum)
        skips = []
        for level in range(self.depth):
            x = _Stage(channels(16 * 2 ** level, self.width), layers, name=f"down{level}")(
                x, train)
            skips.append(x)
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = _Stage(channels(16 * 2 ** self.depth, self.width), layers, name="bottom")(x, train)
        for level in reversed(range(self.depth)):
            f = channels(16 * 2 ** level, self.width)
            x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)     # nearest-neighbour x2
            x = layers.conv(f, 2, name=f"up{level}", bias=True)(x)
            x = jnp.concatenate([x, skips[level]], axis=-1)
            x = _Stage(f, layers, name=f"merge{level}")(x, train)
        x = layers.conv(self.num_classes, 1, name="head", bias=True)(x)
        x = x[:, :h, :w].astype(jnp.float32)
        return x[..., 0] if self.num_classes == 1 else x
