"""Configs: Python files with ``get_config()`` returning an ``ml_collections.ConfigDict``.

``load("synthetic", ["--config.a.b=3"])`` reads a built-in config by name, or any config file
by path, and applies overrides with the field's own type, so a typo or a wrong type is an error
naming the field, never a silently ignored setting.

The built-in configs live in the repository's top-level ``configs/``; they import each other as
``saljax.configs.<name>``, the package ``pip install`` makes of that folder (``pyproject.toml``
maps it), or, run from a source checkout, the folder itself (:func:`built_in_dir`).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
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


def _checkout_configs() -> str | None:
    """``configs/`` beside the ``saljax`` package when that is a source checkout (a
    ``pyproject.toml`` there), else None."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    here = os.path.join(root, "configs")
    ok = all(os.path.exists(os.path.join(p, f)) for p, f in ((root, "pyproject.toml"),
                                                             (here, "__init__.py")))
    return here if ok else None


def built_in_dir() -> str:
    """The built-in configs' folder, importable as the package ``saljax.configs``: this
    checkout's ``configs/`` (registered under that name), or the installed package."""
    here = _checkout_configs()
    if here is None:
        return os.path.dirname(importlib.import_module("saljax.configs").__file__)
    loaded = sys.modules.get("saljax.configs")
    if loaded is None or list(getattr(loaded, "__path__", [])) != [here]:
        spec = importlib.util.spec_from_file_location(
            "saljax.configs", os.path.join(here, "__init__.py"), submodule_search_locations=[here])
        module = importlib.util.module_from_spec(spec)
        sys.modules["saljax.configs"] = module
        spec.loader.exec_module(module)
    return here


def built_in() -> list[str]:
    """The names of the built-in configs."""
    return sorted(f[:-3] for f in os.listdir(built_in_dir())
                  if f.endswith(".py") and f[0] != "_")


def resolve(name_or_path: str) -> str:
    """The file of a config: a path as given, or a built-in config's name."""
    if os.path.exists(name_or_path):
        return name_or_path
    stem = os.path.basename(name_or_path)
    stem = stem[:-3] if stem.endswith(".py") else stem
    if os.sep not in name_or_path and stem in built_in():
        return os.path.join(built_in_dir(), stem + ".py")
    raise FileNotFoundError(f"no config file {name_or_path}; built-in configs: "
                            f"{', '.join(built_in())}")


def load(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """The config of ``path`` (a file or a built-in config's name) with
    ``--config.<field>=<value>`` overrides applied."""
    path = resolve(path)
    built_in_dir()                 # configs import the built-in ones as saljax.configs.<name>
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
