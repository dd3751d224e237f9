"""The guided ReLU of Guided Backprop (Springenberg et al., 2015) as a ``jax.custom_vjp``."""
import jax
import jax.numpy as jnp


@jax.custom_vjp
def guided_relu(x):
    """ReLU forward; backward passes a gradient only where the input and the gradient are > 0."""
    return jnp.maximum(x, 0)


def _fwd(x):
    return jnp.maximum(x, 0), x


def _bwd(x, g):
    return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_fwd, _bwd)
