"""Training: replicates under vmap, exact resume after a kill, label randomization."""
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import saljax.data as sd
from saljax.training import classifier as train
from saljax.training.replicates import Replicas, gather, stack_trees
from saljax.models import checkpoint
from train_worker import config

HERE = os.path.dirname(__file__)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return sd.build("synthetic_cxr", str(tmp_path_factory.mktemp("data")), size=75, seed=1,
                    counts=(("train", 48), ("val", 16), ("test", 8)))


def final_params(workdir):
    out = []
    for seed in (0, 1):
        _, v, spec = checkpoint.load(os.path.join(workdir, "models", f"inception_v3_seed{seed}"))
        out.append((jax.tree.leaves(v), spec["metadata"]))
    return out


@pytest.mark.slow
def test_a_killed_training_resumes_to_the_uninterrupted_result(tiny_data, tmp_path):
    """SIGKILL right after the first checkpoint, then resume: same parameters, same metadata."""
    reference = str(tmp_path / "reference")
    train.train(config(tiny_data), reference, progress=False)

    killed = str(tmp_path / "killed")
    env = {**os.environ, "PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "train_worker.py"), tiny_data,
                             killed], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = os.path.join(killed, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        steps = [d for d in os.listdir(ckpt)] if os.path.isdir(ckpt) else []
        if any(d.isdigit() for d in steps):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(killed, "models")), "killed before the end"
    done_steps = sorted(int(d) for d in os.listdir(ckpt) if d.isdigit())
    assert done_steps and done_steps[-1] < 12  # 2 epochs of 6 steps

    train.train(config(tiny_data), killed, progress=False)   # resumes from the checkpoint
    for (ref, ref_meta), (res, res_meta) in zip(final_params(reference), final_params(killed)):
        assert ref_meta == res_meta
        for a, b in zip(ref, res):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_replicate_under_vmap_takes_the_step_it_would_take_alone(tiny_data):
    """One training step of two replicates together equals, for replicate 1, the step it takes
    alone: the same update to float32 rounding (1e-3 in norm; under vmap XLA runs the
    convolutions of both replicates as one grouped convolution, which rounds differently). SGD,
    because Adam turns a near-zero gradient's rounding into a full +-lr step."""
    c = config(tiny_data)
    c.optimizer, c.learning_rate = "sgd", 0.05
    c.replicates = "vmap"
    model = train._model(c)
    batch = train.replicate_batches(c, sd.open_splits(tiny_data)["train"])[0]
    both = stack_trees(*[train.init_state(c, model, s) for s in c.seeds])
    alone = jax.tree.map(lambda a: a[1:], both)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 0))(jnp.asarray(c.seeds))
    step = train.make_train_step(c, model)
    start = jax.tree.map(lambda a: np.asarray(a[1]), both.params)
    x, y = jnp.asarray(batch["image"]), jnp.asarray(batch["label"].astype(np.int32))
    new_both, _ = step(both, {"image": x, "label": y}, keys, jnp.ones(2))
    new_alone, _ = step(alone, {"image": x[1:], "label": y[1:]}, keys[1:], jnp.ones(2))

    def update(new, r):
        return np.concatenate([np.ravel(np.asarray(a[r]) - b) for a, b in
                               zip(jax.tree.leaves(new.params), jax.tree.leaves(start))])

    u_both, u_alone = update(new_both, 1), update(new_alone, 0)
    assert np.linalg.norm(u_alone) > 0
    assert np.linalg.norm(u_both - u_alone) <= 1e-3 * np.linalg.norm(u_alone)
    # and the two replicates are different models taking different steps
    assert not np.allclose(update(new_both, 0), u_both)
    # the CPU's loop over replicates runs the single-replicate step itself on replicates kept
    # apart (nothing stacked): bitwise the same
    c.replicates = "loop"
    apart = gather([train.init_state(c, model, s) for s in c.seeds], "loop")
    assert isinstance(apart, Replicas) and len(apart) == 2
    new_loop, loss = train.make_train_step(c, model)(apart, {"image": x, "label": y}, keys,
                                                     jnp.ones(2))
    new_alone_loop, _ = train.make_train_step(c, model)(
        Replicas([apart[1]]), {"image": x[1:], "label": y[1:]}, keys[1:], jnp.ones(2))
    assert isinstance(new_loop, Replicas) and np.asarray(loss).shape == (2,)

    def update_apart(new, r):
        return np.concatenate([np.ravel(np.asarray(a) - b) for a, b in
                               zip(jax.tree.leaves(new[r].params), jax.tree.leaves(start))])

    np.testing.assert_array_equal(update_apart(new_loop, 1), update_apart(new_alone_loop, 0))
    assert np.linalg.norm(update_apart(new_loop, 1) - u_alone) <= 1e-3 * np.linalg.norm(u_alone)


def test_label_randomization_trains_on_permuted_labels(tiny_data):
    """Adebayo et al.'s data randomization: every training image carries another image's label
    (the same labels, shuffled once), in every replicate and epoch."""
    source = sd.open_splits(tiny_data)["train"]
    c = config(tiny_data)
    c.label_randomization = True
    original = sd.labels(source)
    permuted = train._randomized_labels(source, 10_000 + c.seeds[0])
    assert sorted(permuted) == sorted(original) and not np.array_equal(permuted, original)
    label_of = {source[i]["id"]: int(permuted[i]) for i in range(len(source))}
    batches = train.replicate_batches(c, source, keys=("id", "label"))
    for step in range(2 * batches.steps_per_epoch):
        batch = batches[step]
        for r in range(len(c.seeds)):
            assert [label_of[i] for i in batch["id"][r]] == batch["label"][r].tolist()


def test_a_checkpoint_for_another_architecture_is_a_clear_error(tiny_data, tmp_path):
    train.train(config(tiny_data, max_steps=1), str(tmp_path), progress=False)
    path = str(tmp_path / "models" / "inception_v3_seed0")
    with pytest.raises(checkpoint.CheckpointMismatch, match="not the name 'densenet121'"):
        checkpoint.load(path, name="densenet121")
    spec = checkpoint.describe(path)
    spec["width"] = 0.25  # a description that lies about the arrays
    import json
    with open(os.path.join(path, "model.json"), "w") as f:
        json.dump(spec, f)
    with pytest.raises(checkpoint.CheckpointMismatch, match="do not fit inception_v3"):
        checkpoint.load(path)


def test_unet_training_resumes_from_its_checkpoint(tiny_data, tmp_path, monkeypatch):
    """The segmentation U-Nets train through the same loop: a run stopped after one epoch and
    resumed for a second runs only the second epoch's steps and ends with the parameters of two
    uninterrupted epochs."""
    from saljax.training import segmenter
    from saljax.training.replicates import ReplicateBatches

    splits = sd.open_splits(tiny_data)
    c = segmenter.default_config()
    c.update(dict(width=0.25, seeds=(0, 1), epochs=2, batch_size=16, checkpoint_every=1))
    resumed_dir = str(tmp_path / "resumed" / "train" / "unet")
    straight = segmenter.train(c, str(tmp_path / "straight"), splits=splits, progress=False)
    c.epochs = 1
    segmenter.train(c, resumed_dir, splits=splits, progress=False)
    ckpt = tmp_path / "resumed" / "train" / "unet" / "checkpoints"
    assert max(int(d) for d in os.listdir(ckpt) if d.isdigit()) == 3   # one epoch of 3 steps
    c.epochs = 2
    steps, batch_of = [], ReplicateBatches.__getitem__
    monkeypatch.setattr(ReplicateBatches, "__getitem__",
                        lambda self, step: steps.append(step) or batch_of(self, step))
    resumed = segmenter.train(c, resumed_dir, splits=splits, progress=False)
    assert steps == [3, 4, 5]
    for seed in c.seeds:
        _, a, meta_a = checkpoint.load(straight[seed]["path"])
        _, b, meta_b = checkpoint.load(resumed[seed]["path"])
        assert meta_a == meta_b
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_array_equal(x, y)


class _Ones:
    """Every step one batch of 1 example per replicate ([R=2, B=1], the value 1)."""
    steps_per_epoch = 25

    def __getitem__(self, step):
        return {"x": np.ones((2, 1), np.float32)}


def test_families_trained_at_once_checkpoint_without_waiting_on_each_other(tmp_path):
    """A study trains its model families in threads of one process. Four loops saving an orbax
    checkpoint every step at once all finish, each with its own final state and checkpoints
    (orbax's one process-wide operation id made such saves wait on each other for ever)."""
    import threading
    from saljax.training import loop

    step = jax.jit(lambda state, batch, keys, shared: (
        jax.tree.map(lambda w: w + batch["x"].sum(axis=1)[:, None], state),
        jnp.zeros(2)))
    results, errors = {}, []

    def family(i):
        try:
            task = loop.Task(name=f"f{i}", seeds=(0, 1), init=lambda s, i=i: {"w": jnp.full(3, i)},
                             step=step, batches=_Ones(), epochs=1, checkpoint_every=1)
            results[i] = loop.fit(task, str(tmp_path / f"f{i}"), progress=False)
        except Exception as e:   # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=family, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a family's checkpointing never finished"
    assert not errors, errors
    for i in range(4):
        np.testing.assert_array_equal(np.asarray(results[i]["w"]), np.full((2, 3), i + 25.0))
        steps = sorted(int(d) for d in os.listdir(tmp_path / f"f{i}") if d.isdigit())
        assert steps == [24, 25]   # max_to_keep 2


def test_a_checkpoint_of_another_replicate_layout_is_refused_by_name(tmp_path):
    """The loop mode resumes replicates kept apart, the vmap mode stacked; a checkpoint written
    the other way (another mode, or a saljax that stacked in both) is a clear error naming its
    folder, not a crash deep in orbax or a wrong restore. The same layout resumes."""
    from saljax.training import loop
    from saljax.training.replicates import over_replicates

    one = lambda state, batch, key, shared: (
        jax.tree.map(lambda w: w + batch["x"].sum(), state), jnp.float32(0.0))

    def task(mode, epochs):
        return loop.Task(name="t", seeds=(0, 1), init=lambda s: {"w": jnp.full(3, float(s))},
                         step=over_replicates(one, mode, (0, 0, 0, None)), batches=_Ones(),
                         epochs=epochs, checkpoint_every=5)

    stacked = loop.fit(task("vmap", 1), str(tmp_path / "ck"), progress=False)
    np.testing.assert_array_equal(np.asarray(stacked["w"]), [[25.0] * 3, [26.0] * 3])
    with pytest.raises(loop.CheckpointLayoutError, match=str(tmp_path / "ck")):
        loop.fit(task("loop", 2), str(tmp_path / "ck"), progress=False)
    apart = loop.fit(task("loop", 1), str(tmp_path / "ck2"), progress=False)
    assert isinstance(apart, Replicas)
    np.testing.assert_array_equal([t["w"] for t in apart.trees], np.asarray(stacked["w"]))
    resumed = loop.fit(task("loop", 2), str(tmp_path / "ck2"), progress=False)
    np.testing.assert_array_equal([t["w"] for t in resumed.trees], [[50.0] * 3, [51.0] * 3])
