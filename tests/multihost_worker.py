"""One of two local processes joined by jax.distributed (CPU, gloo collectives): reads its shard
of a dataset, sums a global array across both processes, and reports as JSON."""
import json
import os
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
os.environ["JAX_COORDINATOR_ADDRESS"] = sys.argv[1]
os.environ["JAX_NUM_PROCESSES"] = "2"
os.environ["JAX_PROCESS_ID"] = sys.argv[2]

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from saljax import data as sd  # noqa: E402
from saljax.parallel import batch_sharding, data_mesh, initialize_distributed, is_writer  # noqa

initialize_distributed()
data_path, out_dir = sys.argv[3], sys.argv[4]
splits = sd.open_splits(data_path)
batches = sd.training_batches(splits["train"], 8, seed=0, keys=("id", "label"), epochs=1)
ids = [i.decode() if isinstance(i, bytes) else str(i) for k in range(len(batches))
       for i in batches[k]["id"]]
local = np.full((4,), jax.process_index() + 1, np.float32)      # 1s on process 0, 2s on 1
mesh = data_mesh()
global_arr = jax.make_array_from_process_local_data(batch_sharding(mesh), local)
total = float(jax.jit(jnp.sum, out_shardings=None)(global_arr))
result = {"process": jax.process_index(), "count": jax.process_count(),
          "devices": jax.device_count(), "ids": ids, "total": total, "writer": is_writer()}
with open(os.path.join(out_dir, f"process{jax.process_index()}.json"), "w") as f:
    json.dump(result, f)
