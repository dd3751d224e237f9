"""Training the segmentation baseline: replicate U-Nets trained together on the lesion masks.

The study scores a segmentation model like a saliency method (localization utility) and compares
replicate segmenters like replicate classifiers (repeatability): the yardstick a saliency map
would have to meet to replace one. ``train_segmenters(config, splits, workdir)`` trains one U-Net
per seed on every training image (negatives teach the empty mask) with a per-pixel logistic loss
and exports each to ``workdir/models/unet_seed<seed>``. Short by design (minutes on a CPU at the
synthetic size): a killed run restarts it from the beginning.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm.auto import tqdm

import saljax.models as sm
from saljax import data as sd
from saljax import files
from saljax.models import checkpoint as model_checkpoint
from saljax.train import over_replicates, replicate, replicate_mode, stack_trees


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.width = 0.5            # 8 channels at the top level
    c.seeds = (0, 1)
    c.learning_rate = 3e-3
    c.batch_size = 16
    c.epochs = 2
    c.scaling = "symmetric"
    c.replicates = "auto"    # as saljax.train: vmap on accelerators, a loop on the CPU
    return c


def train_segmenters(config, splits, workdir: str, *, progress: bool = True) -> dict:
    """Train ``len(config.seeds)`` U-Nets; returns ``{seed: path}``."""
    model = sm.create("unet", num_classes=1, width=config.width)
    optimizer = optax.adam(config.learning_rate)
    train_src = splits["train"]
    steps_per_epoch = len(train_src) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"segmenter batch size {config.batch_size} exceeds the "
                         f"{len(train_src)} training examples")
    datasets = [sd.training_batches(train_src, config.batch_size, seed=1000 + s,
                                    keys=("image", "mask")) for s in config.seeds]
    variables = [sm.init(model, jax.random.key(s)) for s in config.seeds]
    params = stack_trees(*[v["params"] for v in variables])
    stats = stack_trees(*[v["batch_stats"] for v in variables])
    opt_state = jax.jit(jax.vmap(optimizer.init))(params)

    def one(params, stats, opt_state, images, masks):
        x = sd.to_model_input(images, config.scaling)
        y = masks.astype(jnp.float32)

        def loss_fn(p):
            logits, upd = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                      mutable=["batch_stats"])
            return optax.sigmoid_binary_cross_entropy(logits, y).mean(), upd["batch_stats"]

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, loss

    step = over_replicates(one, replicate_mode(config), (0, 0, 0, 0, 0))
    total = steps_per_epoch * config.epochs
    bar = tqdm(range(total), desc=f"train unet x{len(config.seeds)}", disable=not progress,
               mininterval=5.0)
    for k in bar:
        batches = [ds[k] for ds in datasets]
        images = jnp.asarray(np.stack([b["image"] for b in batches]))
        masks = jnp.asarray(np.stack([b["mask"] for b in batches]))
        params, stats, opt_state, loss = step(params, stats, opt_state, images, masks)
    bar.close()
    out = {}
    for r, seed in enumerate(config.seeds):
        path = os.path.join(workdir, "models", f"unet_seed{seed}")
        v = {"params": replicate(params, r), "batch_stats": replicate(stats, r)}
        model_checkpoint.save(path, v, name="unet", width=config.width, num_classes=1,
                              metadata={"seed": int(seed), "final_loss": float(loss[r])})
        out[int(seed)] = path
    files.write_json(os.path.join(workdir, "models", "unet.json"), out)
    return out


def predict_fn(model, scaling: str = "symmetric"):
    """``f(variables, images uint8 [B, H, W, 1]) -> lesion probability [B, H, W]`` (jitted)."""
    return jax.jit(lambda v, im: jax.nn.sigmoid(model.apply(v, sd.to_model_input(im, scaling))))
