"""Timing saljax's explainers: FLOPs of a pass (XLA's cost analysis), timed calls after
compiling, peak device memory, and the device's peak throughput for percent-of-peak."""
from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp

import saljax.saliency as ss

# Dense bf16 / fp32 peaks in TFLOP/s (vendor datasheets, dense, no sparsity).
PEAK_TFLOPS = {
    "H100": {"bfloat16": 989.0, "float32": 67.0},
    "H200": {"bfloat16": 989.0, "float32": 67.0},
    "A100": {"bfloat16": 312.0, "float32": 19.5},
    "TPU v4": {"bfloat16": 275.0, "float32": 275.0},
    "TPU v5 lite": {"bfloat16": 197.0, "float32": 197.0},
    "TPU v5e": {"bfloat16": 197.0, "float32": 197.0},
    "TPU v5p": {"bfloat16": 459.0, "float32": 459.0},
}


def device_peak(device, dtype: str):
    kind = device.device_kind
    for name, peaks in PEAK_TFLOPS.items():
        if name.lower() in kind.lower():
            return peaks[dtype]
    return None


def pass_flops(model, variables, images) -> float:
    """XLA's FLOP count of one forward + input-gradient pass per image (CPU lowering if the
    device's compiler reports none)."""
    t = jnp.zeros(images.shape[0], jnp.int32)

    def one_pass(v, x):
        return jax.grad(lambda x: jnp.take_along_axis(model.apply(v, x), t[:, None], 1).sum())(x)

    for backend in (None, "cpu"):
        try:
            lowered = jax.jit(one_pass, backend=backend).lower(variables, images)
            cost = lowered.compile().cost_analysis()
        except Exception:  # a backend without cost analysis
            continue
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        if cost and cost.get("flops"):
            return float(cost["flops"]) / images.shape[0]
    return float("nan")


def _timed(fn: Callable, reps: int) -> float:
    jax.block_until_ready(fn())
    start = time.perf_counter()
    for _ in range(reps):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / reps


def peak_memory(device):
    try:
        stats = device.memory_stats() or {}
    except Exception:
        stats = {}
    return stats.get("peak_bytes_in_use")


def bench_saljax(model, variables, images, method, hparams, max_batch, reps, key):
    explain = ss.make(method, model, max_batch=max_batch, **hparams)
    segments = ss.xrai_segments(images) if method == "xrai" else None
    targets = jnp.zeros(images.shape[0], jnp.int32)
    start = time.perf_counter()
    jitted = jax.jit(explain.pure)
    compiled = jitted.lower(variables, images, targets, key, segments).compile()
    compile_s = time.perf_counter() - start
    seconds = _timed(lambda: compiled(variables, images, targets, key, segments), reps)
    full, forward_only = explain.passes(images.shape[1:])
    return seconds, compile_s, full + forward_only / 3.0


def ssim_vs_float32(model, variables, images, method, hparams, max_batch, key) -> float:
    """Mean SSIM (grayscale maps, data_range 1) between ``model``'s maps (e.g. bfloat16
    compute) and the same model's in float32: what reduced precision costs each method."""
    from saljax.metrics import ssim
    segments = ss.xrai_segments(images) if method == "xrai" else None
    targets = jnp.zeros(images.shape[0], jnp.int32)
    maps = [ss.grayscale(ss.make(method, m, max_batch=max_batch, **hparams)(
        variables, images, targets, key=key, segments=segments))
        for m in (model, model.clone(dtype=jnp.float32))]
    return float(jnp.mean(ssim(maps[0], maps[1], data_range=1.0)))


