"""Collapsed (constant) maps are counted per method, model and setting from the saved maps, and
a method with many is flagged in the summary and the report."""
import types

import numpy as np

from saljax import files
from saljax.study.criteria import CRITERIA, Study, collapsed
from saljax.study.inputs import StudyImages
from saljax.study.maps import Setting
from saljax.study.workdir import Workdir


def test_constant_and_empty_maps_are_collapsed():
    rng = np.random.default_rng(0)
    maps = np.stack([rng.random((8, 8)), np.zeros((8, 8)), np.full((8, 8), 0.3),
                     np.full((8, 8), np.nan), np.eye(8)])
    assert collapsed.collapsed(maps).tolist() == [False, True, True, True, False]
    assert collapsed.collapsed(np.zeros((0, 8, 8))).shape == (0,)


def test_collapsed_maps_are_counted_flagged_and_reported(tmp_path):
    """GradCAM-like maps: 2 of a model's 6 trained maps all zero (the class gradient negative
    everywhere), none at the randomized level; gradient's maps never collapse."""
    rng = np.random.default_rng(1)
    where, chunk, n = Workdir(str(tmp_path)), 4, 6
    blank = {("gradcam", "trained"): [1, 4]}
    model = types.SimpleNamespace(id="net_seed0", arch="net", variant="", permuted=False)
    settings = {model.id: [Setting("trained", "trained", 0, n),
                           Setting("cascading_02", "cascading", 2, 3)]}
    for s in settings[model.id]:
        for method in ("gradient", "gradcam"):
            maps = rng.random((s.n_images, 16, 16)).astype(np.float32)
            maps[blank.get((method, s.name), [])] = 0.0
            padded = np.concatenate([maps, np.repeat(maps[-1:], 8 - s.n_images, 0)])
            for c in range(-(-s.n_images // chunk)):
                part = padded[c * chunk:(c + 1) * chunk]
                files.write_npz(where.unit(model.id, s.name, method, c),
                                {"gray": part, "signed": part})
    config = types.SimpleNamespace(chunk=chunk, eval_images=3, bootstrap=100, seed=0)
    images = StudyImages(tuple(f"i{k}" for k in range(n)), np.zeros((n, 16, 16, 1), np.uint8),
                         np.zeros((n, 16, 16), bool))
    study = Study(config, where, [model], settings, types.SimpleNamespace(images=images), None,
                  [], ["gradient", "gradcam"], progress=False)
    crit = collapsed.CRITERION
    results = crit.evaluate(study)
    rows = {(r["method"], r["setting"]): (r["maps"], r["collapsed"])
            for r in crit.tables(results)["collapsed.csv"]}
    assert rows == {("gradient", "trained"): (6, 0), ("gradient", "cascading_02"): (3, 0),
                    ("gradcam", "trained"): (6, 2), ("gradcam", "cascading_02"): (3, 0)}
    entry = crit.summarize(results, study, {})
    g, c = entry.methods["gradient"]["collapsed"], entry.methods["gradcam"]["collapsed"]
    assert (g["collapsed"], g["flagged"]) == (0, False)
    assert (c["maps"], c["collapsed"], c["flagged"]) == (9, 2, True)
    assert c["fraction_by_setting"] == {"trained": 2 / 6, "cascading_02": 0.0}
    summary = {"study": {"methods": ["gradient", "gradcam"]}, **entry.methods}
    text = "\n".join(crit.section(summary, ["gradient", "gradcam"]))
    assert "## Collapsed maps" in text and "| gradcam | 2 of 9 |" in text
    assert "| gradient |" not in text
    assert crit.overview(summary, "gradcam") == {"collapsed maps": "2/9 (flag)"}
    assert crit in CRITERIA
