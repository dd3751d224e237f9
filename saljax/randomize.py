"""Model-parameter randomization (Adebayo et al., 2018), as the study's sanity check ran it.

``cascading(model, variables, key, level)`` re-draws the top ``level`` named blocks (from
``saljax.models.block_names``: level 0 is the trained model, ``len(block_names)`` every block);
``independent(model, variables, key, index)`` re-draws only block ``index``. ``level`` and
``index`` may be traced, so ``jax.vmap`` over levels (and over keys, for repeated draws) yields
every randomized model of a sweep in one compiled call. A block's random values depend only on
the key, so level k+1 is level k with one more block re-drawn.

Modes: ``"reinit"`` draws every kernel from its own initializer (Glorot-uniform, as Keras) and
sets biases to their initial 0; ``"permute"`` shuffles each conv/dense kernel's entries (keeping
its value distribution) and keeps biases.

BatchNorm is a choice that changes the verdict (Binder et al., CVPR 2023), so it is explicit:

* ``bn="reinit"`` (default): the block's BatchNorm layers are re-initialised like the rest of
  it: scale 1, shift 0, running mean 0, running variance 1 (what Quantus does: BN becomes the
  identity);
* ``bn="keep"``: BatchNorm scale, shift and running statistics stay trained; only conv / dense
  weights are randomized;
* ``bn="keep_stats"``: scale and shift re-initialised, running statistics kept.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import traverse_util

from saljax.models import block_names
from saljax.models.init import fresh_like

MODES = ("reinit", "permute")
BN_POLICIES = ("reinit", "keep", "keep_stats")


def _check(mode, bn):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if bn not in BN_POLICIES:
        raise ValueError(f"bn must be one of {BN_POLICIES}, got {bn!r}")


def randomized(model, variables, key, *, mode: str = "reinit", bn: str = "reinit"):
    """Every block of ``variables`` randomized by ``mode``, BatchNorm handled by ``bn``."""
    _check(mode, bn)
    variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    flat = traverse_util.flatten_dict(variables)
    bn_modules = {k[1:-1] for k in flat if k[0] == "batch_stats"}
    shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
    fresh = traverse_util.flatten_dict(fresh_like(shapes, key))
    out = {}
    for i, (path, value) in enumerate(flat.items()):
        collection, module, leaf = path[0], path[1:-1], path[-1]
        if collection == "batch_stats" or module in bn_modules:
            is_stat = collection == "batch_stats"
            keep = bn == "keep" or (bn == "keep_stats" and is_stat)
            out[path] = value if keep else fresh[path]
        elif mode == "reinit":
            out[path] = fresh[path]
        elif leaf == "kernel":  # permute
            perm = jax.random.permutation(jax.random.fold_in(key, i), value.size)
            out[path] = value.reshape(-1)[perm].reshape(value.shape)
        else:
            out[path] = value
    return traverse_util.unflatten_dict(out)


def _select(model, variables, random, chosen):
    """Per top-level block b: ``random[b]`` where ``chosen(index of b)`` else the trained one."""
    names = block_names(model)
    out = {}
    for collection in ("params", "batch_stats"):
        if collection not in variables:
            continue
        tree = {}
        for block, value in variables[collection].items():
            if block not in names:
                raise ValueError(f"{collection} has a top-level entry {block!r} that is not a "
                                 f"named block of {model.name_in_registry}")
            pick = chosen(names.index(block))
            tree[block] = jax.tree.map(lambda r, t: jnp.where(pick, r, t),
                                       random[collection][block], value)
        out[collection] = tree
    return out


def span(model, variables, key, start, stop, *, mode: str = "reinit", bn: str = "reinit"):
    """Blocks ``start <= i < stop`` (in ``block_names`` order) re-drawn: both sweeps in one
    function, so one compiled program serves every cascading and independent setting."""
    random = randomized(model, variables, key, mode=mode, bn=bn)
    start, stop = jnp.asarray(start), jnp.asarray(stop)
    return _select(model, variables, random, lambda i: (i >= start) & (i < stop))


def cascading(model, variables, key, level, *, mode: str = "reinit", bn: str = "reinit"):
    """The top ``level`` blocks re-drawn (0: trained model; ``len(block_names)``: all)."""
    return span(model, variables, key, 0, level, mode=mode, bn=bn)


def independent(model, variables, key, index, *, mode: str = "reinit", bn: str = "reinit"):
    """Only block ``index`` (in ``block_names`` order, 0 = logits) re-drawn."""
    index = jnp.asarray(index)
    return span(model, variables, key, index, index + 1, mode=mode, bn=bn)
