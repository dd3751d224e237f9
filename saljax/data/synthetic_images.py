"""Synthetic chest X-rays whose ground truth is exact, generated from a seed (no download).

A thorax-like background (body, two lung fields, mediastinum and spine, ribs, soft-tissue
texture); positives carry one or more opacities inside the lungs, whose masks and boxes are known
to the pixel; negatives none. Optional: a distractor marker (an "R" plate near a random corner, or always at
the top right) independent of the label, or, in the shortcut variant, correlated with it in
training and validation (and independent in the test split, ``test_marker="random"``), so that a
model can learn the marker instead of the lesion; its square is known to the pixel too. To make
the marker the easier and the only reliable cue (a shortcut model), a share of the positives can
carry no visible lesion (``lesion_absent``; their mask is empty and they stay positive), the
lesions can be faint (``lesion_contrast``), the marker larger (``marker_size``) and at a fixed
place (``marker_corner="top_right"``).

Every example depends only on (seed, index): datasets are reproducible and any process can
generate any slice of them.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """What the synthetic data looks like. Sizes are fractions of the image side."""
    size: int = 128
    positive_fraction: float = 0.5
    max_lesions: int = 2
    lesion_radius: tuple = (0.05, 0.10)
    lesion_contrast: float = 0.35          # peak brightening, in units of the image range
    lesion_absent: float = 0.0             # share of positives drawn without a visible lesion
                                           # (label 1, empty mask: the marker's cue alone)
    marker: str = "none"                   # "none", "random" (independent) or "shortcut"
    marker_probability: float = 0.5        # "random": P(marker)
    shortcut_strength: float = 0.9         # "shortcut": P(marker | positive) = P(none | negative)
    marker_corner: str = "random"          # "random" (any corner, jittered) or "top_right"
    marker_size: float = 1 / 16            # the plate's side, a fraction of the image side
                                           # (at least 4 px)
    test_marker: str = ""                  # the test split's marker ("": as ``marker``); e.g.
                                           # "random" for a shortcut learned in training only
    noise: float = 0.03

    def __post_init__(self):
        for name in ("marker", "test_marker"):
            value = getattr(self, name)
            if value not in ("none", "random", "shortcut") and not (name == "test_marker"
                                                                    and value == ""):
                raise ValueError(f"{name} must be 'none', 'random' or 'shortcut', got {value!r}")
        if self.marker_corner not in ("random", "top_right"):
            raise ValueError(f"marker_corner must be 'random' or 'top_right', got "
                             f"{self.marker_corner!r}")
        if self.size < 32:
            raise ValueError(f"synthetic images need at least 32 px, got {self.size}")
        if not 0 <= self.shortcut_strength <= 1:
            raise ValueError(f"shortcut_strength is a probability in [0, 1], got "
                             f"{self.shortcut_strength}")
        if not 0 <= self.lesion_absent < 1:
            raise ValueError(f"lesion_absent is a share of the positives in [0, 1), got "
                             f"{self.lesion_absent}")
        if not 0 < self.marker_size <= 0.25:
            raise ValueError(f"marker_size must be a fraction of the side in (0, 0.25], got "
                             f"{self.marker_size}")
        lo, hi = self.lesion_radius
        if not 0 < lo <= hi < 0.3:
            raise ValueError(f"lesion_radius must satisfy 0 < min <= max < 0.3, got {lo, hi}")


def _smooth_noise(rng, size, sigma):
    field = ndimage.gaussian_filter(rng.normal(size=(size, size)), sigma)
    return field / (field.std() + 1e-8)


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2


def _lung_fields(yy, xx, rng):
    """The two lung fields as soft masks in [0, 1], with random pose and size."""
    jitter = lambda s: rng.uniform(-s, s)
    lungs = []
    for side in (-1, 1):
        cx = 0.5 + side * (0.2 + jitter(0.02))
        d = _ellipse(yy, xx, 0.48 + jitter(0.03), cx, 0.3 + jitter(0.03), 0.14 + jitter(0.02))
        lungs.append(np.clip(1.5 - d * 1.5, 0, 1) ** 0.5)
    return lungs


def _thorax(rng, yy, xx, s):
    """The background radiograph and its two lung fields (soft masks in [0, 1])."""
    body = np.clip(1.3 - _ellipse(yy, xx, 0.55, 0.5, 0.55, 0.42), 0, 1) ** 0.4
    lungs = _lung_fields(yy, xx, rng)
    lung = np.maximum(*lungs)
    spine = np.exp(-((xx - 0.5) / 0.045) ** 2) * (yy > 0.15)
    mediastinum = np.exp(-((xx - 0.5) / 0.09) ** 2 - ((yy - 0.6) / 0.25) ** 2)
    ribs = np.zeros_like(yy)
    phase = rng.uniform(0, 2 * np.pi)
    row, col = yy[:, :1], xx[:1, :]   # yy varies along rows only, xx along columns only
    for k in range(9):
        centre = 0.22 + 0.07 * k + 0.05 * np.abs(col - 0.5) ** 1.5 * 4
        ribs += np.exp(-((row - centre) / 0.012) ** 2) * (0.8 + 0.2 * np.sin(8 * col + phase))
    image = (0.15 + 0.55 * body - 0.35 * lung + 0.25 * spine + 0.2 * mediastinum
             + 0.12 * ribs * lung)
    image += 0.05 * _smooth_noise(rng, s, s / 16) * body + 0.03 * _smooth_noise(rng, s, s / 64)
    return image, lungs


def _add_lesions(rng, image, lungs, yy, xx, config):
    """Brighten 1..max_lesions irregular blobs inside the lungs (in place); returns their mask
    and boxes (x_min, y_min, x_max, y_max)."""
    s = config.size
    mask = np.zeros((s, s), bool)
    boxes = []
    lo, hi = config.lesion_radius
    for _ in range(rng.integers(1, config.max_lesions + 1)):
        which = lungs[rng.integers(2)]
        ys, xs = np.nonzero(which > 0.7)
        pick = rng.integers(len(ys))
        cy, cx = ys[pick] / s, xs[pick] / s
        r = rng.uniform(lo, hi)
        # an irregular blob: an ellipse with a noisy boundary
        d = _ellipse(yy, xx, cy, cx, r * rng.uniform(0.7, 1.3), r * rng.uniform(0.7, 1.3))
        d = d + 0.3 * _smooth_noise(rng, s, s * r / 2)
        blob = d < 1.0
        blob = ndimage.binary_opening(blob, iterations=1) if blob.sum() > 20 else blob
        if not blob.any():
            continue
        profile = np.clip(1.0 - d, 0, 1) ** 0.5 * blob
        image += config.lesion_contrast * profile
        mask |= blob
        by, bx = np.nonzero(blob)
        boxes.append([bx.min(), by.min(), bx.max() + 1, by.max() + 1])
    return mask, boxes


def _has_marker(rng, label: int, config) -> bool:
    if config.marker == "random":
        return rng.random() < config.marker_probability
    if config.marker == "shortcut":
        p = config.shortcut_strength if label else 1 - config.shortcut_strength
        return rng.random() < p
    return False


def _marker_corner(rng, s: int, m: int, corner: str) -> tuple[int, int]:
    """The plate's top-left pixel: near the top right corner, or near a random corner with a
    random offset (so that no fixed place predicts it)."""
    if corner == "top_right":
        return int(0.05 * s), int(0.85 * s) - m
    top, left = rng.integers(2, size=2)
    dy, dx = rng.integers(int(0.02 * s), int(0.12 * s) + 1, size=2)
    return (int(dy) if top else s - m - int(dy)), (int(dx) if left else s - m - int(dx))


def _draw_marker(rng, image, s: int, corner: str, size: float) -> np.ndarray:
    """An "R" plate of side ``size`` x ``s`` (at least 4 px) near a corner (in place); returns
    its square, bool [s, s]."""
    m = max(4, int(s * size + 1e-9))
    y0, x0 = _marker_corner(rng, s, m, corner)
    plate = np.zeros((m, m))
    plate[:, : max(1, m // 4)] = 1
    plate[: max(1, m // 4), :] = 1
    plate[m // 2 - max(1, m // 8): m // 2 + max(1, m // 8), :] = 1
    plate[m // 2:, : m - max(1, m // 4)] = np.eye(m)[m // 2:, : m - max(1, m // 4)]
    image[y0:y0 + m, x0:x0 + m] = np.maximum(image[y0:y0 + m, x0:x0 + m], 0.95 * plate)
    square = np.zeros((s, s), bool)
    square[y0:y0 + m, x0:x0 + m] = True
    return square


def example(seed: int, index: int, config: SyntheticConfig = SyntheticConfig()) -> dict:
    """One synthetic radiograph: ``image`` uint8 [S, S, 1], ``mask`` uint8 [S, S], ``boxes``
    float32 [N, 4] (x_min, y_min, x_max, y_max in pixels), ``label`` 0/1, ``id``, ``marker``
    (0/1) and ``marker_mask`` uint8 [S, S] (the marker's square, empty without one)."""
    rng = np.random.default_rng([seed, index])
    s = config.size
    yy, xx = np.mgrid[:s, :s] / s
    label = int(rng.random() < config.positive_fraction)
    image, lungs = _thorax(rng, yy, xx, s)
    mask, boxes = np.zeros((s, s), bool), []
    absent = bool(label and config.lesion_absent and rng.random() < config.lesion_absent)
    if label and not absent:
        mask, boxes = _add_lesions(rng, image, lungs, yy, xx, config)
        if not mask.any():  # every attempt fell apart: make it an honest negative
            label = 0
    marker = _has_marker(rng, label, config)
    marker_mask = (_draw_marker(rng, image, s, config.marker_corner, config.marker_size)
                   if marker
                   else np.zeros((s, s), bool))
    image += config.noise * rng.normal(size=image.shape)
    image = np.clip(image, 0, 1)
    return {
        "id": f"synthetic-{seed}-{index}",
        "image": np.round(image * 255).astype(np.uint8)[..., None],
        "mask": mask.astype(np.uint8),
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "label": label,
        "marker": int(marker),
        "marker_mask": marker_mask.astype(np.uint8),
    }


def examples(seed: int, n: int, config: SyntheticConfig = SyntheticConfig(), start: int = 0):
    """Examples ``start .. start + n - 1`` of the dataset named by ``seed``."""
    for i in range(start, start + n):
        yield example(seed, i, config)
