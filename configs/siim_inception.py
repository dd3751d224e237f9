"""The study's full protocol on SIIM-ACR Pneumothorax at 320 x 320 (segmentation masks).

    saljax data build siim_pneumothorax --manual-dir ~/kaggle/siim --data-dir ~/tfds --size 320
    saljax study --config configs/siim_inception.py --workdir runs/siim \\
        --config.data_path=~/tfds/siim_pneumothorax/<config>/1.0.0

Same protocol as configs/rsna_inception.py; pneumothorax is rarer, so the loss is class-weighted.
"""
import os

from saljax.config import load


def get_config():
    c = load(os.path.join(os.path.dirname(__file__), "rsna_inception.py"))
    c.dataset = "siim_pneumothorax"
    c.train.class_weighting = True
    return c
