"""Every config error before any work: before the data is built, a model trained or
``config.json`` written (a bad config then never poisons its workdir, and the corrected command
runs there). Each error names the field and what it takes; the allowed values are read from the
modules that use them, and each criterion and localization baseline checks its own fields."""
from __future__ import annotations

import math
import os

import saljax.models as sm
from saljax import data as sd
from saljax.data import samples
from saljax import randomize
from saljax.models import checkpoint
from saljax.protocol import method_hparams
from saljax.saliency.explainer import spec as method_spec
from saljax.study.criteria import CRITERIA
from saljax.study.fields import choice, count
from saljax.study.localizers import LOCALIZERS
from saljax.study.mapmaker import NOISES, NORMALIZATIONS
from saljax.study.workdir import Workdir
from saljax.training import classifier, replicates


def workdir(path: str) -> None:
    """The workdir can be created and written: not a file, not under a file, not read-only."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"workdir {path} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        probe = Workdir(path).file(f".saljax-write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"workdir {path} cannot be written: {e.strerror or e}") from e


def _data(config) -> None:
    choice(config, "dataset", tuple(sd.BUILDERS))
    if config.data_path:
        if not os.path.exists(os.path.join(config.data_path, "dataset_info.json")):
            raise ValueError(f"config.data_path {config.data_path}: no built dataset there "
                             "(saljax data build writes one)")
        size = sd.image_size(config.data_path)
        if size != config.size:
            raise ValueError(f"config.size is {config.size} but the dataset at {config.data_path}"
                             f" was built at {size} px: set --config.size={size}")
    elif config.dataset != "synthetic_cxr":
        if not config.manual_dir or not os.path.isdir(config.manual_dir) or not os.listdir(
                config.manual_dir):
            raise ValueError(f"{config.dataset} is built from the files you download: "
                             f"config.manual_dir {config.manual_dir!r} is not a folder with them "
                             "(or give config.data_path, a built dataset)")
    choice(config, "classes", sd.CLASSES)
    choice(config, "box_raster", sd.BOX_RASTERS)
    if config.eval_ids and not os.path.exists(config.eval_ids):
        raise ValueError(f"config.eval_ids: no file {config.eval_ids}")
    if config.eval_samples:
        if config.eval_ids:
            raise ValueError("config.eval_samples and config.eval_ids both name the evaluation "
                             "images: give one")
        if config.known_truth.enabled:
            raise ValueError("config.eval_samples: known truth needs the synthetic images' "
                             "lesions and markers; set --config.known_truth.enabled=False")
        samples.read(config.eval_samples, config.size)     # every file checked now


def _models(config) -> None:
    if not config.models:
        raise ValueError("config.models lists no model")
    for spec in config.models:
        name = spec.get("name")
        if name not in sm.MODELS:
            raise ValueError(f"config.models: unknown model {name!r}; models are "
                             f"{', '.join(sm.MODELS)}")
        if not spec.get("seeds"):
            raise ValueError(f"config.models entry {name}: no seeds")
        if not float(spec.get("width", 1.0)) > 0:
            raise ValueError(f"config.models entry {name}: width must be > 0")
        model = sm.create(name, width=float(spec.get("width", 1.0)))
        if config.size < model.min_size:
            raise ValueError(f"config.size {config.size} is below {name}'s minimum of "
                             f"{model.min_size} px")
        for path in spec.get("paths") or ():
            checkpoint.describe(path)
        for method, hp in method_hparams(config, name).items():
            hp = dict(hp)
            method_spec(method, hp.pop("method", method), hp, model)
    first = sm.block_names(sm.create(config.models[0]["name"]))
    if config.cascading_through and config.cascading_through not in first:
        raise ValueError(f"config.cascading_through {config.cascading_through!r} is not a block "
                         f"of {config.models[0]['name']}: {', '.join(first)}")


def _training(config) -> None:
    tc = config.train
    choice(config, "train.optimizer", classifier.OPTIMIZERS)
    choice(config, "train.replicates", replicates.MODES)
    choice(config, "train.dtype", classifier.DTYPES)
    choice(config, "train.scaling", sd.SCALINGS)
    for arch, scaling in dict(config.arch_scaling).items():
        if scaling not in sd.SCALINGS:
            raise ValueError(f"config.arch_scaling.{arch} must be one of "
                             f"{', '.join(sd.SCALINGS)}, got {scaling!r}")
    for field in ("train.batch_size", "train.epochs", "train.checkpoint_every",
                  "train.eval_batch_size"):
        count(config, field)
    if not (tc.learning_rate > 0 and math.isfinite(tc.learning_rate)):
        raise ValueError(f"config.train.learning_rate must be > 0, got {tc.learning_rate!r}")
    if tc.init_from:
        for spec in config.models:
            if not spec.get("paths"):
                probe = classifier.default_config()
                probe.update(dict(model=spec["name"], width=float(spec.get("width", 1.0)),
                                  init_from=tc.init_from))
                classifier.initial_weights(probe)


def _study(config) -> None:
    for field in ("chunk", "eval_images", "max_batch", "random_pairs", "bootstrap"):
        count(config, field, 2 if field == "eval_images" else 1)
    count(config, "random_pairs_per_image", 0)
    for field in ("utility_images", "cascading_levels", "independent_blocks", "eval_seed"):
        count(config, field, -1)
    for method, size in dict(config.max_batch_per_method).items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"config.max_batch_per_method.{method} must be >= 1, got {size!r}")
    if config.target != -1:
        count(config, "target", 0)
        if config.target >= config.train.num_classes:
            raise ValueError(f"config.target {config.target} is not a class of the "
                             f"{config.train.num_classes}-class models (-1: the predicted one)")
    choice(config, "normalization", NORMALIZATIONS)
    choice(config, "noise", NOISES)
    choice(config, "randomization.mode", randomize.MODES)
    choice(config, "randomization.bn", randomize.BN_POLICIES)
    if not (config.ssim.data_range > 0 and math.isfinite(config.ssim.data_range)):
        raise ValueError(f"config.ssim.data_range must be > 0, got {config.ssim.data_range!r}")


def _localization(config) -> None:
    """The localization baseline: a known one, and its record's checks (the data it trains
    on, its section's sizes and counts)."""
    choice(config, "localization_baseline", tuple(LOCALIZERS))
    LOCALIZERS[config.localization_baseline].validate(config)


def _criteria(config) -> None:
    for criterion in CRITERIA:
        criterion.check(config)


def config(c, path: str) -> None:
    """Every check above, and the workdir's, in the order a user would fix them."""
    workdir(path)
    _data(c)
    _models(c)
    _training(c)
    _study(c)
    _localization(c)
    _criteria(c)
