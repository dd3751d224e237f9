"""Resumable units of work: each unit's result is one ``.npz`` file, written atomically.

A unit is done when its file exists; files appear only through ``os.replace`` of a complete
temporary file, so a run killed at any moment leaves whole units or none, and a resumed run skips
exactly the units that are done. ``guard_config`` refuses a workdir made with another config.
"""
from __future__ import annotations

import json
import os
from typing import Callable, Iterable

from tqdm.auto import tqdm

from saljax import files


class ConfigChanged(ValueError):
    """The workdir holds results of a different study config."""


def guard_config(workdir, config_json: str) -> None:
    """Write ``config.json`` to a new workdir (a :class:`~saljax.study.workdir.Workdir`), or
    check an existing one is the same config."""
    os.makedirs(workdir.root, exist_ok=True)
    path = workdir.config
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        new = json.loads(config_json)
        if old != new:
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ConfigChanged(
                f"{workdir.root} holds a study run with another config (differs in: "
                f"{', '.join(diff)}); use a new --workdir or delete the old one")
        return
    files.write_text(path, config_json)


def run_units(units: Iterable[tuple[dict, Callable[[], dict]]], desc: str,
              progress: bool = True) -> int:
    """Run each ``(paths, compute)`` unit with a missing file; ``paths`` maps the names of
    ``compute()``'s results to their files (one unit may share model passes among several
    results). Returns how many units ran."""
    units = list(units)
    todo = [(ps, fn) for ps, fn in units if not all(os.path.exists(p) for p in ps.values())]
    bar = tqdm(total=len(units), initial=len(units) - len(todo), desc=desc,
               disable=not progress, mininterval=2.0)
    for paths, compute in todo:
        results = compute()
        for name, path in paths.items():
            files.write_npz(path, results[name])
        bar.update(1)
    bar.close()
    return len(todo)
