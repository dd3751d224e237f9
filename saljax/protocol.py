"""The study's protocol (Arun et al., 2021): the saliency methods it compares, their published
settings, and the study's default config. Read by ``saljax.study`` and ``saljax.bench``.
"""
from __future__ import annotations

from typing import Any

import ml_collections

from saljax.training import classifier, detector, segmenter

STUDY_METHODS = ("gradient", "smoothgrad", "integrated_gradients", "smoothgrad_ig",
                 "guided_backprop", "gradcam", "guided_gradcam", "xrai")
# Null maps (model-independent: the image, its Sobel edges, a centred blob; model-dependent
# noise), computed and scored beside the methods through every criterion: a criterion a null
# map passes cannot by itself vouch for a method.
NULL_MAPS = ("null_image", "null_edge", "null_blob", "null_noise")
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
    c.classes = "all"                # RSNA: all patients, or "opacity_vs_normal" (the study's)
    c.box_raster = "centres"         # boxes to masks by pixel centres, or "corners" (the study's)
    c.size = 320
    c.synthetic = ml_collections.ConfigDict(dict(
        seed=0, counts=(("train", 1000), ("val", 200), ("test", 200)), marker="random"))
    c.train = classifier.default_config()   # model, width, seeds and data_path are set per model
    # {architecture: input scaling}: how each architecture is fed ("symmetric", [-1, 1], or
    # "imagenet", ImageNet's mean and std), in training and in every map (a models entry's own
    # train.scaling wins); the study fed DenseNet121 ImageNet-normalized inputs
    c.arch_scaling = ml_collections.ConfigDict()
    # each: name, width, seeds; optional "paths" (trained model dirs to load instead of
    # training) and "train" (overrides of c.train for this architecture, e.g. {"epochs": 3})
    c.models = [{"name": "inception_v3", "width": 1.0, "seeds": (0, 1, 2)},
                {"name": "densenet121", "width": 1.0, "seeds": (0,)}]
    # The localization baseline a map must match: "unet" (a segmentation U-Net trained on
    # the lesion masks, c.segmentation; the study's for SIIM) or "retinanet" (a detector
    # trained on the boxes, c.detection; the study's for RSNA). Two or more seeds each.
    c.localization_baseline = "unet"
    # The baseline's replicate SSIM: on its maps as the saliency maps' ("maps"), or as the
    # study read its U-Net outputs, 8-bit PNGs scored with data_range 255 ("png8")
    c.localization_ssim = "maps"
    c.segmentation = segmenter.default_config()
    c.detection = detector.default_config()
    c.methods = list(STUDY_METHODS)
    c.null_maps = list(NULL_MAPS)     # () for none
    c.hparams = ml_collections.ConfigDict()   # per-method overrides of the study presets
    c.arch_hparams = ml_collections.ConfigDict()   # {architecture: {method: overrides}}
    c.max_batch = 64                 # model inputs per chunk of passes
    # {method: inputs per chunk}, e.g. an architecture's entry of bench's max_batch.json; a unit
    # of several methods takes the smallest of theirs, c.max_batch for methods not listed
    c.max_batch_per_method = ml_collections.ConfigDict()
    c.chunk = 16                     # images per work unit
    c.eval_images = 100              # randomization and agreement images (test positives)
    c.eval_seed = 1                  # their draw: random.seed(1), random.shuffle (the study's);
                                     # -1: the first in stored order
    c.eval_ids = ""                  # or a file of their ids (CSV Image_ID / id column, or text)
    c.eval_samples = ""              # or a folder of the study's own N.npy samples (its 100
                                     # images, 320 x 320 x 3 in [-1, 1]): randomization and
                                     # agreement on exactly those pixels; utility is skipped
                                     # (`saljax data match-samples` finds their eval_ids)
    c.utility_images = -1            # utility images: -1 = every test positive
    c.target = 1                     # explained class (1 = abnormal); -1: the predicted class
    c.cascading_levels = -1          # -1: every named block; k > 0: k levels evenly spread
    c.cascading_through = ""         # the deepest block the cascade re-draws (the study's:
                                     # "mixed1"); "": every block, down to the stem
    c.fully_randomized_level = True  # add the level with every block re-drawn (utility's
                                     # "randomized" state is the deepest level)
    c.independent_blocks = -1        # -1: every block; 0: none; k > 0: k blocks evenly spread
    c.randomization = ml_collections.ConfigDict(dict(mode="reinit", bn="reinit"))
    c.noise = "shared"               # stochastic methods' noise across settings: the same for
                                     # every setting, or "fresh" for every map (the study's)
    c.normalization = "grayscale"    # maps before every metric: PAIR's grayscale, or
                                     # "grayscale_minmax" (then min-max, the study's)
    # As in the study, utility and the randomization sweep run on the first model's architecture
    # (InceptionV3); other architectures contribute the trained model's maps of the evaluation
    # images to reproducibility, unless True (every criterion for every architecture).
    c.randomize_every_architecture = False
    # The MIDL 2020 comparison: replicates of the first architecture trained on permuted labels
    # (these seeds), whose maps are compared with the true-label models' (SSIM per image).
    c.permuted_label_seeds = ()
    c.known_truth = known_truth_defaults()
    _criteria_defaults(c)
    c.bootstrap = 1000
    c.seed = 0
    return c


def known_truth_defaults() -> ml_collections.ConfigDict:
    # Known truth (synthetic data only): what the models really use (reliance on the lesion and
    # the marker: removed by in-distribution infill, the marker added to negatives, the conflict
    # set), a shortcut arm (replicates of the first architecture trained where the marker
    # predicts the label), each method's scores against the lesion and the marker, and ROAD.
    return ml_collections.ConfigDict(dict(
        enabled=False,
        shortcut_seeds=(0,),           # the shortcut arm's replicates; () for none
        # P(marker | positive) = P(no marker | negative) in the shortcut arm's training data;
        # several values make one shortcut arm each (a dose-response: shortcut50, shortcut80...)
        shortcut_strengths=(1.0,),
        # the shortcut arm's data besides the marker (synthetic options): most positives show
        # no lesion and the others a faint one, so that the marker is the easier and the only
        # reliable cue
        shortcut_data=dict(lesion_absent=0.75, lesion_contrast=0.25),
        shortcut_train={},             # train overrides for the shortcut arm (e.g. epochs)
        images=16,                     # evaluation images for reliance and map scores
        road_images=16,                # the first of them for ROAD and its references
        infills=("noisy_linear", "blur"),
        road_fractions=(0.1, 0.3, 0.5, 0.7, 0.9),
        road_noise=0.02,               # imputation noise sd, model-input units (ROAD's 0.01 of
                                       # a [0, 1] image); reliance's noisy_linear infill too
        road_match_noise=False,        # True: the noise sd matched to each image's own noise
        road_ranking="signed",         # ROAD's; "absolute": the maps' magnitudes
        occlusion_size=16,             # the occlusion-with-infill reference map for ROAD
        occlusion_stride=8))


def _criteria_defaults(c: ml_collections.ConfigDict) -> None:
    """SSIM, agreement pairs and pass lines."""
    # SSIM on grayscale maps in [0, 1]: data_range 1. The study's code passed float maps to
    # skimage without data_range, which then assumed 2 (the float range [-1, 1]); set 2.0 to
    # reproduce its numbers.
    c.ssim = ml_collections.ConfigDict(dict(data_range=1.0, win_size=7, gaussian_weights=False))
    c.agreement_pairs = "all"        # repeatability / reproducibility over every model pair, or
                                     # "first": replicate 2 vs 1, other architecture vs 1, or
                                     # "study": replicate 2 vs 1, other architecture vs 2
    c.random_pairs = 200             # pairs for the random-pair SSIM pass line
    c.random_pairs_per_image = 0     # > 0: that many pairs per image instead (the study's: 50)
    c.pass_line_models = "all"       # the mean of every replicate's line, or "first": replicate
                                     # 1's (the study's)
    # Collapsed (constant) maps: "exclude" leaves every comparison with one out of the
    # similarity criteria (counted, and flagged above a few percent); "score" scores them as
    # the zero maps they become (saljax before 2026-12)
    c.collapsed_maps = "exclude"
    # Verdicts: pass / fail / inconclusive at this level, after Holm's correction over a
    # criterion's methods (and levels), from a bootstrap over replicate models and images
    c.verdicts = ml_collections.ConfigDict(dict(alpha=0.05))
    c.emprt = ml_collections.ConfigDict(dict(
        margin=0.05))                # eMPRT fails when its rise is surely below this
    # sMPRT (Hedström et al. 2023; Quantus's defaults): each map the mean of `samples` maps of
    # noisy copies (noise sd `noise` x the image's range; the last copy noise-free), Spearman
    # of their absolute values between the trained and each randomized model, randomized
    # "bottom_up" (from the stem) or "top_down" (from the logits, as the study's cascade), at
    # `levels` levels spread over the blocks (-1: every block), on the first `images`
    # evaluation images (-1: all)
    c.smprt = ml_collections.ConfigDict(dict(order="bottom_up", samples=50, noise=0.1,
                                             levels=-1, images=-1))
    # Input invariance (Kindermans et al. 2017): the primary architecture's first model and its
    # twin whose first layer absorbs a constant `shift` of the input, on the first `images`
    # evaluation images; invariant when the attributions differ by less than `max_difference`
    # of the largest one
    c.input_invariance = ml_collections.ConfigDict(dict(shift=1.0, images=16,
                                                        max_difference=0.1))


# The study's settings where PAIR 0.0.5, which it used, differs from PAIR 0.2: GradCAM resized
# with TF1's legacy bilinear resize; Guided GradCAM as grayscale x grayscale, then min-max.
PAPER_HPARAMS = {"gradcam": dict(resize="tf1"),
                 "guided_gradcam": dict(resize="tf1", cam_grayscale=True)}


def paper(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``c`` with every step the study (Arun et al.) took differently from saljax's defaults,
    row by row as in docs/PROTOCOL.md; the dataset's own steps (its classes, published split
    file, box rasterization) are set by the dataset's config."""
    c.cascading_through = "mixed1"        # trained, logits, mixed10 ... mixed1
    c.fully_randomized_level = False
    c.train.init_from = "imagenet"
    c.ssim.data_range = 2.0               # skimage's default for float maps
    c.eval_seed = 1                       # random.seed(1); random.shuffle; the first 100
    c.target = -1                         # the predicted class
    c.normalization = "grayscale_minmax"
    c.noise = "fresh"
    c.random_pairs_per_image = 50
    c.pass_line_models = "first"
    c.agreement_pairs = "study"           # repeatability_scores_rsna.py's pairs
    c.localization_ssim = "png8"          # its U-Net maps read back as 8-bit PNGs
    c.arch_scaling = {"densenet121": "imagenet"}   # create_maps_rsna.py's DenseNet branch
    # PAIR's visualizations divide by a map's range: a constant map was NaN and its scores
    # dropped (nanmean), as saljax's exclusion does
    c.collapsed_maps = "exclude"
    for method, hp in PAPER_HPARAMS.items():
        c.hparams[method] = {**dict(c.hparams.get(method, {})), **hp}
    return c


# The config fields of docs/PROTOCOL.md's rows (summary.json records their values).
PROTOCOL_FIELDS = ("cascading_through", "fully_randomized_level", "train.init_from",
                   "ssim.data_range", "classes", "splits_csv", "eval_seed", "eval_ids", "target",
                   "box_raster", "normalization", "noise", "random_pairs", "random_pairs_per_image",
                   "pass_line_models", "agreement_pairs", "collapsed_maps",
                   "permuted_label_seeds",
                   "localization_baseline", "localization_ssim", "randomization.bn",
                   "eval_samples", "arch_scaling")


def protocol_of(config) -> dict:
    """The value of every protocol row's field in ``config``."""
    out = {}
    for field in PROTOCOL_FIELDS:
        node = config
        for part in field.split("."):
            node = node[part]
        out[field] = (list(node) if isinstance(node, tuple) else
                      node.to_dict() if hasattr(node, "to_dict") else node)
    return out


def method_hparams(config, arch: str | None = None) -> dict:
    """``{method: hparams}``: the study presets, the config's ``hparams``, then its
    ``arch_hparams[arch]`` (e.g. a CAM block that exists in one architecture only)."""
    out = {}
    per_arch = dict(config.arch_hparams.get(arch, {})) if arch else {}
    for m in dict.fromkeys(list(config.methods) + list(config.get("null_maps", ()))):
        hp = dict(PRESETS.get(m, {}))
        hp.update(dict(config.hparams.get(m, {})))
        hp.update(dict(per_arch.get(m, {})))
        out[m] = hp
    return out


