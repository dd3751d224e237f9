"""Fresh variables from one random draw: fast to compile, Keras's initial distributions.

``model.init`` traces the network and compiles one random kernel per parameter, which takes
30-60 s for InceptionV3 or DenseNet121 on a CPU. :func:`init` instead reads the variable shapes
with ``eval_shape`` (no compile) and fills every kernel from a single uniform draw, each scaled to
its Glorot-uniform limit ``sqrt(6 / (fan_in + fan_out))`` (Keras's ``Conv2D`` / ``Dense`` default,
also the models' own ``kernel_init``); biases and BatchNorm shifts are 0, BatchNorm scales 1,
running means 0 and running variances 1.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

CONSTANT = {"bias": 0.0, "scale": 1.0, "mean": 0.0, "var": 1.0}


def variable_shapes(model, size: int | None = None):
    """The model's variables as ``ShapeDtypeStruct`` leaves, traced at ``size`` px (no compile)."""
    size = size or model.min_size
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, 3)))


@functools.lru_cache(maxsize=32)
def _expected(model) -> dict:
    shapes = variable_shapes(model)
    return {jax.tree_util.keystr(k): tuple(v.shape) for k, v in
            jax.tree_util.tree_flatten_with_path({c: shapes[c] for c in ("params", "batch_stats")
                                                  if c in shapes})[0]}


def variables_mismatch(want: dict, have: dict) -> str | None:
    """What differs between two ``{path: shape}`` trees (None when they agree)."""
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if tuple(want[k]) != tuple(have[k]))
    if missing:
        return f"missing {missing[:3]}" + (f" (and {len(missing) - 3} more)" if len(missing) > 3
                                           else "")
    if extra:
        return f"unexpected {extra[:3]}" + (f" (and {len(extra) - 3} more)" if len(extra) > 3
                                            else "")
    if wrong:
        return f"{wrong[0]} has shape {tuple(have[wrong[0]])}, expected {tuple(want[wrong[0]])}"
    return None


def check_variables(model, variables) -> None:
    """A clear error when ``variables`` (``{"params", "batch_stats"}``) do not fit ``model``:
    another architecture, width or number of classes (instead of a Flax scope error)."""
    if not isinstance(variables, dict) or "params" not in variables:
        raise ValueError("variables must be a dict with 'params' (and 'batch_stats'), got "
                         f"{type(variables).__name__}")
    have = {jax.tree_util.keystr(k): tuple(np.shape(v)) for k, v in
            jax.tree_util.tree_flatten_with_path({c: variables[c] for c in ("params",
                                                  "batch_stats") if c in variables})[0]}
    problem = variables_mismatch(_expected(model), have)
    if problem:
        name = getattr(model, "name_in_registry", type(model).__name__)
        raise ValueError(f"variables do not fit {name} (width {getattr(model, 'width', '?')}): "
                         f"{problem}")


def glorot_limit(shape) -> float:
    """Glorot-uniform bound of a conv (HWIO) or dense (IO) kernel."""
    receptive = math.prod(shape[:-2])
    return math.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))


def _kernel_size(shapes) -> int:
    return sum(math.prod(leaf.shape) for k, leaf in traverse_util.flatten_dict(shapes).items()
               if k[-1] == "kernel")


def _fill(shapes, draw, xp):
    """Variables shaped like ``shapes``: kernels cut from ``draw`` (uniform in [-1, 1]) and scaled
    to their Glorot limits, constants elsewhere; ``xp`` is numpy (host) or jax.numpy (traced)."""
    out, offset = {}, 0
    for k, leaf in traverse_util.flatten_dict(shapes).items():
        if k[-1] == "kernel":
            n = math.prod(leaf.shape)
            limit = xp.float32(glorot_limit(leaf.shape))
            out[k] = draw[offset:offset + n].reshape(leaf.shape) * limit
            offset += n
        elif k[-1] in CONSTANT:
            out[k] = xp.full(leaf.shape, CONSTANT[k[-1]], leaf.dtype)
        else:
            raise ValueError(f"no initialiser for variable {'/'.join(k)}")
    return traverse_util.unflatten_dict(out)


@functools.partial(jax.jit, static_argnums=1)
def _uniform(key, n):
    return jax.random.uniform(key, (n,), jnp.float32, -1.0, 1.0)


def fresh_like(shapes, key):
    """A freshly initialised variables tree shaped like ``shapes``; traceable (jit, vmap)."""
    return _fill(shapes, _uniform(key, _kernel_size(shapes)), jnp)


def init(model, key, *, size: int | None = None):
    """Fresh ``{"params", "batch_stats"}`` for ``model``: one compiled random draw, sliced on the
    host. Equal to ``fresh_like(variable_shapes(model), key)``."""
    shapes = variable_shapes(model, size)
    draw = np.asarray(_uniform(key, _kernel_size(shapes)))
    return jax.tree.map(jnp.asarray, _fill(shapes, draw, np))
