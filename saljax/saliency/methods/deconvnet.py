"""DeconvNet (Zeiler & Fergus, 2014): the input gradient with every ReLU's backward pass
replaced by a ReLU of the incoming gradient, whatever the forward activation was (Guided
Backprop also masks by the forward activation), [B, H, W, C]."""
import jax
import jax.numpy as jnp

from saljax.saliency.method import InputGradient, Method


@jax.custom_vjp
def deconv_relu(x):
    """ReLU forward; backward passes only the positive part of the incoming gradient."""
    return jnp.maximum(x, 0)


deconv_relu.defvjp(lambda x: (jnp.maximum(x, 0), None),
                   lambda _, g: (jnp.maximum(g, jnp.zeros_like(g)),))

METHOD = Method(
    name="deconvnet",
    hparams={},
    gradients=(InputGradient(deconv_relu),),
    finish=lambda passes, hp: passes.input_gradient(deconv_relu),
)
