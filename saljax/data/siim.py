"""SIIM-ACR Pneumothorax Segmentation (Kaggle) as a TFDS builder (array_record, no TensorFlow).

Manual download layout (``manual_dir``)::

    dicom-images-train/<study>/<series>/<ImageId>.dcm
    train-rle.csv                 ImageId, EncodedPixels (leading space; -1: no pneumothorax;
                                  several rows per image are OR-ed)
    pneumothorax_splits.csv (optional)   the study's published ,Image_ID,Split rows
"""
from __future__ import annotations

import collections
import csv
import os

import tensorflow_datasets as tfds

from saljax.data import common, rle
from saljax.data.dicom import read_dicom
from saljax.data.errors import DataError

RLE_CSV = "train-rle.csv"
IMAGES = "dicom-images-train"


def read_rle_csv(manual_dir: str) -> dict:
    """ImageId -> [(EncodedPixels, csv row), ...]."""
    path = os.path.join(manual_dir, RLE_CSV)
    if not os.path.exists(path):
        raise DataError(f"{path}: missing (download the Kaggle SIIM data into {manual_dir})")
    out = collections.OrderedDict()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if "ImageId" not in header or "EncodedPixels" not in header:
            raise DataError(f"{path}: expected columns ImageId, EncodedPixels, got {header}")
        i_id, i_rle = header.index("ImageId"), header.index("EncodedPixels")
        for row_no, row in enumerate(reader, start=2):
            out.setdefault(row[i_id].strip(), []).append((row[i_rle].strip(), row_no))
    return out


def index_dicoms(manual_dir: str) -> dict:
    """ImageId -> path, from the nested study/series folders."""
    root = os.path.join(manual_dir, IMAGES)
    if not os.path.isdir(root):
        raise DataError(f"{root}: missing (the Kaggle SIIM DICOM folder)")
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".dcm"):
                found[name[:-4]] = os.path.join(folder, name)
    return found


class SiimPneumothorax(tfds.core.GeneratorBasedBuilder):
    """SIIM-ACR pneumothorax: image, label and segmentation mask at the configured size."""
    HAS_BOXES = False     # examples carry lesion boxes (what a detector baseline trains on)
    HAS_MARKERS = False   # examples carry a marker known to the pixel (known truth)

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.1.0": "stored in the order of the input CSV (TFDS shuffling off): "
                              "\"stored order\" (eval_seed's draw) is the CSV's"}
    BUILDER_CONFIGS = [common.sized_config(320), common.sized_config(224)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, description=__doc__, disable_shuffling=True,
            features=common.features(self.builder_config.size, False),
            homepage="https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation")

    def _split_generators(self, dl_manager):
        manual = str(dl_manager.manual_dir)
        rows = read_rle_csv(manual)
        paths = index_dicoms(manual)
        cfg = self.builder_config
        fixed = (common.read_splits_csv(os.path.join(manual, cfg.splits_csv))
                 if cfg.splits_csv else None)
        by_split = {s: [] for s in common.SPLITS}
        for image_id in rows:
            split = (fixed.get(image_id) if fixed is not None
                     else common.split_of(image_id, cfg.split_seed))
            if split is not None:
                by_split[split].append(image_id)
        return {s: self._generate_examples(manual, rows, paths, ids)
                for s, ids in by_split.items() if ids}  # TFDS writes no empty split

    def _generate_examples(self, manual, rows, paths, ids):
        size = self.builder_config.size
        csv_path = os.path.join(manual, RLE_CSV)
        for image_id in ids:
            entries = rows[image_id]
            if image_id not in paths:
                raise DataError(f"{csv_path}, row {entries[0][1]}: no DICOM for ImageId "
                                f"{image_id} under {os.path.join(manual, IMAGES)}")
            image = read_dicom(paths[image_id])
            mask = rle.decode_rows([e for e, _ in entries], image.shape,
                                   f"{csv_path}, rows {[r for _, r in entries]} ({image_id})")
            yield image_id, {"id": image_id, "image": common.resize_image(image, size),
                             "label": int(mask.any()), "mask": common.resize_mask(mask, size)}
