"""The study's baselines: the random-pair SSIM pass line and the average mask."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from saljax.metrics.similarity import ssim


@functools.partial(jax.jit, static_argnames=("n_maps", "n_pairs", "per_image"))
def random_pairs(key, n_maps: int, n_pairs: int, per_image: bool = False):
    """Index pairs (i, j), i != j: ``n_pairs`` uniform over ordered pairs, or with
    ``per_image`` ``n_pairs`` for every i (j uniform over the others; the study's 50 per image).
    [n_pairs or n_maps * n_pairs, 2] int32."""
    if n_maps < 2:
        raise ValueError(f"random pairs need at least 2 maps, got {n_maps}")
    ki, kj = jax.random.split(key)
    if per_image:
        i = jnp.repeat(jnp.arange(n_maps, dtype=jnp.int32), n_pairs)
    else:
        i = jax.random.randint(ki, (n_pairs,), 0, n_maps)
    j = (i + jax.random.randint(kj, i.shape, 1, n_maps)) % n_maps
    return jnp.stack([i, j], axis=-1)


@functools.partial(jax.jit, static_argnames=("n_pairs", "data_range", "per_image", "win_size",
                                             "gaussian_weights", "sigma",
                                             "use_sample_covariance", "k1", "k2"))
def random_pair_ssim(maps, key, n_pairs: int, *, data_range, per_image: bool = False,
                     **ssim_kwargs):
    """SSIM between maps of *different* images of one model: the study's pass line.

    ``maps`` [N, H, W]; returns the SSIM of every pair of :func:`random_pairs` (their mean is
    the pass line; a method whose randomized-model maps stay above it is insensitive to the
    randomization).
    """
    pairs = random_pairs(key, maps.shape[0], n_pairs, per_image)
    return ssim(maps[pairs[:, 0]], maps[pairs[:, 1]], data_range=data_range, **ssim_kwargs)


@jax.jit
def average_mask(masks):
    """The average-mask baseline: each pixel's frequency of being abnormal. [..., N, H, W] ->
    [..., H, W] float32."""
    return jnp.mean(jnp.asarray(masks, jnp.float32), axis=-3)
