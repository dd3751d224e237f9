"""Flax classifiers faithful to ``keras.applications``, their named blocks and weight import;
the study's localization baselines (a U-Net, a RetinaNet detector)."""
from saljax.models.fold import fold_batchnorm
from saljax.models.init import check_variables, init
from saljax.models.keras_import import from_keras, imagenet_weights
from saljax.models.registry import (MODELS, block_names, calibrate_batch_stats, create,
                                    model_name, with_activation)
from saljax.models.taps import block_activations, block_gradients, tapped_forward

__all__ = ["MODELS", "create", "check_variables", "block_names", "calibrate_batch_stats",
           "model_name", "with_activation", "init", "from_keras", "imagenet_weights", "fold_batchnorm",
           "block_activations", "block_gradients", "tapped_forward"]
