"""Primitives every method is built from: targets, one gradient pass, chunked sums over passes.

A *pass* is one forward plus one backward pass of the model on one input image. Methods that
need many passes per map (SmoothGrad, IG, XRAI, Blur IG) describe the k-th input of map i and a
per-pass transform; :func:`sum_over_passes` runs all items x passes through the model in chunks
of at most ``max_batch`` inputs (one ``lax.scan`` step per chunk, or no loop at all when one chunk
holds everything) and sums the transformed gradients per item, so memory stays bounded by the
chunk whatever the number of passes.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from saljax.models import tapped_forward

DEFAULT_MAX_BATCH = 64


def logits_fn(model, variables):
    """images -> float32 logits, inference mode."""
    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    return lambda images: model.apply(v, images)


def predicted(model, variables, images):
    """The predicted class of each image (one forward pass): [B] int32."""
    return jnp.argmax(logits_fn(model, variables)(images), axis=-1).astype(jnp.int32)


def gradient_pass(model, variables, images, targets=None, blocks=(), wrt_input=True):
    """One pass: d logit[target] / d (image and named-block activations).

    ``targets=None`` explains the predicted class, read from the same forward pass (the backward
    pass starts from a one-hot cotangent chosen after the forward). With ``wrt_input=False`` the
    backward pass stops at the deepest block. Returns ``(logits, targets, input_grads [B, H, W, C]
    or None, {block: (activation, gradient)})``.
    """
    forward, zeros = tapped_forward(model, variables, images, tuple(blocks))
    if wrt_input:
        logits, vjp, acts = jax.vjp(forward, images, zeros, has_aux=True)
    else:
        logits, vjp, acts = jax.vjp(lambda taps: forward(images, taps), zeros, has_aux=True)
    if targets is None:
        targets = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    grads = vjp(jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype))
    grad_x, grad_taps = grads if wrt_input else (None, grads[0])
    return logits, targets, grad_x, {b: (acts[b], grad_taps[b]) for b in acts}


def input_gradient(model, variables):
    """(images [N, H, W, C], targets [N]) -> d logit[target] / d image, float32 [N, H, W, C]."""
    def grad(images, targets):
        return gradient_pass(model, variables, images, targets)[2].astype(jnp.float32)
    return grad


def plan_chunks(total: int, max_batch: int) -> tuple[int, int]:
    """(number of chunks, chunk size) covering ``total`` inputs with the least padding."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    n = math.ceil(total / max_batch)
    return n, math.ceil(total / n)


def sum_over_passes(grad: Callable, targets, n_items: int, n_passes: int,
                    make_input: Callable, transform: Callable, item_shape, max_batch: int):
    """For every item i: ``sum_k transform(grad(make_input(i, k), targets[i]), i, k)``.

    ``make_input(i, k)`` is the k-th model input of item i ([H, W, C]); ``transform(g, i, k)``
    maps its gradient to an ``item_shape`` contribution. Returns [n_items, *item_shape] float32.
    """
    total = n_items * n_passes
    n_chunks, size = plan_chunks(total, max_batch)

    def chunk(c):
        idx = c * size + jnp.arange(size)
        valid = idx < total
        idx = jnp.minimum(idx, total - 1)
        item, k = idx // n_passes, idx % n_passes
        g = grad(jax.vmap(make_input)(item, k), targets[item])
        contrib = jax.vmap(transform)(g, item, k)
        contrib = jnp.where(valid.reshape((-1,) + (1,) * len(item_shape)), contrib, 0.0)
        return jnp.zeros((n_items,) + tuple(item_shape), jnp.float32).at[item].add(contrib)

    if n_chunks == 1:
        return chunk(0)
    return lax.scan(lambda acc, c: (acc + chunk(c), None),
                    jnp.zeros((n_items,) + tuple(item_shape), jnp.float32),
                    jnp.arange(n_chunks))[0]


def map_over_passes(fn: Callable, n_items: int, n_passes: int, make_input: Callable,
                    max_batch: int):
    """``fn(inputs [N, H, W, C], items [N]) -> [N]`` over all items x passes, in chunks.

    Returns [n_items, n_passes] (e.g. the target logit of every occluded copy of every image).
    """
    total = n_items * n_passes
    n_chunks, size = plan_chunks(total, max_batch)

    def chunk(c):
        idx = jnp.minimum(c * size + jnp.arange(size), total - 1)
        item, k = idx // n_passes, idx % n_passes
        return fn(jax.vmap(make_input)(item, k), item)

    out = chunk(0) if n_chunks == 1 else lax.map(chunk, jnp.arange(n_chunks)).reshape(-1)
    return out[:total].reshape(n_items, n_passes)
