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
    """Write ``figures/*.png`` and ``report.md`` into ``workdir``; returns the report's path.
    A finished study's result files missing (a study still running, a partial copy) are an
    error naming them."""
    need = ["summary.json", "agreement.csv", "examples.npz"]
    if os.path.exists(os.path.join(workdir, "summary.json")):
        with open(os.path.join(workdir, "summary.json")) as f:
            summary = json.load(f)
        if not summary["study"].get("utility_skipped"):
            need.append("utility.csv")
    missing = [n for n in need if not os.path.exists(os.path.join(workdir, n))]
    if missing:
        raise FileNotFoundError(f"{workdir} is not a finished study: no {', '.join(missing)} "
                                "(run or resume saljax study there first)")
    figs = os.path.join(workdir, "figures")
    os.makedirs(figs, exist_ok=True)
    cascading_figure(summary, os.path.join(figs, "cascading.png"))
    agreement_figure(read_csv(os.path.join(workdir, "agreement.csv")),
                     os.path.join(figs, "agreement.png"))
    if not summary["study"].get("utility_skipped"):
        utility_figure(read_csv(os.path.join(workdir, "utility.csv")),
                       os.path.join(figs, "utility.png"))
    if summary.get("known_truth"):
        shortcut_figure(summary["known_truth"], os.path.join(figs, "shortcut.png"))
        road_figure(summary["known_truth"], os.path.join(figs, "road.png"))
    examples_figure(os.path.join(workdir, "examples.npz"), os.path.join(figs, "examples.png"))
    path = os.path.join(workdir, "report.md")
    files.write_text(path, markdown(summary))
    return path
