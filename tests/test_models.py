"""The Flax models against keras.applications with the same weights, block names and taps."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import saljax.models as sm
from conftest import keras_reference, random_images

# Flax named block -> the Keras layer whose output is that block's activation.
KERAS_LAYER_OF_BLOCK = {
    "inception_v3": {"mixed5": "mixed5", "mixed10": "mixed10", "mixed0": "mixed0"},
    "densenet121": {"conv3": "conv3_block12_concat", "pool4": "pool4_pool", "bn": "relu"},
}


def keras_outputs(km, layers):
    """A jitted Keras function: image -> (logits, outputs of ``layers``), inference mode."""
    import keras

    sub = keras.Model(km.inputs, [km.output] + [km.get_layer(n).output for n in layers])
    tv = [v.value for v in sub.trainable_variables]
    ntv = [v.value for v in sub.non_trainable_variables]
    return jax.jit(lambda x: sub.stateless_call(tv, ntv, x, training=False)[0])


def keras_logit_grad(km, x, target):
    """d logit[target] / d image through Keras's own stateless call."""
    tv = [v.value for v in km.trainable_variables]
    ntv = [v.value for v in km.non_trainable_variables]

    def f(x):
        return km.stateless_call(tv, ntv, x, training=False)[0][:, target].sum()

    return np.asarray(jax.jit(jax.grad(f))(jnp.asarray(x)))


def assert_gradients_close(grad, ref, rtol=1e-3):
    """Input gradients agree to ``rtol`` in norm, and everywhere to 1% of the map's peak.

    Elementwise ``rtol`` alone is not a fair test of a 100-layer float32 gradient: where a
    pre-activation sits within rounding of zero, the two implementations' ReLUs may differ, which
    moves a few near-zero entries by ~0.4% of the peak while the map as a whole agrees to 1e-3.
    """
    grad, ref = np.asarray(grad), np.asarray(ref)
    assert np.abs(ref).max() > 0
    assert np.linalg.norm(grad - ref) <= rtol * np.linalg.norm(ref)
    np.testing.assert_allclose(grad, ref, rtol=rtol, atol=1e-2 * np.abs(ref).max())


def check_parity(name, km, size, blocks, n=2):
    variables = sm.from_keras(name, km)
    model = sm.create(name)
    x = random_images(n, size)
    logits, acts = jax.jit(lambda v, x: sm.block_activations(model, v, x, blocks))(variables, x)
    ref_logits, *ref_acts = keras_outputs(km, [KERAS_LAYER_OF_BLOCK[name][b] for b in blocks])(x)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-5)
    for block, ref in zip(blocks, ref_acts):
        np.testing.assert_allclose(acts[block], ref, rtol=1e-4, atol=1e-5,
                                   err_msg=f"{name} block {block}")
    grad = jax.jit(jax.grad(lambda x: model.apply(variables, x)[:, 1].sum()))(x)
    assert_gradients_close(grad, keras_logit_grad(km, x, 1))


@pytest.mark.parametrize("name", ["inception_v3", "densenet121"])
def test_flax_equals_keras_at_96(name, keras_inception_96, keras_densenet_96):
    km = keras_inception_96 if name == "inception_v3" else keras_densenet_96
    check_parity(name, km, 96, list(KERAS_LAYER_OF_BLOCK[name])[:2])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inception_v3", "densenet121"])
def test_flax_equals_keras_at_320(name):
    check_parity(name, keras_reference(name, 320), 320, list(KERAS_LAYER_OF_BLOCK[name])[1:], n=1)


def test_inception_block_names_top_to_bottom():
    model = sm.create("inception_v3", width=0.125)
    names = sm.block_names(model)
    assert names[:3] == ("logits", "mixed10", "mixed9")
    assert names[names.index("mixed0") + 1:] == (
        "stem_4a_3x3", "stem_3b_1x1", "stem_2b_3x3", "stem_2a_3x3", "stem_1a_3x3")
    assert len(names) == 1 + 11 + 5


@pytest.mark.parametrize("name", ["inception_v3", "densenet121", "densenet169"])
def test_every_block_name_resolves_to_parameters(name):
    model = sm.create(name, width=0.125)
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 96, 96, 3)))
    names = sm.block_names(model)
    assert set(names) == set(variables["params"])  # each block owns parameters, nothing is left out
    for block in names:
        assert jax.tree.leaves(variables["params"][block])


def test_first_stem_conv_is_the_bottom_block():
    model = sm.create("inception_v3", width=0.125)
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 96, 96, 3)))
    assert variables["params"]["stem_1a_3x3"]["conv"]["kernel"].shape[:3] == (3, 3, 3)
    dn = sm.create("densenet121", width=0.125)
    assert sm.block_names(dn)[-1] == "conv1"


@pytest.mark.parametrize("name", ["inception_v3", "densenet121"])
def test_activation_replaces_every_relu(name, keras_inception_96, keras_densenet_96):
    """``with_activation`` reaches every ReLU Keras has, and nothing else."""
    km = keras_inception_96 if name == "inception_v3" else keras_densenet_96
    keras_relus = sum(getattr(layer, "activation", None) is not None
                      and getattr(layer.activation, "__name__", "") == "relu"
                      and type(layer).__name__ == "Activation" for layer in km.layers)
    calls = []

    def counting_relu(x):
        calls.append(x.shape)
        return jax.nn.relu(x)

    model = sm.with_activation(sm.create(name, width=0.125), counting_relu)
    jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 96, 96, 3)))
    assert len(calls) == keras_relus > 90


def test_block_gradient_at_top_conv_block_is_the_head_weight():
    """Below GAP + Dense, d logit_k / d A[i, j, c] = W[c, k] / (h * w) at every position."""
    model = sm.create("inception_v3", width=0.125)
    v = sm.init(model, jax.random.key(0))
    x = random_images(3, 96)
    fn = jax.jit(lambda v, x: sm.block_gradients(model, v, x, ["mixed10", "logits"],
                                                 lambda z: z[:, 1].sum()))
    logits, acts, grads = fn(v, x)
    h, w = acts["mixed10"].shape[1:3]
    expected = np.broadcast_to(np.asarray(v["params"]["logits"]["kernel"][:, 1]) / (h * w),
                               acts["mixed10"].shape)
    np.testing.assert_allclose(grads["mixed10"], expected, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(grads["logits"], np.tile([0.0, 1.0], (3, 1)))
    np.testing.assert_allclose(logits, jax.jit(model.apply)(v, x), rtol=1e-6)


def test_taps_work_under_vmap_and_match_unbatched():
    model = sm.create("densenet121", width=0.125)
    v = sm.init(model, jax.random.key(0))
    x = random_images(4, 64)

    def one(image):
        _, _, g = sm.block_gradients(model, v, image[None], ["conv4"], lambda z: z[0, 0])
        return g["conv4"][0]

    batched = jax.jit(jax.vmap(one))(x)
    _, _, g = jax.jit(lambda x: sm.block_gradients(model, v, x, ["conv4"],
                                                   lambda z: z[:, 0].sum()))(x)
    np.testing.assert_allclose(batched, g["conv4"], rtol=1e-5, atol=1e-7)
    assert np.abs(g["conv4"]).max() > 0


def test_training_updates_the_batch_stats_that_inference_uses():
    model = sm.create("densenet121", width=0.125)
    v = sm.init(model, jax.random.key(0))
    x = random_images(4, 64)
    _, upd = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(v, x)
    before = jax.tree.leaves(v["batch_stats"])
    after = jax.tree.leaves(upd["batch_stats"])
    assert all(a.shape == b.shape for a, b in zip(after, before))
    assert any(not np.allclose(a, b) for a, b in zip(after, before))
    apply = jax.jit(model.apply)
    assert not np.allclose(apply(v, x), apply({"params": v["params"], **upd}, x))


def test_bfloat16_compute_keeps_float32_parameters_and_logits():
    x = random_images(2, 80)
    f32 = sm.create("inception_v3", width=0.25)
    bf16 = sm.create("inception_v3", width=0.25, dtype=jnp.bfloat16)
    v = sm.init(f32, jax.random.key(0))
    assert {leaf.dtype for leaf in jax.tree.leaves(jax.eval_shape(bf16.init, jax.random.key(0), x))
            } == {jnp.dtype(jnp.float32)}
    lo, hi = jax.jit(f32.apply)(v, x), jax.jit(bf16.apply)(v, x)
    assert hi.dtype == jnp.float32
    np.testing.assert_allclose(hi, lo, rtol=0.1, atol=0.05 * float(np.abs(lo).max()))


@pytest.mark.parametrize("name,shape,message", [
    ("inception_v3", (2, 96, 96), "rank 4"),
    ("inception_v3", (2, 96, 96, 1), "3 channels"),
    ("inception_v3", (1, 74, 96, 3), "at least 75"),
    ("densenet121", (1, 31, 31, 3), "at least 32"),
])
def test_bad_images_are_clear_errors(name, shape, message):
    model = sm.create(name, width=0.125)
    with pytest.raises(ValueError, match=message):
        jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape))


def test_unknown_model_and_block_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        sm.create("resnet50")
    model = sm.create("inception_v3", width=0.125)
    v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
    with pytest.raises(ValueError, match="unknown block 'mixed11'.*mixed10"):
        sm.block_activations(model, v, jnp.zeros((1, 75, 75, 3)), ["mixed11"])


def test_width_scales_channels_and_keeps_blocks():
    full = jax.eval_shape(sm.create("densenet121").init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    small = jax.eval_shape(sm.create("densenet121", width=0.25).init, jax.random.key(0),
                           jnp.zeros((1, 32, 32, 3)))
    assert set(full["params"]) == set(small["params"])
    assert full["params"]["conv1"]["conv"]["kernel"].shape == (7, 7, 3, 64)
    assert small["params"]["conv1"]["conv"]["kernel"].shape == (7, 7, 3, 16)


def test_init_draws_keras_glorot_uniform_and_constants():
    model = sm.create("inception_v3", width=0.25)
    v = sm.init(model, jax.random.key(0))
    reference = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
    assert jax.tree.structure(v) == jax.tree.structure(reference)
    k = np.asarray(v["params"]["mixed9"]["branch1x1"]["conv"]["kernel"])  # 1x1, 512 -> 80 at 0.25
    limit = np.sqrt(6 / (k.shape[2] + k.shape[3]))
    assert np.abs(k).max() <= limit
    np.testing.assert_allclose(k.std(), limit / np.sqrt(3), rtol=0.02)
    assert np.all(np.asarray(v["batch_stats"]["mixed0"]["branch1x1"]["bn"]["var"]) == 1)
    assert np.all(np.asarray(v["params"]["logits"]["bias"]) == 0)
    other = sm.init(model, jax.random.key(1))
    assert not np.allclose(other["params"]["logits"]["kernel"], v["params"]["logits"]["kernel"])


def _jittered_stats(variables, rng):
    """Variables with BatchNorm shifts, means and variances away from their initial constants."""
    def jitter(path, t):
        name = path[-1].key
        if name in ("mean", "bias"):
            return t + rng.uniform(-0.3, 0.3, t.shape).astype(np.float32)
        if name in ("var", "scale"):
            return t * rng.uniform(0.3, 2.0, t.shape).astype(np.float32)
        return t
    return jax.tree_util.tree_map_with_path(jitter, variables)


@pytest.mark.parametrize("name,size,left", [("inception_v3", 96, 0), ("densenet", 64, 12)])
def test_fold_batchnorm_keeps_logits_and_input_gradients(name, size, left):
    """Folded models compute the same logits and input gradients. A smooth activation (softplus)
    keeps ReLU kinks from turning float rounding into discrete gradient flips; the calibrated
    94-layer InceptionV3 still amplifies rounding to ~1e-4 (a 1e-7 weight perturbation moves
    its ReLU logits by more than folding does). The DenseNet is a short one (2 layers per dense
    block: 21 BatchNorms, 9 of them right after a conv)."""
    from saljax.models.densenet import DenseNet

    model = (sm.create(name, width=0.25, act=jax.nn.softplus) if name == "inception_v3" else
             DenseNet(blocks=(2, 2, 2, 2), width=0.25, act=jax.nn.softplus))
    rng = np.random.default_rng(1)
    calib = jnp.asarray(rng.uniform(-1, 1, (8, size, size, 3)), jnp.float32)
    v = sm.calibrate_batch_stats(model, _jittered_stats(sm.init(model, jax.random.key(1)), rng),
                                 calib)
    x = calib[:2]
    folded = model.clone(fold_bn=True)
    fv = jax.jit(lambda v: sm.fold_batchnorm(model, v)[1])(v)  # traceable
    n_stats = lambda t: len(jax.tree.leaves(t)) // 2
    assert n_stats(fv.get("batch_stats", {})) == left < n_stats(v["batch_stats"])
    assert folded.fold_bn and not model.fold_bn

    @jax.jit
    def logits_and_grads(v, fv):
        out = []
        for m, variables in ((model, v), (folded, fv)):
            logits, vjp = jax.vjp(lambda x: m.apply(variables, x), x)
            out.append((logits, vjp(jnp.ones_like(logits).at[:, 1].set(0))[0]))
        return out

    (a, ga), (b, gb) = logits_and_grads(v, fv)
    tol = 3e-4 if name == "inception_v3" else 2e-5
    assert float(jnp.max(jnp.abs(a - b))) <= tol * float(jnp.max(jnp.abs(a)))
    assert float(jnp.max(jnp.abs(ga - gb))) <= 5 * tol * float(jnp.max(jnp.abs(ga)))


def test_fold_batchnorm_errors_name_the_problem():
    from saljax.models.densenet import DenseNet

    small = DenseNet(blocks=(1, 1, 1, 1), width=0.25)
    v = sm.init(small.clone(width=0.5), jax.random.key(0))
    with pytest.raises(ValueError, match="do not fit DenseNet"):
        sm.fold_batchnorm(small, v)
    folded, fv = sm.fold_batchnorm(small, sm.init(small, jax.random.key(0)))
    with pytest.raises(ValueError, match="already folded"):
        sm.fold_batchnorm(folded, fv)
    with pytest.raises(ValueError, match="inference-only"):
        folded.apply(fv, jnp.zeros((1, 32, 32, 3)), train=True, mutable=["batch_stats"])


def test_every_architecture_declares_the_model_protocol():
    """What saliency, randomization and Keras import read of a model, declared by each one."""
    from saljax.models.interface import Classifier
    for name in sm.MODELS:
        model = sm.create(name, width=0.125)
        assert isinstance(model, Classifier), name
        assert model.name_in_registry == name
        assert model.default_cam_block in sm.block_names(model)
        assert model.keras_application.lower() == name.replace("_", "")
    assert not isinstance(sm.create("unet", num_classes=1), Classifier)   # a segmenter
