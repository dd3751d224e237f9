"""Every saliency method behind one call: ``make(method, model, **hparams)``.

``make`` returns ``explain(variables, images, targets=None, *, key=None) -> maps``;
``make_many`` computes several methods for the same images in one jitted call. The
:class:`Explainer` collects the model passes its methods ask for (their records, in
:mod:`saljax.saliency.methods`), runs each once (:class:`saljax.saliency.passes.Passes`) and asks
every method to finish its maps: one plain pass serves Gradient, Input x Gradient and every CAM,
one guided pass Guided Backprop and Guided GradCAM, one noise stream SmoothGrad and VarGrad with
the same noise; all multi-pass streams share one chunked gradient program.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec as P

from saljax.models import check_variables
from saljax.parallel import AXIS, batch_sharding, replicated, shard
from saljax.saliency import xrai_regions as xr
from saljax.saliency.method import BlockGradient, InputGradient, Method
from saljax.saliency.methods import METHODS
from saljax.saliency.passes import Passes, plan_key, predicted
from saljax.saliency.streams import DEFAULT_MAX_BATCH


INPUT_BOUND = 3.0   # |model input| beyond this: pixel values, not model inputs


@dataclasses.dataclass(frozen=True)
class Spec:
    """One requested map: its label in the output, the method and its checked hyperparameters."""
    label: str
    method: Method
    hparams: Mapping[str, Any]


def spec(label: str, name: str, hparams: Mapping[str, Any], model) -> Spec:
    """The :class:`Spec` of method ``name`` with ``hparams`` over its defaults, checked."""
    if name not in METHODS:
        raise ValueError(f"unknown saliency method {name!r}; methods are {', '.join(METHODS)}")
    return Spec(label, METHODS[name], METHODS[name].resolve(hparams, model))


class Explainer:
    """Computes the maps of several specs for a batch of images; see :func:`make_many`."""

    def __init__(self, specs: Sequence[Spec], model, max_batch: int = DEFAULT_MAX_BATCH,
                 mesh=None):
        if not specs:
            raise ValueError("no saliency method requested")
        if isinstance(max_batch, bool) or int(max_batch) != max_batch or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {labels}")
        self.specs = tuple(specs)
        self.model = model
        self.max_batch = int(max_batch)
        self.mesh = mesh
        self.needs_key = any(s.method.stochastic for s in specs)
        self.needs_segments = any(s.method.needs_segments for s in specs)
        asked = [(g, s) for s in specs for g in s.method.gradients]
        self._blocks = tuple(sorted({s.hparams[g.hparam] for g, s in asked
                                     if isinstance(g, BlockGradient)}))
        acts = [g.act for g, _ in asked if isinstance(g, InputGradient)]
        self._plain_input = None in acts
        plain = [None] if self._plain_input or self._blocks else []
        self._acts = tuple(dict.fromkeys(plain + [a for a in acts if a is not None]))
        plans = {}
        for s in specs:
            if s.method.plan is not None:
                p = s.method.plan(s.hparams)
                plans.setdefault(plan_key(p), p)
        self._plans = tuple(plans.values())
        self._forward_only = any(s.method.own_passes is not None for s in specs)
        self._jitted = jax.jit(self.pure)
        self._shard_fn = None

    def pure(self, variables, images, targets=None, key=None, segments=None,
             image_offset=0) -> dict:
        """The maps of every spec: ``{label: maps}``; traceable (``jit``, ``vmap``, sharding).

        ``targets`` [B] int or None (the predicted class); ``key`` a ``jax.random`` key for the
        stochastic methods; ``segments`` (a :class:`saljax.saliency.xrai_regions.Segments` of
        arrays) for
        XRAI.
        """
        passes = Passes(self.model, variables, images.astype(jnp.float32), targets, key,
                        segments, image_offset, self.max_batch)
        passes.run(self._acts, self._blocks, self._plain_input, self._plans, self._forward_only)
        return {s.label: s.method.finish(passes, s.hparams).astype(jnp.float32)
                for s in self.specs}

    # ------------------------------------------------------------------ the checked entry point
    def check(self, variables, images, targets, key):
        """Clear errors for inputs the maps would silently be wrong for."""
        images = np.asarray(images) if not isinstance(images, jax.Array) else images
        if images.ndim != 4:
            raise ValueError(f"images must be [B, H, W, C], got shape {tuple(images.shape)}")
        if not jnp.issubdtype(images.dtype, jnp.floating):
            raise ValueError(f"images must be float model inputs, got {images.dtype}: scale "
                             "pixels first (saljax.data.to_model_input maps uint8 to [-1, 1])")
        if not bool(jnp.all(jnp.isfinite(images))):
            raise ValueError("images contain NaN or infinite values")
        lo, hi = float(jnp.min(images)), float(jnp.max(images))
        if max(-lo, hi) > INPUT_BOUND:
            raise ValueError(f"images range over [{lo:g}, {hi:g}]: model inputs lie in [-1, 1] "
                             "(ImageNet-normalized ones within +-3); these look like 0..255 "
                             "pixel values (saljax.data.to_model_input scales them)")
        check_variables(self.model, variables)
        if targets is not None:
            t = np.asarray(targets)
            if t.shape != (images.shape[0],):
                raise ValueError(f"targets must have one class per image: got shape {t.shape} "
                                 f"for {images.shape[0]} images")
            k = getattr(self.model, "num_classes", None)
            if not np.issubdtype(t.dtype, np.integer):
                raise ValueError(f"targets must be integer class indices, got {t.dtype}")
            if k is not None and (t.min() < 0 or t.max() >= k):
                raise ValueError(f"targets must lie in [0, {k}), got {t.min()}..{t.max()}")
        if self.needs_key and key is None:
            stochastic = sorted({s.method.name for s in self.specs if s.method.stochastic})
            raise ValueError(f"{', '.join(stochastic)} draw noise: pass key=jax.random.key(seed)")
        for s in self.specs:
            if s.method.check_images is not None:
                s.method.check_images(s.hparams, tuple(images.shape))

    def __call__(self, variables, images, targets=None, *, key=None, segments=None) -> dict:
        self.check(variables, images, targets, key)
        if self.needs_segments and segments is None:
            segments = xr.segments(np.asarray(images))
        if targets is not None:
            targets = jnp.asarray(targets, jnp.int32)
        if self.mesh is not None:
            return self._sharded(variables, images, targets, key, segments)
        return self._jitted(variables, jnp.asarray(images, jnp.float32), targets, key, segments)

    def _sharded(self, variables, images, targets, key, segments) -> dict:
        """Images (and targets, segments) split over the mesh's devices with ``shard_map``:
        each device explains its own images with no communication, drawing the noise of their
        global indices, so the maps equal one device's. The batch is padded to a multiple of
        the device count and the maps cropped back."""
        n = images.shape[0]
        d = self.mesh.devices.size
        pad = -n % d

        def grow(a):
            a = jnp.asarray(a)
            if pad:
                a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
            return jax.device_put(a, batch_sharding(self.mesh))

        x = grow(jnp.asarray(images, jnp.float32))
        if targets is None:   # the predicted class, decided per image on its own device
            targets = jax.jit(lambda v, im: predicted(self.model, v, im))(
                variables, jnp.asarray(images, jnp.float32))
        t = grow(targets)
        seg = None if segments is None else type(segments)(*[grow(a) for a in segments])
        v = jax.device_put(variables, replicated(self.mesh))
        if self._shard_fn is None:
            split, whole = P(AXIS), P()

            def body(v, x, t, key, seg):
                offset = lax.axis_index(AXIS) * x.shape[0]
                return self.pure(v, x, t, key, seg, image_offset=offset)

            self._shard_fn = shard(body, self.mesh, (whole, split, split, whole, split), split)
        out = self._shard_fn(v, x, t, key, seg)
        return {k: m[:n] for k, m in out.items()}

    def passes(self, image_shape) -> tuple[int, int]:
        """(forward+backward, forward-only) model passes per image for all specs together,
        counting shared passes once (targets given)."""
        full = len(self._acts) + sum(p.passes_per_item() for p in self._plans)
        forward = sum(s.method.own_passes(s.hparams, image_shape) for s in self.specs
                      if s.method.own_passes is not None)
        return full, forward


class SingleExplainer:
    """``make``'s result: one method, returning its maps directly."""

    def __init__(self, explainer: Explainer):
        self.explainer = explainer
        self.spec = explainer.specs[0]
        self.method = self.spec.method.name
        self.hparams = dict(self.spec.hparams)

    def pure(self, variables, images, targets=None, key=None, segments=None):
        return self.explainer.pure(variables, images, targets, key, segments)[self.spec.label]

    def __call__(self, variables, images, targets=None, *, key=None, segments=None):
        return self.explainer(variables, images, targets, key=key,
                              segments=segments)[self.spec.label]

    def passes(self, image_shape):
        return self.explainer.passes(image_shape)


def make(method: str, model, *, max_batch: int = DEFAULT_MAX_BATCH, mesh=None, **hparams):
    """``explain(variables, images, targets=None, *, key=None) -> maps`` for one method.

    Gradient-type methods return float32 [B, H, W, C]; CAMs, XRAI and occlusion [B, H, W].
    ``max_batch`` bounds how many images go through the model at once. With ``mesh`` (e.g.
    ``saljax.parallel.data_mesh()``) the images are split over the mesh's devices and the
    variables replicated (data parallel; same maps as on one device). ``explain.pure`` is the
    same computation without host-side checks, for use inside ``jit``/``vmap``.
    """
    return SingleExplainer(Explainer([spec(method, method, hparams, model)], model, max_batch,
                                     mesh))


def make_many(methods, model, *, max_batch: int = DEFAULT_MAX_BATCH, mesh=None) -> Explainer:
    """Several methods for the same images in one jitted call: ``explain(...) -> {label: maps}``.

    ``methods`` is a list of method names (defaults) or a mapping ``label -> hparams``, where
    ``hparams`` may name its ``method`` (default: the label), e.g.
    ``{"gradcam": {}, "gradcam_mixed7": {"method": "gradcam", "block": "mixed7"}}``.
    """
    if isinstance(methods, str):
        methods = [methods]
    if not isinstance(methods, Mapping):
        methods = {m: {} for m in methods}
    specs = []
    for label, hp in methods.items():
        hp = dict(hp)
        specs.append(spec(label, hp.pop("method", label), hp, model))
    return Explainer(specs, model, max_batch, mesh)
