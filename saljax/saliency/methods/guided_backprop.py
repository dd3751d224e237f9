"""Guided Backprop (Springenberg et al., 2015): the input gradient with every ReLU's backward
pass replaced by the guided rule (:func:`saljax.saliency.guided.guided_relu`), [B, H, W, C]."""
from saljax.saliency.guided import guided_relu
from saljax.saliency.method import InputGradient, Method

METHOD = Method(
    name="guided_backprop",
    hparams={},
    gradients=(InputGradient(guided_relu),),
    finish=lambda passes, hp: passes.input_gradient(guided_relu),
)
