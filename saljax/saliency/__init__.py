"""Saliency methods as batched, jit-compiled JAX transforms with PAIR ``saliency.core`` semantics.

    explain = saljax.saliency.make("integrated_gradients", model, x_steps=10, baseline=-1.0)
    maps = explain(variables, images)            # [B, H, W, C] float32
    both = saljax.saliency.make_many(["gradient", "gradcam"], model)(variables, images)
"""
from saljax.saliency.augment import smoothgrad_noise
from saljax.saliency.guided import guided_relu
from saljax.saliency.methods import (DEFAULTS, METHODS, SPATIAL, STOCHASTIC, STUDY_METHODS,
                                     STUDY_PRESETS, Explainer, make, make_many)
from saljax.saliency.visualize import diverging, grayscale
from saljax.saliency import xrai
from saljax.saliency.xrai import segments as xrai_segments

__all__ = ["make", "make_many", "METHODS", "STUDY_METHODS", "STUDY_PRESETS", "DEFAULTS",
           "SPATIAL", "STOCHASTIC", "Explainer", "grayscale", "diverging", "guided_relu",
           "smoothgrad_noise", "xrai_segments"]
