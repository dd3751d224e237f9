"""Training classifiers: replicate seeds under ``vmap``, optax, orbax checkpoints, exact resume.

``train(config, workdir)`` trains ``len(config.seeds)`` replicates of one architecture together:
one jitted ``vmap``-ed step updates every replicate (each with its own initialisation, data order
and augmentation), data-parallel over the devices of ``mesh``; on the CPU, where batched
convolutions are slow, the same jitted step runs once per replicate (``config.replicates``). Batch k of replicate r is always the
same batch and every random draw is ``fold_in(key, step)``, so a run killed at any point and
resumed from its last orbax checkpoint ends with the parameters of an uninterrupted run.

Each epoch ends with the validation AUC of every replicate; each replicate's best variables are
kept and finally exported with :func:`saljax.models.checkpoint.save` to
``workdir/models/<name>_seed<seed>``.
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
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

import saljax.models as sm
from saljax import data as sd
from saljax import files
from saljax.metrics import roc_auc
from saljax.models import checkpoint as model_checkpoint
from saljax.parallel import batch_sharding, data_mesh, replicated


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
    c.init_from = ""               # a Keras weights file (e.g. ImageNet notop .h5)
    c.checkpoint_every = 50        # steps between orbax checkpoints
    c.eval_batch_size = 64
    c.scaling = "symmetric"        # input scaling: "symmetric" ([-1, 1]) or "imagenet"
    c.max_steps = -1               # stop early (for tests): -1 runs every epoch
    c.replicates = "auto"          # "vmap": one batched step; "loop": one step per replicate;
                                   # "auto": vmap on accelerators, loop on the CPU
    return c


def replicate_mode(config) -> str:
    """How replicate seeds share a step. XLA's CPU backend runs ``vmap``-ed convolutions as
    grouped convolutions several times slower than separate ones, so ``"auto"`` loops there."""
    mode = config.get("replicates", "auto")
    if mode == "auto":
        return "loop" if jax.default_backend() == "cpu" else "vmap"
    if mode not in ("vmap", "loop"):
        raise ValueError(f"replicates must be 'auto', 'vmap' or 'loop', got {mode!r}")
    return mode


def _host_side() -> bool:
    """Whether arrays live in host memory on one device (the usual CPU backend), where numpy
    reads and stacks them in place; with several devices, arrays keep their shardings."""
    return jax.default_backend() == "cpu" and jax.local_device_count() == 1


@jax.jit
def _stack_compiled(*trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def stack_trees(*trees):
    """Trees of equal structure stacked leaf by leaf on a new leading axis. On one CPU device
    numpy stacks them (nothing to compile); elsewhere one jitted call does (op by op, every
    distinct leaf shape would compile its own small program)."""
    if _host_side():
        return jax.tree.map(lambda *a: jnp.asarray(np.stack([np.asarray(x) for x in a])),
                            *trees)
    return _stack_compiled(*trees)


def _host_slice(a, r: int):
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):   # typed keys: slice their data
        return jax.random.wrap_key_data(np.asarray(jax.random.key_data(a))[r],
                                        impl=jax.random.key_impl(a))
    return np.asarray(a)[r]


def replicate(tree, r: int):
    """Replicate ``r`` of a stacked tree, sliced on the host (numpy arrays; typed PRNG keys stay
    keys)."""
    return jax.tree.map(lambda a: _host_slice(a, r), tree)


def over_replicates(fn, mode: str, in_axes):
    """``fn`` applied to every replicate (leading axis of the arguments whose ``in_axes`` is 0):
    one jitted ``vmap`` call, or the same jitted single-replicate ``fn`` once per replicate."""
    if mode == "vmap":
        return jax.jit(jax.vmap(fn, in_axes=in_axes))
    single = jax.jit(fn)
    pick = replicate if _host_side() else jax.jit(
        lambda tree, r: jax.tree.map(lambda a: a[r], tree))
    stack = stack_trees

    def looped(*args):
        n = next(jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, in_axes) if ax == 0)
        outs = [single(*[pick(a, r) if ax == 0 else a for a, ax in zip(args, in_axes)])
                for r in range(n)]
        return stack(*outs)
    return looped


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class State:
    """Everything a replicate's training needs to continue. Leading axis: replicates."""
    params: Any
    batch_stats: Any
    opt_state: Any
    best_params: Any
    best_batch_stats: Any
    best_auc: jnp.ndarray
    best_epoch: jnp.ndarray


def _model(config):
    dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
    return sm.create(config.model, num_classes=config.num_classes, width=config.width,
                     dtype=dtype).clone(bn_momentum=config.bn_momentum)


def _optimizer(config):
    if config.optimizer == "adam":
        return optax.adam(config.learning_rate)
    if config.optimizer == "sgd":
        return optax.sgd(config.learning_rate, momentum=0.9)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {config.optimizer!r}")


def init_state(config, model, seed: int) -> State:
    """A replicate's initial state: fresh variables (or Keras weights) and optimizer state."""
    key = jax.random.fold_in(jax.random.key(seed), 0)
    if config.init_from:
        variables = sm.from_keras(config.model, config.init_from,
                                  num_classes=config.num_classes, key=key)
    else:
        variables = sm.init(model, key)
    params, stats = variables["params"], variables["batch_stats"]
    return State(params, stats, jax.jit(_optimizer(config).init)(params), params, stats,
                 jnp.float32(-1.0), jnp.int32(-1))


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


def make_train_step(config, model):
    optimizer = _optimizer(config)

    def one(state: State, images, labels, class_weights, key):
        x = sd.to_model_input(images, config.scaling)
        if config.augment:
            x = augment(x, key)

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

    # replicates: state, batch and key vary; class weights are shared
    return over_replicates(one, replicate_mode(config), (0, 0, 0, None, 0))


def make_predict(config, model):
    def one(params, stats, images):
        x = sd.to_model_input(images, config.scaling)
        return jax.nn.softmax(model.apply({"params": params, "batch_stats": stats}, x))[..., 1]
    return over_replicates(one, replicate_mode(config), (0, 0, None))


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
    labels = sd.labels(source)
    return np.random.default_rng(seed).permutation(labels)


class _ReplicateBatches:
    """Batch ``step`` of every replicate: [R, B, ...] arrays."""

    def __init__(self, config, source, keys=("image", "label")):
        self.keys = keys
        self.datasets = []
        override = (_randomized_labels(source, 10_000 + config.seeds[0])
                    if config.label_randomization else None)
        for seed in config.seeds:
            src = source
            if override is not None:
                src = _Relabelled(source, override)
            self.datasets.append(sd.training_batches(src, config.batch_size, seed=seed, keys=keys))
        self.steps_per_epoch = len(source) // config.batch_size

    def __getitem__(self, step):
        batches = [ds[step] for ds in self.datasets]
        return {k: np.stack([b[k] for b in batches]) for k in self.keys}


class _Relabelled:
    """A source whose labels are replaced (label randomization), indexable like the source."""

    def __init__(self, source, labels):
        self.source, self.labels_ = source, labels

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        example = dict(self.source[i])
        example["label"] = self.labels_[i]
        return example


def train(config, workdir: str, *, mesh=None, splits=None, progress: bool = True) -> dict:
    """Train every replicate of ``config``; returns ``{seed: {"path", "val_auc", "epoch"}}``.

    ``splits`` maps split names to sources (default: the dataset at ``config.data_path``).
    Resumes from ``workdir/checkpoints`` when a previous run left one.
    """
    model = _model(config)
    splits = splits or sd.open_splits(config.data_path)
    train_src, val_src = splits["train"], splits["val"]
    batches = _ReplicateBatches(config, train_src)
    if batches.steps_per_epoch < 1:
        raise ValueError(f"batch size {config.batch_size} exceeds the {len(train_src)} training "
                         "examples")
    total = batches.steps_per_epoch * config.epochs
    if config.max_steps >= 0:
        total = min(total, config.max_steps)
    mesh = mesh or data_mesh()
    if config.class_weighting:
        counts = np.bincount(sd.labels(train_src), minlength=config.num_classes)
        class_weights = jnp.asarray(len(train_src) / (config.num_classes * np.maximum(counts, 1)),
                                    jnp.float32)
    else:
        class_weights = jnp.ones(config.num_classes, jnp.float32)
    step_fn = make_train_step(config, model)
    predict = make_predict(config, model)
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in config.seeds])

    manager = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))
    state = stack_trees(*[init_state(config, model, s) for s in config.seeds])
    start = 0
    if manager.latest_step() is not None:
        start = manager.latest_step()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        state = manager.restore(start, args=ocp.args.StandardRestore(abstract))
    state = jax.device_put(state, replicated(mesh))
    data_sharding = batch_sharding(mesh, leading=1)

    bar = tqdm(total=total, initial=start, desc=f"train {config.model} x{len(config.seeds)}",
               disable=not progress, mininterval=5.0)
    for step in range(start, total):
        batch = batches[step]
        step_keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.wrap_key_data(k), step))(keys)
        images = jax.device_put(batch["image"], data_sharding)
        labels = jax.device_put(batch["label"].astype(np.int32), data_sharding)
        state, loss = step_fn(state, images, labels, class_weights, step_keys)
        bar.update(1)
        done = step + 1
        if done % batches.steps_per_epoch == 0 or done == total:
            epoch = -(-done // batches.steps_per_epoch)  # epochs started so far
            aucs = evaluate_auc(predict, state.params, state.batch_stats, val_src,
                                config.eval_batch_size)
            state = _keep_best(state, jnp.asarray(aucs, jnp.float32), epoch)
            bar.set_postfix(loss=float(jnp.mean(loss)), val_auc=np.round(aucs, 3).tolist())
        if done % config.checkpoint_every == 0 or done == total:
            manager.save(done, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()
    bar.close()
    return export_best(config, state, workdir)


@jax.jit
def _keep_best(state: State, aucs, epoch) -> State:
    better = aucs > state.best_auc

    def pick(new, old):
        return jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

    return dataclasses.replace(
        state, best_params=jax.tree.map(pick, state.params, state.best_params),
        best_batch_stats=jax.tree.map(pick, state.batch_stats, state.best_batch_stats),
        best_auc=jnp.where(better, aucs, state.best_auc),
        best_epoch=jnp.where(better, epoch, state.best_epoch))


def export_best(config, state: State, workdir: str) -> dict:
    """Save each replicate's best variables as a model directory; returns their summary."""
    out = {}
    for r, seed in enumerate(config.seeds):
        path = os.path.join(workdir, "models", f"{config.model}_seed{seed}")
        variables = {"params": replicate(state.best_params, r),
                     "batch_stats": replicate(state.best_batch_stats, r)}
        meta = {"seed": int(seed), "val_auc": float(state.best_auc[r]),
                "epoch": int(state.best_epoch[r]),
                "label_randomization": bool(config.label_randomization)}
        model_checkpoint.save(path, variables, name=config.model, width=config.width,
                              num_classes=config.num_classes, metadata=meta)
        out[int(seed)] = {"path": path, **meta}
    files.write_json(os.path.join(workdir, "models", f"{config.model}.json"), out)
    return out
