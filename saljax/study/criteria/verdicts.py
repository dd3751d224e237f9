"""The Verdicts table: every criterion's verdict on every method and null map, side by side.

Not a measurement of its own: it reads the ``verdict_block`` each criterion put in the summary
(:mod:`saljax.study.verdict`) and gathers them, so it comes last in the registry. In
``summary.json`` (top level ``verdicts``): ``alpha``, ``correction`` ("holm"), ``null_maps``,
``rules`` ({criterion: how saljax decides}), ``rows`` (one per method or null map and
criterion: ``method``, ``null``, ``criterion``, ``at`` (the level a randomization test is read
at), ``value`` and ``line`` (``mean``, ``ci_low``, ``ci_high``), ``better``, ``p_pass``,
``p_fail``, ``saljax``, ``study``) and ``null_passes`` ({criterion: the null maps that pass
it under saljax's rule}). The report shows it right after the summary table.
"""
from __future__ import annotations

from saljax.saliency.methods import METHODS
from saljax.study import verdict as verdicts
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.render import fmt


def _summarize(results, study, summary) -> Entry:
    nulls = [m for m in study.config.get("null_maps", ()) if m in study.methods]
    rows, rules = [], {}
    for method in study.methods:
        for b in verdicts.blocks_of(summary.get(method, {})):
            rules[b["criterion"]] = b["rule"]
            rows.append({"method": method, "null": method in nulls,
                         **{k: b[k] for k in ("criterion", "at", "value", "line", "better",
                                              "p_pass", "p_fail", "saljax", "study")}})
    passes = {c: [r["method"] for r in rows if r["criterion"] == c and r["null"]
                  and r["saljax"] == "pass"] for c in rules}
    return Entry(top={"verdicts": {"alpha": study.config.verdicts.alpha, "correction": "holm",
                                   "null_maps": nulls, "rules": rules, "rows": rows,
                                   "null_passes": passes}})


def _interval(c) -> str:
    return f"{fmt(c['mean'])} ({fmt(c['ci_low'])}-{fmt(c['ci_high'])})"


def section(summary, methods) -> list[str]:
    v = summary.get("verdicts")
    if not v or not v["rows"]:
        return []
    lines = ["", "## Verdicts", "",
             f"saljax's verdict: pass, fail or inconclusive at alpha {v['alpha']:g} after Holm's "
             "correction over a criterion's methods (and levels), from a bootstrap over replicate "
             "models, images and the line's own samples; the study's: the mean on the good side "
             "of its line, without uncertainty (n/a: the study had no such criterion). Null maps "
             "(below the methods) are computed and scored exactly like the methods.", "",
             "| method | criterion | value (95% CI) | line (95% CI) | better | saljax | study |",
             "|---|---|---|---|---|---|---|"]
    ordered = [r for r in v["rows"] if not r["null"]] + [r for r in v["rows"] if r["null"]]
    for r in ordered:
        name = f"*{r['method']}* (null)" if r["null"] else r["method"]
        crit = f"{r['criterion']} ({r['at']})" if r.get("at") else r["criterion"]
        lines.append(f"| {name} | {crit} | {_interval(r['value'])} | "
                     f"{_interval(r['line'])} | {r['better']} | {r['saljax']} | "
                     f"{r['study'] or 'n/a'} |")
    lines += ["", "Rules: " + "; ".join(f"**{c}**: {rule}" for c, rule in v["rules"].items())
              + ".", ""]
    if v["null_maps"]:
        for c, who in v["null_passes"].items():
            study_passes = [r["method"] for r in v["rows"] if r["criterion"] == c and r["null"]
                            and r["study"] == "pass"]
            said = (f"passed by {', '.join(who)}: this criterion cannot by itself vouch for a "
                    "method" if who else "passed by no null map")
            if study_passes:
                said += f" (under the study's rule: {', '.join(study_passes)})"
            lines.append(f"- {c}: {said}.")
    return lines


def overview(summary, method) -> dict:
    v = summary.get("verdicts")
    if not v:
        return {}
    mine = [r for r in v["rows"] if r["method"] == method]
    passed = [r["criterion"] for r in mine if r["saljax"] == "pass"]
    return {"passes (saljax)": f"{len(passed)}/{len(mine)}"}


def _check(config) -> None:
    alpha = config.verdicts.alpha
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise ValueError(f"config.verdicts.alpha must be a number in (0, 1), got {alpha!r}")
    unknown = [m for m in config.null_maps if m not in METHODS]
    if unknown:
        raise ValueError(f"config.null_maps: unknown map(s) {', '.join(unknown)}; null maps are "
                         f"{', '.join(m for m in METHODS if m.startswith('null_'))}")


CRITERION = Criterion(name="verdicts", evaluate=lambda study: None, tables=lambda r: {},
                      summarize=_summarize, check=_check, section=section, overview=overview,
                      headline=True)
