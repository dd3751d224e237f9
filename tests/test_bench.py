"""``saljax bench`` end to end on a small config: every record and file, PAIR side by side,
bfloat16 agreement with float32, metric timings."""
import json
import os

from saljax import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_runs_end_to_end(tmp_path):
    rc = cli.main(["bench", "--config", os.path.join(ROOT, "configs", "bench.py"),
                   "--workdir", str(tmp_path), "--config.size=75", "--config.batch_sizes=(2,)",
                   "--config.models=[{'name': 'inception_v3', 'width': 0.0625}]",
                   "--config.methods=('gradient', 'smoothgrad', 'gradcam')",
                   "--config.hparams={'smoothgrad': {'nsamples': 2}}",
                   "--config.dtype=bfloat16", "--config.reps=1", "--config.pair_images=1",
                   "--config.metrics_pairs=20", "--config.metrics_size=32"])
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
