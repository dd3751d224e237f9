"""``saljax bench``: saliency throughput, side by side with the way researchers do it today.

For each model x method x batch size: maps/s, model passes/s, FLOPs per map (XLA's cost analysis
of one pass times the passes the method needs, a count the test suite checks against the whole
method), achieved TFLOP/s and percent of the device's peak, compile time and peak device memory.
In the same run, as references: PAIR ``saliency.core`` one image at a time on the same Flax model
(the reference study's way) and, where torch, torchvision and captum import, captum on
torchvision's InceptionV3 (``saljax.bench_captum``). Options time the BatchNorm-folded model and
a sweep of chunk sizes. Writes ``bench.json`` (one record per measurement), ``bench.md`` and,
for a sweep, ``max_batch.json`` (each method's fastest chunk size).
"""
from __future__ import annotations

import os
import time
import types
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

import saljax.models as sm
import saljax.saliency as ss
from saljax import bench_captum, files
from saljax.protocol import PRESETS as STUDY_PRESETS

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


def pair_call(model, variables, block=None):
    """A PAIR ``call_model_function`` on the Flax model, one jitted gradient per batch shape."""
    import saliency.core as sc

    grad = jax.jit(lambda x, t: jax.grad(
        lambda x: jnp.take_along_axis(model.apply(variables, x), t[:, None], 1).sum())(x))

    def cam(x, t):
        _, a, g = sm.block_gradients(model, variables, x, [block],
                                     lambda z: jnp.take_along_axis(z, t[:, None], 1).sum())
        return a[block], g[block]

    cam = jax.jit(cam)

    def call(x, call_model_args=None, expected_keys=None):
        x = jnp.asarray(np.asarray(x, np.float32))
        t = jnp.full((x.shape[0],), call_model_args["target"], jnp.int32)
        if sc.INPUT_OUTPUT_GRADIENTS in expected_keys:
            return {sc.INPUT_OUTPUT_GRADIENTS: np.asarray(grad(x, t))}
        a, g = cam(x, t)
        return {sc.CONVOLUTION_LAYER_VALUES: np.asarray(a),
                sc.CONVOLUTION_OUTPUT_GRADIENTS: np.asarray(g)}

    return call


PAIR_METHODS = ("gradient", "smoothgrad", "integrated_gradients", "smoothgrad_ig", "gradcam",
                "xrai")


def bench_pair(model, variables, images, method, hparams, batch_size):
    """Seconds per map for PAIR ``saliency.core``, one image at a time, as the study ran it."""
    import saliency.core as sc

    hp = {**ss.DEFAULTS[method], **hparams}
    call = pair_call(model, variables, hp.get("block") or model.default_cam_block)
    args = {"target": 0}
    base = lambda im: np.broadcast_to(np.float32(hp.get("baseline", 0.0)), im.shape).copy()
    fns = {
        "gradient": lambda im: sc.GradientSaliency().GetMask(im, call, args),
        "smoothgrad": lambda im: sc.GradientSaliency().GetSmoothedMask(
            im, call, args, stdev_spread=hp.get("stdev_spread", 0.15),
            nsamples=hp.get("nsamples", 25), magnitude=hp.get("magnitude", True)),
        "integrated_gradients": lambda im: sc.IntegratedGradients().GetMask(
            im, call, args, x_steps=hp["x_steps"], x_baseline=base(im), batch_size=batch_size),
        "smoothgrad_ig": lambda im: sc.IntegratedGradients().GetSmoothedMask(
            im, call, args, stdev_spread=hp["stdev_spread"], nsamples=hp["nsamples"],
            magnitude=hp["magnitude"], x_steps=hp["x_steps"], x_baseline=base(im),
            batch_size=batch_size),
        "gradcam": lambda im: sc.GradCam().GetMask(im, call, args, three_dims=False),
        "xrai": lambda im: sc.XRAI().GetMask(im, call, args, batch_size=batch_size,
                                             extra_parameters=sc.XRAIParameters(
                                                 steps=hp["steps"])),
    }
    ims = np.asarray(images)
    fns[method](ims[0])  # compiles the batch shapes PAIR uses
    start = time.perf_counter()
    for im in ims:
        fns[method](im)
    return (time.perf_counter() - start) / len(ims)


def run(config, workdir: str, log=print) -> list[dict]:
    """Run every measurement of ``config``; write bench.json and bench.md to ``workdir``."""
    os.makedirs(workdir, exist_ok=True)
    device = jax.devices()[0]
    records = []
    key = jax.random.key(config.seed)
    for mspec in config.models:
        name, width = mspec["name"], float(mspec.get("width", 1.0))
        dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
        model = sm.create(name, width=width, dtype=dtype)
        rng = np.random.default_rng(config.seed)
        calib = jnp.asarray(rng.uniform(-1, 1, (8, config.size, config.size, 3)), jnp.float32)
        variables = sm.calibrate_batch_stats(model, sm.init(model, key), calib)
        folds = _as_tuple(config.get("fold_batchnorm", False))
        variants = [(False, model, variables)] if False in folds else []
        if True in folds:
            variants.append((True, *sm.fold_batchnorm(model, variables)))
        for batch in config.batch_sizes:
            images = jnp.asarray(pattern_images(rng, batch, config.size))
            flops = pass_flops(model, variables, images)  # the unfolded network's, for both
            for method in config.methods:
                hp = dict(STUDY_PRESETS.get(method, {}))
                hp.update(config.hparams.get(method, {}))
                for folded, m, v in variants:
                    for max_batch in _chunk_sizes(config):
                        seconds, compile_s, passes = bench_saljax(
                            m, v, images, method, hp, max_batch, config.reps, key)
                        rec = _record(name, width, config, method, batch, "saljax", device,
                                      batch / seconds, passes, flops, compile_s,
                                      peak_memory(device))
                        rec.update(bn_folded=folded, max_batch=max_batch)
                        if config.dtype != "float32":
                            rec["ssim_vs_float32"] = ssim_vs_float32(m, v, images, method, hp,
                                                                     max_batch, key)
                        records.append(rec)
                        log(_line(rec) + (f"  SSIM vs float32 {rec['ssim_vs_float32']:.4f}"
                                          if "ssim_vs_float32" in rec else ""))
        if "xrai" in config.methods:
            images = pattern_images(np.random.default_rng(2), config.pair_images, config.size)
            ss.xrai.segment_labels(images[0])  # imports and first-call costs
            start = time.perf_counter()
            ss.xrai_segments(images)  # fresh images: nothing cached
            per_image = (time.perf_counter() - start) / len(images)
            rec = _record(name, width, config, "xrai_segments", 1, "saljax", device,
                          1 / per_image, 0, flops, None, None)
            records.append(rec)
            log(_line(rec) + "  (host, once per image, shared by all models and levels)")
        if config.pair_reference:
            images = np.asarray(pattern_images(np.random.default_rng(1), config.pair_images,
                                              config.size))
            flops = pass_flops(model, variables, jnp.asarray(images[:1]))
            for method in config.methods:
                if method not in PAIR_METHODS:
                    continue
                hp = dict(STUDY_PRESETS.get(method, {}))
                hp.update(config.hparams.get(method, {}))
                seconds = bench_pair(model, variables, images, method, hp, config.pair_batch)
                full, _ = ss.make(method, model, **hp).passes(images.shape[1:])
                rec = _record(name, width, config, method, 1, "pair", device, 1 / seconds, full,
                              flops, None, None)
                records.append(rec)
                log(_line(rec))
    if config.get("captum_reference", True) and bench_captum.available():
        records += _captum_records(config, device, key, log)
    metric_records = []
    if config.get("metrics_pairs", 0):
        metric_records = bench_metrics(config.metrics_pairs, config.metrics_size, log=log)
    files.write_json(os.path.join(workdir, "bench.json"), records + metric_records)
    files.write_text(os.path.join(workdir, "bench.md"),
                     markdown(records) + metrics_markdown(metric_records))
    if config.get("max_batch_sweep"):
        files.write_json(os.path.join(workdir, "max_batch.json"), best_max_batch(records))
    return records + metric_records


def _captum_records(config, device, key, log) -> list[dict]:
    """captum on torchvision's InceptionV3 (full width), the same methods and settings; the
    FLOPs of a pass are those of saljax's InceptionV3, the same architecture."""
    model = sm.create("inception_v3")
    variables = sm.init(model, key)
    images = pattern_images(np.random.default_rng(3), config.get("captum_batch", 1), config.size)
    flops = pass_flops(model, variables, jnp.asarray(images[:1]))
    out = []
    for method in config.methods:
        if method not in bench_captum.METHODS:
            continue
        hp = {**ss.DEFAULTS[method], **STUDY_PRESETS.get(method, {}),
              **config.hparams.get(method, {})}
        m = bench_captum.measure(method, hp, images, config.max_batch, config.reps)
        rec = _record("inception_v3 (torchvision)", 1.0,
                      types.SimpleNamespace(size=config.size, dtype="float32"), method,
                      len(images), "captum", device, 1 / m["seconds_per_map"],
                      m["passes_per_map"], flops, None, None)
        if m["device"] != rec["device"]:  # torch ran elsewhere than JAX (e.g. a CPU-only torch)
            rec.update(device=m["device"], percent_of_peak=None)
        out.append(rec)
        log(_line(rec))
    return out


def _as_tuple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _chunk_sizes(config) -> tuple:
    return tuple(config.get("max_batch_sweep") or ()) or (config.max_batch,)


def best_max_batch(records) -> dict:
    """``{model: {method: max_batch}}``: each saljax method's fastest chunk size (model inputs
    per chunk) at the largest image batch measured, for a study's ``max_batch_per_method``."""
    best = {}
    for r in records:
        if r.get("impl") != "saljax" or "max_batch" not in r:
            continue
        key = (r["model"], r["method"])
        if key not in best or (r["batch"], r["maps_per_s"]) > best[key][:2]:
            best[key] = (r["batch"], r["maps_per_s"], r["max_batch"])
    out = {}
    for (model, method), (_, _, max_batch) in best.items():
        out.setdefault(model, {})[method] = max_batch
    return out


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


def _record(model, width, config, method, batch, impl, device, maps_per_s, passes, flops,
            compile_s, peak_bytes):
    gflops_per_map = passes * flops / 1e9
    tflops = maps_per_s * gflops_per_map / 1e3
    peak = device_peak(device, config.dtype)
    return {"model": model, "width": width, "size": config.size, "method": method,
            "batch": batch, "impl": impl, "dtype": config.dtype, "device": device.device_kind,
            "platform": device.platform, "maps_per_s": maps_per_s,
            "passes_per_map": passes, "passes_per_s": maps_per_s * passes,
            "gflops_per_map": gflops_per_map, "achieved_tflops": tflops,
            "percent_of_peak": None if peak is None else 100 * tflops / peak,
            "compile_s": compile_s, "peak_device_bytes": peak_bytes, "jax": jax.__version__}


def _line(r):
    extra = (f" max_batch {r['max_batch']}" if "max_batch" in r else "") + (
        " BN folded" if r.get("bn_folded") else "")
    return (f"{r['impl']:7s} {r['model']}x{r['width']:g} {r['size']}px {r['method']:22s} "
            f"batch {r['batch']:4d}: {r['maps_per_s']:10.3f} maps/s {r['passes_per_s']:10.1f} "
            f"passes/s{extra}")


def markdown(records) -> str:
    head = ("| impl | model | width | size | method | batch | max batch | BN folded | maps/s | "
            "passes/s | GFLOP/map | TFLOP/s | % peak | compile s | SSIM vs f32 |\n"
            + "|" + "---|" * 15 + "\n")
    rows = []
    for r in records:
        pct = "" if r["percent_of_peak"] is None else f"{r['percent_of_peak']:.1f}"
        comp = "" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        bf = f"{r['ssim_vs_float32']:.4f}" if "ssim_vs_float32" in r else ""
        rows.append(f"| {r['impl']} | {r['model']} | {r['width']:g} | {r['size']} | {r['method']} "
                    f"| {r['batch']} | {r.get('max_batch', '')} | "
                    f"{'yes' if r.get('bn_folded') else ''} | {r['maps_per_s']:.3f} | "
                    f"{r['passes_per_s']:.1f} | "
                    f"{r['gflops_per_map']:.2f} | {r['achieved_tflops']:.3f} | {pct} | {comp} | "
                    f"{bf} |")
    dev = records[0]["device"] if records else ""
    return f"# saljax bench ({dev})\n\n" + head + "\n".join(rows) + "\n"


def _bench_maps(rng, n, size):
    """``n`` smooth, partly clipped maps in [0, 1] (like grayscale saliency) and box masks."""
    yy, xx = np.mgrid[:size, :size] / size
    f = rng.uniform(2, 9, (n, 4, 1, 1))
    maps = np.cos(f[:, 0] * xx + f[:, 1]) * np.sin(f[:, 2] * yy + f[:, 3])
    maps = np.clip(maps + 0.3 * rng.random((n, size, size)), 0, 1).astype(np.float32)
    lo = rng.integers(0, size // 2, (n, 2))
    hi = lo + rng.integers(size // 8, size // 2, (n, 2))
    masks = ((yy[None] * size >= lo[:, :1, None]) & (yy[None] * size < hi[:, :1, None])
             & (xx[None] * size >= lo[:, 1:, None]) & (xx[None] * size < hi[:, 1:, None]))
    return maps, masks


def bench_metrics(n_pairs: int, size: int, chunk: int = 100, log=print) -> list[dict]:
    """Seconds per map pair of saljax's batched SSIM / Spearman / AUPRC against the loops over
    skimage / scipy / sklearn that the reference study ran, on the same ``n_pairs`` maps."""
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    import saljax.metrics as sx
    rng = np.random.default_rng(0)
    a, masks = _bench_maps(rng, n_pairs, size)
    b = np.clip(a + 0.1 * rng.normal(size=a.shape), 0, 1).astype(np.float32)
    fns = {"ssim": lambda x, y, m: sx.ssim(x, y, data_range=1.0),
           "spearman": lambda x, y, m: sx.spearman(x, y),
           "auprc": lambda x, y, m: sx.auprc(x, m)}
    refs = {"ssim": lambda x, y, m: structural_similarity(x, y, data_range=1.0),
            "spearman": lambda x, y, m: spearmanr(x.ravel(), y.ravel())[0],
            "auprc": lambda x, y, m: _sklearn_auprc(x, m)}
    records = []
    chunk = min(chunk, n_pairs)
    n_pairs -= n_pairs % chunk
    n_ref = min(n_pairs, 2000)
    for name, fn in fns.items():
        # natively batched chunks of ``chunk`` pairs, one chunk after the other (bounded memory)
        batched = jax.jit(lambda x, y, m, fn=fn: lax.map(
            lambda t: fn(*t), tuple(v.reshape((-1, chunk) + v.shape[1:]) for v in (x, y, m))
        ).reshape(-1))
        args = [jnp.asarray(v) for v in (a, b, masks)]
        jax.block_until_ready(batched(*(v[:chunk] for v in args)))  # compile outside the timing
        jax.block_until_ready(batched(*args))
        start = time.perf_counter()
        ours = np.asarray(batched(*args))
        ours_s = (time.perf_counter() - start) / n_pairs
        start = time.perf_counter()
        theirs = np.array([refs[name](a[i], b[i], masks[i]) for i in range(n_ref)])
        ref_s = (time.perf_counter() - start) / n_ref
        err = float(np.max(np.abs(ours[:n_ref] - theirs)))
        rec = {"metric": name, "pairs": n_pairs, "size": size, "saljax_ms_per_map": 1e3 * ours_s,
               "reference_ms_per_map": 1e3 * ref_s, "speedup": ref_s / ours_s, "max_abs_diff": err,
               "device": jax.devices()[0].device_kind}
        records.append(rec)
        log(f"metric {name:9s} {n_pairs} pairs {size}px: saljax {1e3 * ours_s:7.2f} ms/map, "
            f"reference {1e3 * ref_s:7.2f} ms/map ({ref_s / ours_s:.2f}x), max |diff| {err:.1e}")
    return records


def _sklearn_auprc(score, mask):
    from sklearn.metrics import auc, precision_recall_curve
    precision, recall, _ = precision_recall_curve(mask.ravel(), score.ravel())
    return auc(recall, precision)


def metrics_markdown(records) -> str:
    if not records:
        return ""
    rows = [f"| {r['metric']} | {r['pairs']} | {r['size']} | {r['saljax_ms_per_map']:.2f} | "
            f"{r['reference_ms_per_map']:.2f} | {r['speedup']:.2f} | {r['max_abs_diff']:.1e} |"
            for r in records]
    return ("\n## Metrics: batched saljax against skimage / scipy / sklearn loops\n\n"
            "| metric | pairs | size | saljax ms/map | reference ms/map | speedup | max abs diff |\n"
            + "|" + "---|" * 7 + "\n" + "\n".join(rows) + "\n")
