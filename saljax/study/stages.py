"""``saljax study``: the trustworthiness study as a protocol of steps.

1. **inputs** (:mod:`~saljax.study.inputs`): the dataset, built once; the test positives and
   their lesion masks;
2. **models** (:mod:`~saljax.study.lineup`): replicate classifiers per architecture and the
   localization baseline's replicates (:mod:`~saljax.study.localizers`), trained with orbax
   resume or loaded;
3. **maps** (:mod:`~saljax.study.maps`): every (model, randomization setting, method group,
   chunk) unit, written atomically; each family's trained maps, then its randomized ones;
4. **criteria** (:mod:`~saljax.study.criteria`, one record each): per-image tables, from the
   map files alone; a criterion that reads only some families' trained maps starts as soon as
   those exist;
5. **summary** (:mod:`~saljax.study.summary`): ``summary.json`` and ``examples.npz``;
6. **report**: ``saljax.report`` draws the figures and ``report.md`` from those files.

:func:`run` says what is computed from what; :func:`~saljax.study.executor.execute` runs the
steps (threads), :class:`~saljax.study.hosts.Hosts` the processes. Each step is resumable: a
killed study resumes where it stopped and ends with the same files.
"""
from __future__ import annotations

import dataclasses
import functools
import os

import jax

import saljax.saliency as ss
from saljax import files
from saljax.data import to_model_input
from saljax.parallel import data_mesh
from saljax.protocol import method_hparams
from saljax.saliency.segment_worker import SegmentsProcess
from saljax.study import check, inputs, lineup as lineups, maps, summary
from saljax.study.criteria import CRITERIA, Study
from saljax.study.executor import Step, execute, ignoring_inputs
from saljax.study.hosts import Hosts
from saljax.study.runner import guard_config
from saljax.study.workdir import Workdir


def run(config, workdir: str, *, progress: bool = True) -> dict | None:
    """Run (or resume) the study of ``config`` in ``workdir``; returns the summary (None on
    processes other than 0 of a multi-process run, see :class:`~saljax.study.hosts.Hosts`)."""
    hosts = Hosts.join(os.path.abspath(workdir))
    check.config(config, workdir)          # every config error before any work
    progress = progress and hosts.writer
    where = Workdir(workdir)
    mesh = data_mesh(jax.local_devices())
    if not hosts.writer:
        hosts.hear("config", "process 0's config.json")
    guard_config(where, config.to_json_best_effort(sort_keys=True))
    if hosts.writer:
        hosts.say("config")
    data_path, shortcut_paths = _datasets(config, where, hosts)

    data = inputs.prepare(config, data_path)                                   # 1. inputs
    lineup = lineups.lineup(config, data.data_path, where, shortcut_paths,     # 2. models
                            localization=data.images.has_masks)
    plan = maps.schedule(config, lineup.classifiers, len(data.images), where,  # 3. maps
                         hosts.share)
    study = Study(config, where, lineup.classifiers, plan.settings, data, lineup.localizer,
                  lineup.localizers, list(method_hparams(config)), shortcut_paths, progress)
    segments = xrai_segments(config, plan, data.images, progress)
    try:
        steps = _steps(config, hosts, mesh, study, lineup, plan, segments)
        results = execute(steps)
    finally:
        if segments is not None:
            segments.close()
    if not hosts.writer:
        hosts.say(f"maps {hosts.rank}")
        hosts.hear("done", "process 0's results")
        return None
    hosts.say("done")
    return results["summary"]


def _steps(config, hosts, mesh, study, lineup, plan, segments) -> list[Step]:
    """What is computed from what: each family's training, then its trained maps, then its
    randomized maps; the localization baseline's training; ``models`` (``models.json``) once
    every model is trained; each criterion once the maps it reads exist; the summary from the
    criteria and the models. Processes other than 0 only map their share."""
    steps, trains, mapped = [], [], []
    for family in plan.mine:
        making = maps.FamilyMaps(plan, family, config, study.data.images.chunks(config.chunk),
                                 segments, mesh=mesh if mesh.devices.size > 1 else None,
                                 progress=study.progress)
        trained = ()
        if hosts.writer:
            trained = (f"train {family}",)
            steps.append(Step(trained[0], ignoring_inputs(functools.partial(
                lineup.train, family, mesh=mesh, progress=study.progress))))
        steps += [Step(f"maps {family}", ignoring_inputs(making.trained), trained),
                  Step(f"randomized maps {family}", ignoring_inputs(making.randomized),
                       (f"maps {family}",))]
        trains += trained
        mapped += [f"maps {family}", f"randomized maps {family}"]
    if not hosts.writer:
        return steps
    steps.append(Step("train localizers", ignoring_inputs(functools.partial(
        lineup.train_localizers, config, study.data.splits, mesh=mesh,
        progress=study.progress))))
    steps.append(Step("models", ignoring_inputs(functools.partial(_publish, study, lineup,
                                                                  hosts)),
                      tuple(trains) + ("train localizers",)))
    steps.append(Step("every process's maps", ignoring_inputs(functools.partial(
        hosts.hear_all, "maps", "the map units")), tuple(mapped)))
    previous = ()      # criteria of every map run one after another: each holds its maps
    for criterion in CRITERIA:
        families = criterion.needs(study) if hosts.size == 1 else None
        if families is None:
            after = ("every process's maps", "models") + previous
            previous = (criterion.name,)
        else:
            after = tuple(f"maps {f}" for f in sorted(families) if f in plan.mine)
        steps.append(Step(criterion.name, ignoring_inputs(functools.partial(
            _evaluate, criterion, study)), after))
    steps.append(Step("summary", functools.partial(_summarize, study, plan),
                      tuple(c.name for c in CRITERIA) + ("models",)))
    return steps


def _datasets(config, workdir: Workdir, hosts) -> tuple:
    """The built dataset and the shortcut arms' (``{arm: path}``): built by process 0, read by
    the others from its models.json."""
    if hosts.writer:
        return inputs.build_data(config, workdir), inputs.build_shortcut_data(config, workdir)
    hosts.hear("models", "process 0's trained models")
    info = files.read_json(workdir.models_index)
    return workdir.resolve(info["data_path"]), {
        arm: workdir.resolve(p) for arm, p in info.get("shortcut_data_paths", {}).items()}


def _publish(study, lineup, hosts) -> list:
    """``models.json``: the datasets, every classifier with its validation AUC and the
    localization baseline's replicates, paths relative to the workdir; the classifiers."""
    where = study.workdir
    trained = [m.with_val_auc() for m in lineup.classifiers]
    files.write_json(where.models_index, {
        "data_path": where.relative(study.data.data_path),
        "shortcut_data_paths": {arm: where.relative(p)
                                for arm, p in study.shortcut_paths.items()},
        "models": [{**dataclasses.asdict(m), "path": where.relative(m.path)} for m in trained],
        "localizers": [where.relative(p) for p in lineup.localizers]})
    hosts.say("models")
    return trained


def _evaluate(criterion, study):
    """A criterion's per-image results, written as its tables."""
    results = criterion.evaluate(study)
    for name, rows in criterion.tables(results).items():
        files.write_csv(study.workdir.file(name), rows)
    return results


def _summarize(study, plan, inputs: dict) -> dict:
    """``summary.json`` and ``examples.npz`` from the criteria's results and the trained
    models."""
    where = study.workdir
    classifiers = [dataclasses.replace(m, path=where.relative(m.path))
                   for m in inputs["models"] if not m.variant]
    result = summary.build(study, CRITERIA, {c.name: inputs[c.name] for c in CRITERIA},
                           classifiers)
    files.write_json(where.summary, result)
    first = study.classifiers[0]
    summary.write_examples(where.examples, study.store, first, plan.settings[first.id],
                           study.methods, study.data.images)
    return result


def xrai_segments(config, plan, images, progress: bool):
    """XRAI's segments of the study images, computed by a worker process meanwhile (once per
    image, shared by every model and setting), or None when no missing unit of this process
    needs them."""
    labels = [m for m, hp in method_hparams(config).items()
              if ss.METHODS[hp.get("method", m)].needs_segments]
    if not labels or not plan.missing(labels):
        return None
    return SegmentsProcess(to_model_input(images.chunks(config.chunk)), config.chunk, progress)
