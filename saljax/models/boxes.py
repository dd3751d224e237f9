"""Box geometry of the RetinaNet baseline, all under ``jit``: anchors, box encoding, anchor
matching, greedy NMS with fixed-size outputs, and detections turned into a score map.

Boxes are ``(x_min, y_min, x_max, y_max)`` in pixels, float32; padding rows have zero (or
negative) width or height. A pixel is inside a box when its centre is: ``[x0, x1) x [y0, y1)``
(as :func:`saljax.metrics.boxes_to_mask` and the data builders).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

LEVELS = (3, 4, 5, 6, 7)                       # P3-P7: strides 8 ... 128
SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))     # per level, times the level's base size
RATIOS = (0.5, 1.0, 2.0)                       # height / width
ANCHORS_PER_CELL = len(SCALES) * len(RATIOS)
MAX_LOG_SIZE = math.log(1000.0 / 16)           # decoded log size change is clipped here


def level_shapes(size: int) -> list[tuple[int, int]]:
    """The feature grid of every level for ``size`` x ``size`` inputs (SAME strided convs)."""
    return [(-(-size // 2 ** lv), -(-size // 2 ** lv)) for lv in LEVELS]


def anchors(size: int, anchor_scale: float = 4.0) -> np.ndarray:
    """[A, 4] anchors for ``size`` x ``size`` images, level by level, then row, column and the
    9 shapes of a cell: centred on the cell (``(i + 0.5) * stride``), base side
    ``anchor_scale * stride`` times each scale, at each aspect ratio (same area)."""
    out = []
    for lv, (h, w) in zip(LEVELS, level_shapes(size)):
        stride = 2.0 ** lv
        shapes = np.asarray([(anchor_scale * stride * s / math.sqrt(r),
                              anchor_scale * stride * s * math.sqrt(r))
                             for s in SCALES for r in RATIOS])       # (width, height)
        cy, cx = np.meshgrid((np.arange(h) + 0.5) * stride, (np.arange(w) + 0.5) * stride,
                             indexing="ij")
        c = np.stack([cx, cy], -1).reshape(-1, 1, 2)
        half = shapes[None] / 2
        out.append(np.concatenate([c - half, c + half], -1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def _centre_size(b):
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    return b[..., 0] + w / 2, b[..., 1] + h / 2, w, h


def encode(boxes, anchors_):
    """Regression targets [..., 4] of ``boxes`` relative to ``anchors_`` (same shape):
    ``((x - xa) / wa, (y - ya) / ha, log(w / wa), log(h / ha))`` of centres and sizes."""
    x, y, w, h = _centre_size(boxes)
    xa, ya, wa, ha = _centre_size(anchors_)
    w, h = jnp.maximum(w, 1e-3), jnp.maximum(h, 1e-3)
    return jnp.stack([(x - xa) / wa, (y - ya) / ha, jnp.log(w / wa), jnp.log(h / ha)], -1)


def decode(deltas, anchors_):
    """Boxes [..., 4] from regression outputs and anchors: the inverse of :func:`encode`."""
    xa, ya, wa, ha = _centre_size(anchors_)
    x, y = xa + deltas[..., 0] * wa, ya + deltas[..., 1] * ha
    w = wa * jnp.exp(jnp.minimum(deltas[..., 2], MAX_LOG_SIZE))
    h = ha * jnp.exp(jnp.minimum(deltas[..., 3], MAX_LOG_SIZE))
    return jnp.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], -1)


def valid_boxes(boxes):
    """[...]: rows that are boxes, not padding."""
    return (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])


def iou(a, b):
    """[N, M] intersection over union of boxes ``a`` [N, 4] and ``b`` [M, 4] (0 for padding)."""
    lo = jnp.maximum(a[:, None, :2], b[None, :, :2])
    hi = jnp.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = jnp.prod(jnp.clip(hi - lo, 0), -1)
    area = lambda x: jnp.clip(x[:, 2] - x[:, 0], 0) * jnp.clip(x[:, 3] - x[:, 1], 0)
    union = area(a)[:, None] + area(b)[None] - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def match(anchors_, gt, positive: float = 0.5, negative: float = 0.4):
    """RetinaNet's anchor assignment for one image's ground truth ``gt`` [G, 4] (padded).

    An anchor is positive when its best IoU with a box is >= ``positive``, or when it is a
    box's best anchor (so every box has one); negative below ``negative``; ignored between.
    Returns ``labels`` [A] (1 positive, 0 negative, -1 ignored) and ``targets`` [A, 4] (the
    encoded matched box; meaningful where positive).
    """
    ok = valid_boxes(gt)
    overlaps = jnp.where(ok[None], iou(anchors_, gt), -1.0)           # [A, G]
    best = jnp.argmax(overlaps, 1)
    best_iou = jnp.max(overlaps, 1)
    per_box = jnp.max(overlaps, 0)                                    # [G]
    is_best = (overlaps == per_box[None]) & (per_box[None] > 0) & ok[None]
    forced = jnp.any(is_best, 1)
    best = jnp.where(forced, jnp.argmax(is_best, 1), best)
    labels = jnp.where(best_iou >= positive, 1, jnp.where(best_iou < negative, 0, -1))
    labels = jnp.where(forced, 1, labels)
    return labels.astype(jnp.int32), encode(gt[best], anchors_)


@functools.partial(jax.jit, static_argnames=("max_detections",))
def nms(boxes, scores, valid, iou_threshold: float = 0.5, max_detections: int = 100):
    """Greedy non-maximum suppression of one image's candidates, fixed size under ``jit``.

    ``boxes`` [N, 4], ``scores`` [N], ``valid`` [N] bool. Visits candidates by descending
    score, keeps one unless a kept box overlaps it by more than ``iou_threshold``. Returns the
    first ``max_detections`` kept, best first: ``boxes`` [D, 4], ``scores`` [D], ``valid`` [D]
    (False rows are padding with score 0).
    """
    order = jnp.argsort(-jnp.where(valid, scores, -jnp.inf), stable=True)
    boxes, scores, valid = boxes[order], scores[order], valid[order]
    overlaps = iou(boxes, boxes)
    n = boxes.shape[0]
    earlier = jnp.arange(n)[None, :] < jnp.arange(n)[:, None]          # [i, j]: j before i

    def visit(i, keep):
        suppressed = jnp.any(keep & earlier[i] & (overlaps[i] > iou_threshold))
        return keep.at[i].set(valid[i] & ~suppressed)

    keep = jax.lax.fori_loop(0, n, visit, jnp.zeros(n, bool))
    d = min(max_detections, n)
    picked = jnp.argsort(~keep, stable=True)[:d]                      # kept ones, best first
    kept = keep[picked]
    out_boxes = jnp.where(kept[:, None], boxes[picked], 0.0)
    out_scores = jnp.where(kept, scores[picked], 0.0)
    pad = max_detections - d
    return (jnp.pad(out_boxes, ((0, pad), (0, 0))), jnp.pad(out_scores, (0, pad)),
            jnp.pad(kept, (0, pad)))


@functools.partial(jax.jit, static_argnames=("size",))
def score_map(boxes, scores, valid, size: int):
    """[..., size, size] float32: each pixel the highest score of the valid boxes covering its
    centre, 0 where none does. ``boxes`` [..., D, 4], ``scores`` / ``valid`` [..., D]."""
    c = jnp.arange(size, dtype=jnp.float32) + 0.5
    in_y = (c >= boxes[..., 1:2]) & (c < boxes[..., 3:4])              # [..., D, H]
    in_x = (c >= boxes[..., 0:1]) & (c < boxes[..., 2:3])              # [..., D, W]
    inside = in_y[..., :, None] & in_x[..., None, :] & valid[..., None, None]
    return jnp.max(jnp.where(inside, scores[..., None, None], 0.0), axis=-3)
