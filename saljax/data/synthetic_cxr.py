"""The synthetic chest X-rays (:mod:`saljax.data.synthetic_images`) as a TFDS builder."""
from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from saljax.data import common
from saljax.data.synthetic_images import SyntheticConfig, example


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
    """Synthetic radiographs with exact lesion masks and boxes, and the marker and its square;
    no download."""
    HAS_BOXES = True     # examples carry lesion boxes (what a detector baseline trains on)
    HAS_MARKERS = True   # examples carry a marker known to the pixel (known truth)

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.1.0": "the marker (0/1) and its square (marker_mask); markers near a "
                              "random corner; a test split's own marker mode"}
    BUILDER_CONFIGS = [synthetic_config(128), synthetic_config(320)]

    def _info(self):
        size = self.builder_config.synthetic.size
        return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                     features=common.features(size, True, markers=True))

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        out, start = {}, 0
        for split, n in cfg.counts:
            synth = cfg.synthetic
            if split == "test" and synth.test_marker:
                synth = dataclasses.replace(synth, marker=synth.test_marker)
            out[split] = self._generate_examples(start, n, synth)
            start += n  # splits are disjoint index ranges of one seeded stream
        return out

    def _generate_examples(self, start, n, synth):
        for i in range(start, start + n):
            ex = example(self.builder_config.seed, i, synth)
            yield ex["id"], {k: ex[k] for k in ("id", "image", "label", "mask", "boxes",
                                                "marker", "marker_mask")}
