"""One model's map units: its randomized variables (one jitted ``randomize.span`` per
setting), its compiled methods (one program per method group) and the maps' normalization.

``gray`` maps are what SSIM and AUPRC see: PAIR's grayscale visualization in [0, 1]
(``normalization="grayscale"``), then min-max to [0, 1] as the study did
(``"grayscale_minmax"``); a method's already visualized maps (Guided GradCAM in the study's
order) are not visualized again. Noise is drawn per chunk (``noise="shared"``: every setting's
maps see the same noise, so they differ only through the weights) or per chunk and setting
(``"fresh"``, as the study drew it).
"""
from __future__ import annotations

import json
import threading
import zlib
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

import saljax.models as sm
import saljax.saliency as ss
from saljax import randomize
from saljax.data import to_model_input
from saljax.parallel import batch_sharding, replicated

if TYPE_CHECKING:
    from saljax.study.maps import Setting

NORMALIZATIONS = ("grayscale", "grayscale_minmax")
NOISES = ("shared", "fresh")     # config.noise: one draw per chunk for all settings, or one each


def normalize(maps, visualized: bool, normalization: str):
    """[B, H, W(, C)] -> [B, H, W] in [0, 1]: grayscale (unless ``visualized``), then min-max
    for ``"grayscale_minmax"``."""
    gray = maps if visualized else ss.grayscale(maps)
    return ss.minmax(gray) if normalization == "grayscale_minmax" else gray


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


_PROGRAMS: dict = {}
_PROGRAMS_LOCK = threading.Lock()


def _shared(key: tuple, build):
    """One program per key (architecture, methods, sizes) for every model of a study: a second
    replicate of an architecture reuses the first one's traced and compiled programs instead of
    tracing the network again (tracing is most of a warm unit's cost). Process-wide on purpose:
    a key fixes everything a program depends on, so the studies of one process (a notebook, the
    test suite) share them too."""
    with _PROGRAMS_LOCK:
        if key not in _PROGRAMS:
            _PROGRAMS[key] = build()
        return _PROGRAMS[key]


def _frozen(value) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


class MapMaker:
    """Computes map units for one model: caches randomized variables and compiled methods."""

    def __init__(self, model, variables, methods: dict, *, key, max_batch: int,
                 randomization: dict, target: int, mesh=None, max_batch_per_method=None,
                 normalization: str = "grayscale", noise: str = "shared",
                 scaling: str = "symmetric"):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got "
                             f"{normalization!r}")
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {', '.join(map(repr, NOISES))}, got "
                             f"{noise!r}")
        self.model, self.variables = model, variables
        self.normalization, self.noise = normalization, noise
        self.scaling = scaling                       # how this model was fed in training
        self.methods = methods                       # label -> hparams (with "method")
        self.rand_key, self.noise_key = jax.random.split(key)
        self.randomization = dict(randomization)
        self.target = target
        self.mesh = mesh
        self.groups = method_groups(methods)
        per_method = max_batch_per_method or {}
        programs = {}
        for g in self.groups:
            group_methods = {l: methods[l] for l in g}
            size = group_max_batch(g, methods, max_batch, per_method)
            programs[g] = _shared(
                ("group", model, _frozen(group_methods), mesh, normalization, size),
                lambda: self._program(group_methods, model, mesh, normalization, size))
        self._explain = {g: e for g, (e, _) in programs.items()}
        self._jitted = {g: j for g, (_, j) in programs.items()}
        self._span = _shared(("span", model, _frozen(self.randomization)),
                             lambda: self._span_program(model, self.randomization))
        self._setting_cache = (None, None)

    @classmethod
    def _program(cls, group_methods, model, mesh, normalization, max_batch):
        explain = ss.make_many(group_methods, model, mesh=mesh, max_batch=max_batch)
        return explain, jax.jit(cls._gray_signed(explain, normalization))

    @staticmethod
    def _span_program(model, randomization: dict):
        return jax.jit(lambda v, k, start, stop: randomize.span(model, v, k, start, stop,
                                                                  **randomization))

    @staticmethod
    def _gray_signed(explain, normalization: str):
        visualized = {s.label: bool(s.method.visualized and s.method.visualized(s.hparams))
                      for s in explain.specs}

        def run(variables, images, targets, key, segments):
            out = {}
            for label, maps in explain.pure(variables, images, targets, key, segments).items():
                signed = jnp.sum(maps, -1) if maps.ndim == 4 else maps
                out[label] = {"gray": normalize(maps, visualized[label], normalization),
                              "signed": signed}
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
        elif setting.kind == "bottom_up":     # the bottom ``level`` blocks, from the stem
            n = len(sm.block_names(self.model))
            v = self._span(self.variables, self.rand_key, n - setting.level, n)
        else:                                  # block ``level`` alone
            v = self._span(self.variables, self.rand_key, setting.level, setting.level + 1)
        self._setting_cache = (setting.name, v)
        return v

    def unit(self, setting: Setting, group: tuple, chunk: int, images_u8, segments) -> dict:
        """``{label: {"gray", "signed"}}`` for the methods of ``group`` on one chunk of images
        (uint8 [n, H, W, 1], padded to the chunk size)."""
        key = jax.random.fold_in(self.noise_key, chunk)
        if self.noise == "fresh":   # new noise for every setting, as the study drew it
            key = jax.random.fold_in(key, zlib.crc32(setting.name.encode()))
        return self.maps(self.variables_for(setting), group, self.inputs(images_u8), key,
                         segments)

    def inputs(self, images_u8):
        """Stored images (uint8 [n, H, W, 1]) as this model's inputs, scaled as it was trained
        (``train.scaling``, recorded in its checkpoint): float32 [n, H, W, 3]."""
        return to_model_input(images_u8, self.scaling)

    def maps(self, variables, group: tuple, x, key, segments) -> dict:
        """``{label: {"gray", "signed"}}`` of ``group``'s methods for model inputs ``x``
        [n, H, W, 3] (float, as :meth:`inputs` makes them) with ``variables`` (this model's, or a variant's) and the
        stochastic methods' ``key``."""
        n = x.shape[0]
        targets = None if self.target < 0 else jnp.full((n,), self.target, jnp.int32)
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
