"""The MIDL 2020 data-randomization experiment: the study's protocol with classifiers trained on
permuted labels (Adebayo et al.'s data randomization test). Maps of such models should not find
lesions; a method whose maps still do reflects the image, not what the model learned.

    saljax study --config configs/midl_label_randomization.py --workdir runs/midl_labels

Defaults to the synthetic data so it runs anywhere; for RSNA set
--config.dataset=rsna_pneumonia --config.data_path=<built dir> --config.size=320.
"""
import os

from saljax.config import load


def get_config():
    c = load(os.path.join(os.path.dirname(__file__), "synthetic.py"))
    c.train.label_randomization = True
    return c
