"""Integrated Gradients (Sundararajan et al., 2017; PAIR's): the gradient averaged over
``x_steps`` points of the straight path from ``baseline`` (a scalar, [H, W, C] or
[B, H, W, C]) to the image, times (image - baseline), [B, H, W, C]."""
from saljax.saliency.augment import Path
from saljax.saliency.method import Method, count, finite


def plan(hp):
    return Path(hp["x_steps"], hp["baseline"])


METHOD = Method(
    name="integrated_gradients",
    hparams={"x_steps": count(25), "baseline": finite(0.0)},
    plan=plan,
    finish=lambda passes, hp: passes.plan(plan(hp)),
)
