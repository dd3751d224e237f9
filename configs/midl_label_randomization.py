"""The MIDL 2020 data-randomization experiment (Adebayo et al.'s data randomization test): the
study with, beside the true-label models, an InceptionV3 trained on permuted labels, whose maps
are compared with the true-label model's on the same images (``label_randomization`` in
summary.json and the report). A method whose maps of a model that learned nothing still
resemble the trained model's reflects the image, not what the model learned.

    saljax study --config midl_label_randomization --workdir runs/midl_labels

Defaults to the synthetic data so it runs anywhere; for RSNA set
--config.dataset=rsna_pneumonia --config.data_path=<built dir> --config.size=320.
"""
from saljax.configs import synthetic


def get_config():
    c = synthetic.get_config()
    c.permuted_label_seeds = (0,)
    return c
