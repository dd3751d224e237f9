"""RSNA Pneumonia Detection Challenge (Kaggle) as a TFDS builder (array_record, no TensorFlow).

Manual download layout (``manual_dir``)::

    stage_2_train_images/<patientId>.dcm     1024 x 1024 MONOCHROME2, JPEG baseline or raw
    stage_2_train_labels.csv                 patientId,x,y,width,height,Target (a row per box)
    stage_2_detailed_class_info.csv          patientId,class (for classes="opacity_vs_normal")
    pneumonia_splits.csv (optional)          the study's published ,Image_ID,Split rows
"""
from __future__ import annotations

import collections
import csv
import os

import numpy as np
import tensorflow_datasets as tfds

from saljax.data import common
from saljax.data.dicom import read_dicom
from saljax.data.errors import DataError

LABELS = "stage_2_train_labels.csv"
IMAGES = "stage_2_train_images"
CLASS_INFO = "stage_2_detailed_class_info.csv"


def read_labels(manual_dir: str) -> dict:
    """patientId -> (Target, [(x, y, w, h, csv row), ...]) from the labels CSV."""
    path = os.path.join(manual_dir, LABELS)
    if not os.path.exists(path):
        raise DataError(f"{path}: missing (download the Kaggle RSNA data into {manual_dir})")
    out = collections.OrderedDict()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        need = {"patientId", "x", "y", "width", "height", "Target"}
        if not need <= set(reader.fieldnames or ()):
            raise DataError(f"{path}: expected columns {sorted(need)}, got {reader.fieldnames}")
        for row_no, row in enumerate(reader, start=2):
            pid, target = row["patientId"].strip(), row["Target"].strip()
            if target not in ("0", "1"):
                raise DataError(f"{path}, row {row_no}: Target must be 0 or 1, got {target!r}")
            label, boxes = out.setdefault(pid, (int(target), []))
            if int(target) != label:
                raise DataError(f"{path}, row {row_no}: patient {pid} has rows with Target 0 and 1")
            if target == "1":
                try:
                    box = tuple(float(row[k]) for k in ("x", "y", "width", "height"))
                except ValueError as e:
                    raise DataError(f"{path}, row {row_no}: Target 1 needs a box ({e})") from e
                boxes.append(box + (row_no,))
    return out


CLASS_SETS = {"all": None, "opacity_vs_normal": ("Lung Opacity", "Normal")}


def read_classes(manual_dir: str) -> dict:
    """patientId -> its class in the detailed class info CSV ("Lung Opacity", "Normal" or
    "No Lung Opacity / Not Normal")."""
    path = os.path.join(manual_dir, CLASS_INFO)
    if not os.path.exists(path):
        raise DataError(f"{path}: missing (the Kaggle RSNA class info file, needed to keep the "
                        "study's classes)")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"patientId", "class"} <= set(reader.fieldnames or ()):
            raise DataError(f"{path}: expected columns patientId, class, got "
                            f"{reader.fieldnames}")
        return {row["patientId"].strip(): row["class"].strip() for row in reader}


def select_classes(labels: dict, manual_dir: str, classes: str) -> dict:
    """``labels`` of the patients whose class is kept: every patient (``all``; the third class
    becomes negatives), or the study's ``opacity_vs_normal``: Lung Opacity (positives) and Normal
    (negatives) only."""
    if classes not in CLASS_SETS:
        raise ValueError(f"classes must be one of {', '.join(CLASS_SETS)}, got {classes!r}")
    if CLASS_SETS[classes] is None:
        return labels
    kept = CLASS_SETS[classes]
    of = read_classes(manual_dir)
    out = collections.OrderedDict()
    for pid, (label, boxes) in labels.items():
        if pid not in of:
            raise DataError(f"{os.path.join(manual_dir, CLASS_INFO)}: no class for patient {pid}")
        if of[pid] not in kept:
            continue
        if (of[pid] == "Lung Opacity") != (label == 1):
            raise DataError(f"{os.path.join(manual_dir, CLASS_INFO)}: patient {pid} is "
                            f"{of[pid]!r} but has Target {label} in {LABELS}")
        out[pid] = (label, boxes)
    return out


class RsnaPneumonia(tfds.core.GeneratorBasedBuilder):
    """RSNA pneumonia: image, label (lung opacity), boxes and box mask at the configured size."""
    HAS_BOXES = True     # examples carry lesion boxes (what a detector baseline trains on)
    HAS_MARKERS = False   # examples carry a marker known to the pixel (known truth)

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.1.0": "stored in the order of the input CSV (TFDS shuffling off): "
                              "\"stored order\" (eval_seed's draw) is the CSV's"}
    BUILDER_CONFIGS = [common.sized_config(320), common.sized_config(224)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, description=__doc__, disable_shuffling=True,
                                     features=common.features(self.builder_config.size, True),
                                     homepage="https://www.kaggle.com/c/rsna-pneumonia-detection-challenge")

    def _split_generators(self, dl_manager):
        manual = str(dl_manager.manual_dir)
        cfg = self.builder_config
        labels = select_classes(read_labels(manual), manual, cfg.classes)
        fixed = (common.read_splits_csv(os.path.join(manual, cfg.splits_csv))
                 if cfg.splits_csv else None)
        by_split = {s: [] for s in common.SPLITS}
        for pid in labels:
            split = fixed.get(pid) if fixed is not None else common.split_of(pid, cfg.split_seed)
            if split is not None:
                by_split[split].append(pid)
        return {s: self._generate_examples(manual, labels, ids)
                for s, ids in by_split.items() if ids}  # TFDS writes no empty split

    def _generate_examples(self, manual, labels, ids):
        size = self.builder_config.size
        for pid in ids:
            path = os.path.join(manual, IMAGES, f"{pid}.dcm")
            label, boxes = labels[pid]
            if not os.path.exists(path):
                row = boxes[0][4] if boxes else "?"
                raise DataError(f"{os.path.join(manual, LABELS)}, row {row} (patient {pid}): "
                                f"no image at {path}")
            image = read_dicom(path)
            for x, y, w, h, row in boxes:
                common.check_box((x, y, w, h), image.shape,
                                 f"{os.path.join(manual, LABELS)}, row {row} ({path})")
            raw = np.asarray([b[:4] for b in boxes])
            xyxy = common.scale_boxes(raw, image.shape, size)
            mask = (common.boxes_mask(xyxy, size) if self.builder_config.box_raster == "centres"
                    else common.boxes_mask_corners(raw, image.shape, size))
            yield pid, {"id": pid, "image": common.resize_image(image, size), "label": label,
                        "mask": mask, "boxes": xyxy}
