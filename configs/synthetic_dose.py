"""Known truth's dose-response: the marker's strength swept, one shortcut arm per strength.

    saljax study --config synthetic_dose --workdir runs/synthetic_dose

The README's synthetic study with three shortcut arms, trained where the marker goes with the
label in 50%, 80% and 100% of the images (P(marker | positive) = P(no marker | negative)), so
that the report can set, per method, how much the map points at the marker (its AUROC and mass
ratio against the marker) against how much the models use it (the marker added to negatives,
the conflict set). At 0.5 the marker says nothing about the label. Everything else is the
synthetic study's.
"""
from saljax.configs import synthetic


def get_config():
    c = synthetic.get_config()
    c.known_truth.shortcut_strengths = (0.5, 0.8, 1.0)
    return c
