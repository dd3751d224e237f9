"""The study's full protocol on RSNA Pneumonia at 320 x 320 (Arun et al.).

    saljax data build rsna_pneumonia --manual-dir ~/kaggle/rsna --data-dir ~/tfds --size 320 \\
        [--splits-csv splits.csv]
    saljax study --config rsna_inception --workdir runs/rsna \\
        --config.data_path=~/tfds/rsna_pneumonia/<config>/1.0.0

3 InceptionV3 replicates and a DenseNet121 (published widths, Adam at 7e-5), the study's method
settings (IG 10 steps from -1, SmoothGrad / SmoothGrad-IG with PAIR's defaults, GradCAM at
mixed10, XRAI at its defaults), 100 evaluation images for randomization and repeatability, every
test positive for utility, every named block for cascading and independent randomization.
Start from ImageNet weights with --config.train.init_from=<inception_v3 notop .h5> (the
DenseNet then needs its own).
"""
from saljax.protocol import default_config


def get_config():
    c = default_config()
    c.dataset = "rsna_pneumonia"
    c.size = 320
    c.train.update(dict(learning_rate=7e-5, batch_size=32, epochs=10, augment=True,
                        dtype="bfloat16", checkpoint_every=500))
    c.models = [{"name": "inception_v3", "width": 1.0, "seeds": (0, 1, 2)},
                {"name": "densenet121", "width": 1.0, "seeds": (0,)}]
    c.segmentation.update(dict(width=2.0, seeds=(0, 1, 2), epochs=10, batch_size=16))
    c.eval_images = 100
    c.utility_images = -1
    c.chunk = 16
    c.max_batch = 128
    c.cascading_levels = -1
    c.independent_blocks = -1
    return c
