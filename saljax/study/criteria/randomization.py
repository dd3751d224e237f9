"""Criterion 2, sensitivity to weight randomization (Adebayo et al.'s model randomization test).

For every model, method and randomization setting: SSIM of the level's grayscale map to the
trained model's, and Spearman rank correlation with and without absolute values of the signed
maps, per image. The pass line of a method is the mean SSIM between its trained maps of
different images (random pairs): maps no more alike than that carry no trace of the trained
model. As the study defined it (Arun et al.: a map "reaches degradation if it goes below its
randomization baseline"), a method passes (``verdict = "pass"``) when the mean SSIM of some
cascading level, across images and replicate models, falls below its pass line; it "fails" when
the maps of every level, down to the fully randomized model, still resemble the trained ones
more than two unrelated images' maps do. The summary also says whether the final level is
below the line.

saljax's verdict (``verdict_block``, :mod:`saljax.study.verdict`) asks the same with its
uncertainty: per level, the mean SSIM against the pass line by a bootstrap over replicate
models, images and the line's pairs; pass when some level is surely below the line (Holm over
levels and methods), fail when the deepest level is surely above it. A comparison with a
collapsed (constant) map, trained or randomized, is left out (``collapsed_maps="exclude"``)
and counted; so is a random pair with one.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

import saljax.models as sm
from saljax import metrics
from saljax.study import statistics, verdict as verdicts
from saljax.study.criteria.collapsed import collapsed
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.render import fmt, methods_of, plt, save
from saljax.study.fields import choice
from saljax.study.maps import level_name

VERDICT_RULE = ("pass when the mean SSIM of a cascading randomization level falls below the "
                "random-pair pass line (the study's 'reaches degradation')")
LINE_MODELS = ("all", "first")         # config.pass_line_models
PAIR_SEED_OFFSET = 1                   # the random pairs' key: key(config.seed + this)


@functools.partial(jax.jit, static_argnames="ssim_items")
def _similarity(ga, gb, sa, sb, ssim_items):
    return {"ssim": metrics.ssim(ga, gb, **dict(ssim_items)),
            "spearman": metrics.spearman(sa, sb),
            "spearman_abs": metrics.spearman(sa, sb, absolute=True)}


def similarity(gray_a, gray_b, signed_a, signed_b, ssim_kwargs: dict, chunk: int = 64) -> dict:
    """``{"ssim", "spearman", "spearman_abs"}`` per image: [N] each."""
    fn = functools.partial(_similarity, ssim_items=tuple(sorted(ssim_kwargs.items())))
    out = {"ssim": [], "spearman": [], "spearman_abs": []}
    for s in range(0, len(gray_a), chunk):
        part = fn(*(jnp.asarray(x[s:s + chunk], jnp.float32)
                    for x in (gray_a, gray_b, signed_a, signed_b)))
        for k in out:
            out[k].append(np.asarray(part[k]))
    return {k: np.concatenate(v) for k, v in out.items()}


@functools.partial(jax.jit, static_argnames="ssim_items")
def _pair_ssim(a, b, ssim_items):
    return metrics.ssim(a, b, **dict(ssim_items))


def pair_values(gray, key, n_pairs: int, ssim_kwargs: dict, per_image: bool = False,
                left_out=None, chunk: int = 256) -> np.ndarray:
    """SSIM between maps of different images of one model ([N, H, W] maps): ``n_pairs`` random
    pairs, or ``n_pairs`` per image (the study's 50), ``chunk`` pairs at a time: [pairs]
    float64, NaN for a pair with a map that ``left_out`` [N] marks (collapsed)."""
    pairs = np.asarray(metrics.random_pairs(key, len(gray), n_pairs, per_image))
    items = tuple(sorted(ssim_kwargs.items()))
    values = np.concatenate([
        np.asarray(_pair_ssim(jnp.asarray(gray[p[:, 0]]), jnp.asarray(gray[p[:, 1]]), items))
        for p in np.array_split(pairs, max(1, -(-len(pairs) // chunk)))]).astype(np.float64)
    if left_out is not None:
        values[left_out[pairs[:, 0]] | left_out[pairs[:, 1]]] = np.nan
    return values


def line_pairs(config, gray, index: int, ssim_kwargs: dict) -> np.ndarray:
    """The study's random pairs of one model's trained maps [N, H, W], as :func:`pair_values`:
    ``config.random_pairs`` pairs (or ``random_pairs_per_image`` per image) drawn from
    ``fold_in(key(seed + PAIR_SEED_OFFSET), index)``, ``index`` the model's place among the
    classifiers, a pair with a collapsed map NaN when ``collapsed_maps="exclude"``. Every
    criterion that needs a model's pass line draws it here, so they draw the same pairs."""
    per_image = config.random_pairs_per_image
    return pair_values(gray, jax.random.fold_in(jax.random.key(config.seed + PAIR_SEED_OFFSET),
                                                index),
                       per_image or config.random_pairs, ssim_kwargs, per_image=per_image > 0,
                       left_out=collapsed(gray) if config.collapsed_maps == "exclude" else None)


def verdict(level_ssim_means, line: float) -> str:
    """"pass" when any cascading level's mean SSIM (trained model excluded) is below ``line``."""
    levels = np.asarray(level_ssim_means, np.float64)
    levels = levels[np.isfinite(levels)]
    if not levels.size or not np.isfinite(line):
        return "undetermined"
    return "pass" if levels.min() < line else "fail"


@dataclasses.dataclass
class RandomizationResults:
    """Per image, each setting's similarity to the trained maps, ``{(method, model id):
    {"ssim" | "spearman" | "spearman_abs": [settings, N]}}`` (settings as in ``settings``; NaN
    where ``left_out``: a collapsed map when they are excluded), which comparisons had a
    collapsed map ``{(method, model id): [settings, N] bool}``, and the random pairs' SSIM
    ``{(method, model id): [pairs]}`` (NaN: left out)."""
    ids: tuple
    classifiers: list
    settings: dict
    similarity: dict
    pair_values: dict
    left_out: dict

    @property
    def pass_lines(self) -> dict:
        """``{(method, model id): line}``: the mean SSIM of each model's random pairs."""
        return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                for k, v in self.pair_values.items()}

    def rows(self) -> list[dict]:
        """randomization.csv: one row per method, model, setting and image."""
        arch = {m.id: m.arch for m in self.classifiers}
        return [{"method": method, "model": mid, "arch": arch[mid], "kind": st.kind,
                 "level": st.level, "setting": st.name, "image": self.ids[j],
                 **{k: float(v[i, j]) for k, v in sim.items()},
                 "left_out": int(self.left_out[(method, mid)][i, j])}
                for (method, mid), sim in self.similarity.items()
                for i, st in enumerate(self.settings[mid]) for j in range(len(self.ids))]

    def line_rows(self) -> list[dict]:
        """pass_lines.csv: one row per method and model (pairs with a collapsed map left
        out)."""
        lines = self.pass_lines
        return [{"method": method, "model": mid, "pass_line": lines[(method, mid)],
                 "pairs": int(v.size), "pairs_left_out": int(np.isnan(v).sum())}
                for (method, mid), v in self.pair_values.items()]

    def values(self, column: str, method: str, model_id: str, kind: str, level: int):
        """``column`` per image for the setting of ``kind`` and ``level``: [N]."""
        i = next(i for i, st in enumerate(self.settings[model_id])
                 if st.kind == kind and st.level == level)
        return self.similarity[(method, model_id)][column][i]


def evaluate(study) -> RandomizationResults:
    """Every setting's maps of the first ``n_eval`` images against the trained maps of each
    fully studied classifier, and the random-pair pass line of each model and method:
    ``config.random_pairs`` pairs, or ``config.random_pairs_per_image`` per image when > 0
    (from ``fold_in(key(seed + 1), k)``, k the model's index among those classifiers)."""
    config, store, n_eval, ssim_kwargs = study.config, study.store, study.n_eval, study.ssim
    exclude = config.collapsed_maps == "exclude"
    sims, pairs, left_out = {}, {}, {}
    classifiers = study.full
    for mi, m in enumerate(tqdm(classifiers, desc="randomization", disable=not study.progress,
                                mininterval=2.0)):
        sets = study.settings[m.id]
        for method in study.methods:
            g0 = store.gray(m.id, "trained", method, n_eval)
            s0 = store.signed(m.id, "trained", method, n_eval)
            blank0 = collapsed(g0)
            pairs[(method, m.id)] = line_pairs(config, g0, mi, ssim_kwargs)
            grays = [store.gray(m.id, st.name, method, n_eval) for st in sets]
            sim = similarity(   # every setting's maps against the trained ones, in few calls
                np.concatenate(grays), np.concatenate([g0] * len(sets)),
                np.concatenate([store.signed(m.id, st.name, method, n_eval) for st in sets]),
                np.concatenate([s0] * len(sets)), ssim_kwargs)
            blank = np.stack([collapsed(g) | blank0 for g in grays])
            sim = {k: v.reshape(len(sets), n_eval) for k, v in sim.items()}
            if exclude:
                sim = {k: np.where(blank, np.nan, v) for k, v in sim.items()}
            sims[(method, m.id)], left_out[(method, m.id)] = sim, blank
    return RandomizationResults(tuple(study.data.images.ids[:n_eval]), list(classifiers),
                                study.settings, sims, pairs, left_out)


def summarize(results: RandomizationResults, method: str, models, block_names, boot,
              line_models: str = "all") -> dict:
    """The ``randomization`` entry of ``method`` for ``models`` (the primary architecture's):
    the cascading curve (trained first; mean over images, then over models), its sd across
    models, Spearman curves, the independent curve, the pass line (the mean of the models'
    lines, or the first model's: ``line_models="first"``, the study's), the verdict and the
    final level's statistics."""
    ids = [m.id for m in models]
    cascading = [s for s in results.settings[ids[0]] if s.kind == "cascading"]
    levels = [0] + [s.level for s in cascading]
    curves = {"ssim": [], "spearman": [], "spearman_abs": []}
    sds = []
    for lvl in levels:
        kind = "trained" if lvl == 0 else "cascading"
        for col, curve in curves.items():
            per_model = [np.nanmean(results.values(col, method, mid, kind, lvl).astype(np.float64))
                         for mid in ids]
            curve.append(float(np.nanmean(per_model)))
            if col == "ssim":
                sds.append(float(np.std(per_model, ddof=1)) if len(per_model) > 1 else 0.0)
    independent = [s for s in results.settings[ids[0]] if s.kind == "independent"]
    indep_curve = [float(np.nanmean(np.concatenate([
        results.values("ssim", method, mid, "independent", s.level) for mid in ids]).astype(
            np.float64))) for s in independent]
    line_ids = ids[:1] if line_models == "first" else ids
    lines = [results.pass_lines[(method, mid)] for mid in line_ids]   # NaN: every map collapsed
    line = float(np.nanmean(lines)) if np.isfinite(lines).any() else float("nan")
    left_out = [int(sum(results.left_out[(method, mid)][i].sum() for mid in ids))
                for i, st in enumerate(results.settings[ids[0]])
                if st.kind in ("trained", "cascading")]
    curve = curves["ssim"]
    final = statistics.mean_over_models([results.values("ssim", method, mid, "cascading",
                                                        levels[-1]) for mid in ids])
    below = [lvl for lvl, c in zip(levels, curve) if c < line]
    return {
        "architecture": models[0].arch, "levels": levels,
        "level_blocks": ["trained"] + [level_name(s.kind, s.level, block_names)
                                       for s in cascading],
        "cascading_ssim_mean": curve, "cascading_ssim_sd_across_models": sds,
        "cascading_spearman_mean": curves["spearman"],
        "cascading_spearman_abs_mean": curves["spearman_abs"],
        "independent_blocks": [level_name(s.kind, s.level, block_names) for s in independent],
        "independent_ssim_mean": indep_curve,
        "pass_line": line, "verdict": verdict(curve[1:], line),
        "left_out_by_level": left_out,
        "first_level_below_pass_line": below[0] if below else None,
        "final_level_below_pass_line": bool(curve[-1] < line),
        "final_level_ssim": statistics.summarize(final, **boot),
        "wilcoxon_final_vs_pass_line": statistics.wilcoxon(final, line)}


def level_tests(results: RandomizationResults, method: str, models, boot: dict,
                line_models: str = "all") -> list[dict]:
    """Each cascading level's mean SSIM against the pass line
    (:func:`saljax.study.statistics.difference`: replicate models, images and pairs
    resampled), from the shallowest level to the deepest."""
    ids = [m.id for m in models]
    line_ids = ids[:1] if line_models == "first" else ids
    line = np.stack([results.pair_values[(method, mid)] for mid in line_ids])
    levels = [s.level for s in results.settings[ids[0]] if s.kind == "cascading"]
    return [statistics.difference(
        np.stack([results.values("ssim", method, mid, "cascading", lvl) for mid in ids]),
        line, shared_replicates=line_models != "first", **boot) for lvl in levels]


VERDICT = ("pass when some cascading level's mean SSIM is below the random-pair line, fail when "
           "the deepest level's is above it (bootstrap over models, images and pairs; Holm over "
           "levels and methods)")


def verdict_blocks(tests: dict, study_verdicts: dict, alpha: float, levels: list,
                   label: str = "MPRT", rule: str = VERDICT) -> dict:
    """``{method: verdict block}`` from each method's level tests (:func:`level_tests`, one
    per entry of ``levels``, their names): pass when some level is surely below the line
    (Holm over every method's levels), fail when the deepest level is surely above it (Holm
    over methods). The block's value is the deciding level's (``at``): the most significant
    one when it passes, else the deepest; ``levels`` holds every level's value, line and
    corrected ``p_pass``."""
    below = verdicts.corrected({m: [statistics.p_below(t) for t in ts]
                                for m, ts in tests.items()})
    above = verdicts.corrected({m: [statistics.p_above(ts[-1])] for m, ts in tests.items()})
    out = {}
    for m, ts in tests.items():
        p = np.asarray(below[m], np.float64)
        best = int(np.nanargmin(p)) if np.isfinite(p).any() else len(ts) - 1
        p_pass = float(p[best]) if np.isfinite(p).any() else float("nan")
        block = verdicts.block(label, ts[-1], "below", p_pass, above[m][0], alpha,
                               study_verdicts.get(m), rule)
        at = best if block["saljax"] == "pass" else len(ts) - 1
        out[m] = verdicts.block(label, ts[at], "below", p_pass, above[m][0], alpha,
                                study_verdicts.get(m), rule, at=levels[at])
        out[m]["levels"] = [{"at": name, "value": t["value"], "line": t["line"],
                             "p_pass": verdicts.number(q)}
                            for name, t, q in zip(levels, ts, below[m])]
    return out


def _summarize(results, study, summary) -> Entry:
    """The primary architecture's curves and verdicts per method."""
    primary = study.classifiers[0].arch
    models = [m for m in study.classifiers if m.arch == primary]
    names = sm.block_names(sm.create(primary))
    line_models = study.config.pass_line_models
    entries = {m: summarize(results, m, models, names, study.boot, line_models)
               for m in study.methods}
    tests = {m: level_tests(results, m, models, study.boot, line_models) for m in study.methods}
    first = entries[study.methods[0]]
    blocks = verdict_blocks(tests, {m: e["verdict"] if e["verdict"] in ("pass", "fail")
                                    else None for m, e in entries.items()},
                            study.config.verdicts.alpha, first["level_blocks"][1:])
    for m, e in entries.items():
        e["verdict_block"] = blocks[m]
    return Entry(study={"verdict_rule": VERDICT_RULE},
                 methods={m: {"randomization": e} for m, e in entries.items()})


def _first_below(r) -> str:
    """The first randomized block whose mean SSIM is below the pass line, or a dash."""
    lvl = r.get("first_level_below_pass_line")
    return "-" if lvl is None else r["level_blocks"][r["levels"].index(lvl)]


def section(summary, methods) -> list[str]:
    first = summary[methods[0]]["randomization"]
    lines = ["", "## Sensitivity to weight randomization", "",
             f"Verdict rule: {summary['study']['verdict_rule']}.", "",
             "![cascading](figures/cascading.png)", "",
             "| method | pass line | below the line from | verdict | "
             + " | ".join(first["level_blocks"]) + " |",
             "|---|---|---|---|" + "---|" * len(first["levels"])]
    for m in methods:
        r = summary[m]["randomization"]
        dropped = r.get("left_out_by_level") or [0] * len(r["cascading_ssim_mean"])
        lines.append(f"| {m} | {fmt(r['pass_line'])} | {_first_below(r)} | {r['verdict']} | "
                     + " | ".join(fmt(v) + (f" ({k} left out)" if k else "")
                                  for v, k in zip(r["cascading_ssim_mean"], dropped)) + " |")
    if any(any(summary[m]["randomization"].get("left_out_by_level") or [0]) for m in methods):
        lines += ["", "A level's mean leaves out the comparisons with a collapsed (constant) "
                  "map (`collapsed_maps`): their count is beside it; n/a where all were."]
    return lines


def figures(summary, read, figure) -> None:
    """Each method's cascading curves (SSIM with its sd across models, Spearman of absolute
    values) and its pass line."""
    methods = methods_of(summary)
    cols = min(4, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False,
                             sharey=True)
    for ax, m in zip(axes.flat, methods):
        r = summary[m]["randomization"]
        x = np.arange(len(r["cascading_ssim_mean"]))
        ax.errorbar(x, r["cascading_ssim_mean"], yerr=r["cascading_ssim_sd_across_models"],
                    marker="o", ms=3, label="SSIM")
        ax.plot(x, r["cascading_spearman_abs_mean"], marker="s", ms=3, alpha=0.7,
                label="Spearman |.|")
        ax.axhline(r["pass_line"], color="red", ls="--", lw=1, label="pass line")
        ax.set_xticks(x, r["level_blocks"], rotation=70, fontsize=6)
        ax.set_title(f"{m} ({r['verdict']})", fontsize=8)
        ax.set_ylim(-0.2, 1.05)
    for ax in axes.flat[len(methods):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("Cascading randomization: similarity to the trained model's map")
    save(fig, figure("cascading"))


def overview(summary, method) -> dict:
    r = summary[method]["randomization"]
    block = r.get("verdict_block")
    return {"final cascading SSIM": fmt(r["cascading_ssim_mean"][-1]),
            "pass line": fmt(r["pass_line"]), "below the line from": _first_below(r),
            "MPRT (saljax / study)": (f"{block['saljax']} / " if block else "") + r["verdict"]}


CRITERION = Criterion(
    name="randomization", evaluate=evaluate,
    tables=lambda r: {"randomization.csv": r.rows(), "pass_lines.csv": r.line_rows()},
    summarize=_summarize, check=lambda config: choice(config, "pass_line_models", LINE_MODELS),
    section=section, overview=overview, figures=figures)
