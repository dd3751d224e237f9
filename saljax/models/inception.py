"""InceptionV3 in Flax Linen, layer for layer as ``keras.applications.InceptionV3``.

Every conv is Keras's ``conv2d_bn``: a bias-free conv, BatchNorm without scale (eps 1e-3,
momentum 0.99) and a ReLU. Submodules are created in the order Keras creates its layers, which is
what weight import relies on. Named blocks (top-level submodules, tapped at their output):
``stem_1a_3x3 .. stem_4a_3x3``, ``mixed0 .. mixed10``, ``logits``.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from saljax.models.layers import (Activation, Head, Layers, channels, check_foldable,
                                  check_images, tap)

STEM = ("stem_1a_3x3", "stem_2a_3x3", "stem_2b_3x3", "stem_3b_1x1", "stem_4a_3x3")
MIXED = tuple(f"mixed{i}" for i in range(11))
MIN_SIZE = 75
EPS = 1e-3                      # BatchNorm epsilon (Keras's conv2d_bn)


class ConvBN(nn.Module):
    """Keras ``conv2d_bn``: conv (no bias) -> BatchNorm(scale=False, eps=1e-3) -> activation
    (or the conv with the BatchNorm folded in: ``layers.fold_bn``)."""
    features: int
    kernel: Sequence[int]
    strides: Sequence[int] = (1, 1)
    padding: str = "SAME"
    layers: Layers = Layers()

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = self.layers.conv_bn(self.features, self.kernel, self.strides, self.padding,
                                train=train)(x)
        return tap(self, self.layers.act(x))


def _pool_same(x):
    """3x3 stride-1 average pool with SAME padding that excludes the padding (as Keras)."""
    return nn.avg_pool(x, (3, 3), (1, 1), padding="SAME", count_include_pad=False)


def _max_pool(x):
    return nn.max_pool(x, (3, 3), (2, 2), padding="VALID")


class _Mixed(nn.Module):
    """Base for the mixed blocks: ``cbn`` makes a named :class:`ConvBN` of ``c`` published
    channels scaled by ``width``."""
    width: float = 1.0
    layers: Layers = Layers()

    def cbn(self, name, c, kernel, strides=(1, 1), padding="SAME"):
        return ConvBN(channels(c, self.width), kernel, strides, padding, self.layers, name=name)


class InceptionA(_Mixed):
    """mixed0-2 (35x35 at 299 px): 1x1, 5x5, double 3x3 and pool branches."""
    pool_features: int = 32

    @nn.compact
    def __call__(self, x, train=False):
        b1 = self.cbn("branch1x1", 64, (1, 1))(x, train)
        b5 = self.cbn("branch5x5_1", 48, (1, 1))(x, train)
        b5 = self.cbn("branch5x5_2", 64, (5, 5))(b5, train)
        b3 = self.cbn("branch3x3dbl_1", 64, (1, 1))(x, train)
        b3 = self.cbn("branch3x3dbl_2", 96, (3, 3))(b3, train)
        b3 = self.cbn("branch3x3dbl_3", 96, (3, 3))(b3, train)
        bp = self.cbn("branch_pool", self.pool_features, (1, 1))(_pool_same(x), train)
        return tap(self, jnp.concatenate([b1, b5, b3, bp], axis=-1))


class InceptionB(_Mixed):
    """mixed3: grid reduction 35 -> 17."""

    @nn.compact
    def __call__(self, x, train=False):
        b3 = self.cbn("branch3x3", 384, (3, 3), (2, 2), "VALID")(x, train)
        bd = self.cbn("branch3x3dbl_1", 64, (1, 1))(x, train)
        bd = self.cbn("branch3x3dbl_2", 96, (3, 3))(bd, train)
        bd = self.cbn("branch3x3dbl_3", 96, (3, 3), (2, 2), "VALID")(bd, train)
        return tap(self, jnp.concatenate([b3, bd, _max_pool(x)], axis=-1))


class InceptionC(_Mixed):
    """mixed4-7: factorised 7x7 branches with ``c7`` inner channels."""
    c7: int = 128

    @nn.compact
    def __call__(self, x, train=False):
        c7 = self.c7
        b1 = self.cbn("branch1x1", 192, (1, 1))(x, train)
        b7 = self.cbn("branch7x7_1", c7, (1, 1))(x, train)
        b7 = self.cbn("branch7x7_2", c7, (1, 7))(b7, train)
        b7 = self.cbn("branch7x7_3", 192, (7, 1))(b7, train)
        bd = self.cbn("branch7x7dbl_1", c7, (1, 1))(x, train)
        bd = self.cbn("branch7x7dbl_2", c7, (7, 1))(bd, train)
        bd = self.cbn("branch7x7dbl_3", c7, (1, 7))(bd, train)
        bd = self.cbn("branch7x7dbl_4", c7, (7, 1))(bd, train)
        bd = self.cbn("branch7x7dbl_5", 192, (1, 7))(bd, train)
        bp = self.cbn("branch_pool", 192, (1, 1))(_pool_same(x), train)
        return tap(self, jnp.concatenate([b1, b7, bd, bp], axis=-1))


class InceptionD(_Mixed):
    """mixed8: grid reduction 17 -> 8."""

    @nn.compact
    def __call__(self, x, train=False):
        b3 = self.cbn("branch3x3_1", 192, (1, 1))(x, train)
        b3 = self.cbn("branch3x3_2", 320, (3, 3), (2, 2), "VALID")(b3, train)
        b7 = self.cbn("branch7x7x3_1", 192, (1, 1))(x, train)
        b7 = self.cbn("branch7x7x3_2", 192, (1, 7))(b7, train)
        b7 = self.cbn("branch7x7x3_3", 192, (7, 1))(b7, train)
        b7 = self.cbn("branch7x7x3_4", 192, (3, 3), (2, 2), "VALID")(b7, train)
        return tap(self, jnp.concatenate([b3, b7, _max_pool(x)], axis=-1))


class InceptionE(_Mixed):
    """mixed9-10: expanded 3x3 branches split into 1x3 and 3x1."""

    @nn.compact
    def __call__(self, x, train=False):
        b1 = self.cbn("branch1x1", 320, (1, 1))(x, train)
        b3 = self.cbn("branch3x3_1", 384, (1, 1))(x, train)
        b3 = jnp.concatenate([self.cbn("branch3x3_2a", 384, (1, 3))(b3, train),
                              self.cbn("branch3x3_2b", 384, (3, 1))(b3, train)], axis=-1)
        bd = self.cbn("branch3x3dbl_1", 448, (1, 1))(x, train)
        bd = self.cbn("branch3x3dbl_2", 384, (3, 3))(bd, train)
        bd = jnp.concatenate([self.cbn("branch3x3dbl_3a", 384, (1, 3))(bd, train),
                              self.cbn("branch3x3dbl_3b", 384, (3, 1))(bd, train)], axis=-1)
        bp = self.cbn("branch_pool", 192, (1, 1))(_pool_same(x), train)
        return tap(self, jnp.concatenate([b1, b3, bd, bp], axis=-1))


class InceptionV3(nn.Module):
    """InceptionV3 classifier: NHWC float images (>= 75 px, 3 channels) -> float32 logits.

    ``width`` scales every conv's channels; ``act`` replaces every ReLU (e.g. a guided ReLU);
    ``dtype`` is the compute dtype (parameters stay float32); ``bn_momentum`` is BatchNorm's
    running-statistics momentum in training (Keras's 0.99); ``fold_bn``: every BatchNorm folded
    into its conv (inference only, variables from :func:`saljax.models.fold_batchnorm`).
    """
    num_classes: int = 2
    width: float = 1.0
    act: Activation = nn.relu
    dtype: jnp.dtype = jnp.float32
    bn_momentum: float = 0.99
    fold_bn: bool = False

    name_in_registry = "inception_v3"
    min_size = MIN_SIZE
    default_cam_block = "mixed10"
    keras_application = "InceptionV3"
    keras_imagenet_notop = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    keras_explicit_names = False       # Keras names its layers conv2d_<k>, batch_normalization_<k>
    bn_folds = {"conv": ("bn", EPS)}   # conv -> the BatchNorm after it, its epsilon

    @staticmethod
    def block_names():
        return ("logits",) + MIXED[::-1] + STEM[::-1]

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_images(x, "inception_v3", MIN_SIZE)
        check_foldable(self.fold_bn, train, "inception_v3")
        x = x.astype(self.dtype)
        layers = Layers(act=self.act, dtype=self.dtype, bn_epsilon=EPS,
                        bn_momentum=self.bn_momentum, bn_scale=False, fold_bn=self.fold_bn)
        cbn = lambda name, c, k, s=(1, 1), p="SAME": ConvBN(
            channels(c, self.width), k, s, p, layers, name=name)
        x = cbn(STEM[0], 32, (3, 3), (2, 2), "VALID")(x, train)
        x = cbn(STEM[1], 32, (3, 3), p="VALID")(x, train)
        x = cbn(STEM[2], 64, (3, 3))(x, train)
        x = _max_pool(x)
        x = cbn(STEM[3], 80, (1, 1), p="VALID")(x, train)
        x = cbn(STEM[4], 192, (3, 3), p="VALID")(x, train)
        x = _max_pool(x)
        mkw = dict(width=self.width, layers=layers)
        for i, pool_features in enumerate((32, 64, 64)):
            x = InceptionA(pool_features=pool_features, name=MIXED[i], **mkw)(x, train)
        x = InceptionB(name=MIXED[3], **mkw)(x, train)
        for i, c7 in zip(range(4, 8), (128, 160, 160, 192)):
            x = InceptionC(c7=c7, name=MIXED[i], **mkw)(x, train)
        x = InceptionD(name=MIXED[8], **mkw)(x, train)
        x = InceptionE(name=MIXED[9], **mkw)(x, train)
        x = InceptionE(name=MIXED[10], **mkw)(x, train)
        return Head(self.num_classes, self.dtype, name="logits")(x)
