"""Configs: Python files with ``get_config()`` returning an ``ml_collections.ConfigDict``.

``load("configs/x.py", ["--config.a.b=3"])`` applies overrides with the field's own type, so a
typo or a wrong type is an error naming the field, never a silently ignored setting.
"""
from __future__ import annotations

import ast
import importlib.util
import os
from typing import Sequence

import ml_collections


def _parse(value: str, current):
    if isinstance(current, bool):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if isinstance(current, str) or current is None:
        try:
            return ast.literal_eval(value) if current is None else value
        except (ValueError, SyntaxError):
            return value
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"cannot read {value!r}") from e
    if isinstance(current, float) and isinstance(parsed, int):
        parsed = float(parsed)
    if isinstance(current, (list, tuple)) and isinstance(parsed, (list, tuple)):
        parsed = type(current)(parsed)
    if isinstance(current, ml_collections.ConfigDict) and isinstance(parsed, dict):
        return ml_collections.ConfigDict(parsed)
    if type(parsed) is not type(current):
        raise ValueError(f"expected {type(current).__name__}, got {value!r}")
    return parsed


def load(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """The config of ``path`` with ``--config.<field>=<value>`` overrides applied."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no config file {path}")
    spec = importlib.util.spec_from_file_location(f"saljax_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"{path} defines no get_config()")
    config = module.get_config()
    for item in overrides:
        if not item.startswith("--config.") or "=" not in item:
            raise ValueError(f"overrides look like --config.<field>=<value>, got {item!r}")
        field, value = item[len("--config."):].split("=", 1)
        node = config
        parts = field.split(".")
        for p in parts[:-1]:
            if p not in node:
                raise ValueError(f"unknown config field {field!r}")
            node = node[p]
        if parts[-1] not in node:
            raise ValueError(f"unknown config field {field!r}")
        try:
            node[parts[-1]] = _parse(value, node[parts[-1]])
        except ValueError as e:
            raise ValueError(f"--config.{field}: {e}") from e
    return config
