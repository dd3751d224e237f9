"""Criteria 3 and 4: repeatability (replicate models of one architecture) and reproducibility
(models of different architectures), as SSIM between the trained models' grayscale maps of the
same image, over all pairs of models. The baseline is the same comparison between the
localization baseline's replicates' maps.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from saljax import metrics
from saljax.study import statistics
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.render import baseline_label, ci, fmt, plt, save
from saljax.study.fields import choice

CRITERIA = ("repeatability", "reproducibility")
PAIRS = ("all", "first")     # config.agreement_pairs


def model_pairs(classifiers, which: str = "all") -> dict:
    """``{"repeatability": [(a, b)], "reproducibility": [(a, b)]}`` of model ids: same
    architecture (different seeds) and different architectures. ``which="all"``: every pair;
    ``"first"`` (the study's): each architecture's replicates 1 and 2, and each other
    architecture's first model with the first architecture's."""
    if which not in PAIRS:
        raise ValueError(f"agreement_pairs must be 'all' or 'first', got {which!r}")
    out = {"repeatability": [], "reproducibility": []}
    if which == "first":
        by_arch = {}
        for m in classifiers:
            by_arch.setdefault(m.arch, []).append(m.id)
        first, *others = by_arch.values()
        out["repeatability"] = [(ids[0], ids[1]) for ids in by_arch.values() if len(ids) > 1]
        out["reproducibility"] = [(first[0], ids[0]) for ids in others]
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


@dataclasses.dataclass
class AgreementResults:
    """Per-image SSIM between models' trained maps, ``{(criterion, method, model a, model b):
    [N]}``, and between the localization baseline's replicates' maps (``localizer``, its
    record), ``{(a, b): [N]}`` (their indices)."""
    ids: tuple
    pairs: dict
    baseline: dict
    localizer: object

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
    n_eval, store, ssim_kwargs = study.n_eval, study.store, study.ssim
    pairs = {}
    for kind, plist in model_pairs(study.classifiers, study.config.agreement_pairs).items():
        for a, b in plist:
            for method in study.methods:
                pairs[(kind, method, a, b)] = pair_ssim(store.gray(a, "trained", method, n_eval),
                                                        store.gray(b, "trained", method, n_eval),
                                                        ssim_kwargs)
    maps = study.localizer_maps
    baseline = {(a, b): pair_ssim(maps[a][:n_eval], maps[b][:n_eval], ssim_kwargs)
                for a, b in itertools.combinations(range(len(maps)), 2)}
    return AgreementResults(tuple(study.data.images.ids[:n_eval]), pairs, baseline,
                            study.localizer)


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
        out[crit] = {"ssim_mean": float(np.nanmean(v)), "ssim": statistics.summarize(v, **boot)}
        if seg is not None:
            out[crit]["wilcoxon_vs_localization"] = statistics.wilcoxon(v, seg)
    return out


def _summarize(results, study, summary) -> Entry:
    seg = results.baseline_ssim()
    return Entry(baselines={"localization_repeatability": (
                     statistics.summarize(seg, **study.boot) if seg is not None else None)},
                 methods={m: summarize(results, m, study.boot) for m in study.methods})


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
                      check=lambda config: choice(config, "agreement_pairs", PAIRS),
                      section=section, overview=overview, figures=figures)
