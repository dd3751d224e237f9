"""Replicate seeds trained together: one jitted step for all of them (``vmap``) or one per
replicate (a loop, faster on the CPU), with their batches stacked on a leading axis."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from saljax import data as sd


def replicate_mode(config) -> str:
    """How replicate seeds share a step. XLA's CPU backend runs ``vmap``-ed convolutions as
    grouped convolutions several times slower than separate ones, so ``"auto"`` loops there."""
    mode = config.replicates
    if mode == "auto":
        return "loop" if jax.default_backend() == "cpu" else "vmap"
    if mode not in ("vmap", "loop"):
        raise ValueError(f"replicates must be 'auto', 'vmap' or 'loop', got {mode!r}")
    return mode


@jax.jit
def stack_trees(*trees):
    """Trees of equal structure stacked leaf by leaf on a new leading axis, by one compiled
    call (converting leaf by leaf compiles a small program for every distinct leaf shape)."""
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _host_slice(a, r: int):
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):   # typed keys: slice their data
        return jax.random.wrap_key_data(np.asarray(jax.random.key_data(a))[r],
                                        impl=jax.random.key_impl(a))
    return np.asarray(a)[r]


def replicate(tree, r: int):
    """Replicate ``r`` of a stacked tree, sliced on the host (numpy arrays; typed PRNG keys stay
    keys)."""
    return jax.tree.map(lambda a: _host_slice(a, r), tree)


@functools.partial(jax.jit, static_argnames="n")
def _unstack_compiled(trees, n: int):
    """The ``n`` replicates of stacked ``trees``, a tuple of ``n`` trees, in one program: slicing
    each of a model state's thousands of leaves on the host cost more than the step itself."""
    return tuple(jax.tree.map(lambda a: a[r], trees) for r in range(n))


def over_replicates(fn, mode: str, in_axes):
    """``fn`` applied to every replicate (leading axis of the arguments whose ``in_axes`` is 0):
    one jitted ``vmap`` call, or the same jitted single-replicate ``fn`` once per replicate
    (the replicates sliced out and stacked back by one compiled call each)."""
    if mode == "vmap":
        return jax.jit(jax.vmap(fn, in_axes=in_axes))
    single = jax.jit(fn)

    def looped(*args):
        n = next(jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, in_axes) if ax == 0)
        parts = _unstack_compiled(tuple(a for a, ax in zip(args, in_axes) if ax == 0), n)
        outs = []
        for part in parts:
            it = iter(part)
            outs.append(single(*[next(it) if ax == 0 else a for a, ax in zip(args, in_axes)]))
        return stack_trees(*outs)
    return looped


class ReplicateBatches:
    """Batch ``step`` of every replicate, ``{key: [R, B, ...]}``: replicate r reads
    ``source`` shuffled by ``seeds[r]`` (a new order every epoch; step k's batch is always the
    same, for exact resume). ``labels`` replace the source's (label randomization). With
    ``shard`` each of several processes reads its own slice (training over all processes)."""

    def __init__(self, source, batch_size: int, seeds, keys=("image", "label"), labels=None,
                 shard: bool = True):
        if len(source) // batch_size < 1:
            raise ValueError(f"batch size {batch_size} exceeds the {len(source)} training "
                             "examples")
        src = source if labels is None else Relabelled(source, labels)
        self.keys = tuple(keys)
        self.datasets = [sd.training_batches(src, batch_size, seed=s, keys=keys, shard=shard)
                         for s in seeds]
        self.steps_per_epoch = len(source) // batch_size

    def __getitem__(self, step):
        batches = [ds[step] for ds in self.datasets]
        return {k: np.stack([b[k] for b in batches]) for k in self.keys}


class Relabelled:
    """A source whose labels are replaced (label randomization), indexable like the source."""

    def __init__(self, source, labels):
        self.source, self.labels_ = source, labels

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        example = dict(self.source[i])
        example["label"] = self.labels_[i]
        return example
