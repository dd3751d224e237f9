"""Stage 1, inputs: the dataset (built once), the study's evaluation images and their masks.

The study's images are the test split's positives with a lesion (stored order); the first
``eval_images`` of them serve randomization and agreement, all (or ``utility_images``) the
utility criterion. Map units take them ``chunk`` at a time.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from saljax import data as sd


@dataclasses.dataclass(frozen=True)
class StudyImages:
    """The study's images: ``ids`` [N], ``pixels`` uint8 [N, H, W, 1], ``masks`` bool [N, H, W]."""
    ids: tuple
    pixels: np.ndarray
    masks: np.ndarray

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

    def training_masks(self) -> np.ndarray:
        """The training positives' masks, bool [M, H, W] (the average-mask baseline)."""
        batches = sd.evaluation_batches(self.splits["train"], 128, keys=("label", "mask"))
        masks = [batches[i]["mask"][batches[i]["label"] == 1] for i in range(len(batches))]
        return np.concatenate(masks).astype(bool)


def build_data(config, workdir: str) -> str:
    """The dataset's built directory: ``config.data_path``, or built once into
    ``<workdir>/data`` (synthetic, or from the user's downloads in ``manual_dir``)."""
    if config.data_path:
        return config.data_path
    data_dir = os.path.join(workdir, "data")
    if config.dataset == "synthetic_cxr":
        s = config.synthetic
        options = {k: v for k, v in s.items() if k not in ("seed", "counts")}
        return sd.build("synthetic_cxr", data_dir, size=config.size, seed=s.seed,
                        counts=tuple(tuple(c) for c in s.counts), **options)
    return sd.build(config.dataset, data_dir, manual_dir=config.manual_dir, size=config.size,
                    splits_csv=config.splits_csv or None)


def study_images(splits, limit: int) -> StudyImages:
    """The test split's positives with a non-empty mask, in stored order (the first ``limit``
    when ``limit`` > 0)."""
    batches = sd.evaluation_batches(splits["test"], 64)
    ids, pixels, masks = [], [], []
    for i in range(len(batches)):
        b = batches[i]
        keep = (b["label"] == 1) & (b["mask"].reshape(len(b["mask"]), -1).max(-1) > 0)
        ids += [x.decode() if isinstance(x, bytes) else str(x) for x in b["id"][keep]]
        pixels.append(b["image"][keep])
        masks.append(b["mask"][keep].astype(bool))
    pixels, masks = np.concatenate(pixels), np.concatenate(masks)
    if limit > 0:
        ids, pixels, masks = ids[:limit], pixels[:limit], masks[:limit]
    if len(ids) < 2:
        raise ValueError(f"the test split has {len(ids)} positive images with a lesion mask; "
                         "the study needs at least 2")
    return StudyImages(tuple(ids), pixels, masks)


def prepare(config, data_path: str) -> Inputs:
    """The inputs of a study over the dataset built at ``data_path``."""
    splits = sd.open_splits(data_path)
    return Inputs(data_path, splits, study_images(splits, config.utility_images))
