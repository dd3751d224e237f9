"""The MIDL 2020 data-randomization experiment: the study's protocol with classifiers trained on
permuted labels (Adebayo et al.'s data randomization test). Maps of such models should not find
lesions; a method whose maps still do reflects the image, not what the model learned.

    saljax study --config midl_label_randomization --workdir runs/midl_labels

Defaults to the synthetic data so it runs anywhere; for RSNA set
--config.dataset=rsna_pneumonia --config.data_path=<built dir> --config.size=320.
"""
from saljax.configs import synthetic


def get_config():
    c = synthetic.get_config()
    c.train.label_randomization = True
    return c
