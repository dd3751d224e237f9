"""The study's criteria, each one record (:class:`~saljax.study.criteria.criterion.Criterion`)
in one file, in the order they are evaluated and summarized; add one with its file and a line
here."""
from saljax.study.criteria.agreement import AGREEMENT
from saljax.study.criteria.criterion import Criterion, Entry, Study
from saljax.study.criteria.known_truth import KNOWN_TRUTH
from saljax.study.criteria.label_randomization import LABEL_RANDOMIZATION
from saljax.study.criteria.randomization import RANDOMIZATION
from saljax.study.criteria.utility import UTILITY

CRITERIA = (UTILITY, RANDOMIZATION, AGREEMENT, LABEL_RANDOMIZATION, KNOWN_TRUTH)

__all__ = ["CRITERIA", "Criterion", "Entry", "Study"]
