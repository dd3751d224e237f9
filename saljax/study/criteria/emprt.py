"""eMPRT (Hedström et al. 2023, "Sanity Checks Revisited"): the relative rise in a map's
complexity from the trained to the fully randomized model.

Complexity is the discrete entropy of the map's histogram (Quantus's ``discrete_entropy``:
``N_BINS`` equal bins from the map's minimum to its maximum, the entropy in nats of the bin
counts) of the raw, signed attribution (Quantus's defaults: no absolute value, no
normalization; the histogram is scale-free anyway). Per image, ``(H_randomized - H_trained) /
H_trained`` against the deepest cascading level (the fully randomized model when
``fully_randomized_level``); a method whose maps follow the model should grow noisier, so
higher is better. A map with a single value has no complexity: its score is NaN (and, with
``collapsed_maps="exclude"``, so is the score of an image whose randomized map collapsed).

saljax's verdict (``verdict_block``): pass when the rise is surely above 0, fail when it is
surely below ``config.emprt.margin`` (a rise too small to tell the models apart; bootstrap over
replicate models and images, Holm over methods). The study had no such criterion.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from saljax.study import statistics, verdict as verdicts
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.render import ci, fmt, methods_of, plt, save

N_BINS = 100          # Quantus's discrete_entropy default


@functools.partial(jax.jit, static_argnames="n_bins")
def histogram_entropy(maps, n_bins: int = N_BINS):
    """Entropy in nats of each map's ``n_bins``-bin histogram over its own range: maps [N, H,
    W] -> [N] float32 (numpy's binning: half-open bins, the last one closed; a constant map
    falls in one bin)."""
    x = maps.reshape(maps.shape[0], -1).astype(jnp.float32)
    low, high = x.min(1, keepdims=True), x.max(1, keepdims=True)
    flat = high == low
    low, high = jnp.where(flat, low - 0.5, low), jnp.where(flat, high + 0.5, high)
    index = jnp.clip(jnp.floor((x - low) / (high - low) * n_bins), 0, n_bins - 1)
    counts = jax.vmap(lambda i: jnp.bincount(i.astype(jnp.int32), length=n_bins))(index)
    p = counts / x.shape[1]
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=1)


def relative_rise(trained, randomized) -> np.ndarray:
    """``(randomized - trained) / trained`` per image, NaN where ``trained`` is 0."""
    trained, randomized = np.asarray(trained, np.float64), np.asarray(randomized, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(trained > 0, (randomized - trained) / trained, np.nan)


@dataclasses.dataclass
class EmprtResults:
    """Per image ``{(method, model id): {"trained", "randomized": entropy [N], "emprt": [N]}}``
    and the randomized setting of each model."""
    ids: tuple
    scores: dict
    settings: dict

    def rows(self) -> list[dict]:
        """emprt.csv: one row per method, model and image."""
        return [{"method": method, "model": mid, "setting": self.settings[mid],
                 "image": self.ids[j], "entropy_trained": float(v["trained"][j]),
                 "entropy_randomized": float(v["randomized"][j]), "emprt": float(v["emprt"][j])}
                for (method, mid), v in self.scores.items() for j in range(len(self.ids))]


def evaluate(study) -> EmprtResults:
    """The first ``n_eval`` images' signed maps of every fully studied classifier, trained and
    at its deepest cascading level."""
    n, store, scores, settings = study.n_eval, study.store, {}, {}
    exclude = study.config.collapsed_maps == "exclude"
    for m in study.full:
        settings[m.id] = study.deepest(m.id)
        for method in study.methods:
            h = [np.asarray(histogram_entropy(jnp.asarray(store.signed(m.id, s, method, n))))
                 for s in ("trained", settings[m.id])]
            rise = relative_rise(*h)
            if exclude:
                rise = np.where(h[1] > 0, rise, np.nan)
            scores[(method, m.id)] = {"trained": h[0], "randomized": h[1], "emprt": rise}
    return EmprtResults(tuple(study.data.images.ids[:n]), scores, settings)


def _summarize(results, study, summary) -> Entry:
    """Per method: the per-image score (mean over the models), its mean and bootstrap CI, and
    the mean entropies."""
    out = {}
    for method in study.methods:
        per_model = [v for (m, _), v in results.scores.items() if m == method]
        score = statistics.mean_over_models([v["emprt"] for v in per_model])
        out[method] = {"emprt": {
            "score": statistics.summarize(score, **study.boot),
            "entropy_trained_mean": float(np.mean([v["trained"] for v in per_model])),
            "entropy_randomized_mean": float(np.mean([v["randomized"] for v in per_model]))}}
    found = {m: statistics.difference(np.stack([v["emprt"] for (k, _), v in
                                                results.scores.items() if k == m]),
                                      **study.boot) for m in study.methods}
    margin = study.config.emprt.margin
    blocks = verdicts.judge(
        found, "eMPRT", "above", study.config.verdicts.alpha,
        f"pass when the relative rise in entropy is above 0, fail when below {margin:g} "
        "(bootstrap over models and images; Holm over methods)", fail_below=margin)
    for m, b in blocks.items():
        out[m]["emprt"]["verdict_block"] = b
    return Entry(methods=out)


def section(summary, methods) -> list[str]:
    if "emprt" not in summary[methods[0]]:
        return []
    lines = ["", "## eMPRT: the rise in complexity under randomization", "",
             "The entropy of each map's histogram, trained and at the deepest cascading level, "
             "and its relative rise (Hedström et al. 2023); higher: the map follows the model.",
             "", "![emprt](figures/emprt.png)", "",
             "| method | eMPRT (95% CI) | entropy trained | entropy randomized |",
             "|---|---|---|---|"]
    for m in methods:
        e = summary[m]["emprt"]
        lines.append(f"| {m} | {ci(e['score'])} | {fmt(e['entropy_trained_mean'])} | "
                     f"{fmt(e['entropy_randomized_mean'])} |")
    return lines


def figures(summary, read, figure) -> None:
    methods = methods_of(summary)
    if "emprt" not in summary[methods[0]]:
        return
    s = [summary[m]["emprt"]["score"] for m in methods]
    mean = np.array([e["mean"] for e in s], float)
    err = np.abs(np.array([[e["ci_low"] for e in s], [e["ci_high"] for e in s]], float) - mean)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(np.arange(len(methods)), mean, yerr=err, color="tab:blue", alpha=0.7)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(methods)), methods, rotation=60, fontsize=7)
    ax.set_ylabel("relative rise in entropy")
    ax.set_title("eMPRT (95% CI over images)", fontsize=9)
    save(fig, figure("emprt"))


def overview(summary, method) -> dict:
    e = summary[method].get("emprt")
    return {} if e is None else {"eMPRT": fmt(e["score"]["mean"])}


def _check(config) -> None:
    margin = config.emprt.margin
    if not (isinstance(margin, (int, float)) and margin >= 0):
        raise ValueError(f"config.emprt.margin must be a number >= 0, got {margin!r}")


CRITERION = Criterion(name="emprt", evaluate=evaluate,
                       tables=lambda r: {"emprt.csv": r.rows()}, summarize=_summarize,
                       check=_check,
                       section=section, overview=overview, figures=figures)
