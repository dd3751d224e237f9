"""``create(name, ...)`` and ``block_names(model)``: the models the study uses, by name."""
from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from saljax.models.densenet import BLOCKS, DenseNet
from saljax.models.inception import InceptionV3
from saljax.models.retinanet import RetinaNet
from saljax.models.unet import UNet

# name -> constructor of a Classifier (saljax.models.interface); add an architecture here
CLASSIFIERS = {"inception_v3": InceptionV3,
               **{name: functools.partial(DenseNet, blocks=blocks)
                  for name, blocks in BLOCKS.items()}}
SEGMENTERS = {"unet": UNet}
DETECTORS = {"retinanet": RetinaNet}
MODELS = tuple(CLASSIFIERS)


def create(name: str, *, num_classes: int = 2, width: float = 1.0, dtype=jnp.float32,
           act=nn.relu) -> nn.Module:
    """A Flax model by name: ``inception_v3``, ``densenet121/169/201`` (classifiers), ``unet``
    (segmenter), ``retinanet`` (detector).

    ``model.apply(variables, images)`` maps NHWC float images to [B, num_classes] float32 logits
    (inference BatchNorm); ``model.apply(variables, images, train=True, mutable=["batch_stats"])``
    trains. ``width`` scales every conv's channels, ``dtype`` is the compute dtype and ``act``
    replaces every ReLU.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    if name in CLASSIFIERS:
        return CLASSIFIERS[name](num_classes=num_classes, width=width, act=act, dtype=dtype)
    if name in SEGMENTERS or name in DETECTORS:
        return {**SEGMENTERS, **DETECTORS}[name](width=width, num_classes=num_classes,
                                                  dtype=dtype)
    raise ValueError(f"unknown model {name!r}; choose one of "
                     f"{', '.join(MODELS + tuple(SEGMENTERS) + tuple(DETECTORS))}")


def block_names(model: nn.Module) -> tuple[str, ...]:
    """Named blocks from the top (``logits``) to the bottom (the first stem conv).

    These are the top-level keys of ``variables["params"]``: the units layer randomization walks
    and that CAM methods target.
    """
    if not hasattr(model, "block_names"):
        raise TypeError(f"{type(model).__name__} is not a saljax classifier")
    return tuple(model.block_names())


def model_name(model: nn.Module) -> str:
    """The registry name of a model made by :func:`create`."""
    return model.name_in_registry


def with_activation(model: nn.Module, act) -> nn.Module:
    """The same model with every ReLU replaced by ``act`` (e.g. a guided ReLU); same variables."""
    return model.clone(act=act)


def calibrate_batch_stats(model: nn.Module, variables, images):
    """Variables whose BatchNorm running statistics are the batch statistics of ``images``.

    One training-mode pass with momentum 0: in inference mode the model then normalises every
    layer as it would normalise this batch (data-dependent initialisation). Parameters are kept.
    A randomly initialised network with identity statistics passes almost no signal through
    InceptionV3's 94 layers (its logits barely depend on the input); calibrated, it behaves like
    a trained one.
    """
    _, state = model.clone(bn_momentum=0.0).apply(
        {"params": variables["params"], "batch_stats": variables["batch_stats"]}, images,
        train=True, mutable=["batch_stats"])
    return {"params": variables["params"], "batch_stats": state["batch_stats"]}
