"""Every saliency method behind one call: ``make(method, model, **hparams)``.

``make`` returns ``explain(variables, images, targets=None, *, key=None) -> maps``;
``make_many`` computes several methods for the same images in one jitted call and shares their
model passes: one plain pass serves Gradient, Input x Gradient and every CAM; one guided pass serves
Guided Backprop and Guided GradCAM; SmoothGrad and VarGrad with the same noise share its samples.
"""
from __future__ import annotations

import dataclasses
import functools
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
from saljax.saliency.core import (DEFAULT_MAX_BATCH, Stream, gradient_pass, input_gradient,
                                  logits_fn, map_over_passes, predicted, sum_over_streams)
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


def _path_stream(images, baseline, steps: int, image=lambda i: i):
    """PAIR's straight-path IG of each of ``images`` [N, H, W, C] from ``baseline`` [N, H, W, C]
    (alphas ``linspace(0, 1, steps)``): the stream and its sums -> [N, H, W, C] attributions."""
    alphas = augment.path_alphas(steps)
    stream = Stream(images.shape[0], steps,
                    lambda i, k: baseline[i] + alphas[k] * (images[i] - baseline[i]), image=image)
    return stream, lambda sums: sums[:, 0] * (images - baseline) / steps


def _noise_map(method, hp, sums):
    """SmoothGrad (mean squared gradient with ``magnitude``, else mean gradient) or VarGrad
    (their variance) from the noise stream's sums."""
    mean_g, mean_g2 = sums[:, 0] / hp["nsamples"], sums[:, 1] / hp["nsamples"]
    if method == "vargrad":
        return mean_g2 - mean_g * mean_g
    return mean_g2 if hp["magnitude"] else mean_g


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

        streams, finish, noise = [], [], {}   # multi-pass methods: one shared pass stream
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
            elif m == "occlusion":
                out[spec.label] = self._occlusion(variables, images, targets, hp)
            else:
                if m in ("smoothgrad", "vargrad"):   # SmoothGrad and VarGrad share samples
                    group = (hp["stdev_spread"], hp["nsamples"])
                    if group not in noise:
                        noise[group] = len(streams)
                        streams.append(self._noise_stream(images, key, *group, image_offset))
                    finish.append((spec.label, noise[group], functools.partial(
                        _noise_map, m, hp)))
                    continue
                make_stream = {"integrated_gradients": self._ig_stream,
                               "smoothgrad_ig": self._smoothgrad_ig_stream,
                               "xrai": self._xrai_stream, "blur_ig": self._blur_ig_stream}[m]
                stream, done = make_stream(images, hp, key=key, segments=segments,
                                           offset=image_offset)
                finish.append((spec.label, len(streams), done))
                streams.append(stream)
        if streams:
            sums = sum_over_streams(input_gradient(model, variables), targets, streams,
                                    images.shape[1:], self.max_batch)
            for label, j, done in finish:
                out[label] = done(sums[j])
        return {k: v.astype(jnp.float32) for k, v in out.items()}

    # ------------------------------------------------------------------ multi-pass methods
    # Each returns a Stream of model passes and, but for SmoothGrad/VarGrad, a function from the
    # stream's per-item sums [items, rows, H, W, C] to the maps.
    @staticmethod
    def _noise_stream(images, key, stdev_spread, nsamples, offset=0) -> Stream:
        """SmoothGrad's noisy copies; rows: the sums of gradients and of squared gradients."""
        scale = augment.noise_scale(images, stdev_spread)
        return Stream(images.shape[0], nsamples,
                      lambda i, k: images[i] + augment.noise_sample(key, images, scale, i, k,
                                                                    offset),
                      lambda g, i, k: jnp.stack([g, g * g]), rows=2)

    @staticmethod
    def _ig_stream(images, hp, **_):
        """PAIR's IG from ``hp["baseline"]``: [B, H, W, C]."""
        base = augment.baseline_array(hp["baseline"], images)
        return _path_stream(images, base, hp["x_steps"])

    @staticmethod
    def _smoothgrad_ig_stream(images, hp, key, offset=0, **_):
        """SmoothGrad around IG: items are (image, noise sample) pairs, each item the IG of one
        noisy copy (the path ends at the noisy image); the map is the mean of their squares
        (``magnitude``) or of the maps over the samples. Its accumulator holds B x nsamples
        images (0.5 GB for 16 images x 25 samples at 320 x 320): bound B for more samples."""
        b, n = images.shape[0], hp["nsamples"]
        scale = augment.noise_scale(images, hp["stdev_spread"])
        base = augment.baseline_array(hp["baseline"], images)
        noisy = lambda j: images[j // n] + augment.noise_sample(key, images, scale, j // n, j % n,
                                                               offset)
        alphas = augment.path_alphas(hp["x_steps"])
        stream = Stream(b * n, hp["x_steps"],
                        lambda j, k: base[j // n] + alphas[k] * (noisy(j) - base[j // n]),
                        image=lambda j: j // n)

        def done(sums):
            j = jnp.arange(b * n)
            ig = sums[:, 0] * (jax.vmap(noisy)(j) - base[j // n]) / hp["x_steps"]
            ig = ig * ig if hp["magnitude"] else ig
            return ig.reshape((b, n) + images.shape[1:]).mean(axis=1)
        return stream, done

    @staticmethod
    def _xrai_stream(images, hp, segments=None, **_):
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
        stream, ig = _path_stream(jnp.repeat(images, 2, axis=0), base, hp["steps"],
                                  image=lambda j: j // 2)

        def done(sums):
            attr = ig(sums).reshape((b, 2) + images.shape[1:]).mean(axis=1).max(axis=-1)
            atom_id, membership, sizes = (jnp.asarray(a) for a in segments)
            return jax.vmap(lambda a, i, m, s: xr.greedy(a, i, m, s, hp["area_threshold"],
                                                          hp["min_pixel_diff"]))(
                attr, atom_id, membership, sizes)
        return stream, done

    @staticmethod
    def _blur_ig_stream(images, hp, **_):
        """PAIR's Blur IG: gradients along a path of increasing blur, weighted by
        d(blur)/d(sigma)."""
        steps, grad_step = hp["steps"], hp["grad_step"]
        sigmas = augment.blur_sigmas(hp["max_sigma"], steps, hp["sqrt"])
        cap = augment.max_radius(float(sigmas[-1]) + grad_step)
        sig = jnp.asarray(sigmas[:-1], jnp.float32)
        dsig = jnp.asarray(np.diff(sigmas), jnp.float32)

        def weight(g, i, k):
            slope = augment.gaussian_blur_slope(images[i], sig[k], grad_step, cap)
            return (dsig[k] * slope * g)[None]

        stream = Stream(images.shape[0], steps,
                        lambda i, k: augment.gaussian_blur(images[i], sig[k], cap), weight)
        return stream, lambda sums: -sums[:, 0]

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
