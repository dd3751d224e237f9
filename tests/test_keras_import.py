"""Weight import from every Keras file layout, matched by structure, with clear errors."""
import json
import re

import h5py
import jax
import numpy as np
import pytest

import saljax.models as sm
from saljax.models.keras_import import KerasImportError
from conftest import random_images

AUTO = re.compile(r"^(conv2d|batch_normalization|activation|max_pooling2d|average_pooling2d"
                  r"|concatenate|input_layer|dense|global_average_pooling2d)(?:_(\d+))?$")


def keras2_name(name: str, slash_names: bool) -> str:
    """Keras 2 numbering (``conv2d`` -> ``conv2d_1``) and, optionally, Keras 2's DenseNet names
    (``conv1_conv`` -> ``conv1/conv``, ``conv2_block1_0_bn`` unchanged)."""
    m = AUTO.match(name)
    if m:
        return f"{m.group(1)}_{int(m.group(2) or 0) + 1}"
    if slash_names and name in ("conv1_conv", "conv1_bn", "conv1_relu"):
        return name.replace("conv1_", "conv1/")
    return name


def inbound(layer):
    """Names of the layers feeding ``layer``, from the Keras 3 object graph."""
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return [t._keras_history[0].name for t in inputs]


def write_keras2_h5(km, path, *, with_config=True, top=True, slash_names=False):
    """A legacy .h5 file as Keras 2 wrote it: renumbered names, old-style inbound nodes,
    ``:0`` weight names; weights-only (no model_config) when ``with_config`` is False."""
    layers = [l for l in km.layers if top or l.name not in ("avg_pool", "predictions")]
    rename = {l.name: keras2_name(l.name, slash_names) for l in layers}
    with h5py.File(path, "w") as f:
        group = f.create_group("model_weights") if with_config else f
        group.attrs["layer_names"] = [rename[l.name].encode() for l in layers]
        for layer in layers:
            g = group.create_group(rename[layer.name])
            names = [f"{rename[layer.name]}/{w.path.split('/')[-1]}:0" for w in layer.weights]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, w in zip(names, layer.get_weights()):
                g.create_dataset(n, data=w)
        if with_config:
            cfg = {"class_name": "Model", "config": {
                "name": km.name,
                "layers": [{"name": rename[l.name], "class_name": type(l).__name__, "config": {},
                            "inbound_nodes": [] if type(l).__name__ == "InputLayer" else
                            [[[rename[n], 0, 0, {}] for n in inbound(l)]]} for l in layers],
                "input_layers": [[rename[layers[0].name], 0, 0]],
                "output_layers": [[rename[layers[-1].name], 0, 0]]}}
            f.attrs["model_config"] = json.dumps(cfg).encode()


def assert_same_variables(a, b, skip=()):
    fa = {k: v for k, v in jax.tree_util.tree_flatten_with_path(a)[0]}
    fb = {k: v for k, v in jax.tree_util.tree_flatten_with_path(b)[0]}
    assert fa.keys() == fb.keys()
    for k in fa:
        if not any(s in jax.tree_util.keystr(k) for s in skip):
            np.testing.assert_array_equal(fa[k], fb[k], err_msg=jax.tree_util.keystr(k))


@pytest.fixture(scope="module")
def inception_ref(keras_inception_96):
    return sm.from_keras("inception_v3", keras_inception_96)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".keras"])
def test_keras3_files_round_trip(suffix, keras_inception_96, inception_ref, tmp_path):
    path = tmp_path / f"model{suffix}"
    (keras_inception_96.save_weights if suffix == ".weights.h5" else keras_inception_96.save)(path)
    variables = sm.from_keras("inception_v3", path)
    assert_same_variables(variables, inception_ref)
    x = random_images(2, 96)
    np.testing.assert_allclose(jax.jit(sm.create("inception_v3").apply)(variables, x),
                               np.asarray(keras_inception_96(x, training=False)), rtol=1e-4,
                               atol=1e-5)


def test_keras2_whole_model_h5_matches_by_structure(keras_inception_96, inception_ref, tmp_path):
    path = tmp_path / "keras2.h5"
    write_keras2_h5(keras_inception_96, path)
    with h5py.File(path) as f:  # really the Keras 2 numbering, which differs from Keras 3's
        assert "conv2d_1" in f["model_weights"] and "conv2d" not in f["model_weights"]
    assert_same_variables(sm.from_keras("inception_v3", path), inception_ref)


def test_keras2_notop_weights_file_needs_a_key_for_the_head(keras_inception_96, inception_ref,
                                                            tmp_path):
    path = tmp_path / "inception_v3_weights_notop.h5"
    write_keras2_h5(keras_inception_96, path, with_config=False, top=False)
    with pytest.raises(KerasImportError, match="pass key="):
        sm.from_keras("inception_v3", path)
    variables = sm.from_keras("inception_v3", path, key=jax.random.key(0))
    assert_same_variables(variables, inception_ref, skip=("'logits'",))
    assert variables["params"]["logits"]["kernel"].shape == (2048, 2)


def test_densenet_keras2_names_with_slashes(keras_densenet_96, tmp_path):
    reference = sm.from_keras("densenet121", keras_densenet_96)
    for with_config in (True, False):
        path = tmp_path / f"densenet_{with_config}.h5"
        write_keras2_h5(keras_densenet_96, path, with_config=with_config, slash_names=True)
        assert_same_variables(sm.from_keras("densenet121", path), reference)


def test_another_architecture_is_a_clear_error(keras_densenet_96, tmp_path):
    path = tmp_path / "densenet.weights.h5"
    keras_densenet_96.save_weights(path)
    with pytest.raises(KerasImportError, match="120 Conv2D layers where inception_v3 has 94"):
        sm.from_keras("inception_v3", path)
    with pytest.raises(KerasImportError, match="another architecture"):
        sm.from_keras("inception_v3", keras_densenet_96)


def test_missing_and_misshaped_layers_are_named(keras_inception_96, tmp_path):
    path = tmp_path / "model.weights.h5"
    keras_inception_96.save_weights(path)
    with pytest.raises(KerasImportError, match=r"'predictions'.*kernel has shape \(2048, 2\), "
                                               r"expected \(2048, 3\)"):
        sm.from_keras("inception_v3", path, num_classes=3)
    with h5py.File(path, "a") as f:
        del f["layers/batch_normalization_40"]
    with pytest.raises(KerasImportError, match=r"stores 93 BatchNormalization layers where "
                                               r"inception_v3 has 94 \(missing: "
                                               r"\['batch_normalization_40'\]\)"):
        sm.from_keras("inception_v3", path)


def test_unreadable_sources_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Keras weights"):
        sm.from_keras("inception_v3", tmp_path / "nope.h5")
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(KerasImportError, match="not a Keras weights file"):
        sm.from_keras("inception_v3", path)
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(KerasImportError, match="not a readable Keras file"):
        sm.from_keras("inception_v3", tmp_path / "broken.keras")
