"""Known truth's judgements: what each arm's models use (measured), how much each map points at
the lesion and at the marker (scores fair to regions of any size), and whether the map reveals
what its model uses.

* **Region scores** per image: AUROC of the map's pixels against the region (chance 0.5 at any
  size), average precision over the region's prevalence (``auprc_lift``; about 1 by chance,
  above 1 for a region of few pixels), the pointing game (the share of the map's maximal
  pixels inside the region; chance: the region's share of the image), the mass ratio (the
  map's share of absolute mass in the region over the region's share of the pixels; 1 by
  chance), and the study's AUPRC (whose floor is the region's prevalence: it leans against a
  small region).
* **What an arm uses**: ``"marker"`` when its models are shortcut models as measured (the
  marker added to negatives turns at least ``SHORTCUT`` of them positive and the models follow
  the marker on at least ``SHORTCUT`` of the conflict set), else ``"lesion"`` when removing the
  lesion flips at least half of the predictions, else ``"unclear"``.
* **Reveals**: a map reveals what its model uses when its AUROC against that region is surely
  above 0.5 and surely above its AUROC against the other region (paired by image, on images
  that carry both), each a one-sided test from the bootstrap over the arm's models and the
  images, Holm-corrected over the methods: ``"yes"`` when both pass, ``"no"`` when either is
  surely on the wrong side, else ``"inconclusive"``.
"""
from __future__ import annotations

import jax
import numpy as np

from saljax import metrics
from saljax.study import statistics, verdict

SCORES = ("auroc", "auprc_lift", "pointing", "mass_ratio", "auprc")
CHANCE = {"auroc": 0.5, "auprc_lift": 1.0, "mass_ratio": 1.0}
SHORTCUT = 0.8          # a shortcut model: turned positive and follows the marker, each at least
LESION_FLIPS = 0.5      # a lesion model: removing the lesion flips at least this share


@jax.jit
def _scores(maps, masks):
    return {"auroc": metrics.roc_auc(maps, masks), "auprc_lift": metrics.auprc_lift(maps, masks),
            "pointing": metrics.pointing_game(maps, masks),
            "mass_ratio": metrics.mass_ratio(maps, masks), "auprc": metrics.auprc(maps, masks)}


def region_scores(maps, masks, chunk: int = 32) -> dict:
    """``{score: [N]}`` (:data:`SCORES`) of maps [N, H, W] against regions bool [N, H, W]; NaN
    where an image has no such region."""
    maps, masks = np.asarray(maps, np.float32), np.asarray(masks, bool)
    parts = [_scores(maps[s:s + chunk], masks[s:s + chunk]) for s in range(0, len(maps), chunk)]
    return {k: np.concatenate([np.asarray(p[k], np.float64) for p in parts]) for k in SCORES}


def uses(arm: dict) -> str:
    """What an arm's models use, from its summary entry (:func:`arm_reliance`)."""
    if arm.get("shortcut_model"):
        return "marker"
    flips = arm.get("lesion_flip", {}).get("mean", float("nan"))
    return "lesion" if np.isfinite(flips) and flips >= LESION_FLIPS else "unclear"


def follows_marker(sufficiency: dict) -> np.ndarray:
    """One model's conflict set, bool [negatives + lesion-only positives]: whether each
    prediction follows the marker (a marker-added negative called positive, a lesion-only
    positive called negative)."""
    return np.concatenate([sufficiency["positive_added"], ~sufficiency["lesion_only_positive"]])


def arm_reliance(results, arm: str, boot: dict) -> dict:
    """An arm's reliance over its models (bootstrap over models and images): the flip share
    when the lesion or the marker is removed (noisy linear infill), the share of marker-added
    negatives turned positive, the share of the conflict set that follows the marker;
    ``shortcut_model`` (both at least :data:`SHORTCUT`) and ``uses``."""
    def stacked(rows):
        rows = [np.asarray(r, np.float64) for r in rows]
        return (statistics.hierarchical_summarize(np.stack(rows), **boot)
                if rows and all(len(r) == len(rows[0]) and len(r) for r in rows) else None)

    out = {"models": sorted({k[1] for k in results.reliance if k[0] == arm})}
    for region in ("lesion", "marker"):
        rows = [v["flipped"] for (a, _, r, how), v in results.reliance.items()
                if a == arm and r == region and how == "noisy_linear"]
        s = stacked(rows)
        if s:
            out[f"{region}_flip"] = s
    suff = [v for (a, _), v in results.sufficiency.items() if a == arm]
    if suff:
        # of the negatives each model predicted negative before (NaN: positive already)
        out["turned_positive"] = stacked([np.where(v["positive"], np.nan, v["positive_added"])
                                          for v in suff])
        out["conflict_follows_marker"] = stacked([follows_marker(v) for v in suff])
    turned = (out.get("turned_positive") or {}).get("mean", float("nan"))
    follows = (out.get("conflict_follows_marker") or {}).get("mean", float("nan"))
    out["shortcut_model"] = bool(np.isfinite(turned) and np.isfinite(follows)
                                 and turned >= SHORTCUT and follows >= SHORTCUT)
    out["uses"] = uses(out)
    return out


def region_table(results, boot: dict) -> dict:
    """``{method: {arm: {region: {score: summary}}}}``: every score's mean over the arm's models
    and images with its 95% interval (bootstrap over both)."""
    out = {}
    for method, arm in dict.fromkeys((k[0], k[1]) for k in results.scores):
        rows = [v for (me, a, _), v in results.scores.items() if me == method and a == arm]
        out.setdefault(method, {})[arm] = {
            region: {s: statistics.hierarchical_summarize(np.stack([r[region][s] for r in rows]),
                                                          **boot) for s in SCORES}
            for region in ("lesion", "marker")}
    return out


def reveals(results, arms: dict, alpha: float, boot: dict) -> dict:
    """``{arm: {method: {"uses", "reveals", "auroc", "auroc_gap"}}}`` (see the module
    docstring): ``auroc`` and ``auroc_gap`` are :func:`~saljax.study.verdict.block` entries of
    the two tests (the used region's AUROC against 0.5; its AUROC minus the other region's)."""
    out = {}
    for arm, entry in arms.items():
        used = entry["uses"]
        methods = [m for (m, a, _) in results.scores if a == arm]
        methods = list(dict.fromkeys(methods))
        if used not in ("lesion", "marker") or not methods:
            out[arm] = {m: {"uses": used, "reveals": None} for m in methods}
            continue
        other = "marker" if used == "lesion" else "lesion"
        both = results.has_marker
        level, gap = {}, {}
        for method in methods:
            rows = [v for (me, a, _), v in results.scores.items() if me == method and a == arm]
            u = np.stack([r[used]["auroc"] for r in rows])
            o = np.stack([r[other]["auroc"] for r in rows])
            level[method] = statistics.difference(u, 0.5, **boot)
            gap[method] = statistics.difference((u - o)[:, both], **boot)
        rule = f"AUROC vs the {used} surely above 0.5 and above the AUROC vs the {other}"
        a = verdict.judge(level, f"AUROC vs {used}", "above", alpha, rule)
        b = verdict.judge(gap, f"AUROC {used} - {other}", "above", alpha, rule)
        out[arm] = {}
        for m in methods:
            says = (a[m]["saljax"], b[m]["saljax"])
            answer = ("yes" if says == ("pass", "pass") else
                      "no" if "fail" in says else "inconclusive")
            out[arm][m] = {"uses": used, "reveals": answer, "auroc": a[m], "auroc_gap": b[m]}
    return out
