"""Every builder at the sizes users use (224 and 320 px), through ``saljax data build`` as the
README shows, from fixture files in the real layouts; the examples read back and checked
against what was written."""
import copy
import csv
import os

import numpy as np
import pytest
from PIL import Image

import saljax.data as sd
from saljax import cli
from saljax.data.build import _builder
from test_data import (RSNA_ROWS, by_id, centre_mask, expected_image, radiograph,
                       siim_masks, write_rsna, write_siim)

SIZES = (224, 320)


def cli_build(name, data_dir, *args):
    """``saljax data build`` as a user types it."""
    assert cli.main(["data", "build", name, "--data-dir", str(data_dir), *map(str, args)]) == 0


def built(data_dir, name, config_name=None):
    """The version directory of ``name``'s config ``config_name`` (default: its only one)
    under ``data_dir``."""
    if config_name is None:
        (config_name,) = configs(data_dir, name)
    parent = os.path.join(data_dir, name, config_name)
    (version,) = os.listdir(parent)
    return os.path.join(parent, version)


def configs(data_dir, name):
    """The config folders of ``name`` built under ``data_dir`` (not TFDS's ``.config``)."""
    return [d for d in os.listdir(os.path.join(data_dir, name)) if not d.startswith(".")]


def every_example(path):
    return {k: v for split in sd.open_splits(path).values() for k, v in by_id(split).items()}


def corner_mask(boxes_xywh, side, size):
    """The study's rasterization: corners ``int(size * c / (side - 1))``, filled inclusively."""
    m = np.zeros((size, size), bool)
    for x, y, w, h in boxes_xywh:
        m[int(size * y / (side - 1)):int(size * (y + h) / (side - 1)) + 1,
          int(size * x / (side - 1)):int(size * (x + w) / (side - 1)) + 1] = True
    return m


def write_xray_folder(root, n=12, shape=(600, 520)):
    """A folder of 8-bit PNG radiographs (not square, as exports are): ``labels.csv`` with
    path, label, split, and boxes on some positives and a mask file on others. Returns
    ``{path: (pixels, label, split, boxes_xywh or None, mask or None)}``."""
    os.makedirs(root / "png", exist_ok=True)
    rows = {}
    for i in range(n):
        pixels = radiograph(i, *shape)
        label, split = i % 2, ["train", "train", "val", "test"][i % 4]
        boxes = mask = None
        if label and i % 4 == 1:
            boxes = [(40.0 + 10 * i, 60.0, 150.0, 210.0), (300.0, 200.0 + 5 * i, 120.0, 90.0)]
        elif label:
            mask = np.zeros(shape, bool)
            mask[100 + 7 * i:260 + 7 * i, 80:230] = True
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "png" / f"m{i}.png")
        Image.fromarray(pixels).save(root / "png" / f"x{i}.png")
        rows[f"png/x{i}.png"] = (pixels, label, split, boxes, mask)
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split", "boxes", "mask_path"])
        for i, (path, (_, label, split, boxes, mask)) in enumerate(rows.items()):
            w.writerow([path, label, split,
                        ";".join(" ".join(f"{v:g}" for v in b) for b in boxes or ()),
                        f"png/m{i}.png" if mask is not None else ""])
    return rows


@pytest.mark.parametrize("size", SIZES)
def test_folder_of_8_bit_pngs_builds_and_reads_back(tmp_path, size):
    rows = write_xray_folder(tmp_path / "mine")
    cli_build("folder_cxr", tmp_path / "data", "--manual-dir", tmp_path / "mine", "--size", size)
    path = built(tmp_path / "data", "folder_cxr", f"{size}px")
    splits = sd.open_splits(path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 3, "test": 3}
    examples = every_example(path)
    assert sorted(examples) == sorted(rows)
    h, w = next(iter(rows.values()))[0].shape
    for key, (pixels, label, split, boxes, mask) in rows.items():
        ex = examples[key]
        assert ex["image"].shape == (size, size, 1) and ex["image"].dtype == np.uint8
        np.testing.assert_array_equal(ex["image"], expected_image(pixels, size))
        assert int(ex["label"]) == label
        assert key in by_id(splits[split])
        if boxes is not None:
            want = [[x * size / w, y * size / h, (x + bw) * size / w, (y + bh) * size / h]
                    for x, y, bw, bh in boxes]
            np.testing.assert_allclose(ex["boxes"], want, rtol=1e-6)
            np.testing.assert_array_equal(ex["mask"].astype(bool), centre_mask(want, size))
        elif mask is not None:
            area = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
                (size, size), Image.BOX))
            np.testing.assert_array_equal(ex["mask"].astype(bool), area >= 128)
            assert ex["mask"].sum() > 0 and ex["boxes"].shape == (0, 4)
        else:
            assert not ex["mask"].any() and ex["boxes"].shape == (0, 4)


def test_building_twice_reuses_the_build(tmp_path):
    write_xray_folder(tmp_path / "mine", n=8)
    args = ("--manual-dir", tmp_path / "mine", "--size", 224)
    cli_build("folder_cxr", tmp_path / "data", *args)
    path = built(tmp_path / "data", "folder_cxr", "224px")
    stamp = {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in os.listdir(path)}
    cli_build("folder_cxr", tmp_path / "data", *args)
    assert {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in os.listdir(path)} == stamp


@pytest.mark.parametrize("size", SIZES)
def test_rsna_builds_with_default_options(tmp_path, size):
    pixels = write_rsna(tmp_path / "rsna")
    cli_build("rsna_pneumonia", tmp_path / "data", "--manual-dir", tmp_path / "rsna",
              "--size", size)
    examples = every_example(built(tmp_path / "data", "rsna_pneumonia", f"{size}px"))
    assert sorted(examples) == sorted(pid for pid, _, _ in RSNA_ROWS)
    for pid, boxes, target in RSNA_ROWS:
        ex = examples[pid]
        assert ex["image"].shape == (size, size, 1)
        np.testing.assert_array_equal(ex["image"], expected_image(pixels[pid], size))
        assert int(ex["label"]) == target
        s = size / 1024
        want = [[x * s, y * s, (x + w) * s, (y + h) * s] for x, y, w, h in boxes]
        np.testing.assert_allclose(ex["boxes"], np.reshape(want, (-1, 4)), rtol=1e-6)
        np.testing.assert_array_equal(ex["mask"].astype(bool), centre_mask(want, size))


def test_rsna_builds_at_320_with_the_papers_options(tmp_path):
    pixels = write_rsna(tmp_path / "rsna")
    cli_build("rsna_pneumonia", tmp_path / "data", "--manual-dir", tmp_path / "rsna",
              "--size", 320, "--splits-csv", "splits.csv", "--classes", "opacity_vs_normal",
              "--box-raster", "corners")
    splits = sd.open_splits(built(tmp_path / "data", "rsna_pneumonia"))
    # every class of the fixture is Lung Opacity or Normal; the published split file's splits
    assert {k: sorted(by_id(v)) for k, v in splits.items()} == {
        "train": ["p-multi", "p-single"], "val": ["p-neg1"], "test": ["p-neg2"]}
    examples = {k: v for s in splits.values() for k, v in by_id(s).items()}
    for pid, boxes, target in RSNA_ROWS:
        ex = examples[pid]
        assert ex["image"].shape == (320, 320, 1) and int(ex["label"]) == target
        np.testing.assert_array_equal(ex["image"], expected_image(pixels[pid], 320))
        np.testing.assert_array_equal(ex["mask"].astype(bool), corner_mask(boxes, 1024, 320))
    assert examples["p-multi"]["mask"].sum() > examples["p-single"]["mask"].sum() > 0


def write_siim_splits(root):
    with open(root / "pneumothorax_splits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "Image_ID", "Split"])
        for i, image_id in enumerate(siim_masks()):
            w.writerow([i, image_id, ["train", "val", "test"][i]])


@pytest.mark.parametrize("size,paper", [(224, False), (320, False), (320, True)])
def test_siim_builds_with_default_and_the_papers_options(tmp_path, size, paper):
    pixels = write_siim(tmp_path / "siim")
    write_siim_splits(tmp_path / "siim")
    extra = ("--splits-csv", "pneumothorax_splits.csv") if paper else ()
    cli_build("siim_pneumothorax", tmp_path / "data", "--manual-dir", tmp_path / "siim",
              "--size", size, *extra)
    (config,) = configs(tmp_path / "data", "siim_pneumothorax")
    assert (config == f"{size}px") != paper        # the published splits change the name
    splits = sd.open_splits(built(tmp_path / "data", "siim_pneumothorax"))
    if paper:
        assert {k: sorted(by_id(v)) for k, v in splits.items()} == {
            "train": ["img-a"], "val": ["img-b"], "test": ["img-neg"]}
    examples = {k: v for s in splits.values() for k, v in by_id(s).items()}
    assert sorted(examples) == sorted(siim_masks())
    for image_id, masks in siim_masks().items():
        ex = examples[image_id]
        assert ex["image"].shape == (size, size, 1)
        np.testing.assert_array_equal(ex["image"], expected_image(pixels[image_id], size))
        assert int(ex["label"]) == int(bool(masks))
        full = np.any(masks, axis=0) if masks else np.zeros((1024, 1024), bool)
        area = np.asarray(Image.fromarray(full.astype(np.uint8) * 255).resize((size, size),
                                                                              Image.BOX))
        np.testing.assert_array_equal(ex["mask"].astype(bool), area >= 128)


@pytest.mark.parametrize("size", SIZES)
def test_synthetic_builds_at_user_sizes(tmp_path, size):
    cli_build("synthetic_cxr", tmp_path / "data", "--size", size, "--train", 6, "--val", 3,
              "--test", 3, "--marker", "random")
    path = built(tmp_path / "data", "synthetic_cxr")
    splits = sd.open_splits(path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 3, "test": 3}
    for ex in every_example(path).values():
        assert ex["image"].shape == (size, size, 1) and ex["mask"].shape == (size, size)
        assert bool(ex["mask"].any()) == bool(ex["label"])


@pytest.mark.parametrize("name", sorted(sd.BUILDERS))
def test_a_config_equal_to_a_declared_one_is_accepted(tmp_path, name):
    """TFDS refuses a second config object under a name its builder declares; every declared
    config of every builder, asked for again as an equal new object, makes the builder."""
    cls = sd.BUILDERS[name]
    assert cls.BUILDER_CONFIGS
    for declared in cls.BUILDER_CONFIGS:
        again = copy.deepcopy(declared)
        assert again is not declared and again == declared
        builder = _builder(name, again, str(tmp_path))
        assert builder.builder_config is declared
