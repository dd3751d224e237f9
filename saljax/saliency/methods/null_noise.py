"""Null map: uniform noise in [0, 1), [B, H, W], drawn from a key that depends on the model
state and the image only: the same model and image give the same map, every re-drawn weight
gives a fresh one. It depends on the model yet carries nothing of what the model computes:
Binder et al. (CVPR 2023) show that such maps pass the top-down randomization test."""
import jax
import jax.numpy as jnp

from saljax.saliency.method import Method


def _bits(x):
    """A float32 statistic as uint32 bits, to fold into a key."""
    return jax.lax.bitcast_convert_type(jnp.asarray(x, jnp.float32), jnp.uint32)


def state_hash(variables):
    """A uint32 fingerprint of every parameter and statistic: the weighted sum of each leaf
    (weights by position, so swapped values change it)."""
    total = jnp.float32(0)
    for i, leaf in enumerate(jax.tree.leaves({k: variables[k] for k in sorted(variables)})):
        flat = leaf.reshape(-1).astype(jnp.float32)
        total = total + (i + 1) * jnp.sum(flat * jnp.cos(jnp.arange(flat.size, dtype=jnp.float32)))
    return _bits(total)


def noise(variables, images):
    """[B, H, W, C] -> [B, H, W] uniform noise keyed by (state, image)."""
    b, h, w, _ = images.shape
    state = jax.random.fold_in(jax.random.key(0), state_hash(variables))
    ramp = jnp.cos(jnp.arange(h * w * images.shape[-1], dtype=jnp.float32))
    image_bits = _bits(images.reshape(b, -1) @ ramp)
    return jax.vmap(lambda bits: jax.random.uniform(jax.random.fold_in(state, bits), (h, w)))(
        image_bits)


METHOD = Method(
    name="null_noise",
    hparams={},
    finish=lambda passes, hp: noise(passes.variables, passes.images),
    spatial=True,
)
