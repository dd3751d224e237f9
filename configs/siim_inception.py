"""The study's protocol on SIIM-ACR Pneumothorax at 320 x 320 (segmentation masks), step for
step (docs/PROTOCOL.md).

    saljax data build siim_pneumothorax --manual-dir ~/kaggle/siim --data-dir ~/tfds --size 320 \\
        --splits-csv pneumothorax_splits.csv
    saljax study --config siim_inception --workdir runs/siim \\
        --config.data_path=~/tfds/siim_pneumothorax/<config>/1.0.0

Same protocol as the rsna_inception config; pneumothorax is rarer, so the loss is class-weighted.
"""
from saljax.configs import rsna_inception


def get_config():
    c = rsna_inception.get_config()
    c.dataset = "siim_pneumothorax"
    c.classes = "all"
    c.splits_csv = "pneumothorax_splits.csv"
    c.box_raster = "centres"
    c.train.class_weighting = True
    # the study's SIIM localization baseline: U-Nets trained on the masks
    c.localization_baseline = "unet"
    c.segmentation.update(dict(width=2.0, seeds=(0, 1, 2), epochs=10, batch_size=16))
    return c
