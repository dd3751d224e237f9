"""SIIM-ACR Pneumothorax run-length encoding, as the competition's ``mask_functions.py`` defines it.

Pairs of (start, length) over the mask flattened in *column-major* order (down each column, then
the next column), where each start is relative to the end of the previous run. ``-1`` means an
empty mask.
"""
from __future__ import annotations

import numpy as np

from saljax.data.errors import DataError


def decode(rle: str, shape=(1024, 1024), where: str = "") -> np.ndarray:
    """Boolean mask [H, W] from one RLE string. ``where`` names the file/row for errors."""
    rle = str(rle).strip()
    h, w = shape
    mask = np.zeros(h * w, bool)
    if rle in ("-1", ""):
        return mask.reshape(w, h).T
    try:
        values = np.asarray([int(v) for v in rle.split()], np.int64)
    except ValueError as e:
        raise DataError(f"{where}: RLE is not a list of integers ({e})") from e
    if len(values) % 2 or np.any(values < 0):
        raise DataError(f"{where}: RLE must be non-negative (start, length) pairs")
    position = 0
    for start, length in zip(values[0::2], values[1::2]):
        position += start
        if position + length > h * w:
            raise DataError(f"{where}: RLE run at {position} of length {length} runs past the "
                            f"{h}x{w} image ({h * w} pixels)")
        mask[position:position + length] = True
        position += length
    return mask.reshape(w, h).T


def decode_rows(rles, shape=(1024, 1024), where: str = "") -> np.ndarray:
    """Several RLE rows of one image OR-ed together (the CSV repeats an image per region)."""
    mask = np.zeros(shape, bool)
    for i, rle in enumerate(rles):
        mask |= decode(rle, shape, f"{where} (row {i + 1} of this image)")
    return mask
