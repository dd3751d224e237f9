"""Benchmark records (one dict per measurement) and how they are printed: a log line and
``bench.md``'s table; ``best_max_batch`` picks each method's fastest chunk size."""
from __future__ import annotations

import jax

from saljax.bench.timing import device_peak


def record(model, width, config, method, batch, impl, device, maps_per_s, passes, flops,
           compile_s, peak_bytes) -> dict:
    """One measurement: throughput (maps/s, passes/s), FLOPs per map and achieved TFLOP/s
    (``passes`` x ``flops`` of one pass), percent of the device's peak, compile time, memory."""
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


def line(r) -> str:
    extra = (f" max_batch {r['max_batch']}" if "max_batch" in r else "") + (
        " BN folded" if r.get("bn_folded") else "")
    return (f"{r['impl']:7s} {r['model']}x{r['width']:g} {r['size']}px {r['method']:22s} "
            f"batch {r['batch']:4d}: {r['maps_per_s']:10.3f} maps/s {r['passes_per_s']:10.1f} "
            f"passes/s{extra}")


def markdown(records) -> str:
    """``bench.md``'s table, one row per record."""
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
