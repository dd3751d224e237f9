"""Reports from a study's result files alone (``summary.json``, the per-image CSVs and
``examples.npz``), never from study internals, so any finished workdir, copied anywhere, can be
re-reported: ``write(workdir)`` (``saljax report --workdir DIR``) draws its figures and
``report.md``; ``compare(workdirs, out)`` (``saljax report --compare A B``) puts several
studies side by side as the paper's figures and a table of every method against all four
criteria.
"""
from __future__ import annotations

import json
import os

from saljax import files
from saljax.report.compare import compare
from saljax.report.figures import (agreement_figure, cascading_figure, examples_figure,
                                   read_csv, road_figure, shortcut_figure, utility_figure)
from saljax.report.markdown import markdown

__all__ = ["write", "compare", "markdown"]


def write(workdir: str) -> str:
    """Write ``figures/*.png`` and ``report.md`` into ``workdir``; returns the report's path."""
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    figs = os.path.join(workdir, "figures")
    os.makedirs(figs, exist_ok=True)
    cascading_figure(summary, os.path.join(figs, "cascading.png"))
    agreement_figure(read_csv(os.path.join(workdir, "agreement.csv")),
                     os.path.join(figs, "agreement.png"))
    utility_figure(read_csv(os.path.join(workdir, "utility.csv")),
                   os.path.join(figs, "utility.png"))
    if summary.get("known_truth"):
        shortcut_figure(summary["known_truth"], os.path.join(figs, "shortcut.png"))
        road_figure(summary["known_truth"], os.path.join(figs, "road.png"))
    if os.path.exists(os.path.join(workdir, "examples.npz")):
        examples_figure(os.path.join(workdir, "examples.npz"), os.path.join(figs, "examples.png"))
    path = os.path.join(workdir, "report.md")
    files.write_text(path, markdown(summary))
    return path
