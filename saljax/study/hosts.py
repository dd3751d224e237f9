"""The processes of one study (``jax.distributed``): process 0 builds the data, trains the
models and writes the results; every process computes a round-robin share of the map units on
its local devices. Waiting for another process means waiting for its files on the shared
workdir."""
from __future__ import annotations

import dataclasses
import os
import time

import jax

from saljax.parallel import initialize_distributed
from saljax.study.runner import concurrently


@dataclasses.dataclass(frozen=True)
class Hosts:
    rank: int
    size: int

    @classmethod
    def join(cls) -> "Hosts":
        """This process among all of the run's (a single process unless launched as several)."""
        initialize_distributed()
        return cls(jax.process_index(), jax.process_count())

    @property
    def writer(self) -> bool:
        return self.rank == 0

    @property
    def share(self) -> tuple[int, int]:
        """(this process's index, process count): it takes every ``size``-th unit."""
        return self.rank, self.size

    def wait_for(self, paths, what: str, timeout_s: float = 7 * 24 * 3600) -> None:
        """Wait until every file of ``paths`` exists (written by another process)."""
        start = time.time()
        while not all(os.path.exists(p) for p in paths):
            if time.time() - start > timeout_s:
                raise TimeoutError(f"waited {timeout_s:.0f} s for process 0's {what}")
            time.sleep(5)

    def leave_together(self, key: str, timeout_s: float = 7 * 24 * 3600) -> None:
        """Process 0 says it is done; the others wait for that (the coordination service's
        key-value store) before they return: jax.distributed's shutdown waits only minutes for
        processes that are still working, and process 0 computes the results last."""
        if self.size == 1:
            return
        from jax._src import distributed
        client = distributed.global_state.client
        if self.writer:
            client.key_value_set(key, "done")
        else:
            client.blocking_key_value_get(key, int(min(timeout_s * 1000, 2 ** 31 - 1)))

    def train_then_map(self, training: dict, mapping: dict, beside: list, publish) -> None:
        """Each architecture's training, then its map units.

        One process runs one pipeline per architecture (``training[arch]`` then
        ``mapping[arch]``) concurrently with ``beside`` (the U-Nets' training): on a CPU one
        stage's compiling is another's compute. With several processes, process 0 trains every
        model and calls ``publish`` (which the others wait for), then all map their share.
        """
        if self.size == 1:
            concurrently([lambda a=a: (training[a](), mapping[a]()) for a in mapping] + beside)
            publish()
            return
        if self.writer:
            concurrently(list(training.values()) + beside)
            publish()
        concurrently(list(mapping.values()))
