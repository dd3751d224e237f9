"""Datasets built from fake downloads in the exact Kaggle layouts, checked against what was written."""
import csv
import io
import os

import numpy as np
import pytest
from PIL import Image

import saljax.data as sd
from saljax.data import rle
from saljax.data.errors import DataError

SIZE = 64


# ----------------------------------------------------------------------------- writing DICOMs
def write_dicom(path, pixels: np.ndarray, jpeg: bool = False) -> np.ndarray:
    """A MONOCHROME2 8-bit DICOM as Kaggle ships them; returns the pixels a reader must get
    (for JPEG baseline: Pillow's decoding of the lossy bytes)."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    deep = pixels.dtype == np.uint16            # e.g. 12-bit data in 16-bit words
    ds.BitsAllocated, ds.BitsStored = (16, 12) if deep else (8, 8)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if jpeg:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].is_undefined_length = True
        expected = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    else:
        ds.PixelData = pixels.tobytes()
        expected = pixels
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return expected


def radiograph(seed, h=1024, w=1024):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w] / h
    im = 120 + 60 * np.cos(5 * xx + seed) * np.sin(3 * yy) + rng.normal(0, 8, (h, w))
    return np.clip(im, 0, 255).astype(np.uint8)


def expected_image(pixels, size=SIZE):
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.BILINEAR))[..., None]


def centre_mask(boxes_xyxy, size=SIZE):
    """Pixels whose centre lies in a box, written out independently of saljax."""
    m = np.zeros((size, size), bool)
    for r in range(size):
        for c in range(size):
            for x0, y0, x1, y1 in boxes_xyxy:
                if x0 <= c + 0.5 < x1 and y0 <= r + 0.5 < y1:
                    m[r, c] = True
    return m


def by_id(source):
    return {str(source[i]["id"], "utf-8") if isinstance(source[i]["id"], bytes)
            else str(source[i]["id"]): source[i] for i in range(len(source))}


# ----------------------------------------------------------------------------- RSNA
RSNA_ROWS = [  # patientId, boxes (x, y, w, h), Target
    ("p-multi", [(100.0, 200.0, 300.0, 250.0), (600.0, 150.0, 200.0, 400.0)], 1),
    ("p-single", [(512.0, 512.0, 128.0, 64.0)], 1),
    ("p-neg1", [], 0),
    ("p-neg2", [], 0),
]


def write_rsna(root, rows=RSNA_ROWS, jpeg_ids=("p-multi", "p-neg1")):
    expected = {}
    for i, (pid, _, _) in enumerate(rows):
        expected[pid] = write_dicom(root / "stage_2_train_images" / f"{pid}.dcm", radiograph(i),
                                    jpeg=pid in jpeg_ids)
    with open(root / "stage_2_train_labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patientId", "x", "y", "width", "height", "Target"])
        for pid, boxes, target in rows:
            for b in boxes or [("", "", "", "")]:
                w.writerow([pid, *b, target])
    with open(root / "stage_2_detailed_class_info.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patientId", "class"])
        for pid, _, target in rows:
            w.writerow([pid, "Lung Opacity" if target else "Normal"])
    with open(root / "splits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "Image_ID", "Split"])
        for i, (pid, _, _) in enumerate(rows):
            w.writerow([i, pid, ["train", "train", "val", "test"][i % 4]])
    return expected


def test_rsna_images_boxes_masks_labels_and_splits(tmp_path):
    manual = tmp_path / "rsna"
    pixels = write_rsna(manual)
    path = sd.build("rsna_pneumonia", str(tmp_path / "data"), manual_dir=str(manual), size=SIZE,
                    splits_csv="splits.csv")
    splits = sd.open_splits(path)
    assert {k: sorted(by_id(v)) for k, v in splits.items()} == {
        "train": ["p-multi", "p-single"], "val": ["p-neg1"], "test": ["p-neg2"]}
    examples = {**by_id(splits["train"]), **by_id(splits["val"]), **by_id(splits["test"])}
    for pid, boxes, target in RSNA_ROWS:
        ex = examples[pid]
        np.testing.assert_array_equal(ex["image"], expected_image(pixels[pid]))
        assert int(ex["label"]) == target
        scale = SIZE / 1024
        want = np.array([[x * scale, y * scale, (x + w) * scale, (y + h) * scale]
                         for x, y, w, h in boxes]).reshape(-1, 4)
        np.testing.assert_allclose(ex["boxes"], want, rtol=1e-6)
        np.testing.assert_array_equal(ex["mask"].astype(bool), centre_mask(want))
    assert examples["p-multi"]["mask"].sum() > examples["p-single"]["mask"].sum() > 0


def test_built_datasets_keep_the_csvs_order(tmp_path):
    """Stored order is the labels CSV's (TFDS shuffling off), so the study's seeded draw over
    "stored order" means what a user expects."""
    rows = [(f"p-{name}", [(100.0, 100.0, 50.0, 50.0)] if i % 2 else [], i % 2)
            for i, name in enumerate("qxcmbwazkdrtyuiopslf")]
    manual = tmp_path / "rsna"
    write_rsna(manual, rows=rows, jpeg_ids=())
    splits = sd.open_splits(sd.build("rsna_pneumonia", str(tmp_path / "d"),
                                     manual_dir=str(manual), size=SIZE))
    csv_order = [pid for pid, _, _ in rows]
    for split, source in splits.items():
        stored = [source[i]["id"].decode() for i in range(len(source))]
        assert stored == [pid for pid in csv_order if pid in stored], split
    assert max(len(v) for v in splits.values()) >= 5


def test_rsna_seeded_patient_split_is_stable(tmp_path):
    manual = tmp_path / "rsna"
    write_rsna(manual)
    a = sd.open_splits(sd.build("rsna_pneumonia", str(tmp_path / "a"), manual_dir=str(manual),
                                size=SIZE, split_seed=3))
    b = sd.open_splits(sd.build("rsna_pneumonia", str(tmp_path / "b"), manual_dir=str(manual),
                                size=SIZE, split_seed=3))
    assert {k: sorted(by_id(v)) for k, v in a.items()} == {k: sorted(by_id(v)) for k, v in b.items()}
    assert sum(len(v) for v in a.values()) == len(RSNA_ROWS)


def test_rsna_errors_name_file_and_row(tmp_path):
    # a CSV row naming a missing file
    manual = tmp_path / "missing"
    write_rsna(manual)
    os.remove(manual / "stage_2_train_images" / "p-single.dcm")
    with pytest.raises(DataError, match=r"stage_2_train_labels.csv, row 4 \(patient p-single\): "
                                        r"no image at .*p-single.dcm"):
        sd.build("rsna_pneumonia", str(tmp_path / "d1"), manual_dir=str(manual), size=SIZE)
    # a box outside the image
    manual = tmp_path / "outside"
    write_rsna(manual, rows=[("p-out", [(900.0, 10.0, 200.0, 50.0)], 1)])
    with pytest.raises(DataError, match=r"row 2 .*p-out.dcm.*box .* lies outside the 1024x1024"):
        sd.build("rsna_pneumonia", str(tmp_path / "d2"), manual_dir=str(manual), size=SIZE)
    # a corrupt DICOM
    manual = tmp_path / "corrupt"
    write_rsna(manual, rows=[("p-bad", [], 0)])
    (manual / "stage_2_train_images" / "p-bad.dcm").write_bytes(b"DICM" + os.urandom(3000))
    with pytest.raises(DataError, match=r"p-bad.dcm: not a readable DICOM|p-bad.dcm.*pixel"):
        sd.build("rsna_pneumonia", str(tmp_path / "d3"), manual_dir=str(manual), size=SIZE)


def test_an_interrupted_build_leaves_nothing_that_reads_as_complete(tmp_path, monkeypatch):
    manual = tmp_path / "rsna"
    write_rsna(manual)
    import saljax.data.rsna as rsna

    calls = {"n": 0}
    real = rsna.read_dicom

    def dies_on_third(path):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the build is killed mid-way
        return real(path)

    monkeypatch.setattr(rsna, "read_dicom", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        sd.build("rsna_pneumonia", str(tmp_path / "data"), manual_dir=str(manual), size=SIZE)
    version_dir = tmp_path / "data" / "rsna_pneumonia" / "64px" / "1.1.0"
    with pytest.raises(DataError, match="no complete dataset"):
        sd.open_splits(str(version_dir))
    monkeypatch.setattr(rsna, "read_dicom", real)
    path = sd.build("rsna_pneumonia", str(tmp_path / "data"), manual_dir=str(manual), size=SIZE)
    assert sum(len(s) for s in sd.open_splits(path).values()) == len(RSNA_ROWS)


# ----------------------------------------------------------------------------- SIIM
def encode_rle(mask: np.ndarray) -> str:
    """The competition's encoding, written independently: column-major runs, each start relative
    to the end of the previous run."""
    flat = mask.T.reshape(-1).astype(np.int8)
    padded = np.concatenate([[0], flat, [0]])
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2], edges[1::2]
    out, prev_end = [], 0
    for s, e in zip(starts, ends):
        out += [s - prev_end, e - s]
        prev_end = e
    return " ".join(map(str, out)) if out else "-1"


def test_rle_round_trip_and_orientation():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = np.zeros((40, 30), bool)
        for _ in range(rng.integers(0, 4)):
            y, x = rng.integers(0, 40), rng.integers(0, 30)
            m[y:y + rng.integers(1, 15), x:x + rng.integers(1, 15)] = True
        np.testing.assert_array_equal(rle.decode(encode_rle(m), m.shape), m)
    # a horizontal bar in row 2 is, column-major, one 1-pixel run per column
    bar = np.zeros((5, 4), bool)
    bar[2, :] = True
    assert encode_rle(bar) == "2 1 4 1 4 1 4 1"
    np.testing.assert_array_equal(rle.decode("2 1 4 1 4 1 4 1", (5, 4)), bar)
    with pytest.raises(DataError, match="runs past the 5x4 image"):
        rle.decode("18 5", (5, 4), "train-rle.csv, row 7")


def siim_masks():
    a = np.zeros((1024, 1024), bool)
    a[100:300, 600:700] = True
    b1 = np.zeros((1024, 1024), bool)
    b1[500:520, 50:400] = True
    b2 = np.zeros((1024, 1024), bool)
    b2[700:900, 800:1000] = True
    return {"img-a": [a], "img-b": [b1, b2], "img-neg": []}


def write_siim(root, rle_rows=None):
    pixels = {}
    for i, image_id in enumerate(siim_masks()):
        path = root / "dicom-images-train" / f"1.2.{i}" / f"1.2.{i}.9" / f"{image_id}.dcm"
        pixels[image_id] = write_dicom(path, radiograph(10 + i), jpeg=(i == 1))
    with open(root / "train-rle.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageId", " EncodedPixels"])
        for image_id, masks in siim_masks().items():
            for m in masks or [None]:
                w.writerow([image_id, " " + (encode_rle(m) if m is not None else "-1")])
        for row in rle_rows or []:
            w.writerow(row)
    return pixels


def test_siim_multi_row_masks_labels_and_images(tmp_path):
    manual = tmp_path / "siim"
    pixels = write_siim(manual)
    path = sd.build("siim_pneumothorax", str(tmp_path / "data"), manual_dir=str(manual), size=SIZE)
    examples = {}
    for source in sd.open_splits(path).values():
        examples.update(by_id(source))
    assert sorted(examples) == ["img-a", "img-b", "img-neg"]
    for image_id, masks in siim_masks().items():
        ex = examples[image_id]
        full = np.any(masks, axis=0) if masks else np.zeros((1024, 1024), bool)
        block = full.reshape(SIZE, 1024 // SIZE, SIZE, 1024 // SIZE).mean(axis=(1, 3))
        np.testing.assert_array_equal(ex["mask"].astype(bool), block >= 0.5)
        assert int(ex["label"]) == int(bool(masks))
        np.testing.assert_array_equal(ex["image"], expected_image(pixels[image_id]))
    # the OR of both rows of img-b: two separate regions
    m = examples["img-b"]["mask"]
    assert m[31, 10] == 1 and m[50, 55] == 1


def test_siim_errors_name_file_and_row(tmp_path):
    manual = tmp_path / "past"
    write_siim(manual, rle_rows=[["img-a", " 1048570 20"]])
    with pytest.raises(DataError, match=r"train-rle.csv, rows \[2, 6\] \(img-a\).*runs past"):
        sd.build("siim_pneumothorax", str(tmp_path / "d1"), manual_dir=str(manual), size=SIZE)
    manual = tmp_path / "missing"
    write_siim(manual, rle_rows=[["img-ghost", " -1"]])
    with pytest.raises(DataError, match=r"train-rle.csv, row 6: no DICOM for ImageId img-ghost"):
        sd.build("siim_pneumothorax", str(tmp_path / "d2"), manual_dir=str(manual), size=SIZE)


# ----------------------------------------------------------------------------- synthetic
def test_synthetic_examples_are_exact_and_reproducible():
    from scipy import ndimage
    from saljax.data.synthetic_images import SyntheticConfig, example

    cfg = SyntheticConfig(size=96, marker="shortcut", shortcut_strength=0.9)
    exs = [example(5, i, cfg) for i in range(120)]
    again = example(5, 7, cfg)
    np.testing.assert_array_equal(again["image"], exs[7]["image"])
    for ex in exs:
        assert ex["image"].shape == (96, 96, 1) and ex["image"].dtype == np.uint8
        assert bool(ex["mask"].any()) == bool(ex["label"])
        if ex["label"]:
            # every box is the bounding box of lesion pixels, and every lesion pixel is in a box
            covered = np.zeros_like(ex["mask"], bool)
            for x0, y0, x1, y1 in ex["boxes"].astype(int):
                region = ex["mask"][y0:y1, x0:x1]
                assert region[0].any() and region[-1].any() and region[:, 0].any()
                covered[y0:y1, x0:x1] = True
            assert np.all(covered[ex["mask"] > 0])
            labelled, n = ndimage.label(ex["mask"])
            assert 1 <= n <= cfg.max_lesions
        else:
            assert ex["boxes"].shape == (0, 4)
    labels = np.array([e["label"] for e in exs])
    markers = np.array([e["marker"] for e in exs])
    assert 0.3 < labels.mean() < 0.7
    assert (markers == labels).mean() > 0.8                  # the shortcut variant
    indep = [example(5, i, SyntheticConfig(size=96, marker="random")) for i in range(120)]
    agree = np.mean([e["marker"] == e["label"] for e in indep])
    assert 0.35 < agree < 0.65                                # independent of the label


def test_synthetic_dataset_builds_and_loads_with_grain(tmp_path):
    path = sd.build("synthetic_cxr", str(tmp_path), size=48, seed=2,
                    counts=(("train", 24), ("val", 8), ("test", 8)))
    splits = sd.open_splits(path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 24, "val": 8, "test": 8}
    batches = sd.training_batches(splits["train"], 8, seed=0, keys=("id", "image", "label"))
    np.testing.assert_array_equal(batches[0]["image"], batches[0]["image"])  # step k: same batch
    assert batches[0]["image"].shape == (8, 48, 48, 1)
    text = lambda i: i.decode() if isinstance(i, bytes) else str(i)
    epoch1 = [text(i) for b in range(3) for i in batches[b]["id"]]
    epoch2 = [text(i) for b in range(3, 6) for i in batches[b]["id"]]
    assert sorted(epoch1) == sorted(epoch2) == sorted(by_id(splits["train"]))  # each once
    assert epoch1 != epoch2                                                      # reshuffled
    x = np.asarray(sd.to_model_input(batches[0]["image"]))
    assert x.shape == (8, 48, 48, 3) and x.min() >= -1 and x.max() <= 1


def test_synthetic_shortcut_options_make_the_marker_the_only_reliable_cue():
    """lesion_absent: that share of positives carries no lesion (and stays positive);
    marker_size: the plate's side; strength 1.0: the marker is exactly the label; bad values
    are refused naming the option."""
    from saljax.data.synthetic_images import SyntheticConfig, example

    cfg = SyntheticConfig(size=96, marker="shortcut", shortcut_strength=1.0, lesion_absent=0.75,
                          marker_size=0.125, marker_corner="top_right")
    exs = [example(3, i, cfg) for i in range(200)]
    positives = [e for e in exs if e["label"]]
    absent = np.mean([not e["mask"].any() for e in positives])
    assert 0.6 < absent < 0.9                                   # about 3 in 4
    assert all(e["marker"] == e["label"] for e in exs)          # strength 1: the label itself
    sides = {int(np.sqrt(e["marker_mask"].sum())) for e in exs if e["marker"]}
    assert sides == {12}                                        # 96 / 8
    corners = {tuple(np.argwhere(e["marker_mask"])[0]) for e in exs if e["marker"]}
    assert len(corners) == 1                                    # a fixed place
    for bad, match in ((dict(lesion_absent=1.0), "lesion_absent"),
                       (dict(marker_size=0.3), "marker_size"),
                       (dict(shortcut_strength=1.2), "shortcut_strength")):
        with pytest.raises(ValueError, match=match):
            SyntheticConfig(size=96, **bad)
