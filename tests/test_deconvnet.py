"""DeconvNet against the rule written out layer by layer, and against Guided Backprop."""
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import saljax.saliency as ss
from conftest import smooth_images


def deconvnet_reference(variables, image, target):
    """DeconvNet through SmallCNN by hand: the backward signal goes back through each conv's
    transpose, and every ReLU passes only its positive part, whatever the forward input was."""
    p = variables["params"]

    def conv(x, layer, stride):
        k, b = p[layer]["conv"]["kernel"], p[layer]["conv"]["bias"]
        return lax.conv_general_dilated(x, k, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC")) + b

    h, vjps = jnp.asarray(image)[None], []
    for layer, stride in (("conv1", 1), ("conv2", 2), ("conv3", 1)):
        z, vjp = jax.vjp(lambda a, layer=layer, stride=stride: conv(a, layer, stride), h)
        vjps.append(vjp)
        h = jnp.maximum(z, 0)
    g = jnp.broadcast_to(p["logits"]["kernel"][:, target] / (h.shape[1] * h.shape[2]), h.shape)
    for vjp in vjps[::-1]:
        (g,) = vjp(np.maximum(g, 0))
    return np.asarray(g[0])


def test_deconvnet_equals_the_layer_by_layer_rule(small_cnn):
    model, v = small_cnn
    x, t = smooth_images(3, 32), np.array([0, 1, 2])
    ours = np.asarray(ss.make("deconvnet", model)(v, x, t))
    ref = np.stack([deconvnet_reference(v, im, k) for im, k in zip(x, t)])
    assert np.abs(ref).max() > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    guided = np.asarray(ss.make("guided_backprop", model)(v, x, t))
    assert not np.allclose(ours, guided)


def test_deconvnet_differs_from_guided_backprop_on_inception(inception_small):
    model, v = inception_small
    x = smooth_images(2, 96)
    maps = ss.make_many(["deconvnet", "guided_backprop"], model)(v, x)
    d, gb = np.asarray(maps["deconvnet"]), np.asarray(maps["guided_backprop"])
    assert np.abs(d).max() > 0 and np.abs(gb).max() > 0
    corr = np.corrcoef(d.ravel(), gb.ravel())[0, 1]
    assert corr < 0.9, corr   # not the guided map under another name
    assert ss.make_many(["deconvnet", "guided_backprop"], model).passes(x.shape[1:]) == (2, 0)
