"""Metric speed: saljax's batched SSIM, Spearman and AUPRC against the loops over skimage,
scipy and sklearn that the reference study ran, on the same map pairs."""
from __future__ import annotations

import time

import jax
import numpy as np


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


def bench_metrics(pair_counts, size: int, log=print, reps: int = 3) -> list[dict]:
    """Seconds per map pair of the call a user makes, ``saljax.metrics.ssim(a, b, ...)`` (and
    ``spearman``, ``auprc``) on numpy maps [n, size, size] (compiled on the first call, timed
    on the next ``reps``), against the loops over skimage / scipy / sklearn that the reference
    study ran, on the same pairs, for each n of ``pair_counts``."""
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    import saljax.metrics as sx
    rng = np.random.default_rng(0)
    n_max = max(pair_counts)
    a, masks = _bench_maps(rng, n_max, size)
    b = np.clip(a + 0.1 * rng.normal(size=a.shape), 0, 1).astype(np.float32)
    fns = {"ssim": lambda x, y, m: sx.ssim(x, y, data_range=1.0),
           "spearman": lambda x, y, m: sx.spearman(x, y),
           "auprc": lambda x, y, m: sx.auprc(x, m)}
    refs = {"ssim": lambda x, y, m: structural_similarity(x, y, data_range=1.0),
            "spearman": lambda x, y, m: spearmanr(x.ravel(), y.ravel())[0],
            "auprc": lambda x, y, m: _sklearn_auprc(x, m)}
    records = []
    for n in pair_counts:
        x, y, m = a[:n], b[:n], masks[:n]
        for name, fn in fns.items():
            np.asarray(fn(x, y, m))                        # compiles for this shape
            start = time.perf_counter()
            for _ in range(reps):
                ours = np.asarray(fn(x, y, m))
            ours_s = (time.perf_counter() - start) / (reps * n)
            start = time.perf_counter()
            theirs = np.array([refs[name](x[i], y[i], m[i]) for i in range(n)])
            ref_s = (time.perf_counter() - start) / n
            err = float(np.max(np.abs(ours - theirs)))
            rec = {"metric": name, "pairs": n, "size": size,
                   "saljax_ms_per_map": 1e3 * ours_s, "reference_ms_per_map": 1e3 * ref_s,
                   "speedup": ref_s / ours_s, "max_abs_diff": err,
                   "device": jax.devices()[0].device_kind}
            records.append(rec)
            log(f"metric {name:9s} {n} pairs {size}px: saljax {1e3 * ours_s:7.2f} ms/map, "
                f"reference {1e3 * ref_s:7.2f} ms/map ({ref_s / ours_s:.2f}x), "
                f"max |diff| {err:.1e}")
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
