"""Known truth's judgements with constructed truths: region scores against sklearn, what an arm
uses from its measured reliance, and whether a map reveals it."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from saljax.study.criteria import known_truth_scores as scoring
from saljax.study.criteria.known_truth import KnownTruthResults

BOOT = dict(seed=0, n_boot=300)


def regions(n, size=24, seed=0):
    """Per image a lesion (8 x 8 at a random place in the lower half) and, on even images, a
    marker (3 x 3 in the top right corner)."""
    rng = np.random.default_rng(seed)
    lesion = np.zeros((n, size, size), bool)
    marker = np.zeros((n, size, size), bool)
    for i in range(n):
        y, x = rng.integers(12, 16), rng.integers(0, 16)
        lesion[i, y:y + 8, x:x + 8] = True
        if i % 2 == 0:
            marker[i, 1:4, 20:23] = True
    return lesion, marker


def test_region_scores_equal_sklearn_and_are_nan_without_a_region():
    rng = np.random.default_rng(1)
    lesion, marker = regions(6)
    maps = rng.random((6, 24, 24)).astype(np.float32)
    maps[:, :12] = np.round(maps[:, :12], 1)                    # ties in the top half
    for masks in (lesion, marker):
        got = scoring.region_scores(maps, masks)
        for i in range(6):
            y, s = masks[i].ravel(), maps[i].ravel()
            if not y.any():
                assert all(np.isnan(got[k][i]) for k in scoring.SCORES)
                continue
            np.testing.assert_allclose(got["auroc"][i], roc_auc_score(y, s), atol=1e-5)
            np.testing.assert_allclose(got["auprc_lift"][i],
                                       average_precision_score(y, s) / y.mean(), rtol=1e-4)
            share = np.abs(s)[y].sum() / np.abs(s).sum()
            np.testing.assert_allclose(got["mass_ratio"][i], share / y.mean(), rtol=1e-4)
            np.testing.assert_allclose(got["pointing"][i], y[s == s.max()].mean())  # ties: share


def results(n_models, turned, follows, lesion_flips, maps_point_at, n=12, seed=0):
    """Known-truth results of one shortcut arm: ``turned`` of 8 negatives turn positive,
    ``follows`` of the 6 lesion-only positives are negative, removing the lesion flips
    ``lesion_flips`` of the images; each method's maps bright on ``maps_point_at``'s region."""
    rng = np.random.default_rng(seed)
    lesion, marker = regions(n, seed=seed)
    has_marker = marker.reshape(n, -1).any(-1)
    scores, reliance, sufficiency = {}, {}, {}
    for k in range(n_models):
        model = f"m{k}"
        reliance[("shortcut", model, "lesion", "noisy_linear")] = {
            "flipped": np.arange(n) < round(lesion_flips * n)}
        sufficiency[("shortcut", model)] = {
            "positive": np.zeros(8, bool), "positive_added": np.arange(8) < round(turned * 8),
            "lesion_only_positive": np.arange(6) >= round(follows * 6)}
        for method, target in maps_point_at.items():
            region = {"lesion": lesion, "marker": marker}[target]
            maps = rng.random(lesion.shape).astype(np.float32) + 2.0 * region
            scores[(method, "shortcut", model)] = {
                "lesion": scoring.region_scores(maps, lesion),
                "marker": scoring.region_scores(maps, marker)}
    return KnownTruthResults(tuple(f"i{j}" for j in range(n)), has_marker, reliance, scores,
                             {}, {}, sufficiency, {"shortcut": 1.0})


def test_a_shortcut_model_uses_the_marker_and_a_marker_map_reveals_it():
    r = results(2, turned=1.0, follows=1.0, lesion_flips=0.0,
                maps_point_at={"marker_map": "marker", "lesion_map": "lesion"})
    arm = scoring.arm_reliance(r, "shortcut", BOOT)
    assert arm["shortcut_model"] and arm["uses"] == "marker"
    assert arm["turned_positive"]["mean"] == 1.0
    assert arm["conflict_follows_marker"]["mean"] == 1.0        # 8 turned + 6 stayed negative
    verdicts = scoring.reveals(r, {"shortcut": arm}, 0.05, BOOT)["shortcut"]
    assert verdicts["marker_map"]["reveals"] == "yes"
    assert verdicts["lesion_map"]["reveals"] == "no"


@pytest.mark.parametrize("turned,follows,flips,uses", [
    (0.75, 1.0, 0.0, "unclear"),          # just below the line: not a shortcut model
    (1.0, 0.5, 0.75, "lesion"),           # an "or" model that removal says uses the lesion
    (0.0, 0.0, 0.25, "unclear")])
def test_an_arm_is_a_shortcut_model_only_when_measured_so(turned, follows, flips, uses):
    r = results(1, turned=turned, follows=follows, lesion_flips=flips,
                maps_point_at={"marker_map": "marker"})
    arm = scoring.arm_reliance(r, "shortcut", BOOT)
    assert not arm["shortcut_model"] and arm["uses"] == uses
    said = scoring.reveals(r, {"shortcut": arm}, 0.05, BOOT)["shortcut"]["marker_map"]
    assert said["reveals"] == ("no" if uses == "lesion" else None)


def test_known_truth_options_are_checked_before_any_work(tmp_path):
    from saljax.config import load
    from saljax.study import check
    base = ["--config.known_truth.enabled=True"]
    cases = [("--config.known_truth.shortcut_strengths=(0.5, 1.5)", "shortcut_strengths"),
             ("--config.known_truth.shortcut_strengths=(0.8, 0.801)", "the same strength"),
             ("--config.known_truth.shortcut_data.lesion_absent=1.0", "lesion_absent"),
             ("--config.known_truth.road_ranking=abs", "road_ranking"),
             ("--config.known_truth.road_noise=-0.1", "road_noise")]
    for override, message in cases:
        with pytest.raises(ValueError, match=message):
            check.config(load("synthetic", base + [override]), str(tmp_path / "w"))
    cfg = load("synthetic")
    cfg.known_truth.shortcut_data = {"marker_size": 0.5}
    with pytest.raises(ValueError, match="unknown option.*marker_size"):
        check.config(cfg, str(tmp_path / "w"))
    assert not (tmp_path / "w" / "config.json").exists()
