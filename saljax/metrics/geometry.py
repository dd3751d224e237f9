"""Boxes to masks at the model's resolution."""
from __future__ import annotations

import jax.numpy as jnp


def boxes_to_mask(boxes, size, *, original_size=None, box_format: str = "xywh"):
    """Boolean masks [..., H, W] covering every box.

    ``boxes`` [..., N, 4] in pixels of ``original_size`` (H0, W0) (default: ``size``), as
    ``(x, y, width, height)`` (the RSNA CSV's convention) or ``(x_min, y_min, x_max, y_max)``
    with ``box_format="xyxy"``. A pixel is inside when its centre is: [x0, x1) x [y0, y1) after
    scaling to ``size`` (H, W). Rows with zero or negative width or height, or NaN, are padding.
    """
    boxes = jnp.asarray(boxes, jnp.float32)
    if boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [..., N, 4], got shape {boxes.shape}")
    h, w = size
    h0, w0 = original_size or size
    x0, y0, a, b = (boxes[..., i] for i in range(4))
    x1, y1 = (x0 + a, y0 + b) if box_format == "xywh" else (a, b)
    if box_format not in ("xywh", "xyxy"):
        raise ValueError(f"box_format must be 'xywh' or 'xyxy', got {box_format!r}")
    sx, sy = w / w0, h / h0
    x0, x1, y0, y1 = x0 * sx, x1 * sx, y0 * sy, y1 * sy
    valid = (x1 > x0) & (y1 > y0)  # False for NaN too
    cy = jnp.arange(h, dtype=jnp.float32) + 0.5
    cx = jnp.arange(w, dtype=jnp.float32) + 0.5
    inside_y = (cy >= y0[..., None]) & (cy < y1[..., None])          # [..., N, H]
    inside_x = (cx >= x0[..., None]) & (cx < x1[..., None])          # [..., N, W]
    per_box = inside_y[..., :, None] & inside_x[..., None, :] & valid[..., None, None]
    return jnp.any(per_box, axis=-3)
