"""``saljax bench``: saliency throughput, side by side with the way researchers do it today.

For each model x method x batch size: maps/s, model passes/s, FLOPs per map (XLA's cost analysis
of one pass times the passes the method needs, a count the test suite checks against the whole
method), achieved TFLOP/s and percent of the device's peak, compile time and peak device memory.
In the same run, as references: PAIR ``saliency.core`` one image at a time on the same Flax model
(the reference study's way) and, where torch, torchvision and captum import, captum on
torchvision's InceptionV3 (:mod:`saljax.bench.captum`). Options time the BatchNorm-folded model
and a sweep of chunk sizes. Writes ``bench.json`` (one record per measurement), ``bench.md`` and,
for a sweep, ``max_batch.json`` (each method's fastest chunk size).
"""
from __future__ import annotations

import os
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

import saljax.models as sm
import saljax.saliency as ss
from saljax import files
from saljax.bench import captum, pair
from saljax.bench.metrics import bench_metrics, metrics_markdown
from saljax.bench.records import best_max_batch, line, markdown, record
from saljax.bench.timing import bench_saljax, pass_flops, peak_memory, ssim_vs_float32
from saljax.protocol import method_hparams


def run(config, workdir: str, log=print) -> list[dict]:
    """Run every measurement of ``config``; write bench.json and bench.md to ``workdir``."""
    os.makedirs(workdir, exist_ok=True)
    device = jax.devices()[0]
    key = jax.random.key(config.seed)
    hparams = method_hparams(config)
    records = []
    for spec in config.models:
        bench = _Model(config, spec, key)
        records += _saljax_records(config, bench, hparams, device, key, log)
        if "xrai" in config.methods:
            records.append(_segments_record(config, bench, device, log))
        if config.pair_reference and pair.available():
            records += _pair_records(config, bench, hparams, device, log)
    if config.pair_reference and not pair.available():
        log("PAIR saliency is not installed: no PAIR reference (pip install saliency==0.2.1, "
            "or pip install saljax[test])")
    if config.captum_reference and captum.available():
        records += _captum_records(config, hparams, device, key, log)
    elif config.captum_reference:
        log("torch, torchvision or captum does not import: no captum reference")
    metric_records = []
    if config.metrics_pairs:
        metric_records = bench_metrics(tuple(config.metrics_pairs), config.metrics_size,
                                       log=log)
    files.write_json(os.path.join(workdir, "bench.json"), records + metric_records)
    files.write_text(os.path.join(workdir, "bench.md"),
                     markdown(records) + metrics_markdown(metric_records))
    if config.max_batch_sweep:
        files.write_json(os.path.join(workdir, "max_batch.json"), best_max_batch(records))
    return records + metric_records


class _Model:
    """A benchmarked model: random weights with BatchNorm statistics calibrated on random
    images (so signal passes through every layer), and its folded variant when asked."""

    def __init__(self, config, spec, key):
        self.name, self.width = spec["name"], float(spec.get("width", 1.0))
        dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
        self.model = sm.create(self.name, width=self.width, dtype=dtype)
        self.rng = np.random.default_rng(config.seed)
        calib = jnp.asarray(self.rng.uniform(-1, 1, (8, config.size, config.size, 3)),
                            jnp.float32)
        self.variables = sm.calibrate_batch_stats(self.model, sm.init(self.model, key), calib)
        folds = _as_tuple(config.fold_batchnorm)
        self.variants = [(False, self.model, self.variables)] if False in folds else []
        if True in folds:
            self.variants.append((True, *sm.fold_batchnorm(self.model, self.variables)))


def _saljax_records(config, bench: _Model, hparams, device, key, log) -> list[dict]:
    out = []
    for batch in config.batch_sizes:
        images = jnp.asarray(pattern_images(bench.rng, batch, config.size))
        flops = pass_flops(bench.model, bench.variables, images)  # unfolded: for both variants
        for method in config.methods:
            for folded, m, v in bench.variants:
                for max_batch in tuple(config.max_batch_sweep) or (config.max_batch,):
                    seconds, compile_s, passes = bench_saljax(
                        m, v, images, method, hparams[method], max_batch, config.reps, key)
                    rec = record(bench.name, bench.width, config, method, batch, "saljax",
                                 device, batch / seconds, passes, flops, compile_s,
                                 peak_memory(device))
                    rec.update(bn_folded=folded, max_batch=max_batch)
                    if config.dtype != "float32":
                        rec["ssim_vs_float32"] = ssim_vs_float32(
                            m, v, images, method, hparams[method], max_batch, key)
                    out.append(rec)
                    log(line(rec) + (f"  SSIM vs float32 {rec['ssim_vs_float32']:.4f}"
                                     if "ssim_vs_float32" in rec else ""))
    return out


def _segments_record(config, bench: _Model, device, log) -> dict:
    """XRAI's segments per image (host work, once per image, shared by all models and levels)."""
    images = pattern_images(np.random.default_rng(2), config.pair_images, config.size)
    ss.xrai.segment_labels(images[0])  # imports and first-call costs
    start = time.perf_counter()
    ss.xrai_segments(images)  # fresh images: nothing cached
    per_image = (time.perf_counter() - start) / len(images)
    flops = pass_flops(bench.model, bench.variables, jnp.asarray(images[:1]))
    rec = record(bench.name, bench.width, config, "xrai_segments", 1, "saljax", device,
                 1 / per_image, 0, flops, None, None)
    log(line(rec) + "  (host, once per image, shared by all models and levels)")
    return rec


def _pair_records(config, bench: _Model, hparams, device, log) -> list[dict]:
    """PAIR ``saliency.core`` one image at a time on the same model, as the study ran it."""
    images = np.asarray(pattern_images(np.random.default_rng(1), config.pair_images,
                                       config.size))
    flops = pass_flops(bench.model, bench.variables, jnp.asarray(images[:1]))
    out = []
    for method in config.methods:
        if method not in pair.METHODS:
            continue
        hp = hparams[method]
        seconds = pair.bench_pair(bench.model, bench.variables, images, method, hp,
                                  config.pair_batch)
        full, _ = ss.make(method, bench.model, **hp).passes(images.shape[1:])
        rec = record(bench.name, bench.width, config, method, 1, "pair", device, 1 / seconds,
                     full, flops, None, None)
        out.append(rec)
        log(line(rec))
    return out


def _captum_records(config, hparams, device, key, log) -> list[dict]:
    """captum on torchvision's InceptionV3 (full width), the same methods and settings; the
    FLOPs of a pass are those of saljax's InceptionV3, the same architecture."""
    model = sm.create("inception_v3")
    variables = sm.init(model, key)
    images = pattern_images(np.random.default_rng(3), config.captum_batch, config.size)
    flops = pass_flops(model, variables, jnp.asarray(images[:1]))
    out = []
    for method in config.methods:
        if method not in captum.METHODS:
            continue
        hp = {**ss.DEFAULTS[method], **hparams[method]}
        m = captum.measure(method, hp, images, config.max_batch, config.reps)
        rec = record("inception_v3 (torchvision)", 1.0,
                     types.SimpleNamespace(size=config.size, dtype="float32"), method,
                     len(images), "captum", device, 1 / m["seconds_per_map"],
                     m["passes_per_map"], flops, None, None)
        if m["device"] != rec["device"]:  # torch ran elsewhere than JAX (e.g. a CPU-only torch)
            rec.update(device=m["device"], percent_of_peak=None)
        out.append(rec)
        log(line(rec))
    return out


def _as_tuple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def pattern_images(rng, n, size):
    """``n`` structured test images [n, size, size, 3] in [-1, 1]: smooth blobs plus noise
    (real XRAI segments, non-trivial gradients), from the numpy Generator ``rng``."""
    yy, xx = np.mgrid[:size, :size] / size
    out = []
    for _ in range(n):
        f = rng.uniform(2, 8, 4)
        im = np.cos(f[0] * xx + f[1]) * np.sin(f[2] * yy + f[3]) + 0.2 * rng.normal(size=(size, size))
        im = 2 * (im - im.min()) / (im.max() - im.min()) - 1
        out.append(np.repeat(im[..., None], 3, -1))
    return np.stack(out).astype(np.float32)


