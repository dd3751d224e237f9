"""The processes of one study (``jax.distributed``): process 0 builds the data, trains the
models and writes the results; every process computes a round-robin share of the map units on
its local devices. Processes wait for each other by announcements in the distributed runtime's
key-value store (:func:`saljax.parallel.announce`), never by watching files."""
from __future__ import annotations

import dataclasses

import jax

from saljax.parallel import announce, await_announcement, initialize_distributed


@dataclasses.dataclass(frozen=True)
class Hosts:
    rank: int
    size: int
    run_id: str = ""     # makes the announcements of one study's run its own

    @classmethod
    def join(cls, run_id: str = "") -> "Hosts":
        """This process among all of the run's (a single process unless launched as several)."""
        initialize_distributed()
        return cls(jax.process_index(), jax.process_count(), run_id)

    @property
    def writer(self) -> bool:
        return self.rank == 0

    @property
    def share(self) -> tuple[int, int]:
        """(this process's index, process count): it takes every ``size``-th unit."""
        return self.rank, self.size

    def _key(self, event: str) -> str:
        return f"saljax study {self.run_id}: {event}"

    def say(self, event: str) -> None:
        """Tell the other processes that ``event`` happened here (a no-op alone)."""
        if self.size > 1:
            announce(self._key(event))

    def hear(self, event: str, what: str) -> None:
        """Wait until some process has said ``event`` (at once alone)."""
        if self.size > 1:
            await_announcement(self._key(event), what)

    def hear_all(self, event: str, what: str) -> None:
        """Wait until every other process has said ``event`` (each under its own rank)."""
        for r in range(self.size):
            if r != self.rank:
                self.hear(f"{event} {r}", f"{what} of process {r}")
