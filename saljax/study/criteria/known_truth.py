"""Known truth (synthetic data): does a map show what the model actually uses?

On the first ``known_truth.images`` evaluation images (ROAD: the first ``road_images``; test
positives, a marker on about half, independent of the label):

* **reliance**: every model of every arm (the first architecture's true-label replicates, the
  "normal" arm, and its replicates trained on the shortcut variant, one "shortcut" arm per
  ``shortcut_strengths``), with the lesion, or the marker, removed by in-distribution infill:
  the explained class's probability and logit drops and whether the prediction flips
  (necessity);
* **sufficiency and the conflict set**: a marker pasted (from a study image that carries one,
  at its place) into test negatives without one, and whether the model then predicts
  positive; with the study's positives that carry no marker (lesion without marker), how
  often the model follows the marker where marker and lesion disagree; from these, whether an
  arm is a shortcut model and what it uses (:mod:`.known_truth_scores`);
* **region scores**: each method's trained maps against the lesion mask and the marker's
  square (AUROC, AUPRC over prevalence, pointing game, mass ratio, AUPRC), with intervals,
  and whether each map reveals what its model uses; the average training marker mask's scores
  as the baseline;
* **ROAD** (:mod:`saljax.faithfulness.road`): MoRF and LeRF curves of each method's maps on the
  first normal-arm model, beside a random map and an occlusion map with in-distribution fill.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
from tqdm.auto import tqdm

import saljax.saliency as ss
from saljax import data as sd
from saljax import faithfulness
from saljax.data import to_model_input
from saljax.data.synthetic_images import SyntheticConfig
from saljax.faithfulness.forward import logits
from saljax.faithfulness.road import RANKINGS
from saljax.models import checkpoint as model_checkpoint
from saljax.saliency.infill import INFILLS
from saljax.study import statistics
from saljax.study.criteria import known_truth_scores as scoring
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.known_truth_report import figures, section
from saljax.study.fields import count
from saljax.study.inputs import shortcut_arms, shortcut_options
from saljax.study.lineup import is_shortcut
from saljax.study.maps import scaling_of

REGIONS = ("lesion", "marker")
KEY_SEED_OFFSET = 2          # infill and ROAD noise: key(config.seed + this)
# what the shortcut arm's data options may change (the rest is the study's data)
SHORTCUT_DATA = ("lesion_absent", "lesion_contrast", "lesion_radius", "max_lesions",
                 "positive_fraction", "noise")


@dataclasses.dataclass
class KnownTruthResults:
    """Per image: ``reliance[(arm, model, region, infill)]`` ({field: [n]}, the region's
    images only), ``scores[(method, arm, model)]`` ({"lesion", "marker": {score: [n]}}, marker
    NaN without one), ``marker_baseline[arm]`` ({score: [n]}: the arm's average training marker
    mask), ``road[method]`` (ROAD's output), ``sufficiency[(arm, model)]`` ({"positive",
    "positive_added": [negatives] bool, "lesion_only_positive": [positives without a marker]
    bool}), ``strengths[arm]`` (the marker's strength in the arm's training data; None for the
    normal arm, whose marker is independent of the label)."""
    ids: tuple
    has_marker: np.ndarray
    reliance: dict
    scores: dict
    marker_baseline: dict
    road: dict
    sufficiency: dict = dataclasses.field(default_factory=dict)
    strengths: dict = dataclasses.field(default_factory=dict)

    def sufficiency_rows(self) -> list[dict]:
        """sufficiency.csv: per model, each negative with a marker pasted in and each
        positive without a marker: whether the model predicts positive."""
        rows = []
        for (arm, model), v in self.sufficiency.items():
            rows += [{"arm": arm, "model": model, "set": "marker_added_to_negative",
                      "image": f"negative{j}", "positive_before": bool(b),
                      "positive": bool(a)}
                     for j, (b, a) in enumerate(zip(v["positive"], v["positive_added"]))]
            lone = [i for i, m in zip(self.ids, self.has_marker) if not m]
            rows += [{"arm": arm, "model": model, "set": "lesion_without_marker", "image": i,
                      "positive_before": bool(p), "positive": bool(p)}
                     for i, p in zip(lone, v["lesion_only_positive"])]
        return rows

    def reliance_rows(self) -> list[dict]:
        rows = []
        for (arm, model, region, how), v in self.reliance.items():
            ids = [i for i, m in zip(self.ids, self.has_marker) if region == "lesion" or m]
            rows += [{"arm": arm, "model": model, "region": region, "infill": how, "image": i,
                      **{k: float(v[k][j]) for k in v}} for j, i in enumerate(ids)]
        return rows

    def score_rows(self) -> list[dict]:
        """region_scores.csv: per method, model, image and region, every score; the average
        marker mask's (method ``average_marker_mask``) beside them."""
        rows = [{"method": method, "arm": arm, "model": model, "image": i, "region": region,
                 **{s: float(v[region][s][j]) for s in scoring.SCORES}}
                for (method, arm, model), v in self.scores.items() for region in REGIONS
                for j, i in enumerate(self.ids)]
        rows += [{"method": "average_marker_mask", "arm": arm, "model": "baseline", "image": i,
                  "region": "marker", **{s: float(v[s][j]) for s in scoring.SCORES}}
                 for arm, v in self.marker_baseline.items() for j, i in enumerate(self.ids)]
        return rows

    def road_rows(self) -> list[dict]:
        return [{"method": method, "order": order, "fraction": f, "image": i,
                 "prob": float(r[order]["prob"][j, k]), "correct": bool(r[order]["correct"][j, k])}
                for method, r in self.road.items() for order in ("morf", "lerf")
                for k, f in enumerate(r["fractions"])
                for j, i in enumerate(self.ids[:len(r["prob_full"])])]


def _reliance(kt, arm, m, model, variables, x, images, targets, key) -> dict:
    """Every image goes through one program per infill (an image without the region is left
    as it is, then dropped), so the lesion and the marker share its compilation."""
    out = {}
    for region in REGIONS:
        masks = images.masks if region == "lesion" else images.markers
        keep = masks.reshape(len(masks), -1).any(-1)
        if not keep.any():
            continue
        for how in kt.infills:
            r = faithfulness.reliance(model, variables, x, masks, targets, infill_method=how,
                                      key=key, noise=kt.road_noise, match=kt.road_match_noise)
            out[(arm, m.id, region, how)] = {k: np.asarray(v)[keep] for k, v in r.items()}
    return out


def arms(models) -> dict:
    """Known truth's arms, ``{arm: [TrainedClassifier]}``: the first architecture's true-label
    replicates ("normal") and each shortcut arm's replicates (``"shortcut"``, or
    ``"shortcut80"``... in a sweep of the marker's strength)."""
    out = {"normal": [m for m in models if not m.variant and m.arch == models[0].arch]}
    for m in models:
        if is_shortcut(m.variant):
            out.setdefault(m.variant, []).append(m)
    return out


def evaluate(study) -> KnownTruthResults | None:
    """Every arm's reliance, sufficiency and region scores, and ROAD; None unless
    ``known_truth.enabled``."""
    if not study.config.known_truth.enabled:
        return None
    by_arm = {a: ms for a, ms in arms(study.models).items() if ms}
    average = {"normal": study.data.average_marker()}
    for arm, path in study.shortcut_paths.items():
        average[arm] = study.data.average_marker(path)
    return _evaluate(study.config, study.store, by_arm, study.methods, study.data.images,
                     average, study.progress,
                     negatives=study.data.test_negatives(study.config.known_truth.images))


def _evaluate(config, store, models: dict, methods, images, average_markers: dict,
              progress: bool = True, negatives=None) -> KnownTruthResults:
    """``models``: ``{arm: [TrainedClassifier]}``; ``images``: the study's
    :class:`~saljax.study.inputs.StudyImages` (with markers); ``average_markers``: ``{arm:
    the average marker square of that arm's training images}``; ``negatives``: test negatives
    without a marker, uint8 [m, H, W, 1] (None: no sufficiency)."""
    kt = config.known_truth
    n = min(kt.images, len(images))
    images = dataclasses.replace(images, ids=images.ids[:n], pixels=images.pixels[:n],
                                 masks=images.masks[:n], markers=images.markers[:n])
    targets = None if config.target < 0 else np.full(n, config.target, np.int32)
    key = jax.random.key(config.seed + KEY_SEED_OFFSET)
    reliance, scores, road, sufficiency = {}, {}, {}, {}
    has_marker = images.markers.reshape(n, -1).any(-1)
    for arm, arm_models in models.items():
        for m in tqdm(arm_models, desc=f"known truth ({arm})", disable=not progress):
            model, variables, spec = model_checkpoint.load(m.path)
            scaling = scaling_of(spec)
            x = to_model_input(images.pixels, scaling)
            reliance.update(_reliance(kt, arm, m, model, variables, x, images, targets, key))
            if negatives is not None and len(negatives) and has_marker.any():
                sufficiency[(arm, m.id)] = _sufficiency(model, variables, x, images.markers,
                                                        has_marker, negatives, scaling)
            for method in methods:
                gray = store.gray(m.id, "trained", method, n)
                scores[(method, arm, m.id)] = {
                    "lesion": scoring.region_scores(gray, images.masks),
                    "marker": scoring.region_scores(gray, images.markers)}
            if arm == "normal" and not road:
                road = _road(kt, store, m, model, variables, x, methods, targets, key)
    baseline = {arm: scoring.region_scores(np.broadcast_to(avg, images.markers.shape),
                                           images.markers)
                for arm, avg in average_markers.items() if arm in models}
    strengths = {"normal": None, **{a: s for a, s in shortcut_arms(config).items()
                                    if a in models}}
    return KnownTruthResults(images.ids, has_marker, reliance, scores, baseline, road,
                             sufficiency, strengths)


def _sufficiency(model, variables, x, markers, has_marker, negatives,
                 scaling: str = "symmetric") -> dict:
    """Negative k gets the marker of the k-th (cyclically) study image that carries one, at
    its place; the study images without a marker are the lesion-without-marker half of the
    conflict set."""
    donors = np.flatnonzero(has_marker)[np.arange(len(negatives)) % int(has_marker.sum())]
    s = faithfulness.sufficiency(model, variables, to_model_input(negatives, scaling),
                                 markers[donors], x[donors])
    lone = x[~has_marker]
    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    alone = (np.asarray(logits(model, v, lone)).argmax(-1) == 1 if len(lone)
             else np.zeros(0, bool))
    return {"positive": np.asarray(s["positive"]), "positive_added": np.asarray(
        s["positive_added"]), "lesion_only_positive": alone}


def _road(kt, store, m, model, variables, x, methods, targets, key) -> dict:
    """ROAD of every method's maps on one model, and of a random and an occlusion-with-infill
    map, on the same (first ``road_images``) images with the same tie-breaking and imputation
    noise; the maps as saved (``road_ranking="signed"``, ROAD's: summed over channels) or
    their grayscale magnitudes (``"absolute"``)."""
    n = min(kt.road_images, x.shape[0])
    x = x[:n]
    targets = None if targets is None else targets[:n]
    read = store.signed if kt.road_ranking == "signed" else store.gray
    maps = {method: read(m.id, "trained", method, n) for method in methods}
    maps["random"] = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), x.shape[:3]))
    occlusion = ss.make("occlusion", model, size=kt.occlusion_size, stride=kt.occlusion_stride,
                        fill="blur", max_batch=256)
    maps["occlusion_infill"] = np.asarray(occlusion(variables, x, targets))
    return {method: faithfulness.road(model, variables, x, maps[method], targets,
                                      fractions=tuple(kt.road_fractions), key=key,
                                      noise=kt.road_noise, match=kt.road_match_noise,
                                      ranking=kt.road_ranking)
            for method in maps}


def _drops(v) -> dict:
    return {"flip_fraction": v["flipped"].astype(np.float64),
            "prob_drop": v["prob"].astype(np.float64) - v["prob_removed"],
            "logit_drop": v["logit"].astype(np.float64) - v["logit_removed"]}


def summarize(results: KnownTruthResults, boot: dict, alpha: float = 0.05) -> dict:
    """summary.json's ``known_truth``: ``reliance`` per model
    (flip fraction and mean drops with bootstrap CIs; ``marker_sufficiency``), ``arms`` (each
    arm's reliance over its models, whether it is a shortcut model and what it uses:
    :func:`~.known_truth_scores.arm_reliance`), ``scores`` (every region score per method, arm
    and region, with intervals; the average marker mask's as ``average_marker_mask``),
    ``reveals`` (per arm and method), ``dose_response`` (per shortcut arm by strength, with
    two or more), ``road`` (curves and areas per map) and ``infill_residual`` (the worst
    imputation solve's relative residual)."""
    reliance = {}
    for (arm, model, region, how), v in results.reliance.items():
        entry = reliance.setdefault(model, {"arm": arm}).setdefault(region, {})
        entry[how] = {k: statistics.summarize(d, **boot) for k, d in _drops(v).items()}
    for (arm, model), v in results.sufficiency.items():
        turned = v["positive_added"][~v["positive"]].astype(np.float64)
        follows = scoring.follows_marker(v)
        reliance.setdefault(model, {"arm": arm})["marker_sufficiency"] = {
            "turned_positive": statistics.summarize(turned, **boot),
            "conflict_follows_marker": statistics.summarize(follows.astype(np.float64), **boot),
            "negatives": int(len(v["positive"])),
            "negatives_positive_before": float(np.mean(v["positive"])),
            "lesion_without_marker": int(len(v["lesion_only_positive"]))}
    arm_names = list(dict.fromkeys([k[0] for k in results.reliance]
                                   + [k[1] for k in results.scores]))
    by_arm = {arm: {"strength": results.strengths.get(arm),
                    **scoring.arm_reliance(results, arm, boot)} for arm in arm_names}
    table = scoring.region_table(results, boot)
    table["average_marker_mask"] = {
        arm: {"marker": {s: statistics.summarize(v[s], **boot) for s in scoring.SCORES}}
        for arm, v in results.marker_baseline.items()}
    road = {method: {"fractions": list(r["fractions"]),
                     "morf_prob": r["morf"]["prob"].mean(0).tolist(),
                     "lerf_prob": r["lerf"]["prob"].mean(0).tolist(),
                     "morf_accuracy": r["morf"]["correct"].mean(0).tolist(),
                     "lerf_accuracy": r["lerf"]["correct"].mean(0).tolist(),
                     "prob_full": float(np.mean(r["prob_full"])),
                     "area": statistics.summarize(r["area"], **boot)}
            for method, r in results.road.items()}
    road_images = len(next(iter(results.road.values()))["prob_full"]) if results.road else 0
    residuals = [float(np.max(v["residual"])) for v in results.reliance.values()
                 if "residual" in v and len(v["residual"])]
    residuals += [float(np.max(r["residual"])) for r in results.road.values() if "residual" in r]
    return {"images": len(results.ids), "road_images": road_images, "reliance": reliance,
            "arms": by_arm, "scores": table,
            "reveals": scoring.reveals(results, by_arm, alpha, boot),
            "dose_response": _dose_response(by_arm, table),
            "road": road, "infill_residual": max(residuals, default=0.0)}


def _dose_response(by_arm: dict, table: dict) -> list:
    """With two or more shortcut arms: per arm, by strength, the models' use of the marker and
    each method's marker AUROC and mass ratio (how much the map points at it)."""
    sweep = sorted((a for a, e in by_arm.items() if e["strength"] is not None),
                   key=lambda a: by_arm[a]["strength"])
    if len(sweep) < 2:
        return []
    return [{"arm": a, "strength": by_arm[a]["strength"],
             **{k: by_arm[a].get(k) for k in ("turned_positive", "conflict_follows_marker",
                                              "marker_flip", "lesion_flip",
                                              "shortcut_model")},
             "maps": {m: {"marker_auroc": t[a]["marker"]["auroc"],
                          "marker_mass_ratio": t[a]["marker"]["mass_ratio"]}
                      for m, t in table.items() if m != "average_marker_mask" and a in t}}
            for a in sweep]


def _summarize(results, study, summary) -> Entry:
    return Entry() if results is None else Entry(top={"known_truth": summarize(
        results, study.boot, study.config.verdicts.alpha)})


def _tables(results) -> dict:
    if results is None:
        return {}
    return {"reliance.csv": results.reliance_rows(), "region_scores.csv": results.score_rows(),
            "road.csv": results.road_rows(),
            **({"sufficiency.csv": results.sufficiency_rows()} if results.sufficiency else {})}


def _needs(study):
    """The trained maps of both arms' models: it starts as soon as those exist."""
    if not study.config.known_truth.enabled:
        return None
    return {m.family for ms in arms(study.models).values() for m in ms}


def _check(config) -> None:
    kt = config.known_truth
    if not kt.enabled:
        return
    if not sd.BUILDERS[config.dataset].HAS_MARKERS:
        raise ValueError("config.known_truth needs the synthetic data (dataset synthetic_cxr): "
                         "only there are the lesion and the marker known to the pixel")
    count(config, "known_truth.images")
    count(config, "known_truth.road_images")
    for how in kt.infills:
        if how not in INFILLS:
            raise ValueError(f"config.known_truth.infills: unknown infill {how!r}; infills are "
                             f"{', '.join(INFILLS)}")
    if not kt.road_fractions or not all(0 < f < 1 for f in kt.road_fractions):
        raise ValueError("config.known_truth.road_fractions must lie in (0, 1), got "
                         f"{tuple(kt.road_fractions)}")
    if kt.road_ranking not in RANKINGS:
        raise ValueError(f"config.known_truth.road_ranking must be one of {', '.join(RANKINGS)}, "
                         f"got {kt.road_ranking!r}")
    if not kt.road_noise >= 0:
        raise ValueError(f"config.known_truth.road_noise is an sd (>= 0), got {kt.road_noise}")
    strengths = [float(x) for x in kt.shortcut_strengths]
    if kt.shortcut_seeds and (not strengths or not all(0 <= x <= 1 for x in strengths)):
        raise ValueError("config.known_truth.shortcut_strengths: one or more probabilities in "
                         f"[0, 1], got {tuple(kt.shortcut_strengths)}")
    if len({round(100 * x) for x in strengths}) != len(strengths):
        raise ValueError("config.known_truth.shortcut_strengths: the same strength twice (to "
                         f"the percent): {tuple(kt.shortcut_strengths)}")
    unknown = set(kt.shortcut_data) - set(SHORTCUT_DATA)
    if unknown:
        raise ValueError(f"config.known_truth.shortcut_data: unknown option(s) "
                         f"{', '.join(sorted(unknown))}; it may set {', '.join(SHORTCUT_DATA)}")
    for x in strengths:                 # the shortcut arms' data: every option checked now
        try:
            SyntheticConfig(size=config.size, **shortcut_options(config, x))
        except (TypeError, ValueError) as e:
            raise ValueError(f"config.known_truth: the shortcut arm's data: {e}") from None
    if kt.occlusion_size > config.size:
        raise ValueError(f"config.known_truth.occlusion_size {kt.occlusion_size} exceeds the "
                         f"{config.size}-px images")


CRITERION = Criterion(name="known_truth", evaluate=evaluate, tables=_tables,
                      summarize=_summarize, check=_check, needs=_needs,
                      section=lambda summary, methods: section(summary),
                      figures=lambda summary, read, figure: figures(summary, figure))
