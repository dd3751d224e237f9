"""Read activations at named blocks and differentiate with respect to them.

Every named block records its output under ``intermediates/<block>/out`` and adds the variable
``taps/<block>/out`` when one is supplied. Supplying zeros leaves the forward pass unchanged and
makes ``d f(logits) / d activation`` the gradient with respect to those zeros: one forward pass plus
a backward pass that stops at the deepest requested block. Works under ``jit`` and ``vmap``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from saljax.models.layers import TAP
from saljax.models.registry import block_names


def _check(model, blocks: Sequence[str]) -> tuple[str, ...]:
    blocks = (blocks,) if isinstance(blocks, str) else tuple(blocks)
    known = block_names(model)
    for b in blocks:
        if b not in known:
            raise ValueError(f"unknown block {b!r} for {model.name_in_registry}; "
                             f"named blocks are {', '.join(known)}")
    return blocks


def _variables(variables, taps=None):
    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    if taps is not None:
        v["taps"] = {b: {TAP: t} for b, t in taps.items()}
    return v


def block_activations(model, variables, images, blocks: Sequence[str]):
    """Logits [B, K] and ``{block: activation [B, h, w, c]}`` in one inference forward pass."""
    blocks = _check(model, blocks)
    logits, state = model.apply(_variables(variables), images, mutable=["intermediates"])
    return logits, {b: state["intermediates"][b][TAP] for b in blocks}


def tapped_forward(model, variables, images, blocks: Sequence[str]):
    """``(forward, zeros)`` for differentiating at named blocks.

    ``forward(images, taps) -> (logits, {block: activation})`` adds ``taps`` (one array per
    block, shaped like its activation) at the blocks; ``zeros`` are taps that change nothing.
    ``jax.vjp(forward, images, zeros, has_aux=True)`` then gives gradients with respect to the
    images and the block activations from one forward and one backward pass.
    """
    blocks = _check(model, blocks)
    shapes = jax.eval_shape(lambda x: block_activations(model, variables, x, blocks)[1], images)
    zeros = {b: jnp.zeros(s.shape, s.dtype) for b, s in shapes.items()}

    def forward(x, taps):
        logits, state = model.apply(_variables(variables, taps), x, mutable=["intermediates"])
        return logits, {b: state["intermediates"][b][TAP] for b in blocks}

    return forward, zeros


def block_gradients(model, variables, images, blocks: Sequence[str],
                    objective: Callable[[jnp.ndarray], jnp.ndarray]):
    """Gradient of ``objective(logits)`` (a scalar) with respect to each block's activation.

    Returns ``(logits, activations, gradients)``; the two dicts map block name to [B, h, w, c].
    For a per-image quantity, sum it over the batch in ``objective``: images do not interact in
    inference mode, so each image's gradient is its own.
    """
    forward, zeros = tapped_forward(model, variables, images, blocks)

    def f(taps):
        logits, acts = forward(images, taps)
        return objective(logits), (logits, acts)

    (_, (logits, acts)), grads = jax.value_and_grad(f, has_aux=True)(zeros)
    return logits, acts, grads
