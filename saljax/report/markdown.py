"""``report.md``: the setup, a table of every method against every criterion, then one section
per criterion (each criterion's own, :mod:`saljax.study.criteria`) and the example maps."""
from __future__ import annotations

from saljax.study.criteria import CRITERIA
from saljax.study.criteria.render import fmt, methods_of

__all__ = ["markdown", "fmt"]


def _header(summary) -> list[str]:
    s = summary["study"]
    models = ", ".join(f"{m['id']} ({fmt(m.get('val_auc'))})" for m in s["models"])
    utility = ("Utility skipped" if s.get("utility_skipped")
               else f"Utility on {s['images_utility']} test positives")
    return [f"# Saliency trustworthiness study: {s['dataset']} at {s['size']} px", "",
            f"Models (validation AUC): {models}. {utility}; randomization and agreement on "
            f"{s['images_eval']}."]


def _overview(summary, methods) -> list[str]:
    """One row per method, the columns each criterion gives (``Criterion.overview``)."""
    cells = {m: {k: v for c in CRITERIA for k, v in c.overview(summary, m).items()}
             for m in methods}
    columns = list(dict.fromkeys(k for m in methods for k in cells[m]))
    if not columns:
        return []
    return (["", "## Summary", "", "| method | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
            + [f"| {m} | " + " | ".join(cells[m].get(k, "n/a") for k in columns) + " |"
               for m in methods])


def markdown(summary) -> str:
    """``report.md`` of a ``summary.json``."""
    methods = methods_of(summary)
    lines = _header(summary) + _overview(summary, methods)
    for criterion in sorted(CRITERIA, key=lambda c: not c.headline):   # headlines first
        lines += criterion.section(summary, methods)
    lines += ["", "## Example maps", "", "![examples](figures/examples.png)", ""]
    return "\n".join(lines)
