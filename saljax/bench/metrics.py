"""Metric speed: saljax's batched SSIM, Spearman and AUPRC against the loops over skimage,
scipy and sklearn that the reference study ran, on the same map pairs."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


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
