"""Your own data: a folder and a CSV, as a TFDS builder.

``manual_dir/labels.csv`` with columns ``path`` (PNG, JPEG or DICOM, relative to the folder),
``label`` (0/1) and optionally ``mask_path`` (a PNG whose non-zero pixels are abnormal) or
``boxes`` (``x y width height`` in image pixels, several boxes separated by ``;``), and
optionally ``split`` (train/val/test; else a seeded hash of the path).
"""
from __future__ import annotations

import csv
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from saljax.data import common
from saljax.data.dicom import read_dicom
from saljax.data.errors import DataError

CSV = "labels.csv"


def read_image(path: str) -> np.ndarray:
    """A 2-D uint8 image from a PNG, JPEG or DICOM file. 8-bit images are read as stored;
    16-bit ones (how many X-ray exports are stored) are scaled by their own minimum and maximum
    to 0..255, as deeper DICOMs are (:func:`saljax.data.dicom.read_dicom`); colour images are
    converted to grayscale."""
    if path.lower().endswith(".dcm"):
        return read_dicom(path)
    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                return common.scale_to_uint8(np.asarray(im), path)
            return np.asarray(im.convert("L"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from e


class FolderCxr(tfds.core.GeneratorBasedBuilder):
    """Images listed in a CSV, with labels and optional masks or boxes."""
    HAS_BOXES = True     # examples carry lesion boxes (what a detector baseline trains on)
    HAS_MARKERS = False   # examples carry a marker known to the pixel (known truth)

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.1.0": "stored in the order of the input CSV (TFDS shuffling off): "
                              "\"stored order\" (eval_seed's draw) is the CSV's"}
    BUILDER_CONFIGS = [common.sized_config(320), common.sized_config(224)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, description=__doc__, disable_shuffling=True,
                                     features=common.features(self.builder_config.size, True))

    def _split_generators(self, dl_manager):
        manual = str(dl_manager.manual_dir)
        path = os.path.join(manual, CSV)
        if not os.path.exists(path):
            raise DataError(f"{path}: missing (see saljax.data.folder_cxr for the format)")
        with open(path, newline="", encoding="utf-8-sig") as f:   # a spreadsheet's BOM too
            reader = csv.DictReader(f)
            rows = list(reader)
        missing = [c for c in ("path", "label") if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path}: no column {', '.join(missing)} (header: "
                            f"{reader.fieldnames})")
        if not rows:
            raise DataError(f"{path}: no images listed (only a header)")
        by_split = {s: [] for s in common.SPLITS}
        first_row = {}
        for row_no, row in enumerate(rows, start=2):
            for need in ("path", "label"):
                if not (row.get(need) or "").strip():
                    raise DataError(f"{path}, row {row_no}: empty {need!r}")
            image = row["path"].strip()
            if image in first_row:
                raise DataError(f"{path}, rows {first_row[image]} and {row_no}: {image} is listed "
                                "twice")
            first_row[image] = row_no
            split = (row.get("split") or "").strip().lower() or common.split_of(
                row["path"], self.builder_config.split_seed)
            if split not in by_split:
                raise DataError(f"{path}, row {row_no}: unknown split {split!r}")
            by_split[split].append((row_no, row))
        return {s: self._generate_examples(manual, r)
                for s, r in by_split.items() if r}  # TFDS writes no empty split

    def _generate_examples(self, manual, rows):
        size = self.builder_config.size
        where_csv = os.path.join(manual, CSV)
        for row_no, row in rows:
            where = f"{where_csv}, row {row_no}"
            path = os.path.join(manual, row["path"].strip())
            if not os.path.exists(path):
                raise DataError(f"{where}: no image at {path}")
            image = read_image(path)
            label = row["label"].strip()
            if label not in ("0", "1"):
                raise DataError(f"{where}: label must be 0 or 1, got {label!r}")
            boxes = np.zeros((0, 4), np.float32)
            mask = np.zeros((size, size), np.uint8)
            if (row.get("boxes") or "").strip():
                raw = []
                for part in row["boxes"].split(";"):
                    try:
                        box = [float(v) for v in part.split()]
                    except ValueError as e:
                        raise DataError(f"{where}: boxes must be 'x y width height' ({e})") from e
                    if len(box) != 4:
                        raise DataError(f"{where}: each box needs 4 numbers, got {part!r}")
                    common.check_box(box, image.shape, f"{where} ({path})")
                    raw.append(box)
                boxes = common.scale_boxes(np.asarray(raw), image.shape, size)
                mask = (common.boxes_mask(boxes, size)
                        if self.builder_config.box_raster == "centres"
                        else common.boxes_mask_corners(np.asarray(raw), image.shape, size))
            elif (row.get("mask_path") or "").strip():
                mpath = os.path.join(manual, row["mask_path"].strip())
                if not os.path.exists(mpath):
                    raise DataError(f"{where}: no mask at {mpath}")
                m = read_image(mpath) > 0
                if m.shape != image.shape:
                    raise DataError(f"{where}: mask {m.shape} and image {image.shape} differ")
                mask = common.resize_mask(m, size)
            yield row["path"], {"id": row["path"], "image": common.resize_image(image, size),
                                "label": int(label), "mask": mask, "boxes": boxes}
