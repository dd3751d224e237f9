"""The study end to end on a tiny config: every output, sane numbers, exact resume after a kill,
and a changed config refused."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from saljax import report, study
from saljax.config import load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "tiny.py")


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("study") / "run")
    summary = study.run(load(TINY), workdir, progress=False)
    report.write(workdir)
    return workdir, summary


@pytest.mark.slow
def test_the_study_writes_every_output(tiny_study):
    workdir, summary = tiny_study
    for name in ("config.json", "summary.json", "utility.csv", "randomization.csv",
                 "agreement.csv", "pass_lines.csv", "examples.npz", "report.md"):
        assert os.path.exists(os.path.join(workdir, name)), name
    for fig in ("cascading", "agreement", "utility", "examples"):
        with Image.open(os.path.join(workdir, "figures", f"{fig}.png")) as im:
            assert im.format == "PNG" and min(im.size) > 100
    with open(os.path.join(workdir, "report.md")) as f:
        text = f.read()
    for fig in ("cascading", "agreement", "utility", "examples"):
        assert f"figures/{fig}.png" in text
    with np.load(os.path.join(workdir, "examples.npz")) as ex:   # the figure's column names
        levels = list(ex["levels"])
    assert levels == summary["gradient"]["randomization"]["level_blocks"]
    assert levels[0] == "trained" and levels[-1] == "stem_1a_3x3"   # fully randomized
    for method in load(TINY).methods:
        e = summary[method]
        assert set(e["utility"]["auprc_mean"]) == {"trained", "randomized"}
        r = e["randomization"]
        assert r["levels"][0] == 0 and len(r["cascading_ssim_mean"]) == len(r["levels"])
        assert r["cascading_ssim_mean"][0] == pytest.approx(1.0, abs=1e-6)  # trained vs itself
        assert r["verdict"] == ("pass" if min(r["cascading_ssim_mean"][1:]) < r["pass_line"]
                                else "fail")
        assert 0 <= r["pass_line"] <= 1
        for crit in ("repeatability", "reproducibility"):   # None only if every map collapsed
            assert (e[crit]["ssim_mean"] is not None
                    or e[crit]["left_out"] == summary["study"]["images_eval"])
    verdicts = summary["verdicts"]
    assert verdicts["null_maps"] == list(load(TINY).null_maps)
    assert {r["method"] for r in verdicts["rows"]} == set(load(TINY).methods) | set(
        verdicts["null_maps"])
    assert "## Verdicts" in text and "(null)" in text


@pytest.mark.slow
def test_known_truth_outputs(tiny_study):
    """Reliance on the lesion and the marker for both arms, what each arm uses, the maps' region
    scores and whether they reveal it, ROAD with its random and occlusion references: in CSVs,
    summary.json, the report."""
    workdir, summary = tiny_study
    kt = summary["known_truth"]
    cfg = load(TINY)
    assert kt["images"] == cfg.known_truth.images
    arms = {e["arm"] for e in kt["reliance"].values()}
    assert arms == {"normal", "shortcut"}
    for e in kt["reliance"].values():
        for how in cfg.known_truth.infills:
            assert 0 <= e["lesion"][how]["flip_fraction"]["mean"] <= 1
        s = e["marker_sufficiency"]          # the marker pasted into test negatives
        assert s["negatives"] > 0 and 0 <= s["conflict_follows_marker"]["mean"] <= 1
    with open(os.path.join(workdir, "sufficiency.csv")) as f:
        rows = list(csv.DictReader(f))
    assert {r["set"] for r in rows} >= {"marker_added_to_negative"}
    with open(os.path.join(workdir, "region_scores.csv")) as f:
        scores = list(csv.DictReader(f))
    for method in cfg.methods:
        for arm in ("normal", "shortcut"):
            for region in ("lesion", "marker"):    # the summary's mean is the CSV's
                rows = [r for r in scores if (r["method"], r["arm"], r["region"]) ==
                        (method, arm, region)]
                per_image = {}
                for r in rows:
                    per_image.setdefault(r["image"], []).append(float(r["auroc"]))
                means = [np.mean(v) for v in per_image.values() if np.isfinite(v).all()]
                np.testing.assert_allclose(
                    kt["scores"][method][arm][region]["auroc"]["mean"], np.mean(means),
                    atol=1e-9)
            said = kt["reveals"][arm][method]
            assert said["uses"] == kt["arms"][arm]["uses"]
            if said["reveals"] is not None:
                tests = (said["auroc"]["saljax"], said["auroc_gap"]["saljax"])
                assert said["reveals"] == ("yes" if tests == ("pass", "pass") else
                                           "no" if "fail" in tests else "inconclusive")
    for arm, e in kt["arms"].items():
        assert e["shortcut_model"] == (e["turned_positive"]["mean"] >= 0.8 and
                                       e["conflict_follows_marker"]["mean"] >= 0.8)
    assert kt["infill_residual"] < 1e-3
    assert set(kt["road"]) == set(cfg.methods) | set(cfg.null_maps) | {"random",
                                                                      "occlusion_infill"}
    for r in kt["road"].values():
        assert r["fractions"] == list(cfg.known_truth.road_fractions)
        assert len(r["morf_prob"]) == len(r["lerf_prob"]) == len(r["fractions"])
        np.testing.assert_allclose(r["area"]["mean"],
                                   np.mean(np.subtract(r["lerf_prob"], r["morf_prob"])),
                                   atol=1e-6)
    for name in ("reliance.csv", "region_scores.csv", "road.csv"):
        with open(os.path.join(workdir, name)) as f:
            assert len(list(csv.DictReader(f))) > 0, name
    text = open(os.path.join(workdir, "report.md")).read()
    for part in ("## Known truth", "figures/shortcut.png", "figures/road.png"):
        assert part in text
    for fig in ("shortcut", "road"):
        with Image.open(os.path.join(workdir, "figures", f"{fig}.png")) as im:
            assert im.format == "PNG"


@pytest.mark.slow
def test_results_agree_with_independent_recomputation(tiny_study):
    """The summary's numbers are the means of the per-image CSVs, which skimage / sklearn
    reproduce from the saved maps."""
    from skimage.metrics import structural_similarity
    from sklearn.metrics import auc, precision_recall_curve

    from saljax.study.maps import load_maps
    workdir, summary = tiny_study
    with open(os.path.join(workdir, "utility.csv")) as f:
        rows = list(csv.DictReader(f))
    cfg = load(TINY)
    ids = [r["image"] for r in rows if r["method"] == "gradient" and
           r["model"] == "inception_v3_seed0" and r["state"] == "trained"]
    maps = load_maps(workdir, "inception_v3_seed0", "trained", "gradient", len(ids), cfg.chunk)
    ex = np.load(os.path.join(workdir, "examples.npz"))
    mask0 = ex["mask"]
    p, r_, _ = precision_recall_curve(mask0.ravel(), maps[0].ravel())
    first = [r for r in rows if r["method"] == "gradient" and r["model"] == "inception_v3_seed0"
             and r["state"] == "trained"][0]
    assert float(first["auprc"]) == pytest.approx(auc(r_, p), abs=1e-5)
    trained = np.mean([float(r["auprc"]) for r in rows if r["method"] == "gradcam" and
                       r["state"] == "trained"])
    assert summary["gradcam"]["utility"]["auprc_mean"]["trained"] == pytest.approx(trained,
                                                                                    abs=1e-6)
    with open(os.path.join(workdir, "agreement.csv")) as f:
        agree = [r for r in csv.DictReader(f) if r["criterion"] == "repeatability" and
                 r["method"] == "gradient"]
    a = load_maps(workdir, agree[0]["model_a"], "trained", "gradient", 1, cfg.chunk)[0]
    b = load_maps(workdir, agree[0]["model_b"], "trained", "gradient", 1, cfg.chunk)[0]
    assert float(agree[0]["ssim"]) == pytest.approx(
        structural_similarity(a, b, data_range=1.0), abs=1e-5)


def _results(workdir):
    out = {}
    for name in ("utility.csv", "randomization.csv", "agreement.csv", "pass_lines.csv"):
        with open(os.path.join(workdir, name)) as f:
            out[name] = f.read()
    with open(os.path.join(workdir, "summary.json")) as f:
        out["summary"] = json.load(f)
    out["summary"]["study"]["models"] = [{k: v for k, v in m.items() if k != "path"}
                                         for m in out["summary"]["study"]["models"]]
    return out


@pytest.mark.slow
def test_a_killed_study_resumes_to_identical_results(tiny_study, tmp_path):
    reference, _ = tiny_study
    workdir = str(tmp_path / "killed")
    cmd = [sys.executable, "-m", "saljax.cli", "study", "--config", TINY, "--workdir", workdir,
           "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    maps_dir = os.path.join(workdir, "maps")
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        done = sum(len([f for f in fs if f.endswith(".npz") and ".tmp" not in f])
                   for _, _, fs in os.walk(maps_dir)) if os.path.isdir(maps_dir) else 0
        if done >= 5:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the study ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(workdir, "summary.json"))
    rc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr[-2000:]
    assert _results(workdir) == _results(reference)


@pytest.mark.slow
def test_a_changed_config_is_refused(tiny_study):
    workdir, _ = tiny_study
    cfg = load(TINY, ["--config.eval_images=3"])
    with pytest.raises(study.ConfigChanged, match="eval_images"):
        study.run(cfg, workdir, progress=False)


@pytest.mark.slow
def test_the_notebook_runs_on_a_tiny_study(tiny_study):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    workdir, _ = tiny_study
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "explore.ipynb"), as_version=4)
    os.environ["SALJAX_WORKDIR"] = workdir
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}
                                ).execute()
    finally:
        del os.environ["SALJAX_WORKDIR"]
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    diff = float(outputs.split("max |notebook - study|:")[1].split()[0])
    assert diff < 1e-4   # the notebook's maps are the study's maps


def test_per_method_chunk_sizes_reach_each_unit_program():
    """``max_batch_per_method`` (bench's max_batch.json) sets each unit's chunk size: the
    smallest among the unit's methods, ``max_batch`` for methods without an entry."""
    import jax

    import saljax.models as sm
    from saljax.study.maps import MapMaker

    model = sm.create("densenet121", width=0.25)
    methods = {"gradient": {"method": "gradient"}, "gradcam": {"method": "gradcam"},
               "smoothgrad": {"method": "smoothgrad", "nsamples": 4},
               "ig": {"method": "integrated_gradients", "x_steps": 4}}
    maker = MapMaker(model, None, methods, key=jax.random.key(0), max_batch=64,
                     randomization={}, target=1,
                     max_batch_per_method={"smoothgrad": 256, "integrated_gradients": 32})
    chunk = {g: e.max_batch for g, e in maker._explain.items()}
    assert chunk == {("gradient", "gradcam"): 64, ("smoothgrad", "ig"): 32}


@pytest.mark.slow
def test_the_paper_protocol_produces_every_output(tiny_study, tmp_path):
    """The published protocol on the tiny study's models (loaded, not trained again), with the
    MIDL comparison: every output, the study's 12 cascading settings, and both studies side by
    side (`saljax report --compare`)."""
    from saljax import cli
    reference, _ = tiny_study
    cfg = load("tiny_paper")
    cfg.models = [{**dict(spec), "paths": [os.path.join(reference, "train", spec["name"], "models",
                                                        f"{spec['name']}_seed{s}")
                                           for s in spec["seeds"]]} for spec in cfg.models]
    workdir = str(tmp_path / "paper")
    summary = study.run(cfg, workdir, progress=False)
    report.write(workdir)
    for name in ("summary.json", "utility.csv", "randomization.csv", "agreement.csv",
                 "pass_lines.csv", "label_randomization.csv", "examples.npz", "report.md"):
        assert os.path.exists(os.path.join(workdir, name)), name
    r = summary["gradient"]["randomization"]
    assert r["level_blocks"] == ["trained", "logits"] + [f"mixed{i}" for i in range(10, 0, -1)]
    e = summary["gradient"]["label_randomization"]
    assert e["verdict"] in ("pass", "fail") and e["pass_line"] == r["pass_line"]
    assert e["verdict_block"]["saljax"] in ("pass", "fail", "inconclusive")
    assert e["verdict_block"]["study"] == e["verdict"]
    assert "Label randomization (MIDL 2020)" in open(os.path.join(workdir, "report.md")).read()
    with open(os.path.join(workdir, "agreement.csv")) as f:
        pairs = {(row["criterion"], row["model_a"], row["model_b"]) for row in csv.DictReader(f)
                 if row["criterion"] != "baseline"}
    assert pairs == {("repeatability", "inception_v3_seed0", "inception_v3_seed1"),  # the
                     ("reproducibility", "inception_v3_seed1", "densenet121_seed0")}  # study's
    out = str(tmp_path / "compare")
    assert cli.main(["report", "--compare", reference, workdir, "--out", out]) == 0
    text = open(os.path.join(out, "compare.md")).read()
    for fig in ("compare_utility", "compare_cascading", "compare_agreement"):
        with Image.open(os.path.join(out, "figures", f"{fig}.png")) as im:
            assert im.format == "PNG" and min(im.size) > 100
        assert f"figures/{fig}.png" in text
    rows = [line for line in text.splitlines() if line.startswith("| synthetic_cxr")]
    assert len(rows) == 2 * (len(cfg.methods) + len(cfg.null_maps))   # null maps beneath
    assert all(cell.strip().split(" ")[0] in ("pass", "fail", "n/a")
               for row in rows for cell in row.strip("|").split("|")[2:])


@pytest.mark.slow
def test_a_copied_workdir_works_from_the_notebooks_folder(tiny_study, tmp_path):
    """Paths inside a workdir are relative to it: a copy elsewhere, opened by the notebook from
    notebooks/ through a relative path, gives the study's maps."""
    import shutil
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    workdir, _ = tiny_study
    copy = str(tmp_path / "moved" / "study")
    shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns("maps"))
    shutil.copytree(os.path.join(workdir, "maps"), os.path.join(copy, "maps"))
    summary = json.load(open(os.path.join(copy, "summary.json")))
    assert not any(os.path.isabs(m["path"]) for m in summary["study"]["models"])
    notebooks = os.path.join(ROOT, "notebooks")
    nb = nbformat.read(os.path.join(notebooks, "explore.ipynb"), as_version=4)
    os.environ["SALJAX_WORKDIR"] = os.path.relpath(copy, notebooks)
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": notebooks}}).execute()
    finally:
        del os.environ["SALJAX_WORKDIR"]
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert float(outputs.split("max |notebook - study|:")[1].split()[0]) < 1e-4


def test_ctrl_c_stops_within_seconds_and_leaves_nothing_behind(tmp_path):
    """SIGINT: a one-line message within seconds, exit status 130, no XRAI worker process, no
    temporary folder or file left; the workdir keeps its config (the same command resumes)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "saljax.cli", "study", "--config", TINY, "--workdir",
           str(workdir), "--quiet", "--config.methods=['gradient', 'xrai']",
           "--config.hparams={'xrai': {'steps': 2}}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(tmp.glob("saljax-xrai-*")):
        time.sleep(0.2)
    assert proc.poll() is None and list(tmp.glob("saljax-xrai-*")), "the worker never started"
    time.sleep(3)                                       # training and the worker under way
    start = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.time() - start < 5
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("saljax: interrupted")
    time.sleep(1.5)                                     # an orphaned worker would still run
    workers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp) not in workers
    assert not list(tmp.glob("saljax-xrai-*"))
    assert not [p for p in workdir.rglob("*") if ".tmp" in p.name or p.name.startswith(
        "incomplete.")]
    assert (workdir / "config.json").exists()


@pytest.mark.slow
def test_own_xrays_at_224_px_skip_utility_and_say_why(tmp_path):
    """The ``folder`` config on a folder of 8-bit PNGs (labels, no boxes or masks) at 224 px,
    with tiny models: randomization, repeatability and reproducibility run, GradCAM at the
    config's block; utility (and the U-Net baseline) is skipped, and summary and report say
    why; the example figure's columns are the levels the tables name."""
    from saljax.data import synthetic_images as synthetic
    manual = tmp_path / "in"
    manual.mkdir()
    rows = []
    for i in range(40):
        ex = synthetic.example(5, i, synthetic.SyntheticConfig(size=256))
        Image.fromarray(ex["image"][..., 0]).save(manual / f"x{i}.png")
        rows.append((f"x{i}.png", ex["label"], "train" if i < 24 else "val" if i < 32 else "test"))
    with open(manual / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "split")] + rows)
    cfg = load("folder", [f"--config.manual_dir={manual}",
                          "--config.models=[{'name': 'inception_v3', 'width': 0.0625, "
                          "'seeds': (0, 1)}]",
                          "--config.methods=['gradient', 'gradcam']", "--config.train.epochs=1",
                          "--config.eval_images=2", "--config.cascading_levels=2",
                          "--config.independent_blocks=0", "--config.random_pairs=10",
                          "--config.bootstrap=100", "--config.chunk=4"])
    assert cfg.size == 224 and not cfg.known_truth.enabled
    workdir = str(tmp_path / "run")
    summary = study.run(cfg, workdir, progress=False)
    report.write(workdir)
    assert summary["study"]["size"] == 224
    assert "no lesion masks" in summary["study"]["utility_skipped"]
    assert summary["gradient"]["utility"] == {"skipped": summary["study"]["utility_skipped"]}
    for method in ("gradient", "gradcam"):
        assert summary[method]["randomization"]["verdict"] in ("pass", "fail")
        assert summary[method]["repeatability"]["ssim_mean"] is not None
    assert not os.path.exists(os.path.join(workdir, "utility.csv"))
    assert not os.path.exists(os.path.join(workdir, "models", "unet_seed0"))
    text = open(os.path.join(workdir, "report.md")).read()
    assert "Localization utility was skipped: the dataset has no lesion masks" in text
    assert "Utility skipped; randomization and agreement on" in text
    with np.load(os.path.join(workdir, "examples.npz")) as ex:
        assert ex["maps"].shape[-2:] == (224, 224)
        assert list(ex["levels"]) == summary["gradcam"]["randomization"]["level_blocks"]
        assert list(ex["levels"])[:2] == ["trained", "logits"]
    with Image.open(os.path.join(workdir, "figures", "examples.png")) as im:
        assert im.format == "PNG"


def read_rows(workdir, name):
    with open(os.path.join(workdir, name)) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_retinanet_baseline_is_scored_like_the_maps(tmp_path):
    """``localization_baseline="retinanet"``: two detectors trained on the boxes; their score
    maps (each pixel the best detection covering it) scored against the lesion masks as the
    maps are, replicate SSIM as repeatability's baseline; summary and report name it."""
    from sklearn.metrics import auc, precision_recall_curve

    from saljax.models import checkpoint
    from saljax.training import detector
    cfg = load(TINY, ["--config.localization_baseline=retinanet",
                      "--config.detection.width=0.0625", "--config.detection.epochs=1",
                      "--config.models=[{'name': 'inception_v3', 'width': 0.0625, "
                      "'seeds': (0, 1)}]", "--config.methods=['gradient']",
                      "--config.known_truth.enabled=False", "--config.independent_blocks=0"])
    workdir = str(tmp_path / "run")
    summary = study.run(cfg, workdir, progress=False)
    report.write(workdir)
    b = summary["baselines"]
    assert b["localization_model"] == "RetinaNet"
    assert set(b["utility"]) == {"average_mask", "retinanet_seed0", "retinanet_seed1"}
    assert b["localization_repeatability"]["mean"] is not None
    rows = [r for r in read_rows(workdir, "utility.csv") if r["method"] == "detection"]
    assert {r["model"] for r in rows} == {"retinanet_0", "retinanet_1"}
    # an independent recomputation: the detections rasterized here, sklearn's AUPRC
    with np.load(os.path.join(workdir, "examples.npz")) as ex:
        image, mask = ex["image"], ex["mask"]
    model, variables, spec = checkpoint.load(os.path.join(workdir, "models", "retinanet_seed0"))
    boxes, scores, valid = detector.detections(model, variables, image[None, ..., None],
                                               anchor_scale=spec["metadata"]["anchor_scale"])
    centre = np.arange(image.shape[0]) + 0.5
    want = np.zeros(image.shape, np.float32)
    for (x0, y0, x1, y1), s, ok in zip(np.asarray(boxes[0]), np.asarray(scores[0]),
                                       np.asarray(valid[0])):
        inside = np.outer((centre >= y0) & (centre < y1), (centre >= x0) & (centre < x1))
        want = np.where(inside & ok, np.maximum(want, s), want)
    precision, recall, _ = precision_recall_curve(mask.ravel() > 0, want.ravel())
    first = next(r for r in rows if r["model"] == "retinanet_0")
    assert float(first["auprc"]) == pytest.approx(auc(recall, precision), abs=1e-5)
    base = [r for r in read_rows(workdir, "agreement.csv") if r["criterion"] == "baseline"]
    assert base and {(r["model_a"], r["model_b"]) for r in base} == {("retinanet_0",
                                                                        "retinanet_1")}
    text = open(os.path.join(workdir, "report.md")).read()
    assert "RetinaNet (localization baseline) AUPRC" in text
    assert "RetinaNet replicate SSIM" in text
