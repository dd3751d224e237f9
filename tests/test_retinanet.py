"""The RetinaNet baseline: box geometry, loss and NMS against plain numpy references, the score
map of known boxes, and a CPU training run on synthetic X-rays."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import saljax.models as sm
from saljax.metrics.detection import average_precision
from saljax.models import boxes as bx
from saljax.models.retinanet import initial_variables
from saljax.training import detector

TRAIN_EPOCHS = 12
LEARNING_RATE = 1e-3


def random_boxes(rng, n, size=96.0):
    xy = rng.uniform(0, size * 0.8, (n, 2))
    wh = rng.uniform(2, size * 0.4, (n, 2))
    return np.concatenate([xy, xy + wh], -1).astype(np.float32)


def test_anchors_have_the_paper_shapes_and_count():
    a = bx.anchors(96)
    cells = sum(h * w for h, w in bx.level_shapes(96))
    assert a.shape == (9 * cells, 4) and bx.level_shapes(96)[0] == (12, 12)
    first = a[:9]                                   # P3's top-left cell: stride 8, base 32 px
    w, h = first[:, 2] - first[:, 0], first[:, 3] - first[:, 1]
    np.testing.assert_allclose((first[:, :2] + first[:, 2:]) / 2, 4.0, atol=1e-5)
    np.testing.assert_allclose(np.sqrt(w * h), 32 * np.repeat([1, 2 ** (1 / 3), 2 ** (2 / 3)], 3),
                               rtol=1e-5)
    np.testing.assert_allclose(h / w, np.tile([0.5, 1, 2], 3), rtol=1e-5)


def test_box_encoding_round_trips():
    rng = np.random.default_rng(0)
    boxes, anchors = random_boxes(rng, 200), random_boxes(rng, 200)
    back = bx.decode(bx.encode(jnp.asarray(boxes), jnp.asarray(anchors)), jnp.asarray(anchors))
    np.testing.assert_allclose(np.asarray(back), boxes, atol=1e-3)


def test_focal_loss_equals_the_formula():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, 500).astype(np.float32)
    labels = rng.integers(-1, 2, 500)
    got = np.asarray(detector.focal_loss(jnp.asarray(logits), jnp.asarray(labels), 0.25, 2.0))
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    p_t = np.where(labels == 1, p, 1 - p)
    alpha_t = np.where(labels == 1, 0.25, 0.75)
    want = np.where(labels >= 0, -alpha_t * (1 - p_t) ** 2 * np.log(p_t), 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def numpy_nms(boxes, scores, threshold):
    def iou(a, b):
        inter = (max(0, min(a[2], b[2]) - max(a[0], b[0]))
                 * max(0, min(a[3], b[3]) - max(a[1], b[1])))
        area = lambda x: (x[2] - x[0]) * (x[3] - x[1])
        return inter / (area(a) + area(b) - inter)
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if all(iou(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_equals_a_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 60, 64.0)
    scores = rng.uniform(size=60).astype(np.float32)
    valid = rng.uniform(size=60) > 0.2
    want = [i for i in numpy_nms(boxes[valid], scores[valid], 0.5)]
    out_boxes, out_scores, kept = bx.nms(jnp.asarray(boxes), jnp.asarray(scores),
                                         jnp.asarray(valid), 0.5, max_detections=100)
    kept = np.asarray(kept)
    assert kept.sum() == len(want)
    np.testing.assert_array_equal(np.asarray(out_boxes)[kept], boxes[valid][want])
    np.testing.assert_array_equal(np.asarray(out_scores)[kept], scores[valid][want])
    assert not np.asarray(out_scores)[~kept].any()


def test_matching_assigns_positives_negatives_and_each_box_an_anchor():
    anchors = jnp.asarray([[0, 0, 10, 10], [0, 0, 9, 10], [20, 20, 30, 30], [50, 50, 60, 60],
                           [0, 0, 22, 10]], jnp.float32)
    gt = jnp.asarray([[0, 0, 10, 10], [52, 52, 56, 56], [0, 0, 0, 0]], jnp.float32)
    labels, targets = bx.match(anchors, gt)
    # IoUs with box 0: 1, 0.9, 0, 0, 10/22; box 1 (padding aside) overlaps anchor 3 by 0.16
    np.testing.assert_array_equal(np.asarray(labels), [1, 1, 0, 1, -1])
    np.testing.assert_allclose(np.asarray(bx.decode(targets[3], anchors[3])), [52, 52, 56, 56],
                               atol=1e-4)


def test_the_score_map_of_known_boxes_is_exact():
    boxes = jnp.asarray([[[2, 2, 6, 5], [4, 0, 8, 3], [0, 0, 0, 0]]], jnp.float32)
    scores = jnp.asarray([[0.9, 0.5, 0.7]])
    valid = jnp.asarray([[True, True, False]])
    got = np.asarray(bx.score_map(boxes, scores, valid, 8))[0]
    want = np.zeros((8, 8), np.float32)
    want[0:3, 4:8] = 0.5
    want[2:5, 2:6] = 0.9
    np.testing.assert_array_equal(got, want)


def test_average_precision_by_hand():
    gt = np.asarray([[[0, 0, 10, 10], [20, 20, 30, 30]], [[0, 0, 10, 10], [0, 0, 0, 0]]], float)
    boxes = np.asarray([[[0, 0, 10, 10], [40, 40, 50, 50]], [[1, 0, 10, 10], [0, 0, 10, 10]]],
                       float)
    scores = np.asarray([[0.9, 0.8], [0.7, 0.6]])
    valid = np.ones((2, 2), bool)
    # by score: TP, FP, TP (IoU 0.9), FP (box already matched): recall 1/3, 1/3, 2/3, 2/3;
    # precision 1, 1/2, 2/3, 1/2 -> monotone 1, 2/3, 2/3, 1/2; AP = 1/3 * 1 + 1/3 * 2/3
    assert average_precision(boxes, scores, valid, gt) == pytest.approx(1 / 3 + 2 / 9)
    assert np.isnan(average_precision(boxes, scores, valid, np.zeros_like(gt)))


def test_the_network_scores_every_anchor():
    model = sm.create("retinanet", num_classes=1, width=0.0625)
    v = initial_variables(model, jax.random.key(0), size=96)
    logits, deltas = model.apply(v, jnp.zeros((2, 96, 96, 3)))
    n = bx.anchors(96).shape[0]
    assert logits.shape == (2, n, 1) and deltas.shape == (2, n, 4)
    np.testing.assert_allclose(np.asarray(jax.nn.sigmoid(logits)).mean(), 0.01, rtol=0.2)


@pytest.mark.slow
def test_training_on_synthetic_xrays_finds_the_lesions(tmp_path):
    """A narrow RetinaNet trained on 64 px synthetic X-rays (one lesion box per positive)
    reaches validation AP@0.5 >= 0.5, and its score maps localize the test lesions better than
    the average training mask."""
    import saljax.data as sd
    import saljax.metrics as mx
    from saljax.models import checkpoint
    path = sd.build("synthetic_cxr", str(tmp_path / "data"), size=64,
                    counts=(("train", 480), ("val", 96), ("test", 64)), lesion_contrast=0.6,
                    lesion_radius=(0.12, 0.2), max_lesions=1)
    splits = sd.open_splits(path)
    c = detector.default_config()
    c.update(dict(width=0.125, seeds=(0,), epochs=TRAIN_EPOCHS, anchor_scale=2.0,
                  batch_size=16, learning_rate=LEARNING_RATE))
    out = detector.train(c, str(tmp_path / "work"), splits=splits, progress=False)
    assert out[0]["val_ap50"] >= 0.5, out
    model, variables, spec = checkpoint.load(out[0]["path"])
    assert spec["metadata"]["val_ap50"] == out[0]["val_ap50"]
    test = [splits["test"][i] for i in range(len(splits["test"]))]
    positives = [e for e in test if e["label"] == 1]
    images = np.stack([e["image"] for e in positives])
    masks = np.stack([e["mask"] for e in positives]).astype(bool)
    maps = detector.score_maps(model, variables, images, anchor_scale=2.0)
    train_masks = np.stack([splits["train"][i]["mask"] for i in range(len(splits["train"]))])
    average = np.asarray(mx.average_mask(train_masks))
    detector_auprc = float(np.nanmean(np.asarray(mx.auprc(maps, masks))))
    baseline_auprc = float(np.nanmean(np.asarray(mx.auprc(np.broadcast_to(average, maps.shape),
                                                          masks))))
    print(f"val AP@0.5 {out[0]['val_ap50']:.3f}; test AUPRC {detector_auprc:.3f} vs average "
          f"mask {baseline_auprc:.3f}")
    assert detector_auprc > baseline_auprc
