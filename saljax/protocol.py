"""The study's protocol (Arun et al., 2021): the saliency methods it compares, their published
settings, and the study's default config. Read by ``saljax.study`` and ``saljax.bench``.
"""
from __future__ import annotations

from typing import Any

import ml_collections

from saljax.training import classifier, segmenter

STUDY_METHODS = ("gradient", "smoothgrad", "integrated_gradients", "smoothgrad_ig",
                 "guided_backprop", "gradcam", "guided_gradcam", "xrai")
# The study's published settings: IG with 10 steps from -1 (black), SmoothGrad and
# SmoothGrad-IG with PAIR's smoothing defaults around them, CAMs at the last conv block
# (``block=None``: mixed10 for InceptionV3), XRAI at its defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "smoothgrad": dict(stdev_spread=0.15, nsamples=25, magnitude=True),
    "integrated_gradients": dict(x_steps=10, baseline=-1.0),
    "smoothgrad_ig": dict(stdev_spread=0.15, nsamples=25, magnitude=True, x_steps=10,
                          baseline=-1.0),
    "guided_backprop": {},
    "gradcam": dict(block=None),
    "guided_gradcam": dict(block=None),
    "xrai": {},
}


def default_config() -> ml_collections.ConfigDict:
    """The study's protocol; configs override what they need (see ``saljax.configs``)."""
    c = ml_collections.ConfigDict()
    c.dataset = "synthetic_cxr"      # or rsna_pneumonia, siim_pneumothorax, folder_cxr
    c.data_path = ""                 # a built dataset; empty: build into <workdir>/data
    c.manual_dir = ""                # the downloaded files (real datasets)
    c.splits_csv = ""                # the study's published splits, relative to manual_dir
    c.size = 320
    c.synthetic = ml_collections.ConfigDict(dict(
        seed=0, counts=(("train", 1000), ("val", 200), ("test", 200)), marker="random"))
    c.train = classifier.default_config()   # model, width, seeds and data_path are set per model
    # each: name, width, seeds; optional "paths" (trained model dirs to load instead of
    # training) and "train" (overrides of c.train for this architecture, e.g. {"epochs": 3})
    c.models = [{"name": "inception_v3", "width": 1.0, "seeds": (0, 1, 2)},
                {"name": "densenet121", "width": 1.0, "seeds": (0,)}]
    c.segmentation = segmenter.default_config()
    c.methods = list(STUDY_METHODS)
    c.hparams = ml_collections.ConfigDict()   # per-method overrides of the study presets
    c.arch_hparams = ml_collections.ConfigDict()   # {architecture: {method: overrides}}
    c.max_batch = 64                 # model inputs per chunk of passes
    # {method: inputs per chunk}, e.g. an architecture's entry of bench's max_batch.json; a unit
    # of several methods takes the smallest of theirs, c.max_batch for methods not listed
    c.max_batch_per_method = ml_collections.ConfigDict()
    c.chunk = 16                     # images per work unit
    c.eval_images = 100              # randomization and agreement images (test positives)
    c.utility_images = -1            # utility images: -1 = every test positive
    c.target = 1                     # explained class (1 = abnormal); -1: the predicted class
    c.cascading_levels = -1          # -1: every named block; k > 0: k levels evenly spread
    c.independent_blocks = -1        # -1: every block; 0: none; k > 0: k blocks evenly spread
    c.randomization = ml_collections.ConfigDict(dict(mode="reinit", bn="reinit"))
    # As in the study, utility and the randomization sweep run on the first model's architecture
    # (InceptionV3); other architectures contribute the trained model's maps of the evaluation
    # images to reproducibility, unless True (every criterion for every architecture).
    c.randomize_every_architecture = False
    # SSIM on grayscale maps in [0, 1]: data_range 1. The study's code passed float maps to
    # skimage without data_range, which then assumed 2 (the float range [-1, 1]); set 2.0 to
    # reproduce its numbers.
    c.ssim = ml_collections.ConfigDict(dict(data_range=1.0, win_size=7, gaussian_weights=False))
    c.random_pairs = 200             # pairs for the random-pair SSIM pass line
    c.bootstrap = 1000
    c.seed = 0
    return c


def method_hparams(config, arch: str | None = None) -> dict:
    """``{method: hparams}``: the study presets, the config's ``hparams``, then its
    ``arch_hparams[arch]`` (e.g. a CAM block that exists in one architecture only)."""
    out = {}
    per_arch = dict(config.arch_hparams.get(arch, {})) if arch else {}
    for m in config.methods:
        hp = dict(PRESETS.get(m, {}))
        hp.update(dict(config.hparams.get(m, {})))
        hp.update(dict(per_arch.get(m, {})))
        out[m] = hp
    return out


