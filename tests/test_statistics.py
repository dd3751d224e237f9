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
