"""Criteria 3 and 4: repeatability (replicate models of one architecture) and reproducibility
(models of different architectures), as SSIM between the trained models' grayscale maps of the
same image, over all pairs of models. The baseline is the same comparison between replicate
segmentation models' probability maps.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from saljax import metrics
from saljax.models.registry import LOCALIZERS
from saljax.study import statistics


def model_pairs(classifiers, which: str = "all") -> dict:
    """``{"repeatability": [(a, b)], "reproducibility": [(a, b)]}`` of model ids: same
    architecture (different seeds) and different architectures. ``which="all"``: every pair;
    ``"first"`` (the study's): each architecture's replicates 1 and 2, and each other
    architecture's first model with the first architecture's."""
    if which not in ("all", "first"):
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
    [N]}``, and between the localization baselines' maps (U-Nets or RetinaNets,
    ``localizer``), ``{(a, b): [N]}`` (their indices)."""
    ids: tuple
    pairs: dict
    baseline: dict
    localizer: str = "unet"

    def rows(self) -> list[dict]:
        """agreement.csv: one row per criterion, method, model pair and image; then the
        baselines' pairs (criterion ``baseline``)."""
        name, kind = self.localizer, LOCALIZERS[self.localizer][0]
        items = list(self.pairs.items()) + [
            (("baseline", kind, f"{name}_{a}", f"{name}_{b}"), v)
            for (a, b), v in self.baseline.items()]
        return [{"criterion": crit, "method": method, "model_a": a, "model_b": b,
                 "image": self.ids[j], "ssim": float(v[j])}
                for (crit, method, a, b), v in items for j in range(len(self.ids))]

    def baseline_ssim(self):
        """The baselines' per-image SSIM averaged over their pairs, or None without two."""
        return np.mean(np.stack(list(self.baseline.values())), 0) if self.baseline else None


def evaluate(store, classifiers, methods, n_eval: int, ids, localizer_maps, localizer: str,
             ssim_kwargs: dict, which: str = "all") -> AgreementResults:
    """SSIM of the first ``n_eval`` images' trained maps between pairs of classifiers (same
    architecture: repeatability; different: reproducibility; ``which``: see
    :func:`model_pairs`) and of the localization baselines (``localizer``)."""
    pairs = {}
    for kind, plist in model_pairs(classifiers, which).items():
        for a, b in plist:
            for method in methods:
                pairs[(kind, method, a, b)] = pair_ssim(store.gray(a, "trained", method, n_eval),
                                                        store.gray(b, "trained", method, n_eval),
                                                        ssim_kwargs)
    baseline = {(a, b): pair_ssim(localizer_maps[a][:n_eval], localizer_maps[b][:n_eval],
                                  ssim_kwargs)
                for a, b in itertools.combinations(range(len(localizer_maps)), 2)}
    return AgreementResults(tuple(ids[:n_eval]), pairs, baseline, localizer)


def summarize(results: AgreementResults, method: str, boot: dict) -> dict:
    """The ``repeatability`` and ``reproducibility`` entries of ``method``: per image the mean
    SSIM over model pairs, then its mean and bootstrap CI over images; Wilcoxon against the
    localization baselines' agreement."""
    seg = results.baseline_ssim()
    out = {}
    for crit in ("repeatability", "reproducibility"):
        per_pair = [v for (c, m, _, _), v in results.pairs.items() if c == crit and m == method]
        if not per_pair:
            out[crit] = {"ssim_mean": None}
            continue
        v = statistics.mean_over_models(per_pair)
        out[crit] = {"ssim_mean": float(np.nanmean(v)), "ssim": statistics.summarize(v, **boot)}
        if seg is not None:
            out[crit]["wilcoxon_vs_localization"] = statistics.wilcoxon(v, seg)
    return out
