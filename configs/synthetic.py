"""The README's main job: the whole study on built-in synthetic chest X-rays, CPU-sized.

    saljax study --config synthetic --workdir runs/synthetic

The full protocol at reduced size: 2 InceptionV3 replicates and 1 DenseNet121 (narrow), 96 px,
fewer noise samples and path steps, a few randomization levels spread over the named blocks.
On a 2-core CPU (under 10 min with an empty compilation cache, known-truth stages included;
see the README) its time goes to training (about half), the maps and XLA compilation; runs that
find the compilation cache warm skip the compiling.
"""
from saljax.protocol import default_config


def get_config():
    c = default_config()
    c.dataset = "synthetic_cxr"
    c.size = 96
    c.synthetic.counts = (("train", 800), ("val", 160), ("test", 120))
    c.synthetic.marker = "random"
    c.synthetic.lesion_contrast = 0.5
    # the marker (on half of the images, independent of the label; the shortcut arm's data
    # ties it to the label): a 12 px plate, always at the top right
    c.synthetic.marker_corner = "top_right"
    c.synthetic.marker_size = 0.125
    c.train.update(dict(learning_rate=1e-3, bn_momentum=0.9, batch_size=32, epochs=4,
                        checkpoint_every=25, eval_batch_size=80))
    # DenseNet121 (reproducibility only: trained maps of the evaluation images) reaches its
    # validation AUC in 3 epochs here; it is the slowest model to compile and run on a CPU.
    c.models = [{"name": "inception_v3", "width": 0.25, "seeds": (0, 1)},
                {"name": "densenet121", "width": 0.125, "seeds": (0,), "train": {"epochs": 3}}]
    c.segmentation.update(dict(width=0.5, seeds=(0, 1), epochs=1))
    # with --config.localization_baseline=retinanet: detectors sized for 96 px lesions
    c.detection.update(dict(width=0.125, seeds=(0, 1), epochs=4, anchor_scale=2.0))
    c.hparams.update({
        "smoothgrad": dict(nsamples=6),
        "smoothgrad_ig": dict(nsamples=2, x_steps=3),
        "xrai": dict(steps=4),
    })
    # At 96 px InceptionV3's mixed8-10 are 1 x 1 (a GradCAM there is one number): use mixed7
    # (4 x 4). DenseNet121's last block (conv5) is 3 x 3 here.
    c.arch_hparams.update({"inception_v3": {"gradcam": dict(block="mixed7"),
                                            "guided_gradcam": dict(block="mixed7")}})
    c.eval_images = 16
    c.utility_images = 32
    c.chunk = 16
    # A unit's passes (16 images x 30 passes of the multi-pass methods) in one chunk: XLA's CPU
    # backend runs convolutions inside a loop on one thread (jax-ml/jax#12868), which halves
    # the speed of a chunked unit on 2 cores. About 2 GB of memory at this size.
    c.max_batch = 576
    c.cascading_levels = 5
    c.independent_blocks = 2
    c.random_pairs = 100
    # sMPRT CPU-sized: 4 noisy copies per map (Quantus: 50), two bottom-up levels besides the
    # full randomization, on 8 images; input invariance on 16
    c.smprt.update(dict(samples=4, levels=2, images=8))
    # Known truth: reliance on the lesion and the marker and the maps' region scores on 16
    # images, one InceptionV3 trained as long as the normal arm where the marker predicts the
    # label (the shortcut arm: the protocol's shortcut data), ROAD on 8 images at three
    # fractions (10%, 50%, 90%) beside a random map and an occlusion-with-infill map of 24 px
    # patches at stride 24, computed beside the last map units and the criteria.
    c.known_truth.update(dict(enabled=True, shortcut_seeds=(0,), images=16, road_images=8,
                              road_fractions=(0.1, 0.5, 0.9), occlusion_size=24,
                              occlusion_stride=24))
    return c
