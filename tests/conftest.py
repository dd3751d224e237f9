"""Shared fixtures. Keras references run on the JAX backend with ``weights=None``; nothing downloads."""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_FLAGS", "")
# Identical computations built by different closures (the same model pass in many tests)
# compile once per session: XLA's persistent cache keys on the program, not the Python function.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(os.path.expanduser("~"), ".cache", "saljax-test-xla"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

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


# ----------------------------------------------------------------------------- a small CNN
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from saljax.models.layers import BatchNorm, Head, tap  # noqa: E402


class _ConvBlock(nn.Module):
    features: int
    strides: int = 1
    act: object = nn.relu
    norm: bool = False

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.Conv(self.features, (3, 3), (self.strides, self.strides), name="conv")(x)
        if self.norm:
            x = BatchNorm(name="bn")(x, train)
        return tap(self, self.act(x))


class SmallCNN(nn.Module):
    """A small ReLU CNN that follows the saljax model protocol (named, tapped blocks): one block
    ``conv<i>`` per entry of ``channels`` (the second with stride 2), then ``logits``."""
    num_classes: int = 3
    act: object = nn.relu
    dtype: object = jnp.float32
    channels: tuple = (8, 16, 16)
    norm: bool = False
    bn_momentum: float = 0.99

    name_in_registry = "small_cnn"
    default_cam_block = "conv3"
    min_size = 8

    def block_names(self):
        return ("logits",) + tuple(f"conv{i}" for i in range(len(self.channels), 0, -1))

    @nn.compact
    def __call__(self, x, train: bool = False):
        for i, c in enumerate(self.channels):
            x = _ConvBlock(c, 2 if i == 1 else 1, self.act, self.norm, name=f"conv{i + 1}")(
                x, train)
        return Head(self.num_classes, name="logits")(x)


def smooth_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Structured images in [-1, 1] (smooth blobs plus noise), so XRAI has real segments."""
    from saljax.bench import pattern_images
    return pattern_images(np.random.default_rng(seed), n, size)


def pair_call_model(model, variables, block=None):
    """A PAIR ``call_model_function`` driving a saljax model (the adapter ``saljax bench`` uses)."""
    from saljax.bench.pair import call_model
    return call_model(model, variables, block)


@pytest.fixture(scope="session")
def small_cnn():
    model = SmallCNN()
    variables = jax.jit(model.init)(jax.random.key(7), jnp.zeros((1, 32, 32, 3)))
    # Flax starts biases at 0, so at a constant image (an IG baseline) every unit of a random
    # bias-free net can be dead and every map 0; random biases keep the maps informative.
    rng = np.random.default_rng(7)
    return model, jax.tree_util.tree_map_with_path(
        lambda path, a: a + rng.normal(0, 0.2, a.shape).astype(np.float32)
        if path[-1].key == "bias" else a, variables)


@pytest.fixture(scope="session")
def inception_small():
    """The saljax InceptionV3 at width 0.25 with random weights (the CPU-sized study model)."""
    import saljax.models as sm

    model = sm.create("inception_v3", width=0.25)
    return model, sm.init(model, jax.random.key(3))
