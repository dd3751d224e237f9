"""Training classifiers: replicate seeds together, optax, best-by-validation-AUC, exact resume.

``train(config, train_dir)`` trains ``len(config.seeds)`` replicates of one architecture through
:func:`saljax.training.loop.fit` (each replicate with its own initialisation, data order and
augmentation; orbax checkpoints in ``train_dir/checkpoints``). Each epoch ends with the
validation AUC of every replicate; each replicate's best variables are kept and finally
exported with :func:`saljax.models.checkpoint.save` to ``train_dir/models/<name>_seed<seed>``.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import saljax.models as sm
from saljax import data as sd
from saljax.metrics import roc_auc
from saljax.parallel import data_mesh, is_process_local
from saljax.training.loop import (Task, TrainState, every_replicate, export, fit, keep_best,
                                  write_index)
from saljax.training.replicates import ReplicateBatches, over_replicates, replicate_mode

OPTIMIZERS = ("adam", "sgd")             # config.optimizer (sgd: momentum 0.9)
DTYPES = ("float32", "bfloat16")          # config.dtype: the compute dtype
LABEL_PERMUTATION_SEED_OFFSET = 10_000   # permuted labels: first seed + this (apart from batches)


def default_config() -> ml_collections.ConfigDict:
    """The study's training settings (Adam at 7e-5); configs override what they need."""
    c = ml_collections.ConfigDict()
    c.data_path = ""               # a built dataset (saljax data build ...)
    c.model = "inception_v3"
    c.width = 1.0
    c.num_classes = 2
    c.dtype = "float32"            # compute dtype; "bfloat16" for mixed precision
    c.seeds = (0,)                 # one replicate per seed, trained together
    c.optimizer = "adam"           # or "sgd" (momentum 0.9)
    c.learning_rate = 7e-5
    c.bn_momentum = 0.99           # Keras's; short runs need faster-moving statistics (0.9)
    c.batch_size = 32
    c.epochs = 10
    c.augment = True               # random shifts and brightness/contrast
    c.class_weighting = False      # weight the loss by inverse class frequency
    c.label_randomization = False  # Adebayo et al.'s data randomization test
    c.init_from = ""               # "imagenet" (Keras's cached no-top file; the study's), or a
                                   # Keras weights file; "": random (Glorot, as Keras)
    c.checkpoint_every = 50        # steps between orbax checkpoints
    c.eval_batch_size = 64
    c.scaling = "symmetric"        # input scaling: "symmetric" ([-1, 1]) or "imagenet"
    c.max_steps = -1               # stop early (for tests): -1 runs every epoch
    c.replicates = "auto"          # "vmap": one batched step; "loop": one step per replicate;
                                   # "auto": vmap on accelerators, loop on the CPU
    return c


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class State(TrainState):
    """A classifier replicate's training and its best variables so far (by validation AUC)."""
    best_params: Any
    best_batch_stats: Any
    best_auc: jnp.ndarray
    best_epoch: jnp.ndarray


def _model(config):
    dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
    return sm.create(config.model, num_classes=config.num_classes, width=config.width,
                     dtype=dtype).clone(bn_momentum=config.bn_momentum)


def _optax(name: str, learning_rate: float):
    if name == "adam":
        return optax.adam(learning_rate)
    if name == "sgd":
        return optax.sgd(learning_rate, momentum=0.9)
    raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, got "
                     f"{name!r}")


def init_state(config, model, seed: int) -> State:
    """A replicate's initial state: fresh variables (or Keras weights) and optimizer state."""
    key = jax.random.fold_in(jax.random.key(seed), 0)
    if config.init_from:
        variables = sm.from_keras(config.model, initial_weights(config),
                                  num_classes=config.num_classes, key=key)
    else:
        variables = sm.init(model, key)
    params, stats = variables["params"], variables["batch_stats"]
    opt_init = _optimizer_init(config.optimizer, float(config.learning_rate))
    return State(params, stats, opt_init(params), params, stats, jnp.float32(-1.0),
                 jnp.int32(-1))


@functools.lru_cache(maxsize=None)
def _optimizer_init(name: str, learning_rate: float):
    """The optimizer's jitted ``init``, one per setting: traced once for every replicate."""
    return jax.jit(_optax(name, learning_rate).init)


def initial_weights(config) -> str:
    """The Keras file ``config.init_from`` names: ``"imagenet"`` is Keras's cached ImageNet
    no-top file of ``config.model`` (:func:`saljax.models.imagenet_weights`), anything else a
    path. Missing files are clear errors."""
    if config.init_from == "imagenet":
        return sm.imagenet_weights(config.model, config.width)
    if not os.path.exists(config.init_from):
        raise FileNotFoundError(f"train.init_from: no Keras weights file {config.init_from}")
    return config.init_from


def augment(images, key):
    """Random shifts (up to 1/16 of the side, zero-padded) and brightness/contrast jitter of
    model inputs [B, H, W, 3] in [-1, 1]."""
    b, h, w, _ = images.shape
    pad = max(1, h // 16)
    k1, k2, k3 = jax.random.split(key, 3)
    shifts = jax.random.randint(k1, (b, 2), 0, 2 * pad + 1)
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-1.0)
    shifted = jax.vmap(lambda im, s: jax.lax.dynamic_slice(im, (s[0], s[1], 0), (h, w, 3)))(
        padded, shifts)
    contrast = jax.random.uniform(k2, (b, 1, 1, 1), minval=0.85, maxval=1.15)
    brightness = jax.random.uniform(k3, (b, 1, 1, 1), minval=-0.1, maxval=0.1)
    return jnp.clip(shifted * contrast + brightness, -1.0, 1.0)


def train_inputs(images, key, scaling: str, augment_: bool):
    """A training batch's model inputs: uint8 [B, H, W, 1] augmented in [-1, 1] (its black
    padding and clipping), then in the model's ``scaling``; float32 [B, H, W, 3]."""
    x = sd.to_model_input(images)
    return sd.from_symmetric(augment(x, key) if augment_ else x, scaling)


def make_train_step(config, model):
    """The step of every replicate: ``(state, {"image", "label"}, keys, class_weights) ->
    (state, loss)`` (see :func:`saljax.training.loop.every_replicate`). Families with the same
    model and step settings (a study's shortcut arm and its normal arm) share one step, traced
    once."""
    return _train_step(model, config.optimizer, float(config.learning_rate), config.scaling,
                       bool(config.augment), replicate_mode(config))


@functools.lru_cache(maxsize=None)
def _train_step(model, optimizer_name: str, learning_rate: float, scaling: str, augment_: bool,
                mode: str):
    optimizer = _optax(optimizer_name, learning_rate)

    def one(state: State, batch, key, class_weights):
        labels = batch["label"]
        x = train_inputs(batch["image"], key, scaling, augment_)

        def loss_fn(params):
            logits, updates = model.apply({"params": params, "batch_stats": state.batch_stats}, x,
                                          train=True, mutable=["batch_stats"])
            per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
            weights = class_weights[labels]
            return jnp.sum(per_example * weights) / jnp.sum(weights), updates["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return dataclasses.replace(state, params=params, batch_stats=stats,
                                   opt_state=opt_state), loss

    return every_replicate(one, mode)


def make_predict(config, model):
    return _predict(model, config.scaling, replicate_mode(config))


@functools.lru_cache(maxsize=None)
def _predict(model, scaling: str, mode: str):
    def one(params, stats, images):
        x = sd.to_model_input(images, scaling)
        return jax.nn.softmax(model.apply({"params": params, "batch_stats": stats}, x))[..., 1]
    return over_replicates(one, mode, (0, 0, None))


def evaluate_auc(predict, params, stats, source, batch_size) -> np.ndarray:
    """Validation ROC-AUC of every replicate: [R]."""
    batches = sd.evaluation_batches(source, batch_size, keys=("image", "label"))
    scores, labels = [], []
    for i in range(len(batches)):
        batch = batches[i]
        scores.append(np.asarray(predict(params, stats, jnp.asarray(batch["image"]))))
        labels.append(batch["label"])
    scores = np.concatenate(scores, axis=1)
    labels = np.concatenate(labels)
    return np.asarray(roc_auc(scores[:, None, :], labels[None, None, :]))


def _randomized_labels(source, seed: int) -> np.ndarray:
    """Adebayo et al.'s data randomization test: the training labels, permuted."""
    labels = sd.labels(source)
    return np.random.default_rng(seed).permutation(labels)


def replicate_batches(config, source, keys=("image", "label"), shard=True) -> ReplicateBatches:
    """Every replicate's training batches; with ``label_randomization`` every image carries a
    label permuted once (the same for every replicate)."""
    labels = (_randomized_labels(source, LABEL_PERMUTATION_SEED_OFFSET + config.seeds[0])
              if config.label_randomization else None)
    return ReplicateBatches(source, config.batch_size, config.seeds, keys=keys, labels=labels,
                            shard=shard)


def train(config, train_dir: str, *, splits=None, mesh=None, progress: bool = True,
          export_dir: str | None = None) -> dict:
    """Train every replicate of ``config``; returns ``{seed: {"path", "val_auc", "epoch"}}``.

    ``splits`` maps split names to sources (default: the dataset at ``config.data_path``).
    Resumes from ``train_dir/checkpoints`` when a previous run left one; exports each replicate
    to ``<export_dir>/models/<model>_seed<seed>`` (default ``train_dir``).
    """
    model = _model(config)
    mesh = mesh or data_mesh()
    splits = splits or sd.open_splits(config.data_path, need=("train", "val"))
    train_src, val_src = splits["train"], splits["val"]
    batches = replicate_batches(config, train_src, shard=not is_process_local(mesh))
    if config.class_weighting:
        counts = np.bincount(sd.labels(train_src), minlength=config.num_classes)
        class_weights = jnp.asarray(len(train_src) / (config.num_classes * np.maximum(counts, 1)),
                                    jnp.float32)
    else:
        class_weights = jnp.ones(config.num_classes, jnp.float32)
    predict = make_predict(config, model)

    def epoch_end(state, epoch):
        aucs = evaluate_auc(predict, state.params, state.batch_stats, val_src,
                            config.eval_batch_size)
        return keep_best(state, jnp.asarray(aucs, jnp.float32), epoch, "best_auc"), {
            "val_auc": np.round(aucs, 3).tolist()}

    task = Task(name=config.model, seeds=tuple(config.seeds),
                init=lambda seed: init_state(config, model, seed),
                step=make_train_step(config, model), batches=batches, epochs=config.epochs,
                shared=class_weights, epoch_end=epoch_end,
                checkpoint_every=config.checkpoint_every, max_steps=config.max_steps)
    state = fit(task, os.path.join(train_dir, "checkpoints"), mesh=mesh, progress=progress)
    return export_best(config, state, export_dir or train_dir)


def export_best(config, state: State, export_dir: str) -> dict:
    """Save each replicate's best variables as a model directory; returns their summary."""
    metas = [{"seed": int(seed), "val_auc": float(state.best_auc[r]),
              "epoch": int(state.best_epoch[r]),
              "label_randomization": bool(config.label_randomization),
              "scaling": config.scaling}
             for r, seed in enumerate(config.seeds)]
    paths = export(export_dir, config.model, config.seeds, state.best_params,
                   state.best_batch_stats, metas, width=config.width,
                   num_classes=config.num_classes)
    out = {int(seed): {"path": p, **m} for seed, p, m in zip(config.seeds, paths, metas)}
    write_index(export_dir, config.model, out)
    return out
