"""Input x Gradient (Shrikumar et al., 2016): the gradient times the image, [B, H, W, C]."""
from saljax.saliency.method import InputGradient, Method

METHOD = Method(
    name="input_x_gradient",
    hparams={},
    gradients=(InputGradient(),),
    finish=lambda passes, hp: passes.input_gradient() * passes.images,
)
