"""The study's own evaluation images: its shipped sample files, read and matched to a dataset.

Arun et al. ship the 100 randomization and agreement images as ``pneumonia_samples/N.npy`` and
``pneumothorax_samples/N.npy`` (N = 0..99): each 320 x 320 x 3 float32 in [-1, 1] (grayscale
repeated, the model's input), without ids. :func:`read` loads such a folder (never unpickling)
and checks every file; :func:`to_pixels` turns a sample into the stored form (uint8 [S, S, 1]
at the dataset's size, by the builders' own resize); :func:`match` finds each sample's id in a
built dataset by pixel correlation.
"""
from __future__ import annotations

import os
import re

import numpy as np

from saljax.data import common
from saljax.data.errors import DataError

MIN_CORRELATION = 0.98   # a match: the sample's pixels correlate at least this with the image
MARGIN = 0.01            # and the next best image correlates at least this much less


def files(folder: str) -> list[str]:
    """The folder's ``N.npy`` files in the order of N (other files are ignored)."""
    if not os.path.isdir(folder):
        raise DataError(f"eval_samples: {folder!r} is not a folder")
    named = [(int(m.group(1)), f) for f in os.listdir(folder)
             if (m := re.fullmatch(r"(\d+)\.npy", f))]
    if not named:
        raise DataError(f"eval_samples: {folder} has no N.npy sample files")
    return [os.path.join(folder, f) for _, f in sorted(named)]


def load(path: str) -> np.ndarray:
    """One sample, float32 [H, W, 3] (or [H, W]) in [-1, 1], checked; errors name the file."""
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a numpy array file ({e})") from None
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{path}: the study's samples are float arrays in [-1, 1], got {x.dtype}")
    if x.ndim == 3 and x.shape[-1] in (1, 3):
        x = x.mean(-1) if not np.allclose(x, x[..., :1], atol=1e-4) else x[..., 0]
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise DataError(f"{path}: expected a square image [H, H, 3] or [H, H], got "
                        f"{tuple(np.shape(x))}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: the sample has NaN or infinite pixels")
    if x.min() < -1.001 or x.max() > 1.001:
        raise DataError(f"{path}: pixels must lie in [-1, 1] (the study's input scaling), got "
                        f"[{x.min():.3g}, {x.max():.3g}]")
    return x.astype(np.float32)


def to_pixels(sample: np.ndarray, size: int) -> np.ndarray:
    """A sample (gray, [-1, 1]) as a stored image: uint8 [size, size, 1], resized as the
    builders resize (PIL bilinear) when its side differs."""
    gray = np.clip(np.round((np.asarray(sample, np.float32) + 1.0) * 127.5), 0, 255)
    gray = gray.astype(np.uint8)
    return common.resize_image(gray, size) if gray.shape[0] != size else gray[..., None]


def read(folder: str, size: int) -> tuple[list[str], np.ndarray]:
    """The folder's samples as stored images: (file names without ``.npy``, uint8 [N, size,
    size, 1]), in the order of N."""
    paths = files(folder)
    pixels = np.stack([to_pixels(load(p), size) for p in paths])
    return [os.path.basename(p)[:-4] for p in paths], pixels


def _standardized(images: np.ndarray) -> np.ndarray:
    x = images.reshape(len(images), -1).astype(np.float64)
    x = x - x.mean(1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def match(folder: str, splits: dict, *, min_correlation: float = MIN_CORRELATION,
          margin: float = MARGIN, batch: int = 256) -> list[dict]:
    """Each sample's image in ``splits`` (``{split: source}`` of a built dataset): per sample
    ``{"sample", "id", "split", "correlation", "runner_up"}``, in the order of N. A sample
    whose best correlation is below ``min_correlation`` (in no split) or whose runner-up is
    within ``margin`` of it (ambiguous) is an error naming the file."""
    from saljax.data.loader import evaluation_batches
    first = next(iter(splits.values()))
    size = int(np.asarray(first[0]["image"]).shape[0])
    names, pixels = read(folder, size)
    q = _standardized(pixels)
    best = np.full((len(names), 2), -np.inf)        # best and runner-up correlation
    where = [None] * len(names)
    for split, source in splits.items():
        batches = evaluation_batches(source, batch, keys=("id", "image"))
        for i in range(len(batches)):
            b = batches[i]
            r = q @ _standardized(b["image"]).T      # [samples, batch]
            ids = [x.decode() if isinstance(x, bytes) else str(x) for x in b["id"]]
            for s in range(len(names)):
                for k in np.argsort(r[s])[::-1][:2]:
                    v = r[s, k]
                    if v > best[s, 0]:
                        best[s] = (v, best[s, 0])
                        where[s] = (ids[k], split)
                    elif v > best[s, 1]:
                        best[s, 1] = v
    out, folder_files = [], files(folder)
    for s, name in enumerate(names):
        top, second = best[s]
        if top < min_correlation:
            raise DataError(f"{folder_files[s]}: in no split of the dataset (best pixel "
                            f"correlation {top:.3f} < {min_correlation})")
        if second > top - margin:
            raise DataError(f"{folder_files[s]}: ambiguous: two images correlate {top:.4f} and "
                            f"{second:.4f} with it")
        out.append({"sample": name, "id": where[s][0], "split": where[s][1],
                    "correlation": float(top), "runner_up": float(second)})
    ids = [o["id"] for o in out]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"{folder}: several samples match the same image: {', '.join(twice)}")
    return out
