"""Guided GradCAM (Selvaraju et al., 2017): PAIR's grayscale visualization of Guided Backprop
(clipped at ``percentile``) times GradCAM at ``block``, [B, H, W]. With ``cam_grayscale`` as the
study computed it: grayscale(Guided Backprop) x grayscale(GradCAM), then min-max to [0, 1] (its
maps are then already visualized)."""
from saljax.saliency import cam
from saljax.saliency.guided import guided_relu
from saljax.saliency.method import BlockGradient, InputGradient, Method, block, one_of, percent
from saljax.saliency.visualize import grayscale, minmax


def finish(passes, hp):
    guided = grayscale(passes.input_gradient(guided_relu), hp["percentile"])
    heat = cam.gradcam(*passes.block(hp["block"]), passes.images.shape[1:3], hp["resize"])
    if hp["cam_grayscale"]:
        return minmax(guided * grayscale(heat, hp["percentile"]))
    return guided * heat


METHOD = Method(
    name="guided_gradcam",
    hparams={"block": block(), "percentile": percent(99.0), "resize": one_of("skimage", "tf1"),
             "cam_grayscale": one_of(False, True)},
    gradients=(BlockGradient(), InputGradient(guided_relu)),
    finish=finish,
    visualized=lambda hp: hp["cam_grayscale"],
    spatial=True,
)
