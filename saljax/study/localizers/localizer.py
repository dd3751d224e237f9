"""``Localizer``: a localization baseline as one record, as a saliency method is one record.

A baseline is a model trained on the lesion annotations to localize them outright (the study's
U-Net on SIIM's masks, RetinaNet on RSNA's boxes): the yardstick a saliency map would have to
meet to replace it. The study scores its maps like saliency maps (utility) and compares its
replicates like classifiers (repeatability). Everything the study needs of one lives in its
record: what it trains on, its config section, its trainer and its score maps.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from saljax import data as sd
from saljax.models import checkpoint as model_checkpoint


@dataclasses.dataclass(frozen=True)
class Localizer:
    """``name``: the config's ``localization_baseline`` value and the model's registry name;
    ``label``: what a report calls it; ``kind``: its rows' ``method`` in the CSVs;
    ``needs``: ``"masks"`` or ``"boxes"``; ``section``: the config field with its training
    settings (``seeds``, ...); ``trainer``: ``train(settings, train_dir, *, splits, mesh,
    progress, export_dir) -> {seed: {"path", ...}}``; ``score(model, variables, metadata,
    pixels uint8 [N, H, W, 1]) -> [N, H, W] float32``: its map of each image, scored like a
    saliency map;
    ``check(config)``: its section's errors, before any work."""
    name: str
    label: str
    kind: str
    needs: str
    section: str
    min_size: int
    trainer: Callable
    score: Callable
    check: Callable = lambda config: None

    def settings(self, config):
        return config[self.section]

    def model_ids(self, config) -> list[str]:
        return [f"{self.name}_seed{s}" for s in self.settings(config).seeds]

    def validate(self, config) -> None:
        """The dataset has what it trains on, the images are large enough, its seeds are
        distinct, and its own section's checks."""
        if self.needs == "boxes" and not sd.BUILDERS[config.dataset].HAS_BOXES:
            raise ValueError(f"config.localization_baseline {self.name!r} trains on boxes; "
                             f"{config.dataset} has masks only")
        seeds = tuple(self.settings(config).seeds)
        if len(seeds) < 1 or len(set(seeds)) != len(seeds):
            raise ValueError(f"the localization baseline's seeds must be distinct, got {seeds}")
        self.check(config)
        if config.size < self.min_size:
            raise ValueError(f"config.size {config.size} is below the {self.name}'s minimum of "
                             f"{self.min_size} px")

    def train(self, config, workdir, *, splits, mesh=None, progress: bool = True):
        """Train its replicates in a study's :class:`~saljax.study.workdir.Workdir`."""
        return self.trainer(self.settings(config), workdir.training(self.name), splits=splits,
                            mesh=mesh, progress=progress, export_dir=workdir.baselines)

    def maps(self, paths, pixels) -> list[np.ndarray]:
        """Each trained replicate's maps of ``pixels`` (uint8 [N, H, W, 1]): [N, H, W] each."""
        out = []
        for p in paths:
            model, variables, spec = model_checkpoint.load(p)
            out.append(np.asarray(self.score(model, variables, spec["metadata"], pixels)))
        return out
