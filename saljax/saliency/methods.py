"""Every saliency method behind one call: ``make(method, model, **hparams)``.

``make`` returns ``explain(variables, images, targets=None, *, key=None) -> maps``;
``make_many`` computes several methods for the same images in one jitted call and shares their
model passes: one plain pass serves Gradient, Input x Gradient and every CAM; one guided pass serves
Guided Backprop and Guided GradCAM; SmoothGrad and VarGrad with the same noise share its samples.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec as P

from saljax.models import block_names, with_activation
from saljax.parallel import AXIS, batch_sharding, replicated, shard
from saljax.saliency import augment, cam, occlusion as occ, xrai as xr
from saljax.saliency.core import (DEFAULT_MAX_BATCH, gradient_pass, input_gradient,
                                  logits_fn, map_over_passes, predicted, sum_over_passes)
from saljax.saliency.guided import guided_relu
from saljax.saliency.visualize import grayscale

# Each method's hyperparameters and PAIR's defaults (every one overridable).
DEFAULTS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "smoothgrad": dict(stdev_spread=0.15, nsamples=25, magnitude=True),
    "integrated_gradients": dict(x_steps=25, baseline=0.0),
    "smoothgrad_ig": dict(stdev_spread=0.15, nsamples=25, magnitude=True, x_steps=25,
                          baseline=0.0),
    "guided_backprop": {},
    "gradcam": dict(block=None),
    "guided_gradcam": dict(block=None, percentile=99.0),
    "xrai": dict(steps=100, area_threshold=1.0, min_pixel_diff=50),
    "input_x_gradient": {},
    "vargrad": dict(stdev_spread=0.15, nsamples=25),
    "gradcam_plus_plus": dict(block=None),
    "occlusion": dict(size=15, value=0.0, stride=1),
    "blur_ig": dict(max_sigma=50.0, steps=100, grad_step=0.01, sqrt=False),
}
METHODS = tuple(DEFAULTS)
STUDY_METHODS = ("gradient", "smoothgrad", "integrated_gradients", "smoothgrad_ig",
                 "guided_backprop", "gradcam", "guided_gradcam", "xrai")
# The study's published settings (Arun et al.): IG with 10 steps from -1 (black), SmoothGrad and
# SmoothGrad-IG with PAIR's smoothing defaults around them, CAMs at the last conv block
# (``block=None``: mixed10 for InceptionV3), XRAI at its defaults.
STUDY_PRESETS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "smoothgrad": dict(stdev_spread=0.15, nsamples=25, magnitude=True),
    "integrated_gradients": dict(x_steps=10, baseline=-1.0),
    "smoothgrad_ig": dict(stdev_spread=0.15, nsamples=25, magnitude=True, x_steps=10,
                          baseline=-1.0),
    "guided_backprop": {},
    "gradcam": dict(block=None),
    "guided_gradcam": dict(block=None),
    "xrai": {},
}
STOCHASTIC = {"smoothgrad", "smoothgrad_ig", "vargrad"}
SPATIAL = {"gradcam", "guided_gradcam", "xrai", "gradcam_plus_plus", "occlusion"}  # [B, H, W]
_PLAIN = {"gradient", "input_x_gradient", "gradcam", "gradcam_plus_plus", "guided_gradcam"}
_GUIDED = {"guided_backprop", "guided_gradcam"}


@dataclasses.dataclass(frozen=True)
class Spec:
    """One requested map: its label in the output, the method and its hyperparameters."""
    label: str
    method: str
    hparams: Mapping[str, Any]


def _spec(label: str, method: str, hparams: Mapping[str, Any], model) -> Spec:
    if method not in DEFAULTS:
        raise ValueError(f"unknown saliency method {method!r}; methods are {', '.join(METHODS)}")
    unknown = set(hparams) - set(DEFAULTS[method])
    if unknown:
        known = ", ".join(DEFAULTS[method]) or "none"
        raise ValueError(f"unknown hyperparameter(s) {', '.join(sorted(unknown))} for {method}; "
                         f"it takes: {known} (and max_batch)")
    hp = {**DEFAULTS[method], **hparams}
    if "block" in hp:
        hp["block"] = hp["block"] or model.default_cam_block
        if hp["block"] not in block_names(model):
            raise ValueError(f"unknown block {hp['block']!r} for {model.name_in_registry}; "
                             f"named blocks are {', '.join(block_names(model))}")
    for name in ("nsamples", "x_steps", "steps", "size", "stride"):
        if name in hp and (int(hp[name]) != hp[name] or hp[name] < 1):
            raise ValueError(f"{method}: {name} must be a positive integer, got {hp[name]!r}")
    for name in ("stdev_spread", "max_sigma", "grad_step"):
        if name in hp and not hp[name] >= 0:
            raise ValueError(f"{method}: {name} must be >= 0, got {hp[name]!r}")
    return Spec(label, method, hp)


def passes_per_image(spec: Spec, image_shape) -> tuple[int, int]:
    """(forward+backward passes, forward-only passes) one map of ``spec`` needs, per image."""
    m, hp = spec.method, spec.hparams
    if m in ("smoothgrad", "vargrad"):
        return hp["nsamples"], 0
    if m == "integrated_gradients":
        return hp["x_steps"], 0
    if m == "smoothgrad_ig":
        return hp["nsamples"] * hp["x_steps"], 0
    if m == "xrai":
        return 2 * hp["steps"], 0
    if m == "blur_ig":
        return hp["steps"], 0
    if m == "occlusion":
        return 0, 1 + math.prod(occ.positions(*image_shape[:2], hp["size"], hp["stride"]))
    if m == "guided_gradcam":
        return 2, 0
    return 1, 0


class Explainer:
    """Computes the maps of several specs for a batch of images; see :func:`make_many`."""

    def __init__(self, specs: Sequence[Spec], model, max_batch: int = DEFAULT_MAX_BATCH,
                 mesh=None):
        if not specs:
            raise ValueError("no saliency method requested")
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {labels}")
        self.specs = tuple(specs)
        self.model = model
        self.max_batch = int(max_batch)
        self.mesh = mesh
        self.needs_key = any(s.method in STOCHASTIC for s in specs)
        self.needs_segments = any(s.method == "xrai" for s in specs)
        self._jitted = jax.jit(self.pure)
        self._shard_fn = None

    # ------------------------------------------------------------------ the traceable core
    def pure(self, variables, images, targets=None, key=None, segments=None,
             image_offset=0) -> dict:
        """The maps of every spec: ``{label: maps}``; traceable (``jit``, ``vmap``, sharding).

        ``targets`` [B] int or None (the predicted class); ``key`` a ``jax.random`` key for the
        stochastic methods; ``segments`` (a :class:`saljax.saliency.xrai.Segments` of arrays) for
        XRAI.
        """
        model, specs = self.model, self.specs
        images = images.astype(jnp.float32)
        b, h, w = images.shape[:3]
        methods = {s.method for s in specs}
        single_pass_only = methods <= (_PLAIN | _GUIDED)
        out: dict[str, jnp.ndarray] = {}

        plain = None
        if methods & _PLAIN:
            blocks = sorted({s.hparams["block"] for s in specs if "block" in s.hparams})
            wrt_input = bool(methods & {"gradient", "input_x_gradient"})
            _, t_plain, gx, taps = gradient_pass(model, variables, images, targets, blocks,
                                                 wrt_input=wrt_input)
            plain = (gx, taps)
            if targets is None:
                targets = t_plain
        if targets is None and not single_pass_only:
            targets = predicted(model, variables, images)

        guided = None
        if methods & _GUIDED:
            gmodel = with_activation(model, guided_relu)
            guided = gradient_pass(gmodel, variables, images, targets)[2].astype(jnp.float32)

        noise_sums = {}
        for spec in specs:
            m, hp = spec.method, spec.hparams
            if m in ("gradient", "input_x_gradient"):
                g = plain[0].astype(jnp.float32)
                out[spec.label] = g if m == "gradient" else g * images
            elif m in ("gradcam", "gradcam_plus_plus"):
                act, grad = plain[1][hp["block"]]
                fn = cam.gradcam if m == "gradcam" else cam.gradcam_plus_plus
                out[spec.label] = fn(act, grad, (h, w))
            elif m == "guided_backprop":
                out[spec.label] = guided
            elif m == "guided_gradcam":
                act, grad = plain[1][hp["block"]]
                out[spec.label] = grayscale(guided, hp["percentile"]) * cam.gradcam(act, grad,
                                                                                    (h, w))
            elif m in ("smoothgrad", "vargrad"):
                group = (hp["stdev_spread"], hp["nsamples"])
                if group not in noise_sums:
                    noise_sums[group] = self._noise_moments(variables, images, targets, key,
                                                            *group, offset=image_offset)
                mean_g, mean_g2 = noise_sums[group]
                if m == "vargrad":
                    out[spec.label] = mean_g2 - mean_g * mean_g
                else:
                    out[spec.label] = mean_g2 if hp["magnitude"] else mean_g
            elif m == "integrated_gradients":
                base = augment.baseline_array(hp["baseline"], images)
                out[spec.label] = self._integrated(variables, images, base, targets,
                                                   hp["x_steps"])
            elif m == "smoothgrad_ig":
                out[spec.label] = self._smoothgrad_ig(variables, images, targets, key, hp,
                                                      image_offset)
            elif m == "xrai":
                out[spec.label] = self._xrai(variables, images, targets, segments, hp)
            elif m == "blur_ig":
                out[spec.label] = self._blur_ig(variables, images, targets, hp)
            elif m == "occlusion":
                out[spec.label] = self._occlusion(variables, images, targets, hp)
        return {k: v.astype(jnp.float32) for k, v in out.items()}

    # ------------------------------------------------------------------ multi-pass methods
    def _noise_moments(self, variables, images, targets, key, stdev_spread, nsamples, offset=0):
        """Mean gradient and mean squared gradient over SmoothGrad's noise samples."""
        scale = augment.noise_scale(images, stdev_spread)
        sums = sum_over_passes(
            input_gradient(self.model, variables), targets, images.shape[0], nsamples,
            lambda i, k: images[i] + augment.noise_sample(key, images, scale, i, k, offset),
            lambda g, i, k: jnp.stack([g, g * g]), (2,) + images.shape[1:], self.max_batch)
        return sums[:, 0] / nsamples, sums[:, 1] / nsamples

    def _integrated(self, variables, images, baseline, targets, steps):
        """PAIR's IG of ``images`` (one item each) from ``baseline``: [N, H, W, C]."""
        alphas = augment.path_alphas(steps)
        total = sum_over_passes(
            input_gradient(self.model, variables), targets, images.shape[0], steps,
            lambda i, k: baseline[i] + alphas[k] * (images[i] - baseline[i]),
            lambda g, i, k: g, images.shape[1:], self.max_batch)
        return total * (images - baseline) / steps

    def _smoothgrad_ig(self, variables, images, targets, key, hp, offset=0):
        """SmoothGrad around IG: IG of each noisy copy (the path ends at the noisy image), then
        the mean of their squares (``magnitude``) or of the maps. Noise samples go through the
        model together, as many as one chunk of ``max_batch`` passes holds."""
        b = images.shape[0]
        n, steps = hp["nsamples"], hp["x_steps"]
        scale = augment.noise_scale(images, hp["stdev_spread"])
        base = augment.baseline_array(hp["baseline"], images)
        per_step = max(1, min(n, self.max_batch // max(1, b * steps)))
        n_outer = math.ceil(n / per_step)

        def outer(o):
            k = o * per_step + jnp.arange(per_step)               # noise sample ids
            valid = k < n
            img_idx = jnp.repeat(jnp.arange(b), per_step)           # items: (image, sample)
            smp = jnp.tile(k, b)
            noisy = jax.vmap(lambda i, s: images[i] + augment.noise_sample(
                key, images, scale, i, s, offset))(img_idx, smp)
            ig = self._integrated(variables, noisy, base[img_idx], targets[img_idx], steps)
            ig = ig * ig if hp["magnitude"] else ig
            ig = jnp.where(jnp.tile(valid, b)[:, None, None, None], ig, 0.0)
            return ig.reshape((b, per_step) + images.shape[1:]).sum(axis=1)

        if n_outer == 1:
            return outer(0) / n
        total = jax.lax.scan(lambda acc, o: (acc + outer(o), None),
                             jnp.zeros(images.shape, jnp.float32), jnp.arange(n_outer))[0]
        return total / n

    def _xrai(self, variables, images, targets, segments, hp):
        if segments is None:
            raise ValueError("xrai needs segments: call the explainer outside jit, or pass "
                             "segments=saljax.saliency.xrai_segments(images)")
        b = images.shape[0]
        lo = jnp.min(images, axis=(1, 2, 3), keepdims=True)
        hi = jnp.max(images, axis=(1, 2, 3), keepdims=True)
        # Items 2i and 2i+1: image i from its black (min) and its white (max) baseline.
        base = jnp.stack([jnp.broadcast_to(lo, images.shape),
                          jnp.broadcast_to(hi, images.shape)], axis=1)
        base = base.reshape((2 * b,) + images.shape[1:])
        doubled = jnp.repeat(images, 2, axis=0)
        ig = self._integrated(variables, doubled, base, jnp.repeat(targets, 2), hp["steps"])
        attr = ig.reshape((b, 2) + images.shape[1:]).mean(axis=1).max(axis=-1)
        atom_id, membership, sizes = (jnp.asarray(a) for a in segments)
        return jax.vmap(lambda a, i, m, s: xr.greedy(a, i, m, s, hp["area_threshold"],
                                                      hp["min_pixel_diff"]))(
            attr, atom_id, membership, sizes)

    def _blur_ig(self, variables, images, targets, hp):
        """PAIR's Blur IG: gradients along a path of increasing blur, weighted by d(blur)/d(sigma)."""
        steps, grad_step = hp["steps"], hp["grad_step"]
        sigmas = augment.blur_sigmas(hp["max_sigma"], steps, hp["sqrt"])
        cap = augment.max_radius(float(sigmas[-1]) + grad_step)
        sig = jnp.asarray(sigmas[:-1], jnp.float32)
        dsig = jnp.asarray(np.diff(sigmas), jnp.float32)

        def blur(i, s):
            return augment.gaussian_blur(images[i], s, cap)

        def weight(g, i, k):
            slope = augment.gaussian_blur_slope(images[i], sig[k], grad_step, cap)
            return dsig[k] * slope * g

        total = sum_over_passes(input_gradient(self.model, variables), targets, images.shape[0],
                                steps, lambda i, k: blur(i, sig[k]), weight, images.shape[1:],
                                self.max_batch)
        return -total

    def _occlusion(self, variables, images, targets, hp):
        b, h, w = images.shape[:3]
        size, stride = hp["size"], hp["stride"]
        nh, nw = occ.positions(h, w, size, stride)
        logits = logits_fn(self.model, variables)

        def score(x, items):
            return jnp.take_along_axis(logits(x), targets[items][:, None], axis=1)[:, 0]

        base = score(images, jnp.arange(b))
        occluded = map_over_passes(
            score, b, nh * nw,
            lambda i, k: occ.occluded(images[i], k, size=size, stride=stride,
                                      value=hp["value"], n_cols=nw),
            self.max_batch)
        drops = (base[:, None] - occluded).reshape(b, nh, nw)
        return occ.scores_to_map(drops, (h, w), size=size, stride=stride)

    # ------------------------------------------------------------------ the checked entry point
    def check(self, images, targets, key):
        """Clear errors for inputs the maps would silently be wrong for."""
        images = np.asarray(images) if not isinstance(images, jax.Array) else images
        if images.ndim != 4:
            raise ValueError(f"images must be [B, H, W, C], got shape {tuple(images.shape)}")
        if not bool(jnp.all(jnp.isfinite(images))):
            raise ValueError("images contain NaN or infinite values")
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
            stochastic = sorted({s.method for s in self.specs} & STOCHASTIC)
            raise ValueError(f"{', '.join(stochastic)} draw noise: pass key=jax.random.key(seed)")
        for s in self.specs:
            if s.method == "occlusion":
                occ.positions(images.shape[1], images.shape[2], s.hparams["size"],
                              s.hparams["stride"])

    def __call__(self, variables, images, targets=None, *, key=None, segments=None) -> dict:
        self.check(images, targets, key)
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
        methods = {s.method for s in self.specs}
        full, fwd = 0, 0
        full += 1 if methods & _PLAIN else 0
        full += 1 if methods & _GUIDED else 0
        seen = set()
        for s in self.specs:
            if s.method in _PLAIN | _GUIDED:
                continue
            if s.method in ("smoothgrad", "vargrad"):
                group = (s.hparams["stdev_spread"], s.hparams["nsamples"])
                if group in seen:
                    continue
                seen.add(group)
            a, f = passes_per_image(s, image_shape)
            full, fwd = full + a, fwd + f
        return full, fwd


class SingleExplainer:
    """``make``'s result: one method, returning its maps directly."""

    def __init__(self, explainer: Explainer):
        self.explainer = explainer
        self.spec = explainer.specs[0]
        self.method = self.spec.method
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
    return SingleExplainer(Explainer([_spec(method, method, hparams, model)], model, max_batch,
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
        specs.append(_spec(label, hp.pop("method", label), hp, model))
    return Explainer(specs, model, max_batch, mesh)
