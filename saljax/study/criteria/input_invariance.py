"""Input invariance (Kindermans et al. 2017, "The (Un)reliability of saliency methods").

A model and its twin whose first layer absorbs a constant shift of the input
(:func:`saljax.models.twin.shifted_input_twin`) compute the same logits from ``x`` and
``x + shift``; a method that explains the model, not the input's offset, gives both the same
map. Per method, on the first ``input_invariance.images`` evaluation images (at most one chunk)
of the primary architecture's first model, with the same noise for both: the SSIM of the
grayscale maps and the largest absolute difference of the signed maps relative to the
original's largest value. saljax's verdict (``verdict_block``) is on the attributions, as
Kindermans et al. define invariance: pass (invariant) when the mean relative difference is
surely below ``input_invariance.max_difference``, fail when surely above (bootstrap over
images; Holm over methods). The grayscale maps' SSIM is reported beside it: it can stay high
for a method that is not invariant (Input x Gradient of smooth images). A model without an
exact twin (its first layer pads the input, as DenseNet's) is reported as skipped.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

import saljax.saliency as ss
from saljax.models.twin import shifted_input_twin
from saljax.protocol import method_hparams
from saljax.saliency import xrai_regions as xr
from saljax.study import statistics, verdict as verdicts
from saljax.study.criteria.collapsed import collapsed
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.render import fmt
from saljax.study.criteria.agreement import pair_ssim
from saljax.study.fields import count
from saljax.study.mapmaker import method_groups
from saljax.study.maps import maker


@dataclasses.dataclass
class InvarianceResults:
    """Per image ``{method: {"ssim", "max_difference": [n]}}`` for ``model`` (its id), or a
    ``skipped`` reason."""
    ids: tuple
    model: str
    shift: float
    scores: dict
    skipped: str | None = None

    def rows(self) -> list[dict]:
        """input_invariance.csv: one row per method and image."""
        return [{"method": method, "model": self.model, "shift": self.shift,
                 "image": self.ids[j], **{k: float(v[k][j]) for k in ("ssim", "max_difference")}}
                for method, v in self.scores.items() for j in range(len(self.ids))]


def relative_max_difference(a, b) -> np.ndarray:
    """max |a - b| / max |a| per map [n, H, W] (0 for two zero maps, inf for a zero ``a``)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    gap = np.abs(a - b).reshape(len(a), -1).max(1)
    scale = np.abs(a).reshape(len(a), -1).max(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap == 0, 0.0, gap / scale)


def evaluate(study) -> InvarianceResults:
    config, ic = study.config, study.config.input_invariance
    m = study.full[0]
    n = min(ic.images, study.n_eval, config.chunk)
    ids = tuple(study.data.images.ids[:n])
    methods = method_hparams(config, m.arch)
    mm = maker(config, study.models.index(m), m, methods)
    x = mm.inputs(study.data.images.chunks(config.chunk)[:config.chunk])
    try:
        twin = shifted_input_twin(mm.model, mm.variables, ic.shift, probe=x[:4])
    except ValueError as e:
        return InvarianceResults(ids, m.id, ic.shift, {}, skipped=str(e))
    segments = None
    if any(ss.METHODS[hp.get("method", label)].needs_segments for label, hp in methods.items()):
        segments = xr.segments(np.asarray(x))
    key = jax.random.fold_in(mm.noise_key, 0)
    exclude = config.collapsed_maps == "exclude"
    scores = {}
    for group in method_groups(methods):
        a = mm.maps(mm.variables, group, x, key, segments)
        b = mm.maps(twin, group, jnp.asarray(x) + ic.shift, key, segments)
        for label in group:
            ga, gb = a[label]["gray"][:n], b[label]["gray"][:n]
            ssim = pair_ssim(ga, gb, study.ssim).astype(np.float64)
            if exclude:
                ssim = np.where(collapsed(ga) | collapsed(gb), np.nan, ssim)
            scores[label] = {"ssim": ssim, "max_difference": relative_max_difference(
                a[label]["signed"][:n], b[label]["signed"][:n])}
    return InvarianceResults(ids, m.id, ic.shift, {l: scores[l] for l in methods})


def _summarize(results: InvarianceResults, study, summary) -> Entry:
    if results.skipped:
        return Entry(study={"input_invariance_skipped": results.skipped})
    ic = study.config.input_invariance
    found = {m: statistics.difference(results.scores[m]["max_difference"][None],
                                      ic.max_difference, **study.boot) for m in study.methods}
    rule = ("pass when the largest difference between the attributions of the model and of its "
            f"shifted-input twin is below {ic.max_difference:g} of the largest attribution, fail "
            "when above (mean over images; bootstrap over images; Holm over methods)")
    blocks = verdicts.judge(found, "input invariance", "below", study.config.verdicts.alpha,
                            rule)
    out = {}
    for m, t in found.items():
        d = results.scores[m]["max_difference"]
        out[m] = {"input_invariance": {
            "model": results.model, "shift": results.shift,
            "ssim": statistics.summarize(results.scores[m]["ssim"], **study.boot),
            "max_difference_median": float(np.median(d)),
            "verdict_block": blocks[m]}}
    return Entry(study={"input_invariance_skipped": None}, methods=out)


def section(summary, methods) -> list[str]:
    if summary["study"].get("input_invariance_skipped"):
        return ["", "## Input invariance", "",
                f"Skipped: {summary['study']['input_invariance_skipped']}."]
    if "input_invariance" not in summary[methods[0]]:
        return []
    first = summary[methods[0]]["input_invariance"]
    lines = ["", "## Input invariance", "",
             f"Maps of {first['model']} and of its twin that takes the input shifted by "
             f"{first['shift']:g} (Kindermans et al. 2017): the same logits, so an invariant "
             "method gives the same map.", "",
             "| method | max abs difference (relative, mean) | median | SSIM of the "
             "grayscale maps (95% CI) | invariant |", "|---|---|---|---|---|"]
    for m in methods:
        e = summary[m]["input_invariance"]
        s = e["ssim"]
        d = e["verdict_block"]["value"]
        lines.append(f"| {m} | {fmt(d['mean'], 4)} | {fmt(e['max_difference_median'], 4)} | "
                     f"{fmt(s['mean'])} ({fmt(s['ci_low'])}-{fmt(s['ci_high'])}) | "
                     f"{e['verdict_block']['saljax']} |")
    return lines


def _check(config) -> None:
    count(config, "input_invariance.images", 1)
    ic = config.input_invariance
    if not (isinstance(ic.shift, (int, float)) and ic.shift != 0 and abs(ic.shift) <= 2):
        raise ValueError(f"config.input_invariance.shift must be nonzero with |shift| <= 2 "
                         f"(model inputs stay within +-3), got {ic.shift!r}")
    if not (isinstance(ic.max_difference, (int, float)) and ic.max_difference > 0):
        raise ValueError(f"config.input_invariance.max_difference must be > 0, got "
                         f"{ic.max_difference!r}")


CRITERION = Criterion(name="input_invariance", evaluate=evaluate,
                      tables=lambda r: {"input_invariance.csv": r.rows()},
                      summarize=_summarize, check=_check, section=section)
