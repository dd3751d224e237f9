"""Data parallelism with ``jax.sharding``: one mesh axis ``"data"`` over every device.

Arrays of examples are split along their batch axis over the mesh; parameters are replicated.
``jit`` then runs the same program on every device (GSPMD), whether the devices are the 8 cores
of a TPU host, the GPUs of a node, or every device of a multi-host pod after
:func:`initialize_distributed`.
"""
from __future__ import annotations

import os
import threading

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "data"


def initialize_distributed() -> None:
    """``jax.distributed.initialize()`` when launched as one of several processes (SLURM, TPU
    pods, or ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``); a no-op
    for a single process."""
    if jax.distributed.is_initialized():
        return
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        jax.distributed.initialize(
            coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]))
    elif os.environ.get("SLURM_NTASKS", "1") != "1" or os.environ.get("TPU_WORKER_HOSTNAMES"):
        jax.distributed.initialize()


def _coordination_client():
    """The distributed runtime's coordination client (its key-value store).

    The one private JAX import of saljax, confined here: jax exposes no public key-value store,
    and the alternatives do not fit a study. A device barrier
    (``multihost_utils.sync_global_devices``) times out within minutes on GPUs while the other
    processes train or compute results for hours, and polling files needs a shared file system's
    visibility guarantees. Every use goes through :func:`announce` and :func:`await_announcement`.
    """
    from jax._src import distributed
    return distributed.global_state.client


def announce(key: str) -> None:
    """Tell every process of the run that ``key`` happened (e.g. "models published")."""
    _coordination_client().key_value_set(key, "done")


def await_announcement(key: str, what: str, timeout_s: float = 7 * 24 * 3600) -> None:
    """Block until some process has :func:`announce`\ d ``key``; ``what`` names it in the
    timeout's error."""
    try:
        _coordination_client().blocking_key_value_get(key, int(min(timeout_s * 1000,
                                                                   2 ** 31 - 1)))
    except Exception as e:   # the runtime's own error types are private too
        raise TimeoutError(f"waited {timeout_s:.0f} s for {what}: {e}") from e


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (AXIS,))


def batch_sharding(mesh: Mesh, leading: int = 0) -> NamedSharding:
    """Split axis ``leading`` (the batch axis, after ``leading`` unsplit axes) over the mesh."""
    return NamedSharding(mesh, P(*([None] * leading), AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def is_writer() -> bool:
    """Whether this process writes shared outputs (process 0)."""
    return jax.process_index() == 0


def is_process_local(mesh: Mesh) -> bool:
    """Whether every device of ``mesh`` belongs to this process (e.g. a study's process 0
    training on its local devices while the other processes wait)."""
    return all(d.process_index == jax.process_index() for d in mesh.devices.flat)


# orbax numbers each save with one process-wide "current operation id" (orbax 0.12:
# synchronization.OperationIdGenerator), so two saves at once from different threads (a study
# trains and maps its families concurrently) can wait forever on each other's signal key. Every
# orbax save, restore and manager of saljax runs under this lock, a save finished inside it.
orbax_lock = threading.RLock()


def orbax_processes(local: bool = True):
    """orbax's multiprocessing options: this process alone (``local``: files one process writes
    or reads by itself, training on a process-local mesh) or every process (the default)."""
    import orbax.checkpoint as ocp
    if not local:
        return ocp.options.MultiprocessingOptions()
    me = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})


def shard(fn, mesh: Mesh, in_specs, out_specs):
    """``fn`` under ``shard_map`` on ``mesh`` (jitted), without replication checking (its outputs
    are split, never replicated); works with both the new and the older jax spelling."""
    try:
        from jax import shard_map
    except ImportError:  # jax < 0.7
        from jax.experimental.shard_map import shard_map
    specs = dict(mesh=mesh, in_specs=in_specs, out_specs=out_specs)
    try:
        mapped = shard_map(fn, check_vma=False, **specs)
    except TypeError:  # older jax
        mapped = shard_map(fn, check_rep=False, **specs)
    return jax.jit(mapped)


def per_device(fn, mesh: Mesh):
    """``fn`` (batch-wise: example i of every output depends only on example i of every input)
    run by each device on its slice of the batch, with no communication: jitted ``shard_map``
    with every input and output split along axis 0. The batch must divide by the mesh size."""
    return shard(fn, mesh, P(AXIS), P(AXIS))
