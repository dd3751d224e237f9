"""Building datasets: ``saljax data build <name> --manual-dir DIR --data-dir DIR [--size N]``."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

import tensorflow_datasets as tfds

from saljax import files
from saljax.data import common
from saljax.data.errors import DataError
from saljax.data.folder_cxr import FolderCxr
from saljax.data.rsna import CLASS_SETS, RsnaPneumonia
from saljax.data.siim import SiimPneumothorax
from saljax.data.synthetic_cxr import SyntheticCxr, synthetic_config

BUILDERS = {"rsna_pneumonia": RsnaPneumonia, "siim_pneumothorax": SiimPneumothorax,
            "synthetic_cxr": SyntheticCxr, "folder_cxr": FolderCxr}


INPUTS_RECORD = "saljax_inputs.json"


def inputs_fingerprint(manual_dir: str) -> str:
    """What a build from ``manual_dir`` read: every CSV's content, every other file's relative
    path, size and modification time (one stat per file, no image is read)."""
    digest = hashlib.sha256()
    for root, dirs, names in os.walk(manual_dir):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(root, n)
            digest.update(os.path.relpath(p, manual_dir).encode())
            if n.lower().endswith(".csv"):
                with open(p, "rb") as f:
                    digest.update(hashlib.sha256(f.read()).digest())
            else:
                st = os.stat(p)
                digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()


def _reuse_or_rebuild(path: str, fingerprint: str, rebuild: bool) -> bool:
    """Whether ``path`` holds a build of these inputs (reused as it is). A build of other
    inputs is never reused silently: removed with ``rebuild``, else an error saying how."""
    if not os.path.exists(os.path.join(path, "dataset_info.json")):
        return False
    record = os.path.join(path, INPUTS_RECORD)
    old = files.read_json(record).get("inputs") if os.path.exists(record) else None
    if old == fingerprint:
        return True
    if rebuild:
        shutil.rmtree(path)
        return False
    why = "its inputs changed since" if old else "it has no record of the inputs it was built from"
    raise DataError(f"{path} holds a build, but {why}: rebuild it with saljax data build ... "
                    "--rebuild (or delete that folder)")


def remove_incomplete(data_dir: str) -> None:
    """Remove the temporary folders of builds that were interrupted (TFDS's ``incomplete.*``)
    under ``data_dir``."""
    for root, dirs, _ in os.walk(data_dir):
        for d in [d for d in dirs if d.startswith("incomplete.")]:
            shutil.rmtree(os.path.join(root, d), ignore_errors=True)
            dirs.remove(d)


def declared(builder, config):
    """``config`` as the ``builder`` class declares it, when one of its ``BUILDER_CONFIGS`` has
    that name (TFDS refuses a second config object under a declared name), else ``config``.
    A name is made from every option (:func:`saljax.data.common.config_name`), so one name is
    one config: a declared config of that name with other options is a bug, said so."""
    known = builder.builder_configs.get(config.name)
    if known is None:
        return config
    if known != config:
        raise RuntimeError(f"{builder.__name__} declares a config {config.name!r} with other "
                           f"options than the requested one: {known} != {config}")
    return known


def _builder(name: str, config, data_dir: str):
    """The TFDS builder of ``name`` for ``config``. A builder made before its data exists
    copies pre-computed metadata into a fresh ``tempfile.mkdtemp`` folder it never removes
    (TFDS's ``initialize_from_bucket``); that folder goes to a scratch directory removed
    here."""
    cls = BUILDERS[name]
    with tempfile.TemporaryDirectory(prefix="saljax-tfds-") as scratch:
        previous, tempfile.tempdir = tempfile.tempdir, scratch
        try:
            return cls(config=declared(cls, config), data_dir=data_dir,
                       file_format="array_record")
        finally:
            tempfile.tempdir = previous


def build(name: str, data_dir: str, *, manual_dir: str | None = None, size: int = 320,
          split_seed: int = 0, splits_csv: str | None = None, classes: str = "all",
          box_raster: str = "centres", rebuild: bool = False, **synthetic_options) -> str:
    """Build dataset ``name`` into ``data_dir`` (once; later calls reuse it) and return the
    directory of the built version. TFDS writes into a temporary directory and renames it only
    when every split is complete, so an interrupted build leaves nothing that reads as done.
    A build from downloaded files records what it read (:func:`inputs_fingerprint`); when they
    change, it is rebuilt with ``rebuild``, else refused. ``classes`` and ``box_raster``: see
    :class:`saljax.data.common.SizedConfig` (RSNA)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; datasets are {', '.join(BUILDERS)}")
    if classes not in CLASS_SETS:      # before any work; the builders own the values
        raise ValueError(f"classes must be one of {', '.join(CLASS_SETS)}, got {classes!r}")
    if box_raster not in common.BOX_RASTERS:
        raise ValueError(f"box_raster must be one of {', '.join(common.BOX_RASTERS)}, got "
                         f"{box_raster!r}")
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
    builder = _builder(name, config, data_dir)
    fingerprint, reused = None, False
    if manual_dir is not None:
        fingerprint = inputs_fingerprint(manual_dir)
        reused = _reuse_or_rebuild(str(builder.data_path), fingerprint, rebuild)
        builder = _builder(name, config, data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    if fingerprint is not None and not reused:
        files.write_json(os.path.join(str(builder.data_path), INPUTS_RECORD),
                         {"inputs": fingerprint, "manual_dir": os.path.abspath(manual_dir)})
    return str(builder.data_path)
