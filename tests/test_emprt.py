"""eMPRT against Quantus's definition (numpy's histogram, scipy's entropy, the relative rise from
the trained to the randomized map), on saved maps read through a study's Workdir."""
import types

import numpy as np
import pytest
from scipy import stats

from saljax import files
from saljax.study.criteria import CRITERIA, Study, emprt
from saljax.study.inputs import StudyImages
from saljax.study.maps import Setting
from saljax.study.workdir import Workdir


def quantus_entropy(a, n_bins=100):
    """quantus.functions.complexity_func.discrete_entropy."""
    histogram, _ = np.histogram(a, bins=n_bins)
    return stats.entropy(pk=histogram)


def test_histogram_entropy_is_quantus_discrete_entropy():
    rng = np.random.default_rng(0)
    maps = np.stack([rng.normal(size=(40, 40)), rng.exponential(size=(40, 40)) * 1e-3,
                     np.round(rng.normal(size=(40, 40)), 1),            # many ties
                     np.where(rng.random((40, 40)) < 0.9, 0.0, 1.0),     # two values
                     np.full((40, 40), 0.25)]).astype(np.float32)         # one value
    got = np.asarray(emprt.histogram_entropy(maps))
    want = [quantus_entropy(m) for m in maps]
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-6)
    assert got[-1] == 0


def second_moment_normalised(a):
    """quantus.functions.normalise_func.normalise_by_average_second_moment_estimate (all axes):
    the map over the square root of its mean square, zeros left as they are."""
    a = np.asarray(a, np.float64)
    rms = np.sqrt(np.mean(a ** 2))
    return a if rms == 0 else a / rms


def test_the_entropy_is_the_same_with_quantus_normalisation():
    """Hedström et al. normalise maps by their second moment before the comparison; the
    histogram spans each map's own range, so the entropy (and eMPRT) does not change."""
    rng = np.random.default_rng(2)
    maps = np.stack([rng.normal(size=(40, 40)) * 1e-4, rng.gamma(2.0, size=(40, 40)) * 30,
                     np.zeros((40, 40))]).astype(np.float32)
    normalised = np.stack([second_moment_normalised(m) for m in maps]).astype(np.float32)
    np.testing.assert_allclose(np.asarray(emprt.histogram_entropy(normalised)),
                               [quantus_entropy(m) for m in maps], rtol=2e-3, atol=1e-6)


def test_against_quantus_itself():
    quantus = pytest.importorskip("quantus.functions.complexity_func")
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(4, 32, 32)).astype(np.float32)
    want = [quantus.discrete_entropy(a=m, x=m) for m in maps]
    np.testing.assert_allclose(np.asarray(emprt.histogram_entropy(maps)), want, rtol=2e-3)


def test_relative_rise():
    np.testing.assert_allclose(emprt.relative_rise([2.0, 1.0, 0.0], [3.0, 0.5, 1.0]),
                               [0.5, -0.5, np.nan])


@pytest.fixture
def saved_study(tmp_path):
    """Two models' signed maps of 6 images, trained (smooth) and randomized (noise), saved in
    chunks of 4 as a study saves them."""
    rng = np.random.default_rng(1)
    where, chunk, n = Workdir(str(tmp_path)), 4, 6
    yy, xx = np.mgrid[:32, :32]
    smooth = np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 60.0)
    models, saved = [], {}
    for mid in ("net_seed0", "net_seed1"):
        models.append(types.SimpleNamespace(id=mid, arch="net", variant="", permuted=False))
        for setting, maps in (("trained", smooth * rng.uniform(0.5, 2, (n, 1, 1))),
                              ("cascading_03", rng.normal(size=(n, 32, 32)))):
            saved[(mid, setting)] = maps.astype(np.float32)
            padded = np.concatenate([maps, maps[:2]]).astype(np.float32)
            for c in range(2):
                part = padded[c * chunk:(c + 1) * chunk]
                files.write_npz(where.unit(mid, setting, "gradient", c),
                                {"gray": np.abs(part), "signed": part})
    settings = {m.id: [Setting("trained", "trained", 0, n),
                       Setting("cascading_03", "cascading", 3, n)] for m in models}
    config = types.SimpleNamespace(chunk=chunk, eval_images=n, randomize_every_architecture=True,
                                   bootstrap=200, seed=0, collapsed_maps="exclude",
                                   verdicts=types.SimpleNamespace(alpha=0.05),
                                   emprt=types.SimpleNamespace(margin=0.05))
    images = StudyImages(tuple(f"i{k}" for k in range(n)), np.zeros((n, 32, 32, 1), np.uint8),
                         np.zeros((n, 32, 32), bool))
    study = Study(config, where, models, settings, types.SimpleNamespace(images=images), None,
                  [], ["gradient"], progress=False)
    return study, saved


def test_emprt_of_saved_maps_is_the_relative_rise_of_quantus_entropy(saved_study):
    study, saved = saved_study
    results = emprt.evaluate(study)
    for mid in ("net_seed0", "net_seed1"):
        want_t = [quantus_entropy(m) for m in saved[(mid, "trained")]]
        want_r = [quantus_entropy(m) for m in saved[(mid, "cascading_03")]]
        got = results.scores[("gradient", mid)]
        np.testing.assert_allclose(got["trained"], want_t, rtol=2e-3)
        np.testing.assert_allclose(got["emprt"], (np.array(want_r) - want_t) / want_t, rtol=1e-2)
        assert (got["emprt"] > 0).all()          # noise is more complex than a smooth blob
    rows = results.rows()
    assert len(rows) == 2 * 6 and {r["setting"] for r in rows} == {"cascading_03"}
    entry = emprt.CRITERION.summarize(results, study, {"gradient": {}})
    e = entry.methods["gradient"]["emprt"]
    per_image = np.mean([results.scores[("gradient", m)]["emprt"]
                         for m in ("net_seed0", "net_seed1")], 0)
    assert e["score"]["mean"] == pytest.approx(per_image.mean())
    assert e["score"]["ci_low"] <= e["score"]["mean"] <= e["score"]["ci_high"]
    summary = {"study": {"methods": ["gradient"]}, "gradient": entry.methods["gradient"]}
    text = "\n".join(emprt.CRITERION.section(summary, ["gradient"]))
    assert "eMPRT" in text and "figures/emprt.png" in text
    assert emprt.CRITERION.overview(summary, "gradient") == {"eMPRT": f"{e['score']['mean']:.3f}"}


def test_emprt_is_a_registered_criterion():
    assert emprt.CRITERION in CRITERIA
