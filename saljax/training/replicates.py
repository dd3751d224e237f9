"""Replicate seeds trained together: one jitted step for all of them (``vmap``, their states
stacked on a leading axis) or the same jitted step once per replicate (a loop, faster on the
CPU, their states kept apart as :class:`Replicas`); batches stacked on a leading axis."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from saljax import data as sd

MODES = ("auto", "vmap", "loop")     # config.replicates: how replicate seeds share a step


def replicate_mode(config) -> str:
    """How replicate seeds share a step. XLA's CPU backend runs ``vmap``-ed convolutions as
    grouped convolutions several times slower than separate ones, so ``"auto"`` loops there."""
    mode = config.replicates
    if mode == "auto":
        return "loop" if jax.default_backend() == "cpu" else "vmap"
    if mode not in MODES[1:]:
        raise ValueError(f"replicates must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return mode


@jax.jit
def stack_trees(*trees):
    """Trees of equal structure stacked leaf by leaf on a new leading axis, by one compiled
    call (converting leaf by leaf compiles a small program for every distinct leaf shape)."""
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


@jax.tree_util.register_pytree_with_keys_class
class Replicas:
    """Replicates kept apart (the ``"loop"`` mode), read like a stacked tree: ``replicas[r]`` is
    replicate r's tree, ``replicas.params`` the replicas of a field, ``len`` their count and
    ``np.asarray`` stacks array replicas. A pytree (orbax saves it as a sequence of trees)."""

    def __init__(self, trees):
        self.trees = tuple(trees)

    def __getitem__(self, r: int):
        return self.trees[r]

    def __len__(self) -> int:
        return len(self.trees)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return Replicas(getattr(t, name) for t in self.trees)

    def __array__(self, dtype=None, copy=None):
        return np.stack([np.asarray(t, dtype) for t in self.trees])

    def tree_flatten_with_keys(self):
        return [(jax.tree_util.SequenceKey(i), t) for i, t in enumerate(self.trees)], None

    @classmethod
    def tree_unflatten(cls, _, trees):
        return cls(trees)


def gather(trees, mode: str):
    """Replicate trees as training carries them: stacked on a leading axis (``"vmap"``) or kept
    apart as :class:`Replicas` (``"loop"``: nothing is stacked or sliced per step)."""
    return Replicas(trees) if mode == "loop" else stack_trees(*trees)


def _host(a, r: int | None = None):
    """``a`` (or its slice ``r``) as a host array; typed PRNG keys stay keys."""
    pick = (lambda x: x) if r is None else (lambda x: x[r])
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):   # typed keys: their data
        return jax.random.wrap_key_data(pick(np.asarray(jax.random.key_data(a))),
                                        impl=jax.random.key_impl(a))
    return pick(np.asarray(a))


def replicate(tree, r: int):
    """Replicate ``r`` of :class:`Replicas` or of a stacked tree, as host arrays (numpy;
    typed PRNG keys stay keys)."""
    if isinstance(tree, Replicas):
        return jax.tree.map(_host, tree[r])
    return jax.tree.map(lambda a: _host(a, r), tree)


def over_replicates(fn, mode: str, in_axes):
    """``fn`` applied to every replicate (the arguments whose ``in_axes`` is 0): one jitted
    ``vmap`` call on stacked trees, or the same jitted single-replicate ``fn`` once per
    replicate (``"loop"``) on :class:`Replicas` (or arrays with a leading replicate axis, e.g.
    a step's batches and keys), returning :class:`Replicas` (a tuple of them when ``fn``
    returns a tuple); the loop's function says so (``replicates = "loop"``), so that training
    carries its states apart."""
    if mode == "vmap":
        return jax.jit(jax.vmap(fn, in_axes=in_axes))
    single = jax.jit(fn)

    def part(a, r):
        return a[r] if isinstance(a, Replicas) else jax.tree.map(lambda x: x[r], a)

    def looped(*args):
        first = next(a for a, ax in zip(args, in_axes) if ax == 0)
        n = len(first) if isinstance(first, Replicas) else jax.tree.leaves(first)[0].shape[0]
        outs = [single(*[part(a, r) if ax == 0 else a for a, ax in zip(args, in_axes)])
                for r in range(n)]
        if isinstance(outs[0], tuple):
            return tuple(Replicas(o) for o in zip(*outs))
        return Replicas(outs)
    looped.replicates = "loop"
    return looped


def layout(step) -> str:
    """How ``step`` (of :func:`over_replicates`) wants replicate states: ``"loop"`` (apart) or
    ``"vmap"`` (stacked; also any other jitted step)."""
    return getattr(step, "replicates", "vmap")


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
