"""Blur IG (Xu et al., 2020; PAIR's ``BlurIG``): gradients along a path of increasing Gaussian
blur up to ``max_sigma`` (or its square-root spacing), weighted by d(blur) / d(sigma),
[B, H, W, C]."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from saljax.saliency import blur
from saljax.saliency.augment import Items
from saljax.saliency.method import Method, count, flag, nonnegative
from saljax.saliency.streams import Stream


@dataclasses.dataclass(frozen=True)
class BlurPath:
    """The blur path of every image: ``steps`` blurred copies, each pass's gradient weighted by
    the blur's change to the next sigma; finishes to -sum (PAIR's sign)."""
    max_sigma: float
    steps: int
    grad_step: float
    sqrt: bool

    def passes_per_item(self) -> int:
        return self.steps

    def stream(self, items: Items, ctx):
        images = items.all()
        sigmas = blur.blur_sigmas(self.max_sigma, self.steps, self.sqrt)
        cap = blur.max_radius(float(sigmas[-1]) + self.grad_step)
        sig = jnp.asarray(sigmas[:-1], jnp.float32)
        dsig = jnp.asarray(np.diff(sigmas), jnp.float32)

        def weight(g, i, k):
            slope = blur.gaussian_blur_slope(images[i], sig[k], self.grad_step, cap)
            return (dsig[k] * slope * g)[None]

        stream = Stream(items.n, self.steps,
                        lambda i, k: blur.gaussian_blur(images[i], sig[k], cap), weight,
                        image=items.image)
        return stream, lambda sums: -sums[:, 0]


def plan(hp):
    return BlurPath(hp["max_sigma"], hp["steps"], hp["grad_step"], hp["sqrt"])


METHOD = Method(
    name="blur_ig",
    hparams={"max_sigma": nonnegative(50.0), "steps": count(100),
             "grad_step": nonnegative(0.01), "sqrt": flag(False)},
    plan=plan,
    finish=lambda passes, hp: passes.plan(plan(hp)),
)
