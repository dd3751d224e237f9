"""PAIR's visualizations, batched: [B, H, W, C] attributions -> [B, H, W] maps."""
import jax.numpy as jnp


def _per_image_percentile(maps2d, percentile):
    return jnp.percentile(maps2d.reshape(maps2d.shape[0], -1), percentile, axis=1)[:, None, None]


def grayscale(maps, percentile: float = 99.0):
    """PAIR's ``VisualizeImageGrayscale``: sum |attribution| over channels, scale so the minimum
    is 0 and the ``percentile`` value 1, clip to [0, 1]. float32 [B, H, W].

    A map whose percentile equals its minimum (e.g. a constant map) has no spread to scale; it
    becomes all zeros where PAIR would divide by zero.
    """
    m = jnp.sum(jnp.abs(maps.astype(jnp.float32)), axis=-1) if maps.ndim == 4 else jnp.abs(maps)
    vmax = _per_image_percentile(m, percentile)
    vmin = jnp.min(m, axis=(1, 2), keepdims=True)
    span = vmax - vmin
    return jnp.where(span > 0, jnp.clip((m - vmin) / jnp.where(span > 0, span, 1.0), 0, 1), 0.0)


def diverging(maps, percentile: float = 99.0):
    """PAIR's ``VisualizeImageDiverging``: signed channel sum scaled by the ``percentile`` of
    its absolute value into [-1, 1] (a zero map stays zero). float32 [B, H, W]."""
    m = jnp.sum(maps.astype(jnp.float32), axis=-1) if maps.ndim == 4 else maps.astype(jnp.float32)
    span = jnp.abs(_per_image_percentile(m, percentile))
    scaled = (m + span) / jnp.where(span > 0, 2 * span, 1.0)
    return jnp.where(span > 0, jnp.clip(scaled, -1, 1), 0.0)


def minmax(maps):
    """Each map [B, H, W] scaled to [0, 1] by its own minimum and maximum (a constant map becomes
    zeros). float32."""
    m = maps.astype(jnp.float32)
    lo = jnp.min(m, axis=(1, 2), keepdims=True)
    span = jnp.max(m, axis=(1, 2), keepdims=True) - lo
    return jnp.where(span > 0, (m - lo) / jnp.where(span > 0, span, 1.0), 0.0)
