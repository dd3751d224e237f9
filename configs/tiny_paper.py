"""A smoke test of the published protocol (the test suite uses it): the tiny study with every
step of ``saljax.protocol.paper`` but ImageNet weights (narrow models), and the MIDL comparison
(one InceptionV3 trained on permuted labels).

    saljax study --config tiny_paper --workdir runs/tiny_paper
"""
from saljax.configs import tiny
from saljax.protocol import paper


def get_config():
    c = paper(tiny.get_config())
    c.train.init_from = ""     # no ImageNet weights at width 0.0625
    c.cascading_levels = -1
    c.random_pairs_per_image = 3
    c.permuted_label_seeds = (0,)
    c.known_truth.enabled = False
    return c
