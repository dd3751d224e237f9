"""Saliency methods as batched, jit-compiled JAX transforms with PAIR ``saliency.core`` semantics.

    explain = saljax.saliency.make("integrated_gradients", model, x_steps=10, baseline=-1.0)
    maps = explain(variables, images)            # [B, H, W, C] float32
    both = saljax.saliency.make_many(["gradient", "gradcam"], model)(variables, images)

Each method is one record in one file of :mod:`saljax.saliency.methods`; :data:`METHODS` maps
their names to them.
"""
from saljax.saliency import xrai_regions as xrai
from saljax.saliency.augment import smoothgrad_noise
from saljax.saliency.explainer import Explainer, make, make_many
from saljax.saliency.guided import guided_relu
from saljax.saliency.methods import METHODS
from saljax.saliency.visualize import diverging, grayscale, minmax
from saljax.saliency.xrai_regions import segments as xrai_segments

DEFAULTS = {name: m.defaults for name, m in METHODS.items()}
STOCHASTIC = frozenset(name for name, m in METHODS.items() if m.stochastic)
SPATIAL = frozenset(name for name, m in METHODS.items() if m.spatial)   # maps [B, H, W]

__all__ = ["make", "make_many", "METHODS", "DEFAULTS", "SPATIAL", "STOCHASTIC", "Explainer",
           "grayscale", "diverging", "minmax", "guided_relu", "smoothgrad_noise", "xrai",
           "xrai_segments"]
