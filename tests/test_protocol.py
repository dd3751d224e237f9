"""The published protocol, row by row (docs/PROTOCOL.md): each test fails if the paper's value
for its step is lost."""
import csv
import os
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import saljax.data as sd
import saljax.models as sm
import saljax.saliency as ss
from conftest import smooth_images
from saljax.config import load
from saljax.data import common
from saljax.protocol import protocol_of
from saljax.study import inputs, maps
from saljax.study.criteria import agreement
from saljax.study.mapmaker import MapMaker, normalize
from saljax.study.lineup import TrainedClassifier
from test_data import SIZE, by_id, write_rsna

PAPER = ("rsna_inception", "siim_inception")


@pytest.mark.parametrize("name", PAPER)
def test_cascading_levels_are_trained_logits_mixed10_to_mixed1(name):
    config = load(name)
    models = [TrainedClassifier("inception_v3_seed0", "inception_v3", "unused")]
    plan = maps.schedule(config, models, 200, "/nowhere")
    names = sm.block_names(sm.create("inception_v3"))
    sets = [s for s in plan.settings["inception_v3_seed0"] if s.kind in ("trained", "cascading")]
    assert ["trained"] + [names[s.level - 1] for s in sets[1:]] == (
        ["trained", "logits"] + [f"mixed{i}" for i in range(10, 0, -1)])
    assert len(sets) == 12
    # saljax's default walks to the stem and always adds the fully randomized level
    default = maps.schedule(load("synthetic", ["--config.cascading_levels=-1"]), models, 200,
                            "/nowhere").settings["inception_v3_seed0"]
    assert max(s.level for s in default if s.kind == "cascading") == len(names)


def test_starting_weights_are_keras_imagenet_files(keras_inception_96, tmp_path, monkeypatch):
    """``init_from="imagenet"`` reads Keras's cached no-top file (written here from a
    weights=None Keras model), never downloads, and names the missing file."""
    from saljax.training import classifier
    from test_keras_import import write_keras2_h5

    config = classifier.default_config()
    config.init_from = "imagenet"
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="inception_v3_weights_tf_dim_ordering_tf_"
                                                "kernels_notop.h5.*saljax downloads nothing"):
        classifier.initial_weights(config)
    path = tmp_path / "models" / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    path.parent.mkdir()
    write_keras2_h5(keras_inception_96, path, with_config=False, top=False)
    assert load("rsna_inception").train.init_from == "imagenet"
    state = classifier.init_state(config, classifier._model(config), seed=0)
    keras = sm.from_keras("inception_v3", str(path), key=jax.random.key(0))
    for block in ("stem_1a_3x3", "mixed5", "mixed10"):
        for a, b in zip(jax.tree.leaves(state.params[block]), jax.tree.leaves(
                keras["params"][block])):
            np.testing.assert_array_equal(a, b)
    config.width = 0.5
    with pytest.raises(ValueError, match="published inception_v3 only"):
        classifier.initial_weights(config)


@pytest.mark.parametrize("name", PAPER)
def test_ssim_data_range_is_skimages_float_default(name):
    from skimage.metrics import structural_similarity
    assert load(name).ssim.data_range == 2.0
    a, b = (np.random.default_rng(s).random((32, 32)).astype(np.float64) for s in (0, 1))
    # what the study's compare_ssim assumed for float maps: the range of [-1, 1]
    assert structural_similarity(a, b, data_range=2.0) != structural_similarity(a, b,
                                                                                data_range=1.0)


RSNA_THREE_CLASSES = [  # patientId, boxes, Target; the class is derived below
    ("p-opacity", [(100.0, 200.0, 300.0, 400.0)], 1),
    ("p-normal", [], 0),
    ("p-other", [], 0),       # "No Lung Opacity / Not Normal"
    ("p-normal2", [], 0),
]


def _write_three_classes(manual):
    write_rsna(manual, RSNA_THREE_CLASSES, jpeg_ids=())
    with open(manual / "stage_2_detailed_class_info.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patientId", "class"])
        w.writerows([("p-opacity", "Lung Opacity"), ("p-normal", "Normal"),
                     ("p-other", "No Lung Opacity / Not Normal"), ("p-normal2", "Normal")])
    with open(manual / "pneumonia_splits.csv", "w", newline="") as f:   # as published
        w = csv.writer(f)
        w.writerow(["", "Image_ID", "Split"])
        w.writerows([(0, "p-opacity.png", "test"), (1, "p-normal.png", "train"),
                     (2, "p-normal2.png", "val"), (3, "p-other.png", "train")])


def test_rsna_keeps_lung_opacity_and_normal_with_the_published_splits(tmp_path):
    manual = tmp_path / "rsna"
    _write_three_classes(manual)
    path = sd.build("rsna_pneumonia", str(tmp_path / "data"), manual_dir=str(manual), size=SIZE,
                    splits_csv="pneumonia_splits.csv", classes="opacity_vs_normal")
    splits = {k: sorted(by_id(v)) for k, v in sd.open_splits(path).items()}
    assert splits == {"train": ["p-normal"], "val": ["p-normal2"], "test": ["p-opacity"]}
    every = sd.build("rsna_pneumonia", str(tmp_path / "all"), manual_dir=str(manual), size=SIZE,
                     splits_csv="pneumonia_splits.csv")   # saljax's default keeps the third
    assert sorted(by_id(sd.open_splits(every)["train"])) == ["p-normal", "p-other"]
    assert load("rsna_inception").classes == "opacity_vs_normal"
    assert load("rsna_inception").splits_csv == "pneumonia_splits.csv"
    assert load("siim_inception").splits_csv == "pneumothorax_splits.csv"


def test_published_split_ids_name_patients_and_images():
    """RSNA's published ids carry the study's ``.png`` suffix; SIIM's are bare UIDs, dots and
    all."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write(",Image_ID,Split\n0,abc-123.png,train\n1,1.2.276.0.7230010.3.1.4.8323329.5597."
                "1517875188.959090,test\n2,def.png,val\n")
    try:
        assert common.read_splits_csv(f.name) == {
            "abc-123": "train", "def": "val",
            "1.2.276.0.7230010.3.1.4.8323329.5597.1517875188.959090": "test"}
    finally:
        os.remove(f.name)


def test_box_corners_rasterize_as_the_study_did(tmp_path):
    """(x=100, y=200, w=300, h=400) at 1024 px: corners int(320 * c / 1023), filled
    inclusively."""
    mask = common.boxes_mask_corners(np.array([[100, 200, 300, 400]]), (1024, 1024), 320)
    want = np.zeros((320, 320), np.uint8)
    want[int(320 * 200 / 1023):int(320 * 600 / 1023) + 1,
         int(320 * 100 / 1023):int(320 * 400 / 1023) + 1] = 1
    np.testing.assert_array_equal(mask, want)
    assert (want.nonzero()[0].min(), want.nonzero()[0].max()) == (62, 187)
    manual = tmp_path / "rsna"
    _write_three_classes(manual)
    path = sd.build("rsna_pneumonia", str(tmp_path / "data"), manual_dir=str(manual), size=SIZE,
                    box_raster="corners", classes="opacity_vs_normal")
    ex = {k: v for s in sd.open_splits(path).values() for k, v in by_id(s).items()}
    np.testing.assert_array_equal(ex["p-opacity"]["mask"], common.boxes_mask_corners(
        np.array([[100, 200, 300, 400]]), (1024, 1024), SIZE))
    assert load("rsna_inception").box_raster == "corners"


def test_evaluation_images_are_the_studys_seeded_draw(tmp_path):
    ids = [f"img{i}" for i in range(150)]
    config = load("rsna_inception")
    idx = list(range(150))
    random.seed(1)
    random.shuffle(idx)
    assert inputs.order(ids, config)[:100] == idx[:100]
    ids_file = tmp_path / "eval.csv"
    ids_file.write_text(",Image_ID\n0,img7.png\n1,img3.png\n")
    config.eval_ids = str(ids_file)
    assert inputs.order(ids, config)[:2] == [7, 3]
    assert sorted(inputs.order(ids, config)) == list(range(150))
    config.eval_ids = ""
    config.eval_seed = -1
    assert inputs.order(ids, config) == list(range(150))


def test_the_explained_class_follows_the_argmax(small_cnn):
    """With ``target=-1`` every map explains its own model's predicted class."""
    model, v = small_cnn
    assert load("rsna_inception").target == -1
    u8 = np.random.default_rng(3).integers(0, 256, (8, 32, 32, 1)).astype(np.uint8)
    x = np.asarray(sd.to_model_input(u8))
    logits = np.asarray(model.apply(v, x))   # centre the classes so that predictions vary
    v = jax.tree.map(lambda a: a, v)
    v["params"]["logits"]["bias"] = v["params"]["logits"]["bias"] - logits.mean(0)
    predicted = np.asarray(jnp.argmax(model.apply(v, x), -1))
    assert (predicted != 1).any() and (predicted == 1).any()
    setting = maps.Setting("trained", "trained", 0, 8)
    grays = {}
    for target in (-1, 1):
        maker = MapMaker(model, v, {"gradient": {"method": "gradient"}}, key=jax.random.key(0),
                         max_batch=64, randomization={}, target=target)
        grays[target] = maker.unit(setting, ("gradient",), 0, u8, None)["gradient"]["gray"]
    want = ss.grayscale(ss.make("gradient", model)(v, x, predicted))
    np.testing.assert_allclose(grays[-1], want, rtol=1e-5, atol=1e-6)
    other = predicted != 1
    assert not np.allclose(grays[-1][other], grays[1][other])


def legacy_tf1_resize(image, out_h, out_w):
    """TF1's ``resize_bilinear`` (align_corners=False, no half-pixel centres), written out."""
    h, w = image.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        y = i * h / out_h
        y0 = int(np.floor(y))
        y1, fy = min(y0 + 1, h - 1), y - y0
        for j in range(out_w):
            x = j * w / out_w
            x0 = int(np.floor(x))
            x1, fx = min(x0 + 1, w - 1), x - x0
            top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
            bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out


def test_gradcam_upsampling_is_tf1s_legacy_bilinear(small_cnn):
    from saljax.saliency import cam
    model, v = small_cnn
    rng = np.random.default_rng(0)
    small = rng.random((2, 5, 7)).astype(np.float32)
    ours = np.asarray(cam.resize_bilinear(jnp.asarray(small), (32, 23), "tf1"))
    for k in range(2):
        np.testing.assert_allclose(ours[k], legacy_tf1_resize(small[k], 32, 23), atol=1e-6)
    assert not np.allclose(ours, cam.resize_bilinear(jnp.asarray(small), (32, 23)))
    assert dict(load("rsna_inception").hparams.gradcam)["resize"] == "tf1"
    x = smooth_images(2, 32)
    _, acts, grads = sm.block_gradients(model, v, jnp.asarray(x), ["conv3"],
                                        lambda z: z[:, 1].sum())
    a, g = np.asarray(acts["conv3"]), np.asarray(grads["conv3"])
    heat = np.maximum((g.mean(axis=(1, 2), keepdims=True) * a).sum(-1), 0)
    heat = heat / heat.max(axis=(1, 2), keepdims=True)
    want = np.stack([legacy_tf1_resize(h, 32, 32) for h in heat])
    got = ss.make("gradcam", model, resize="tf1")(v, x, np.array([1, 1]))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_guided_gradcam_and_normalization_in_the_studys_order(small_cnn):
    """grayscale(Guided Backprop) x grayscale(GradCAM), then min-max; every other map: PAIR's
    grayscale, then min-max."""
    import saliency.core as sc
    model, v = small_cnn
    x, t = smooth_images(2, 32), np.array([1, 2])   # classes whose CAMs are not all zero
    maps_ = ss.make_many({"gbp": {"method": "guided_backprop"},
                          "cam": {"method": "gradcam", "resize": "tf1"},
                          "ggc": {"method": "guided_gradcam", "resize": "tf1",
                                  "cam_grayscale": True}}, model)(v, x, t)
    for i in range(2):
        gbp = sc.VisualizeImageGrayscale(np.asarray(maps_["gbp"][i]))
        heat = sc.VisualizeImageGrayscale(np.repeat(np.asarray(maps_["cam"][i])[..., None], 3, -1))
        prod = gbp * heat
        want = (prod - prod.min()) / (prod.max() - prod.min())
        np.testing.assert_allclose(maps_["ggc"][i], want, atol=1e-5)
    gray = np.asarray(normalize(maps_["gbp"], False, "grayscale_minmax"))
    ref = np.stack([sc.VisualizeImageGrayscale(np.asarray(m)) for m in maps_["gbp"]])
    ref = (ref - ref.min((1, 2), keepdims=True)) / np.ptp(ref, (1, 2), keepdims=True)
    np.testing.assert_allclose(gray, ref, atol=1e-6)
    # the study's Guided GradCAM is already visualized: min-max only, no second grayscale
    np.testing.assert_allclose(normalize(maps_["ggc"], True, "grayscale_minmax"), maps_["ggc"],
                               atol=1e-6)
    config = load("rsna_inception")
    assert config.normalization == "grayscale_minmax"
    assert dict(config.hparams.guided_gradcam)["cam_grayscale"] is True


def test_fresh_noise_differs_per_setting(small_cnn):
    model, v = small_cnn
    methods = {"smoothgrad": {"method": "smoothgrad", "nsamples": 3}}
    u8 = (np.asarray(smooth_images(2, 32))[..., :1] * 127.5 + 127.5).astype(np.uint8)
    a, b = maps.Setting("trained", "trained", 0, 2), maps.Setting("copy", "trained", 0, 2)
    for noise, same in (("shared", True), ("fresh", False)):
        maker = MapMaker(model, v, methods, key=jax.random.key(0), max_batch=64,
                         randomization={}, target=1, noise=noise)
        ma = maker.unit(a, ("smoothgrad",), 0, u8, None)["smoothgrad"]["gray"]
        mb = maker.unit(b, ("smoothgrad",), 0, u8, None)["smoothgrad"]["gray"]
        assert np.array_equal(ma, mb) == same, noise
    assert load("rsna_inception").noise == "fresh"


def test_pass_line_pairs_per_image_from_replicate_1():
    from saljax import metrics
    pairs = np.asarray(metrics.random_pairs(jax.random.key(0), 10, 50, per_image=True))
    assert pairs.shape == (500, 2)
    assert np.all(np.bincount(pairs[:, 0]) == 50) and np.all(pairs[:, 0] != pairs[:, 1])
    config = load("rsna_inception")
    assert (config.random_pairs_per_image, config.pass_line_models) == (50, "first")


def test_agreement_is_one_pair_per_criterion():
    models = [TrainedClassifier(f"inception_v3_seed{s}", "inception_v3", "") for s in range(3)]
    models.append(TrainedClassifier("densenet121_seed0", "densenet121", ""))
    assert agreement.model_pairs(models, "first") == {
        "repeatability": [("inception_v3_seed0", "inception_v3_seed1")],
        "reproducibility": [("inception_v3_seed0", "densenet121_seed0")]}
    # the study's script: the other architecture against the *second* replicate
    assert agreement.model_pairs(models, "study") == {
        "repeatability": [("inception_v3_seed0", "inception_v3_seed1")],
        "reproducibility": [("inception_v3_seed1", "densenet121_seed0")]}
    assert agreement.model_pairs(models[:1] + models[3:], "study")["reproducibility"] == [
        ("inception_v3_seed0", "densenet121_seed0")]                   # one replicate: it
    assert len(agreement.model_pairs(models)["repeatability"]) == 3     # saljax: every pair
    assert load("rsna_inception").agreement_pairs == "study"


def test_rsna_localization_baseline_is_retinanet():
    """The study's RSNA baseline is a RetinaNet detector; SIIM's a U-Net; the choice is a
    protocol row that summary.json records, and a detector on SIIM (no boxes) is refused."""
    from saljax.study import check
    assert load("rsna_inception").localization_baseline == "retinanet"
    assert load("siim_inception").localization_baseline == "unet"
    assert protocol_of(load("rsna_inception"))["localization_baseline"] == "retinanet"
    bad = load("siim_inception")
    bad.localization_baseline = "retinanet"
    with pytest.raises(ValueError, match="trains on boxes"):
        check._localization(bad)
    bad.localization_baseline = "yolo"
    with pytest.raises(ValueError, match="localization_baseline must be one of"):
        check._localization(bad)


def test_baseline_ssim_reads_its_maps_as_8_bit_pngs(tmp_path):
    """The study wrote its U-Net outputs as 8-bit PNGs and scored the uint8 images with
    skimage (data_range 255); saljax's default scores the float maps as the saliency maps."""
    from PIL import Image
    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(0)
    a = np.clip(smooth_images(3, 48, seed=1)[..., 0] * 0.5 + 0.5, 0, 1)
    b = np.clip(a + 0.05 * rng.normal(size=a.shape), 0, 1)
    kwargs = dict(data_range=2.0, win_size=7, gaussian_weights=False)
    png8 = agreement.localizer_ssim(a, b, kwargs, "png8")
    for i in range(3):
        for name, m in (("a", a[i]), ("b", b[i])):
            Image.fromarray(np.round(m * 255).astype(np.uint8)).save(tmp_path / f"{name}.png")
        ra, rb = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("a", "b"))
        np.testing.assert_allclose(png8[i], structural_similarity(ra, rb, win_size=7),
                                   atol=2e-4)
    floats = agreement.localizer_ssim(a, b, kwargs, "maps")
    assert np.all(floats > png8)             # data_range 2 on [0, 1] maps raises SSIM
    assert load("rsna_inception").localization_ssim == "png8"
    assert load("synthetic").localization_ssim == "maps"


def test_xrais_sign_is_a_named_choice(small_cnn):
    """XRAI's map is signed. saljax ("absolute") lets the grayscale step rank regions by
    magnitude; "signed" min-max scales the signed map (most negative region lowest) and skips
    grayscale. The study's code does not settle it (a PROTOCOL.md row says so)."""
    from saljax.saliency import xrai_regions as sx
    model, v = small_cnn
    x = smooth_images(2, 32)
    seg = sx.segments(x)
    raw = np.asarray(ss.make("xrai", model, steps=8)(v, x, segments=seg))
    signed = np.asarray(ss.make("xrai", model, steps=8, sign="signed")(v, x, segments=seg))
    lo, hi = raw.min((1, 2), keepdims=True), raw.max((1, 2), keepdims=True)
    np.testing.assert_allclose(signed, (raw - lo) / (hi - lo), atol=1e-6)
    spec = {s.label: s for s in ss.make_many({"xrai": dict(steps=8, sign="signed")},
                                             model).specs}["xrai"]
    assert spec.method.visualized(spec.hparams)
    np.testing.assert_allclose(normalize(jnp.asarray(raw), False, "grayscale"),
                               ss.grayscale(jnp.abs(jnp.asarray(raw))), atol=1e-6)
    with pytest.raises(ValueError, match="sign"):
        ss.make("xrai", model, sign="abs")


def test_densenet_is_fed_imagenet_normalized_inputs_in_training_and_maps(tmp_path):
    """The study fed DenseNet121 ImageNet mean/std-normalized inputs: the paper configs train
    it so, record it in the checkpoint, and every map of it is made from such inputs."""
    from saljax.models import checkpoint
    from saljax.study.lineup import _train_config
    paper_cfg = load("tiny_paper")
    tc = {spec["name"]: _train_config(paper_cfg, spec, "") for spec in paper_cfg.models}
    assert tc["densenet121"].scaling == "imagenet" and tc["inception_v3"].scaling == "symmetric"
    assert load("tiny").arch_scaling.to_dict() == {}            # saljax: [-1, 1] for all
    model = sm.create("densenet121", num_classes=2, width=0.0625)
    pixels = (np.asarray(smooth_images(2, 64))[..., :1] * 127.5 + 127.5).astype(np.uint8)
    v = sm.init(model, jax.random.key(0))
    path = str(tmp_path / "densenet121_seed0")
    checkpoint.save(path, v, name="densenet121", width=0.0625, metadata={"scaling": "imagenet"})
    c = load("tiny")
    mm = maps.maker(c, 0, TrainedClassifier("densenet121_seed0", "densenet121", path),
                    {"gradient": {}})
    out = mm.unit(maps.Setting("trained", "trained", 0, 2), ("gradient",), 0, pixels, None)
    want = ss.make("gradient", model)(v, sd.to_model_input(pixels, "imagenet"),
                                      jnp.ones(2, jnp.int32))
    np.testing.assert_allclose(out["gradient"]["signed"], np.sum(np.asarray(want), -1),
                               rtol=1e-4, atol=1e-6)
    symmetric = ss.make("gradient", model)(v, sd.to_model_input(pixels), jnp.ones(2, jnp.int32))
    assert not np.allclose(np.sum(np.asarray(symmetric), -1), out["gradient"]["signed"],
                           rtol=1e-2)


def test_imagenet_scaled_training_inputs_are_not_clipped_to_minus_one_one():
    """Augmentation works in [-1, 1] (black padding, clipping) before the model's scaling:
    under ImageNet scaling a white pixel stays (1 - 0.406) / 0.225, as at evaluation (the
    augmentation once clipped ImageNet-scaled inputs to [-1, 1]: DenseNet121 then reached a
    validation AUC of 0.68 on synthetic_paper, 0.99 with [-1, 1] inputs)."""
    from saljax.training.classifier import augment, train_inputs
    pixels = np.full((2, 32, 32, 1), 255, np.uint8)
    pixels[:, :8] = 0
    key = jax.random.key(0)
    plain = np.asarray(train_inputs(pixels, key, "imagenet", False))
    np.testing.assert_allclose(plain, np.asarray(sd.to_model_input(pixels, "imagenet")))
    assert plain.max() > 2.6 and plain.min() < -2.0
    jittered = np.asarray(train_inputs(pixels, key, "imagenet", True))
    want = sd.from_symmetric(augment(sd.to_model_input(pixels), key), "imagenet")
    np.testing.assert_allclose(jittered, np.asarray(want), rtol=1e-6)
    assert jittered.max() > 2.0
    np.testing.assert_array_equal(np.asarray(train_inputs(pixels, key, "symmetric", True)),
                                  np.asarray(augment(sd.to_model_input(pixels), key)))
