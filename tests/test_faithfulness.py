"""Faithfulness with a constructed truth: a model whose logit depends on one image region only,
its reliance on that region and elsewhere, ROAD curves of a perfect and of a random map, and
ROAD's noisy linear imputation against an independent sparse solve."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from scipy.sparse import lil_matrix
from scipy.sparse.linalg import spsolve

from saljax import faithfulness
from saljax.saliency.infill import blur, imputation, noise_level, noisy_linear

REGION = (slice(8, 16), slice(8, 16))     # 64 of 1024 pixels


class RegionModel(nn.Module):
    """Class 1's logit is 10 x the mean of channel 0 over REGION; class 0's is 0."""

    @nn.compact
    def __call__(self, x, train=False):
        gain = self.param("gain", nn.initializers.constant(10.0), ())
        r = x[:, REGION[0], REGION[1], 0].mean(axis=(1, 2))
        return jnp.stack([jnp.zeros_like(r), gain * r], axis=-1)


def region_images(n=6, seed=0):
    """Dark noisy background, the region bright: every image is predicted class 1."""
    rng = np.random.default_rng(seed)
    x = -0.8 + 0.05 * rng.normal(size=(n, 32, 32, 3))
    x[:, REGION[0], REGION[1]] = 0.8 + 0.05 * rng.normal(size=(n, 8, 8, 3))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def region_model():
    model = RegionModel()
    return model, model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def test_reliance_is_one_on_the_region_and_zero_elsewhere(region_model):
    model, v = region_model
    x = region_images()
    region = np.zeros((6, 32, 32), bool)
    region[:, REGION[0], REGION[1]] = True
    elsewhere = np.zeros((6, 32, 32), bool)
    elsewhere[:, 20:28, 4:12] = True
    for method in ("noisy_linear", "blur"):
        on = faithfulness.reliance(model, v, x, region, infill_method=method)
        off = faithfulness.reliance(model, v, x, elsewhere, infill_method=method)
        assert np.asarray(on["flipped"]).mean() == 1.0, method
        assert np.all(np.asarray(on["prob"]) > 0.99)
        assert np.all(np.asarray(on["prob_removed"]) < 0.01)
        assert np.asarray(off["flipped"]).mean() == 0.0, method
        np.testing.assert_allclose(off["logit"], off["logit_removed"], rtol=1e-6)  # unchanged


def test_a_perfect_map_drops_at_once_under_morf_stays_under_lerf_and_beats_a_random_map(
        region_model):
    model, v = region_model
    x = region_images()
    perfect = np.zeros((6, 32, 32), np.float32)
    perfect[:, REGION[0], REGION[1]] = 1.0
    random_map = np.random.default_rng(1).random((6, 32, 32)).astype(np.float32)
    fractions = (0.1, 0.3, 0.5, 0.7, 0.9)
    good = faithfulness.road(model, v, x, perfect, np.ones(6, np.int32), fractions=fractions,
                             key=jax.random.key(2))
    rand = faithfulness.road(model, v, x, random_map, np.ones(6, np.int32), fractions=fractions,
                             key=jax.random.key(2))
    assert np.all(good["morf"]["prob"] < 0.01)            # the first 10% already removes it all
    assert not good["morf"]["correct"].any()
    assert np.all(good["lerf"]["prob"] > 0.99)            # the region is never removed
    assert good["lerf"]["correct"].all()
    assert np.all(good["area"] > 0.98)
    assert np.all(rand["area"] < good["area"] - 0.5)
    assert rand["morf"]["prob"][:, 0].mean() > good["morf"]["prob"][:, 0].mean()


def test_removal_masks_take_the_top_and_bottom_fractions():
    saliency = jnp.arange(20, dtype=jnp.float32).reshape(4, 5)
    masks = np.asarray(faithfulness.removal_masks(saliency, (0.1, 0.5)))
    assert masks.shape == (2, 2, 4, 5)
    np.testing.assert_array_equal(masks[0, 0].reshape(-1), np.arange(20) >= 18)   # MoRF 10%
    np.testing.assert_array_equal(masks[0, 1].reshape(-1), np.arange(20) < 2)     # LeRF 10%
    assert masks[1, 0].sum() == masks[1, 1].sum() == 10


def test_a_map_of_ties_is_ranked_at_random_as_road_does(region_model):
    """A constant map says nothing: its MoRF and LeRF curves equal a random map's within noise.
    Broken in raster order (saljax before 2026-12), its ties removed the top rows (and the
    model's region) first under MoRF and last under LeRF."""
    model, v = region_model
    x = region_images(32, seed=4)
    fractions = (0.1, 0.3, 0.5, 0.7)
    ones = np.ones(32, np.int32)
    run = lambda maps: faithfulness.road(model, v, x, maps, ones, fractions=fractions,
                                         key=jax.random.key(5))
    ties = run(np.zeros((32, 32, 32), np.float32))
    rand = run(np.random.default_rng(6).random((32, 32, 32)).astype(np.float32))
    for order in ("morf", "lerf"):
        np.testing.assert_allclose(ties[order]["prob"].mean(0), rand[order]["prob"].mean(0),
                                   atol=0.08)
    np.testing.assert_allclose(ties["morf"]["prob"].mean(0), ties["lerf"]["prob"].mean(0),
                               atol=0.08)
    assert abs(ties["area"].mean()) < 0.05
    # the same map with ties in raster order: MoRF removes the region (rows 8-15) first
    raster = np.asarray(jax.vmap(lambda m: faithfulness.removal_masks(m, fractions))(
        jnp.zeros((1, 32, 32))))[0]
    assert raster[2, 0][REGION].all() and not raster[2, 1][REGION].any()   # 50%: MoRF has it


def test_road_ranks_signed_maps_by_default_and_magnitudes_on_request(region_model):
    model, v = region_model
    x = region_images()
    negative = np.zeros((6, 32, 32), np.float32)
    negative[:, REGION[0], REGION[1]] = -1.0          # the region is strongly (negatively) marked
    kw = dict(fractions=(0.1,), key=jax.random.key(2))
    signed = faithfulness.road(model, v, x, negative, np.ones(6, np.int32), **kw)
    absolute = faithfulness.road(model, v, x, negative, np.ones(6, np.int32), ranking="absolute",
                                 **kw)
    assert np.all(signed["lerf"]["prob"] < 0.01) and np.all(signed["morf"]["prob"] > 0.99)
    assert np.all(absolute["morf"]["prob"] < 0.01) and np.all(absolute["lerf"]["prob"] > 0.99)
    with pytest.raises(ValueError, match="ranking"):
        faithfulness.road(model, v, x, negative, ranking="abs")
    with pytest.raises(ValueError, match="finite"):
        faithfulness.road(model, v, x, np.full_like(negative, np.nan))


def gray_radiograph(seed=7, size=64, noise=0.06):
    """A smooth background with pixel noise of sd ``noise``, three identical channels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    gray = 0.5 * np.sin(3 * yy) * np.cos(2 * xx) + noise * rng.normal(size=(size, size))
    return np.repeat(gray[..., None], 3, -1).astype(np.float32)


def robust_residual_sd(gray, where):
    """1.4826 x the median |pixel - the mean of its 8 neighbours| (weights 1/6, 1/12)."""
    p = np.pad(gray, 1, mode="edge")
    h, w = gray.shape
    mean = sum(wt * p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
               for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)
               for wt in [1 / 6 if dy == 0 or dx == 0 else 1 / 12])
    return 1.4826 * np.median(np.abs(gray - mean)[where])


def test_infill_keeps_gray_channels_identical_and_can_match_the_images_noise():
    image = gray_radiograph()
    mask = np.zeros((64, 64), bool)
    mask[20:44, 16:40] = True
    inner = np.zeros_like(mask)
    inner[23:41, 19:37] = True                                  # the region, 3 px in
    band = ndimage.binary_dilation(mask, iterations=10) & ~mask   # 10 px around it
    around = robust_residual_sd(image[..., 0], band)
    assert 0.06 < around < 0.07            # the pixel noise's residual: 0.06 x sqrt(1.139)
    levels = {}
    for match in (False, True):
        out = np.asarray(noisy_linear(jnp.asarray(image), jnp.asarray(mask), jax.random.key(1),
                                      match=match))
        np.testing.assert_array_equal(out[..., 0], out[..., 1])   # one field for all channels
        np.testing.assert_array_equal(out[..., 0], out[..., 2])
        np.testing.assert_array_equal(out[~mask], image[~mask])
        levels[match] = robust_residual_sd(out[..., 0], inner)
    assert abs(levels[True] / around - 1) < 0.2                 # matched: as noisy as around it
    assert levels[False] < 0.5 * around                         # ROAD's fixed sd is smoother
    assert abs(float(noise_level(jnp.asarray(image), jnp.asarray(mask))) / around - 1) < 0.1


def test_an_unconverged_solve_is_reported():
    image = gray_radiograph(size=32)
    mask = np.zeros((32, 32), bool)
    mask[4:28, 4:28] = True
    _, good = imputation(jnp.asarray(image), jnp.asarray(mask))
    _, bad = imputation(jnp.asarray(image), jnp.asarray(mask), maxiter=2)
    assert float(good) < 1e-5 and float(bad) > 1e-2
    assert float(imputation(jnp.asarray(image), jnp.zeros((32, 32), bool))[1]) == 0.0


def road_imputation_reference(image, mask):
    """ROAD's linear imputation as a sparse system solved by scipy: every removed pixel is the
    weighted mean of its in-image neighbours (1/6 direct, 1/12 diagonal)."""
    h, w = mask.shape
    index = {p: k for k, p in enumerate(zip(*np.nonzero(mask)))}
    a = lil_matrix((len(index), len(index)))
    b = np.zeros((len(index), image.shape[-1]))
    offsets = [((dy, dx), 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
               for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    for (i, j), k in index.items():
        for (dy, dx), weight in offsets:
            y, x = i + dy, j + dx
            if 0 <= y < h and 0 <= x < w:
                a[k, k] += weight
                if mask[y, x]:
                    a[k, index[(y, x)]] -= weight
                else:
                    b[k] += weight * image[y, x]
    out = image.astype(np.float64).copy()
    out[mask] = np.stack([spsolve(a.tocsr(), b[:, c]) for c in range(image.shape[-1])], -1)
    return out


@pytest.mark.parametrize("fraction", [0.2, 0.6, 0.95])
def test_noisy_linear_imputation_equals_a_sparse_solve(fraction):
    rng = np.random.default_rng(3)
    image = rng.random((11, 14, 3)).astype(np.float32)
    mask = rng.random((11, 14)) < fraction
    ours = np.asarray(noisy_linear(jnp.asarray(image), jnp.asarray(mask), tol=1e-10))
    np.testing.assert_allclose(ours, road_imputation_reference(image, mask), atol=1e-5)
    noisy = np.asarray(noisy_linear(jnp.asarray(image), jnp.asarray(mask), jax.random.key(0),
                                    tol=1e-10))
    np.testing.assert_array_equal(noisy[~mask], image[~mask])          # kept pixels untouched
    # ROAD's noise: sd 0.01 of a [0, 1] image, 0.02 of a model input in [-1, 1]
    assert 0.015 < np.std(noisy[mask] - ours[mask]) < 0.025


def test_blur_infill_is_the_surroundings_local_mean():
    image = np.zeros((16, 16, 1), np.float32)
    image[:, 8:] = 1.0                                   # left half 0, right half 1
    mask = np.zeros((16, 16), bool)
    mask[6:10, 6:10] = True                              # straddles the edge
    out = np.asarray(blur(jnp.asarray(image), jnp.asarray(mask), sigma=2.0))[..., 0]
    np.testing.assert_array_equal(out[~mask], image[..., 0][~mask])
    assert out[8, 6] < 0.5 < out[8, 9] and 0 < out[mask].min() <= out[mask].max() < 1


MARKER = (slice(2, 6), slice(24, 28))     # a bright 4 x 4 plate near a corner
LESION = (slice(14, 22), slice(10, 18))   # a mid-gray 8 x 8 blob


class CueModel(nn.Module):
    """Class 1's logit: 20 x (marker evidence, the plate's mean brightness above 0.5), or also
    the lesion's (``lesion_too``: its mean above -0.3), whichever is larger; class 0's is 1."""
    lesion_too: bool = False

    @nn.compact
    def __call__(self, x, train=False):
        gain = self.param("gain", nn.initializers.constant(20.0), ())
        cue = x[:, MARKER[0], MARKER[1], 0].mean(axis=(1, 2)) - 0.5
        if self.lesion_too:
            cue = jnp.maximum(cue, x[:, LESION[0], LESION[1], 0].mean(axis=(1, 2)) + 0.3)
        return jnp.stack([jnp.ones_like(cue), 1.0 + gain * cue], axis=-1)


def cue_images(n, lesion, marker, seed):
    """Dark noisy background; the lesion at -0.1 (gray), the marker plate at 0.9 (bright)."""
    rng = np.random.default_rng(seed)
    x = -0.8 + 0.05 * rng.normal(size=(n, 32, 32, 3))
    if lesion:
        x[:, LESION[0], LESION[1]] = -0.1 + 0.05 * rng.normal(size=(n, 8, 8, 3))
    if marker:
        x[:, MARKER[0], MARKER[1]] = 0.9 + 0.02 * rng.normal(size=(n, 4, 4, 3))
    return x.astype(np.float32)


@pytest.mark.parametrize("lesion_too", [False, True])
def test_necessity_misses_an_or_model_that_sufficiency_finds(lesion_too):
    """A model that uses only the marker, and one that uses the marker or the lesion: removing
    the marker from positives that carry both flips the first (necessity 1) but not the second
    (necessity 0); pasting the marker into negatives turns both positive (sufficiency 1)."""
    model = CueModel(lesion_too=lesion_too)
    v = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    n = 8
    both = cue_images(n, lesion=True, marker=True, seed=1)
    marker = np.zeros((n, 32, 32), bool)
    marker[:, MARKER[0], MARKER[1]] = True
    necessity = np.asarray(faithfulness.reliance(model, v, both, marker)["flipped"]).mean()
    assert necessity == (0.0 if lesion_too else 1.0)
    negatives = cue_images(n, lesion=False, marker=False, seed=2)
    donors = cue_images(n, lesion=False, marker=True, seed=3)
    s = faithfulness.sufficiency(model, v, negatives, marker, jnp.asarray(donors))
    assert not np.asarray(s["positive"]).any()
    assert np.asarray(s["positive_added"]).mean() == 1.0
    elsewhere = np.zeros((n, 32, 32), bool)
    elsewhere[:, 24:28, 2:6] = True      # pasting a patch of plain background changes nothing
    s = faithfulness.sufficiency(model, v, negatives, elsewhere, jnp.asarray(donors))
    assert np.asarray(s["positive_added"]).mean() == 0.0
