"""The U-Net baseline (SIIM, any dataset with lesion masks): per-pixel lesion probability."""
from __future__ import annotations

import numpy as np

from saljax.models.unet import UNet
from saljax.study.fields import count
from saljax.study.localizers.localizer import Localizer
from saljax.training import segmenter


def _check(config) -> None:
    count(config, "segmentation.batch_size")
    count(config, "segmentation.epochs")


def _score(model, variables, metadata, pixels, batch_size: int = 64) -> np.ndarray:
    """The lesion probability of every pixel: [N, H, W]."""
    predict = segmenter.predict_fn(model)
    return np.concatenate([np.asarray(predict(variables, pixels[s:s + batch_size]))
                           for s in range(0, len(pixels), batch_size)])


LOCALIZER = Localizer(name="unet", label="U-Net", kind="segmentation", needs="masks",
                      section="segmentation", min_size=UNet.min_size, trainer=segmenter.train,
                      score=_score, check=_check)
