"""The localization baselines, one module each, whose ``LOCALIZER`` is the baseline's record
(:class:`saljax.study.localizers.localizer.Localizer`), by the name
``config.localization_baseline`` gives.

To add one: write ``localizers/<name>_baseline.py`` defining ``LOCALIZER = Localizer(...)`` and
add its module to ``MODULES``; nothing else names a baseline.
"""
import importlib

from saljax.study.localizers.localizer import Localizer

MODULES = ("unet_baseline", "retinanet_baseline")

LOCALIZERS = {b.name: b for b in (importlib.import_module(f"{__name__}.{module}").LOCALIZER
                                  for module in MODULES)}

__all__ = ["Localizer", "LOCALIZERS", "MODULES"]
