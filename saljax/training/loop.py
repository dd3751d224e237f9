"""The one training loop: replicate seeds stepped together, orbax checkpoints, exact resume.

Classifiers and the localization baselines (U-Nets, RetinaNets) all train through :func:`fit`;
each trainer is ``train(config, train_dir, *, splits, mesh, progress, export_dir) -> {seed:
{"path", ...}}`` with its checkpoints in ``train_dir/checkpoints`` and its models in
``<export_dir>/models`` (default ``train_dir``). Replicate r's batch at
step k is always the same batch and its random draws are ``fold_in(key(seed_r), k)``, so a run
killed at any point and resumed from its last orbax checkpoint ends with the state of an
uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

from saljax import files
from saljax.parallel import (batch_sharding, data_mesh, is_process_local, orbax_lock,
                             orbax_processes, replicated)
from saljax.models import checkpoint as model_checkpoint
from saljax.training.replicates import (ReplicateBatches, Replicas, gather, layout,
                                        over_replicates, replicate)


class CheckpointLayoutError(ValueError):
    """A training checkpoint that does not hold the state this training carries."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """What a replicate's training carries; tasks extend it. Training carries the replicates'
    states stacked (leading axis: replicates) or as :class:`Replicas` (the loop mode)."""
    params: Any
    batch_stats: Any
    opt_state: Any


def keep_best(state, scores, epoch, field: str):
    """``state`` whose ``best_params``, ``best_batch_stats``, ``best_epoch`` and ``field`` (the
    best validation score so far) move to this epoch's where ``scores`` [R] beat ``field``
    (``state`` stacked over replicates, or :class:`~saljax.training.replicates.Replicas`)."""
    if isinstance(state, Replicas):
        return Replicas(_keep_best(s, scores[r], epoch, field) for r, s in enumerate(state.trees))
    return _keep_best(state, scores, epoch, field)


@functools.partial(jax.jit, static_argnames=("field",))
def _keep_best(state, scores, epoch, field: str):
    better = scores > getattr(state, field)        # [R] (stacked) or [] (one replicate)

    def pick(new, old):
        return jnp.where(better.reshape(better.shape + (1,) * (new.ndim - better.ndim)), new,
                         old)

    return dataclasses.replace(
        state, best_params=jax.tree.map(pick, state.params, state.best_params),
        best_batch_stats=jax.tree.map(pick, state.batch_stats, state.best_batch_stats),
        best_epoch=jnp.where(better, epoch, state.best_epoch),
        **{field: jnp.where(better, scores, getattr(state, field))})


def export(train_dir: str, name: str, seeds, params, batch_stats, metas, *, width: float,
           num_classes: int) -> list[str]:
    """Each replicate's variables (``params`` and ``batch_stats`` stacked over replicates) as a
    model directory ``train_dir/models/<name>_seed<seed>`` with its ``metas[r]``; their paths."""
    paths = []
    for r, (seed, meta) in enumerate(zip(seeds, metas)):
        path = os.path.join(train_dir, "models", f"{name}_seed{seed}")
        variables = {"params": replicate(params, r), "batch_stats": replicate(batch_stats, r)}
        model_checkpoint.save(path, variables, name=name, width=width, num_classes=num_classes,
                              metadata=meta)
        paths.append(path)
    return paths


def write_index(train_dir: str, name: str, out: dict) -> None:
    """``train_dir/models/<name>.json``: each replicate's entry (``out[seed]``, a dict with
    ``"path"``, what every trainer returns) with the path relative to ``train_dir``, so that a
    copied or moved folder still describes its own models."""
    index = {seed: {**e, "path": os.path.relpath(e["path"], train_dir)} for seed, e in out.items()}
    files.write_json(os.path.join(train_dir, "models", f"{name}.json"), index)


def every_replicate(step: Callable, mode: str) -> Callable:
    """A one-replicate ``step(state, batch, key, shared) -> (state, loss)`` applied to every
    replicate (``mode`` "vmap" or "loop", :func:`saljax.training.replicates.replicate_mode`)."""
    return over_replicates(step, mode, (0, 0, 0, None))


@dataclasses.dataclass
class Task:
    """One model family's training, for :func:`fit`.

    ``init(seed)`` is a replicate's initial state (a pytree); ``step(state, batch, keys,
    shared) -> (state, loss)`` updates every replicate (:func:`every_replicate` of a one-replicate
    step; its mode says how the states are carried: stacked for ``"vmap"``,
    :class:`Replicas` for ``"loop"``, see :func:`~saljax.training.replicates.layout`),
    ``batch`` a dict of [R, ...] arrays,
    ``shared`` the same for every replicate (e.g. class weights);
    ``epoch_end(state, epoch)``, if given, runs after every epoch on the replicates' state and
    returns ``(state, progress-bar fields)`` (validation, best-keeping).
    """
    name: str
    seeds: tuple
    init: Callable[[int], Any]
    step: Callable
    batches: ReplicateBatches
    epochs: int
    shared: Any = None
    epoch_end: Callable | None = None
    checkpoint_every: int = 50
    max_steps: int = -1                 # stop early (for tests): -1 runs every epoch


def _checkpoints(checkpoint_dir: str, mesh):
    """orbax's manager for ``checkpoint_dir``, what it saves of a state and what it restores
    into: the state's arrays, or, where this process trains alone among several (a mesh of its
    own devices), host copies that orbax writes without the others."""
    checkpoint_dir = os.path.abspath(checkpoint_dir)
    os.makedirs(checkpoint_dir, exist_ok=True)   # orbax creates none for a subset of processes
    local = is_process_local(mesh)
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=False,
                                           cleanup_tmp_directories=True,   # after a kill
                                           multiprocessing_options=orbax_processes(local))
    with orbax_lock:
        manager = ocp.CheckpointManager(checkpoint_dir, options=options)
    if local and jax.process_count() > 1:
        host = lambda state: jax.tree.map(np.asarray, state)
        return manager, host, host
    return (manager, lambda state: state,
            lambda state: jax.tree.map(ocp.utils.to_shape_dtype_struct, state))


def fit(task: Task, checkpoint_dir: str, *, mesh=None, progress: bool = True):
    """Train every replicate of ``task`` (resuming from ``checkpoint_dir``) on ``mesh`` (default:
    every device of every process; on a mesh of this process's devices this process trains
    alone, e.g. a study's process 0); returns the final state of every replicate (stacked, or
    :class:`Replicas` in the loop mode)."""
    per_epoch = task.batches.steps_per_epoch
    total = per_epoch * task.epochs
    if task.max_steps >= 0:
        total = min(total, task.max_steps)
    mesh = mesh or data_mesh()
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in task.seeds])
    manager, saved, target = _checkpoints(checkpoint_dir, mesh)
    mode = layout(task.step)
    state = gather([task.init(s) for s in task.seeds], mode)
    start = manager.latest_step() or 0
    if start:
        with orbax_lock:
            try:
                state = manager.restore(start, args=ocp.args.StandardRestore(target(state)))
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointLayoutError(
                    f"{checkpoint_dir}: the checkpoint of step {start} does not hold this "
                    f"training's state ({len(task.seeds)} replicates carried "
                    f"{'apart' if mode == 'loop' else 'stacked'}): it was written by "
                    "another saljax version, replicate mode (train.replicates) or model; delete "
                    f"{checkpoint_dir} to train from the start") from e
    state = jax.device_put(state, replicated(mesh))
    data_sharding = batch_sharding(mesh, leading=1)
    bar = tqdm(total=total, initial=start, desc=f"train {task.name} x{len(task.seeds)}",
               disable=not progress, mininterval=5.0)
    for step in range(start, total):
        batch = jax.device_put(task.batches[step], data_sharding)
        step_keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.wrap_key_data(k), step))(keys)
        state, loss = task.step(state, batch, step_keys, task.shared)
        bar.update(1)
        done = step + 1
        if task.epoch_end is not None and (done % per_epoch == 0 or done == total):
            state, fields = task.epoch_end(state, -(-done // per_epoch))  # epochs started
            bar.set_postfix(loss=float(np.mean(np.asarray(loss))), **fields)
        if done % task.checkpoint_every == 0 or done == total:
            with orbax_lock:
                manager.save(done, args=ocp.args.StandardSave(saved(state)))
                manager.wait_until_finished()
    with orbax_lock:
        manager.close()
    bar.close()
    return state
