"""Training the RSNA localization baseline: replicate RetinaNets trained together on the boxes.

``train(config, train_dir, splits=...)`` trains one RetinaNet per seed (focal loss, alpha 0.25,
gamma 2, over non-ignored anchors and smooth-L1 box regression over positive anchors, both
divided by the number of positive anchors) through :func:`saljax.training.loop.fit` (orbax
checkpoints in ``train_dir/checkpoints``, exact resume). Each epoch ends with every replicate's
validation AP at IoU 0.5 (one class: mAP@0.5); each replicate's best variables are exported to
``<export_dir>/models/retinanet_seed<seed>`` (default ``train_dir``). :func:`score_maps` turns a trained detector into
the study's baseline map: each pixel the highest score of the detections covering it.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import saljax.models as sm
from saljax import data as sd
from saljax.metrics.detection import average_precision
from saljax.models import boxes as bx
from saljax.models.retinanet import detect, initial_variables
from saljax.parallel import data_mesh, is_process_local
from saljax.training.loop import (Task, TrainState, every_replicate, export, fit, keep_best,
                                  write_index)
from saljax.training.replicates import ReplicateBatches, replicate, replicate_mode

BATCH_SEED_OFFSET = 2000   # a RetinaNet replicate's batch order: seed + this (apart from others')


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.width = 0.25           # ResNet-50 channels scaled (16 in the stem)
    c.seeds = (0, 1)
    c.learning_rate = 1e-3   # Adam
    c.batch_size = 16
    c.epochs = 4
    c.anchor_scale = 4.0     # an anchor's base side in strides (the paper's: 32 px on P3)
    c.max_boxes = 8          # boxes per image the batches carry (RSNA has at most 4)
    c.alpha = 0.25
    c.gamma = 2.0
    c.box_beta = 0.11        # smooth-L1's transition point (Detectron's RetinaNet)
    c.scaling = "symmetric"
    c.replicates = "auto"
    c.checkpoint_every = 50
    c.eval_batch_size = 64
    c.max_steps = -1
    return c


def focal_loss(logits, labels, alpha: float = 0.25, gamma: float = 2.0):
    """Per anchor [A]: ``-alpha_t (1 - p_t)^gamma log(p_t)`` of one-class ``logits`` [A] against
    ``labels`` [A] (1 object, 0 background; -1 ignored: 0)."""
    y = (labels == 1).astype(jnp.float32)
    p = jax.nn.sigmoid(logits)
    ce = optax.sigmoid_binary_cross_entropy(logits, y)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return jnp.where(labels >= 0, alpha_t * (1 - p_t) ** gamma * ce, 0.0)


def smooth_l1(x, beta: float):
    """Elementwise: ``0.5 x^2 / beta`` below ``beta``, ``|x| - 0.5 beta`` above."""
    a = jnp.abs(x)
    return jnp.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta)


def detection_loss(logits, deltas, gt_boxes, anchors, config):
    """One image's RetinaNet loss: ``logits`` [A, 1], ``deltas`` [A, 4], ``gt_boxes`` [G, 4]."""
    labels, targets = bx.match(anchors, gt_boxes)
    positive = (labels == 1).astype(jnp.float32)
    n = jnp.maximum(positive.sum(), 1.0)
    cls = focal_loss(logits[:, 0], labels, config.alpha, config.gamma).sum() / n
    box = (smooth_l1(deltas - targets, config.box_beta).sum(-1) * positive).sum() / n
    return cls + box


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class State(TrainState):
    """A detector replicate's training and its best variables so far (by validation AP)."""
    best_params: Any
    best_batch_stats: Any
    best_ap: jnp.ndarray
    best_epoch: jnp.ndarray


class PaddedBoxes:
    """A source whose ``boxes`` are padded with zero rows to ``[max_boxes, 4]`` (so batches
    stack); an image with more boxes is an error naming it."""

    def __init__(self, source, max_boxes: int):
        self.source, self.max_boxes = source, max_boxes

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        example = dict(self.source[i])
        b = np.asarray(example["boxes"], np.float32).reshape(-1, 4)
        if len(b) > self.max_boxes:
            raise ValueError(f"image {example.get('id', i)!r} has {len(b)} boxes, more than "
                             f"detector.max_boxes = {self.max_boxes}")
        example["boxes"] = np.pad(b, ((0, self.max_boxes - len(b)), (0, 0)))
        return example


def _train_step(config, model, anchors):
    optimizer = optax.adam(config.learning_rate)

    def one(state: State, batch, key, shared):
        x = sd.to_model_input(batch["image"], config.scaling)

        def loss_fn(params):
            (logits, deltas), upd = model.apply(
                {"params": params, "batch_stats": state.batch_stats}, x, train=True,
                mutable=["batch_stats"])
            losses = jax.vmap(lambda lo, de, gt: detection_loss(lo, de, gt, anchors, config))(
                logits, deltas, batch["boxes"])
            return losses.mean(), upd["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return dataclasses.replace(state, params=optax.apply_updates(state.params, updates),
                                   batch_stats=stats, opt_state=opt_state), loss

    return optimizer, every_replicate(one, replicate_mode(config))


def detections(model, variables, images, *, anchor_scale: float = 4.0,
               scaling: str = "symmetric"):
    """``(boxes [B, D, 4], scores [B, D], valid [B, D])`` of uint8 images [B, S, S, 1]: the
    detector's boxes after NMS (:func:`saljax.models.retinanet.detect`)."""
    logits, deltas = _apply(model, variables, sd.to_model_input(images, scaling))
    return detect(logits, deltas, size=images.shape[1], anchor_scale=float(anchor_scale))


_apply = jax.jit(lambda model, v, x: model.apply(v, x), static_argnums=0)


def validation_ap(model, state: State, source, config) -> np.ndarray:
    """[R]: every replicate's AP at IoU 0.5 on ``source`` (a :class:`PaddedBoxes`)."""
    out = []
    for r in range(len(state.best_ap)):
        v = {"params": replicate(state.params, r), "batch_stats": replicate(state.batch_stats, r)}
        found, truth = [], []
        batches = sd.evaluation_batches(source, config.eval_batch_size, keys=("image", "boxes"))
        for batch in (batches[i] for i in range(len(batches))):
            found.append([np.asarray(a) for a in detections(
                model, v, batch["image"], anchor_scale=config.anchor_scale,
                scaling=config.scaling)])
            truth.append(batch["boxes"])
        boxes, scores, valid = (np.concatenate(a) for a in zip(*found))
        out.append(average_precision(boxes, scores, valid, np.concatenate(truth)))
    return np.nan_to_num(np.asarray(out, np.float32), nan=0.0)


def train(config, train_dir: str, *, splits, mesh=None, progress: bool = True,
          export_dir: str | None = None) -> dict:
    """Train ``len(config.seeds)`` RetinaNets on ``splits["train"]`` (validated on
    ``splits["val"]``); returns ``{seed: {"path", "val_ap", "epoch"}}`` (the models in
    ``export_dir``, default ``train_dir``)."""
    model = sm.create("retinanet", num_classes=1, width=config.width)
    mesh = mesh or data_mesh()
    train_src = PaddedBoxes(splits["train"], config.max_boxes)
    val_src = PaddedBoxes(splits["val"], config.max_boxes)
    size = int(np.asarray(train_src[0]["image"]).shape[0])
    anchors = jnp.asarray(bx.anchors(size, config.anchor_scale))
    optimizer, step = _train_step(config, model, anchors)

    opt_init = jax.jit(optimizer.init)      # traced once for every replicate

    def init(seed):
        v = initial_variables(model, jax.random.key(seed))
        return State(v["params"], v["batch_stats"], opt_init(v["params"]),
                     v["params"], v["batch_stats"], jnp.float32(-1.0), jnp.int32(-1))

    def epoch_end(state, epoch):
        aps = validation_ap(model, state, val_src, config)
        return keep_best(state, jnp.asarray(aps), epoch, "best_ap"), {
            "val_ap50": np.round(aps, 3).tolist()}

    seeds = tuple(config.seeds)
    batches = ReplicateBatches(train_src, config.batch_size, [BATCH_SEED_OFFSET + s for s in seeds],
                               keys=("image", "boxes"), shard=not is_process_local(mesh))
    task = Task(name="retinanet", seeds=seeds, init=init, step=step, batches=batches,
                epochs=config.epochs, epoch_end=epoch_end,
                checkpoint_every=config.checkpoint_every, max_steps=config.max_steps)
    state = fit(task, os.path.join(train_dir, "checkpoints"), mesh=mesh, progress=progress)
    metas = [{"seed": int(seed), "val_ap50": float(state.best_ap[r]),
              "epoch": int(state.best_epoch[r]), "anchor_scale": float(config.anchor_scale)}
             for r, seed in enumerate(seeds)]
    export_dir = export_dir or train_dir
    paths = export(export_dir, "retinanet", seeds, state.best_params, state.best_batch_stats,
                   metas, width=config.width, num_classes=1)
    out = {int(seed): {"path": p, **m} for seed, p, m in zip(seeds, paths, metas)}
    write_index(export_dir, "retinanet", out)
    return out


def score_maps(model, variables, images, *, anchor_scale: float = 4.0,
               scaling: str = "symmetric", batch_size: int = 64) -> np.ndarray:
    """The detector's baseline map of uint8 images [B, S, S, 1]: float32 [B, S, S], each pixel
    the highest score of the detections (after NMS) covering it."""
    out = []
    for s in range(0, len(images), batch_size):
        boxes, scores, valid = detections(model, variables, images[s:s + batch_size],
                                          anchor_scale=anchor_scale, scaling=scaling)
        out.append(np.asarray(bx.score_map(boxes, scores, valid, images.shape[1])))
    return np.concatenate(out)
