"""Similarity and localization metrics as batched float32 jnp functions (jit / vmap-able),
equal to skimage, scipy and sklearn on the same maps."""
from saljax.metrics.baselines import average_mask, random_pair_ssim, random_pairs
from saljax.metrics.geometry import boxes_to_mask
from saljax.metrics.localization import (auprc, auprc_lift, binarize, dice, iou,
                                         mass_accuracy, mass_ratio, pointing_game, roc_auc)
from saljax.metrics.similarity import pearson, spearman, ssim

__all__ = ["ssim", "spearman", "pearson", "auprc", "auprc_lift", "roc_auc", "pointing_game",
           "mass_accuracy", "mass_ratio", "iou", "dice", "binarize", "random_pair_ssim", "random_pairs",
           "average_mask", "boxes_to_mask"]
