"""Building datasets: ``saljax data build <name> --manual-dir DIR --data-dir DIR [--size N]``."""
from __future__ import annotations

import os

import tensorflow_datasets as tfds

from saljax.data import common
from saljax.data.errors import DataError
from saljax.data.folder import FolderCxr
from saljax.data.rsna import RsnaPneumonia
from saljax.data.siim import SiimPneumothorax
from saljax.data.synthetic_cxr import SyntheticCxr, synthetic_config

BUILDERS = {"rsna_pneumonia": RsnaPneumonia, "siim_pneumothorax": SiimPneumothorax,
            "synthetic_cxr": SyntheticCxr, "folder_cxr": FolderCxr}


def build(name: str, data_dir: str, *, manual_dir: str | None = None, size: int = 320,
          split_seed: int = 0, splits_csv: str | None = None, classes: str = "all",
          box_raster: str = "centres", **synthetic_options) -> str:
    """Build dataset ``name`` into ``data_dir`` (once; later calls reuse it) and return the
    directory of the built version. TFDS writes into a temporary directory and renames it only
    when every split is complete, so an interrupted build leaves nothing that reads as done.
    ``classes`` and ``box_raster``: see :class:`saljax.data.common.SizedConfig` (RSNA)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; datasets are {', '.join(BUILDERS)}")
    if name == "synthetic_cxr":
        if classes != "all" or box_raster != "centres":
            raise ValueError("synthetic_cxr keeps every image and has exact lesion masks: "
                             "classes and box_raster do not apply")
        seed = synthetic_options.pop("seed", 0)
        counts = synthetic_options.pop("counts", None)
        config = synthetic_config(size, seed=seed, counts=counts, **synthetic_options)
    else:
        if synthetic_options:
            raise ValueError(f"{name} takes no options {sorted(synthetic_options)}")
        if manual_dir is None or not os.path.isdir(manual_dir):
            raise DataError(f"{name} is built from files you download: --manual-dir "
                            f"{manual_dir!r} is not a folder")
        if name != "rsna_pneumonia" and classes != "all":
            raise ValueError(f"classes={classes!r} is an RSNA option; {name} keeps every image")
        if name == "siim_pneumothorax" and box_raster != "centres":
            raise ValueError(f"box_raster={box_raster!r}: {name} has masks, not boxes")
        config = common.sized_config(size, split_seed, splits_csv, classes, box_raster)
    builder = BUILDERS[name](config=config, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return str(builder.data_path)
