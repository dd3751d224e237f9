"""Reading Keras (2 or 3) weight files and models: every weighted layer with its kind, in the
order of the model graph where the source has one (see :mod:`saljax.models.keras_import`)."""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field

import h5py
import numpy as np


class KerasImportError(ValueError):
    """The source cannot be imported into the requested architecture."""


KIND_OF_CLASS = {"Conv2D": "conv", "BatchNormalization": "bn", "Dense": "dense"}
NESTED = ("Functional", "Model", "Sequential")


@dataclass
class KerasLayer:
    name: str
    kind: str
    weights: list = field(default_factory=list)


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


def _keras_graph(path, model, stored: dict) -> dict:
    """The config of ``model``'s ``keras.applications`` twin (``model.keras_application``), with
    or without a classifier as ``stored`` has one: the graph a Keras 3 ``.weights.h5`` file was
    saved from but does not contain."""
    try:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras
    except ImportError as e:
        raise KerasImportError(
            f"{path} is a Keras 3 .weights.h5 file, which stores no model graph; reading it needs "
            "Keras 3 to rebuild the architecture (pip install keras), or pass the .keras file, a "
            "whole-model .h5 or the Keras model object instead") from e
    if getattr(model, "keras_application", None) is None:
        raise KerasImportError(f"{path}: {model.name_in_registry} has no keras.applications "
                               "twin to rebuild the graph of a .weights.h5 file from")
    ctor = getattr(keras.applications, model.keras_application)
    dense = [ws for n, ws in stored.items() if re.fullmatch(r"dense(_\d+)?", n) and ws]
    kw = dict(weights=None, input_shape=(model.min_size, model.min_size, 3))
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


def read_source(source, model) -> tuple[list[KerasLayer], bool]:
    """Weighted layers of a Keras source for ``model`` and whether their order comes from the
    model graph."""
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
            return _from_positions(config, stored, model.name_in_registry), True
        with h5py.File(path, "r") as f:
            keras3 = "layers" in f and "layer_names" not in f.attrs and "model_weights" not in f
            if keras3:
                stored = _read_keras3_weights(f)
            else:
                config, named = _read_legacy_h5(f)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise KerasImportError(f"{path} is not a readable Keras file: {e}") from e
    if keras3:
        return _from_positions(_keras_graph(path, model, stored), stored,
                               model.name_in_registry), True
    if config is not None:
        return _from_graph(config, lambda n: named.get(n, [])), True
    return _from_names(named), False


