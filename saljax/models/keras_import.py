"""Import weights from Keras (2 or 3) into the Flax models, matched by network structure.

Sources: a Keras model object, a ``.keras`` archive, a legacy whole-model ``.h5`` (Keras 2's
``ModelCheckpoint`` layout, also written by Keras 3's ``model.save("x.h5")``), a Keras 2
weights-only ``.h5`` (e.g. the ImageNet ``..._notop.h5`` files) or a Keras 3 ``.weights.h5``.

Keras 2 and Keras 3 number auto-named layers differently (``conv2d_1`` vs ``conv2d``), and Keras 3
archives key weights by class and position (``conv2d_7`` is the 8th ``Conv2D`` of
``model.layers``, whatever the layer was called), so layers are matched by their place in the
network, never by those names:

* where the source carries the model graph (model object, ``.keras``, whole-model ``.h5``), the
  weighted layers are ordered by a depth-first walk from the output that visits each layer's
  inputs in order; for ``keras.applications`` this is the order in which Keras created them, the
  order in which the Flax modules call theirs;
* a Keras 2 weights-only ``.h5`` keeps real layer names: auto-named layers (``conv2d_7``) are
  ordered by their creation counter, whatever its offset, and DenseNet's explicitly named layers
  (``conv2_block1_1_conv``; Keras 2's ``conv1/conv``) are found by name;
* a Keras 3 ``.weights.h5`` holds neither graph nor names, only positions in ``model.layers``; as
  Keras itself does, saljax rebuilds the ``keras.applications`` architecture (this one format
  needs ``keras`` installed) and loads the file into it.

Every layer's kind and shape are checked; a source for another architecture, or with a missing or
mis-shaped layer, is an error naming the layer.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from saljax.models.init import init, variable_shapes
from saljax.models.keras_read import KerasImportError, KerasLayer, read_source
from saljax.models.layers import BatchNorm, Head
from saljax.models.registry import create

KIND_NAME = {"conv": "Conv2D", "bn": "BatchNormalization", "dense": "Dense"}
AUTO_PREFIX = {"conv": "conv2d", "bn": "batch_normalization", "dense": "dense"}

__all__ = ["from_keras", "flax_slots", "imagenet_weights", "KerasImportError"]


@dataclass
class FlaxSlot:
    path: tuple          # module path in the params tree, e.g. ("mixed0", "branch1x1", "conv")
    kind: str
    keras_name: str      # Keras's name for the layer where Keras names it explicitly, else ""
    shapes: dict         # leaf name -> shape in params / batch_stats


# ----------------------------------------------------------------------------- the Flax side
def _keras_name(path: tuple) -> str:
    """Keras's explicit name for a DenseNet layer: conv2/block1/1_conv -> conv2_block1_1_conv."""
    if path == ("logits",):
        return "predictions"
    if path == ("bn", "norm"):
        return "bn"
    return "_".join(path)


def flax_slots(model) -> list[FlaxSlot]:
    """The model's weighted layers in the order they are called, with kinds and parameter shapes.

    The order is recorded while tracing ``init`` (parameter dicts are key-sorted by JAX, so their
    order says nothing); the Flax modules call their layers in the order Keras creates them.
    """
    kinds = ((BatchNorm, "bn"), (nn.Conv, "conv"), (Head, "dense"))
    called: list[tuple[tuple, str]] = []

    def record(next_fun, args, kwargs, context):
        if context.method_name == "__call__":
            for cls, kind in kinds:
                if isinstance(context.module, cls) and context.module.path not in dict(called):
                    called.append((context.module.path, kind))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        shapes = variable_shapes(model)
    params = traverse_util.flatten_dict(shapes["params"])
    stats = traverse_util.flatten_dict(shapes["batch_stats"])
    explicit = model.keras_explicit_names
    slots = []
    for path, kind in called:
        leaves = {k[-1]: v.shape for k, v in {**params, **stats}.items() if k[:-1] == path}
        name = _keras_name(path) if explicit or path == ("logits",) else ""
        slots.append(FlaxSlot(path, kind, name, leaves))
    return slots


# ----------------------------------------------------------------------------- matching
def _counter(name: str, kind: str) -> int | None:
    m = re.fullmatch(re.escape(AUTO_PREFIX[kind]) + r"(?:_(\d+))?", name)
    return None if m is None else int(m.group(1) or 0)


def _order_by_names(layers, slots, arch) -> list[KerasLayer | None]:
    """For weights-only sources: explicit names first, auto-named layers by creation counter."""
    by_norm = {l.name.replace("/", "_"): l for l in layers}
    auto = {k: sorted((l for l in layers if l.kind == k and _counter(l.name, k) is not None),
                      key=lambda l: _counter(l.name, k)) for k in KIND_NAME}
    out, used = [], set()
    for s in slots:
        if s.keras_name and s.keras_name in by_norm:
            layer = by_norm[s.keras_name]
        elif s.keras_name and s.kind != "dense":
            raise KerasImportError(f"the source has no layer {s.keras_name!r}, which {arch} "
                                   f"needs at {'/'.join(s.path)}")
        elif auto[s.kind]:
            layer = auto[s.kind].pop(0)
        else:
            layer = None
        if layer is not None:
            used.add(layer.name)
        out.append(layer)
    extra = [l.name for l in layers if l.name not in used]
    if extra:
        raise KerasImportError(f"the source has layers {arch} does not: {extra[:5]}"
                               f"{' ...' if len(extra) > 5 else ''}")
    return out


def _order_by_graph(layers, slots, arch) -> list[KerasLayer | None]:
    for kind in KIND_NAME:
        have = sum(l.kind == kind for l in layers)
        want = sum(s.kind == kind for s in slots)
        if have != want and not (kind == "dense" and have == 0):
            raise KerasImportError(
                f"the source has {have} {KIND_NAME[kind]} layers where {arch} has {want}: "
                "it was saved from another architecture")
    queues = {k: [l for l in layers if l.kind == k] for k in KIND_NAME}
    return [queues[s.kind].pop(0) if queues[s.kind] else None for s in slots]


def _assign(slot: FlaxSlot, layer: KerasLayer, arch) -> dict:
    """Keras weights -> {leaf: array} for one Flax module, with every shape checked."""
    where = f"Keras layer {layer.name!r} ({KIND_NAME[layer.kind]}) -> {arch} {'/'.join(slot.path)}"
    if layer.kind != slot.kind:
        raise KerasImportError(f"{where}: a {KIND_NAME[slot.kind]} was expected")
    ws = layer.weights
    if slot.kind == "conv":
        leaves = ["kernel"] + (["bias"] if "bias" in slot.shapes else [])
    elif slot.kind == "dense":
        leaves = ["kernel", "bias"]
    else:
        leaves = (["scale"] if "scale" in slot.shapes else []) + ["bias", "mean", "var"]
    if len(ws) != len(leaves):
        raise KerasImportError(f"{where}: has {len(ws)} weights, expected {len(leaves)} "
                               f"({', '.join(leaves)})")
    out = {}
    for leaf, w in zip(leaves, ws):
        if tuple(w.shape) != tuple(slot.shapes[leaf]):
            raise KerasImportError(f"{where}: {leaf} has shape {tuple(w.shape)}, expected "
                                   f"{tuple(slot.shapes[leaf])}")
        if not np.all(np.isfinite(w)):
            raise KerasImportError(f"{where}: {leaf} holds NaN or infinite values")
        out[leaf] = jnp.asarray(w, jnp.float32)
    return out


def keras_cache() -> str:
    """Where Keras caches downloaded files: ``$KERAS_HOME``, else ``~/.keras``."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def imagenet_weights(name: str, width: float = 1.0) -> str:
    """The ImageNet weights (no classifier) of architecture ``name`` where Keras caches them,
    ``<keras cache>/models/<Keras's file name>``; nothing is downloaded. A clear error names the
    file and where to put it when it is missing."""
    model = create(name)
    if width != 1.0:
        raise ValueError(f"ImageNet weights exist for the published {name} only (width 1.0), "
                         f"not width {width:g}")
    fname = getattr(model, "keras_imagenet_notop", None)
    if fname is None:
        raise ValueError(f"{name} has no Keras ImageNet weights")
    path = os.path.join(keras_cache(), "models", fname)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"ImageNet weights for {name}: no file {path}. saljax downloads nothing: on a machine "
            f"with network, keras.applications.{model.keras_application}(weights='imagenet', "
            f"include_top=False) saves it there; copy it to {path} (or set KERAS_HOME), or give "
            "the file's path as train.init_from")
    return path


def from_keras(name: str, source, *, num_classes: int = 2, key=None) -> dict:
    """Flax variables ``{"params", "batch_stats"}`` for ``create(name)`` from a Keras source.

    A source without a classifier (an ImageNet ``notop`` file) needs ``key``, from which the
    ``logits`` layer is freshly initialised; its Dense layer otherwise must have ``num_classes``
    outputs.
    """
    model = create(name, num_classes=num_classes)
    slots = flax_slots(model)
    layers, from_graph = read_source(source, model)
    order = (_order_by_graph if from_graph else _order_by_names)(layers, slots, name)
    params, stats = {}, {}
    for slot, layer in zip(slots, order):
        if layer is None:
            if slot.kind == "dense" and key is not None:
                continue
            raise KerasImportError(
                f"the source has no {KIND_NAME[slot.kind]} layer for {name} {'/'.join(slot.path)}"
                + ("; for a notop source pass key= to initialise the head"
                   if slot.kind == "dense" else ""))
        for leaf, w in _assign(slot, layer, name).items():
            (stats if leaf in ("mean", "var") else params)[slot.path + (leaf,)] = w
    variables = {"params": traverse_util.unflatten_dict(params),
                 "batch_stats": traverse_util.unflatten_dict(stats)}
    if "logits" not in variables["params"]:
        variables["params"]["logits"] = init(model, key)["params"]["logits"]
    return variables
