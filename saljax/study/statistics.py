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


def _replicate_image_means(v, reps, imgs):
    """Each draw's statistic of ``v`` [R, N]: per drawn image the mean over the drawn
    replicates, then the mean over the drawn images (NaNs left out): [draws]."""
    return np.nanmean(np.nanmean(v[reps[:, :, None], imgs[:, None, :]], axis=1), axis=1)


def difference(values, line=None, paired=None, *, seed: int = 0, n_boot: int = 1000,
               shared_replicates: bool = True) -> dict:
    """A criterion's value against its line, with a bootstrap over both.

    ``values`` [replicates, images]: every replicate model's (or model pair's) value of the
    same images. The line is either ``line`` [line replicates, pairs] (e.g. the SSIM of random
    pairs of each model's maps: its mean is the mean over replicates of each one's pair mean),
    ``paired`` [images] (a model-free baseline of the same images, e.g. the average mask's
    AUPRC), a number, or None (0). Each draw resamples the replicates, the images (crossed, as
    :func:`hierarchical_summarize`) and the line's replicates and pairs: the same replicates as
    the values' when ``shared_replicates`` and the line comes from the same models, else
    independently. Returns ``value`` and ``line`` (each ``mean``, ``ci_low``, ``ci_high``, a
    percentile 95% interval) and ``difference`` (value - line: ``mean``, ``se`` (the draws'
    sd), ``ci_low``, ``ci_high``)."""
    v = np.asarray(values, np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be [replicates, images], got shape {v.shape}")
    rng = np.random.default_rng(seed)
    n_rep, n_img = v.shape
    reps = rng.integers(0, n_rep, (n_boot, n_rep))
    imgs = rng.integers(0, n_img, (n_boot, n_img))
    with warnings.catch_warnings():         # all-NaN slices: NaN, left out below
        warnings.simplefilter("ignore", RuntimeWarning)
        per_image = np.nanmean(v, axis=0)
        value_boot = _replicate_image_means(v, reps, imgs)
        if paired is not None:
            p = np.broadcast_to(np.asarray(paired, np.float64), (n_img,))
            line_point = float(np.nanmean(p[np.isfinite(per_image)]))
            diff_point = float(np.nanmean(per_image - p))
            line_boot = np.nanmean(np.where(np.isfinite(per_image[imgs]), p[imgs], np.nan),
                                   axis=1)
            diff_boot = np.nanmean(np.nanmean(v[reps[:, :, None], imgs[:, None, :]], axis=1)
                                   - p[imgs], axis=1)
        elif line is not None and np.ndim(line) == 2:
            w = np.asarray(line, np.float64)
            n_line, n_pairs = w.shape
            line_reps = (reps if shared_replicates and n_line == n_rep
                         else rng.integers(0, n_line, (n_boot, n_line)))
            pairs = rng.integers(0, n_pairs, (n_boot, n_pairs))
            line_point = float(np.nanmean(np.nanmean(w, axis=1)))
            line_boot = np.nanmean(np.nanmean(w[line_reps[:, :, None], pairs[:, None, :]],
                                              axis=2), axis=1)
            diff_point = float(np.nanmean(per_image)) - line_point
            diff_boot = value_boot - line_boot
        else:
            line_point = float(0.0 if line is None else line)
            line_boot = np.full(n_boot, line_point)
            diff_point = float(np.nanmean(per_image)) - line_point
            diff_boot = value_boot - line_point

    def interval(point, boots):
        boots = boots[np.isfinite(boots)]
        if not np.isfinite(point) or not boots.size:
            return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
        return {"mean": float(point), "ci_low": float(np.percentile(boots, 2.5)),
                "ci_high": float(np.percentile(boots, 97.5))}

    finite = diff_boot[np.isfinite(diff_boot)]
    return {"n_replicates": int(n_rep), "n": int(np.isfinite(per_image).sum()),
            "value": interval(float(np.nanmean(per_image)) if np.isfinite(per_image).any()
                              else float("nan"), value_boot),
            "line": interval(line_point, line_boot),
            "difference": {**interval(diff_point, diff_boot),
                           "se": float(finite.std(ddof=1)) if finite.size > 1 else float("nan")}}


def p_below(test: dict, threshold: float = 0.0) -> float:
    """One-sided p of "difference >= threshold" (small: the difference is below it), from the
    bootstrap's standard error (normal approximation). A difference without spread (identical
    maps) gives 0 or 1 by its sign, 0.5 at the threshold; NaN without a value."""
    d = test["difference"]
    mean, se = d["mean"], d.get("se", float("nan"))
    if not np.isfinite(mean):
        return float("nan")
    if not (np.isfinite(se) and se > 0):
        return 0.0 if mean < threshold else (1.0 if mean > threshold else 0.5)
    return float(stats.norm.cdf((mean - threshold) / se))


def p_above(test: dict, threshold: float = 0.0) -> float:
    """One-sided p of "difference <= threshold" (small: the difference is above it)."""
    d = test["difference"]
    flipped = {"difference": {"mean": -d["mean"], "se": d.get("se", float("nan"))}}
    return p_below(flipped, -threshold)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of ``pvalues`` (NaNs stay NaN and are not counted):
    adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)), in ascending order."""
    p = np.asarray(pvalues, np.float64).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.reshape(np.shape(pvalues))
