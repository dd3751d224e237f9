"""Shared fixtures. Keras references run on the JAX backend with ``weights=None``; nothing downloads."""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_FLAGS", "")

import numpy as np
import pytest


def keras_reference(name: str, size: int, num_classes: int = 2, seed: int = 0):
    """A ``keras.applications`` model with random weights and non-trivial BatchNorm statistics.

    Fresh Keras BatchNorm layers are near the identity (mean 0, variance 1, no shift), which would
    let a wrong epsilon, a missing scale or a mixed-up statistic pass unnoticed, so every BN weight
    is perturbed with a fixed seed.
    """
    import keras

    keras.utils.set_random_seed(seed)
    ctor = {"inception_v3": keras.applications.InceptionV3,
            "densenet121": keras.applications.DenseNet121}[name]
    model = ctor(weights=None, input_shape=(size, size, 3), classes=num_classes,
                 classifier_activation=None)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            ws = layer.get_weights()
            *affine_and_mean, var = ws
            new = [w + rng.normal(0, 0.2, w.shape).astype(np.float32) for w in affine_and_mean]
            new.append(rng.uniform(0.5, 2.0, var.shape).astype(np.float32))
            layer.set_weights(new)
    return model


def random_images(n: int, size: int, seed: int = 1) -> np.ndarray:
    """Images in the study's input range [-1, 1], NHWC float32."""
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


@pytest.fixture(scope="session")
def keras_inception_96():
    return keras_reference("inception_v3", 96)


@pytest.fixture(scope="session")
def keras_densenet_96():
    return keras_reference("densenet121", 96)
