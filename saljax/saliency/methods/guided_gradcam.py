"""Guided GradCAM as the study computed it: PAIR's grayscale visualization of Guided Backprop
(clipped at ``percentile``) times GradCAM at ``block``, [B, H, W]."""
from saljax.saliency import cam
from saljax.saliency.guided import guided_relu
from saljax.saliency.method import BlockGradient, InputGradient, Method, block, value
from saljax.saliency.visualize import grayscale


def finish(passes, hp):
    guided = grayscale(passes.input_gradient(guided_relu), hp["percentile"])
    return guided * cam.gradcam(*passes.block(hp["block"]), passes.images.shape[1:3])


METHOD = Method(
    name="guided_gradcam",
    hparams={"block": block(), "percentile": value(99.0)},
    gradients=(BlockGradient(), InputGradient(guided_relu)),
    finish=finish,
    spatial=True,
)
