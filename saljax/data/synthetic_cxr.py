"""The synthetic chest X-rays (:mod:`saljax.data.synthetic`) as a TFDS builder."""
from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from saljax.data import common
from saljax.data.synthetic import SyntheticConfig, example


@dataclasses.dataclass
class SyntheticBuilderConfig(tfds.core.BuilderConfig):
    """Generator options and split sizes; the name hashes them, so different data never
    shares a directory."""
    synthetic: SyntheticConfig = SyntheticConfig()
    seed: int = 0
    counts: tuple = (("train", 1000), ("val", 200), ("test", 200))


def synthetic_config(size: int = 128, seed: int = 0, counts=None, **options):
    counts = tuple(counts or (("train", 1000), ("val", 200), ("test", 200)))
    synth = SyntheticConfig(size=size, **options)
    name = common.config_name(size, seed=seed, counts=counts,
                              options=tuple(sorted(dataclasses.asdict(synth).items())))
    return SyntheticBuilderConfig(name=name, synthetic=synth, seed=seed, counts=counts)


class SyntheticCxr(tfds.core.GeneratorBasedBuilder):
    """Synthetic radiographs with exact lesion masks and boxes; no download."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [synthetic_config(128), synthetic_config(320)]

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                     features=common.features(self.builder_config.synthetic.size,
                                                              True))

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        out, start = {}, 0
        for split, n in cfg.counts:
            out[split] = self._generate_examples(start, n)
            start += n  # splits are disjoint index ranges of one seeded stream
        return out

    def _generate_examples(self, start, n):
        cfg = self.builder_config
        for i in range(start, start + n):
            ex = example(cfg.seed, i, cfg.synthetic)
            yield ex["id"], {k: ex[k] for k in ("id", "image", "label", "mask", "boxes")}
