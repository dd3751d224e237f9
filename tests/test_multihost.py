"""Two local processes joined by jax.distributed: each reads its own shard of the data, a
global array spans both, one process is the writer."""
import json
import os
import socket
import subprocess
import sys

import saljax.data as sd

HERE = os.path.dirname(os.path.abspath(__file__))


def test_two_processes_share_data_and_compute(tmp_path):
    data = sd.build("synthetic_cxr", str(tmp_path / "data"), size=32, seed=2,
                    counts=(("train", 32), ("val", 8), ("test", 8)))
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "JAX_COORD"))}
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "multihost_worker.py"),
                               f"localhost:{port}", str(i), data, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    r = [json.load(open(tmp_path / f"process{i}.json")) for i in range(2)]
    assert [x["count"] for x in r] == [2, 2] and [x["writer"] for x in r] == [True, False]
    assert r[0]["devices"] == 2
    assert not set(r[0]["ids"]) & set(r[1]["ids"])                  # disjoint shards
    assert len(r[0]["ids"]) == len(r[1]["ids"]) == 16                # the whole epoch
    assert r[0]["total"] == r[1]["total"] == 4 * 1 + 4 * 2           # one array, both processes
