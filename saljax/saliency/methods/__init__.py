"""The saliency methods, one module each, whose ``METHOD`` is the method's record
(:class:`saljax.saliency.method.Method`).

To add a method: write ``methods/<name>.py`` defining ``METHOD = Method(name="<name>", ...)`` and
add ``"<name>"`` to ``MODULES``; everything that lists methods reads :data:`METHODS`.
"""
import importlib

MODULES = ("gradient", "smoothgrad", "integrated_gradients", "smoothgrad_ig", "guided_backprop",
           "gradcam", "guided_gradcam", "xrai", "input_x_gradient", "vargrad",
           "gradcam_plus_plus", "occlusion", "blur_ig", "deconvnet",
           "null_image", "null_edge", "null_blob", "null_noise")

METHODS = {m.name: m for m in (importlib.import_module(f"{__name__}.{module}").METHOD
                               for module in MODULES)}
