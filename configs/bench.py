"""Saliency throughput: saljax against PAIR ``saliency.core`` on the same model (CPU-sized).

    saljax bench --config bench --workdir runs/bench
    saljax bench --config bench --config.size=320 --config.batch_sizes='(128,)'
"""
import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.models = [{"name": "inception_v3", "width": 1.0}]
    c.size = 96                      # image side in pixels
    c.batch_sizes = (4,)
    c.methods = ("gradient", "smoothgrad", "integrated_gradients", "smoothgrad_ig",
                 "guided_backprop", "gradcam", "guided_gradcam", "xrai")
    c.hparams = ml_collections.ConfigDict()   # per-method overrides of the study presets
    # model inputs per chunk; SmoothGrad's 4 x 25 passes in one chunk: XLA's CPU backend runs
    # convolutions inside a loop body slowly (jax-ml/jax#12868): 1.07 maps/s here, 0.68 at 64
    c.max_batch = 128
    c.max_batch_sweep = ()           # e.g. (16, 64, 256): time each chunk size instead, write the
                                     # fastest per method to max_batch.json
    c.fold_batchnorm = (False,)      # (False, True): also time the BatchNorm-folded model
    c.dtype = "float32"              # or "bfloat16" (compute; parameters stay float32)
    c.reps = 2
    c.seed = 0
    c.pair_reference = True          # PAIR saliency.core one image at a time, same model
    c.pair_images = 2
    c.pair_batch = 25                # PAIR's batch_size for IG / XRAI path steps
    c.captum_reference = True        # captum on torchvision's InceptionV3, where they import
    c.captum_batch = 1               # images per captum call
    c.metrics_pairs = ()             # e.g. (16, 500): also time the metrics on that many pairs
    c.metrics_size = 320
    return c
