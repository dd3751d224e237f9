"""Known truth (synthetic data): does a map show what the model actually uses?

On the first ``known_truth.images`` evaluation images (ROAD: the first ``road_images``; test
positives, a marker on about half, independent of the label):

* **reliance**: every model of both arms (the first architecture's true-label replicates, the
  "normal" arm, and its replicates trained on the shortcut variant, the "shortcut" arm), with
  the lesion, or the marker, removed by in-distribution infill: the explained class's
  probability and logit drops and whether the prediction flips (necessity);
* **sufficiency and the conflict set**: a marker pasted (from a study image that carries one,
  at its place) into test negatives without one, and whether the model then predicts
  positive; with the study's positives that carry no marker (lesion without marker), how
  often the model follows the marker where marker and lesion disagree;
* **lesion and marker AUPRC**: each method's trained maps against the lesion mask and the
  marker's square (images with a marker), and the average training marker mask's AUPRC (the
  baseline); a map *reveals the marker* when its marker AUPRC is above both its lesion AUPRC
  and that baseline;
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
from saljax.faithfulness.forward import logits
from saljax.models import checkpoint as model_checkpoint
from saljax.saliency.infill import INFILLS
from saljax.study import statistics
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.known_truth_report import figures, section
from saljax.study.criteria.utility import score_maps
from saljax.study.fields import count

ARMS = ("normal", "shortcut")
REGIONS = ("lesion", "marker")
KEY_SEED_OFFSET = 2          # infill and ROAD noise: key(config.seed + this)


@dataclasses.dataclass
class KnownTruthResults:
    """Per image: ``reliance[(arm, model, region, infill)]`` ({field: [n]}, the region's
    images only), ``auprc[(method, arm, model)]`` ({"lesion", "marker": [n]}, marker NaN
    without one), ``marker_baseline[arm]`` ([n]), ``road[method]`` (ROAD's output),
    ``sufficiency[(arm, model)]`` ({"positive", "positive_added": [negatives] bool,
    "lesion_only_positive": [positives without a marker] bool})."""
    ids: tuple
    has_marker: np.ndarray
    reliance: dict
    auprc: dict
    marker_baseline: dict
    road: dict
    sufficiency: dict = dataclasses.field(default_factory=dict)

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

    def auprc_rows(self) -> list[dict]:
        rows = [{"method": method, "arm": arm, "model": model, "image": i,
                 "lesion_auprc": float(v["lesion"][j]), "marker_auprc": float(v["marker"][j])}
                for (method, arm, model), v in self.auprc.items() for j, i in enumerate(self.ids)]
        rows += [{"method": "average_marker_mask", "arm": arm, "model": "baseline", "image": i,
                  "lesion_auprc": float("nan"), "marker_auprc": float(v[j])}
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
                                      key=key)
            out[(arm, m.id, region, how)] = {k: np.asarray(v)[keep] for k, v in r.items()}
    return out


def arms(models) -> dict:
    """Known truth's arms: the first architecture's true-label replicates ("normal") and its
    shortcut-trained ones."""
    return {"normal": [m for m in models if not m.variant and m.arch == models[0].arch],
            "shortcut": [m for m in models if m.variant == "shortcut"]}


def evaluate(study) -> KnownTruthResults | None:
    """Both arms' reliance, lesion and marker AUPRC, and ROAD; None unless
    ``known_truth.enabled``."""
    if not study.config.known_truth.enabled:
        return None
    by_arm = {a: ms for a, ms in arms(study.models).items() if ms}
    average = {"normal": study.data.average_marker()}
    if study.shortcut_path:
        average["shortcut"] = study.data.average_marker(study.shortcut_path)
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
    x = to_model_input(images.pixels)
    targets = None if config.target < 0 else np.full(n, config.target, np.int32)
    key = jax.random.key(config.seed + KEY_SEED_OFFSET)
    reliance, auprc, road, sufficiency = {}, {}, {}, {}
    has_marker = images.markers.reshape(n, -1).any(-1)
    for arm in ARMS:
        for m in tqdm(models.get(arm, []), desc=f"known truth ({arm})", disable=not progress):
            model, variables, _ = model_checkpoint.load(m.path)
            reliance.update(_reliance(kt, arm, m, model, variables, x, images, targets, key))
            if negatives is not None and len(negatives) and has_marker.any():
                sufficiency[(arm, m.id)] = _sufficiency(model, variables, x, images.markers,
                                                        has_marker, negatives)
            for method in methods:
                gray = store.gray(m.id, "trained", method, n)
                auprc[(method, arm, m.id)] = {
                    "lesion": score_maps(gray, images.masks)["auprc"],
                    "marker": score_maps(gray, images.markers)["auprc"]}
            if arm == "normal" and not road:
                road = _road(kt, store, m, model, variables, x, methods, targets, key)
    baseline = {arm: score_maps(avg, images.markers)["auprc"]
                for arm, avg in average_markers.items() if arm in models}
    return KnownTruthResults(images.ids, has_marker, reliance, auprc, baseline, road,
                             sufficiency)


def _sufficiency(model, variables, x, markers, has_marker, negatives) -> dict:
    """Negative k gets the marker of the k-th (cyclically) study image that carries one, at
    its place; the study images without a marker are the lesion-without-marker half of the
    conflict set."""
    donors = np.flatnonzero(has_marker)[np.arange(len(negatives)) % int(has_marker.sum())]
    s = faithfulness.sufficiency(model, variables, to_model_input(negatives), markers[donors],
                                 x[donors])
    lone = x[~has_marker]
    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    alone = (np.asarray(logits(model, v, lone)).argmax(-1) == 1 if len(lone)
             else np.zeros(0, bool))
    return {"positive": np.asarray(s["positive"]), "positive_added": np.asarray(
        s["positive_added"]), "lesion_only_positive": alone}


def _road(kt, store, m, model, variables, x, methods, targets, key) -> dict:
    """ROAD of every method's maps on one model, and of a random and an occlusion-with-infill
    map, on the same (first ``road_images``) images and with the same imputation noise."""
    n = min(kt.road_images, x.shape[0])
    x = x[:n]
    targets = None if targets is None else targets[:n]
    maps = {method: store.gray(m.id, "trained", method, n) for method in methods}
    maps["random"] = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), x.shape[:3]))
    occlusion = ss.make("occlusion", model, size=kt.occlusion_size, stride=kt.occlusion_stride,
                        fill="blur", max_batch=256)
    maps["occlusion_infill"] = np.asarray(occlusion(variables, x, targets))
    return {method: faithfulness.road(model, variables, x, maps[method], targets,
                                      fractions=tuple(kt.road_fractions), key=key,
                                      noise=kt.road_noise)
            for method in maps}


def _drops(v) -> dict:
    return {"flip_fraction": v["flipped"].astype(np.float64),
            "prob_drop": v["prob"].astype(np.float64) - v["prob_removed"],
            "logit_drop": v["logit"].astype(np.float64) - v["logit_removed"]}


def summarize(results: KnownTruthResults, boot: dict) -> dict:
    """summary.json's ``known_truth``: reliance per model (flip fraction and mean drops with
    bootstrap CIs), the lesion/marker AUPRC table and its verdict per method and arm, and the
    ROAD curves and areas per method (see docs/ARCHITECTURE.md)."""
    reliance = {}
    for (arm, model, region, how), v in results.reliance.items():
        entry = reliance.setdefault(model, {"arm": arm}).setdefault(region, {})
        entry[how] = {k: statistics.summarize(d, **boot) for k, d in _drops(v).items()}
    shortcut = {"marker_baseline_auprc": {arm: float(np.nanmean(v))
                                          for arm, v in results.marker_baseline.items()}}
    for method in dict.fromkeys(k[0] for k in results.auprc):
        for arm in dict.fromkeys(k[1] for k in results.auprc):
            values = [v for (me, a, _), v in results.auprc.items() if me == method and a == arm]
            lesion = float(np.nanmean([np.nanmean(v["lesion"]) for v in values]))
            marker = float(np.nanmean([np.nanmean(v["marker"]) for v in values]))
            base = shortcut["marker_baseline_auprc"][arm]
            shortcut.setdefault(method, {})[arm] = {
                "lesion_auprc": lesion, "marker_auprc": marker,
                "reveals_marker": bool(marker > lesion and marker > base)}
    road = {method: {"fractions": list(r["fractions"]),
                     "morf_prob": r["morf"]["prob"].mean(0).tolist(),
                     "lerf_prob": r["lerf"]["prob"].mean(0).tolist(),
                     "morf_accuracy": r["morf"]["correct"].mean(0).tolist(),
                     "lerf_accuracy": r["lerf"]["correct"].mean(0).tolist(),
                     "prob_full": float(np.mean(r["prob_full"])),
                     "area": statistics.summarize(r["area"], **boot)}
            for method, r in results.road.items()}
    road_images = len(next(iter(results.road.values()))["prob_full"]) if results.road else 0
    for (arm, model), v in results.sufficiency.items():
        turned = v["positive_added"][~v["positive"]].astype(np.float64)
        follows = np.concatenate([v["positive_added"], ~v["lesion_only_positive"]])
        reliance.setdefault(model, {"arm": arm})["marker_sufficiency"] = {
            "turned_positive": statistics.summarize(turned, **boot),
            "conflict_follows_marker": statistics.summarize(follows.astype(np.float64), **boot),
            "negatives": int(len(v["positive"])),
            "negatives_positive_before": float(np.mean(v["positive"])),
            "lesion_without_marker": int(len(v["lesion_only_positive"]))}
    return {"images": len(results.ids), "road_images": road_images, "reliance": reliance,
            "shortcut": shortcut, "road": road}


def _summarize(results, study, summary) -> Entry:
    return Entry() if results is None else Entry(top={"known_truth": summarize(results,
                                                                              study.boot)})


def _tables(results) -> dict:
    if results is None:
        return {}
    return {"reliance.csv": results.reliance_rows(),
            "lesion_marker_auprc.csv": results.auprc_rows(), "road.csv": results.road_rows(),
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
    if kt.occlusion_size > config.size:
        raise ValueError(f"config.known_truth.occlusion_size {kt.occlusion_size} exceeds the "
                         f"{config.size}-px images")


CRITERION = Criterion(name="known_truth", evaluate=evaluate, tables=_tables,
                      summarize=_summarize, check=_check, needs=_needs,
                      section=lambda summary, methods: section(summary),
                      figures=lambda summary, read, figure: figures(summary, figure))
