"""Training: one resumable loop (:mod:`saljax.training.loop`) for the classifiers
(:mod:`~saljax.training.classifier`) and the segmentation baselines
(:mod:`~saljax.training.segmenter`), replicate seeds stepped together."""
from saljax.training import classifier, segmenter

__all__ = ["classifier", "segmenter"]
