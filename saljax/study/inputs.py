"""Stage 1, inputs: the dataset (built once), the study's evaluation images and their masks.

The study's images are the test split's positives with a lesion, in the order of the study's
draw (Python's ``random.seed(eval_seed)``, ``random.shuffle`` of their indices in stored order)
or with the ids of ``eval_ids`` first; the first ``eval_images`` serve randomization and
agreement, all (or the first ``utility_images``) the utility criterion. Map units take them
``chunk`` at a time.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import random

import numpy as np

from saljax import data as sd
from saljax.data import samples


@dataclasses.dataclass(frozen=True)
class StudyImages:
    """The study's images: ``ids`` [N], ``pixels`` uint8 [N, H, W, 1], ``masks`` bool [N, H, W]
    (the lesions), and for synthetic data ``markers`` bool [N, H, W] (the marker's square,
    empty without one)."""
    ids: tuple
    pixels: np.ndarray
    masks: np.ndarray
    markers: np.ndarray | None = None
    has_masks: bool = True      # False: a dataset without lesion masks or boxes

    def __len__(self) -> int:
        return len(self.ids)

    def chunks(self, size: int) -> np.ndarray:
        """The pixels padded (repeating the last image) to a whole number of ``size``-image
        chunks: chunk c is ``[c * size:(c + 1) * size]``."""
        n, padded = len(self), -(-len(self) // size) * size
        a = self.pixels
        return np.concatenate([a, np.repeat(a[-1:], padded - n, 0)]) if n < padded else a


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What the later stages read: the built dataset and the study's images."""
    data_path: str
    splits: dict
    images: StudyImages

    def average_marker(self, data_path: str | None = None) -> np.ndarray:
        """The average marker square of the training images with a marker (of ``data_path``'s
        dataset, default this one's): the marker's average-mask baseline, [H, W]."""
        splits = sd.open_splits(data_path) if data_path else self.splits
        batches = sd.evaluation_batches(splits["train"], 128, keys=("marker", "marker_mask"))
        masks = [batches[i]["marker_mask"][batches[i]["marker"] == 1]
                 for i in range(len(batches))]
        masks = np.concatenate(masks).astype(np.float32)
        return masks.mean(0) if len(masks) else np.zeros(self.images.masks.shape[1:], np.float32)

    def test_negatives(self, n: int) -> np.ndarray:
        """The first ``n`` test negatives without a marker (stored order), uint8 [m, H, W, 1]:
        the images known truth pastes a marker into (sufficiency)."""
        keys = ("image", "label") + (("marker",) if self.images.markers is not None else ())
        batches = sd.evaluation_batches(self.splits["test"], 128, keys=keys)
        out = []
        for i in range(len(batches)):
            b = batches[i]
            keep = (b["label"] == 0) & ((b["marker"] == 0) if "marker" in b else True)
            out.append(b["image"][keep])
            if sum(len(o) for o in out) >= n:
                break
        return np.concatenate(out)[:n] if out else np.zeros((0,) + self.images.pixels.shape[1:],
                                                             np.uint8)

    def training_masks(self) -> np.ndarray:
        """The training positives' masks, bool [M, H, W] (the average-mask baseline)."""
        batches = sd.evaluation_batches(self.splits["train"], 128, keys=("label", "mask"))
        masks = [batches[i]["mask"][batches[i]["label"] == 1] for i in range(len(batches))]
        return np.concatenate(masks).astype(bool)


def build_data(config, workdir) -> str:
    """The dataset's built directory: ``config.data_path``, or built once into the
    :class:`~saljax.study.workdir.Workdir`'s ``data`` (synthetic, or from the user's downloads
    in ``manual_dir``)."""
    if config.data_path:
        return config.data_path
    data_dir = workdir.data
    if config.dataset == "synthetic_cxr":
        return _synthetic(config, data_dir)
    return sd.build(config.dataset, data_dir, manual_dir=config.manual_dir, size=config.size,
                    splits_csv=config.splits_csv or None, classes=config.classes,
                    box_raster=config.box_raster)


def draw(n: int, seed: int) -> list:
    """The study's draw of ``n`` indices: ``random.seed(seed); random.shuffle(range(n))``
    (stored order for a negative seed)."""
    order = list(range(n))
    if seed >= 0:
        random.Random(seed).shuffle(order)
    return order


def read_ids(path: str) -> list:
    """Image ids from a CSV with an ``Image_ID`` or ``id`` column, or a text file of one id per
    line; a ``.png`` / ``.dcm`` suffix (the study's RSNA ids) is dropped."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"eval_ids: no file {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = [line.strip() for line in f if line.strip()]
    if lines and ("," in lines[0] or lines[0] in ("Image_ID", "id")):
        rows = list(csv.DictReader(lines))
        column = next((c for c in ("Image_ID", "id") if c in (rows[0] if rows else {})), None)
        if column is None:
            raise ValueError(f"eval_ids: {path} has no Image_ID or id column")
        lines = [r[column].strip() for r in rows]
    return [i[:-4] if i.lower().endswith((".png", ".dcm")) else i for i in lines]


def order(ids, config) -> list:
    """Indices of ``ids`` (the test positives, stored order) in the study's order: the ids of
    ``config.eval_ids`` first (in their order), then the others in the seeded draw's order."""
    drawn = draw(len(ids), config.eval_seed)
    if not config.eval_ids:
        return drawn
    wanted = read_ids(config.eval_ids)
    where = {i: k for k, i in enumerate(ids)}
    missing = [i for i in wanted if i not in where]
    if missing:
        raise ValueError(f"eval_ids: {len(missing)} of {len(wanted)} ids are not test positives "
                         f"with a lesion: {', '.join(missing[:5])}")
    ranked = [where[i] for i in wanted]
    chosen = set(ranked)
    return ranked + [k for k in drawn if k not in chosen]


def _synthetic(config, data_dir: str, **changes) -> str:
    s = config.synthetic
    return sd.build("synthetic_cxr", data_dir, size=config.size, seed=s.seed,
                    counts=tuple(tuple(c) for c in s.counts), **synthetic_options(config,
                                                                                   **changes))


def synthetic_options(config, **changes) -> dict:
    """The synthetic generator's options of the study's data (``config.synthetic`` without
    its seed and split counts), with ``changes``."""
    options = {k: v for k, v in config.synthetic.items() if k not in ("seed", "counts")}
    return {**options, **changes}


def shortcut_options(config, strength: float) -> dict:
    """The generator's options of a shortcut arm's data: the study's, with
    ``known_truth.shortcut_data`` and the marker tied to the label at ``strength``."""
    return synthetic_options(config, **{**dict(config.known_truth.shortcut_data),
                                        "marker": "shortcut", "shortcut_strength": strength})


def shortcut_arms(config) -> dict:
    """``{arm: strength}``: the shortcut arms of known truth, one per
    ``known_truth.shortcut_strengths`` (``"shortcut"`` alone, or ``"shortcut50"``,
    ``"shortcut80"``, ... for a sweep); empty without known truth or shortcut seeds."""
    kt = config.known_truth
    if not (kt.enabled and kt.shortcut_seeds):
        return {}
    strengths = [float(s) for s in kt.shortcut_strengths]
    if len(strengths) == 1:
        return {"shortcut": strengths[0]}
    return {f"shortcut{round(100 * s)}": s for s in strengths}


def build_shortcut_data(config, workdir) -> dict:
    """Each shortcut arm's training data, ``{arm: built dataset}`` (known truth): the study's
    synthetic data with the marker on ``strength`` of the positives and ``1 - strength`` of the
    negatives, and ``known_truth.shortcut_data``'s options; built once into the workdir's
    ``data``."""
    arms = shortcut_arms(config)
    if arms and config.dataset != "synthetic_cxr":
        raise ValueError("known_truth needs the synthetic data (dataset synthetic_cxr): only there "
                         "are the lesion and the marker known to the pixel")
    return {arm: _synthetic(config, workdir.data, **shortcut_options(config, s))
            for arm, s in arms.items()}


def study_images(splits, config) -> StudyImages:
    """The test split's positives with a non-empty mask (every positive when the dataset has
    no masks or boxes at all), in the study's order (:func:`order`), the first
    ``utility_images`` when that is > 0."""
    with_markers = "marker_mask" in splits["test"][0]
    keys = ("id", "image", "label", "mask") + (("marker_mask",) if with_markers else ())
    batches = sd.evaluation_batches(splits["test"], 64, keys=keys)
    ids, pixels, masks, markers, lesion = [], [], [], [], []
    for i in range(len(batches)):
        b = batches[i]
        keep = b["label"] == 1
        ids += [x.decode() if isinstance(x, bytes) else str(x) for x in b["id"][keep]]
        pixels.append(b["image"][keep])
        masks.append(b["mask"][keep].astype(bool))
        lesion.append(masks[-1].reshape(len(masks[-1]), -1).any(-1))
        if with_markers:
            markers.append(b["marker_mask"][keep].astype(bool))
    pixels, masks, lesion = np.concatenate(pixels), np.concatenate(masks), np.concatenate(lesion)
    has_masks = bool(lesion.any())   # else: no ground truth; every positive, utility skipped
    keep = lesion if has_masks else np.ones(len(ids), bool)
    ids = [i for i, k in zip(ids, keep) if k]
    pixels, masks = pixels[keep], masks[keep]
    markers = [np.concatenate(markers)[keep]] if with_markers else []
    idx = order(ids, config)
    if config.utility_images > 0:
        idx = idx[:config.utility_images]
    ids, pixels, masks = [ids[k] for k in idx], pixels[idx], masks[idx]
    if len(ids) < 2:
        raise ValueError(f"the test split has {len(ids)} positive images"
                         + (" with a lesion mask" if has_masks else "")
                         + "; the study needs at least 2")
    return StudyImages(tuple(ids), pixels, masks,
                       markers[0][idx] if with_markers else None, has_masks)


def sample_images(config) -> StudyImages:
    """The study's own sample files (``config.eval_samples``) as the study's images, in the
    order of their N: no masks (utility is skipped), ids ``sample<N>``."""
    names, pixels = samples.read(config.eval_samples, config.size)
    return StudyImages(tuple(f"sample{n}" for n in names), pixels,
                       np.zeros(pixels.shape[:3], bool), None, has_masks=False)


def prepare(config, data_path: str) -> Inputs:
    """The inputs of a study over the dataset built at ``data_path``: its test positives in
    the study's order, or the study's sample files (``eval_samples``)."""
    splits = sd.open_splits(data_path, need=("train", "val", "test"))
    images = sample_images(config) if config.eval_samples else study_images(splits, config)
    return Inputs(data_path, splits, images)
