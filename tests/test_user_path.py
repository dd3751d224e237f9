"""The user's path without traps: data never silently corrupted or stale, clear errors for bad
inputs and configs before any work, compiled public metrics."""
import csv

import jax
import numpy as np
import pytest
from PIL import Image

import saljax.data as sd
import saljax.metrics as mx
import saljax.saliency as ss
from conftest import smooth_images
from saljax.config import load
from saljax.data.errors import DataError
from test_data import by_id, write_dicom


def write_folder(root, rows, header=("path", "label", "split"), bom=False):
    """A folder dataset: ``rows`` of (file name, pixels, label, split); PNGs of any depth."""
    root.mkdir(parents=True, exist_ok=True)
    for name, pixels, _, _ in rows:
        if name.endswith(".dcm"):
            write_dicom(root / name, pixels)
        else:
            Image.fromarray(pixels).save(root / name)
    with open(root / "labels.csv", "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([(name, label, split)[:len(header)] for name, _, label, split in rows])


def picture(seed, dtype=np.uint8, hi=255):
    rng = np.random.default_rng(seed)
    return rng.integers(0, hi + 1, (64, 64)).astype(dtype)


def splits_rows(n=6):
    return [(f"im{i}.png", picture(i), i % 2, ["train", "val", "test"][i % 3]) for i in range(n)]


def test_16_bit_pngs_scale_by_their_real_range(tmp_path):
    twelve_bit = np.random.default_rng(0).integers(100, 3901, (64, 64)).astype(np.uint16)
    twelve_bit[0, 0], twelve_bit[0, 1] = 100, 3900          # a 12-bit range inside 16 bits
    rows = splits_rows()
    rows[2] = ("deep.png", twelve_bit, 1, "test")
    write_folder(tmp_path / "in", rows)
    with Image.open(tmp_path / "in" / "deep.png") as im:
        assert im.mode.startswith("I;16")
    path = sd.build("folder_cxr", str(tmp_path / "data"), manual_dir=str(tmp_path / "in"),
                    size=64)
    stored = by_id(sd.open_splits(path)["test"])["deep.png"]["image"][..., 0]
    want = np.round((twelve_bit - 100.0) / 3800.0 * 255).astype(np.uint8)
    np.testing.assert_array_equal(stored, want)
    assert (stored == 255).mean() < 0.01            # not clipped at 255


def test_12_bit_dicoms_scale_by_their_real_range(tmp_path):
    twelve_bit = np.random.default_rng(1).integers(200, 3001, (64, 64)).astype(np.uint16)
    twelve_bit[0, 0], twelve_bit[0, 1] = 200, 3000
    rows = splits_rows()
    rows[2] = ("deep.dcm", twelve_bit, 1, "test")
    write_folder(tmp_path / "in", rows)
    path = sd.build("folder_cxr", str(tmp_path / "data"), manual_dir=str(tmp_path / "in"),
                    size=64)
    stored = by_id(sd.open_splits(path)["test"])["deep.dcm"]["image"][..., 0]
    np.testing.assert_array_equal(stored, np.round((twelve_bit - 200.0) / 2800.0 * 255))


def test_report_on_an_unfinished_workdir_names_what_is_missing(tmp_path):
    from saljax import report
    (tmp_path / "summary.json").write_text('{"study": {"utility_skipped": null}}')
    with pytest.raises(FileNotFoundError, match="no agreement.csv, examples.npz, utility.csv"):
        report.write(str(tmp_path))
    assert not (tmp_path / "report.md").exists() and not (tmp_path / "figures").exists()


def test_a_rebuild_after_the_inputs_changed_is_refused_or_rebuilt(tmp_path):
    rows = splits_rows()
    write_folder(tmp_path / "in", rows)
    kw = dict(manual_dir=str(tmp_path / "in"), size=64)
    path = sd.build("folder_cxr", str(tmp_path / "data"), **kw)
    assert sd.build("folder_cxr", str(tmp_path / "data"), **kw) == path   # unchanged: reused
    rows[0] = (rows[0][0], rows[0][1], 1 - rows[0][2], rows[0][3])          # a label edited
    write_folder(tmp_path / "in", rows)
    with pytest.raises(DataError, match="inputs changed.*--rebuild"):
        sd.build("folder_cxr", str(tmp_path / "data"), **kw)
    path = sd.build("folder_cxr", str(tmp_path / "data"), rebuild=True, **kw)
    assert int(by_id(sd.open_splits(path)["train"])["im0.png"]["label"]) == rows[0][2]


def test_bad_csvs_are_clear_errors(tmp_path):
    build = lambda d: sd.build("folder_cxr", str(tmp_path / d / "data"),
                               manual_dir=str(tmp_path / d / "in"), size=64)
    write_folder(tmp_path / "empty" / "in", [])
    with pytest.raises(DataError, match="no images listed"):
        build("empty")
    rows = splits_rows()
    write_folder(tmp_path / "dup" / "in", rows + [rows[1]])
    with pytest.raises(DataError, match="rows 3 and 8: im1.png is listed twice"):
        build("dup")
    write_folder(tmp_path / "bom" / "in", rows, bom=True)     # as spreadsheet programs save
    assert sum(len(s) for s in sd.open_splits(build("bom")).values()) == len(rows)
    write_folder(tmp_path / "noval" / "in", [r[:3] + ("train" if r[3] == "val" else r[3],)
                                             for r in rows])
    with pytest.raises(DataError, match="no val split"):
        sd.open_splits(build("noval"), need=("train", "val", "test"))


def test_bad_images_and_hyperparameters_are_clear_errors(small_cnn, inception_small):
    model, v = small_cnn
    x = smooth_images(2, 32)
    explain = ss.make("gradient", model)
    with pytest.raises(ValueError, match="float model inputs, got uint8"):
        explain(v, (x * 127.5 + 127.5).astype(np.uint8))
    with pytest.raises(ValueError, match="look like 0..255 pixel values"):
        explain(v, x * 127.5 + 127.5)
    for method, hp, message in [
            ("integrated_gradients", dict(baseline=float("nan")), "baseline must be a finite"),
            ("guided_gradcam", dict(percentile=150), "percentile in \\(0, 100\\]"),
            ("smoothgrad", dict(magnitude="no"), "magnitude must be True or False"),
            ("xrai", dict(area_threshold=0.0), "area_threshold must be in \\(0, 1\\]"),
            ("gradient", dict(max_batch=-3), "max_batch must be a positive integer")]:
        with pytest.raises(ValueError, match=message):
            ss.make(method, model, **hp)
    other, ov = inception_small
    with pytest.raises(ValueError, match="variables do not fit small_cnn"):
        explain(ov, x)
    maps = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="data_range must be a positive number"):
            mx.ssim(maps, maps, data_range=bad)
    with pytest.raises(ValueError, match="are the arguments swapped"):
        mx.auprc(maps > 0.5, maps)


def test_public_metrics_run_compiled_when_called_directly():
    maps = np.random.default_rng(0).random((3, 24, 24)).astype(np.float32)
    for fn, args, kw in [(mx.ssim, (maps, maps[::-1]), dict(data_range=1.0)),
                         (mx.spearman, (maps, maps[::-1]), {}),
                         (mx.auprc, (maps, maps > 0.6), {}), (mx.roc_auc, (maps, maps > 0.6), {})]:
        before = fn._cache_size()
        fn(*args, **kw)
        fn(*args, **kw)
        assert fn._cache_size() == before + 1, fn.__name__    # traced once, then the program


def test_config_errors_come_before_any_work(tmp_path):
    from saljax import study
    cases = [(["--config.methods=['gradient', 'lime']"], "unknown saliency method 'lime'"),
             (["--config.size=64"], "below inception_v3's minimum of 75"),
             (["--config.chunk=-4"], "chunk must be an integer >= 1"),
             (["--config.target=5"], "not a class of the 2-class models"),
             (["--config.normalization=percentile"], "normalization must be one of"),
             (["--config.cascading_through=mixed12"], "is not a block of inception_v3")]
    for overrides, message in cases:
        workdir = tmp_path / f"w{cases.index((overrides, message))}"
        with pytest.raises(ValueError, match=message):
            study.run(load("tiny", overrides), str(workdir), progress=False)
        assert not (workdir / "config.json").exists() and not (workdir / "data").exists()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        study.run(load("tiny"), str(tmp_path / "a_file"), progress=False)
    with pytest.raises(ValueError, match="cannot be written"):
        study.run(load("tiny"), str(tmp_path / "a_file" / "under"), progress=False)
    with pytest.raises(ValueError, match="manual_dir '' is not a folder"):
        study.run(load("tiny", ["--config.dataset=rsna_pneumonia"]), str(tmp_path / "r"),
                  progress=False)
    built = sd.build("synthetic_cxr", str(tmp_path / "data80"), size=80,
                     counts=(("train", 4), ("val", 2), ("test", 2)))
    with pytest.raises(ValueError, match="was built at 80 px: set --config.size=80"):
        study.run(load("tiny", [f"--config.data_path={built}"]), str(tmp_path / "s"),
                  progress=False)
    assert not (tmp_path / "s" / "config.json").exists()


def test_corrupt_model_files_are_clear_errors(tmp_path):
    import saljax.models as sm
    from saljax.models import checkpoint
    model = sm.create("inception_v3", width=0.0625)
    path = tmp_path / "m"
    checkpoint.save(str(path), sm.init(model, jax.random.key(0)), name="inception_v3",
                    width=0.0625)
    (path / "model.json").write_text('{"name": "inception_v3", "wid')
    with pytest.raises(checkpoint.CheckpointMismatch, match="not a readable model description"):
        checkpoint.load(str(path))
    (path / "model.json").write_text('{"name": "inception_v3", "width": 0.0625, '
                                     '"num_classes": 2}')
    for f in (path / "variables").rglob("*"):
        if f.is_file() and "metadata" in f.name.lower():
            f.write_text("{")
    with pytest.raises(checkpoint.CheckpointMismatch, match="cannot read the stored arrays"):
        checkpoint.load(str(path))


def test_bench_without_pair_writes_its_own_measurements(tmp_path, monkeypatch, capsys):
    from saljax import cli
    from saljax.bench import pair
    monkeypatch.setattr(pair, "available", lambda: False)
    rc = cli.main(["bench", "--workdir", str(tmp_path), "--config.size=75",
                   "--config.batch_sizes=(1,)",
                   "--config.models=[{'name': 'inception_v3', 'width': 0.0625}]",
                   "--config.methods=('gradient',)", "--config.reps=1",
                   "--config.captum_reference=False"])
    assert rc == 0 and (tmp_path / "bench.json").exists()
    lines = capsys.readouterr().out.splitlines()
    assert sum("PAIR saliency is not installed" in line for line in lines) == 1
    assert (tmp_path / "bench.md").exists()


def test_the_folder_configs_pass_their_checks_at_224_and_320(tmp_path, monkeypatch):
    """``folder`` (224 px) and ``folder_gpu`` (the full protocol at 320 px) on a user's folder
    pass every config check; folder_gpu's ImageNet start without Keras's files is a clear
    error naming the file, before any work, and trains from scratch with init_from=''."""
    from saljax.study import check
    write_folder(tmp_path / "in", splits_rows())
    cfg = load("folder", [f"--config.manual_dir={tmp_path / 'in'}"])
    assert (cfg.size, cfg.dataset, cfg.known_truth.enabled) == (224, "folder_cxr", False)
    assert "inception_v3" not in cfg.arch_hparams          # GradCAM at mixed10: 5 x 5 at 224
    check.config(cfg, str(tmp_path / "w1"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no_keras"))
    gpu = load("folder_gpu", [f"--config.manual_dir={tmp_path / 'in'}"])
    assert (gpu.size, gpu.dataset, gpu.splits_csv, gpu.localization_baseline) == (
        320, "folder_cxr", "", "unet")
    with pytest.raises(FileNotFoundError, match="ImageNet weights for inception_v3: no file "
                                                ".*no_keras.*inception_v3"):
        check.config(gpu, str(tmp_path / "w2"))
    check.config(load("folder_gpu", [f"--config.manual_dir={tmp_path / 'in'}",
                                     "--config.train.init_from="]), str(tmp_path / "w3"))
    assert not list((tmp_path / "w3").iterdir())             # checks write nothing
