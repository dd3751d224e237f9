"""Criteria 3 and 4: repeatability (replicate models of one architecture) and reproducibility
(models of different architectures), as SSIM between the trained models' grayscale maps of the
same image, over all pairs of models. The baseline is the same comparison between the
localization baseline's replicates' maps.

A pair of maps with a collapsed (constant) one is left out (``collapsed_maps="exclude"``): two
blank maps do not agree. saljax's verdict (``verdict_block``): pass when the mean SSIM is surely
above the random-pair line of the models' own maps (maps of different images), fail when surely
below it (bootstrap over model pairs, images and the line's pairs; Holm over methods); the
study's: the mean above the localization baseline's replicate SSIM.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from saljax import metrics
from saljax.study import statistics, verdict as verdicts
from saljax.study.criteria.collapsed import collapsed
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.randomization import line_pairs
from saljax.study.criteria.render import baseline_label, ci, fmt, plt, save
from saljax.study.fields import choice

CRITERIA = ("repeatability", "reproducibility")
PAIRS = ("all", "first", "study")     # config.agreement_pairs
LOCALIZATION_SSIM = ("maps", "png8")  # config.localization_ssim


def model_pairs(classifiers, which: str = "all") -> dict:
    """``{"repeatability": [(a, b)], "reproducibility": [(a, b)]}`` of model ids: same
    architecture (different seeds) and different architectures. ``which="all"``: every pair;
    ``"first"``: each architecture's replicates 1 and 2, and each other architecture's first
    model with the first architecture's first; ``"study"`` (``repeatability_scores_rsna.py``):
    the same repeatability pairs, and each other architecture's first model with the first
    architecture's *second* replicate (its first when it has one)."""
    if which not in PAIRS:
        raise ValueError(f"agreement_pairs must be one of {', '.join(PAIRS)}, got {which!r}")
    out = {"repeatability": [], "reproducibility": []}
    if which in ("first", "study"):
        by_arch = {}
        for m in classifiers:
            by_arch.setdefault(m.arch, []).append(m.id)
        first, *others = by_arch.values()
        anchor = first[1] if which == "study" and len(first) > 1 else first[0]
        out["repeatability"] = [(ids[0], ids[1]) for ids in by_arch.values() if len(ids) > 1]
        out["reproducibility"] = [(anchor, ids[0]) for ids in others]
        return out
    for a, b in itertools.combinations(classifiers, 2):
        kind = "repeatability" if a.arch == b.arch else "reproducibility"
        out[kind].append((a.id, b.id))
    return out


@functools.partial(jax.jit, static_argnames="ssim_items")
def _ssim(a, b, ssim_items):
    return metrics.ssim(a, b, **dict(ssim_items))


def pair_ssim(maps_a, maps_b, ssim_kwargs: dict, chunk: int = 64) -> np.ndarray:
    """SSIM per image between two models' maps [N, H, W]: [N]."""
    fn = functools.partial(_ssim, ssim_items=tuple(sorted(ssim_kwargs.items())))
    return np.concatenate([np.asarray(fn(jnp.asarray(maps_a[s:s + chunk]),
                                         jnp.asarray(maps_b[s:s + chunk])))
                           for s in range(0, len(maps_a), chunk)])


def localizer_ssim(maps_a, maps_b, ssim_kwargs: dict, how: str = "maps") -> np.ndarray:
    """SSIM per image between two localization baselines' maps [N, H, W] in [0, 1]:
    ``"maps"``, as the saliency maps (``ssim_kwargs``); ``"png8"``, as the study read its
    U-Net outputs: written as 8-bit PNGs (``round(255 x map)``) and compared as uint8, which
    skimage scores with ``data_range`` 255."""
    if how not in LOCALIZATION_SSIM:
        raise ValueError(f"localization_ssim must be one of {', '.join(LOCALIZATION_SSIM)}, "
                         f"got {how!r}")
    if how == "maps":
        return pair_ssim(maps_a, maps_b, ssim_kwargs)
    png = lambda m: np.round(np.clip(np.asarray(m, np.float64), 0, 1) * 255).astype(np.float32)
    return pair_ssim(png(maps_a), png(maps_b), {**ssim_kwargs, "data_range": 255.0})


@dataclasses.dataclass
class AgreementResults:
    """Per-image SSIM between models' trained maps, ``{(criterion, method, model a, model b):
    [N]}`` (NaN: left out, a collapsed map), and between the localization baseline's
    replicates' maps (``localizer``, its record), ``{(a, b): [N]}`` (their indices); how many
    of each pair's images were left out ``{key: count}``; each model's random pairs' SSIM
    ``{(method, model id): [pairs]}``."""
    ids: tuple
    pairs: dict
    baseline: dict
    localizer: object
    left_out: dict = dataclasses.field(default_factory=dict)
    lines: dict = dataclasses.field(default_factory=dict)

    def rows(self) -> list[dict]:
        """agreement.csv: one row per criterion, method, model pair and image; then the
        baselines' pairs (criterion ``baseline``)."""
        name, kind = self.localizer.name, self.localizer.kind
        items = list(self.pairs.items()) + [
            (("baseline", kind, f"{name}_{a}", f"{name}_{b}"), v)
            for (a, b), v in self.baseline.items()]
        return [{"criterion": crit, "method": method, "model_a": a, "model_b": b,
                 "image": self.ids[j], "ssim": float(v[j])}
                for (crit, method, a, b), v in items for j in range(len(self.ids))]

    def baseline_ssim(self):
        """The baselines' per-image SSIM averaged over their pairs, or None without two."""
        return np.mean(np.stack(list(self.baseline.values())), 0) if self.baseline else None


def evaluate(study) -> AgreementResults:
    """SSIM of the first ``n_eval`` images' trained maps between pairs of classifiers (same
    architecture: repeatability; different: reproducibility; ``config.agreement_pairs``: see
    :func:`model_pairs`) and of the localization baseline's replicates."""
    n_eval, store, ssim_kwargs, config = study.n_eval, study.store, study.ssim, study.config
    exclude = config.collapsed_maps == "exclude"
    pairs, left_out, lines = {}, {}, {}
    index = {m.id: k for k, m in enumerate(study.classifiers)}
    for kind, plist in model_pairs(study.classifiers, config.agreement_pairs).items():
        for a, b in plist:
            for method in study.methods:
                ga, gb = (store.gray(x, "trained", method, n_eval) for x in (a, b))
                blank = collapsed(ga) | collapsed(gb)
                v = pair_ssim(ga, gb, ssim_kwargs).astype(np.float64)
                pairs[(kind, method, a, b)] = np.where(blank, np.nan, v) if exclude else v
                left_out[(kind, method, a, b)] = int(blank.sum())
                for x, g in ((a, ga), (b, gb)):
                    if (method, x) not in lines:
                        lines[(method, x)] = line_pairs(config, g, index[x], ssim_kwargs)
    maps = study.localizer_maps
    baseline = {(a, b): localizer_ssim(maps[a][:n_eval], maps[b][:n_eval], ssim_kwargs,
                                       config.localization_ssim)
                for a, b in itertools.combinations(range(len(maps)), 2)}
    return AgreementResults(tuple(study.data.images.ids[:n_eval]), pairs, baseline,
                            study.localizer, left_out, lines)


def summarize(results: AgreementResults, method: str, boot: dict) -> dict:
    """The ``repeatability`` and ``reproducibility`` entries of ``method``: per image the mean
    SSIM over model pairs, then its mean and bootstrap CI over images; Wilcoxon against the
    localization baselines' agreement."""
    seg = results.baseline_ssim()
    out = {}
    for crit in CRITERIA:
        per_pair = [v for (c, m, _, _), v in results.pairs.items() if c == crit and m == method]
        if not per_pair:
            out[crit] = {"ssim_mean": None}
            continue
        v = statistics.mean_over_models(per_pair)
        out[crit] = {"ssim_mean": float(np.nanmean(v)) if np.isfinite(v).any() else None,
                     "ssim": statistics.summarize(v, **boot),
                     "left_out": sum(n for (c, m, _, _), n in results.left_out.items()
                                     if c == crit and m == method)}
        if seg is not None:
            out[crit]["wilcoxon_vs_localization"] = statistics.wilcoxon(v, seg)
    return out


def tests(results: AgreementResults, crit: str, method: str, boot: dict) -> dict | None:
    """The mean SSIM of ``crit``'s model pairs against the random-pair line of the models'
    own maps (:func:`saljax.study.statistics.difference`; the line's models resampled on their
    own), or None without a pair."""
    keys = [k for k in results.pairs if k[0] == crit and k[1] == method]
    if not keys:
        return None
    models = list(dict.fromkeys(x for k in keys for x in k[2:]))
    return statistics.difference(np.stack([results.pairs[k] for k in keys]),
                                 np.stack([results.lines[(method, x)] for x in models]),
                                 shared_replicates=False, **boot)


VERDICT = ("pass when the mean SSIM between models' maps of the same image is above the "
           "random-pair line (maps of different images), fail when below (bootstrap over model "
           "pairs, images and pairs; Holm over methods)")


def _summarize(results, study, summary) -> Entry:
    seg = results.baseline_ssim()
    entries = {m: summarize(results, m, study.boot) for m in study.methods}
    seg_mean = float(np.nanmean(seg)) if seg is not None else float("nan")
    for crit in CRITERIA:
        found = {m: tests(results, crit, m, study.boot) for m in study.methods}
        found = {m: t for m, t in found.items() if t is not None}
        blocks = verdicts.judge(found, crit, "above", study.config.verdicts.alpha, VERDICT, {
            m: verdicts.study_rule(t["value"]["mean"], seg_mean, "above")
            for m, t in found.items()})
        for m, b in blocks.items():
            entries[m][crit]["verdict_block"] = b
    return Entry(baselines={"localization_repeatability": (
                     statistics.summarize(seg, **study.boot) if seg is not None else None)},
                 methods=entries)


def section(summary, methods) -> list[str]:
    lines = ["", "## Repeatability and reproducibility", ""]
    repeat = summary["baselines"].get("localization_repeatability")
    if repeat:
        lines += [f"Baseline: {summary['baselines'].get('localization_model', 'U-Net')} "
                  f"replicate SSIM {fmt(repeat['mean'])}.", ""]
    lines += ["![agreement](figures/agreement.png)", "",
              "| method | repeatability SSIM (95% CI) | reproducibility SSIM (95% CI) |",
              "|---|---|---|"]
    for m in methods:
        cells = [ci(summary[m][crit]["ssim"]) if summary[m][crit].get("ssim") else "n/a"
                 for crit in CRITERIA]
        lines.append(f"| {m} | {cells[0]} | {cells[1]} |")
    return lines


def figures(summary, read, figure) -> None:
    """SSIM between models' maps per method, beside the localization baseline's replicates."""
    rows = read("agreement.csv")
    methods = sorted({r["method"] for r in rows if r["criterion"] != "baseline"},
                     key=[r["method"] for r in rows].index)
    base = [float(r["ssim"]) for r in rows if r["criterion"] == "baseline"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, crit in zip(axes, CRITERIA):
        data = [[float(r["ssim"]) for r in rows if r["criterion"] == crit and r["method"] == m]
                for m in methods]
        labels = list(methods)
        if base:
            data.append(base)
            labels.append(baseline_label(summary))
        if any(len(d) for d in data):
            ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
            ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=60, fontsize=7)
        ax.set_title(crit)
        ax.set_ylabel("SSIM between models' maps")
    save(fig, figure("agreement"))


def overview(summary, method) -> dict:
    return {f"{crit} SSIM": fmt(summary[method][crit]["ssim_mean"]) for crit in CRITERIA}


CRITERION = Criterion(name="agreement", evaluate=evaluate,
                      tables=lambda r: {"agreement.csv": r.rows()}, summarize=_summarize,
                      check=lambda config: (choice(config, "agreement_pairs", PAIRS),
                                            choice(config, "localization_ssim",
                                                   LOCALIZATION_SSIM)),
                      section=section, overview=overview, figures=figures)
