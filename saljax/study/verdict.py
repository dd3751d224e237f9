"""A criterion's verdict on a method: pass, fail or inconclusive, with its uncertainty.

Every verdict compares a value (per replicate model and image) with a line (a pass line with
its own interval, a baseline, or a number) by :func:`saljax.study.statistics.difference`: a
bootstrap over replicates, images and the line's pairs. Each criterion states two one-sided
tests per method (``p_pass``: the difference is on the good side; ``p_fail``: it is surely on
the bad side), corrects each family over the criterion's methods (and levels) by Holm, and
decides at ``alpha``: pass when the corrected ``p_pass`` is below it, else fail when the
corrected ``p_fail`` is, else inconclusive. The study's own rule (a mean against a line, no
uncertainty) is kept beside it as ``study`` (None where the study had no such criterion).

A verdict block (each criterion's ``verdict`` entry in ``summary.json``; the report's Verdicts
table): ``criterion`` (its label), ``value`` and ``line`` (``mean``, ``ci_low``, ``ci_high``),
``better`` ("above" or "below" the line), ``at`` (the level the value is read at, or None),
``p_pass`` and ``p_fail`` (Holm-corrected),
``saljax`` and ``study`` (the two verdicts), ``rule`` (how ``saljax`` was decided).
"""
from __future__ import annotations

import numpy as np

from saljax.study import statistics

VERDICTS = ("pass", "fail", "inconclusive")


def decide(p_pass: float, p_fail: float, alpha: float) -> str:
    if np.isfinite(p_pass) and p_pass < alpha:
        return "pass"
    if np.isfinite(p_fail) and p_fail < alpha:
        return "fail"
    return "inconclusive"


def corrected(families: dict) -> dict:
    """Holm over every p-value of ``families`` (``{method: [p, ...]}``, e.g. one per level):
    the same shape back, corrected as one family."""
    keys = list(families)
    flat = np.concatenate([np.asarray(families[k], np.float64).ravel() for k in keys]) \
        if keys else np.zeros(0)
    adjusted = statistics.holm(flat)
    out, start = {}, 0
    for k in keys:
        n = np.asarray(families[k]).size
        out[k] = adjusted[start:start + n].tolist()
        start += n
    return out


def block(criterion: str, test: dict, better: str, p_pass: float, p_fail: float, alpha: float,
          study: str | None, rule: str, at: str | None = None) -> dict:
    """The verdict entry of one method and criterion (see the module docstring); ``test`` is a
    :func:`~saljax.study.statistics.difference` result; ``at``: the level it is read at
    (randomization tests: the deciding level)."""
    return {"criterion": criterion, "at": at, "value": test["value"], "line": test["line"],
            "difference": test["difference"], "n_replicates": test["n_replicates"],
            "n": test["n"], "better": better, "p_pass": number(p_pass), "p_fail": number(p_fail),
            "saljax": decide(p_pass, p_fail, alpha), "study": study, "rule": rule}


def judge(tests: dict, criterion: str, better: str, alpha: float, rule: str,
          study: dict | None = None, fail_below: float = 0.0) -> dict:
    """``{method: block}`` for one test per method (``tests``: ``{method:``
    :func:`~saljax.study.statistics.difference` ``}``): pass when the difference is surely on
    the ``better`` side of 0, fail when surely on the other (for ``better="above"``: surely
    below ``fail_below``, eMPRT's margin), each family Holm-corrected over the methods;
    ``study``: the study's verdict per method."""
    if better == "above":
        good = {m: [statistics.p_above(t)] for m, t in tests.items()}
        bad = {m: [statistics.p_below(t, fail_below)] for m, t in tests.items()}
    else:
        good = {m: [statistics.p_below(t)] for m, t in tests.items()}
        bad = {m: [statistics.p_above(t)] for m, t in tests.items()}
    good, bad = corrected(good), corrected(bad)
    return {m: block(criterion, t, better, good[m][0], bad[m][0], alpha,
                     (study or {}).get(m), rule) for m, t in tests.items()}


def number(p) -> float | None:
    """A p-value for JSON: a float, or None when it is not finite."""
    return float(p) if p is not None and np.isfinite(p) else None


def study_rule(value: float, line: float, better: str) -> str | None:
    """The study's kind of verdict: the mean on the good side of the line, no uncertainty."""
    if not (np.isfinite(value) and np.isfinite(line)):
        return None
    return "pass" if (value < line if better == "below" else value > line) else "fail"


def blocks_of(entry) -> list[dict]:
    """Every verdict block inside a method's summary entry (a criterion may hold several,
    e.g. repeatability and reproducibility), in order."""
    found = []
    if isinstance(entry, dict):
        if "saljax" in entry and "criterion" in entry and "rule" in entry:
            return [entry]
        for value in entry.values():
            found += blocks_of(value)
    return found
