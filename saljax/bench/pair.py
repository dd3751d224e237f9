"""PAIR ``saliency.core`` (the reference study's library) on saljax's models: its
``call_model_function`` adapter, shared by ``saljax bench`` and the tests, and PAIR's maps one
image at a time, as the study computed them."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import saljax.models as sm
import saljax.saliency as ss

METHODS = ("gradient", "smoothgrad", "integrated_gradients", "smoothgrad_ig", "gradcam", "xrai")


def available() -> bool:
    try:
        import saliency.core  # noqa: F401
    except ImportError:
        return False
    return True


def call_model(model, variables, block=None):
    """A PAIR ``call_model_function`` driving a saljax model: input gradients, the activation
    and gradient of ``block`` (default: the model's CAM block) and the target logit, each one
    jitted program per batch shape."""
    import saliency.core as sc

    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    block = block or model.default_cam_block

    @jax.jit
    def logits(x):
        return model.apply(v, x)

    @jax.jit
    def grad(x, t):
        return jax.grad(lambda x: jnp.take_along_axis(model.apply(v, x), t[:, None], 1).sum())(x)

    @jax.jit
    def cam(x, t):
        _, acts, grads = sm.block_gradients(
            model, v, x, [block], lambda z: jnp.take_along_axis(z, t[:, None], 1).sum())
        return acts[block], grads[block]

    def call(x, call_model_args=None, expected_keys=None):
        x = jnp.asarray(np.asarray(x, np.float32))
        t = jnp.full((x.shape[0],), call_model_args["target"], jnp.int32)
        out = {}
        if sc.INPUT_OUTPUT_GRADIENTS in expected_keys:
            out[sc.INPUT_OUTPUT_GRADIENTS] = np.asarray(grad(x, t))
        if sc.CONVOLUTION_LAYER_VALUES in expected_keys:
            a, g = cam(x, t)
            out[sc.CONVOLUTION_LAYER_VALUES] = np.asarray(a)
            out[sc.CONVOLUTION_OUTPUT_GRADIENTS] = np.asarray(g)
        if sc.OUTPUT_LAYER_VALUES in expected_keys:
            out[sc.OUTPUT_LAYER_VALUES] = np.asarray(
                jnp.take_along_axis(logits(x), t[:, None], 1)[:, 0])
        return out

    return call


def bench_pair(model, variables, images, method, hparams, batch_size):
    """Seconds per map for PAIR ``saliency.core``, one image at a time, as the study ran it."""
    import saliency.core as sc

    hp = {**ss.DEFAULTS[method], **hparams}
    call = call_model(model, variables, hp.get("block"))
    args = {"target": 0}
    base = lambda im: np.broadcast_to(np.float32(hp.get("baseline", 0.0)), im.shape).copy()
    fns = {
        "gradient": lambda im: sc.GradientSaliency().GetMask(im, call, args),
        "smoothgrad": lambda im: sc.GradientSaliency().GetSmoothedMask(
            im, call, args, stdev_spread=hp.get("stdev_spread", 0.15),
            nsamples=hp.get("nsamples", 25), magnitude=hp.get("magnitude", True)),
        "integrated_gradients": lambda im: sc.IntegratedGradients().GetMask(
            im, call, args, x_steps=hp["x_steps"], x_baseline=base(im), batch_size=batch_size),
        "smoothgrad_ig": lambda im: sc.IntegratedGradients().GetSmoothedMask(
            im, call, args, stdev_spread=hp["stdev_spread"], nsamples=hp["nsamples"],
            magnitude=hp["magnitude"], x_steps=hp["x_steps"], x_baseline=base(im),
            batch_size=batch_size),
        "gradcam": lambda im: sc.GradCam().GetMask(im, call, args, three_dims=False),
        "xrai": lambda im: sc.XRAI().GetMask(im, call, args, batch_size=batch_size,
                                             extra_parameters=sc.XRAIParameters(
                                                 steps=hp["steps"])),
    }
    ims = np.asarray(images)
    fns[method](ims[0])  # compiles the batch shapes PAIR uses
    start = time.perf_counter()
    for im in ims:
        fns[method](im)
    return (time.perf_counter() - start) / len(ims)


