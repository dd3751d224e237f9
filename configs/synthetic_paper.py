"""The synthetic study under the published protocol: the synthetic config with every step of
``saljax.protocol.paper`` (cascading levels trained, logits, mixed10 ... mixed1; predicted class;
fresh noise; the study's normalization, GradCAM resize and Guided GradCAM order; SSIM with
data_range 2; 50 random pairs per image from replicate 1; one pair per agreement criterion),
except ImageNet weights, which exist for the published widths only. For comparing the two
protocols on data with a known answer:

    saljax study --config synthetic_paper --workdir runs/synthetic_paper
"""
from saljax.configs import synthetic
from saljax.protocol import paper


def get_config():
    c = paper(synthetic.get_config())
    c.train.init_from = ""     # no ImageNet weights at width 0.25
    c.cascading_levels = -1    # every level from the logits down to mixed1
    return c
