"""Summary statistics of per-image values: mean, sd, bootstrap 95% CI (over images, or over
replicate models and images), paired Wilcoxon test."""
from __future__ import annotations

import warnings

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


def hierarchical_summarize(values, *, seed: int = 0, n_boot: int = 1000) -> dict:
    """Like :func:`summarize` for ``values`` [replicates, images] (every replicate model's value
    of the same images), with a bootstrap that resamples both: each draw takes the replicates
    with replacement and, independently, the images with replacement (the same images for every
    replicate drawn: the design is crossed), and computes the statistic as the point estimate
    does: per image the mean over the replicates, then the mean over the images (NaNs left out).
    Resampling the images alone treats replicate models as fixed, so its interval ignores how
    much a retrained model would differ. With few replicates (2 or 3) any bootstrap over them
    is coarse: its interval undercovers."""
    v = np.asarray(values, np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be [replicates, images], got shape {v.shape}")
    n_rep, n_img = v.shape
    with warnings.catch_warnings():       # an image without a finite value: its mean is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        per_image = np.nanmean(v, axis=0)
        finite = per_image[np.isfinite(per_image)]
        out = {"n_replicates": int(n_rep), "n": int(finite.size),
               "n_nan": int(n_img - finite.size)}
        if finite.size == 0:
            return {**out, "mean": float("nan"), "sd": float("nan"), "ci_low": float("nan"),
                    "ci_high": float("nan")}
        rng = np.random.default_rng(seed)
        reps = rng.integers(0, n_rep, (n_boot, n_rep))
        imgs = rng.integers(0, n_img, (n_boot, n_img))
        boots = np.nanmean(np.nanmean(v[reps[:, :, None], imgs[:, None, :]], axis=1), axis=1)
    boots = boots[np.isfinite(boots)]
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
