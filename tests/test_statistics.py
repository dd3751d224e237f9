"""The study's statistics against simulations with a known mean: the hierarchical bootstrap's
interval covers it at about its nominal rate where the images-only one does not."""
import numpy as np
import pytest

from saljax.study import statistics


def simulated(seed, replicates=8, images=100, sd_replicate=0.05, sd_image=0.1, sd_noise=0.1):
    """Per-image values of ``replicates`` models on the same images, true mean 0.5: a model's
    offset, an image's offset (shared by every model) and noise."""
    rng = np.random.default_rng(seed)
    return (0.5 + rng.normal(0, sd_replicate, (replicates, 1))
            + rng.normal(0, sd_image, (1, images)) + rng.normal(0, sd_noise, (replicates, images)))


def coverage(interval, trials=300):
    hits = 0
    for k in range(trials):
        s = interval(simulated(1000 + k), k)
        hits += s["ci_low"] <= 0.5 <= s["ci_high"]
    return hits / trials


def test_hierarchical_bootstrap_covers_the_true_mean_at_about_its_nominal_rate():
    hier = coverage(lambda v, k: statistics.hierarchical_summarize(v, seed=k, n_boot=500))
    images_only = coverage(lambda v, k: statistics.summarize(v.mean(0), seed=k, n_boot=500))
    assert 0.90 <= hier <= 0.99, hier            # nominal 0.95 (measured 0.937)
    assert images_only < 0.80, images_only       # it ignores the replicate models (0.687)


def test_hierarchical_summary_of_a_known_table():
    v = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, np.nan]])
    s = statistics.hierarchical_summarize(v, n_boot=200)
    assert s["mean"] == pytest.approx(2.5) and s["n"] == 2 and s["n_nan"] == 1
    assert s["n_replicates"] == 2 and s["ci_low"] <= 2.5 <= s["ci_high"]
    assert 1.0 <= s["ci_low"] and s["ci_high"] <= 4.0      # means of the data's own cells
    one = statistics.hierarchical_summarize(np.ones((3, 5)), n_boot=50)
    assert one["ci_low"] == one["ci_high"] == one["mean"] == 1.0
    with pytest.raises(ValueError, match="replicates, images"):
        statistics.hierarchical_summarize(np.ones(4))


def test_difference_against_a_noisy_line_covers_the_true_gap_and_tests_at_its_level():
    """Values with true mean 0.5 against a pass line of random pairs with true mean 0.45 (its
    own replicate offsets): the interval of the gap covers 0.05 at about 95%; with no true gap,
    the one-sided test rejects at about its level."""
    def line(seed, mean):
        rng = np.random.default_rng(seed)
        return mean + rng.normal(0, 0.03, (8, 1)) + rng.normal(0, 0.1, (8, 60))
    hits = rejects = 0
    trials = 200
    for k in range(trials):
        t = statistics.difference(simulated(2000 + k), line(5000 + k, 0.45), seed=k, n_boot=400)
        d = t["difference"]
        hits += d["ci_low"] <= 0.05 <= d["ci_high"]
        null = statistics.difference(simulated(2000 + k), line(5000 + k, 0.5), seed=k,
                                     n_boot=400)
        rejects += statistics.p_below(null) < 0.05
    assert 0.88 <= hits / trials <= 0.99, hits / trials
    assert rejects / trials <= 0.10, rejects / trials


def test_difference_paired_and_constant_lines():
    v = np.array([[0.6, 0.7, np.nan], [0.8, 0.9, 0.5]])
    t = statistics.difference(v, paired=[0.5, 0.5, 0.9], n_boot=200)
    assert t["value"]["mean"] == pytest.approx(np.mean([0.7, 0.8, 0.5]))
    assert t["difference"]["mean"] == pytest.approx(np.mean([0.2, 0.3, -0.4]))
    same = statistics.difference(np.ones((2, 4)), 1.0, n_boot=50)
    assert same["difference"]["mean"] == 0 and statistics.p_below(same) == 0.5
    above = statistics.difference(np.ones((2, 4)), 0.2, n_boot=50)
    assert statistics.p_above(above) == 0.0 and statistics.p_below(above) == 1.0
    assert statistics.p_below(above, threshold=0.7) == 1.0   # 0.8 is not below 0.7
    assert statistics.p_below(statistics.difference(np.zeros((1, 3)), 0.0), 0.05) == 0.0


def test_holm_matches_its_definition():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    adjusted = statistics.holm(p)
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x, 3 x, 2 x, 1 x, then running maxima
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 0.2, 9)
    brute = [max(min(1.0, (9 - j) * np.sort(q)[j]) for j in range(np.searchsorted(np.sort(q), x)
                                                              + 1)) for x in q]
    assert statistics.holm(q) == pytest.approx(brute)
