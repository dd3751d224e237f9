"""GradCAM (Selvaraju et al., 2017; PAIR's ``GradCam``) at a named ``block`` (default: the
model's last conv block), resized to the image, [B, H, W]."""
from saljax.saliency import cam
from saljax.saliency.method import BlockGradient, Method, block

METHOD = Method(
    name="gradcam",
    hparams={"block": block()},
    gradients=(BlockGradient(),),
    finish=lambda passes, hp: cam.gradcam(*passes.block(hp["block"]), passes.images.shape[1:3]),
    spatial=True,
)
