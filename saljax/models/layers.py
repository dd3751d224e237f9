"""Shared building blocks: :class:`Layers` (how a network builds its convs, BatchNorms and
activations, configured once and passed to every block), Keras's BatchNorm arithmetic, the
study's head, a tap for named blocks, input checks.

A *tap* marks the output of a named block. It records the activation in the ``intermediates``
collection (when that collection is mutable) and adds an optional zero-valued ``taps`` variable, so
the gradient of any function of the logits with respect to the block's activation is the gradient
with respect to that variable (see :mod:`saljax.models.taps`). Without a ``taps`` collection the
tap is the identity and costs nothing.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

Activation = Callable[[jnp.ndarray], jnp.ndarray]

# keras.layers.Conv2D / Dense defaults, so freshly initialised models match Keras's statistics.
kernel_init = nn.initializers.glorot_uniform()
bias_init = nn.initializers.zeros

TAP = "out"  # variable name of a block's tap inside that block's scope


def tap(module: nn.Module, x):
    """Record ``x`` as ``module``'s block output and add its perturbation if one was supplied."""
    module.sow("intermediates", TAP, x, init_fn=lambda: None, reduce_fn=lambda _, new: new)
    if module.has_variable("taps", TAP):
        x = x + module.get_variable("taps", TAP).astype(x.dtype)
    return x


def channels(c: int, width: float) -> int:
    """Channel count of a conv scaled by ``width`` (1.0 is the published architecture)."""
    return max(1, int(round(c * width)))


def check_images(x, name: str, min_size: int) -> None:
    """A clear error for images that are not NHWC with 3 channels and ``min_size`` px."""
    if x.ndim != 4:
        raise ValueError(f"{name} expects NHWC images of rank 4, got shape {tuple(x.shape)}")
    if x.shape[-1] != 3:
        raise ValueError(f"{name} expects 3 channels (grayscale repeated to RGB), "
                         f"got {x.shape[-1]} in shape {tuple(x.shape)}")
    if min(x.shape[1], x.shape[2]) < min_size:
        raise ValueError(f"{name} needs images of at least {min_size}x{min_size} pixels, "
                         f"got {x.shape[1]}x{x.shape[2]}")


class BatchNorm(nn.Module):
    """BatchNorm with Keras's arithmetic, so imported models match ``keras.applications`` bitwise.

    Inference: ``y = x * inv + (beta - mean * inv)`` with ``inv = gamma * rsqrt(var + eps)``, in
    float32 whatever the compute dtype (as Keras does), cast back to ``dtype``. This is also the
    form that folds into the preceding conv. Training normalises with the batch's biased moments
    and moves the running statistics by ``momentum`` (Keras's convention). Variables have Flax's
    names: params ``scale`` (when ``use_scale``) and ``bias``, batch_stats ``mean`` and ``var``.
    """
    epsilon: float = 1e-3
    momentum: float = 0.99
    use_scale: bool = True
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        c = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        scale = (self.param("scale", nn.initializers.ones, (c,), jnp.float32)
                 if self.use_scale else None)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        x = x.astype(jnp.float32)
        if train:
            axes = tuple(range(x.ndim - 1))
            mean, var = jnp.mean(x, axes), jnp.var(x, axes)
            if not self.is_initializing():
                m = self.momentum
                ra_mean.value = ra_mean.value * m + mean * (1.0 - m)
                ra_var.value = ra_var.value * m + var * (1.0 - m)
        else:
            mean, var = ra_mean.value, ra_var.value
        inv = lax.rsqrt(var + self.epsilon)
        if scale is not None:
            inv = inv * scale
        return (x * inv + (-mean * inv + bias)).astype(self.dtype)


def check_foldable(fold_bn: bool, train: bool, name: str) -> None:
    if fold_bn and train:
        raise ValueError(f"{name} with folded BatchNorm (fold_bn=True) is inference-only: it has "
                         "no running statistics to train; train the unfolded model")


class Head(nn.Module):
    """The study's classifier head: global average pooling and a Dense layer to the logits.

    [B, h, w, C] -> [B, num_classes] float32 pre-softmax logits; a named block (``logits``).
    """
    num_classes: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        kernel = self.param("kernel", kernel_init, (x.shape[-1], self.num_classes), jnp.float32)
        bias = self.param("bias", bias_init, (self.num_classes,), jnp.float32)
        y = jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype)) + bias.astype(self.dtype)
        return tap(self, y.astype(jnp.float32))


def _pair(k):
    return (k, k) if isinstance(k, int) else tuple(k)


@dataclasses.dataclass(frozen=True)
class Layers:
    """How a network builds its layers, configured once by the model and passed to each block
    (as flax's ``examples/imagenet`` passes ``conv`` and ``norm``).

    ``act`` is every ReLU (replaced for Guided Backprop); ``dtype`` the compute dtype (parameters
    stay float32); BatchNorms have ``bn_epsilon``, ``bn_momentum`` and a scale when ``bn_scale``;
    with ``fold_bn`` a conv and the BatchNorm right after it are one conv with a bias
    (:func:`saljax.models.fold_batchnorm`, inference only). The methods create submodules of the
    calling module: call them inside its compact method.
    """
    act: Activation = nn.relu
    dtype: Any = jnp.float32
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.99
    bn_scale: bool = True
    fold_bn: bool = False

    def conv(self, features: int, kernel, strides=1, padding="SAME", *, name: str,
             bias: bool = False) -> nn.Conv:
        return nn.Conv(features, _pair(kernel), _pair(strides), padding=padding, use_bias=bias,
                       dtype=self.dtype, kernel_init=kernel_init, name=name)

    def norm(self, name: str) -> "BatchNorm":
        """A BatchNorm; call it as ``norm(name)(x, train)``."""
        return BatchNorm(epsilon=self.bn_epsilon, momentum=self.bn_momentum,
                         use_scale=self.bn_scale, dtype=self.dtype, name=name)

    def conv_bn(self, features: int, kernel, strides=1, padding="SAME", *, train: bool,
                conv_name: str = "conv", bn_name: str = "bn"):
        """A bias-free conv and the BatchNorm after it (submodules ``conv_name``, ``bn_name``),
        or with ``fold_bn`` the single conv with bias ``conv_name``: ``x -> y``."""
        conv = self.conv(features, kernel, strides, padding, name=conv_name, bias=self.fold_bn)
        if self.fold_bn:
            return conv
        bn = self.norm(bn_name)
        return lambda x: bn(conv(x), train)
