"""Training: one resumable loop (:mod:`saljax.training.loop`) for the classifiers
(:mod:`~saljax.training.classifier`) and the localization baselines (U-Nets,
:mod:`~saljax.training.segmenter`; RetinaNets, :mod:`~saljax.training.detector`), replicate
seeds stepped together. Every trainer is ``train(config, train_dir, *, splits, mesh, progress,
export_dir)`` and returns ``{seed: {"path", ...}}``."""
from saljax.training import classifier, detector, segmenter

__all__ = ["classifier", "detector", "segmenter"]
