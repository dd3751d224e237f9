"""What the criteria's report sections and figures share: number formatting, the methods of a
summary, reading a result CSV, and saving a figure."""
from __future__ import annotations

import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from saljax import files  # noqa: E402

RESERVED = ("study", "baselines", "known_truth")


def fmt(x, digits=3):
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else \
        f"{x:.{digits}f}"


def ci(c) -> str:
    """``mean (low-high)`` of a :func:`saljax.study.statistics.summarize` entry."""
    return f"{fmt(c['mean'])} ({fmt(c['ci_low'])}-{fmt(c['ci_high'])})"


def save(fig, path: str, **layout) -> None:
    """Lay ``fig`` out (``tight_layout(**layout)``), write it atomically as a 110 dpi PNG and
    close it."""
    fig.tight_layout(**layout)
    files.save_figure(fig, path, dpi=110)
    plt.close(fig)


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def methods_of(summary) -> list:
    """The methods a summary has entries for, in its order."""
    if "methods" in summary["study"]:
        return list(summary["study"]["methods"])
    return [k for k in summary if k not in RESERVED]


def baseline_label(summary) -> str:
    """The localization baseline as a figure's axis names it."""
    return f"{summary['baselines'].get('localization_model', 'U-Net')}\n(baseline)"
