"""Stage 5, summary: ``summary.json`` from the criteria's results, and ``examples.npz`` (the
first study image's maps across methods and cascading levels) for the report.

Schema, per method: ``utility`` (AUPRC mean and bootstrap CI, trained and fully randomized;
average precision, pointing game, mass accuracy; Wilcoxon tests against the baselines),
``randomization`` (cascading and independent curves, pass line, verdict), ``repeatability`` and
``reproducibility`` (SSIM mean and CI), and with permuted-label models ``label_randomization``
(SSIM to the true-label maps, pass line, verdict); ``study`` holds the setup and ``baselines``
the average mask's and the localization baseline's scores (``localization_model``: "U-Net" or
"RetinaNet"; ``utility`` per baseline model, ``localization_repeatability``).
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

import saljax.models as sm
from saljax import files
from saljax.models.registry import LOCALIZERS
from saljax.protocol import protocol_of
from saljax.study import agreement, label_randomization, randomization, statistics, utility
from saljax.study.maps import level_name, load_maps

VERDICT_RULE = ("pass when the mean SSIM of a cascading randomization level falls below the "
                "random-pair pass line (the study's 'reaches degradation')")


def build(config, classifiers, methods, utility_results, randomization_results,
          agreement_results, n_util: int, n_eval: int, label_results=None) -> dict:
    """The summary: setup, baselines and one entry per method (see the module docstring)."""
    with warnings.catch_warnings():   # a constant map's correlation is NaN: means skip them
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = dict(n_boot=config.bootstrap, seed=config.seed)
        primary = classifiers[0].arch
        primary_models = [m for m in classifiers if m.arch == primary]
        full_ids = [m.id for m in classifiers
                    if m.arch == primary or config.randomize_every_architecture]
        seg = agreement_results.baseline_ssim()
        skipped = None if utility_results is not None else (
            "the dataset has no lesion masks or boxes: there is nothing to localize")
        out = {"study": {"dataset": config.dataset, "size": config.size,
                         "utility_skipped": skipped,
                         "images_utility": n_util, "images_eval": n_eval,
                         "primary_architecture": primary, "methods": list(methods),
                         "protocol": protocol_of(config),
                         "models": [dataclasses.asdict(m) for m in classifiers],
                         "verdict_rule": VERDICT_RULE},
               "baselines": {"localization_model": LOCALIZERS[config.localization_baseline][1],
                             "utility": (utility.summarize_baselines(utility_results, boot)
                                         if utility_results is not None else None),
                             "localization_repeatability": (statistics.summarize(seg, **boot)
                                                            if seg is not None else None)}}
        names = sm.block_names(sm.create(primary))
        for method in methods:
            out[method] = {
                "utility": (utility.summarize(utility_results, method, full_ids, boot)
                            if utility_results is not None else {"skipped": skipped}),
                "randomization": randomization.summarize(randomization_results, method,
                                                         primary_models, names, boot,
                                                         config.pass_line_models),
                **agreement.summarize(agreement_results, method, boot)}
            if label_results is not None:
                out[method]["label_randomization"] = label_randomization.summarize(
                    label_results, method, out[method]["randomization"]["pass_line"], boot)
        return out


def write_examples(path: str, store, model, settings, methods, images) -> None:
    """The first study image, its mask and its maps [methods, settings, H, W] of the trained
    and cascading settings of ``model`` (a TrainedClassifier), with each setting's level
    name as the tables give it (``trained``, then the deepest block re-drawn: ``logits``,
    ``mixed8``, ...)."""
    sets = [s for s in settings if s.kind in ("trained", "cascading")]
    maps = np.stack([np.stack([load_maps(store.workdir, model.id, s.name, method, 1,
                                         store.chunk)[0] for s in sets]) for method in methods])
    names = sm.block_names(sm.create(model.arch))
    files.write_npz(path, {
        "image": images.pixels[0, ..., 0], "mask": images.masks[0], "maps": maps,
        "methods": np.array(methods), "settings": np.array([s.name for s in sets]),
        "levels": np.array([level_name(s.kind, s.level, names) for s in sets]),
        "model": np.array(model.id)})
