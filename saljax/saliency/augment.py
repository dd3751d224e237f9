"""Augmentations around the gradient, composed as in ExplainableAI.jl (``SmoothGrad =
NoiseAugmentation(Gradient)``): a plan describes a stream of model passes and how to finish it.

* :class:`Gradient`: one pass per item, its input gradient;
* :class:`Path`: Integrated Gradients: the gradient along a straight path from a baseline,
  times the path's length;
* :class:`Noise`: SmoothGrad: ``nsamples`` noisy copies of each image around any inner plan,
  finishing to the moments (mean, mean square) of the inner maps over the samples.

So SmoothGrad is ``Noise(Gradient())``, IG is ``Path(steps, baseline)`` and SmoothGrad-IG is
``Noise(Path(steps, baseline))``. Plans are frozen dataclasses: two methods asking for equal plans
(SmoothGrad and VarGrad with the same noise) share one stream. Every input is a pure function of
(item, pass index), so the chunked engine generates inputs inside each chunk.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from saljax.saliency.streams import Stream


# ----------------------------------------------------------------------------- items
@dataclasses.dataclass(frozen=True)
class Items:
    """What a plan explains: ``n`` inputs, item i's input ``x(i)`` [H, W, C] and the index of the
    image it explains (whose target it takes); ``array`` holds all inputs when they exist as one."""
    n: int
    x: Callable
    image: Callable
    array: Any = None

    def all(self):
        """Every item's input, [n, H, W, C]."""
        return self.array if self.array is not None else jax.vmap(self.x)(jnp.arange(self.n))


def images_of(images) -> Items:
    """The images [B, H, W, C] themselves, one item each."""
    return Items(images.shape[0], lambda i: images[i], lambda i: i, images)


# ----------------------------------------------------------------------------- noise
def noise_scale(images, stdev_spread: float):
    """PAIR's noise sd per image: ``stdev_spread * (max - min)`` of that image. [B]."""
    return stdev_spread * (jnp.max(images, axis=(1, 2, 3)) - jnp.min(images, axis=(1, 2, 3)))


def noise_sample(key, images, scale, i, k, offset=0):
    """The k-th noise tensor of image i: ``scale[i] * N(0, 1)`` from
    ``fold_in(fold_in(key, offset + i), k)``, ``offset`` being the batch's position in a larger
    batch split over devices.

    Depends only on (key, global image index, k), never on chunking or on devices. [H, W, C].
    """
    sub = jax.random.fold_in(jax.random.fold_in(key, offset + i), k)
    return scale[i] * jax.random.normal(sub, images.shape[1:], jnp.float32)


def smoothgrad_noise(key, images, nsamples: int, stdev_spread: float = 0.15):
    """Every noise tensor SmoothGrad adds, [B, nsamples, H, W, C] (for tests and inspection)."""
    scale = noise_scale(images, stdev_spread)
    i, k = jnp.meshgrid(jnp.arange(images.shape[0]), jnp.arange(nsamples), indexing="ij")
    f = jax.vmap(jax.vmap(lambda i, k: noise_sample(key, images, scale, i, k)))
    return f(i, k)


class Moments(NamedTuple):
    """Per image, over the noise samples: the mean and the mean square of the inner maps."""
    mean: Any
    mean_square: Any


# ----------------------------------------------------------------------------- plans
@dataclasses.dataclass(frozen=True)
class Gradient:
    """The input gradient of each item: one pass."""

    def passes_per_item(self) -> int:
        return 1

    def stream(self, items: Items, ctx):
        stream = Stream(items.n, 1, lambda i, k: items.x(i), image=items.image)
        return stream, lambda sums: sums[:, 0]


def baseline_array(baseline, images):
    """A scalar, [H, W, C] or [B, H, W, C] baseline broadcast to ``images``' shape."""
    b = jnp.asarray(baseline, jnp.float32)
    if b.ndim not in (0, 3, 4) or jnp.broadcast_shapes(b.shape, images.shape) != images.shape:
        raise ValueError(f"baseline of shape {b.shape} does not fit images of shape "
                         f"{images.shape}: give a scalar, [H, W, C] or [B, H, W, C]")
    return jnp.broadcast_to(b, images.shape)


def path_alphas(steps: int):
    """PAIR's IG path: ``linspace(0, 1, steps)``, both endpoints included."""
    return jnp.linspace(0.0, 1.0, steps, dtype=jnp.float32)


def path_stream(items: Items, base_of: Callable, bases, steps: int):
    """PAIR's straight-path IG of every item from its baseline ``base_of(i)`` (all of them:
    ``bases`` [n, H, W, C]): the stream and its finish, sums -> [n, H, W, C] attributions."""
    alphas = path_alphas(steps)
    stream = Stream(items.n, steps,
                    lambda i, k: base_of(i) + alphas[k] * (items.x(i) - base_of(i)),
                    image=items.image)
    return stream, lambda sums: sums[:, 0] * (items.all() - bases) / steps


@dataclasses.dataclass(frozen=True)
class Path:
    """Integrated Gradients along ``steps`` points of the straight path from ``baseline`` (a
    scalar, [H, W, C] or [B, H, W, C] per image) to each item: [n, H, W, C]."""
    steps: int
    baseline: Any = 0.0

    def passes_per_item(self) -> int:
        return self.steps

    def stream(self, items: Items, ctx):
        base = baseline_array(self.baseline, ctx.images)
        bases = base if items.array is ctx.images else base[
            jax.vmap(items.image)(jnp.arange(items.n))]
        return path_stream(items, lambda i: base[items.image(i)], bases, self.steps)


@dataclasses.dataclass(frozen=True)
class Noise:
    """SmoothGrad's augmentation around ``inner``: ``nsamples`` copies of each image with PAIR's
    Gaussian noise (sd ``stdev_spread`` x the image's range), finishing to :class:`Moments` of
    the inner maps over the samples.

    A one-pass inner (the gradient) keeps running sums of its map and its square per image (two
    rows of memory per image); a multi-pass inner (IG) keeps one map per (image, sample) until
    its sums are done (B x nsamples rows: bound the batch for many samples).
    """
    inner: Any
    nsamples: int
    stdev_spread: float = 0.15

    def passes_per_item(self) -> int:
        return self.nsamples * self.inner.passes_per_item()

    def stream(self, items: Items, ctx):
        n, key, offset = self.nsamples, ctx.key, ctx.offset
        scale = noise_scale(ctx.images, self.stdev_spread)

        def noise(i, k):
            return noise_sample(key, ctx.images, scale, i, k, offset)

        if self.inner.passes_per_item() == 1:
            inner, _ = self.inner.stream(items, ctx)

            def moments(g, i, k):
                m = inner.transform(g, i, 0)[0]
                return jnp.stack([m, m * m])

            stream = Stream(items.n, n, lambda i, k: inner.make_input(i, 0) + noise(i, k),
                            moments, rows=2, image=inner.image)
            return stream, lambda sums: Moments(sums[:, 0] / n, sums[:, 1] / n)
        noisy = Items(items.n * n, lambda j: items.x(j // n) + noise(j // n, j % n),
                      lambda j: items.image(j // n))
        stream, finish = self.inner.stream(noisy, ctx)

        def done(sums):
            m = finish(sums)
            shape = (items.n, n) + m.shape[1:]
            return Moments(m.reshape(shape).mean(axis=1), (m * m).reshape(shape).mean(axis=1))
        return stream, done
