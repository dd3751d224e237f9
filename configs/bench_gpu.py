"""The GPU benchmark: full InceptionV3 at 320 x 320, batch 128, the study's cheap and noisy
methods, against PAIR one image at a time on the same model.

    saljax bench --config bench_gpu --workdir runs/bench_gpu [--config.dtype=bfloat16]
        [--config.fold_batchnorm='(False, True)'] [--config.max_batch_sweep='(128, 256, 512)']
"""
from saljax.configs import bench


def get_config():
    c = bench.get_config()
    c.models = [{"name": "inception_v3", "width": 1.0}]
    c.size = 320
    c.batch_sizes = (128,)
    c.methods = ("gradient", "smoothgrad", "integrated_gradients", "gradcam", "guided_backprop")
    c.max_batch = 128
    c.reps = 3
    c.pair_reference = True
    c.pair_images = 2
    c.captum_batch = 16              # captum's images per call (x 25 SmoothGrad samples, in
                                     # batches of max_batch inputs)
    return c
