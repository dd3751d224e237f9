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
from saljax.report.figures import examples_figure
from saljax.report.markdown import markdown
from saljax.study.criteria import CRITERIA
from saljax.study.criteria.render import read_csv
from saljax.study.workdir import Workdir

__all__ = ["write", "compare", "markdown"]


def write(workdir: str) -> str:
    """Write ``figures/*.png`` and ``report.md`` into ``workdir``; returns the report's path.
    A finished study's result files missing (a study still running, a partial copy) are an
    error naming them."""
    where = Workdir(workdir)
    need = ["summary.json", "agreement.csv", "examples.npz"]
    if os.path.exists(where.summary):
        with open(where.summary) as f:
            summary = json.load(f)
        if not summary["study"].get("utility_skipped"):
            need.append("utility.csv")
    missing = [n for n in need if not os.path.exists(where.file(n))]
    if missing:
        raise FileNotFoundError(f"{workdir} is not a finished study: no {', '.join(missing)} "
                                "(run or resume saljax study there first)")
    os.makedirs(os.path.dirname(where.figure("examples")), exist_ok=True)
    for criterion in CRITERIA:
        criterion.figures(summary, lambda name: read_csv(where.file(name)), where.figure)
    examples_figure(where.examples, where.figure("examples"))
    files.write_text(where.report, markdown(summary))
    return where.report
