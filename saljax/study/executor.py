"""The study's executor: runs the protocol's steps, each once the steps it declares as its
inputs have finished, on threads of its own.

A step is a name, a call and the names of the steps whose results it needs (``after``); the call
gets those results, ``{name: result}``. Nothing else about a step is known here. Steps whose
inputs are ready run concurrently: XLA compiles a program on one thread while a small model's
step rarely keeps every core busy, so on a CPU one step's compiling and idle time is another's
compute. Results do not depend on it: each step is deterministic on
its inputs. Resuming a killed study is each step's own business (its outputs are files written
atomically, :func:`saljax.study.runner.run_units`); waiting on other processes is
:class:`~saljax.study.hosts.Hosts`'.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[dict], object]
    after: tuple = ()


def ignoring_inputs(call: Callable[[], object]) -> Callable[[dict], object]:
    """A step's call that needs only its inputs to have finished, not their results."""
    return lambda inputs: call()


def execute(steps: Sequence[Step]) -> dict:
    """Run every step once all of its ``after`` steps have finished, with their results;
    returns ``{name: result}``. After an error no further step starts; the first error is
    re-raised once the running steps have ended."""
    steps = list(steps)
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"two steps share a name: {names}")
    unknown = {a for s in steps for a in s.after} - set(names)
    if unknown:
        raise ValueError(f"steps come after steps that do not exist: {sorted(unknown)}")
    results, running, waiting, error = {}, {}, list(steps), None
    with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
        while waiting or running:
            if error is None:
                for s in [s for s in waiting if all(a in results for a in s.after)]:
                    waiting.remove(s)
                    running[pool.submit(s.run, {a: results[a] for a in s.after})] = s.name
            if not running:
                if error is None:
                    raise ValueError(f"steps wait on each other: "
                                     f"{sorted(s.name for s in waiting)}")
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for f in done:
                name = running.pop(f)
                if f.exception() is not None:
                    error = error or f.exception()
                else:
                    results[name] = f.result()
    if error is not None:
        raise error
    return results
