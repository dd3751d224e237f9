"""The localization baselines, by the name ``config.localization_baseline`` gives; add one with
its file and a line here."""
from saljax.study.localizers.localizer import Localizer
from saljax.study.localizers.retinanet_baseline import RETINANET
from saljax.study.localizers.unet_baseline import UNET

LOCALIZERS = {b.name: b for b in (UNET, RETINANET)}

__all__ = ["Localizer", "LOCALIZERS"]
