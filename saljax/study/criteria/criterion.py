"""``Criterion``: a criterion of the study as one record, as a saliency method is one record.

A criterion reads the saved maps (and the study's images and models) from a :class:`Study`,
``evaluate``\\ s them to per-image arrays, writes them as ``tables`` (CSV rows), ``summarize``\\ s
them into an :class:`Entry` of ``summary.json`` with the shared statistics, and draws its part
of ``report.md`` (``section``) and its ``figures`` from the result files alone. The study's
stages, ``summary.json``, the report and the config check read the registry
(:data:`saljax.study.criteria.CRITERIA`); adding a criterion is its file, its test and one line
there.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable

from saljax.study.maps import MapStore, full_protocol
from saljax.study.workdir import Workdir


@dataclasses.dataclass
class Study:
    """What a criterion reads. ``models``: every classifier of the lineup (variants too,
    :class:`~saljax.study.lineup.TrainedClassifier`); ``settings``: each model's map settings
    (``{model id: [Setting]}``); ``data``: the :class:`~saljax.study.inputs.Inputs`;
    ``localizer``: the :class:`~saljax.study.localizers.Localizer` record and ``localizer_paths``
    its trained replicates; ``methods``: the method labels in the config's order."""
    config: Any
    workdir: Workdir
    models: list
    settings: dict
    data: Any
    localizer: Any
    localizer_paths: list
    methods: list
    shortcut_paths: dict = dataclasses.field(default_factory=dict)   # {arm: built dataset}
    progress: bool = True
    _localizer_maps: list | None = dataclasses.field(default=None, repr=False)
    _lock: Any = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def store(self) -> MapStore:
        return MapStore(self.workdir, self.config.chunk)

    @property
    def classifiers(self) -> list:
        """The true-label classifiers (no variant)."""
        return [m for m in self.models if not m.variant]

    @property
    def full(self) -> list:
        """The classifiers with utility and the randomization sweep."""
        return [m for m in self.classifiers if full_protocol(self.config, m, self.classifiers)]

    def deepest(self, model_id: str) -> str:
        """The setting of a model's deepest cascading level (the fully randomized model with
        ``fully_randomized_level``)."""
        return [s for s in self.settings[model_id] if s.kind == "cascading"][-1].name

    @property
    def n_eval(self) -> int:
        """How many study images randomization and agreement use (the first ones)."""
        return min(self.config.eval_images, len(self.data.images))

    @property
    def boot(self) -> dict:
        """The bootstrap's settings for :func:`saljax.study.statistics.summarize`."""
        return dict(n_boot=self.config.bootstrap, seed=self.config.seed)

    @property
    def ssim(self) -> dict:
        return dict(self.config.ssim)

    @property
    def localizer_maps(self) -> list:
        """Each localization baseline's maps of the study images: [N, H, W] per replicate
        (computed once, by the first criterion that asks)."""
        with self._lock:
            if self._localizer_maps is None:
                self._localizer_maps = self.localizer.maps(self.localizer_paths,
                                                           self.data.images.pixels)
            return self._localizer_maps


@dataclasses.dataclass
class Entry:
    """A criterion's part of ``summary.json``: notes on the setup (``study``; a
    ``<name>_skipped`` note goes up top, others at the end), its ``baselines`` entries, one
    entry per method (``methods``: ``{method: {key: value}}``) and entries of its own at the
    top level (``top``)."""
    study: dict = dataclasses.field(default_factory=dict)
    baselines: dict = dataclasses.field(default_factory=dict)
    methods: dict = dataclasses.field(default_factory=dict)
    top: dict = dataclasses.field(default_factory=dict)


def _nothing(*args) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Criterion:
    """``evaluate(study) -> results`` (None: the study has nothing to judge here);
    ``tables(results) -> {file name: rows}``; ``summarize(results, study, summary) -> Entry``
    (``summary``: the entries of the criteria before it, by method); ``check(config)``: its
    config errors before any work; ``section(summary, methods) -> markdown lines``;
    ``overview(summary, method) -> {column: cell}``: its cells in the report's summary table;
    ``figures(summary, read, figure)``: draws its PNGs (``read(name)``: a result file's rows,
    ``figure(name)``: a PNG's path); ``needs(study) -> families | None``: the model families
    whose trained maps are all it reads (it may then start beside the other map units), or
    None for every map; ``headline``: the report shows its section first."""
    name: str
    evaluate: Callable
    tables: Callable
    summarize: Callable
    check: Callable = _nothing
    section: Callable = lambda summary, methods: []
    overview: Callable = lambda summary, method: {}
    figures: Callable = _nothing
    needs: Callable = _nothing
    headline: bool = False       # its section comes right after the report's summary table
