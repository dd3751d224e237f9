"""Chunked sums over model passes: how every multi-pass method runs its passes.

A *pass* is one forward plus one backward pass of the model on one input image. Methods that
need many passes per map (SmoothGrad, IG, SmoothGrad-IG, XRAI, Blur IG) each describe a
:class:`Stream`: the k-th input of item i and a per-pass transform of its gradient.
:func:`sum_over_streams` runs the items x passes of every stream through the model together, in
chunks of at most ``max_batch`` inputs (one ``lax.scan`` step per chunk, or no loop at all when
one chunk holds everything), and sums the transformed gradients per item: memory stays bounded
by the chunk whatever the number of passes, and all multi-pass methods computed together share
one compiled gradient program.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DEFAULT_MAX_BATCH = 64


def plan_chunks(total: int, max_batch: int) -> tuple[int, int]:
    """(number of chunks, chunk size) covering ``total`` inputs with the least padding."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    n = math.ceil(total / max_batch)
    return n, math.ceil(total / n)


@dataclasses.dataclass(frozen=True)
class Stream:
    """The passes of one multi-pass computation (e.g. one IG map per image).

    Item i's k-th model input is ``make_input(i, k)`` ([H, W, C]), explained for the target of
    image ``image(i)``; its gradient adds ``transform(g, i, k)`` ([rows, H, W, C]) to item i's
    ``rows`` accumulator rows.
    """
    n_items: int
    n_passes: int
    make_input: Callable
    transform: Callable = lambda g, i, k: g[None]
    rows: int = 1
    image: Callable = lambda i: i


def sum_over_streams(grad: Callable, targets, streams, image_shape, max_batch: int) -> list:
    """For every stream s and item i: ``sum_k s.transform(grad(s.make_input(i, k)), i, k)``.

    All streams' passes go through the model together, ``max_batch`` inputs at a time (one
    ``lax.scan`` step per chunk, or no loop when one chunk holds them all), so several methods
    share one compiled gradient program and a chunk is never half empty between two methods.
    Returns one [n_items, rows, *image_shape] float32 array per stream.
    """
    streams = list(streams)
    counts = np.array([s.n_items * s.n_passes for s in streams])
    starts = np.concatenate([[0], np.cumsum(counts)])
    total = int(starts[-1])
    row_starts = np.concatenate([[0], np.cumsum([s.n_items * s.rows for s in streams])])
    n_rows, r_max = int(row_starts[-1]), max(s.rows for s in streams)
    n_chunks, size = plan_chunks(total, max_batch)
    first, passes = jnp.asarray(starts[:-1]), jnp.asarray([s.n_passes for s in streams])
    row0, rows = jnp.asarray(row_starts[:-1]), jnp.asarray([s.rows for s in streams])

    def inputs_of(s, i, k):
        return lax.switch(s, [lambda i, k, st=st: (st.make_input(i, k), st.image(i))
                              for st in streams], i, k)

    def contribution(s, g, i, k):
        def one(st):
            c = st.transform(g, i, k)
            return jnp.concatenate([c, jnp.zeros((r_max - st.rows,) + c.shape[1:], c.dtype)])
        return lax.switch(s, [lambda g, i, k, st=st: one(st) for st in streams], g, i, k)

    def chunk(c):
        idx = c * size + jnp.arange(size)
        valid = idx < total
        idx = jnp.minimum(idx, total - 1)
        s = jnp.searchsorted(jnp.asarray(starts[1:]), idx, side="right")
        local = idx - first[s]
        item, k = local // passes[s], local % passes[s]
        x, img = jax.vmap(inputs_of)(s, item, k)
        g = grad(x, targets[img])
        contrib = jax.vmap(contribution)(s, g, item, k)          # [size, r_max, H, W, C]
        r = jnp.arange(r_max)
        row = jnp.where(valid[:, None] & (r[None] < rows[s][:, None]),
                        row0[s][:, None] + item[:, None] * rows[s][:, None] + r[None], n_rows)
        return jnp.zeros((n_rows + 1,) + tuple(image_shape), jnp.float32).at[row].add(
            contrib.astype(jnp.float32))

    if n_chunks == 1:
        acc = chunk(0)
    else:
        acc = lax.scan(lambda acc, c: (acc + chunk(c), None),
                       jnp.zeros((n_rows + 1,) + tuple(image_shape), jnp.float32),
                       jnp.arange(n_chunks))[0]
    return [acc[row_starts[j]:row_starts[j + 1]].reshape((st.n_items, st.rows) + tuple(image_shape))
            for j, st in enumerate(streams)]


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
