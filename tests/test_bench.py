"""``saljax bench`` end to end on a small config: every record and file, PAIR side by side,
bfloat16 agreement with float32, metric timings."""
import json
import os

import pytest

from saljax import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_bench_runs_end_to_end(tmp_path):
    rc = cli.main(["bench", "--config", "bench",
                   "--workdir", str(tmp_path), "--config.size=75", "--config.batch_sizes=(2,)",
                   "--config.models=[{'name': 'inception_v3', 'width': 0.0625}]",
                   "--config.methods=('gradient', 'smoothgrad', 'gradcam')",
                   "--config.hparams={'smoothgrad': {'nsamples': 2}}",
                   "--config.dtype=bfloat16", "--config.reps=1", "--config.pair_images=1",
                   "--config.captum_reference=False",
                   "--config.metrics_pairs=(20,)", "--config.metrics_size=32"])
    assert rc == 0
    records = json.load(open(tmp_path / "bench.json"))
    ours = [r for r in records if r.get("impl") == "saljax"]
    pair = [r for r in records if r.get("impl") == "pair"]
    assert {r["method"] for r in ours} == {"gradient", "smoothgrad", "gradcam"}
    assert {r["method"] for r in pair} == {"gradient", "smoothgrad", "gradcam"}
    for r in ours + pair:
        for field in ("model", "method", "batch", "maps_per_s", "passes_per_s",
                      "gflops_per_map", "device"):
            assert field in r
        assert r["maps_per_s"] > 0 and r["gflops_per_map"] > 0
    sg = next(r for r in ours if r["method"] == "smoothgrad")
    grad = next(r for r in ours if r["method"] == "gradient")
    assert sg["passes_per_map"] == 2 and grad["passes_per_map"] == 1
    assert abs(sg["gflops_per_map"] - 2 * grad["gflops_per_map"]) < 1e-6 * sg["gflops_per_map"]
    for r in ours:   # bfloat16 compute keeps the maps close to float32's
        assert 0.5 < r["ssim_vs_float32"] <= 1.0 + 1e-6, r
    metrics = [r for r in records if "metric" in r]
    assert {r["metric"] for r in metrics} == {"ssim", "spearman", "auprc"}
    assert all(r["max_abs_diff"] < 1e-5 for r in metrics)
    md = open(tmp_path / "bench.md").read()
    assert "SSIM vs f32" in md and "Metrics" in md


def test_captum_reference_side_by_side(tmp_path):
    """Where torch, torchvision and captum import, the bench adds captum's maps/s on
    torchvision's InceptionV3, and captum runs as many model passes per map (counted by a
    forward hook) as saljax's methods, so maps/s compare like for like."""
    from saljax.bench import captum
    if not captum.available():
        pytest.skip("torch, torchvision or captum is not installed")
    rc = cli.main(["bench", "--config", "bench",
                   "--workdir", str(tmp_path), "--config.size=75", "--config.batch_sizes=(1,)",
                   "--config.models=[{'name': 'inception_v3', 'width': 0.0625}]",
                   "--config.methods=('gradient', 'smoothgrad', 'integrated_gradients')",
                   "--config.hparams={'smoothgrad': {'nsamples': 3}, "
                   "'integrated_gradients': {'x_steps': 4}}",
                   "--config.reps=1", "--config.pair_reference=False"])
    assert rc == 0
    records = json.load(open(tmp_path / "bench.json"))
    captum = {r["method"]: r for r in records if r.get("impl") == "captum"}
    ours = {r["method"]: r for r in records if r.get("impl") == "saljax"}
    assert set(captum) == {"gradient", "smoothgrad", "integrated_gradients"}
    for method, r in captum.items():
        assert r["maps_per_s"] > 0 and r["passes_per_map"] == ours[method]["passes_per_map"]
    assert [captum[m]["passes_per_map"] for m in ("gradient", "smoothgrad",
                                                  "integrated_gradients")] == [1, 3, 4]
