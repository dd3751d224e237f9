"""What every builder shares: resizing, boxes to masks, splits, TFDS features."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from saljax.data.errors import DataError

SPLITS = ("train", "val", "test")


def scale_to_uint8(pixels: np.ndarray, where: str) -> np.ndarray:
    """Deeper than 8-bit pixels scaled by their own minimum and maximum to uint8."""
    pixels = np.asarray(pixels, np.float64)
    lo, hi = float(pixels.min()), float(pixels.max())
    if hi <= lo:
        raise DataError(f"{where}: the image is constant")
    return np.round((pixels - lo) / (hi - lo) * 255).astype(np.uint8)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W] -> uint8 [size, size, 1] (bilinear, antialiased when shrinking)."""
    out = Image.fromarray(image).resize((size, size), Image.BILINEAR)
    return np.asarray(out, np.uint8)[..., None]


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """bool [H, W] -> uint8 [size, size]: a pixel is in the mask when at least half its area is."""
    area = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.BOX)
    return (np.asarray(area) >= 128).astype(np.uint8)


def scale_boxes(boxes_xywh: np.ndarray, original: tuple[int, int], size: int) -> np.ndarray:
    """(x, y, width, height) in original pixels -> (x_min, y_min, x_max, y_max) at ``size``."""
    h, w = original
    b = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
    out = np.stack([b[:, 0] * size / w, b[:, 1] * size / h, (b[:, 0] + b[:, 2]) * size / w,
                    (b[:, 1] + b[:, 3]) * size / h], axis=-1)
    return out.astype(np.float32)


def boxes_mask(boxes_xyxy: np.ndarray, size: int) -> np.ndarray:
    """uint8 [size, size]: pixels whose centre lies in any box (as ``metrics.boxes_to_mask``)."""
    c = np.arange(size) + 0.5
    mask = np.zeros((size, size), bool)
    for x0, y0, x1, y1 in np.asarray(boxes_xyxy).reshape(-1, 4):
        mask |= ((c[:, None] >= y0) & (c[:, None] < y1)) & ((c[None, :] >= x0) & (c[None, :] < x1))
    return mask.astype(np.uint8)


def boxes_mask_corners(boxes_xywh: np.ndarray, original: tuple[int, int],
                       size: int) -> np.ndarray:
    """uint8 [size, size] as the study rasterized RSNA boxes: each corner of (x, y, width,
    height) in original pixels scaled as ``int(size * c / (side - 1))`` (``int(320 * c / 1023)``
    for 1024-px images at 320), the box filled inclusively,
    ``[y_min:y_max + 1, x_min:x_max + 1]``."""
    h, w = original
    mask = np.zeros((size, size), np.uint8)
    for x, y, bw, bh in np.asarray(boxes_xywh, np.float64).reshape(-1, 4):
        x0, x1 = int(size * x / (w - 1)), int(size * (x + bw) / (w - 1))
        y0, y1 = int(size * y / (h - 1)), int(size * (y + bh) / (h - 1))
        mask[y0:y1 + 1, x0:x1 + 1] = 1
    return mask


BOX_RASTERS = ("centres", "corners")   # boxes_mask (pixel centres) / boxes_mask_corners


def check_box(box, shape, where: str) -> None:
    x, y, bw, bh = box
    h, w = shape
    if not (bw > 0 and bh > 0 and x >= 0 and y >= 0 and x + bw <= w and y + bh <= h):
        raise DataError(f"{where}: box (x={x}, y={y}, width={bw}, height={bh}) lies outside the "
                        f"{w}x{h} image")


def split_of(key: str, seed: int, fractions=(0.8, 0.1, 0.1)) -> str:
    """The split of one patient/image id: a hash of (seed, id), so it is fixed and independent
    of the order and number of examples."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2 ** 64
    edges = np.cumsum(fractions) / np.sum(fractions)
    return SPLITS[int(np.searchsorted(edges, u, side="right"))]


def read_splits_csv(path: str) -> dict[str, str]:
    """The study's published splits, rows ``,Image_ID,Split`` (an index column first): image id
    -> split. Ids are taken as published: RSNA's ``<patientId>.png`` (the study's converted PNGs)
    names patient ``<patientId>``; SIIM's are bare SOP instance UIDs."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such splits file")
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or "Image_ID" not in header or "Split" not in header:
            raise DataError(f"{path}: expected a header ',Image_ID,Split', got {header}")
        i_id, i_split = header.index("Image_ID"), header.index("Split")
        for row_no, row in enumerate(reader, start=2):
            split = row[i_split].strip().lower()
            split = {"validation": "val", "valid": "val"}.get(split, split)
            if split not in SPLITS:
                raise DataError(f"{path}, row {row_no}: unknown split {row[i_split]!r}")
            image_id = row[i_id].strip()
            if image_id.lower().endswith((".png", ".dcm")):
                image_id = image_id[:-4]
            out[image_id] = split
    return out


def config_name(size: int, **options) -> str:
    """A builder config name: the size, plus a short hash of any non-default options."""
    items = {k: v for k, v in sorted(options.items()) if v is not None}
    if not items:
        return f"{size}px"
    digest = hashlib.sha1(repr(items).encode()).hexdigest()[:8]
    return f"{size}px_{digest}"


def features(size: int, with_boxes: bool, markers: bool = False) -> tfds.features.FeaturesDict:
    """The schema every builder writes (no TensorFlow needed: plain tensors, no PNG codec); the
    synthetic data adds its marker (0/1) and the marker's square."""
    spec = {
        "id": tfds.features.Text(),
        "image": tfds.features.Tensor(shape=(size, size, 1), dtype=np.uint8),
        "label": tfds.features.ClassLabel(num_classes=2),
        "mask": tfds.features.Tensor(shape=(size, size), dtype=np.uint8),
    }
    if with_boxes:
        spec["boxes"] = tfds.features.Tensor(shape=(None, 4), dtype=np.float32)
    if markers:
        spec["marker"] = tfds.features.Tensor(shape=(), dtype=np.int64)
        spec["marker_mask"] = tfds.features.Tensor(shape=(size, size), dtype=np.uint8)
    return tfds.features.FeaturesDict(spec)


@dataclasses.dataclass
class SizedConfig(tfds.core.BuilderConfig):
    """Output size, how examples are split (by a seeded hash of the patient/image id, or the
    study's splits CSV), which classes are kept (RSNA: ``all``, or the study's
    ``opacity_vs_normal``) and how boxes become masks (``centres`` or the study's ``corners``)."""
    size: int = 320
    split_seed: int = 0
    splits_csv: str | None = None
    classes: str = "all"
    box_raster: str = "centres"


def sized_config(size: int = 320, split_seed: int = 0, splits_csv: str | None = None,
                 classes: str = "all", box_raster: str = "centres"):
    if box_raster not in BOX_RASTERS:
        raise ValueError(f"box_raster must be one of {', '.join(BOX_RASTERS)}, got "
                         f"{box_raster!r}")
    name = config_name(size, split_seed=split_seed or None, splits_csv=splits_csv,
                       classes=None if classes == "all" else classes,
                       box_raster=None if box_raster == "centres" else box_raster)
    return SizedConfig(name=name, size=size, split_seed=split_seed, splits_csv=splits_csv,
                       classes=classes, box_raster=box_raster)
