"""Maps and metrics on 1 and on 8 CPU devices, in a process started with
XLA_FLAGS=--xla_force_host_platform_device_count=8; prints the largest differences as JSON."""
import json

import jax
import jax.numpy as jnp
import numpy as np

import saljax.models as sm
import saljax.saliency as ss
from saljax import metrics
from saljax.parallel import batch_sharding, data_mesh, per_device

assert jax.device_count() == 8, jax.devices()
model = sm.create("inception_v3", width=0.0625)
rng = np.random.default_rng(0)
images = rng.uniform(-1, 1, (6, 75, 75, 3)).astype(np.float32)   # 6: padded to 8 when sharded
variables = sm.calibrate_batch_stats(model, sm.init(model, jax.random.key(0)), images)
methods = {"gradient": {}, "smoothgrad": dict(nsamples=4), "gradcam": {},
           "integrated_gradients": dict(x_steps=4), "xrai": dict(steps=4)}
one = ss.make_many(methods, model, mesh=data_mesh(jax.devices()[:1]))
eight = ss.make_many(methods, model, mesh=data_mesh())
key = jax.random.key(3)
segments = ss.xrai_segments(images)
a = one(variables, images, jnp.ones(6, jnp.int32), key=key, segments=segments)
b = eight(variables, images, jnp.ones(6, jnp.int32), key=key, segments=segments)
out = {"devices_used": len(b["gradcam"].sharding.device_set),
       "shape": list(b["gradient"].shape)}
a, b = ({m: np.asarray(v) for m, v in maps.items()} for maps in (a, b))
out.update({m: float(np.max(np.abs(a[m] - b[m])) / (np.max(np.abs(a[m])) + 1e-12)) for m in a})
maps = jnp.asarray(rng.random((16, 40, 40)), jnp.float32)
masks = jnp.asarray(rng.random((16, 40, 40)) > 0.7)
f = jax.jit(lambda x, m: (metrics.ssim(x, jnp.flip(x, -1), data_range=1.0),
                          metrics.spearman(x, jnp.flip(x, -1)), metrics.auprc(x, m)))
ref = f(maps, masks)
# metrics are batch-wise: each device scores its own maps (the CPU's host sort runs per device)
sh = batch_sharding(data_mesh())
got = per_device(lambda x, m: (metrics.ssim(x, jnp.flip(x, -1), data_range=1.0),
                               metrics.spearman(x, jnp.flip(x, -1)), metrics.auprc(x, m)),
                 data_mesh())(jax.device_put(maps, sh), jax.device_put(masks, sh))
out["metrics"] = max(float(np.max(np.abs(np.asarray(r) - np.asarray(g))))
                     for r, g in zip(ref, got))
print("RESULT" + json.dumps(out))
