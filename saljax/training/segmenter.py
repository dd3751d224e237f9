"""Training the segmentation baseline: replicate U-Nets trained together on the lesion masks.

The study scores a segmentation model like a saliency method (localization utility) and compares
replicate segmenters like replicate classifiers (repeatability): the yardstick a saliency map
would have to meet to replace one. ``train(config, train_dir, splits=...)`` trains one U-Net per
seed on every training image (negatives teach the empty mask) with a per-pixel logistic loss
through :func:`saljax.training.loop.fit` (orbax checkpoints in ``train_dir/checkpoints``, exact
resume) and exports each to ``train_dir/models/unet_seed<seed>``.
"""
from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import ml_collections
import optax

import saljax.models as sm
from saljax import data as sd
from saljax.parallel import data_mesh, is_process_local
from saljax.training.loop import (Task, TrainState, every_replicate, export, fit,
                                  write_index)
from saljax.training.replicates import ReplicateBatches, replicate_mode

BATCH_SEED_OFFSET = 1000   # a U-Net replicate's batch order: seed + this (apart from classifiers')


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.width = 0.5            # 8 channels at the top level
    c.seeds = (0, 1)
    c.learning_rate = 3e-3
    c.batch_size = 16
    c.epochs = 2
    c.scaling = "symmetric"
    c.replicates = "auto"    # as classifiers: vmap on accelerators, a loop on the CPU
    c.checkpoint_every = 50  # steps between orbax checkpoints
    return c


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class State(TrainState):
    """A U-Net replicate's training and its last loss."""
    loss: jnp.ndarray


def train(config, train_dir: str, *, splits, mesh=None, progress: bool = True,
          export_dir: str | None = None) -> dict:
    """Train ``len(config.seeds)`` U-Nets on ``splits["train"]``; returns ``{seed: {"path",
    "seed", "final_loss"}}`` (the models in ``export_dir``, default ``train_dir``)."""
    model = sm.create("unet", num_classes=1, width=config.width)
    mesh = mesh or data_mesh()
    optimizer = optax.adam(config.learning_rate)
    opt_init = jax.jit(optimizer.init)      # traced once for every replicate

    def init(seed):
        v = sm.init(model, jax.random.key(seed))
        return State(v["params"], v["batch_stats"], opt_init(v["params"]), jnp.float32(0.0))

    def step(state: State, batch, key, shared):
        x = sd.to_model_input(batch["image"], config.scaling)
        y = batch["mask"].astype(jnp.float32)

        def loss_fn(p):
            logits, upd = model.apply({"params": p, "batch_stats": state.batch_stats}, x,
                                      train=True, mutable=["batch_stats"])
            return optax.sigmoid_binary_cross_entropy(logits, y).mean(), upd["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return State(optax.apply_updates(state.params, updates), stats, opt_state, loss), loss

    seeds = tuple(config.seeds)
    batches = ReplicateBatches(splits["train"], config.batch_size,
                               [BATCH_SEED_OFFSET + s for s in seeds],
                               keys=("image", "mask"), shard=not is_process_local(mesh))
    task = Task(name="unet", seeds=seeds, init=init,
                step=every_replicate(step, replicate_mode(config)), batches=batches,
                epochs=config.epochs, checkpoint_every=config.checkpoint_every)
    state = fit(task, os.path.join(train_dir, "checkpoints"), mesh=mesh, progress=progress)
    metas = [{"seed": int(seed), "final_loss": float(state.loss[r])}
             for r, seed in enumerate(seeds)]
    export_dir = export_dir or train_dir
    paths = export(export_dir, "unet", seeds, state.params, state.batch_stats, metas,
                   width=config.width, num_classes=1)
    out = {int(seed): {"path": p, **m} for seed, p, m in zip(seeds, paths, metas)}
    write_index(export_dir, "unet", out)
    return out


def predict_fn(model, scaling: str = "symmetric"):
    """``f(variables, images uint8 [B, H, W, 1]) -> lesion probability [B, H, W]`` (jitted)."""
    return jax.jit(lambda v, im: jax.nn.sigmoid(model.apply(v, sd.to_model_input(im, scaling))))
