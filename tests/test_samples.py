"""The study's own evaluation images: its N.npy sample files matched to a built dataset's ids,
and a study run on exactly their pixels."""
import csv
import os

import numpy as np
import pytest

from saljax import cli
from saljax import data as sd
from saljax.config import load
from saljax.data import common, samples
from saljax.data.errors import DataError
from saljax.study import inputs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return sd.build("synthetic_cxr", str(tmp_path_factory.mktemp("data")), size=75, seed=3,
                    counts=(("train", 24), ("val", 8), ("test", 16)), marker="random")


def as_study_sample(image75):
    """A stored image as the study shipped it: resized to 320 x 320, 3 channels, [-1, 1]."""
    big = common.resize_image(np.asarray(image75)[..., 0], 320)[..., 0]
    return np.repeat((big.astype(np.float32) / 127.5 - 1.0)[..., None], 3, -1)


def write_samples(folder, splits, picks):
    """``picks``: (split, index) pairs, written shuffled as 0.npy, 1.npy, ...; returns the ids
    in file order."""
    os.makedirs(folder, exist_ok=True)
    order = np.random.default_rng(0).permutation(len(picks))
    ids = []
    for n, k in enumerate(order):
        split, index = picks[k]
        ex = splits[split][index]
        np.save(os.path.join(folder, f"{n}.npy"), as_study_sample(ex["image"]))
        ids.append(ex["id"].decode() if isinstance(ex["id"], bytes) else str(ex["id"]))
    return ids


def test_match_samples_recovers_the_ids_and_refuses_strangers(built, tmp_path):
    splits = sd.open_splits(built)
    picks = [("test", 0), ("test", 5), ("test", 11), ("val", 2), ("train", 17)]
    folder = str(tmp_path / "samples")
    ids = write_samples(folder, splits, picks)
    out = str(tmp_path / "eval_ids.csv")
    assert cli.main(["data", "match-samples", "--samples", folder, "--data-path", built,
                     "--out", out]) == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["Image_ID"] for r in rows] == ids                  # exactly, in file order
    assert [r["sample"] for r in rows] == [str(n) for n in range(len(ids))]
    assert all(float(r["correlation"]) > 0.98 > float(r["runner_up"]) + 0.01 for r in rows)
    assert inputs.read_ids(out) == ids
    # an image of another dataset (another seed) is in no split: an error naming its file
    other = sd.build("synthetic_cxr", str(tmp_path / "other"), size=75, seed=4,
                     counts=(("train", 2), ("val", 1), ("test", 1)), marker="random")
    np.save(os.path.join(folder, "5.npy"), as_study_sample(sd.open_splits(other)["test"][0]["image"]))
    with pytest.raises(DataError, match=r"5\.npy: in no split"):
        samples.match(folder, splits)
    for bad, message in ((np.zeros((320, 320, 3), np.uint8), "float arrays"),
                         (np.full((320, 320, 3), np.nan, np.float32), "NaN"),
                         (np.full((320, 320, 3), 3.0, np.float32), r"\[-1, 1\]"),
                         (np.zeros((320, 200, 3), np.float32), "square"),
                         (np.array([{"a": 1}], dtype=object), "not a numpy array file")):
        np.save(os.path.join(folder, "5.npy"), bad, allow_pickle=True)
        with pytest.raises(DataError, match=message):
            samples.read(folder, 75)


def test_a_study_with_eval_samples_takes_exactly_their_pixels(built, tmp_path):
    splits = sd.open_splits(built)
    folder = str(tmp_path / "samples")
    write_samples(folder, splits, [("test", i) for i in (1, 3, 4, 8)])
    config = load("tiny", [f"--config.data_path={built}", f"--config.eval_samples={folder}",
                           "--config.known_truth.enabled=False"])
    images = inputs.prepare(config, built).images
    assert images.ids == ("sample0", "sample1", "sample2", "sample3") and not images.has_masks
    for n in range(4):
        sample = np.load(os.path.join(folder, f"{n}.npy"))
        np.testing.assert_array_equal(images.pixels[n], samples.to_pixels(sample[..., 0], 75))
    ids = tmp_path / "ids.txt"
    ids.write_text("synthetic-3-1\n")
    with pytest.raises(ValueError, match="eval_samples and config.eval_ids"):
        from saljax.study import check
        check.config(load("tiny", [f"--config.eval_samples={folder}",
                                   f"--config.eval_ids={ids}",
                                   "--config.known_truth.enabled=False"]), str(tmp_path / "w"))


@pytest.mark.slow
def test_a_study_run_on_eval_samples_maps_exactly_them(built, tmp_path):
    """The whole tiny study on four sample files: every randomization and agreement row is one
    of them, the examples' image is sample 0's pixels, and utility says it was skipped."""
    from saljax import study
    splits = sd.open_splits(built)
    folder = str(tmp_path / "samples")
    write_samples(folder, splits, [("test", i) for i in (2, 6, 9, 12)])
    workdir = str(tmp_path / "study")
    summary = study.run(load("tiny", [f"--config.data_path={built}",
                                      f"--config.eval_samples={folder}",
                                      "--config.known_truth.enabled=False"]), workdir,
                        progress=False)
    with open(os.path.join(workdir, "randomization.csv")) as f:
        seen = {r["image"] for r in csv.DictReader(f)}
    assert seen == {"sample0", "sample1", "sample2", "sample3"}
    with np.load(os.path.join(workdir, "examples.npz")) as ex:
        np.testing.assert_array_equal(ex["image"], samples.to_pixels(
            np.load(os.path.join(folder, "0.npy"))[..., 0], 75)[..., 0])
    assert summary["study"]["images_eval"] == 4
