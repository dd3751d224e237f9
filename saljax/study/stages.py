"""``saljax study``: the trustworthiness study as a row of stages.

1. **inputs** (:mod:`~saljax.study.inputs`): the dataset, built once; the test positives and
   their lesion masks;
2. **models** (:mod:`~saljax.study.models`): replicate classifiers per architecture and the
   localization baselines (U-Nets or RetinaNets), trained with orbax resume or loaded;
3. **maps** (:mod:`~saljax.study.maps`): every (model, randomization setting, method group,
   chunk) unit, written atomically;
4. **criteria**: utility, randomization and agreement, each ``evaluate`` (per-image CSVs) then
   ``summarize``, from the map files alone;
5. **summary** (:mod:`~saljax.study.summary`): ``summary.json`` and ``examples.npz``;
6. **report**: ``saljax.report`` draws the figures and ``report.md`` from those files.

Each stage is resumable: a killed study resumes where it stopped and ends with the same files.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jax

import saljax.saliency as ss
from saljax import files
from saljax.data import to_model_input
from saljax.parallel import data_mesh
from saljax.protocol import method_hparams
from saljax.saliency.segment_worker import SegmentsProcess
from saljax.study import (agreement, check, inputs, known_truth, label_randomization, maps,
                          models, randomization, summary, utility)
from saljax.study.hosts import Hosts
from saljax.study.runner import guard_config


def run(config, workdir: str, *, progress: bool = True) -> dict | None:
    """Run (or resume) the study of ``config`` in ``workdir``; returns the summary (None on
    processes other than 0 of a multi-process run, see :class:`~saljax.study.hosts.Hosts`)."""
    hosts = Hosts.join()
    check.config(config, workdir)          # every config error before any work
    progress = progress and hosts.writer
    mesh = data_mesh(jax.local_devices())
    if not hosts.writer:
        hosts.wait_for([os.path.join(workdir, "config.json")], "config")
    guard_config(workdir, config.to_json_best_effort(sort_keys=True))
    data_path, shortcut_path = _datasets(config, workdir, hosts)

    data = inputs.prepare(config, data_path)                                   # 1. inputs
    lineup = models.lineup(config, data.data_path, workdir, shortcut_path,     # 2. models
                           localization=data.images.has_masks)
    plan = maps.schedule(config, lineup.classifiers, len(data.images), workdir,  # 3. maps
                         hosts.share)
    segments = xrai_segments(config, plan, data.images, progress)
    # the known-truth stage starts once its maps exist and runs on beside the last map units
    # and the criteria (a single process); ``evaluate`` joins it
    with ThreadPoolExecutor(max_workers=1) as meanwhile:
        try:
            trained, known = _train_and_map(config, workdir, hosts, mesh, data, lineup, plan,
                                            segments, shortcut_path, progress, meanwhile)
        finally:
            if segments is not None:
                segments.close()
        done = f"saljax study {os.path.abspath(workdir)}"
        if not hosts.writer:
            hosts.leave_together(done)
            return None
        hosts.wait_for(plan.paths, "map units of the other processes")
        result = evaluate(config, trained, lineup.localizers, plan, data, workdir, progress,
                          shortcut_path, known)                               # 4. criteria, 5.
    hosts.leave_together(done)
    return result


def _datasets(config, workdir: str, hosts) -> tuple:
    """The built dataset and the shortcut arm's (or None): built by process 0, read by the
    others from its models.json."""
    if hosts.writer:
        return inputs.build_data(config, workdir), inputs.build_shortcut_data(config, workdir)
    published = os.path.join(workdir, "models.json")
    hosts.wait_for([published], "trained models")
    info = files.read_json(published)
    return tuple(_resolve(workdir, info[k]) for k in ("data_path", "shortcut_data_path"))


def _relative(workdir: str, path):
    """A path inside the workdir relative to it (workdirs can move), others absolute."""
    if path is None:
        return None
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(workdir))
    return os.path.abspath(path) if rel.startswith(os.pardir) else rel


def _resolve(workdir: str, path):
    return None if path is None else os.path.join(workdir, path)


def _train_and_map(config, workdir, hosts, mesh, data, lineup, plan, segments, shortcut_path,
                   progress, meanwhile) -> tuple:
    """Each model family's training, then its map units (beside the baselines' training), and
    models.json; returns the classifiers with their validation AUCs, and, in a single process,
    the known-truth stage submitted to ``meanwhile`` (a future of its summary, None where it
    gave up) or None."""
    chunks = data.images.chunks(config.chunk)
    mapping = {family: functools.partial(maps.compute, plan, family, config, chunks, segments,
                                         mesh=mesh if mesh.devices.size > 1 else None,
                                         progress=progress) for family in plan.mine}
    training = {family: functools.partial(lineup.train, family, mesh=mesh, progress=progress)
                for family in plan.mine}
    baselines = functools.partial(lineup.train_localizers, config, data.splits, workdir,
                                  mesh=mesh, progress=progress)
    trained, known = [], None
    if config.known_truth.enabled and hosts.size == 1:
        finished = threading.Event()
        training, mapping = _signalling(training, mapping, finished)
        known = meanwhile.submit(_known_truth_meanwhile, config, workdir, plan, lineup, data,
                                 shortcut_path, progress, finished)

    def publish():
        trained.extend(m.with_val_auc() for m in lineup.classifiers)
        files.write_json(os.path.join(workdir, "models.json"), {
            "data_path": _relative(workdir, data.data_path),
            "shortcut_data_path": _relative(workdir, shortcut_path),
            "models": [{**dataclasses.asdict(m), "path": _relative(workdir, m.path)}
                       for m in trained],
            "localizers": [_relative(workdir, p) for p in lineup.localizers]})

    hosts.train_then_map(training, mapping, [baselines], publish)
    return trained, known


def _signalling(training: dict, mapping: dict, finished: threading.Event) -> tuple:
    """The families' pipelines (training, then map units) as one call each that sets
    ``finished`` when the last one has ended, whether it succeeded or not."""
    left = [len(training)]
    lock = threading.Lock()

    def pipeline(train, make_maps):
        try:
            train()
            make_maps()
        finally:
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    finished.set()

    if not training:
        finished.set()
    return ({f: functools.partial(pipeline, training[f], mapping[f]) for f in training},
            {f: (lambda: None) for f in training})


def _known_truth_meanwhile(config, workdir, plan, lineup, data, shortcut_path, progress,
                           finished: threading.Event):
    """The known-truth stage as soon as the trained maps of both arms' models exist, beside
    the map units still running and then the criteria (its compiling and forward passes fill
    the cores they leave idle); its summary, or None (left to :func:`evaluate`) if the
    pipelines end first without those maps."""
    ids = [m.id for ms in _arms(lineup.classifiers).values() for m in ms]
    need = [p for p in plan.paths
            if any(f"{os.sep}{i}{os.sep}trained{os.sep}" in p for i in ids)]
    while not all(os.path.exists(p) for p in need):
        if finished.is_set():
            return None
        time.sleep(1.0)
    store = maps.MapStore(workdir, config.chunk)
    return known_truth_stage(config, lineup.classifiers, store, list(method_hparams(config)),
                             data, workdir, progress, shortcut_path)


def _arms(models) -> dict:
    """Known truth's arms: the first architecture's true-label replicates ("normal") and its
    shortcut-trained ones."""
    return {"normal": [m for m in models if not m.variant and m.arch == models[0].arch],
            "shortcut": [m for m in models if m.variant == "shortcut"]}


def known_truth_stage(config, models, store, methods, data, workdir: str, progress: bool,
                      shortcut_path) -> dict:
    """Reliance, lesion / marker AUPRC and ROAD (``known_truth``): their CSVs, and their
    summary entry."""
    arms = _arms(models)
    average = {"normal": data.average_marker()}
    if shortcut_path:
        average["shortcut"] = data.average_marker(shortcut_path)
    results = known_truth.evaluate(config, store, {a: m for a, m in arms.items() if m},
                                   methods, data.images, average, progress)
    files.write_csv(os.path.join(workdir, "reliance.csv"), results.reliance_rows())
    files.write_csv(os.path.join(workdir, "lesion_marker_auprc.csv"), results.auprc_rows())
    files.write_csv(os.path.join(workdir, "road.csv"), results.road_rows())
    return known_truth.summarize(results, dict(n_boot=config.bootstrap, seed=config.seed))


def xrai_segments(config, plan, images, progress: bool):
    """XRAI's segments of the study images, computed by a worker process meanwhile (once per
    image, shared by every model and setting), or None when no missing unit needs them."""
    labels = [m for m, hp in method_hparams(config).items()
              if ss.METHODS[hp.get("method", m)].needs_segments]
    if not any(os.sep + label + os.sep in p and not os.path.exists(p)
               for label in labels for p in plan.paths):
        return None
    return SegmentsProcess(to_model_input(images.chunks(config.chunk)), config.chunk, progress)


def evaluate(config, models, localizers, plan, data, workdir: str, progress: bool,
             shortcut_path: str | None = None, known_truth_early=None) -> dict:
    """Stages 4 and 5: the criteria's per-image CSVs, ``summary.json`` and ``examples.npz``.
    ``known_truth_early``: a future of the known-truth summary computed meanwhile (its result
    None: compute it here)."""
    methods = list(method_hparams(config))
    classifiers = [m for m in models if not m.variant]
    permuted = [m for m in models if m.permuted]
    store = maps.MapStore(workdir, config.chunk)
    ids, n_util = data.images.ids, len(data.images)
    n_eval = min(config.eval_images, n_util)
    full = [m for m in classifiers if maps.full_protocol(config, m, classifiers)]
    final = {m.id: [s for s in plan.settings[m.id] if s.kind == "cascading"][-1].name
             for m in full}
    seg_maps = maps.localizer_maps(localizers, data.images.pixels)
    baseline = config.localization_baseline
    ssim = dict(config.ssim)
    util = (utility.evaluate(store, full, methods, final, data.images, data.training_masks(),
                             seg_maps, baseline, progress) if data.images.has_masks else None)
    rand = randomization.evaluate(store, full, methods, plan.settings, n_eval, ids, ssim,
                                  config.random_pairs, config.seed,
                                  config.random_pairs_per_image, progress)
    agree = agreement.evaluate(store, classifiers, methods, n_eval, ids, seg_maps, baseline,
                               ssim, config.agreement_pairs)
    if util is not None:
        files.write_csv(os.path.join(workdir, "utility.csv"), util.rows())
    files.write_csv(os.path.join(workdir, "randomization.csv"), rand.rows())
    files.write_csv(os.path.join(workdir, "pass_lines.csv"), rand.line_rows())
    files.write_csv(os.path.join(workdir, "agreement.csv"), agree.rows())
    labels = None
    if permuted:
        labels = label_randomization.evaluate(store, classifiers, permuted, methods, n_eval, ids,
                                              ssim)
        files.write_csv(os.path.join(workdir, "label_randomization.csv"), labels.rows())
    portable = [dataclasses.replace(m, path=_relative(workdir, m.path)) for m in classifiers]
    result = summary.build(config, portable, methods, util, rand, agree, n_util, n_eval, labels)
    if config.known_truth.enabled:
        early = None if known_truth_early is None else known_truth_early.result()
        result["known_truth"] = early or known_truth_stage(
            config, models, store, methods, data, workdir, progress, shortcut_path)
    files.write_json(os.path.join(workdir, "summary.json"), result)
    summary.write_examples(os.path.join(workdir, "examples.npz"), store, classifiers[0],
                           plan.settings[classifiers[0].id], methods, data.images)
    return result
