"""The study's protocol on RSNA Pneumonia at 320 x 320 (Arun et al.), step for step
(docs/PROTOCOL.md): ImageNet-initialized InceptionV3 replicates and a DenseNet121, the
published splits, Lung Opacity vs Normal only, boxes rasterized as the study did, two RetinaNet
detectors as the localization baseline.

    saljax data build rsna_pneumonia --manual-dir ~/kaggle/rsna --data-dir ~/tfds --size 320 \\
        --splits-csv pneumonia_splits.csv --classes opacity_vs_normal --box-raster corners
    saljax study --config rsna_inception --workdir runs/rsna \\
        --config.data_path=~/tfds/rsna_pneumonia/<config>/1.0.0

Needs, in ``manual_dir``, the Kaggle files and the study's ``pneumonia_splits.csv``, and Keras's
ImageNet no-top files in ``~/.keras/models/`` (see ``saljax.models.imagenet_weights``);
``--config.eval_ids=<file>`` evaluates the study's own 100 images. Adam at 7e-5; the study's
method settings (IG 10 steps from -1, SmoothGrad / SmoothGrad-IG with PAIR's defaults, GradCAM
at mixed10 resized as TF1 did, XRAI at its defaults).
"""
from saljax.protocol import default_config, paper


def get_config():
    c = paper(default_config())
    c.dataset = "rsna_pneumonia"
    c.classes = "opacity_vs_normal"
    c.splits_csv = "pneumonia_splits.csv"
    c.box_raster = "corners"
    c.size = 320
    c.train.update(dict(learning_rate=7e-5, batch_size=32, epochs=10, augment=True,
                        dtype="bfloat16", checkpoint_every=500))
    c.models = [{"name": "inception_v3", "width": 1.0, "seeds": (0, 1, 2)},
                {"name": "densenet121", "width": 1.0, "seeds": (0,)}]
    # the study's RSNA localization baseline: RetinaNets (ResNet-50, FPN) trained on the boxes
    c.localization_baseline = "retinanet"
    c.detection.update(dict(width=1.0, seeds=(0, 1), epochs=10, batch_size=16,
                            learning_rate=1e-4, checkpoint_every=500))
    c.eval_images = 100
    c.utility_images = -1
    c.chunk = 16
    c.max_batch = 128
    c.cascading_levels = -1
    c.independent_blocks = -1
    return c
