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

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field

import h5py
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from saljax.models.init import init, variable_shapes
from saljax.models.layers import BatchNorm, Head
from saljax.models.registry import create

KIND_OF_CLASS = {"Conv2D": "conv", "BatchNormalization": "bn", "Dense": "dense"}
KIND_NAME = {"conv": "Conv2D", "bn": "BatchNormalization", "dense": "Dense"}
AUTO_PREFIX = {"conv": "conv2d", "bn": "batch_normalization", "dense": "dense"}
NESTED = ("Functional", "Model", "Sequential")


class KerasImportError(ValueError):
    """The source cannot be imported into the requested architecture."""


@dataclass
class KerasLayer:
    name: str
    kind: str
    weights: list = field(default_factory=list)


@dataclass
class FlaxSlot:
    path: tuple          # module path in the params tree, e.g. ("mixed0", "branch1x1", "conv")
    kind: str
    keras_name: str      # Keras's name for the layer where Keras names it explicitly, else ""
    shapes: dict         # leaf name -> shape in params / batch_stats


# ----------------------------------------------------------------------------- reading sources
def _inbound_names(nodes):
    """Layer names feeding a layer, in order, from Keras 2 or Keras 3 ``inbound_nodes``."""
    out = []

    def walk(obj):
        if isinstance(obj, dict):
            if obj.get("class_name") == "__keras_tensor__":
                out.append(obj["config"]["keras_history"][0])
            else:
                for v in obj.values():
                    walk(v)
        elif isinstance(obj, (list, tuple)):
            if (len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int)
                    and isinstance(obj[2], int)):
                out.append(obj[0])          # Keras 2: [name, node_index, tensor_index, kwargs]
            else:
                for v in obj:
                    walk(v)

    walk(nodes)
    return out


def _graph_order(config) -> list[tuple[str, str]]:
    """(name, class_name) of every layer, depth-first from the outputs, inputs visited in order."""
    if "layers" not in config and "config" in config:
        config = config["config"]
    layers = {}
    for layer in config["layers"]:
        name = layer.get("name") or layer["config"]["name"]
        if layer["class_name"] in NESTED:
            raise KerasImportError(
                f"layer {name!r} is a nested {layer['class_name']} model; import the inner model "
                "(or a flat functional model) instead")
        layers[name] = (layer["class_name"], _inbound_names(layer.get("inbound_nodes", [])))
    outputs = config["output_layers"]
    if outputs and isinstance(outputs[0], str):
        outputs = [outputs]
    order, seen = [], set()

    def visit(name):  # iterative post-order DFS (graphs are hundreds of layers deep)
        stack = [(name, iter(layers[name][1]))]
        seen.add(name)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(layers[child][1])))
                    break
            else:
                stack.pop()
                order.append((node, layers[node][0]))

    for out in outputs:
        if out[0] not in seen:
            visit(out[0])
    return order


def _from_graph(config, weights_of) -> list[KerasLayer]:
    result = []
    for name, cls in _graph_order(config):
        if cls in KIND_OF_CLASS:
            result.append(KerasLayer(name, KIND_OF_CLASS[cls], weights_of(name)))
        elif weights_of(name):
            raise KerasImportError(f"layer {name!r} ({cls}) has weights saljax cannot place")
    return result


def _kind_from_weights(name, ws) -> str | None:
    if not ws:
        return None
    if ws[0].ndim == 4:
        return "conv"
    if ws[0].ndim == 2:
        return "dense"
    if all(w.ndim == 1 for w in ws) and len(ws) in (3, 4):
        return "bn"
    raise KerasImportError(f"layer {name!r} has weights of shapes {[w.shape for w in ws]} that "
                           "are neither a Conv2D, a BatchNormalization nor a Dense layer")


def _from_names(named: dict) -> list[KerasLayer]:
    """Weights-only sources: kind from the weight shapes; order settled later by :func:`_match`."""
    out = []
    for name, ws in named.items():
        kind = _kind_from_weights(name, ws)
        if kind:
            out.append(KerasLayer(name, kind, ws))
    return out


def _h5_layer_weights(group, name):
    g = group[name]
    names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs.get("weight_names", [])]
    return [np.asarray(g[n]) for n in names]


def _read_legacy_h5(f) -> tuple[dict | None, dict]:
    group = f["model_weights"] if "model_weights" in f else f
    if "layer_names" not in group.attrs:
        raise KerasImportError("the .h5 file has neither Keras 3 'layers' nor Keras 2 "
                               "'layer_names': it is not a Keras weights file")
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
    weights = {n: _h5_layer_weights(group, n) for n in names}
    config = f.attrs.get("model_config")
    if config is not None:
        config = json.loads(config.decode() if isinstance(config, bytes) else config)
    return config, weights


def _read_keras3_weights(f) -> dict:
    """Keras 3 weights, keyed as stored: ``<snake_case class>[_k]``, by position."""
    layers = f["layers"]
    out = {}
    for name in layers:
        v = layers[name]["vars"] if "vars" in layers[name] else {}
        out[name] = [np.asarray(v[str(i)]) for i in range(len(v))]
    return out


def _snake(class_name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def _positional_names(config) -> dict:
    """Layer name -> the key Keras 3 stored its weights under (class name and position)."""
    if "layers" not in config and "config" in config:
        config = config["config"]
    seen: dict[str, int] = {}
    out = {}
    for layer in config["layers"]:
        base = _snake(layer["class_name"])
        k = seen.get(base, -1) + 1
        seen[base] = k
        out[layer.get("name") or layer["config"]["name"]] = base if k == 0 else f"{base}_{k}"
    return out


def _keras_graph(path, arch: str, stored: dict) -> dict:
    """The config of ``keras.applications``' ``arch``, with or without a classifier as ``stored``
    has one: the graph a Keras 3 ``.weights.h5`` file was saved from but does not contain."""
    try:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras
    except ImportError as e:
        raise KerasImportError(
            f"{path} is a Keras 3 .weights.h5 file, which stores no model graph; reading it needs "
            "Keras 3 to rebuild the architecture (pip install keras), or pass the .keras file, a "
            "whole-model .h5 or the Keras model object instead") from e
    ctor = {"inception_v3": keras.applications.InceptionV3, "densenet121":
            keras.applications.DenseNet121, "densenet169": keras.applications.DenseNet169,
            "densenet201": keras.applications.DenseNet201}[arch]
    dense = [ws for n, ws in stored.items() if re.fullmatch(r"dense(_\d+)?", n) and ws]
    size = 75 if arch == "inception_v3" else 32
    kw = dict(weights=None, input_shape=(size, size, 3))
    model = (ctor(include_top=True, classes=dense[0][0].shape[-1], classifier_activation=None, **kw)
             if dense else ctor(include_top=False, **kw))
    return model.get_config()


def _from_positions(config, stored: dict, arch: str) -> list[KerasLayer]:
    """Keras 3 archives: the k-th layer of a class in the graph is stored as ``<class>_k``."""
    key = _positional_names(config)
    used = set(key.values())
    for cls in KIND_OF_CLASS:
        pattern = re.compile(re.escape(_snake(cls)) + r"(_\d+)?")
        have = sorted(n for n, ws in stored.items() if pattern.fullmatch(n) and ws)
        want = sorted(n for n in used if pattern.fullmatch(n))
        if have != want:
            raise KerasImportError(
                f"the file stores {len(have)} {cls} layers where {arch} has {len(want)}"
                + (f" (missing: {sorted(set(want) - set(have))[:5]})" if set(want) - set(have)
                   else "") + ": it was saved from another architecture or is incomplete")
    return _from_graph(config, lambda n: stored.get(key.get(n), []))


def read_source(source, arch: str) -> tuple[list[KerasLayer], bool]:
    """Weighted layers of a Keras source and whether their order comes from the model graph."""
    if hasattr(source, "get_config") and hasattr(source, "layers"):
        by_name = {layer.name: [np.asarray(w) for w in layer.get_weights()]
                   for layer in source.layers}
        return _from_graph(source.get_config(), lambda n: by_name.get(n, [])), True
    path = os.fspath(source)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no Keras weights at {path}")
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as z:
                config = json.loads(z.read("config.json"))
                with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
                    stored = _read_keras3_weights(f)
            return _from_positions(config, stored, arch), True
        with h5py.File(path, "r") as f:
            keras3 = "layers" in f and "layer_names" not in f.attrs and "model_weights" not in f
            if keras3:
                stored = _read_keras3_weights(f)
            else:
                config, named = _read_legacy_h5(f)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise KerasImportError(f"{path} is not a readable Keras file: {e}") from e
    if keras3:
        return _from_positions(_keras_graph(path, arch, stored), stored, arch), True
    if config is not None:
        return _from_graph(config, lambda n: named.get(n, [])), True
    return _from_names(named), False


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
    explicit = model.name_in_registry != "inception_v3"
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


def from_keras(name: str, source, *, num_classes: int = 2, key=None) -> dict:
    """Flax variables ``{"params", "batch_stats"}`` for ``create(name)`` from a Keras source.

    A source without a classifier (an ImageNet ``notop`` file) needs ``key``, from which the
    ``logits`` layer is freshly initialised; its Dense layer otherwise must have ``num_classes``
    outputs.
    """
    model = create(name, num_classes=num_classes)
    slots = flax_slots(model)
    layers, from_graph = read_source(source, name)
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
