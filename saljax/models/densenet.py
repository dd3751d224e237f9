"""DenseNet-121/169/201 in Flax Linen, layer for layer as ``keras.applications.DenseNet*``.

Keras's layer ``conv2_block1_1_conv`` is the Flax path ``conv2/block1/1_conv``; BatchNorm eps is
1.001e-5, momentum 0.99. Named blocks (top-level submodules, tapped at their output): ``conv1``
(stem conv, BN, ReLU), the dense blocks ``conv2 .. conv5``, the transitions ``pool2 .. pool4``, the
final BatchNorm + ReLU ``bn`` and ``logits``. Dense blocks are the unit, like Inception's mixed
blocks: each ends in a concatenation of everything it computed (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from saljax.models.layers import (Activation, Head, Layers, channels, check_foldable,
                                  check_images, tap)

EPS = 1.001e-5
MIN_SIZE = 32
BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32),
          "densenet201": (6, 12, 48, 32)}


class Stem(nn.Module):
    """``conv1``: zero-pad 3, 7x7/2 conv, BN, ReLU (then, outside the block, pad 1 + 3x3/2 max)."""
    features: int = 64
    layers: Layers = Layers()

    @nn.compact
    def __call__(self, x, train=False):
        x = self.layers.conv_bn(self.features, 7, 2, ((3, 3), (3, 3)), train=train)(x)
        return tap(self, self.layers.act(x))


class DenseLayer(nn.Module):
    """Keras ``conv_block``: BN-ReLU-1x1 conv (4 x growth), BN-ReLU-3x3 conv (growth), concat.
    The first BatchNorm comes before its conv (pre-activation), the second right after one."""
    growth: int = 32
    layers: Layers = Layers()

    @nn.compact
    def __call__(self, x, train=False):
        lay = self.layers
        y = lay.conv_bn(4 * self.growth, 1, train=train, conv_name="1_conv", bn_name="1_bn")(
            lay.act(lay.norm("0_bn")(x, train)))
        y = lay.conv(self.growth, 3, name="2_conv")(lay.act(y))
        return jnp.concatenate([x, y], axis=-1)


class DenseBlock(nn.Module):
    """``conv2 .. conv5``: ``n_layers`` dense layers named ``block1 ..``."""
    n_layers: int = 6
    growth: int = 32
    layers: Layers = Layers()

    @nn.compact
    def __call__(self, x, train=False):
        for i in range(self.n_layers):
            x = DenseLayer(self.growth, self.layers, name=f"block{i + 1}")(x, train)
        return tap(self, x)


class Transition(nn.Module):
    """``pool2 .. pool4``: BN, ReLU, 1x1 conv halving the channels, 2x2/2 average pool."""
    layers: Layers = Layers()

    @nn.compact
    def __call__(self, x, train=False):
        lay = self.layers
        x = lay.act(lay.norm("bn")(x, train))
        x = lay.conv(int(x.shape[-1] * 0.5), 1, name="conv")(x)
        return tap(self, nn.avg_pool(x, (2, 2), (2, 2), padding="VALID"))


class FinalNorm(nn.Module):
    """``bn``: the BatchNorm + ReLU after the last dense block (the usual GradCAM target)."""
    layers: Layers = Layers()

    @nn.compact
    def __call__(self, x, train=False):
        return tap(self, self.layers.act(self.layers.norm("norm")(x, train)))


class DenseNet(nn.Module):
    """DenseNet classifier: NHWC float images (>= 32 px, 3 channels) -> float32 logits.

    ``blocks`` holds the dense layers per block (121: 6, 12, 24, 16); ``width`` scales the growth
    rate and the stem; ``act`` replaces every ReLU; ``dtype`` is the compute dtype;
    ``bn_momentum`` is BatchNorm's running-statistics momentum in training (Keras's 0.99);
    ``fold_bn``: the BatchNorms that directly follow a conv (the stem's and each dense layer's
    ``1_bn``, 59 of DenseNet121's 121) folded into it, inference only (variables from
    :func:`saljax.models.fold_batchnorm`). The others come before their ReLU and conv
    (pre-activation) and normalise concatenations, so there is no conv to fold them into.
    """
    blocks: Sequence[int] = BLOCKS["densenet121"]
    num_classes: int = 2
    width: float = 1.0
    act: Activation = nn.relu
    dtype: jnp.dtype = jnp.float32
    bn_momentum: float = 0.99
    fold_bn: bool = False

    default_cam_block = "bn"
    min_size = MIN_SIZE
    keras_explicit_names = True        # conv2_block1_1_conv, as the Flax paths
    bn_folds = {"conv": ("bn", EPS), "1_conv": ("1_bn", EPS)}

    @property
    def name_in_registry(self):
        return {v: k for k, v in BLOCKS.items()}.get(tuple(self.blocks), "densenet")

    @property
    def keras_imagenet_notop(self):
        """Keras's file name for the ImageNet weights without the classifier."""
        return f"{self.name_in_registry}_weights_tf_dim_ordering_tf_kernels_notop.h5"

    @property
    def keras_application(self):
        """``DenseNet121`` etc. (None for a block layout Keras does not build)."""
        name = self.name_in_registry
        return f"DenseNet{name[len('densenet'):]}" if name in BLOCKS else None

    @staticmethod
    def block_names():
        return ("logits", "bn", "conv5", "pool4", "conv4", "pool3", "conv3", "pool2", "conv2",
                "conv1")

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_images(x, self.name_in_registry, MIN_SIZE)
        check_foldable(self.fold_bn, train, self.name_in_registry)
        layers = Layers(act=self.act, dtype=self.dtype, bn_epsilon=EPS,
                        bn_momentum=self.bn_momentum, fold_bn=self.fold_bn)
        growth = channels(32, self.width)
        x = Stem(channels(64, self.width), layers, name="conv1")(x.astype(self.dtype), train)
        x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        x = nn.max_pool(x, (3, 3), (2, 2), padding="VALID")
        for i, n in enumerate(self.blocks):
            x = DenseBlock(n, growth, layers, name=f"conv{i + 2}")(x, train)
            if i < len(self.blocks) - 1:
                x = Transition(layers, name=f"pool{i + 2}")(x, train)
        x = FinalNorm(layers, name="bn")(x, train)
        return Head(self.num_classes, self.dtype, name="logits")(x)
