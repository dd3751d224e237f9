"""Saliency methods: references without PAIR, pass sharing, randomness, chunking, cost, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saliency.core as sc
from jax import lax
from skimage.transform import resize

import saljax.models as sm
import saljax.saliency as ss
from conftest import SmallCNN, pair_call_model, smooth_images


def guided_backprop_reference(variables, image, target):
    """Guided Backprop through SmallCNN written out layer by layer: every ReLU's backward pass
    keeps a gradient only where its input and the incoming gradient are both positive."""
    p = variables["params"]

    def conv(x, layer, stride):
        k, b = p[layer]["conv"]["kernel"], p[layer]["conv"]["bias"]
        return lax.conv_general_dilated(x, k, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC")) + b

    x = jnp.asarray(image)[None]
    pre, vjps, h = [], [], x
    for layer, stride in (("conv1", 1), ("conv2", 2), ("conv3", 1)):
        z, vjp = jax.vjp(lambda a, layer=layer, stride=stride: conv(a, layer, stride), h)
        pre.append(z)
        vjps.append(vjp)
        h = jnp.maximum(z, 0)
    hw = h.shape[1] * h.shape[2]
    g = jnp.broadcast_to(p["logits"]["kernel"][:, target] / hw, h.shape)
    for z, vjp in zip(pre[::-1], vjps[::-1]):
        g = jnp.where((z > 0) & (g > 0), g, 0.0)
        (g,) = vjp(g)
    return np.asarray(g[0])


def test_guided_backprop_equals_the_layer_by_layer_rule(small_cnn):
    model, v = small_cnn
    x = smooth_images(3, 32)
    t = np.array([0, 1, 2])
    ours = np.asarray(ss.make("guided_backprop", model)(v, x, t))
    ref = np.stack([guided_backprop_reference(v, im, k) for im, k in zip(x, t)])
    assert np.abs(ref).max() > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    plain = np.asarray(ss.make("gradient", model)(v, x, t))
    assert not np.allclose(ours, plain)


def test_guided_backprop_differs_from_the_gradient_on_inception(inception_small):
    model, v = inception_small
    x = smooth_images(2, 96)
    maps = ss.make_many(["gradient", "guided_backprop"], model)(v, x)
    g, gb = np.asarray(maps["gradient"]), np.asarray(maps["guided_backprop"])
    assert np.abs(gb).max() > 0 and np.abs(g).max() > 0
    corr = np.corrcoef(g.ravel(), gb.ravel())[0, 1]
    assert corr < 0.9, corr  # guided maps are not a rescaled gradient


def gradcam_plus_plus_reference(act, grad, size):
    """GradCAM++ from Chattopadhay et al. (eq. 19) in float64 numpy, then PAIR's resize."""
    a, g = np.asarray(act, np.float64), np.asarray(grad, np.float64)
    num = g ** 2
    den = 2 * g ** 2 + a.sum(axis=(0, 1), keepdims=True) * g ** 3
    alpha = np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(0, 1))
    cam = np.maximum((w * a).sum(axis=-1), 0)
    if cam.max() > 0:
        cam = cam / cam.max()
    return resize(cam, size)


def test_gradcam_plus_plus_and_guided_gradcam(small_cnn):
    model, v = small_cnn
    x = smooth_images(2, 32)
    t = np.array([1, 2])
    maps = ss.make_many(["gradcam", "gradcam_plus_plus", "guided_backprop", "guided_gradcam"],
                        model)(v, x, t)
    _, acts, grads = sm.block_gradients(model, v, jnp.asarray(x), ["conv3"],
                                        lambda z: jnp.take_along_axis(z, t[:, None], 1).sum())
    ref = np.stack([gradcam_plus_plus_reference(acts["conv3"][i], grads["conv3"][i], (32, 32))
                    for i in range(2)])
    assert ref.max() > 0
    np.testing.assert_allclose(maps["gradcam_plus_plus"], ref, rtol=1e-4, atol=1e-5)
    # Guided GradCAM as the study computed it: grayscale(Guided Backprop) x GradCAM.
    call = pair_call_model(model, v, "conv3")
    pair_cam = np.stack([sc.GradCam().GetMask(im, call, {"target": int(k)}, three_dims=False)
                         for im, k in zip(x, t)])
    pair_gray = np.stack([sc.VisualizeImageGrayscale(m) for m in np.asarray(maps["guided_backprop"])])
    np.testing.assert_allclose(maps["guided_gradcam"], pair_gray * pair_cam, rtol=1e-4, atol=1e-6)


def test_make_many_shares_passes_and_equals_single_methods(small_cnn):
    model, v = small_cnn
    x, key = smooth_images(2, 32), jax.random.key(4)
    names = ["gradient", "input_x_gradient", "gradcam", "gradcam_plus_plus", "guided_backprop",
             "guided_gradcam", "smoothgrad", "vargrad"]
    many = ss.make_many({**{n: {} for n in names},
                         "gradcam_conv2": {"method": "gradcam", "block": "conv2"}}, model)
    maps = many(v, x, key=key)
    for n in names:
        np.testing.assert_allclose(maps[n], ss.make(n, model)(v, x, key=key), rtol=1e-5,
                                   atol=1e-7, err_msg=n)
    np.testing.assert_allclose(maps["gradcam_conv2"],
                               ss.make("gradcam", model, block="conv2")(v, x), rtol=1e-5)
    # One plain pass, one guided pass and 25 shared noise samples, not 1+1+1+1+1+2+25+25.
    assert many.passes(x.shape[1:]) == (27, 0)


def test_multi_pass_methods_in_one_stream_equal_single_methods(small_cnn):
    """SmoothGrad, VarGrad, IG, SmoothGrad-IG, XRAI and Blur IG computed together (their passes
    mixed in shared chunks, a chunk size that splits every method) equal each method alone."""
    model, v = small_cnn
    x, key = smooth_images(2, 32), jax.random.key(5)
    hps = {"smoothgrad": dict(nsamples=3), "vargrad": dict(nsamples=3),
           "integrated_gradients": dict(x_steps=4, baseline=-1.0),
           "smoothgrad_ig": dict(nsamples=2, x_steps=3, stdev_spread=0.2),
           "xrai": dict(steps=3), "blur_ig": dict(steps=4)}
    segments = ss.xrai_segments(x)
    many = ss.make_many(hps, model, max_batch=7)
    maps = many(v, x, key=key, segments=segments)
    for n, hp in hps.items():
        alone = ss.make(n, model, max_batch=1000, **hp)(v, x, key=key, segments=segments)
        np.testing.assert_allclose(maps[n], alone, rtol=1e-5, atol=1e-6 * np.abs(alone).max(),
                                   err_msg=n)
    # VarGrad reuses SmoothGrad's samples: 3 + 4 + 2 * 3 + 2 * 3 + 4 passes per image.
    assert many.passes(x.shape[1:]) == (23, 0)


def test_randomness_comes_only_from_the_key(small_cnn):
    model, v = small_cnn
    x = smooth_images(2, 32)
    for method in ("smoothgrad", "smoothgrad_ig", "vargrad"):
        explain = ss.make(method, model, nsamples=3, **({"x_steps": 3} if method == "smoothgrad_ig"
                                                        else {}))
        a = np.asarray(explain(v, x, key=jax.random.key(1)))
        np.testing.assert_array_equal(a, np.asarray(explain(v, x, key=jax.random.key(1))))
        assert not np.allclose(a, np.asarray(explain(v, x, key=jax.random.key(2))))
        with pytest.raises(ValueError, match="key=jax.random.key"):
            explain(v, x)


@pytest.mark.parametrize("method,hp", [
    ("smoothgrad", dict(nsamples=5)), ("integrated_gradients", dict(x_steps=7)),
    ("smoothgrad_ig", dict(nsamples=3, x_steps=4)), ("blur_ig", dict(steps=9)),
    ("occlusion", dict(size=9, stride=3)), ("xrai", dict(steps=6))])
def test_chunk_size_does_not_change_the_maps(small_cnn, method, hp):
    model, v = small_cnn
    x, key = smooth_images(3, 32), jax.random.key(0)
    big = np.asarray(ss.make(method, model, max_batch=4096, **hp)(v, x, key=key))
    small = np.asarray(ss.make(method, model, max_batch=5, **hp)(v, x, key=key))
    np.testing.assert_allclose(small, big, rtol=1e-5, atol=1e-6 * np.abs(big).max())


def test_pure_core_composes_with_vmap_over_models(small_cnn):
    """``explain.pure`` maps over a stack of variables (e.g. randomization levels) in one call."""
    model, v = small_cnn
    v2 = jax.tree.map(lambda a: a * 1.5, v)
    x = jnp.asarray(smooth_images(2, 32))
    explain = ss.make("integrated_gradients", model, x_steps=4)
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), v, v2)
    t = jnp.array([0, 1])
    both = jax.jit(jax.vmap(lambda vv: explain.pure(vv, x, t)))(stacked)
    np.testing.assert_allclose(both[1], explain(v2, x, t), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(both[0], explain(v, x, t), rtol=1e-5, atol=1e-8)


# ----------------------------------------------------------------------------- cost
def _flops(fn, *args):
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])


COST_CASES = {
    "gradient": {}, "input_x_gradient": {}, "guided_backprop": {}, "gradcam": {},
    "gradcam_plus_plus": {}, "guided_gradcam": {}, "smoothgrad": dict(nsamples=3),
    "vargrad": dict(nsamples=3), "integrated_gradients": dict(x_steps=4),
    "smoothgrad_ig": dict(nsamples=2, x_steps=3), "blur_ig": dict(steps=4),
    "xrai": dict(steps=3), "occlusion": dict(size=24, stride=4),
}


@pytest.mark.parametrize("method", sorted(COST_CASES))
def test_flops_per_map_are_the_passes_the_method_needs(method):
    """XLA's FLOP count of the whole jitted method is at most 1.1 x (passes it needs) x (one
    forward + input-gradient pass), or x (one forward pass) for occlusion's forward-only passes.
    Everything in one chunk, so that no loop hides work from the count."""
    model = SmallCNN(channels=(32, 64, 64))
    v = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    x = jnp.asarray(smooth_images(2, 32))
    t = jnp.array([0, 1])
    explain = ss.make(method, model, max_batch=10 ** 6, **COST_CASES[method])
    segments = ss.xrai_segments(x) if method == "xrai" else None
    flops = _flops(lambda v, x, t, k, s: explain.pure(v, x, t, k, s), v, x, t, jax.random.key(0),
                   segments) / 2
    fwd = _flops(lambda v, x: model.apply(v, x), v, x) / 2
    pass_ = _flops(lambda v, x: jax.grad(lambda x: jnp.take_along_axis(
        model.apply(v, x), t[:, None], 1).sum())(x), v, x) / 2
    full, forward_only = explain.passes(x.shape[1:])
    budget = 1.1 * (full * pass_ + forward_only * fwd)
    assert flops <= budget, (method, flops / pass_, full, forward_only)
    assert flops >= 0.5 * (full * fwd + forward_only * fwd)  # the count saw the passes at all


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_are_clear_errors(small_cnn):
    model, v = small_cnn
    x = smooth_images(2, 32)
    explain = ss.make("gradient", model)
    bad = x.copy()
    bad[1, 3, 4, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        explain(v, bad)
    with pytest.raises(ValueError, match="one class per image: got shape \\(3,\\) for 2"):
        explain(v, x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\), got 0..3"):
        explain(v, x, np.array([0, 3]))
    with pytest.raises(ValueError, match="images must be \\[B, H, W, C\\]"):
        explain(v, x[0])
    with pytest.raises(ValueError, match="unknown block 'conv9'.*conv3, conv2, conv1"):
        ss.make("gradcam", model, block="conv9")
    with pytest.raises(ValueError, match="unknown saliency method 'lime'"):
        ss.make("lime", model)
    with pytest.raises(ValueError, match="unknown hyperparameter.*x_step.*x_steps, baseline"):
        ss.make("integrated_gradients", model, x_step=10)
    with pytest.raises(ValueError, match="nsamples must be a positive integer"):
        ss.make("smoothgrad", model, nsamples=0)
    with pytest.raises(ValueError, match="window of 40 px does not fit 32x32"):
        ss.make("occlusion", model, size=40)(v, x)
    with pytest.raises(ValueError, match="baseline of shape"):
        ss.make("integrated_gradients", model, baseline=np.zeros((5, 5)))(v, x)


def test_the_segments_worker_process_writes_the_segments_xrai_computes(tmp_path):
    """`python -m saljax.saliency.segment_worker` (the study's background XRAI segments) gives
    exactly the in-process segments of every chunk."""
    import subprocess
    import sys

    from saljax.saliency import segment_worker
    x = np.asarray(smooth_images(4, 48, seed=3), np.float32)
    np.save(tmp_path / "in.npy", x)
    subprocess.run([sys.executable, "-m", "saljax.saliency.segment_worker",
                    str(tmp_path / "in.npy"), str(tmp_path / "out.npz"), "2"], check=True)
    got = segment_worker.read(str(tmp_path / "out.npz"), 2)
    for c in range(2):
        want = ss.xrai_segments(x[2 * c:2 * c + 2])
        for a, b in zip(got[c], want):
            np.testing.assert_array_equal(a, b)


def test_null_maps_against_their_definitions():
    """The edge map is scikit-image's Sobel of the gray image; the blob is centred and the same
    for every image; the noise map is fixed by model state and image: the same for both, fresh
    for new weights or another image; the image map is the gray image in [0, 1]."""
    from skimage.filters import sobel
    import saljax.models as sm
    from saljax import randomize
    model = sm.create("inception_v3", num_classes=2, width=0.0625)
    v = sm.init(model, jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (3, 75, 75, 3), minval=-1, maxval=1)
    explain = ss.make_many(["null_image", "null_edge", "null_blob", "null_noise"], model)
    out = explain(v, x)
    gray = np.asarray(x, np.float64).mean(-1)
    assert np.asarray(out["null_edge"]) == pytest.approx(np.stack([sobel(g) for g in gray]),
                                                         abs=1e-5)
    assert np.asarray(out["null_image"]) == pytest.approx((gray + 1) / 2, abs=1e-6)
    blob = np.asarray(out["null_blob"])
    assert (blob[0] == blob[2]).all() and blob[0].argmax() == 37 * 75 + 37
    noise = np.asarray(out["null_noise"])
    assert (noise == np.asarray(explain(v, x)["null_noise"])).all()
    fresh = np.asarray(explain(randomize.cascading(model, v, jax.random.key(5), 1), x)[
        "null_noise"])
    assert abs(np.corrcoef(fresh[0].ravel(), noise[0].ravel())[0, 1]) < 0.1
    assert abs(np.corrcoef(noise[0].ravel(), noise[1].ravel())[0, 1]) < 0.1
    assert 0 <= noise.min() and noise.max() < 1


def test_shifted_input_twin_gives_the_same_logits_and_refuses_a_padded_stem():
    import saljax.models as sm
    from saljax.models.twin import shifted_input_twin
    model = sm.create("inception_v3", num_classes=2, width=0.0625)
    x = jax.random.uniform(jax.random.key(1), (4, 75, 75, 3), minval=-1, maxval=1)
    v = sm.calibrate_batch_stats(model, sm.init(model, jax.random.key(0)), x)
    twin = shifted_input_twin(model, v, 0.7, probe=x)
    a, b = model.apply(v, x), model.apply(twin, x + 0.7)
    assert float(jnp.abs(b - a).max() / jnp.abs(a).max()) < 1e-2    # float rounding only
    dense = sm.create("densenet121", num_classes=2, width=0.0625)
    with pytest.raises(ValueError, match="no exact shifted-input twin"):
        shifted_input_twin(dense, sm.init(dense, jax.random.key(0)), 0.7, probe=x)
