"""GradCAM (Selvaraju et al., 2017; PAIR's ``GradCam``) at a named ``block`` (default: the
model's last conv block), resized to the image (``resize``: scikit-image's half-pixel bilinear,
or TF1's, as the study's PAIR 0.0.5), [B, H, W]."""
from saljax.saliency import cam
from saljax.saliency.method import BlockGradient, Method, block, one_of

METHOD = Method(
    name="gradcam",
    hparams={"block": block(), "resize": one_of("skimage", "tf1")},
    gradients=(BlockGradient(),),
    finish=lambda passes, hp: cam.gradcam(*passes.block(hp["block"]), passes.images.shape[1:3],
                                          hp["resize"]),
    spatial=True,
)
