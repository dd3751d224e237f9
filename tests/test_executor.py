"""The study's executor and its layout rules: steps run once their inputs are done and get their
results; an error stops what has not started; no code under a study's folder bypasses the
Workdir, and no study code compares a baseline's or an architecture's name."""
import ast
import os
import threading
import time

import pytest

from saljax.models.registry import CLASSIFIERS, DETECTORS, SEGMENTERS
from saljax.study.executor import Step, execute, ignoring_inputs
from saljax.study.localizers import LOCALIZERS
from saljax.study.workdir import Workdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDY = os.path.join(ROOT, "saljax", "study")


def test_steps_run_after_their_inputs_with_their_results():
    order, lock = [], threading.Lock()

    def step(name, value):
        def run(inputs):
            with lock:
                order.append(name)
            return value + sum(inputs.values())
        return run

    results = execute([Step("c", step("c", 100), ("a", "b")), Step("a", step("a", 1)),
                       Step("b", step("b", 10), ("a",))])
    assert results == {"a": 1, "b": 11, "c": 112}
    assert order == ["a", "b", "c"]


def test_independent_steps_overlap():
    """Two steps that wait for each other's start can only finish if they run at once."""
    started = [threading.Event(), threading.Event()]

    def run(k):
        started[k].set()
        assert started[1 - k].wait(10), "the other step never started"
        return k

    assert execute([Step(f"s{k}", ignoring_inputs(lambda k=k: run(k)))
                    for k in range(2)]) == {"s0": 0, "s1": 1}


def test_an_error_stops_later_steps_and_is_raised_once_running_steps_end():
    ran, slow_done = [], threading.Event()

    def slow():
        time.sleep(0.3)
        slow_done.set()

    def fail():
        raise RuntimeError("boom")

    steps = [Step("slow", ignoring_inputs(slow)), Step("fail", ignoring_inputs(fail)),
             Step("later", ignoring_inputs(lambda: ran.append("later")), ("fail",))]
    with pytest.raises(RuntimeError, match="boom"):
        execute(steps)
    assert slow_done.is_set() and ran == []


@pytest.mark.parametrize("steps, message", [
    ([Step("a", ignoring_inputs(int), ("b",)), Step("b", ignoring_inputs(int), ("a",))],
     "wait on each other"),
    ([Step("a", ignoring_inputs(int), ("nope",))], "do not exist"),
    ([Step("a", ignoring_inputs(int)), Step("a", ignoring_inputs(int))], "share a name")])
def test_bad_graphs_are_refused(steps, message):
    with pytest.raises(ValueError, match=message):
        execute(steps)


def test_workdir_paths():
    w = Workdir("runs/x")
    assert w.unit("m", "trained", "gradient", 3) == os.path.join(
        "runs/x", "maps", "m", "trained", "gradient", "chunk003.npz")
    assert w.relative(os.path.join(os.path.abspath("runs/x"), "train", "a")) == os.path.join(
        "train", "a")
    assert os.path.isabs(w.relative("/elsewhere/data"))
    assert w.resolve(w.relative(w.model("f", "m"))) == w.model("f", "m")
    assert Workdir.of(w) is w and Workdir.of("runs/x") == w


def _sources(top):
    for folder, _, names in os.walk(top):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    yield path, ast.parse(f.read(), path)


def test_only_the_workdir_joins_paths_under_a_study_folder():
    """No ``os.path.join(workdir, ...)`` (or ``where``/``root``) outside ``workdir.py``."""
    offenders = []
    for path, tree in _sources(os.path.join(ROOT, "saljax")):
        if path.endswith(os.path.join("study", "workdir.py")):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and ast.unparse(node.func) == "os.path.join"
                    and node.args and ast.unparse(node.args[0]) in (
                        "workdir", "args.workdir", "self.workdir", "store.workdir")):
                if "bench" not in path:      # a benchmark's folder is not a study's
                    offenders.append(f"{path}:{node.lineno}")
    assert not offenders, offenders


def test_no_study_code_compares_a_baseline_or_an_architecture_name():
    names = set(CLASSIFIERS) | set(SEGMENTERS) | set(DETECTORS) | set(LOCALIZERS)
    offenders = []
    for path, tree in _sources(STUDY):
        if os.sep + "localizers" + os.sep in path:      # the records name themselves
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for part in [node.left, *node.comparators]:
                    if isinstance(part, ast.Constant) and part.value in names:
                        offenders.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, offenders
