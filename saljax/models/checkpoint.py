"""Saving and loading trained model variables with orbax, with the architecture written beside.

Each process reads and writes model directories by itself (no multi-process barrier). A model
directory holds ``model.json`` (name, width, num_classes and free-form metadata such as
the validation AUC) and ``variables/`` (an orbax checkpoint of ``{"params", "batch_stats"}``).
Loading checks that the files describe the architecture asked for, and that every array has the
shape that architecture needs, before any array is read.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from saljax import files
from saljax.models.init import variable_shapes, variables_mismatch
from saljax.parallel import orbax_lock, orbax_processes
from saljax.models.registry import create


class CheckpointMismatch(ValueError):
    """A model checkpoint for another architecture, or with missing or mis-shaped arrays."""


def save(path: str, variables, *, name: str, width: float = 1.0, num_classes: int = 2,
         metadata: dict | None = None) -> None:
    """Write ``variables`` and their architecture to the directory ``path`` (replaced if there)."""
    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    spec = {"name": name, "width": float(width), "num_classes": int(num_classes),
            "metadata": metadata or {}}
    target = os.path.join(path, "variables")
    tree = jax.tree.map(np.asarray, {k: variables[k] for k in ("params", "batch_stats")})
    with orbax_lock:
        checkpointer = ocp.StandardCheckpointer(multiprocessing_options=orbax_processes())
        checkpointer.save(target, tree, force=True)
        checkpointer.wait_until_finished()
        checkpointer.close()
    files.write_json(os.path.join(path, "model.json"), spec)  # last: marks the model complete


def complete(path: str) -> bool:
    """Whether ``path`` holds a whole saved model (``model.json`` is written last)."""
    return os.path.exists(os.path.join(path, "model.json"))


def describe(path: str) -> dict:
    """The model description in ``path/model.json``; a missing or corrupt file is a clear
    error naming it."""
    spec_path = os.path.join(path, "model.json")
    if not os.path.exists(spec_path):
        raise FileNotFoundError(f"{path}: no saved model (model.json missing)")
    try:
        with open(spec_path) as f:
            spec = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointMismatch(f"{spec_path} is not a readable model description ({e})") from e
    missing = [k for k in ("name", "width", "num_classes") if k not in spec]
    if not isinstance(spec, dict) or missing:
        raise CheckpointMismatch(f"{spec_path} lacks {', '.join(missing) or 'its fields'}")
    spec.setdefault("metadata", {})
    return spec


def load(path: str, *, name: str | None = None, width: float | None = None,
         num_classes: int | None = None):
    """``(model, variables, spec)`` from ``path``; the expected architecture, where given, must
    match, else :class:`CheckpointMismatch` names the difference."""
    path = os.path.abspath(path)
    spec = describe(path)
    for key, want in (("name", name), ("width", width), ("num_classes", num_classes)):
        if want is not None and spec[key] != want:
            raise CheckpointMismatch(f"{path} holds a {spec['name']} (width {spec['width']}, "
                                     f"{spec['num_classes']} classes), not the {key} {want!r} "
                                     "asked for")
    model = create(spec["name"], width=spec["width"], num_classes=spec["num_classes"])
    expected = variable_shapes(model)
    expected = {k: expected[k] for k in ("params", "batch_stats")}
    reader = ocp.StandardCheckpointer(multiprocessing_options=orbax_processes())
    try:
        with orbax_lock:
            stored = reader.metadata(os.path.join(path, "variables"))
    except Exception as e:   # orbax raises several types for missing or truncated metadata
        raise CheckpointMismatch(f"{path}/variables: cannot read the stored arrays' metadata "
                                 f"({type(e).__name__}: {e})") from e
    stored = getattr(stored, "item_metadata", stored)
    if stored is None:   # orbax logs an unreadable metadata file and returns nothing
        raise CheckpointMismatch(f"{path}/variables: cannot read the stored arrays' metadata")
    want = {jax.tree_util.keystr(k): tuple(v.shape)
            for k, v in jax.tree_util.tree_flatten_with_path(expected)[0]}
    have = {jax.tree_util.keystr(k): tuple(v.shape)
            for k, v in jax.tree_util.tree_flatten_with_path(dict(stored))[0]}
    detail = variables_mismatch(want, have)
    if detail:
        raise CheckpointMismatch(f"{path}: the stored arrays do not fit {spec['name']} (width "
                                 f"{spec['width']}): {detail}")
    try:
        with orbax_lock:
            variables = reader.restore(os.path.join(path, "variables"), expected)
    except Exception as e:   # truncated or missing array files
        raise CheckpointMismatch(f"{path}/variables: cannot read the stored arrays "
                                 f"({type(e).__name__}: {e})") from e
    return model, variables, spec
