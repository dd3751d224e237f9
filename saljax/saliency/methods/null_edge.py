"""Null map: a Sobel edge map of the image (scikit-image's ``filters.sobel`` of the channel
mean: the magnitude of the two normalized Sobel derivatives, mirrored borders), [B, H, W].

A control that ignores the model (Adebayo et al. 2018: an edge detector passes many of the
criteria a saliency map is judged by)."""
import jax.numpy as jnp

from saljax.saliency.method import Method

SMOOTH = jnp.array([0.25, 0.5, 0.25])
EDGE = jnp.array([1.0, 0.0, -1.0])


def sobel(gray):
    """[B, H, W] -> [B, H, W] edge magnitude, as ``skimage.filters.sobel`` (mode "reflect")."""
    p = jnp.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
    h, w = gray.shape[1:]

    def correlate(rows, cols):   # ndimage.convolve flips the kernel: index 2 - k
        return sum(rows[2 - i] * cols[2 - j] * p[:, i:i + h, j:j + w]
                   for i in range(3) for j in range(3))
    return jnp.sqrt((correlate(EDGE, SMOOTH) ** 2 + correlate(SMOOTH, EDGE) ** 2) / 2.0)


METHOD = Method(
    name="null_edge",
    hparams={},
    finish=lambda passes, hp: sobel(jnp.mean(passes.images, axis=-1)),
    spatial=True,
)
