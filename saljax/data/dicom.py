"""Reading chest X-ray DICOMs (pydicom), uncompressed or JPEG-compressed, to 8-bit arrays."""
from __future__ import annotations

import os

import numpy as np

from saljax.data.common import scale_to_uint8
from saljax.data.errors import DataError

# Transfer syntaxes pydicom decodes with numpy or Pillow alone (no extra codec packages).
UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                "1.2.840.10008.1.2.1.99"}
JPEG_BASELINE = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"}


def read_dicom(path: str) -> np.ndarray:
    """A 2-D uint8 image from a DICOM file (MONOCHROME1 inverted so that bone is bright).

    8-bit data is returned as stored; deeper data (e.g. 12-bit) is scaled by its own minimum and
    maximum. Corrupt files, missing pixel data and transfer syntaxes without an installed decoder
    are :class:`DataError` naming the file.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not os.path.exists(path):
        raise DataError(f"{path}: no such DICOM file")
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: not a readable DICOM file ({e})") from e
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "")) if meta is not None else ""
    if "PixelData" not in ds:
        raise DataError(f"{path}: the DICOM file has no pixel data")
    try:
        pixels = ds.pixel_array
    except Exception as e:  # pydicom raises several types for undecodable data
        kind = ("JPEG baseline" if syntax in JPEG_BASELINE else "uncompressed"
                if syntax in UNCOMPRESSED else f"transfer syntax {syntax or 'unknown'}")
        raise DataError(f"{path}: cannot decode its pixel data ({kind}): {e}") from e
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        pixels = pixels[..., :3].mean(axis=-1)
    if pixels.ndim != 2:
        raise DataError(f"{path}: expected a single 2-D image, got pixel data of shape "
                        f"{pixels.shape}")
    image = pixels if pixels.dtype == np.uint8 else scale_to_uint8(pixels, path)
    if str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")) == "MONOCHROME1":
        image = 255 - image
    return image
