"""The study's criteria, one module each, whose ``CRITERION`` is the criterion's record
(:class:`saljax.study.criteria.criterion.Criterion`), in the order they are evaluated and
summarized.

To add a criterion: write ``criteria/<name>.py`` defining ``CRITERION = Criterion(name="<name>",
...)`` and add ``"<name>"`` to ``MODULES``; the stages, ``summary.json``, the report and the
config check read :data:`CRITERIA`.
"""
import importlib

from saljax.study.criteria.criterion import Criterion, Entry, Study

MODULES = (
    "utility",
    "randomization",
    "agreement",
    "label_randomization",
    "known_truth",
    "emprt",
    "smprt",
    "input_invariance",
    "collapsed",
    "verdicts",
)

CRITERIA = tuple(importlib.import_module(f"{__name__}.{module}").CRITERION
                 for module in MODULES)

__all__ = ["CRITERIA", "MODULES", "Criterion", "Entry", "Study"]
