"""XRAI (Kapishnikov et al., 2019) as PAIR computes it, with the greedy selection on the device.

Segments depend only on the image, so they are computed once per image on the host (scikit-image
Felzenszwalb at PAIR's six scales, on the image rescaled to [-1, 1] and resized to 224 x 224,
segments resized back and each dilated by a disk of radius 5) and reused across models and
randomization levels.

The greedy loop only ever adds whole segments, so it never needs more than the *atoms* of the
segmentation: the sets of pixels that belong to exactly the same segments. With K segments and A
atoms (a few thousand for a chest X-ray) each step costs two [K, A] matrix-vector products instead
of PAIR's Python loop over K masks of H x W pixels.
"""
from __future__ import annotations

import collections
import functools
import hashlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

SCALES = (50, 100, 150, 250, 500, 1200)
SIGMA = 0.8
MIN_SEGMENT = 150
RESIZE = (224, 224)
DILATION_RADIUS = 5


class Segments(NamedTuple):
    """XRAI segments of a batch, padded to common sizes.

    atom_id [B, H, W] int32 (the atom of each pixel), membership [B, K, A] bool (segment k
    contains atom a), sizes [B, A] int32 (pixels per atom; 0 for padding).
    """
    atom_id: np.ndarray
    membership: np.ndarray
    sizes: np.ndarray


def segment_labels(image: np.ndarray) -> list[np.ndarray]:
    """Felzenszwalb label maps of one [H, W, C] image at PAIR's scales and settings."""
    from skimage import segmentation
    from skimage.transform import resize

    image = np.asarray(image)
    lo, hi = np.min(image), np.max(image)
    if not hi > lo:
        raise ValueError("XRAI segments need an image that is not constant")
    im = (image - lo) / (hi - lo) * 2.0 - 1.0
    im = resize(im, RESIZE, order=3, mode="constant", preserve_range=True, anti_aliasing=True)
    labels = []
    for scale in SCALES:
        seg = segmentation.felzenszwalb(im, scale=scale, sigma=SIGMA, min_size=MIN_SEGMENT)
        labels.append(resize(seg, image.shape[:2], order=0, preserve_range=True,
                             mode="constant", anti_aliasing=False).astype(int))
    return labels


@functools.lru_cache(maxsize=8)
def _disk_pairs(h: int, w: int, radius: int):
    """Flat (pixel, neighbour) index pairs for every in-image offset of a disk of ``radius``."""
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    keep = dy ** 2 + dx ** 2 <= radius ** 2
    yy, xx = np.mgrid[:h, :w]
    pix, nbr = [], []
    for oy, ox in zip(dy[keep], dx[keep]):
        y, x = yy + oy, xx + ox
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        pix.append((yy * w + xx)[ok])
        nbr.append((y * w + x)[ok])
    return np.concatenate(pix).astype(np.int64), np.concatenate(nbr).astype(np.int64)


def dilated_membership(labels: list[np.ndarray], radius: int = DILATION_RADIUS) -> np.ndarray:
    """[H*W, K] bool: pixel p is in dilated segment k (every label of every map, in order;
    labels absent from a map give empty segments, which are dropped). Dilating a segment by a
    disk adds exactly the pixels with a pixel of that segment inside their disk."""
    h, w = labels[0].shape
    pix, nbr = _disk_pairs(h, w, radius)
    blocks = []
    for lab in labels:
        lab = (lab - lab.min()).reshape(-1)
        n = lab.max() + 1
        mem = np.zeros(h * w * n, bool)
        mem[pix * n + lab[nbr]] = True
        mem = mem.reshape(h * w, n)
        blocks.append(mem[:, mem.any(axis=0)])
    return np.concatenate(blocks, axis=1)


def atoms(membership: np.ndarray):
    """Pixels with identical segment membership: (atom_id [H*W], membership [K, A], sizes [A])."""
    packed = np.packbits(membership, axis=1)
    rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1])))[:, 0]
    _, first, atom_id = np.unique(rows, return_index=True, return_inverse=True)
    return atom_id.astype(np.int32), membership[first].T.copy(), np.bincount(atom_id)


_CACHE: collections.OrderedDict = collections.OrderedDict()
CACHE_SIZE = 512


def _image_segments(image: np.ndarray):
    digest = hashlib.sha1(np.ascontiguousarray(image, np.float32).tobytes()).hexdigest()
    key = (digest, image.shape)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    atom_id, member, sizes = atoms(dilated_membership(segment_labels(image)))
    value = (atom_id.reshape(image.shape[:2]), np.packbits(member, axis=1), member.shape[1], sizes)
    _CACHE[key] = value
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def _round_up(n: int, m: int = 64) -> int:
    return max(m, -(-n // m) * m)


def segments(images) -> Segments:
    """XRAI segments of [B, H, W, C] images (host, cached per image content)."""
    images = np.asarray(images, np.float32)
    per = [_image_segments(im) for im in images]
    k = _round_up(max(p[1].shape[0] for p in per))
    a = _round_up(max(p[2] for p in per))
    atom_id = np.stack([p[0] for p in per]).astype(np.int32)
    membership = np.zeros((len(per), k, a), bool)
    sizes = np.zeros((len(per), a), np.int32)
    for i, (_, packed, n_atoms, sz) in enumerate(per):
        membership[i, :packed.shape[0], :n_atoms] = np.unpackbits(packed, axis=1)[:, :n_atoms]
        sizes[i, :n_atoms] = sz
    return Segments(atom_id, membership, sizes)


def pad_segments(seg: Segments, k: int, a: int) -> Segments:
    """``seg`` padded to ``k`` segments and ``a`` atoms (empty segments, zero-size atoms: what
    the greedy selection already ignores), so that batches share one compiled program."""
    b, k0, a0 = seg.membership.shape
    if k < k0 or a < a0:
        raise ValueError(f"cannot pad segments of shape {(k0, a0)} to {(k, a)}")
    membership = np.zeros((b, k, a), bool)
    membership[:, :k0, :a0] = seg.membership
    sizes = np.zeros((b, a), np.int32)
    sizes[:, :a0] = seg.sizes
    return Segments(seg.atom_id, membership, sizes)


def masks_of(seg: Segments, i: int) -> np.ndarray:
    """The dilated segment masks of image i, [K, H, W] bool (padding dropped)."""
    m = seg.membership[i][:, seg.atom_id[i]]
    return m[m.reshape(m.shape[0], -1).any(axis=1)]


def greedy(attr, atom_id, membership, sizes, area_threshold: float = 1.0,
           min_pixel_diff: int = 50):
    """PAIR's full XRAI selection for one image, on atoms. attr [H, W] -> map [H, W] float32.

    Repeatedly: drop segments adding fewer than ``min_pixel_diff`` uncovered pixels, add the one
    whose uncovered pixels have the highest mean attribution (the first on ties), and give its new
    pixels that mean; stop when none is left or the covered area exceeds ``area_threshold``.
    Pixels never covered get their own mean attribution.
    """
    m = membership.astype(jnp.float32)
    n_seg, n_atoms = m.shape
    size = sizes.astype(jnp.float32)
    total = attr.size
    asum = jax.ops.segment_sum(attr.reshape(-1).astype(jnp.float32), atom_id.reshape(-1),
                               num_segments=n_atoms)

    def cond(s):
        cur, alive, value, assigned, area, done = s
        return ~done & (area <= area_threshold)

    def body(s):
        cur, alive, value, assigned, area, done = s
        free = jnp.where(cur, 0.0, 1.0)
        count = m @ (size * free)
        alive = alive & (count >= min_pixel_diff)
        done = ~jnp.any(alive)
        gain = jnp.where(alive, (m @ (asum * free)) / jnp.maximum(count, 1.0), -jnp.inf)
        best = jnp.argmax(gain)
        add = (m[best] > 0) & ~done
        new = add & ~cur
        value = jnp.where(new, gain[best], value)
        cur = cur | add
        alive = alive.at[best].set(False)
        return cur, alive, value, assigned | new, jnp.sum(size * cur) / total, done

    init = (jnp.zeros(n_atoms, bool), jnp.ones(n_seg, bool), jnp.zeros(n_atoms, jnp.float32),
            jnp.zeros(n_atoms, bool), jnp.float32(0.0), jnp.bool_(False))
    cur, alive, value, assigned, area, done = jax.lax.while_loop(cond, body, init)
    rest = (~assigned) & (size > 0)
    rest_mean = jnp.sum(jnp.where(rest, asum, 0.0)) / jnp.maximum(jnp.sum(size * rest), 1.0)
    value = jnp.where(assigned, value, rest_mean)
    return value[atom_id]
