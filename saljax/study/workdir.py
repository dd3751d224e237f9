"""``Workdir``: every path of a study's folder, and nothing else.

::

    config.json  models.json  summary.json  examples.npz  report.md  figures/<name>.png
    <criterion>.csv ...             per-image results, one file per table
    data/                           datasets built for the study
    train/<family>/                 a model family's training: checkpoints/, models/<id>/
    models/<baseline>_seed<k>/      the localization baseline's replicates
    maps/<model>/<setting>/<method>/chunk<NNN>.npz

Files a study records (``models.json``) name paths inside the folder relative to it, so a moved
or copied workdir still describes itself.
"""
from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Workdir:
    root: str

    @classmethod
    def of(cls, workdir) -> "Workdir":
        """A ``Workdir`` as it is, or one of a path."""
        return workdir if isinstance(workdir, Workdir) else cls(os.fspath(workdir))

    def file(self, name: str) -> str:
        """A result file at the top of the folder (``summary.json``, ``utility.csv``, ...)."""
        return os.path.join(self.root, name)

    @property
    def config(self) -> str:
        return self.file("config.json")

    @property
    def models_index(self) -> str:
        return self.file("models.json")

    @property
    def summary(self) -> str:
        return self.file("summary.json")

    @property
    def examples(self) -> str:
        return self.file("examples.npz")

    @property
    def report(self) -> str:
        return self.file("report.md")

    @property
    def data(self) -> str:
        """Where the study builds its datasets."""
        return os.path.join(self.root, "data")

    def figure(self, name: str) -> str:
        """``figures/<name>.png``."""
        return os.path.join(self.root, "figures", f"{name}.png")

    def training(self, family: str) -> str:
        """A model family's training folder (its checkpoints and exported models)."""
        return os.path.join(self.root, "train", family)

    def model(self, family: str, model_id: str) -> str:
        """A trained model's directory, as the family's trainer exports it."""
        return os.path.join(self.training(family), "models", model_id)

    @property
    def baselines(self) -> str:
        """Where the localization baseline's replicates are exported (``models/<id>``)."""
        return self.root

    def baseline(self, model_id: str) -> str:
        return os.path.join(self.baselines, "models", model_id)

    def unit(self, model_id: str, setting: str, method: str, chunk: int) -> str:
        """One map unit's file."""
        return os.path.join(self.root, "maps", model_id, setting, method, f"chunk{chunk:03d}.npz")

    def relative(self, path):
        """A path inside the folder relative to it (workdirs can move), others absolute."""
        if path is None:
            return None
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.root))
        return os.path.abspath(path) if rel.startswith(os.pardir) else rel

    def resolve(self, path):
        """The inverse of :meth:`relative`."""
        return None if path is None else os.path.join(self.root, path)
