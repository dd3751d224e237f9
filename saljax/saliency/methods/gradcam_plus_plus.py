"""GradCAM++ (Chattopadhay et al., 2018) at a named ``block``, resized to the image, [B, H, W]."""
from saljax.saliency import cam
from saljax.saliency.method import BlockGradient, Method, block, one_of

METHOD = Method(
    name="gradcam_plus_plus",
    hparams={"block": block(), "resize": one_of("skimage", "tf1")},
    gradients=(BlockGradient(),),
    finish=lambda passes, hp: cam.gradcam_plus_plus(*passes.block(hp["block"]),
                                                    passes.images.shape[1:3], hp["resize"]),
    spatial=True,
)
