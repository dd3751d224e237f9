"""sMPRT (Hedström et al. 2023, "Sanity Checks Revisited"; Quantus's ``SmoothMPRT``): the model
randomization test on denoised maps.

Each map is the mean of a method's maps of ``samples`` noisy copies of the image (Gaussian
noise, sd ``noise`` x the image's range; the last copy noise-free), so that noise the method
itself adds does not pass for sensitivity to the weights. Per level, the Spearman correlation
of their absolute values (Quantus's defaults: absolute values, Spearman) between the trained
model's and the randomized model's map, per image. The levels are randomized ``bottom_up``
(from the stem, Hedström et al.'s recommendation) or ``top_down`` (from the logits, the study's
cascade: the same randomized models as the randomization criterion), always ending with every
block re-drawn. The noise is the same for every model and level (maps differ through the
weights only); XRAI keeps the clean image's segments.

Pass line: the mean Spearman between denoised trained maps of different images (every pair).
saljax's verdict (``verdict_block``): pass when some level is surely below the line (Holm over
levels and methods), fail when the fully randomized model's maps are surely above it. With
``collapsed_maps="exclude"`` a constant denoised map is left out. Computed on the primary
architecture's models, for the first ``smprt.images`` evaluation images (at most one chunk:
the noisy copies run in the study's compiled programs, ``chunk`` inputs per call).
"""
from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np

import saljax.models as sm
import saljax.saliency as ss
from saljax import metrics
from saljax.data import to_model_input
from saljax.protocol import method_hparams
from saljax.saliency import xrai_regions as xr
from saljax.study import statistics
from saljax.study.criteria.collapsed import collapsed
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.randomization import verdict_blocks
from saljax.study.criteria.render import fmt
from saljax.study.fields import choice, count
from saljax.study.maps import Setting, maker, spread
from saljax.study.mapmaker import method_groups

ORDERS = ("bottom_up", "top_down")
NOISE_SEED_OFFSET = 3            # the noisy copies' key: key(config.seed + this)
QUANTUS_SAMPLES = 50             # Quantus's SmoothMPRT nr_samples (the config's default)


def levels(n_blocks: int, order: str, how_many: int) -> list[Setting]:
    """The trained model and ``how_many`` levels spread over the blocks (-1: every block), the
    full randomization always last. Bottom-up level k re-draws the k blocks nearest the input;
    top-down level k the k nearest the logits (the randomization criterion's ``cascading_k``)."""
    ks = sorted(set(spread(n_blocks, how_many, 1)) | {n_blocks})
    kind, prefix = ("bottom_up", "bottom_up") if order == "bottom_up" else ("cascading",
                                                                            "cascading")
    return [Setting("trained", "trained", 0, 0)] + [Setting(f"{prefix}_{k:02d}", kind, k, 0)
                                                    for k in ks]


def level_label(setting: Setting, names) -> str:
    """``trained``; a bottom-up level by the highest block it re-draws (``up to mixed3``); a
    top-down one by the deepest (as the randomization criterion)."""
    if setting.kind == "trained":
        return "trained"
    if setting.kind == "bottom_up":
        return f"up to {names[len(names) - setting.level]}"
    return names[setting.level - 1]


def noisy_copies(x, key, samples: int, noise: float):
    """[n, H, W, C] -> [n * samples, H, W, C]: each image ``samples`` times with Gaussian noise
    of sd ``noise`` x its range (max - min), the last copy without noise (Quantus's)."""
    span = x.max(axis=(1, 2, 3), keepdims=True) - x.min(axis=(1, 2, 3), keepdims=True)
    eps = jax.random.normal(key, (x.shape[0], samples) + x.shape[1:]) * (noise * span)[:, None]
    eps = eps.at[:, -1].set(0.0)
    return (x[:, None] + eps).reshape((-1,) + x.shape[1:])


def denoised(mm, variables, groups, copies, samples: int, chunk: int, segments, key) -> dict:
    """``{label: [n, H, W]}``: each method's signed map averaged over an image's noisy copies
    (``copies`` [n * samples, ...], image-major), ``chunk`` inputs per call."""
    total = copies.shape[0]
    pad = -total % chunk
    batch = jnp.concatenate([copies, jnp.repeat(copies[-1:], pad, 0)]) if pad else copies
    seg = None
    if segments is not None:   # each copy keeps its image's segments
        rows = np.minimum(np.arange(total + pad) // samples, total // samples - 1)
        seg = type(segments)(*[np.asarray(a)[rows] for a in segments])
    out = {}
    for group in groups:
        parts = []
        for c in range(0, total + pad, chunk):
            s = None if seg is None else type(seg)(*[a[c:c + chunk] for a in seg])
            maps = mm.maps(variables, group, batch[c:c + chunk],
                           jax.random.fold_in(key, c // chunk), s)
            parts.append({k: v["signed"] for k, v in maps.items()})
        for label in group:
            signed = np.concatenate([p[label] for p in parts])[:total]
            out[label] = signed.reshape((total // samples, samples) + signed.shape[1:]).mean(1)
    return out


@jax.jit
def _spearman_abs(a, b):
    return metrics.spearman(a, b, absolute=True)


def spearman_abs(a, b) -> np.ndarray:
    return np.asarray(_spearman_abs(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)),
                      np.float64)


@dataclasses.dataclass
class SmprtResults:
    """Per image ``{(method, model id): [levels, n]}`` Spearman of |denoised maps| to the
    trained model's (NaN: left out), which had a collapsed map, the trained maps' pairs
    ``{(method, model id): [pairs]}``, the levels (trained first) and their labels."""
    ids: tuple
    similarity: dict
    left_out: dict
    pair_values: dict
    settings: list
    labels: list
    order: str

    def rows(self) -> list[dict]:
        """smprt.csv: one row per method, model, level and image."""
        return [{"method": method, "model": mid, "order": self.order, "setting": st.name,
                 "level": self.labels[i], "image": self.ids[j], "spearman_abs": float(v[i, j]),
                 "left_out": int(self.left_out[(method, mid)][i, j])}
                for (method, mid), v in self.similarity.items()
                for i, st in enumerate(self.settings) for j in range(len(self.ids))]


def evaluate(study) -> SmprtResults:
    config, sc = study.config, study.config.smprt
    chunk = config.chunk
    n = min(study.n_eval, chunk, sc.images if sc.images > 0 else study.n_eval)
    models = study.full
    primary = [m for m in models if m.arch == study.classifiers[0].arch]
    names = sm.block_names(sm.create(primary[0].arch))
    sets = levels(len(names), sc.order, sc.levels)
    x = to_model_input(study.data.images.chunks(chunk)[:chunk])
    methods = method_hparams(config, primary[0].arch)
    groups = method_groups(methods)
    segments = None
    if any(ss.METHODS[hp.get("method", label)].needs_segments for label, hp in methods.items()):
        whole = xr.segments(np.asarray(x))      # the study's first chunk, its padded sizes
        segments = type(whole)(*[a[:n] for a in whole])
    exclude = config.collapsed_maps == "exclude"
    sims, left, pairs = {}, {}, {}
    every_pair = np.array(list(itertools.combinations(range(n), 2)), int).reshape(-1, 2)
    for m in primary:
        mm = maker(config, study.models.index(m), m, methods)
        # the model's own input scaling; the same noise for every model and level
        copies = noisy_copies(mm.inputs(study.data.images.chunks(chunk)[:n]),
                              jax.random.key(config.seed + NOISE_SEED_OFFSET), sc.samples,
                              sc.noise)
        per_level = []
        for st in sets:
            per_level.append(denoised(mm, mm.variables_for(st), groups, copies, sc.samples,
                                      chunk, segments, jax.random.fold_in(mm.noise_key, 0)))
        for label in methods:
            maps = [np.abs(lv[label]) for lv in per_level]
            blank = np.stack([collapsed(a) for a in maps])
            blank = blank | blank[0]
            v = np.stack([spearman_abs(maps[0], a) for a in maps])
            p = spearman_abs(maps[0][every_pair[:, 0]], maps[0][every_pair[:, 1]])
            if exclude:
                v = np.where(blank, np.nan, v)
                p = np.where(blank[0][every_pair[:, 0]] | blank[0][every_pair[:, 1]], np.nan, p)
            sims[(label, m.id)], left[(label, m.id)], pairs[(label, m.id)] = v, blank, p
        del mm
    return SmprtResults(tuple(study.data.images.ids[:n]), sims, left, pairs, sets,
                        [level_label(s, names) for s in sets], sc.order)


VERDICT = ("pass when some level's mean Spearman of |denoised maps| is below the random-pair "
           "line, fail when the fully randomized model's is above it (bootstrap over models, "
           "images and pairs; Holm over levels and methods)")


def _summarize(results: SmprtResults, study, summary) -> Entry:
    ids = [m.id for m in study.full if m.arch == study.classifiers[0].arch]
    sc = study.config.smprt
    entries, tests = {}, {}
    for method in study.methods:
        v = np.stack([results.similarity[(method, mid)] for mid in ids])   # [R, levels, n]
        line = np.stack([results.pair_values[(method, mid)] for mid in ids])
        with np.errstate(all="ignore"):
            curve = [float(np.nanmean(v[:, i])) if np.isfinite(v[:, i]).any() else None
                     for i in range(v.shape[1])]
        tests[method] = [statistics.difference(v[:, i], line, **study.boot)
                         for i in range(1, v.shape[1])]
        entries[method] = {
            "order": sc.order, "samples": sc.samples, "noise": sc.noise,
            "images": len(results.ids), "levels": results.labels, "spearman_abs_mean": curve,
            "pass_line": tests[method][-1]["line"]["mean"],
            "left_out": int(sum(results.left_out[(method, mid)].sum() for mid in ids))}
    blocks = verdict_blocks(tests, {}, study.config.verdicts.alpha, results.labels[1:], "sMPRT",
                            VERDICT)
    for method, e in entries.items():
        e["verdict_block"] = blocks[method]
    return Entry(methods={m: {"smprt": e} for m, e in entries.items()})


def section(summary, methods) -> list[str]:
    if "smprt" not in summary[methods[0]]:
        return []
    first = summary[methods[0]]["smprt"]
    fewer = (f" (fewer than Quantus's {QUANTUS_SAMPLES}: a CPU-sized config)"
             if first["samples"] < QUANTUS_SAMPLES else "")
    lines = ["", "## sMPRT: randomization on denoised maps", "",
             f"Each map averaged over {first['samples']} noisy copies{fewer} (noise sd "
             f"{first['noise']:g} x the image's range), randomized "
             f"{first['order'].replace('_', '-')}, on {first['images']} images; Spearman of "
             "absolute values to the trained model's map (Hedström et al. 2023).", "",
             "| method | pass line | " + " | ".join(first["levels"]) + " |",
             "|---|---|" + "---|" * len(first["levels"])]
    for m in methods:
        e = summary[m]["smprt"]
        lines.append(f"| {m} | {fmt(e['pass_line'])} | "
                     + " | ".join(fmt(v) for v in e["spearman_abs_mean"]) + " |")
    return lines


def _check(config) -> None:
    choice(config, "smprt.order", ORDERS)
    count(config, "smprt.samples")
    count(config, "smprt.levels", -1)
    count(config, "smprt.images", -1)
    if config.smprt.levels == 0 or config.smprt.images == 0:
        raise ValueError("config.smprt.levels and config.smprt.images must be -1 (all) or >= 1")
    if not (isinstance(config.smprt.noise, (int, float)) and config.smprt.noise >= 0):
        raise ValueError(f"config.smprt.noise must be >= 0, got {config.smprt.noise!r}")


CRITERION = Criterion(name="smprt", evaluate=evaluate,
                      tables=lambda r: {"smprt.csv": r.rows()}, summarize=_summarize,
                      check=_check, section=section)
