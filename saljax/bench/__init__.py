"""``saljax bench``: saliency throughput against PAIR and captum on the same device
(:mod:`saljax.bench.run`); the PAIR adapter the tests share (:mod:`saljax.bench.pair`)."""
from saljax.bench.run import pattern_images, run

__all__ = ["run", "pattern_images"]
