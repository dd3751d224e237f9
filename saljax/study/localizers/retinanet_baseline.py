"""The RetinaNet baseline (RSNA, any dataset with lesion boxes): each pixel the highest score
of the detections covering it."""
from __future__ import annotations

from saljax.models.retinanet import RetinaNet
from saljax.study.fields import count
from saljax.study.localizers.localizer import Localizer
from saljax.training import detector

_COUNTS = ("batch_size", "epochs", "max_boxes", "eval_batch_size", "checkpoint_every")


def _score(model, variables, metadata, pixels):
    return detector.score_maps(model, variables, pixels, anchor_scale=metadata["anchor_scale"])


def _check(config) -> None:
    for field in _COUNTS:
        count(config, f"detection.{field}")
    if not config.detection.anchor_scale > 0:
        raise ValueError("config.detection.anchor_scale must be > 0, got "
                         f"{config.detection.anchor_scale!r}")


LOCALIZER = Localizer(name="retinanet", label="RetinaNet", kind="detection", needs="boxes",
                      section="detection", min_size=RetinaNet.min_size, trainer=detector.train,
                      score=_score, check=_check)
