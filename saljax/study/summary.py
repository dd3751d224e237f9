"""Stage 5, summary: ``summary.json`` from the criteria's entries, and ``examples.npz`` (the
first study image's maps across methods and cascading levels) for the report.

Schema: ``study`` (the setup, and the criteria's notes: ``utility_skipped``, ``verdict_rule``),
``baselines`` (``localization_model``, the localization baseline's name, then the criteria's
baseline entries), one entry per method and null map (each criterion's keys: ``utility``,
``randomization``, ``repeatability``, ``reproducibility``, ``label_randomization``, ``emprt``,
``smprt``, ``input_invariance``, ``collapsed``; a judged one holds a ``verdict_block``, see
:mod:`saljax.study.verdict`), then the criteria's own top-level entries (``known_truth``,
``verdicts``: the Verdicts table, schema in :mod:`saljax.study.criteria.verdicts`). See each
criterion's file in :mod:`saljax.study.criteria` for its entries.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

import saljax.models as sm
from saljax import files
from saljax.protocol import protocol_of
from saljax.study.maps import level_name


def build(study, criteria, results: dict, classifiers) -> dict:
    """The summary of ``study`` (a :class:`~saljax.study.criteria.Study`) from each
    criterion's ``results[name]``, in the registry's order; ``classifiers``: the true-label
    models with their validation AUCs, paths relative to the workdir."""
    config = study.config
    with warnings.catch_warnings():   # a constant map's correlation is NaN: means skip them
        warnings.simplefilter("ignore", RuntimeWarning)
        per_method = {m: {} for m in study.methods}
        notes, baselines, top = {}, {"localization_model": study.localizer.label}, {}
        for criterion in criteria:
            entry = criterion.summarize(results[criterion.name], study, per_method)
            notes.update(entry.study)
            baselines.update(entry.baselines)
            top.update(entry.top)
            for method, values in entry.methods.items():
                per_method[method].update(values)
    skipped = {k: v for k, v in notes.items() if k.endswith("_skipped")}
    head = {"dataset": config.dataset, "size": config.size, **skipped,
            "images_utility": len(study.data.images), "images_eval": study.n_eval,
            "primary_architecture": classifiers[0].arch, "methods": list(study.methods),
            "protocol": protocol_of(config),
            "models": [dataclasses.asdict(m) for m in classifiers],
            **{k: v for k, v in notes.items() if k not in skipped}}
    return {"study": head, "baselines": baselines, **per_method, **top}


def write_examples(path: str, store, model, settings, methods, images) -> None:
    """The first study image, its mask and its maps [methods, settings, H, W] of the trained
    and cascading settings of ``model`` (a TrainedClassifier), with each setting's level
    name as the tables give it (``trained``, then the deepest block re-drawn: ``logits``,
    ``mixed8``, ...)."""
    sets = [s for s in settings if s.kind in ("trained", "cascading")]
    maps = np.stack([np.stack([store.gray(model.id, s.name, method, 1)[0] for s in sets])
                     for method in methods])
    names = sm.block_names(sm.create(model.arch))
    files.write_npz(path, {
        "image": images.pixels[0, ..., 0], "mask": images.masks[0], "maps": maps,
        "methods": np.array(methods), "settings": np.array([s.name for s in sets]),
        "levels": np.array([level_name(s.kind, s.level, names) for s in sets]),
        "model": np.array(model.id)})
