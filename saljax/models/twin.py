"""The shifted-input twin of a classifier (Kindermans et al. 2017, "The (Un)reliability of
saliency methods"): a model that takes ``x + shift`` and computes what the original computes
from ``x``, because its first layer absorbs the shift. The first named block (the stem's first
conv) must not pad its input: a zero-padded border would see the shift. Its conv bias, or else
its BatchNorm's running mean, takes ``shift * sum(kernel)`` per output channel.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from saljax.models.registry import block_names


def shifted_input_twin(model, variables, shift: float, probe=None, tolerance: float = 1e-2):
    """``variables`` of the twin: ``model.apply(twin, x + shift) == model.apply(variables, x)``.

    With ``probe`` (model inputs [B, H, W, C]) the equality is checked on them: a model whose
    first layer pads its input (DenseNet's zero padding) has no exact twin and raises
    ValueError, as does one whose first block has neither a conv bias nor BatchNorm
    statistics."""
    first = block_names(model)[-1]
    params, stats = variables["params"], variables.get("batch_stats", {})
    conv = params.get(first, {}).get("conv", params.get(first, {}))
    if "kernel" not in conv:
        raise ValueError(f"{model.name_in_registry}: the first block {first!r} has no conv kernel")
    absorbed = shift * jnp.sum(conv["kernel"], axis=tuple(range(conv["kernel"].ndim - 1)))
    twin = jax.tree.map(lambda a: a, dict(variables))
    if "bias" in conv:
        twin["params"] = _replace(params, (first, "conv", "bias") if "conv" in params[first]
                                  else (first, "bias"), conv["bias"] - absorbed)
    elif first in stats and "mean" in stats[first].get("bn", {}):
        twin["batch_stats"] = _replace(stats, (first, "bn", "mean"),
                                       stats[first]["bn"]["mean"] + absorbed)
    else:
        raise ValueError(f"{model.name_in_registry}: the first block {first!r} has neither a "
                         "conv bias nor BatchNorm statistics to absorb an input shift")
    if probe is not None:
        probe = jnp.asarray(probe, jnp.float32)
        a = model.apply(_inference(variables), probe)
        b = model.apply(_inference(twin), probe + shift)
        gap = float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-6))
        if not gap <= tolerance:
            raise ValueError(f"{model.name_in_registry} has no exact shifted-input twin: its "
                             f"logits differ by {gap:.2g} (relative) on shifted inputs; its "
                             "first layer pads the input (or does more than a linear map)")
    return twin


def _inference(v):
    return {k: v[k] for k in ("params", "batch_stats") if k in v}


def _replace(tree, path, value):
    """A copy of the nested dict ``tree`` with ``path`` set to ``value``."""
    head, *rest = path
    out = dict(tree)
    out[head] = value if not rest else _replace(tree[head], rest, value)
    return out
