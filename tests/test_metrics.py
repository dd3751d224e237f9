"""Metrics against skimage, scipy and sklearn on maps with many ties, and degenerate inputs."""
import warnings

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from sklearn.metrics import (auc, average_precision_score, precision_recall_curve,
                             roc_auc_score)

import saljax.metrics as mx

# jitted once per shape (eager calls would compile every primitive separately)
ssim_j = jax.jit(mx.ssim, static_argnames=("data_range", "win_size", "gaussian_weights",
                                            "use_sample_covariance"))
spearman_j = jax.jit(mx.spearman, static_argnames="absolute")
pearson_j = jax.jit(mx.pearson)
auprc_j = jax.jit(mx.auprc, static_argnames="method")
roc_j = jax.jit(mx.roc_auc)

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# odd and even sides; a few distinct shapes keep the number of compiles small
SHAPES = ((7, 7), (8, 13), (16, 31), (40, 40), (12, 9))


@st.composite
def saliency_maps(draw, n=2, shapes=SHAPES):
    """Maps like the study's: grayscale-normalised to [0, 1] with the clip at 1.0, quantised
    (ties), with constant regions, at odd and even sizes."""
    h, w = draw(st.sampled_from(shapes))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    levels = draw(st.sampled_from([4, 16, 256, 0]))  # 0: continuous
    maps = []
    for _ in range(n):
        m = rng.gamma(0.7, size=(h, w))
        m = np.clip(m / np.percentile(m, 95), 0, 1)                 # the grayscale clip at 1.0
        if levels:
            m = np.round(m * levels) / levels
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        m[y0:y0 + h // 3, x0:x0 + w // 3] = rng.uniform()            # a constant region
        maps.append(m.astype(np.float32))
    return maps


@st.composite
def masks_like(draw, shape):
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["box", "boxes", "noise"]))
    h, w = shape
    m = np.zeros(shape, bool)
    if kind == "noise":
        m = rng.random(shape) < draw(st.floats(0.01, 0.9))
    else:
        for _ in range(1 if kind == "box" else 3):
            y, x = rng.integers(0, h), rng.integers(0, w)
            m[y:y + rng.integers(1, h), x:x + rng.integers(1, w)] = True
    m[rng.integers(0, h), rng.integers(0, w)] = True   # at least one positive
    if m.all():
        m[0, 0] = False                                 # and one negative
    return m


# ----------------------------------------------------------------------------- similarity
@SETTINGS
@given(saliency_maps(), st.sampled_from([(7, False, True), (3, False, True), (5, False, False),
                                         (None, True, True)]),
       st.sampled_from([1.0, 2.0]))
def test_ssim_equals_skimage(maps, window, data_range):
    a, b = maps
    win, gaussian, sample_cov = window
    if gaussian and min(a.shape) < 11:
        return
    ours = float(ssim_j(a, b, data_range=data_range, win_size=win or 7,
                        gaussian_weights=gaussian, use_sample_covariance=sample_cov))
    ref = structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=data_range,
                                win_size=None if gaussian else win, gaussian_weights=gaussian,
                                sigma=1.5, use_sample_covariance=sample_cov)
    assert abs(ours - ref) <= 1e-5


@SETTINGS
@given(saliency_maps())
def test_spearman_and_pearson_equal_scipy(maps):
    a, b = maps
    sa, sb = a - 0.5, b - 0.5          # signed maps for the absolute variant
    for ours, x, y in ((spearman_j(a, b), a, b),
                       (spearman_j(sa, sb, absolute=True), np.abs(sa), np.abs(sb))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # scipy warns on a constant input
            ref = spearmanr(x.ravel(), y.ravel()).statistic
        if np.isnan(ref):
            assert np.isnan(float(ours))
        else:
            assert abs(float(ours) - ref) <= 1e-6
    ref = np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1]
    assert abs(float(pearson_j(a, b)) - ref) <= 1e-5


def test_spearman_absolute_ranks_magnitudes():
    a = np.array([[-3.0, 1.0, 2.0], [0.5, -0.1, 4.0]], np.float32)
    b = np.abs(a) + np.array([[0, 0, 0], [0, 0, 0.01]], np.float32)
    assert float(mx.spearman(a, b, absolute=True)) == pytest.approx(
        spearmanr(np.abs(a).ravel(), b.ravel()).statistic, abs=1e-6)
    assert float(mx.spearman(a, b)) < 0.99


def test_spearman_on_320_maps_with_ties_is_precise():
    rng = np.random.default_rng(0)
    a = np.clip(np.round(rng.gamma(0.7, size=(320, 320)) * 20) / 20, 0, 1).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.3, a.shape), 0, 1).astype(np.float32)
    assert abs(float(mx.spearman(a, b)) - spearmanr(a.ravel(), b.ravel()).statistic) <= 1e-6


# ----------------------------------------------------------------------------- localization
@SETTINGS
@given(st.data())
def test_auprc_ap_and_roc_equal_sklearn(data):
    (m,) = data.draw(saliency_maps(n=1, shapes=((2, 3), (8, 13), (40, 40), (7, 7))))
    mask = data.draw(masks_like(m.shape))
    y, s = mask.ravel(), m.ravel().astype(np.float64)
    precision, recall, _ = precision_recall_curve(y, s)
    assert abs(float(auprc_j(m, mask)) - auc(recall, precision)) <= 1e-6
    assert abs(float(auprc_j(m, mask, method="average_precision")) -
               average_precision_score(y, s)) <= 1e-6
    assert abs(float(roc_j(m, mask)) - roc_auc_score(y, s)) <= 1e-6


def test_localization_on_320_maps_is_precise():
    rng = np.random.default_rng(1)
    m = np.clip(np.round(rng.gamma(0.7, size=(320, 320)) * 50) / 50, 0, 1).astype(np.float32)
    mask = np.zeros((320, 320), bool)
    mask[100:180, 40:200] = True
    precision, recall, _ = precision_recall_curve(mask.ravel(), m.ravel())
    assert abs(float(mx.auprc(m, mask)) - auc(recall, precision)) <= 1e-6
    assert abs(float(mx.roc_auc(m, mask)) - roc_auc_score(mask.ravel(), m.ravel())) <= 1e-6


def test_batched_metrics_equal_one_by_one():
    rng = np.random.default_rng(2)
    maps = rng.random((2, 3, 16, 20)).astype(np.float32)
    masks = rng.random((2, 3, 16, 20)) < 0.3
    for fn in (lambda a, b: mx.ssim(a, b, data_range=1.0), mx.spearman):
        out = np.asarray(jax.jit(fn)(maps, maps[::-1]))
        assert out.shape == (2, 3)
        assert out[1, 2] == pytest.approx(float(fn(maps[1, 2], maps[0, 2])), abs=1e-6)
    for fn in (mx.auprc, mx.roc_auc, mx.mass_accuracy, mx.pointing_game):
        out = np.asarray(jax.jit(fn)(maps, masks))
        assert out.shape == (2, 3)
        assert out[0, 1] == pytest.approx(float(fn(maps[0, 1], masks[0, 1])), abs=1e-6)


def test_degenerate_inputs_give_documented_results():
    rng = np.random.default_rng(3)
    m = rng.random((12, 12)).astype(np.float32)
    empty, full = np.zeros((12, 12), bool), np.ones((12, 12), bool)
    some = np.zeros((12, 12), bool)
    some[2:5, 3:9] = True
    # empty mask: nothing to find
    for fn in (mx.auprc, mx.roc_auc, mx.pointing_game, mx.mass_accuracy):
        assert np.isnan(float(fn(m, empty))), fn
    # full mask: precision is 1 everywhere; ROC needs negatives
    assert float(mx.auprc(m, full)) == pytest.approx(1.0)
    assert float(mx.auprc(m, full, "average_precision")) == pytest.approx(1.0)
    assert np.isnan(float(mx.roc_auc(m, full)))
    # constant map: one threshold, as sklearn
    c = np.full((12, 12), 0.3, np.float32)
    prevalence = some.mean()
    precision, recall, _ = precision_recall_curve(some.ravel(), c.ravel())
    assert float(mx.auprc(c, some)) == pytest.approx(auc(recall, precision), abs=1e-6)
    assert float(mx.auprc(c, some)) == pytest.approx((1 + prevalence) / 2, abs=1e-6)
    assert float(mx.auprc(c, some, "average_precision")) == pytest.approx(prevalence, abs=1e-6)
    assert float(mx.roc_auc(c, some)) == pytest.approx(0.5)
    assert float(mx.pointing_game(c, some)) == pytest.approx(prevalence)
    assert np.isnan(float(mx.spearman(c, m)))
    assert float(mx.ssim(c, c, data_range=1.0)) == pytest.approx(1.0)
    # NaN in a map
    bad = m.copy()
    bad[4, 4] = np.nan
    for fn in (mx.auprc, mx.roc_auc, mx.pointing_game, mx.mass_accuracy):
        assert np.isnan(float(fn(bad, some))), fn
    assert np.isnan(float(mx.ssim(bad, m, data_range=1.0)))
    assert np.isnan(float(mx.spearman(bad, m)))
    assert np.isnan(float(mx.iou(bad, some, threshold=0.5)))


def test_pointing_game_mass_iou_dice_by_hand():
    m = np.zeros((10, 10), np.float32)
    m[7, 2] = 1.0
    m[1:4, 1:4] = 0.5
    mask = np.zeros((10, 10), bool)
    mask[1:4, 1:4] = True
    assert float(mx.pointing_game(m, mask)) == 0.0
    assert float(mx.pointing_game(m, mask, tolerance_px=4)) == 1.0  # (7,2) is 4 px from row 3
    assert float(mx.pointing_game(m, mask, tolerance_px=3)) == 0.0
    assert float(mx.mass_accuracy(m, mask)) == pytest.approx(4.5 / 5.5)
    assert float(mx.iou(m, mask, threshold=0.5)) == pytest.approx(9 / 10)
    assert float(mx.dice(m, mask, threshold=0.5)) == pytest.approx(18 / 19)
    assert float(mx.iou(m, mask, top_fraction=0.01)) == 0.0   # the single top pixel is outside
    with pytest.raises(ValueError, match="exactly one"):
        mx.iou(m, mask)


# ----------------------------------------------------------------------------- baselines
def test_random_pair_ssim_pairs_different_images():
    rng = np.random.default_rng(4)
    maps = rng.random((5, 16, 16)).astype(np.float32)
    key = jax.random.key(0)
    pairs = np.asarray(mx.random_pairs(key, 5, 200))
    assert np.all(pairs[:, 0] != pairs[:, 1])
    assert set(pairs[:, 0]) == set(range(5))
    values = np.asarray(mx.random_pair_ssim(jnp.asarray(maps), key, 200, data_range=1.0))
    for (i, j), v in list(zip(pairs, values))[:10]:
        assert v == pytest.approx(structural_similarity(maps[i], maps[j], data_range=1.0),
                                  abs=1e-5)


def test_average_mask_and_boxes():
    masks = np.zeros((4, 6, 6), bool)
    masks[:2, 1:3, 1:3] = True
    avg = np.asarray(mx.average_mask(masks))
    assert avg[1, 1] == 0.5 and avg[0, 0] == 0
    # RSNA-style (x, y, width, height) at 1024 px, rasterised at 8 px by pixel centres
    boxes = np.array([[256.0, 0.0, 256.0, 512.0], [0.0, 0.0, 0.0, 0.0]])   # second row: padding
    mask = np.asarray(mx.boxes_to_mask(boxes, (8, 8), original_size=(1024, 1024)))
    expected = np.zeros((8, 8), bool)
    expected[0:4, 2:4] = True
    np.testing.assert_array_equal(mask, expected)
    xyxy = np.asarray(mx.boxes_to_mask(np.array([[2.0, 0.0, 4.0, 4.0]]), (8, 8),
                                       box_format="xyxy"))
    np.testing.assert_array_equal(xyxy, expected)


@pytest.mark.parametrize("n", [7, 1000, 102400])
def test_the_radix_sort_orders_exactly_like_numpy(n):
    """The radix sort gives the same exact order as numpy, for signed values, ties, -0.0 and
    +0.0, and values within [0, 1]."""
    from saljax.metrics.reduce import sort_order
    rng = np.random.default_rng(n)
    x = (rng.normal(size=(4, n)) * 10).astype(np.float32)
    x[0] = np.round(x[0])                      # many ties
    x[1, : n // 2] = 0.0
    x[1, : n // 4] = -0.0
    x[2] = np.clip(np.abs(x[2]) / 20, 0, 1)    # grayscale-like: two radix passes
    x[3, ::3] = np.float32(1e-30)              # tiny values next to large ones: three passes
    order = np.asarray(jax.jit(sort_order)(jnp.asarray(x)))
    for row in range(4):
        assert sorted(order[row].tolist()) == list(range(n))       # a permutation
        np.testing.assert_array_equal(x[row][order[row]], np.sort(x[row]))


def test_metrics_called_from_two_threads_at_once_finish(tmp_path):
    """A study computes criteria in two threads at once (known truth beside randomization).
    With a host callback in the sort, both of XLA's CPU threads on a 2-core machine could wait
    in callbacks for a copy that needs one of them: a hang (1 to 2 runs in 4 of this script on
    2 cores). Run in a subprocess with a deadline, so a hang fails instead of stalling."""
    script = tmp_path / "two_threads.py"
    script.write_text(
        "import sys, threading, time\n"
        "import numpy as np\n"
        "import saljax.metrics as mx\n"
        "maps = np.random.default_rng(0).random((16, 96, 96), dtype=np.float32)\n"
        "def work(k):\n"
        "    for _ in range(200):\n"
        "        np.asarray(mx.auprc(maps, maps > 0.7) if k else mx.spearman(maps, maps[::-1]))\n"
        "threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in (0, 1)]\n"
        "for t in threads: t.start()\n"
        "end = time.time() + 60\n"
        "for t in threads: t.join(timeout=max(0.1, end - time.time()))\n"
        "print('hung' if any(t.is_alive() for t in threads) else 'done', flush=True)\n"
        "import os; os._exit(0)\n")
    import subprocess
    import sys
    for _ in range(3):
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=240)
        assert out.stdout.strip() == "done", out.stdout + out.stderr[-2000:]


def test_fair_region_scores_equal_sklearn_and_their_definitions():
    """AUROC and AUPRC over prevalence (issue 27) against sklearn on the same pixels, for a
    small and a large region; the mass ratio against its definition; chance is 1 for both."""
    rng = np.random.default_rng(3)
    maps = rng.random((4, 24, 24)).astype(np.float32)
    masks = np.zeros((4, 24, 24), bool)
    masks[0, 2:5, 2:5] = True           # a marker-sized region (1.6%)
    masks[1, 4:16, 6:20] = True         # a lesion-sized one (29%)
    masks[2:, 10:14, 10:14] = True
    maps[2:, 10:14, 10:14] += 0.5       # a map that points at it
    lift = np.asarray(mx.auprc_lift(maps, masks))
    auroc = np.asarray(mx.roc_auc(maps, masks))
    ratio = np.asarray(mx.mass_ratio(maps, masks))
    for k in range(4):
        y, s = masks[k].ravel(), maps[k].ravel()
        assert lift[k] == pytest.approx(average_precision_score(y, s) / y.mean(), rel=1e-5)
        assert auroc[k] == pytest.approx(roc_auc_score(y, s), abs=1e-6)
        assert ratio[k] == pytest.approx((s[y].sum() / s.sum()) / y.mean(), rel=1e-5)
    assert lift[2] > 3 and ratio[2] > 1.5 and auroc[2] > 0.85
    noise = rng.random((200, 24, 24)).astype(np.float32)
    large, small = (np.broadcast_to(masks[k], noise.shape) for k in (1, 0))
    assert float(np.mean(mx.auprc_lift(noise, large))) == pytest.approx(1.0, abs=0.05)
    assert float(np.mean(mx.mass_ratio(noise, large))) == pytest.approx(1.0, abs=0.02)
    assert float(np.mean(mx.roc_auc(noise, small))) == pytest.approx(0.5, abs=0.03)
    assert float(np.mean(mx.auprc_lift(noise, small))) > 1.3     # few pixels: AP's floor rises
