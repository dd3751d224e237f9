"""Stage 3, maps: the saliency maps of every model, randomization setting and method, as
resumable units.

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
import jax.numpy as jnp
import numpy as np

import saljax.models as sm
import saljax.saliency as ss
from saljax import files, randomize
from saljax.data import to_model_input
from saljax.models import checkpoint as model_checkpoint
from saljax.parallel import batch_sharding, replicated
from saljax.protocol import method_hparams
from saljax.study.runner import run_units
from saljax.training import segmenter


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str            # "trained", "cascading_03", "independent_05"
    kind: str            # "trained", "cascading", "independent"
    level: int           # cascading level or independent block index (0 for trained)
    n_images: int        # how many of the study's images this setting is computed for


def settings(n_blocks: int, cascading_levels, independent_blocks, n_eval: int,
             n_utility: int) -> list[Setting]:
    """The trained model and every randomization level the config asks for. The trained model
    and the fully randomized one (cascading level ``n_blocks``) are computed for the utility
    images too; the other levels for the evaluation images only."""
    levels = sorted(set(cascading_levels or range(1, n_blocks + 1)) | {n_blocks})
    blocks = sorted(set(range(n_blocks) if independent_blocks is None else independent_blocks))
    for v in levels:
        if not 1 <= v <= n_blocks:
            raise ValueError(f"cascading level {v} outside 1..{n_blocks}")
    for v in blocks:
        if not 0 <= v < n_blocks:
            raise ValueError(f"independent block {v} outside 0..{n_blocks - 1}")
    out = [Setting("trained", "trained", 0, n_utility)]
    out += [Setting(f"cascading_{v:02d}", "cascading", v, n_utility if v == n_blocks else n_eval)
            for v in levels]
    out += [Setting(f"independent_{v:02d}", "independent", v, n_eval) for v in blocks]
    return out


def unit_path(workdir, model_id, setting, method, chunk) -> str:
    return os.path.join(workdir, "maps", model_id, setting, method, f"chunk{chunk:03d}.npz")


def load_maps(workdir, model_id, setting, method, n_images, chunk_size, which="gray"):
    """The maps of the first ``n_images`` study images: [n, H, W] float32."""
    chunks = -(-n_images // chunk_size)
    parts = [files.read_npz(unit_path(workdir, model_id, setting, method, c))[which]
             for c in range(chunks)]
    return np.concatenate(parts)[:n_images]


@dataclasses.dataclass(frozen=True)
class MapStore:
    """The saved maps of a study's workdir, read for the first ``n`` study images: [n, H, W]."""
    workdir: str
    chunk: int

    def gray(self, model_id: str, setting: str, method: str, n: int) -> np.ndarray:
        return load_maps(self.workdir, model_id, setting, method, n, self.chunk)

    def signed(self, model_id: str, setting: str, method: str, n: int) -> np.ndarray:
        return load_maps(self.workdir, model_id, setting, method, n, self.chunk, "signed")


def segmenter_maps(paths, pixels) -> list:
    """Each segmentation U-Net's lesion probability maps of ``pixels`` (uint8 [N, H, W, 1]):
    [N, H, W] per U-Net, scored like saliency maps."""
    out = []
    for p in paths:
        model, variables, _ = model_checkpoint.load(p)
        predict = segmenter.predict_fn(model)
        out.append(np.concatenate([np.asarray(predict(variables, pixels[s:s + 64]))
                                   for s in range(0, len(pixels), 64)]))
    return out


def method_groups(methods: dict) -> list[tuple]:
    """The labels of ``methods`` ({label: hparams}) in their units: single-pass, multi-pass."""
    single = tuple(l for l, hp in methods.items()
                   if not ss.METHODS[hp.get("method", l)].multi_pass)
    multi = tuple(l for l in methods if l not in single)
    return [g for g in (single, multi) if g]


def group_max_batch(group: tuple, methods: dict, default: int, per_method: dict) -> int:
    """Model inputs per chunk for a unit of ``group``'s methods: the smallest of their entries in
    ``per_method`` (keyed by label or method name, e.g. from ``saljax bench``'s max_batch.json),
    ``default`` for methods without one."""
    sizes = [per_method.get(l, per_method.get(methods[l].get("method", l), default))
             for l in group]
    return int(min(sizes))


def spread(n: int, k: int, start: int) -> list[int] | None:
    """``k`` integers evenly spread over start..start+n-1 (all when k < 0)."""
    if k < 0:
        return None
    if k == 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(start, start + n - 1, min(k, n))})


def full_protocol(config, arch: str, classifiers) -> bool:
    """Whether ``arch``'s models get utility and the randomization sweep (the first
    architecture, or all with ``randomize_every_architecture``), or only their trained maps of
    the evaluation images, for reproducibility."""
    return arch == classifiers[0].arch or bool(config.randomize_every_architecture)


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
    """Every model's settings and every unit's files; ``mine``: this process's units by
    architecture, ``{arch: [(model index, classifier, {method: hparams}, [Unit])]}``."""
    settings: dict
    paths: list
    mine: dict


def schedule(config, classifiers, n_images: int, workdir: str, share=(0, 1)) -> MapPlan:
    """The units of every classifier; this process takes every ``share[1]``-th from
    ``share[0]``."""
    n_util, n_eval = n_images, min(config.eval_images, n_images)
    out, all_paths, k, mine = {}, [], 0, {}
    for mi, m in enumerate(classifiers):
        n_blocks = len(sm.block_names(sm.create(m.arch)))
        if full_protocol(config, m.arch, classifiers):
            sets = settings(n_blocks, spread(n_blocks, config.cascading_levels, 1),
                            spread(n_blocks, config.independent_blocks, 0), n_eval, n_util)
        else:
            sets = [Setting("trained", "trained", 0, n_eval)]
        out[m.id] = sets
        methods = method_hparams(config, m.arch)
        units = []
        for st in sets:
            for group in method_groups(methods):
                for c in range(-(-st.n_images // config.chunk)):
                    paths = {label: unit_path(workdir, m.id, st.name, label, c) for label in group}
                    all_paths += list(paths.values())
                    k += 1
                    if (k - 1) % share[1] == share[0]:
                        units.append(Unit(st, group, c, paths))
        mine.setdefault(m.arch, []).append((mi, m, methods, units))
    return MapPlan(out, all_paths, mine)


def compute(plan: MapPlan, arch: str, config, chunks, segments, *, mesh=None,
            progress: bool = True) -> None:
    """This process's missing units of ``arch``'s models, model by model (each loaded when its
    units start). ``chunks``: the study images' pixels padded to whole chunks; ``segments``: a
    :class:`saljax.saliency.segment_worker.SegmentsProcess` or None (no XRAI)."""
    size, base = config.chunk, jax.random.key(config.seed)
    for mi, m, methods, units in plan.mine.get(arch, []):
        if all(os.path.exists(p) for u in units for p in u.paths.values()):
            continue
        model, variables, _ = model_checkpoint.load(m.path)
        maker = MapMaker(model, variables, methods, key=jax.random.fold_in(base, mi),
                         max_batch=config.max_batch, randomization=config.randomization,
                         target=config.target, mesh=mesh,
                         max_batch_per_method=dict(config.max_batch_per_method))

        def unit(u, maker=maker):
            seg = segments.result()[u.chunk] if maker.needs_segments(u.group) else None
            return maker.unit(u.setting, u.group, u.chunk,
                              chunks[u.chunk * size:(u.chunk + 1) * size], seg)
        run_units([(u.paths, lambda u=u: unit(u)) for u in units], f"maps {m.id}", progress)


class MapMaker:
    """Computes map units for one model: caches randomized variables and compiled methods."""

    def __init__(self, model, variables, methods: dict, *, key, max_batch: int,
                 randomization: dict, target: int, mesh=None, max_batch_per_method=None):
        self.model, self.variables = model, variables
        self.methods = methods                       # label -> hparams (with "method")
        self.rand_key, self.noise_key = jax.random.split(key)
        self.randomization = dict(randomization)
        self.target = target
        self.mesh = mesh
        self.groups = method_groups(methods)
        self._explain = {g: ss.make_many(
            {l: methods[l] for l in g}, model, mesh=mesh,
            max_batch=group_max_batch(g, methods, max_batch, max_batch_per_method or {}))
            for g in self.groups}
        self._jitted = {g: jax.jit(self._gray_signed(e)) for g, e in self._explain.items()}
        self._span = jax.jit(lambda v, k, start, stop: randomize.span(
            model, v, k, start, stop, **self.randomization))
        self._setting_cache = (None, None)

    @staticmethod
    def _gray_signed(explain):
        def run(variables, images, targets, key, segments):
            out = {}
            for label, maps in explain.pure(variables, images, targets, key, segments).items():
                signed = jnp.sum(maps, -1) if maps.ndim == 4 else maps
                out[label] = {"gray": ss.grayscale(maps), "signed": signed}
            return out
        return run

    def needs_segments(self, group: tuple) -> bool:
        return self._explain[group].needs_segments

    def variables_for(self, setting: Setting):
        if self._setting_cache[0] == setting.name:
            return self._setting_cache[1]
        if setting.kind == "trained":
            v = self.variables
        elif setting.kind == "cascading":     # the top ``level`` blocks
            v = self._span(self.variables, self.rand_key, 0, setting.level)
        else:                                  # block ``level`` alone
            v = self._span(self.variables, self.rand_key, setting.level, setting.level + 1)
        self._setting_cache = (setting.name, v)
        return v

    def unit(self, setting: Setting, group: tuple, chunk: int, images_u8, segments) -> dict:
        """``{label: {"gray", "signed"}}`` for the methods of ``group`` on one chunk of images
        (uint8 [n, H, W, 1], padded to the chunk size)."""
        x = to_model_input(images_u8)
        n = x.shape[0]
        targets = None if self.target < 0 else jnp.full((n,), self.target, jnp.int32)
        key = jax.random.fold_in(self.noise_key, chunk)
        variables = self.variables_for(setting)
        segments = segments if self._explain[group].needs_segments else None
        if self.mesh is not None and n % self.mesh.devices.size == 0:
            # the chunk's images split over this process's devices (data parallel)
            split = lambda a: jax.device_put(a, batch_sharding(self.mesh))
            x = split(x)
            targets = None if targets is None else split(targets)
            segments = None if segments is None else type(segments)(*map(split, segments))
            variables = jax.device_put(variables, replicated(self.mesh))
        out = self._jitted[group](variables, x, targets, key, segments)
        return jax.tree.map(np.asarray, out)
