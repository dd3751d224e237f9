"""Writing result and metadata files atomically: each appears whole or not at all.

Every writer goes through :func:`atomic`: the content goes to a temporary file beside the target
(same folder, so the rename cannot cross file systems), which ``os.replace`` then moves into
place. A run killed at any moment leaves the old file or the new one, never half of one, so
"the file exists" can mean "the work is done". Reading never unpickles (``allow_pickle=False``).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import threading

import numpy as np


@contextlib.contextmanager
def atomic(path: str, mode: str = "w", **open_kwargs):
    """Open a temporary file for ``path``; on a clean exit it replaces ``path``, on an error it
    is removed. Parent folders are created."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}-{threading.get_ident()}"
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_temporaries(folder: str) -> int:
    """Remove this process's unfinished :func:`atomic` files under ``folder`` (after it was
    interrupted); returns how many."""
    mark, n = f".tmp{os.getpid()}-", 0
    for root, _, names in os.walk(folder):
        for name in names:
            if mark in name:
                os.remove(os.path.join(root, name))
                n += 1
    return n


def write_text(path: str, text: str) -> None:
    with atomic(path) as f:
        f.write(text)


def write_json(path: str, obj, indent: int = 1) -> None:
    with atomic(path) as f:
        json.dump(obj, f, indent=indent)


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def write_npz(path: str, arrays: dict) -> None:
    """``arrays`` as an uncompressed ``.npz`` (numpy arrays, no pickled objects)."""
    with atomic(path, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def read_npz(path: str) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def write_csv(path: str, rows: list[dict]) -> None:
    """Rows with the first row's keys as the header (an empty file for no rows)."""
    with atomic(path, newline="") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def save_figure(fig, path: str, **kwargs) -> None:
    """A matplotlib figure as PNG."""
    with atomic(path, "wb") as f:
        fig.savefig(f, format="png", **kwargs)
