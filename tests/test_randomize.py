"""Layer randomization: exactly the chosen blocks change, draws follow the key, vmap = loop."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import saljax.models as sm
from saljax import randomize
from conftest import SmallCNN, smooth_images


def moved_off_init(variables, seed=0):
    """'Trained' variables: every leaf moved off its initial value, so a re-initialised leaf
    always differs from it."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: a + rng.uniform(0.05, 0.1, a.shape).astype(np.float32),
                        variables)


@pytest.fixture(scope="module")
def trained():
    """InceptionV3 (17 blocks) with 'trained' variables."""
    model = sm.create("inception_v3", width=0.125)
    return model, moved_off_init(sm.init(model, jax.random.key(0)))


@pytest.fixture(scope="module")
def deep_cnn():
    """A 12-block CNN with BatchNorm (11 conv blocks and the logits): quick to compile."""
    model = SmallCNN(channels=(8,) * 11, norm=True)
    v = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    return model, moved_off_init(v)


def block_changes(model, a, b):
    """Per named block: (every leaf differs, some leaf differs), computed on the device."""
    out = []
    for block in sm.block_names(model):
        diffs = [jnp.any(x != y) for x, y in zip(
            jax.tree.leaves({c: a[c].get(block, {}) for c in a}),
            jax.tree.leaves({c: b[c].get(block, {}) for c in b}))]
        out.append(jnp.stack([jnp.all(jnp.stack(diffs)), jnp.any(jnp.stack(diffs))]))
    return jnp.stack(out)


def changed_blocks(model, a, b):
    flags = np.asarray(jax.jit(lambda a, b: block_changes(model, a, b))(a, b))
    assert np.all(flags[:, 0] == flags[:, 1]), "a block is only partly randomized"
    return flags[:, 0].tolist()


def test_cascading_level_k_changes_exactly_the_top_k_blocks(trained):
    model, v = trained
    n = len(sm.block_names(model))
    levels = jnp.arange(n + 1)
    key = jax.random.key(1)
    swept = jax.jit(jax.vmap(lambda l: randomize.cascading(model, v, key, l)))(levels)
    flags = np.asarray(jax.jit(jax.vmap(lambda s: block_changes(model, v, s)))(swept))
    assert np.all(flags[..., 0] == flags[..., 1]), "a block is only partly randomized"
    for k in range(n + 1):
        assert flags[k, :, 0].tolist() == [i < k for i in range(n)], k
    # vmap over levels equals one call per level
    single = jax.jit(lambda l: randomize.cascading(model, v, key, l))
    for k in (0, 1, 5, 11, n):
        one = single(k)
        same = jax.tree.map(lambda a, b: jnp.array_equal(a[k], b), swept, one)
        assert all(bool(x) for x in jax.tree.leaves(same)), k
    # successive levels nest: level 3's first two blocks are level 2's
    for block in sm.block_names(model)[:2]:
        same = jax.tree.map(lambda a: jnp.array_equal(a[2], a[3]), swept["params"][block])
        assert all(bool(x) for x in jax.tree.leaves(same))


def test_twelve_levels_in_one_vmap_equal_twelve_calls(deep_cnn):
    model, v = deep_cnn
    key = jax.random.key(5)
    swept = jax.jit(jax.vmap(lambda l: randomize.cascading(model, v, key, l)))(jnp.arange(12))
    single = jax.jit(lambda l: randomize.cascading(model, v, key, l))
    for k in range(12):
        one = single(k)
        for a, b in zip(jax.tree.leaves(swept), jax.tree.leaves(one)):
            np.testing.assert_array_equal(a[k], b)
        assert changed_blocks(model, v, one) == [i < k for i in range(12)]


def test_independent_changes_only_its_block(deep_cnn):
    model, v = deep_cnn
    n = len(sm.block_names(model))
    for index in (0, 5, n - 1):
        out = jax.jit(lambda i: randomize.independent(model, v, jax.random.key(2), i))(index)
        assert changed_blocks(model, v, out) == [i == index for i in range(n)]


def test_different_keys_give_independent_draws(trained):
    model, v = trained
    cascade = jax.jit(lambda k: randomize.cascading(model, v, k, 3))
    a, b = cascade(jax.random.key(1)), cascade(jax.random.key(2))
    ka = np.asarray(a["params"]["mixed10"]["branch3x3dbl_1"]["conv"]["kernel"]).ravel()
    kb = np.asarray(b["params"]["mixed10"]["branch3x3dbl_1"]["conv"]["kernel"]).ravel()
    assert ka.size > 10_000 and abs(np.corrcoef(ka, kb)[0, 1]) < 0.05
    shape = a["params"]["mixed10"]["branch3x3dbl_1"]["conv"]["kernel"].shape
    assert np.abs(ka).max() <= np.sqrt(6 / (shape[2] + shape[3]))  # re-drawn by Glorot-uniform


def test_modes_and_batchnorm_policies(deep_cnn):
    model, v = deep_cnn
    key = jax.random.key(3)
    conv = ("conv11", "conv", "kernel")            # level 2: logits and conv11
    bn_bias, bn_mean = ("conv11", "bn", "bias"), ("conv11", "bn", "mean")

    def get(tree, col, path):
        node = tree[col]
        for p in path:
            node = node[p]
        return np.asarray(node)

    cascade = jax.jit(randomize.cascading, static_argnums=0, static_argnames=("mode", "bn"))
    perm = cascade(model, v, key, 2, mode="permute", bn="keep")
    k0, k1 = get(v, "params", conv), get(perm, "params", conv)
    assert not np.array_equal(k0, k1)
    np.testing.assert_array_equal(np.sort(k0.ravel()), np.sort(k1.ravel()))
    np.testing.assert_array_equal(get(perm, "params", bn_bias), get(v, "params", bn_bias))
    np.testing.assert_array_equal(get(perm, "batch_stats", bn_mean), get(v, "batch_stats", bn_mean))

    reinit = cascade(model, v, key, 2)                          # bn="reinit": identity BN
    assert np.all(get(reinit, "params", bn_bias) == 0)
    assert np.all(get(reinit, "batch_stats", bn_mean) == 0)
    stats = cascade(model, v, key, 2, bn="keep_stats")
    assert np.all(get(stats, "params", bn_bias) == 0)
    np.testing.assert_array_equal(get(stats, "batch_stats", bn_mean), get(v, "batch_stats", bn_mean))
    with pytest.raises(ValueError, match="bn must be one of"):
        randomize.cascading(model, v, key, 1, bn="identity")
    with pytest.raises(ValueError, match="mode must be one of"):
        randomize.cascading(model, v, key, 1, mode="shuffle")


def test_randomized_models_run_and_change_the_logits(deep_cnn):
    model, v = deep_cnn
    x = jnp.asarray(smooth_images(2, 32))
    full = randomize.cascading(model, v, jax.random.key(4), len(sm.block_names(model)))
    assert not np.allclose(jax.jit(model.apply)(v, x), jax.jit(model.apply)(full, x))
