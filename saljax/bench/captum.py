"""The PyTorch reference for ``saljax bench``: captum on torchvision's InceptionV3.

What many researchers run today: captum's attribution classes on a torchvision model, a batch of
images at a time. Used only where ``torch``, ``torchvision`` and ``captum`` import (none is a
saljax dependency). Random weights (no download), evaluation mode, float32, NCHW; the same
methods, sample counts and path steps as saljax's study presets, so passes per map match.
"""
from __future__ import annotations

import time

import numpy as np

# saljax method -> what captum computes for it
METHODS = ("gradient", "smoothgrad", "integrated_gradients", "guided_backprop", "gradcam")


def available() -> bool:
    try:
        import captum.attr  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except Exception:  # ImportError, or a broken binary install
        return False
    return True


def model(num_classes: int = 2, seed: int = 0):
    """torchvision InceptionV3 with random weights in evaluation mode (no auxiliary head)."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True,
                                          num_classes=num_classes)
    return net.eval()


def attribution(net, method: str, hparams: dict, max_batch: int):
    """``f(images [B, 3, H, W] tensor, target int) -> attributions`` for one method."""
    from captum import attr

    if method == "gradient":
        sal = attr.Saliency(net)
        return lambda x, t: sal.attribute(x, target=t, abs=False)
    if method == "smoothgrad":
        tunnel = attr.NoiseTunnel(attr.Saliency(net))

        def smoothgrad(x, t):
            # PAIR's noise scale: stdev_spread x (max - min) of the batch
            sd = float(hparams["stdev_spread"] * (x.max() - x.min()))
            return tunnel.attribute(x, target=t, abs=False,
                                    nt_type="smoothgrad_sq" if hparams["magnitude"]
                                    else "smoothgrad",
                                    nt_samples=hparams["nsamples"], stdevs=sd,
                                    nt_samples_batch_size=max(1, max_batch // x.shape[0]))
        return smoothgrad
    if method == "integrated_gradients":
        ig = attr.IntegratedGradients(net)
        return lambda x, t: ig.attribute(x, baselines=float(hparams["baseline"]), target=t,
                                         n_steps=hparams["x_steps"],
                                         method="riemann_trapezoid",
                                         internal_batch_size=max_batch)
    if method == "guided_backprop":
        gbp = attr.GuidedBackprop(net)
        return lambda x, t: gbp.attribute(x, target=t)
    if method == "gradcam":
        cam = attr.LayerGradCam(net, net.Mixed_7c)
        return lambda x, t: attr.LayerAttribution.interpolate(
            cam.attribute(x, target=t, relu_attributions=True), x.shape[2:], "bilinear")
    raise ValueError(f"no captum reference for {method!r}; captum runs {', '.join(METHODS)}")


def measure(method: str, hparams: dict, images: np.ndarray, max_batch: int,
            reps: int = 1) -> dict:
    """Time captum's ``method`` on ``images`` [B, H, W, 3] (NHWC, as saljax takes them;
    transposed to NCHW) on the first CUDA device if there is one, else the CPU, after one
    untimed call. Returns ``seconds_per_map``, ``passes_per_map`` (model input rows per map,
    counted by a forward hook during the untimed call) and ``device``."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    net = model().to(device)
    fn = attribution(net, method, hparams, max_batch)
    x = torch.from_numpy(np.ascontiguousarray(np.transpose(images, (0, 3, 1, 2)))).float()
    x = x.to(device)
    rows = []
    hook = net.register_forward_pre_hook(lambda _, args: rows.append(args[0].shape[0]))
    fn(x, 0)
    hook.remove()
    sync()
    start = time.perf_counter()
    for _ in range(reps):
        fn(x, 0)
    sync()
    seconds = (time.perf_counter() - start) / (reps * len(images))
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return {"seconds_per_map": seconds, "passes_per_map": sum(rows) / len(images),
            "device": name}
