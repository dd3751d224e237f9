"""Saliency maps of every model, randomization setting and method, as resumable units.

A unit is (model, setting, method, chunk of images): one jitted call of the method on the
setting's variables, written to ``maps/<model>/<setting>/<method>/chunk<NNN>.npz`` with

* ``gray``   [n, H, W]  PAIR's grayscale visualization in [0, 1] (what SSIM and AUPRC see);
* ``signed`` [n, H, W]  the channel sum of the raw attribution (Spearman without absolute values).

Settings: ``trained``, ``cascading_<k>`` (the top k named blocks re-drawn) and
``independent_<k>`` (block k alone). Randomized variables are computed in one jitted call per
setting from the trained ones (``saljax.randomize.span``, traced block bounds: one compile per
architecture serves every setting);
the noise of the stochastic methods depends on the chunk, not on the model or setting, so maps
differ only through the weights. Methods run in two groups, each one unit and one compiled
program (``make_many``): the single-pass methods (Gradient, Guided Backprop, GradCAM, Guided
GradCAM) share two model passes; the multi-pass ones (SmoothGrad, IG, SmoothGrad-IG, XRAI) send
all their passes through one chunked gradient program. Each group compiles its model's backward
pass once (on a 2-core CPU, compiling is about a quarter of the synthetic study's time).
"""
from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

import saljax.saliency as ss
from saljax import randomize
from saljax.data import to_model_input
from saljax.parallel import batch_sharding, replicated
from saljax import files



@dataclasses.dataclass(frozen=True)
class Setting:
    name: str            # "trained", "cascading_03", "independent_05"
    kind: str            # "trained", "cascading", "independent"
    level: int           # cascading level or independent block index (0 for trained)
    images: int          # how many of the study's images this setting is computed for


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
