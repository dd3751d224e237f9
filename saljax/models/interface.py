"""What saljax needs of a classifier: :class:`Classifier`, followed by InceptionV3 and the
DenseNets (and by any Flax module you bring, e.g. the tests' small CNN).

Saliency methods, randomization, checkpoints and Keras import read only these attributes, so no
code outside a model's own file branches on its architecture.
"""
from __future__ import annotations

from typing import Callable, ClassVar, Protocol, runtime_checkable


@runtime_checkable
class Classifier(Protocol):
    """A Flax classifier: NHWC float images in [-1, 1] -> float32 logits [B, num_classes].

    * ``block_names()``: its named blocks from the top (``logits``) down: the top-level keys of
      ``variables["params"]``, each ending in :func:`saljax.models.layers.tap`, so that
      randomization re-draws a block by replacing one subtree and CAMs read a block's output;
    * ``default_cam_block``: the block GradCAM explains when none is named (the last conv block);
    * ``min_size``: the smallest image side it accepts;
    * ``name_in_registry``: its name for :func:`saljax.models.create` and checkpoints;
    * ``act``: every ReLU, replaced by :func:`saljax.models.with_activation` (Guided Backprop);
    * for Keras import: ``keras_application``, the ``keras.applications`` constructor of the
      same network (e.g. ``"InceptionV3"``), ``keras_explicit_names``, whether Keras names its
      layers itself (DenseNet's ``conv2_block1_1_conv``) rather than by creation counter, and
      ``keras_imagenet_notop``, the file Keras caches its ImageNet weights (no classifier) in;
    * for BatchNorm folding: ``fold_bn`` and ``bn_folds`` ({conv name: (BatchNorm name, eps)}).
    """
    num_classes: int
    act: Callable
    default_cam_block: ClassVar[str]
    min_size: ClassVar[int]

    @property
    def name_in_registry(self) -> str: ...

    def block_names(self) -> tuple[str, ...]: ...

    def __call__(self, x, train: bool = False): ...
