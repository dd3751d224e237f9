"""Stage 3, maps: the saliency maps of every model, randomization setting and method, as
resumable units (each computed by a model's :class:`~saljax.study.mapmaker.MapMaker`).

A unit is (model, setting, method group, chunk of images): one jitted call of the group's
methods on the setting's variables, written to ``maps/<model>/<setting>/<method>/chunk<NNN>.npz``
with

* ``gray``   [n, H, W]  PAIR's grayscale visualization in [0, 1] (what SSIM and AUPRC see);
* ``signed`` [n, H, W]  the channel sum of the raw attribution (Spearman without absolute values).

Settings: ``trained``, ``cascading_<k>`` (the top k named blocks re-drawn) and
``independent_<k>`` (block k alone). Randomized variables are computed in one jitted call per
setting from the trained ones (``saljax.randomize.span``, traced block bounds: one compile per
architecture serves every setting); the noise of the stochastic methods depends on the chunk,
not on the model or setting, so maps differ only through the weights. Methods run in two groups,
each one unit and one compiled program (``make_many``): the single-pass methods (Gradient,
Guided Backprop, GradCAM, Guided GradCAM) share two model passes; the multi-pass ones
(SmoothGrad, IG, SmoothGrad-IG, XRAI) send all their passes through one chunked gradient
program.
"""
from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

import saljax.models as sm
from saljax import files
from saljax.models import checkpoint as model_checkpoint
from saljax.protocol import method_hparams
from saljax.study.mapmaker import MapMaker, method_groups
from saljax.study.runner import run_units
from saljax.study.workdir import Workdir


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str            # "trained", "cascading_03", "independent_05"
    kind: str            # "trained", "cascading", "independent"
    level: int           # cascading level or independent block index (0 for trained)
    n_images: int        # how many of the study's images this setting is computed for


def level_name(kind: str, level: int, block_names) -> str:
    """A setting as the tables and figures name it: ``trained``; a cascading level by the
    deepest block it re-draws (``block_names[level - 1]``); an independent setting by the one
    block it re-draws (``block_names[level]``)."""
    if kind == "trained":
        return "trained"
    return block_names[level - 1] if kind == "cascading" else block_names[level]


def settings(n_blocks: int, cascading_levels, independent_blocks, n_eval: int,
             n_utility: int, fully_randomized: bool = True) -> list[Setting]:
    """The trained model and every randomization level the config asks for, with the fully
    randomized level (``n_blocks``) added when ``fully_randomized``. The trained model and the
    deepest level are computed for the utility images too; the other levels for the evaluation
    images only."""
    levels = sorted(set(cascading_levels) | ({n_blocks} if fully_randomized else set()))
    if not levels:
        raise ValueError("no cascading randomization level: set cascading_levels or "
                         "fully_randomized_level")
    blocks = sorted(set(independent_blocks))
    for v in levels:
        if not 1 <= v <= n_blocks:
            raise ValueError(f"cascading level {v} outside 1..{n_blocks}")
    for v in blocks:
        if not 0 <= v < n_blocks:
            raise ValueError(f"independent block {v} outside 0..{n_blocks - 1}")
    out = [Setting("trained", "trained", 0, n_utility)]
    out += [Setting(f"cascading_{v:02d}", "cascading", v, n_utility if v == levels[-1] else n_eval)
            for v in levels]
    out += [Setting(f"independent_{v:02d}", "independent", v, n_eval) for v in blocks]
    return out


def load_maps(workdir, model_id, setting, method, n_images, chunk_size, which="gray"):
    """The maps of the first ``n_images`` study images of a study's ``workdir`` (a path or a
    :class:`~saljax.study.workdir.Workdir`): [n, H, W] float32."""
    where = Workdir.of(workdir)
    chunks = -(-n_images // chunk_size)
    parts = [files.read_npz(where.unit(model_id, setting, method, c))[which]
             for c in range(chunks)]
    return np.concatenate(parts)[:n_images]


@dataclasses.dataclass(frozen=True)
class MapStore:
    """The saved maps of a study's workdir, read for the first ``n`` study images: [n, H, W]."""
    workdir: Workdir
    chunk: int

    def gray(self, model_id: str, setting: str, method: str, n: int) -> np.ndarray:
        return load_maps(self.workdir, model_id, setting, method, n, self.chunk)

    def signed(self, model_id: str, setting: str, method: str, n: int) -> np.ndarray:
        return load_maps(self.workdir, model_id, setting, method, n, self.chunk, "signed")


def spread(n: int, k: int, start: int) -> list[int]:
    """``k`` integers evenly spread over start..start+n-1 (all when k < 0)."""
    if k < 0:
        return list(range(start, start + n))
    if k == 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(start, start + n - 1, min(k, n))})


def cascade_depth(block_names, through: str) -> int:
    """How many blocks the deepest cascading level re-draws: down to ``through`` (the study:
    ``mixed1``), or every block when it is empty or not a block of this architecture."""
    return block_names.index(through) + 1 if through in block_names else len(block_names)


def full_protocol(config, model, classifiers) -> bool:
    """Whether ``model`` gets utility and the randomization sweep (the first architecture's
    models, or all with ``randomize_every_architecture``), or only its trained maps of the
    evaluation images (for reproducibility, or as a variant: permuted labels, shortcut)."""
    return not model.variant and (model.arch == classifiers[0].arch
                                   or bool(config.randomize_every_architecture))


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of work: the maps of ``group``'s methods for one setting and chunk of images,
    written to ``paths`` ({method label: file})."""
    setting: Setting
    group: tuple
    chunk: int
    paths: dict


@dataclasses.dataclass
class MapPlan:
    """Every model's settings; ``mine``: this process's units by model family (architecture),
    ``{family: [(model index, classifier, {method: hparams}, [Unit])]}``."""
    settings: dict
    mine: dict

    def missing(self, methods=None) -> bool:
        """Whether some unit (of ``methods``' labels, default any) has no file yet."""
        return any(not os.path.exists(p) for units in self._units() for u in units
                   for label, p in u.paths.items() if methods is None or label in methods)

    def _units(self):
        return (units for entries in self.mine.values() for *_, units in entries)


def schedule(config, classifiers, n_images: int, workdir, share=(0, 1)) -> MapPlan:
    """The units of every classifier in ``workdir`` (a path or a
    :class:`~saljax.study.workdir.Workdir`); this process takes every ``share[1]``-th from
    ``share[0]``."""
    workdir = Workdir.of(workdir)
    n_util, n_eval = n_images, min(config.eval_images, n_images)
    out, k, mine = {}, 0, {}
    for mi, m in enumerate(classifiers):
        names = sm.block_names(sm.create(m.arch))
        n_blocks = len(names)
        if full_protocol(config, m, classifiers):
            depth = cascade_depth(names, config.cascading_through)
            sets = settings(n_blocks, spread(depth, config.cascading_levels, 1),
                            spread(n_blocks, config.independent_blocks, 0), n_eval, n_util,
                            config.fully_randomized_level)
        else:
            sets = [Setting("trained", "trained", 0, n_eval)]
        out[m.id] = sets
        methods = method_hparams(config, m.arch)
        units = []
        for st in sets:
            for group in method_groups(methods):
                for c in range(-(-st.n_images // config.chunk)):
                    paths = {label: workdir.unit(m.id, st.name, label, c) for label in group}
                    k += 1
                    if (k - 1) % share[1] == share[0]:
                        units.append(Unit(st, group, c, paths))
        mine.setdefault(m.family, []).append((mi, m, methods, units))
    return MapPlan(out, mine)


def maker(config, index: int, classifier, methods: dict, *, mesh=None) -> MapMaker:
    """The :class:`MapMaker` of the ``index``-th classifier of the lineup (``study.models``):
    its checkpoint, its randomization and noise keys, the config's map settings."""
    c = config
    model, variables, spec = model_checkpoint.load(classifier.path)
    return MapMaker(model, variables, methods, key=jax.random.fold_in(jax.random.key(c.seed),
                                                                       index),
                    max_batch=c.max_batch, randomization=c.randomization, target=c.target,
                    mesh=mesh, max_batch_per_method=dict(c.max_batch_per_method),
                    normalization=c.normalization, noise=c.noise, scaling=scaling_of(spec))


def scaling_of(spec: dict) -> str:
    """How a saved classifier's inputs were scaled in training (its checkpoint's metadata;
    ``"symmetric"``, [-1, 1], for models saved without it)."""
    return spec.get("metadata", {}).get("scaling", "symmetric")


class FamilyMaps:
    """This process's missing units of a family's models, in two steps: every model's
    ``trained`` maps (what the known-truth criterion reads), then the ``randomized`` settings,
    model by model (each model loaded once, when its first unit starts). ``chunks``: the study
    images' pixels padded to whole chunks; ``segments``: a
    :class:`saljax.saliency.segment_worker.SegmentsProcess` or None (no XRAI)."""

    def __init__(self, plan: MapPlan, family: str, config, chunks, segments, *, mesh=None,
                 progress: bool = True):
        self.entries = plan.mine.get(family, [])
        self.config, self.chunks, self.segments = config, chunks, segments
        self.mesh, self.progress = mesh, progress
        self.makers = {}

    def _maker(self, mi, m, methods) -> MapMaker:
        if mi not in self.makers:
            self.makers[mi] = maker(self.config, mi, m, methods, mesh=self.mesh)
        return self.makers[mi]

    def _unit(self, maker, u):
        size = self.config.chunk
        seg = self.segments.result()[u.chunk] if maker.needs_segments(u.group) else None
        return maker.unit(u.setting, u.group, u.chunk,
                          self.chunks[u.chunk * size:(u.chunk + 1) * size], seg)

    def _run(self, trained: bool) -> None:
        for mi, m, methods, units in self.entries:
            part = [u for u in units if (u.setting.kind == "trained") == trained]
            if all(os.path.exists(p) for u in part for p in u.paths.values()):
                continue
            maker = self._maker(mi, m, methods)
            run_units([(u.paths, lambda u=u, maker=maker: self._unit(maker, u)) for u in part],
                      f"maps {m.id}" + ("" if trained else " randomized"), self.progress)

    def trained(self) -> None:
        self._run(True)

    def randomized(self) -> None:
        """The randomization settings' units; then the models are let go (their variables and
        cached randomized variables), as the family's maps are done."""
        try:
            self._run(False)
        finally:
            self.makers.clear()
