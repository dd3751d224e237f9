"""BatchNorm folded into the conv before it, for inference: fewer ops per pass, same function.

An inference BatchNorm right after a bias-free conv is a per-channel affine map,
``y = conv(x, W) * inv + (beta - mean * inv)`` with ``inv = gamma / sqrt(var + eps)``, which is
one conv with kernel ``W * inv`` (scaled along the output channels) and bias
``beta - mean * inv``. Models list the (conv, BatchNorm) sibling names they can fold in
``bn_folds`` ({conv name: (its BatchNorm's name, epsilon)}); ``model.clone(fold_bn=True)``
builds the folded network, whose convs with a bias say which pairs fold.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import traverse_util

from saljax.models.init import variable_shapes


def fold_batchnorm(model, variables):
    """``(folded_model, folded_variables)``: ``model`` with ``fold_bn=True`` and ``variables``
    (``{"params", "batch_stats"}``) with every foldable BatchNorm merged into its conv.

    The folded model computes the same logits (to float rounding) and the same gradients with
    respect to its input and its named blocks, so every saliency method runs on it unchanged. It
    is inference-only, and its variables are not for training, randomization or checkpoints.
    Jittable (e.g. once per randomization setting).
    """
    folds = getattr(model, "bn_folds", None)
    if folds is None:
        raise TypeError(f"{type(model).__name__} has no foldable BatchNorms (no bn_folds)")
    if getattr(model, "fold_bn", False):
        raise ValueError("the model is already folded (fold_bn=True)")
    if set(variables) != {"params", "batch_stats"}:
        raise ValueError("fold_batchnorm needs {'params', 'batch_stats'} variables, got "
                         f"{sorted(variables)}")
    out_model = model.clone(fold_bn=True)
    want = _shapes(variable_shapes(out_model))
    params = traverse_util.flatten_dict(variables["params"])
    stats = traverse_util.flatten_dict(variables["batch_stats"])
    # the convs that have a bias in the folded network but not here take their BatchNorm in
    for path in [p for p in want["params"] if p[-1] == "bias" and p[-2] in folds]:
        prefix, conv = path[:-2], path[-2]
        bn, eps = folds[conv]
        if path in params or prefix + (bn, "mean") not in stats:
            continue
        inv = jax.lax.rsqrt(stats.pop(prefix + (bn, "var")) + eps)
        if prefix + (bn, "scale") in params:
            inv = inv * params.pop(prefix + (bn, "scale"))
        kernel = params[prefix + (conv, "kernel")]
        params[prefix + (conv, "kernel")] = (kernel * inv).astype(kernel.dtype)
        params[path] = params.pop(prefix + (bn, "bias")) - stats.pop(prefix + (bn, "mean")) * inv
    out = {"params": traverse_util.unflatten_dict(params)}
    if stats:
        out["batch_stats"] = traverse_util.unflatten_dict(stats)
    got = _shapes(out)
    if got != want:
        diff = lambda a, b: sorted("/".join(p) for p in set(a) - set(b))[:3]
        raise ValueError(f"variables do not fit {type(model).__name__} (another architecture or "
                         f"width?): after folding, missing {diff(want['params'], got['params'])}, "
                         f"unexpected {diff(got['params'], want['params'])}")
    return out_model, out


def _shapes(tree) -> dict:
    return {k: {p: tuple(jnp.shape(v)) for p, v in traverse_util.flatten_dict(t).items()}
            for k, t in tree.items()}
