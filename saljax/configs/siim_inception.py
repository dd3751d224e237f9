"""The study's full protocol on SIIM-ACR Pneumothorax at 320 x 320 (segmentation masks).

    saljax data build siim_pneumothorax --manual-dir ~/kaggle/siim --data-dir ~/tfds --size 320
    saljax study --config siim_inception --workdir runs/siim \\
        --config.data_path=~/tfds/siim_pneumothorax/<config>/1.0.0

Same protocol as the rsna_inception config; pneumothorax is rarer, so the loss is class-weighted.
"""
from saljax.configs import rsna_inception


def get_config():
    c = rsna_inception.get_config()
    c.dataset = "siim_pneumothorax"
    c.train.class_weighting = True
    return c
