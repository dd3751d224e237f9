"""Summary statistics of per-image values: mean, sd, bootstrap 95% CI, paired Wilcoxon test."""
from __future__ import annotations

import numpy as np
from scipy import stats


def summarize(values, *, seed: int = 0, n_boot: int = 1000) -> dict:
    """``{"n", "mean", "sd", "ci_low", "ci_high"}`` of the finite values (percentile bootstrap
    of the mean). NaNs (e.g. an image without a lesion) are left out and counted in ``n_nan``."""
    v = np.asarray(values, np.float64).ravel()
    finite = v[np.isfinite(v)]
    out = {"n": int(finite.size), "n_nan": int(v.size - finite.size)}
    if finite.size == 0:
        return {**out, "mean": float("nan"), "sd": float("nan"), "ci_low": float("nan"),
                "ci_high": float("nan")}
    rng = np.random.default_rng(seed)
    boots = finite[rng.integers(0, finite.size, (n_boot, finite.size))].mean(axis=1)
    return {**out, "mean": float(finite.mean()),
            "sd": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
            "ci_low": float(np.percentile(boots, 2.5)),
            "ci_high": float(np.percentile(boots, 97.5))}


def wilcoxon(values, baseline) -> dict:
    """Paired two-sided Wilcoxon signed-rank test of ``values`` against ``baseline`` (an array
    paired by image, or one number). ``p`` is NaN when fewer than 2 pairs differ."""
    v = np.asarray(values, np.float64).ravel()
    b = np.broadcast_to(np.asarray(baseline, np.float64), v.shape)
    ok = np.isfinite(v) & np.isfinite(b)
    d = v[ok] - b[ok]
    if np.count_nonzero(d) < 2:
        return {"statistic": float("nan"), "p": float("nan"), "n": int(ok.sum()),
                "median_difference": float(np.median(d)) if d.size else float("nan")}
    res = stats.wilcoxon(d)
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "n": int(ok.sum()),
            "median_difference": float(np.median(d))}


def mean_over_models(values) -> np.ndarray:
    """[models, images] -> [images]: each image's mean over the models (or model pairs) with a
    finite value, NaN where none has one."""
    a = np.asarray(values, np.float64).reshape(len(values), -1)
    return np.array([np.nanmean(col) if np.isfinite(col).any() else np.nan for col in a.T])
