"""Data parallelism: the same maps and metrics on 1 and on 8 (forced host) CPU devices."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
def test_maps_and_metrics_equal_on_one_and_eight_devices():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run([sys.executable, os.path.join(HERE, "sharding_worker.py")], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.split("RESULT", 1)[1])
    assert out["shape"] == [6, 75, 75, 3]
    assert out["devices_used"] == 8
    for method in ("gradient", "smoothgrad", "gradcam", "integrated_gradients", "xrai"):
        assert out[method] < 1e-4, (method, out[method])
    assert out["metrics"] < 1e-4   # float32 rounding of per-device batch sizes
