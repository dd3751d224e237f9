"""Metric speed only: batched SSIM / Spearman / AUPRC against the skimage / scipy / sklearn loops.

    saljax bench --config bench_metrics --workdir runs/bench_metrics
"""
from saljax.configs import bench


def get_config():
    c = bench.get_config()
    c.models = []
    c.pair_reference = False
    c.metrics_pairs = (16, 500)   # map pairs per call: a few, and a study's worth
    c.metrics_size = 320
    return c
