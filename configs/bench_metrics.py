"""Metric speed only: batched SSIM / Spearman / AUPRC against the skimage / scipy / sklearn loops.

    saljax bench --config configs/bench_metrics.py --workdir runs/bench_metrics
"""
import os

from saljax.config import load


def get_config():
    c = load(os.path.join(os.path.dirname(__file__), "bench.py"))
    c.models = []
    c.pair_reference = False
    c.metrics_pairs = 2000   # map pairs, 2,000 as in the acceptance measurement
    c.metrics_size = 320
    return c
