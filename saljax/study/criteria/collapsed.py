"""Collapsed maps: how many of each method's maps carry no information at all.

A map whose pixels all hold one value explains nothing (GradCAM's map is all zero when the
explained class's gradient at the CAM block is negative everywhere; PAIR's visualization of an
all-zero attribution is all zero), yet two such maps are identical: similarity criteria would
score them as perfect agreement and a random-pair pass line made of them as high. Per method,
model and setting, every saved map of the study's images is checked; the summary gives the
share of collapsed maps per method and setting and flags a method where it is above
``FLAG_FRACTION``. With ``collapsed_maps="exclude"`` (saljax's default, and in effect the
study's: PAIR made such maps NaN and the study dropped them) every similarity criterion leaves
out a comparison with a collapsed map and counts it (``left_out`` in its CSV and summary);
with ``"score"`` they are scored as the zero maps they become, and the flag says where those
criteria rest on blank maps.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.render import fmt
from saljax.study.fields import choice

FLAG_FRACTION = 0.05       # more collapsed maps than this: the report flags the method


def collapsed(maps) -> np.ndarray:
    """Whether each map [N, H, W] holds a single value: [N] bool (NaN maps count as collapsed,
    they carry no information either)."""
    maps = np.asarray(maps, np.float64)
    if not maps.size:
        return np.zeros(len(maps), bool)
    flat = maps.reshape(len(maps), -1)
    with warnings.catch_warnings():        # an all-NaN map: NaN extremes, collapsed
        warnings.simplefilter("ignore", RuntimeWarning)
        return ~(np.nanmax(flat, 1) > np.nanmin(flat, 1))


@dataclasses.dataclass
class CollapsedResults:
    """``flags[(method, model id, setting)]``: [n] bool, one per image the setting covers."""
    flags: dict

    def rows(self) -> list[dict]:
        """collapsed.csv: one row per method, model and setting."""
        return [{"method": method, "model": model, "setting": setting, "maps": int(f.size),
                 "collapsed": int(f.sum())}
                for (method, model, setting), f in self.flags.items()]


def evaluate(study) -> CollapsedResults:
    """Every saved map of every model (variants too), setting and method."""
    store, flags = study.store, {}
    for m in study.models:
        for s in study.settings[m.id]:
            for method in study.methods:
                flags[(method, m.id, s.name)] = collapsed(
                    store.gray(m.id, s.name, method, s.n_images))
    return CollapsedResults(flags)


def summarize(results: CollapsedResults, method: str) -> dict:
    """The ``collapsed`` entry of ``method``: maps, collapsed maps and their share, the share
    per setting (over models), and whether it is flagged."""
    mine = {k: f for k, f in results.flags.items() if k[0] == method}
    maps = sum(f.size for f in mine.values())
    count = sum(int(f.sum()) for f in mine.values())
    by_setting = {}
    for (_, _, setting), f in mine.items():
        total, hit = by_setting.get(setting, (0, 0))
        by_setting[setting] = (total + f.size, hit + int(f.sum()))
    fractions = {s: hit / total for s, (total, hit) in by_setting.items() if total}
    worst = max(fractions.values(), default=0.0)
    return {"maps": int(maps), "collapsed": int(count),
            "fraction": count / maps if maps else 0.0, "fraction_by_setting": fractions,
            "flagged": bool(worst > FLAG_FRACTION)}


def section(summary, methods) -> list[str]:
    entries = {m: summary[m]["collapsed"] for m in methods if "collapsed" in summary[m]}
    if not entries:
        return []
    lines = ["", "## Collapsed maps", ""]
    hit = {m: e for m, e in entries.items() if e["collapsed"]}
    if not hit:
        return lines + [f"No map of any method, model or setting is constant "
                        f"({sum(e['maps'] for e in entries.values())} maps checked)."]
    excluded = summary["study"].get("protocol", {}).get("collapsed_maps") == "exclude"
    treatment = ("every comparison with one is left out of the similarity criteria (randomization, "
                 "sMPRT, agreement, input invariance; the count is in each one's CSV and "
                 "summary)" if excluded else
                 "they are scored as zero maps (collapsed_maps='score'): the similarity criteria "
                 "count two of them as agreement")
    lines += [f"A constant map explains nothing, but two of them are identical: {treatment}. "
              f"Flagged: more than {FLAG_FRACTION:.0%} of a setting's maps collapsed.", "",
              "| method | collapsed maps | share | worst setting | flagged | comparisons left "
              "out (MPRT / repeatability / reproducibility / sMPRT) |",
              "|---|---|---|---|---|---|"]
    for m, e in hit.items():
        setting, share = max(e["fraction_by_setting"].items(), key=lambda kv: kv[1])
        lines.append(f"| {m} | {e['collapsed']} of {e['maps']} | {fmt(e['fraction'])} | "
                     f"{setting} ({fmt(share)}) | {'yes' if e['flagged'] else 'no'} | "
                     f"{' / '.join(_left_out(summary[m]))} |")
    return lines


def _left_out(entry) -> list[str]:
    """How many comparisons each similarity criterion left out for a method (n/a: not run)."""
    def count(keys):
        node = entry
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return "n/a"
            node = node[k]
        return str(sum(node) if isinstance(node, list) else node)
    return [count(("randomization", "left_out_by_level")), count(("repeatability", "left_out")),
            count(("reproducibility", "left_out")), count(("smprt", "left_out"))]


def overview(summary, method) -> dict:
    e = summary[method].get("collapsed")
    if e is None:
        return {}
    return {"collapsed maps": f"{e['collapsed']}/{e['maps']}" + (" (flag)" if e["flagged"]
                                                               else "")}


TREATMENTS = ("exclude", "score")    # config.collapsed_maps


CRITERION = Criterion(
    name="collapsed", evaluate=evaluate, tables=lambda r: {"collapsed.csv": r.rows()},
    check=lambda config: choice(config, "collapsed_maps", TREATMENTS),
    summarize=lambda r, study, summary: Entry(
        methods={m: {"collapsed": summarize(r, m)} for m in study.methods}),
    section=section, overview=overview)
