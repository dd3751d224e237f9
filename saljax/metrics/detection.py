"""Detection quality: average precision at an IoU threshold (one class), as in PASCAL VOC's
all-point interpolation. Greedy matching is sequential by nature, so this runs in numpy on the
host; it scores a validation set once per epoch."""
from __future__ import annotations

import numpy as np


def _iou(box, others):
    lo = np.maximum(box[:2], others[:, :2])
    hi = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0,
                                                                       None)
    union = area(box) + area(others) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def average_precision(boxes, scores, valid, gt_boxes, iou_threshold: float = 0.5) -> float:
    """AP of detections ``boxes`` [N, D, 4], ``scores`` [N, D], ``valid`` [N, D] against
    ``gt_boxes`` [N, G, 4] (rows of zero width or height are padding), over N images.

    Detections of all images are visited by descending score; one is a true positive when its
    best-overlapping unmatched ground-truth box of the same image has IoU >= ``iou_threshold``.
    AP is the area under the precision-recall curve with precision made monotone (VOC 2010+).
    NaN when there is no ground-truth box.
    """
    boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)
    valid, gt_boxes = np.asarray(valid, bool), np.asarray(gt_boxes, np.float64)
    gt_ok = (gt_boxes[..., 2] > gt_boxes[..., 0]) & (gt_boxes[..., 3] > gt_boxes[..., 1])
    total = int(gt_ok.sum())
    if total == 0:
        return float("nan")
    image, det = np.nonzero(valid)
    order = np.argsort(-scores[image, det], kind="stable")
    matched = np.zeros(gt_ok.shape, bool)
    tp = np.zeros(len(order))
    for rank, k in enumerate(order):
        i = image[k]
        overlaps = np.where(gt_ok[i] & ~matched[i], _iou(boxes[i, det[k]], gt_boxes[i]), -1.0)
        j = int(np.argmax(overlaps))
        if overlaps[j] >= iou_threshold:
            matched[i, j], tp[rank] = True, 1.0
    hits = np.cumsum(tp)
    recall = np.concatenate([[0.0], hits / total])
    precision = np.concatenate([[1.0], hits / np.arange(1, len(tp) + 1)])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))
