"""Gradient (Simonyan et al., 2014; PAIR's ``GradientSaliency``): d logit[target] / d image,
[B, H, W, C], from the plain pass."""
from saljax.saliency.method import InputGradient, Method

METHOD = Method(
    name="gradient",
    hparams={},
    gradients=(InputGradient(),),
    finish=lambda passes, hp: passes.input_gradient(),
)
