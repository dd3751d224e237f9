"""Stage 2, models: the replicate classifiers of every architecture and the localization
baseline's replicates (:mod:`saljax.study.localizers`), trained (orbax resume,
:mod:`saljax.training`) or loaded from saved directories.

``lineup`` says which models the study has and which are still to be trained, without training
anything; ``Lineup.train`` and ``Lineup.train_localizers`` then train what is missing.
"""
from __future__ import annotations

import dataclasses

import ml_collections
from tqdm.auto import tqdm

from saljax.models import checkpoint as model_checkpoint
from saljax.study.localizers import LOCALIZERS
from saljax.study.workdir import Workdir
from saljax.training import classifier


def is_shortcut(variant: str) -> bool:
    """Whether a variant is one of known truth's shortcut arms (``shortcut``, ``shortcut80``)."""
    return variant.startswith("shortcut")


@dataclasses.dataclass(frozen=True)
class TrainedClassifier:
    """One replicate classifier: ``id`` ``<arch>_seed<seed>``, its model directory and its
    validation AUC (None until it is trained). A ``variant`` of the first architecture is
    trained on permuted labels (``"permuted"``, the MIDL comparison) or on the shortcut
    variant of the synthetic data (``"shortcut"``, or ``"shortcut80"`` in a sweep of the
    marker's strength: known truth); its id is ``<arch>_<variant>_seed<seed>``."""
    id: str
    arch: str
    path: str
    val_auc: float | None = None
    variant: str = ""

    @property
    def family(self) -> str:
        """The models trained together: an architecture's replicates, or one variant's."""
        return f"{self.arch}_{self.variant}" if self.variant else self.arch

    @property
    def permuted(self) -> bool:
        return self.variant == "permuted"

    def with_val_auc(self) -> "TrainedClassifier":
        if self.val_auc is not None:
            return self
        meta = model_checkpoint.describe(self.path)["metadata"]
        return dataclasses.replace(self, val_auc=meta.get("val_auc"))


@dataclasses.dataclass
class Lineup:
    """The study's models: every classifier's and the localization baseline's replicates'
    directories (``localizer``: its record, ``config.localization_baseline``), and the
    training runs still missing (``{family: (train config, train dir)}``; the baseline's,
    in ``workdir``, when ``localizers_missing``)."""
    classifiers: list
    localizer: object
    localizers: list
    workdir: Workdir
    to_train: dict
    localizers_missing: bool


    def train(self, family: str, *, mesh=None, progress: bool = True) -> None:
        """Train a family's replicates (see :attr:`TrainedClassifier.family`) if they are not
        trained yet (resuming a killed run)."""
        if family not in self.to_train:
            return
        config, train_dir = self.to_train[family]
        if progress:
            tqdm.write(f"training {len(config.seeds)} x {family} (width {config.width:g})")
        classifier.train(config, train_dir, progress=progress, mesh=mesh)

    def train_localizers(self, config, splits, *, mesh=None, progress: bool = True) -> None:
        """Train the localization baseline's replicates if they are not trained yet."""
        if not self.localizers_missing:
            return
        if progress:
            tqdm.write(f"training {len(self.localizers)} {self.localizer.label} localization "
                       "baselines")
        self.localizer.train(config, self.workdir, splits=splits, mesh=mesh, progress=progress)


def _train_config(config, spec, data_path: str) -> ml_collections.ConfigDict:
    """``config.train`` with the entry's per-architecture overrides (e.g. ``{"epochs": 3}``)."""
    tc = ml_collections.ConfigDict(config.train.to_dict())
    tc.scaling = dict(config.get("arch_scaling", {})).get(spec["name"], tc.scaling)
    overrides = dict(spec.get("train", {}))
    unknown = set(overrides) - set(tc)
    if unknown:
        raise ValueError(f"models entry {spec['name']}: unknown train setting(s) "
                         f"{', '.join(sorted(unknown))}")
    tc.update(overrides)
    tc.model, tc.width, tc.seeds = spec["name"], float(spec.get("width", 1.0)), tuple(spec["seeds"])
    tc.data_path = data_path
    return tc


def _loaded(spec) -> list:
    """The entry's saved models (``paths``), checked to be the architecture it names."""
    out = []
    for seed, path in zip(spec["seeds"], spec["paths"]):
        meta = model_checkpoint.describe(path)
        if meta["name"] != spec["name"]:
            raise model_checkpoint.CheckpointMismatch(
                f"{path} holds a {meta['name']}, the config names {spec['name']}")
        out.append(TrainedClassifier(f"{spec['name']}_seed{seed}", spec["name"], path,
                                     meta["metadata"].get("val_auc")))
    return out


def lineup(config, data_path: str, workdir: Workdir, shortcut_data: dict | None = None,
           localization: bool = True) -> Lineup:
    """Every model of ``config.models`` (one entry per architecture: name, width, seeds, and
    optionally ``paths`` of saved models or ``train`` overrides), the first architecture's
    variants (``permuted_label_seeds``; ``known_truth.shortcut_seeds``, trained on each arm's
    ``shortcut_data``, ``{arm: built dataset}``) and, with ``localization`` (a dataset with lesion masks), the
    localization baselines."""
    names = [spec["name"] for spec in config.models]
    if len(set(names)) != len(names):
        raise ValueError(f"models lists an architecture twice ({names}): give one entry per "
                         "architecture with all its seeds")
    classifiers, to_train = [], {}
    families = [(spec, "") for spec in config.models]
    first = {**dict(config.models[0]), "paths": None}
    if config.permuted_label_seeds:   # the MIDL comparison
        families.append(({**first, "seeds": config.permuted_label_seeds}, "permuted"))
    train = {**first.get("train", {}), **config.known_truth.shortcut_train}
    for arm in shortcut_data or {}:        # known truth's shortcut arms
        families.append(({**first, "seeds": config.known_truth.shortcut_seeds, "train": train},
                         arm))
    for spec, variant in families:
        if spec.get("paths"):
            classifiers += _loaded(spec)
            continue
        name = spec["name"]
        family = f"{name}_{variant}" if variant else name
        train_dir = workdir.training(family)
        dirs = [workdir.model(family, f"{name}_seed{s}") for s in spec["seeds"]]
        if not all(model_checkpoint.complete(p) for p in dirs):
            tc = _train_config(config, spec,
                               shortcut_data[variant] if is_shortcut(variant) else data_path)
            tc.label_randomization = tc.label_randomization or variant == "permuted"
            to_train[family] = (tc, train_dir)
        classifiers += [TrainedClassifier(f"{family}_seed{s}", name, p, variant=variant)
                        for s, p in zip(spec["seeds"], dirs)]
    ids = [m.id for m in classifiers]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two models share an id: {ids}")
    localizer = LOCALIZERS[config.localization_baseline]
    localizers = [workdir.baseline(i)
                  for i in (localizer.model_ids(config) if localization else ())]
    missing = not all(model_checkpoint.complete(p) for p in localizers)
    return Lineup(classifiers, localizer, localizers, workdir, to_train, missing)
