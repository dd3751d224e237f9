"""Each method against PAIR ``saliency.core`` 0.2.1 driven on the same Flax model."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saliency.core as sc

import saljax.saliency as ss
from saljax.saliency import xrai_regions as sx
from conftest import pair_call_model, smooth_images


def assert_maps_close(ours, ref, rtol=1e-4):
    """Equal to ``rtol``, with float32 summation noise allowed at 1e-5 of the map's peak."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape
    assert np.abs(ref).max() > 0, "a reference map of zeros proves nothing"
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=1e-5 * np.abs(ref).max())


def assert_maps_correlate(ours, ref, min_r=0.9999, peak_fraction=1e-2):
    """For a model chaotic at float rounding (a random InceptionV3): each image's map correlates
    with the reference at ``min_r`` or more, and no pixel differs by more than
    ``peak_fraction`` of the reference's peak (a wrong weight, step or sum fails both)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape
    for o, r in zip(ours, ref):
        assert np.abs(r).max() > 0, "a reference map of zeros proves nothing"
        assert np.corrcoef(o.ravel(), r.ravel())[0, 1] >= min_r
        np.testing.assert_allclose(o, r, rtol=0, atol=peak_fraction * np.abs(r).max())


def pair_maps(get_mask, images, targets):
    return np.stack([get_mask(im, {"target": int(t)}) for im, t in zip(images, targets)])


class NoiseFeed:
    """Stands in for ``np.random.normal``: hands PAIR saljax's noise tensors in PAIR's order
    (image by image, sample by sample) and records the scale PAIR asked for."""

    def __init__(self, noise):
        self.draws = iter(noise.reshape((-1,) + noise.shape[2:]))
        self.scales = []

    def __call__(self, loc, scale, shape):
        assert loc == 0
        self.scales.append(scale)
        return next(self.draws)


def predicted(model, variables, images):
    return np.asarray(jnp.argmax(jax.jit(model.apply)(variables, images), -1))


@pytest.fixture(scope="module", params=["small_cnn", "inception_small"])
def setup(request):
    """(model, variables, images, targets, PAIR call, size) for each test model."""
    model, variables = request.getfixturevalue(request.param)
    size = 32 if request.param == "small_cnn" else 96
    images = smooth_images(2, size)
    return model, variables, images, predicted(model, variables, images), request.param, size


def test_gradient_and_input_x_gradient(setup):
    model, v, x, t, name, _ = setup
    call = pair_call_model(model, v)
    ref = pair_maps(lambda im, a: sc.GradientSaliency().GetMask(im, call, a), x, t)
    maps = ss.make_many(["gradient", "input_x_gradient"], model)(v, x)  # targets=None: predicted
    assert_maps_close(maps["gradient"], ref)
    assert_maps_close(maps["input_x_gradient"], ref * x)
    assert_maps_close(ss.grayscale(maps["gradient"]),
                      np.stack([sc.VisualizeImageGrayscale(r) for r in ref]))


@pytest.mark.parametrize("steps,baseline", [(1, -1.0), (2, 0.0), (10, -1.0), (25, 0.0),
                                            (7, "array")])
def test_integrated_gradients(setup, steps, baseline):
    model, v, x, t, name, _ = setup
    if name == "inception_small" and steps not in (10, 25):
        pytest.skip("path variants are covered on the small CNN")
    base = (np.random.default_rng(5).uniform(-1, 1, x.shape[1:]).astype(np.float32)
            if baseline == "array" else baseline)
    call = pair_call_model(model, v)
    # PAIR flushes a batch when it is full or at alpha == 1; a 1-step path (alpha 0 only) with
    # batch_size > 1 would never reach the model there, so that case runs one step per call.
    ref = pair_maps(lambda im, a: sc.IntegratedGradients().GetMask(
        im, call, a, x_steps=steps, batch_size=5 if steps > 1 else 1,
        x_baseline=np.broadcast_to(np.float32(base), im.shape).copy()), x, t)
    ours = ss.make("integrated_gradients", model, x_steps=steps, baseline=base, max_batch=6)(v, x, t)
    assert_maps_close(ours, ref)


@pytest.mark.parametrize("block", [None, "conv2", "mixed5"])
def test_gradcam(setup, block):
    model, v, x, t, name, size = setup
    if (block == "mixed5") != (name == "inception_small") and block is not None:
        pytest.skip("block of the other model")
    block_used = block or model.default_cam_block
    call = pair_call_model(model, v, block_used)
    ref = pair_maps(lambda im, a: sc.GradCam().GetMask(im, call, a, should_resize=True,
                                                       three_dims=False), x, t)
    ours = ss.make("gradcam", model, block=block)(v, x, t)
    assert ours.shape == (2, size, size)
    assert_maps_close(ours, ref)


def test_smoothgrad_with_the_same_noise(setup, monkeypatch):
    model, v, x, t, name, _ = setup
    key, n = jax.random.key(11), 4
    noise = np.asarray(ss.smoothgrad_noise(key, jnp.asarray(x), n, 0.15))
    call = pair_call_model(model, v)
    for magnitude in (True, False):
        feed = NoiseFeed(noise)
        monkeypatch.setattr(np.random, "normal", feed)
        ref = pair_maps(lambda im, a: sc.GradientSaliency().GetSmoothedMask(
            im, call, a, stdev_spread=0.15, nsamples=n, magnitude=magnitude), x, t)
        monkeypatch.undo()
        np.testing.assert_allclose(np.reshape(feed.scales, (2, n))[:, 0],
                                   0.15 * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))),
                                   rtol=1e-6)
        ours = ss.make("smoothgrad", model, nsamples=n, magnitude=magnitude, max_batch=3)(
            v, x, t, key=key)
        assert_maps_close(ours, ref)


def test_smoothgrad_noise_has_pairs_scale():
    x = jnp.asarray(smooth_images(3, 64))
    noise = np.asarray(ss.smoothgrad_noise(jax.random.key(0), x, 200, 0.15))
    expected = 0.15 * (np.asarray(x).max(axis=(1, 2, 3)) - np.asarray(x).min(axis=(1, 2, 3)))
    np.testing.assert_allclose(noise.std(axis=(1, 2, 3, 4)), expected, rtol=0.01)
    assert abs(noise.mean()) < 0.01


def test_smoothgrad_ig_and_vargrad_with_the_same_noise(small_cnn, monkeypatch):
    model, v = small_cnn
    x = smooth_images(2, 32)
    t = predicted(model, v, x)
    key, n = jax.random.key(3), 3
    noise = np.asarray(ss.smoothgrad_noise(key, jnp.asarray(x), n, 0.2))
    monkeypatch.setattr(np.random, "normal", NoiseFeed(noise))
    call = pair_call_model(model, v)
    ref = pair_maps(lambda im, a: sc.IntegratedGradients().GetSmoothedMask(
        im, call, a, stdev_spread=0.2, nsamples=n, magnitude=True, x_steps=5,
        x_baseline=-np.ones_like(im)), x, t)
    monkeypatch.undo()
    for max_batch in (4, 1000):  # chunked noise samples, and all of them in one chunk
        ours = ss.make("smoothgrad_ig", model, stdev_spread=0.2, nsamples=n, x_steps=5,
                       baseline=-1.0, max_batch=max_batch)(v, x, t, key=key)
        assert_maps_close(ours, ref)
    # VarGrad: the variance of PAIR's gradients of the same noisy images.
    grads = np.stack([[sc.GradientSaliency().GetMask(im + noise[i, k], call, {"target": int(t[i])})
                       for k in range(n)] for i, im in enumerate(x)])
    ours = ss.make("vargrad", model, stdev_spread=0.2, nsamples=n)(v, x, t, key=key)
    assert_maps_close(ours, grads.var(axis=1), rtol=1e-3)


def test_xrai_segments_equal_pairs(setup):
    _, _, x, _, _, _ = setup
    seg = sx.segments(x)
    for i, im in enumerate(x):
        ref = np.array([m for m in sc.xrai._get_segments_felzenszwalb(im) if m.any()])
        np.testing.assert_array_equal(sx.masks_of(seg, i), ref)


def test_xrai_with_the_same_segments(setup):
    """The same regions (the greedy selection chose the same segments), with values equal at
    the scale of the IG attributions they average: a region's mean of sign-changing attributions
    has no relative precision of its own, its error is the attributions' error."""

    def same_partition(a, b):
        ia = np.unique(a, return_inverse=True)[1].ravel()
        ib = np.unique(b, return_inverse=True)[1].ravel()
        pairs = len(np.unique(np.stack([ia, ib]), axis=1)[0])
        return pairs == ia.max() + 1 == ib.max() + 1

    model, v, x, t, name, _ = setup
    steps = 100 if name == "small_cnn" else 20
    seg = sx.segments(x)
    call = pair_call_model(model, v)
    params = sc.XRAIParameters(steps=steps, return_ig_attributions=True)
    ours = np.asarray(ss.make("xrai", model, steps=steps)(v, x, t))
    for i, (im, ti) in enumerate(zip(x, t)):
        ref = sc.XRAI().GetMaskWithDetails(im, call, {"target": int(ti)}, batch_size=50,
                                           segments=list(sx.masks_of(seg, i)),
                                           extra_parameters=params)
        attr_scale = np.abs(np.mean(ref.ig_attribution, axis=0).max(axis=-1)).max()
        assert attr_scale > 0
        assert same_partition(ours[i], ref.attribution_mask)
        assert len(np.unique(ours[i])) > 5
        np.testing.assert_allclose(ours[i], ref.attribution_mask, rtol=1e-4,
                                   atol=1e-4 * attr_scale)


def test_occlusion(setup):
    model, v, x, t, name, size = setup
    window = 15 if name == "small_cnn" else 64
    call = pair_call_model(model, v)
    ref = pair_maps(lambda im, a: sc.Occlusion().GetMask(im, call, a, size=window, value=0)[..., 0],
                    x, t)
    ours = ss.make("occlusion", model, size=window, max_batch=256)(v, x, t)
    assert_maps_close(ours, ref)


def test_blur_path_equals_scipys_gaussian_filter():
    """Blur IG's path images and their sigma-slopes against scipy in float64."""
    from scipy import ndimage
    from saljax.saliency import blur as sblur

    x = smooth_images(1, 96)[0].astype(np.float64)
    cap = sblur.max_radius(50.01)

    def blur(s):
        return x if s == 0 else ndimage.gaussian_filter(x, [s, s, 0], mode="constant")

    for s in (0.0, 0.3, 2.5, 17.0, 49.5, 50.0):
        ours = np.asarray(sblur.gaussian_blur(jnp.asarray(x, jnp.float32), s, cap))
        np.testing.assert_allclose(ours, blur(s), atol=2e-6 * np.abs(x).max())
        slope = np.asarray(sblur.gaussian_blur_slope(jnp.asarray(x, jnp.float32), s, 0.01, cap))
        ref = (blur(s + 0.01) - blur(s)) / 0.01
        np.testing.assert_allclose(slope, ref, atol=2e-6 * max(np.abs(ref).max(), 1e-3))


@pytest.mark.parametrize("sqrt", [False, True])
def test_blur_ig(setup, sqrt, monkeypatch):
    """PAIR's Blur IG on the same model.

    On the small CNN PAIR runs unpatched at its defaults. A random InceptionV3 is chaotic along
    the blur path: at some sigmas a 2e-7 change of the blurred image (PAIR blurs in float64 on
    the host, saljax in float32 on the device) moves its input gradient by 10-25% of the peak,
    with ReLU or softplus alike. There PAIR is handed saljax's own path images and sigma-slopes,
    bit for bit (both are checked against scipy in float64 above), and the test checks PAIR's
    loop, weights and sums around them. The input gradients along that path are still
    computed apart (batched under jit here, one image at a time there), and on some CPUs their
    rounding moves a few pixels by up to 0.5% of the peak (per-image correlation 1 - 3e-6): on
    InceptionV3 the maps are compared by correlation and a 1%-of-peak bound.
    """
    import saliency.core.blur_ig as pair_blur_ig
    from saljax.saliency import blur as sblur

    model, v, x, t, name, _ = setup
    if name == "inception_small" and sqrt:
        pytest.skip("the sqrt path is covered on the small CNN")
    steps = 100 if name == "small_cnn" else 20
    if name == "inception_small":
        sigmas = sblur.blur_sigmas(50.0, steps)[:-1]
        cap = sblur.max_radius(50.01)
        path = jax.jit(jax.vmap(lambda im, s: sblur.gaussian_blur(im, s, cap), (None, 0)))
        slope = jax.jit(jax.vmap(lambda im, s: sblur.gaussian_blur_slope(im, s, 0.01, cap),
                                 (None, 0)))
        sig = jnp.asarray(sigmas, jnp.float32)
        table = {}
        for im in x:
            images, slopes = np.asarray(path(im, sig), np.float64), np.asarray(slope(im, sig))
            for k, sk in enumerate(sigmas):
                table[(im.tobytes(), round(sk, 9))] = images[k]
                table[(im.tobytes(), round(sk + 0.01, 9))] = images[k] + 0.01 * slopes[k]
        monkeypatch.setattr(pair_blur_ig, "gaussian_blur",
                            lambda image, sigma: table[(image.tobytes(), round(sigma, 9))])
    call = pair_call_model(model, v)
    ref = pair_maps(lambda im, a: sc.BlurIG().GetMask(im, call, a, max_sigma=50, steps=steps,
                                                      grad_step=0.01, sqrt=sqrt, batch_size=1),
                    x, t)
    ours = ss.make("blur_ig", model, steps=steps, sqrt=sqrt, max_batch=64)(v, x, t)
    if name == "inception_small":   # the gradients themselves still carry the model's chaos
        assert_maps_correlate(ours, ref)
    else:
        assert_maps_close(ours, ref, rtol=2e-4)


def test_visualizations_equal_pairs():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 17, 20, 3)).astype(np.float32)
    maps[1] = np.round(maps[1])  # ties
    np.testing.assert_allclose(ss.grayscale(maps, 95.0),
                               [sc.VisualizeImageGrayscale(m, 95) for m in maps], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(ss.diverging(maps),
                               [sc.VisualizeImageDiverging(m) for m in maps], rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(ss.grayscale(np.ones((1, 4, 4, 3)))) == 0)  # constant map: zeros
