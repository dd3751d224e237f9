"""Verdicts with constructed truths, through the study's own map units and criteria.

Two InceptionV3 replicates at 107 px (mixed10 is 2 x 2, the CAM block): in replicate 0 the
explained class's weights are set so that GradCAM's weighted sum is negative everywhere for
half of the images (their maps collapse: the real X-ray case of issue 26), and both models
are explained with Gradient, GradCAM, Input x Gradient, IG from a zero baseline and the null
maps (Sobel edges, model-dependent noise) at every cascading level. Checked: collapsed maps
are counted, left out of every SSIM criterion and flagged; the edge map fails MPRT, sMPRT and
eMPRT; the noise map passes the study's MPRT rule (Binder et al.'s critique) and fails eMPRT;
gradient is input invariant, input x gradient and IG from zero are not (Kindermans et al.).
"""
import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import saljax.models as sm
from saljax.config import load
from saljax.models import checkpoint
from saljax.study import maps
from saljax.study.criteria import CRITERIA, Study
from saljax.study.inputs import StudyImages
from saljax.study.lineup import TrainedClassifier
from saljax.study.workdir import Workdir

SIZE, N = 107, 8
METHODS = ["gradient", "gradcam", "input_x_gradient", "integrated_gradients"]
NULLS = ["null_edge", "null_noise"]


def images(seed=0):
    """Smooth random gray images, uint8 [N, SIZE, SIZE, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    out = np.zeros((N, SIZE, SIZE))
    for k in range(N):
        for _ in range(6):
            cy, cx, s = rng.uniform(0, SIZE, 2).tolist() + [rng.uniform(6, 25)]
            out[k] += rng.uniform(-1, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    out = (out - out.min()) / (out.max() - out.min())
    return (out * 255).astype(np.uint8)[..., None]


def collapsing_head(model, variables, x, every=False):
    """Replicate 0's logits kernel for class 1: u - t, where GradCAM at mixed10 of image i is
    relu(sum_c (u_c - t) A_c) / const (a GAP head: the gradient is the weight), which is zero
    everywhere iff t >= t_i = max over positions of (A . u) / sum(A). t sits between the
    sorted t_i so that exactly half of the images collapse (``every``: above them all, so
    that every image does). Returns (variables, collapsing images)."""
    _, acts = sm.block_activations(model, variables, x, ["mixed10"])
    a = np.asarray(acts["mixed10"], np.float64).reshape(len(x), -1, acts["mixed10"].shape[-1])
    u = np.random.default_rng(7).normal(size=a.shape[-1])
    total = a.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total > 0, a @ u / total, -np.inf)
    t_i = ratio.max(1)
    ordered = np.sort(t_i)
    t = ordered[-1] + 1.0 if every else (ordered[N // 2 - 1] + ordered[N // 2]) / 2
    kernel = np.asarray(variables["params"]["logits"]["kernel"]).copy()
    kernel[:, 1] = u - t
    params = {**variables["params"], "logits": {**variables["params"]["logits"],
                                                "kernel": jnp.asarray(kernel, jnp.float32)}}
    return {**variables, "params": params}, np.flatnonzero(t_i <= t)


def replicates(root, x, collapse=(0,), every=False):
    """Two InceptionV3 replicates saved under ``root``, BatchNorm calibrated on ``x``; those in
    ``collapse`` get :func:`collapsing_head`. Returns (classifiers, the collapsing images of
    the last one collapsed)."""
    model = sm.create("inception_v3", num_classes=2, width=0.0625)
    classifiers, blank = [], None
    for seed in (0, 1):
        v = sm.calibrate_batch_stats(model, sm.init(model, jax.random.key(seed)), x)
        if seed in collapse:
            v, blank = collapsing_head(model, v, x, every)
        path = str(root / f"inception_v3_seed{seed}")
        checkpoint.save(path, v, name="inception_v3", width=0.0625)
        classifiers.append(TrainedClassifier(f"inception_v3_seed{seed}", "inception_v3", path))
    return classifiers, blank


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("verdicts")
    where = Workdir(str(root / "study"))
    pixels = images()
    x = jnp.asarray(pixels, jnp.float32).repeat(3, -1) / 127.5 - 1.0
    classifiers, blank = replicates(root, x, collapse=(0,))
    c = load("tiny")
    c.size = SIZE
    c.models = [{"name": "inception_v3", "width": 0.0625, "seeds": (0, 1)}]
    c.methods = list(METHODS)
    c.null_maps = list(NULLS)
    c.hparams = {"integrated_gradients": dict(baseline=0.0, x_steps=4)}
    c.arch_hparams = {"inception_v3": {"gradcam": dict(block="mixed10")}}
    c.eval_images, c.utility_images, c.chunk = N, N, N
    c.cascading_levels, c.independent_blocks = -1, 0
    c.random_pairs, c.bootstrap = 60, 400
    c.smprt.update(dict(samples=2, levels=2, images=N))
    c.input_invariance.update(dict(images=N))
    return mapped(c, where, classifiers, pixels, METHODS + NULLS), blank


def mapped(c, where, classifiers, pixels, methods) -> Study:
    """Every map unit of ``classifiers`` on ``pixels`` (no masks) through the study's own
    programs, and the criteria's view of them."""
    data = types.SimpleNamespace(images=StudyImages(tuple(f"i{k}" for k in range(N)), pixels,
                                                    np.zeros((N, SIZE, SIZE), bool),
                                                    has_masks=False))
    plan = maps.schedule(c, classifiers, N, where)
    making = maps.FamilyMaps(plan, "inception_v3", c, data.images.chunks(N), None,
                             progress=False)
    making.trained()
    making.randomized()
    localizer = types.SimpleNamespace(maps=lambda paths, pixels: [], name="unet",
                                      kind="segmenter", label="U-Net")
    return Study(c, where, classifiers, plan.settings, data, localizer, [], methods,
                 progress=False)


def judged(study):
    """Every criterion's results and the summary's per-method entries (as summary.build)."""
    results = {crit.name: crit.evaluate(study) for crit in CRITERIA
               if crit.name not in ("utility", "known_truth", "label_randomization")}
    per_method, top = {m: {} for m in study.methods}, {}
    for crit in CRITERIA:
        if crit.name in results:
            entry = crit.summarize(results[crit.name], study, per_method)
            top.update(entry.top)
            for m, e in entry.methods.items():
                per_method[m].update(e)
    return results, {"study": {"methods": study.methods}, **per_method, **top}


@pytest.fixture(scope="module")
def outcome(built):
    study, blank = built
    return (study, blank) + judged(study)


def test_collapsed_maps_are_counted_left_out_and_flagged(outcome):
    study, blank, results, summary = outcome
    assert 0 < len(blank) < N                       # some images, not all
    flags = results["collapsed"].flags
    assert np.flatnonzero(flags[("gradcam", "inception_v3_seed0", "trained")]).tolist() == \
        blank.tolist()
    # randomization: every comparison with a collapsed trained map is left out, never scored
    r = results["randomization"]
    ssim = r.similarity[("gradcam", "inception_v3_seed0")]["ssim"]
    assert np.isnan(ssim[:, blank]).all() and r.left_out[("gradcam", "inception_v3_seed0")][
        :, blank].all()
    pairs = r.pair_values[("gradcam", "inception_v3_seed0")]
    assert np.isnan(pairs).any() and np.isfinite(pairs).any()
    # agreement: the two replicates' maps of a collapsed image are not "repeatable"
    a = results["agreement"]
    rep = a.pairs[("repeatability", "gradcam", "inception_v3_seed0", "inception_v3_seed1")]
    assert np.isnan(rep[blank]).all() and np.isfinite(rep).sum() <= N - len(blank)
    entry = summary["gradcam"]["repeatability"]
    assert entry["left_out"] >= len(blank)
    assert entry["ssim"]["n"] == np.isfinite(rep).sum()
    # sMPRT, input invariance: no SSIM or correlation from a blank map either
    assert summary["gradcam"]["collapsed"]["flagged"]
    text = "\n".join(next(c for c in CRITERIA if c.name == "collapsed").section(
        {**summary, "study": {"methods": study.methods, "protocol": {"collapsed_maps": "exclude"}}},
        study.methods))
    assert "| gradcam |" in text and "left out" in text
    # the study's other treatment, "score", scores them as the zero maps they are
    scored = dataclasses.replace(study, config=study.config.copy_and_resolve_references())
    scored.config.collapsed_maps = "score"
    again = next(c for c in CRITERIA if c.name == "randomization").evaluate(scored)
    assert np.isfinite(again.similarity[("gradcam", "inception_v3_seed0")]["ssim"][:, blank]).all()


def test_edge_map_fails_mprt_smprt_and_emprt(outcome):
    summary = outcome[3]
    e = summary["null_edge"]
    assert e["randomization"]["verdict_block"]["saljax"] == "fail"
    assert e["randomization"]["verdict"] == "fail"                    # the study's rule too
    assert e["smprt"]["verdict_block"]["saljax"] == "fail"
    assert e["emprt"]["verdict_block"]["saljax"] == "fail"


def test_mprt_block_reads_at_its_deciding_level(outcome):
    study, _, results, summary = outcome
    for m in study.methods:
        b = summary[m]["randomization"]["verdict_block"]
        assert len(b["levels"]) == 17 and b["levels"][-1]["at"] == "stem_1a_3x3"
        if b["saljax"] == "pass":
            assert b["value"]["ci_high"] < b["line"]["mean"] and b["p_pass"] < 0.05
        else:
            assert b["at"] == "stem_1a_3x3"


def test_noise_map_passes_the_studys_mprt_and_fails_emprt(outcome):
    summary = outcome[3]
    e = summary["null_noise"]
    assert e["randomization"]["verdict"] == "pass"                    # Binder et al.'s critique
    assert e["randomization"]["verdict_block"]["saljax"] != "pass"
    assert e["emprt"]["verdict_block"]["saljax"] == "fail"


def test_gradient_is_input_invariant_and_input_x_gradient_and_ig_are_not(outcome):
    summary = outcome[3]
    verdict = {m: summary[m]["input_invariance"]["verdict_block"]["saljax"]
               for m in ("gradient", "input_x_gradient", "integrated_gradients")}
    assert verdict == {"gradient": "pass", "input_x_gradient": "fail",
                       "integrated_gradients": "fail"}
    assert summary["gradient"]["input_invariance"]["max_difference_median"] < 0.02
    assert summary["input_x_gradient"]["input_invariance"]["max_difference_median"] > 0.1


def test_verdicts_table_gathers_every_block_with_null_rows(outcome):
    study, _, _, summary = outcome
    v = summary["verdicts"]
    assert v["null_maps"] == NULLS and v["correction"] == "holm"
    got = {(r["method"], r["criterion"]) for r in v["rows"]}
    for m in study.methods:
        for crit in ("MPRT", "sMPRT", "eMPRT", "repeatability", "input invariance"):
            assert (m, crit) in got
    assert all(r["saljax"] in ("pass", "fail", "inconclusive") for r in v["rows"])
    assert "null_edge" not in v["null_passes"]["MPRT"]
    text = "\n".join(next(c for c in CRITERIA if c.name == "verdicts").section(summary,
                                                                               study.methods))
    assert "## Verdicts" in text and "*null_edge* (null)" in text


def test_smprt_noisy_copies_and_levels_follow_quantus():
    """Quantus's SmoothMPRT: noise sd = noise x the image's range, the last copy noise-free;
    bottom-up level k re-draws the k blocks nearest the input, ending with every block."""
    from saljax.study.criteria import smprt
    x = jax.random.uniform(jax.random.key(0), (3, 16, 16, 3), minval=-1, maxval=0.5)
    copies = np.asarray(smprt.noisy_copies(x, jax.random.key(1), 40, 0.1)).reshape(
        3, 40, 16, 16, 3)
    x = np.asarray(x)
    assert (copies[:, -1] == x).all()
    span = x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))
    sd = (copies[:, :-1] - x[:, None]).std(axis=(1, 2, 3, 4))
    assert sd == pytest.approx(0.1 * span, rel=0.05)
    sets = smprt.levels(17, "bottom_up", 2)
    assert [(s.kind, s.level) for s in sets] == [("trained", 0), ("bottom_up", 1),
                                                 ("bottom_up", 17)]
    names = sm.block_names(sm.create("inception_v3"))
    assert [smprt.level_label(s, names) for s in sets] == ["trained", "up to stem_1a_3x3",
                                                           "up to logits"]
    assert [s.name for s in smprt.levels(17, "top_down", 1)] == ["trained", "cascading_01",
                                                           "cascading_17"]


def test_a_level_where_every_map_collapsed_is_nan_with_its_count(tmp_path):
    """Both replicates' GradCAMs collapse on every image: every level of the randomization
    curve and the repeatability are NaN (None in summary.json) with the count of comparisons
    left out, never a number, and the verdict is not a pass."""
    from saljax import files
    where = Workdir(str(tmp_path / "study"))
    pixels = images(1)
    x = jnp.asarray(pixels, jnp.float32).repeat(3, -1) / 127.5 - 1.0
    classifiers, blank = replicates(tmp_path, x, collapse=(0, 1), every=True)
    assert len(blank) == N
    c = load("tiny")
    c.size = SIZE
    c.models = [{"name": "inception_v3", "width": 0.0625, "seeds": (0, 1)}]
    c.methods, c.null_maps = ["gradcam"], []
    c.arch_hparams = {"inception_v3": {"gradcam": dict(block="mixed10")}}
    c.eval_images, c.utility_images, c.chunk = N, N, N
    c.cascading_levels, c.independent_blocks, c.random_pairs, c.bootstrap = 2, 0, 20, 100
    study = mapped(c, where, classifiers, pixels, ["gradcam"])
    wanted = ("randomization", "agreement")
    results = {crit.name: crit.evaluate(study) for crit in CRITERIA if crit.name in wanted}
    per_method = {"gradcam": {}}
    for crit in CRITERIA:
        if crit.name in results:
            for m, e in crit.summarize(results[crit.name], study, per_method).methods.items():
                per_method[m].update(e)
    r = per_method["gradcam"]["randomization"]
    assert len(r["cascading_ssim_mean"]) == 3                     # trained and two levels
    assert all(np.isnan(v) for v in r["cascading_ssim_mean"])
    assert r["left_out_by_level"] == [2 * N] * 3                  # both models, every image
    assert r["verdict_block"]["saljax"] != "pass" and r["verdict"] != "pass"
    rep = per_method["gradcam"]["repeatability"]
    assert rep["left_out"] == N and rep["ssim"]["n"] == 0
    summary_path = str(tmp_path / "s.json")                       # and stays NaN on disk
    files.write_json(summary_path, {"r": r["cascading_ssim_mean"]})
    assert all(np.isnan(v) for v in files.read_json(summary_path)["r"])
    randomization = next(c for c in CRITERIA if c.name == "randomization")
    text = "\n".join(randomization.section({"study": {"verdict_rule": "-"},
                                            "gradcam": {"randomization": r}}, ["gradcam"]))
    assert text.count(f"n/a ({2 * N} left out)") == 3              # the report says so too
    rows = next(c for c in CRITERIA if c.name == "randomization").tables(
        results["randomization"])["randomization.csv"]
    gradcam = [row for row in rows if row["method"] == "gradcam"]
    assert gradcam and all(np.isnan(row["ssim"]) and row["left_out"] for row in gradcam)
